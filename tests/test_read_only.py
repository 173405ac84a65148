"""Commands that read create nothing, and bad input is named before missing credentials.

A SQLite DATABASE_URL naming a file that does not exist: every command but `db init` says so
(exit 2, naming DATABASE_URL and `vidpipe db init`) and leaves the folder as it was — no
empty database file, no journal, no lock file — and asks Mux nothing. Input checks that need
no Mux call (the file exists and is a video, the row exists, the manifest's lines) come
before the check for a Mux token. Run in-process (not a terminal) and as the real process on
a pseudo-terminal.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import Platform, Result, make_video
from terminal_helpers import run_on_terminal

from vidpipe.api import Vidpipe
from vidpipe.db import make_engine
from vidpipe.emulator import Emulator
from vidpipe.errors import ConfigError, DatabaseMissing

VIDPIPE = Path(sys.executable).parent / "vidpipe"


@pytest.fixture
def nowhere(workdir: Path) -> Path:
    """A working folder with no database in it; DATABASE_URL is the default
    (`sqlite:///vidpipe.db`, relative to it); Mux credentials point at the emulator."""
    return workdir


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


READ_ONLY = [
    pytest.param(["status"], id="status"),
    pytest.param(["status", "--lesson", "1", "--json"], id="status of a lesson, json"),
    pytest.param(["verify"], id="verify"),
    pytest.param(["verify", "--course", "1", "--json"], id="verify of a course, json"),
    pytest.param(["url", "--lesson", "1"], id="url"),
    pytest.param(["url", "--course", "1", "--json"], id="url, json"),
    pytest.param(["captions", "list", "--lesson", "1"], id="captions list"),
]
OTHERS = [
    pytest.param(["sync", "--dry-run"], id="sync --dry-run"),
    pytest.param(["sync"], id="sync"),
    pytest.param(["delete", "--lesson", "1", "--yes"], id="delete"),
    pytest.param(["db", "pin"], id="db pin"),
    pytest.param(["webhook", "apply", "-", "--no-verify"], id="webhook apply"),
]


def assert_database_missing(res: Result, folder: Path) -> None:
    assert res.code == 2, res.out + res.err
    assert res.out == ""
    lines = res.err.strip().splitlines()
    assert len(lines) == 1, res.err
    assert "vidpipe.db does not exist" in lines[0]
    assert "DATABASE_URL" in lines[0] and "`vidpipe db init`" in lines[0]
    assert listing(folder) == []


@pytest.mark.parametrize("args", READ_ONLY + OTHERS)
def test_a_command_on_a_missing_sqlite_file_says_so_and_creates_nothing(
    nowhere: Path, emulator: Emulator, vp: Callable[..., Result], args: list[str]
) -> None:
    assert_database_missing(vp(*args), nowhere)
    assert emulator.request_log == []


@pytest.mark.parametrize("args", READ_ONLY)
def test_the_missing_database_is_named_before_missing_credentials(
    nowhere: Path, monkeypatch: pytest.MonkeyPatch, vp: Callable[..., Result], args: list[str]
) -> None:
    monkeypatch.delenv("MUX_TOKEN_ID")
    monkeypatch.delenv("MUX_TOKEN_SECRET")
    assert_database_missing(vp(*args), nowhere)


@pytest.mark.parametrize(
    "args", [["status"], ["verify", "--lesson", "1"], ["url", "--lesson", "1"]]
)
def test_on_a_terminal_a_missing_database_is_reported_and_not_created(
    nowhere: Path, args: list[str]
) -> None:
    code, shown, _ = run_on_terminal([str(VIDPIPE), *args], dict(os.environ))
    text = shown.decode(errors="replace")
    assert code == 2, text
    assert "does not exist" in text and "vidpipe db init" in text
    assert listing(nowhere) == []


def test_db_init_creates_the_missing_file_and_then_status_reads_it(
    nowhere: Path, vp: Callable[..., Result]
) -> None:
    res = vp("db", "init")
    assert res.code == 0, res.err
    assert (nowhere / "vidpipe.db").stat().st_mode & 0o777 == 0o600
    res = vp("status", "--json")
    assert res.code == 0, res.err


def test_a_database_url_in_a_missing_folder_is_reported_without_creating_it(
    nowhere: Path, monkeypatch: pytest.MonkeyPatch, vp: Callable[..., Result]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{nowhere / 'data' / 'platform.db'}")
    res = vp("verify")
    assert res.code == 2 and "platform.db does not exist" in res.err
    assert listing(nowhere) == []


# -- the library -----------------------------------------------------------------------------


def test_the_facade_raises_database_missing_a_config_error(nowhere: Path) -> None:
    with Vidpipe.from_env() as vp, pytest.raises(DatabaseMissing) as caught:
        _ = vp.engine
    assert isinstance(caught.value, ConfigError)
    assert caught.value.path == nowhere / "vidpipe.db"
    assert listing(nowhere) == []
    with Vidpipe.from_env() as vp:
        vp.init_db()
        _ = vp.engine
    assert listing(nowhere) == ["vidpipe.db"]


@pytest.mark.parametrize("form", ["path", "uri"])
def test_an_engine_that_may_not_create_refuses_a_missing_file(tmp_path: Path, form: str) -> None:
    path = tmp_path / "absent.db"
    url = f"sqlite:///{path}" if form == "path" else f"sqlite:///file:{path}?mode=rwc&uri=true"
    engine = make_engine(url, create=False)
    try:
        with pytest.raises(DatabaseMissing), engine.connect():
            pass
    finally:
        engine.dispose()
    assert not path.exists()


def test_a_file_removed_after_the_check_is_an_error_not_a_new_database(tmp_path: Path) -> None:
    """The engine opens an existing plain path with `mode=rw`: SQLite itself refuses to
    create it, whatever happens between vidpipe's check and the open."""
    path = tmp_path / "platform.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        conn.commit()
    engine.dispose()
    reader = make_engine(f"sqlite:///{path}", create=False)
    sa.event.listen(reader, "do_connect", lambda *_: path.unlink(), insert=False)
    try:
        with pytest.raises(sa.exc.OperationalError), reader.connect():
            pass
    finally:
        reader.dispose()
    assert not path.exists()


def test_an_in_memory_database_needs_no_file(tmp_path: Path) -> None:
    engine = make_engine("sqlite://", create=False)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT 1").scalar_one() == 1
    engine.dispose()


# -- input checks before credentials ---------------------------------------------------------


@pytest.fixture
def no_token(env: Platform, monkeypatch: pytest.MonkeyPatch) -> Platform:
    monkeypatch.delenv("MUX_TOKEN_ID")
    monkeypatch.delenv("MUX_TOKEN_SECRET")
    return env


@pytest.mark.parametrize(
    ("name", "lesson", "expected"),
    [
        pytest.param(None, "1", "missing.mp4: no such file", id="a missing file"),
        pytest.param("notes.txt", "1", "notes.txt: does not look like a video", id="not a video"),
        pytest.param("clip.mp4", "42", "lesson 42 does not exist", id="a row that does not exist"),
    ],
)
def test_upload_of_bad_input_without_a_token_names_the_input(
    no_token: Platform,
    tmp_path: Path,
    vp: Callable[..., Result],
    name: str | None,
    lesson: str,
    expected: str,
) -> None:
    source = tmp_path / (name or "missing.mp4")
    if name == "notes.txt":
        source.write_text("not a video\n")
    elif name:
        make_video(source, 300_000)
    res = vp("upload", str(source), "--lesson", lesson)
    assert res.code == 2
    assert expected in res.err and "MUX_TOKEN" not in res.err


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["url", "--lesson", "42"], id="url"),
        pytest.param(["status", "--lesson", "42"], id="status"),
        pytest.param(["verify", "--lesson", "42"], id="verify"),
        pytest.param(["delete", "--lesson", "42", "--yes"], id="delete"),
    ],
)
def test_a_row_that_does_not_exist_is_named_before_the_missing_token(
    no_token: Platform, vp: Callable[..., Result], args: list[str]
) -> None:
    res = vp(*args)
    assert res.code == 2
    assert "lesson 42 does not exist" in res.err and "MUX_TOKEN" not in res.err


def test_import_of_a_bad_manifest_without_a_token_names_the_bad_lines(
    no_token: Platform, tmp_path: Path, vp: Callable[..., Result]
) -> None:
    manifest = tmp_path / "course.csv"
    manifest.write_text("source,lesson,course\nmissing.mp4,1,\n")
    res = vp("import", str(manifest))
    assert res.code == 2
    assert "line 2" in res.err and "MUX_TOKEN" not in res.err


def test_good_input_without_a_token_is_refused_for_the_token(
    no_token: Platform, tmp_path: Path, emulator: Emulator, vp: Callable[..., Result]
) -> None:
    clip = make_video(tmp_path / "clip.mp4", 300_000)
    res = vp("upload", str(clip), "--lesson", "1")
    assert res.code == 2
    assert "MUX_TOKEN_ID and MUX_TOKEN_SECRET are not set" in res.err
    assert emulator.request_log == []
