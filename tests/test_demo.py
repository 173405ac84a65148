"""`vidpipe demo` end to end: the real command in a subprocess (as `make demo` runs it), plus
cheaper in-process runs for set-up, clean-up and failure behaviour."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import Result
from sqlmodel import Session, select

from vidpipe import demo
from vidpipe.db import Lesson, World, make_engine
from vidpipe.media import check_video_file
from vidpipe.samples import write_sample_video

COMMANDS = (
    "vidpipe db init",
    "vidpipe upload",
    "vidpipe status",
    "vidpipe verify",
    "vidpipe sync",
    "vidpipe import",
    "vidpipe url",
    "vidpipe webhook serve",
    "vidpipe download",
    "vidpipe doctor",
)
ALL_ROWS = [f"lesson {i}" for i, _ in demo.LESSONS] + ["course 1"]


def _clean_env(tmp_path: Path) -> dict[str, str]:
    """The caller's environment minus anything that would point vidpipe elsewhere."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MUX_", "DATABASE_URL", "VIDPIPE_")) and k != "NO_COLOR"
    }
    env["HOME"] = str(tmp_path)
    return env


def _recorded(db: Path) -> dict[str, tuple[str | None, str | None]]:
    """The video IDs the demo's database holds for every lesson and the course."""
    engine = make_engine(f"sqlite:///{db}")
    try:
        with Session(engine) as s:
            rows = {
                f"lesson {r.id}": (r.mux_asset_id, r.mux_playback_id)
                for r in s.exec(select(Lesson))
            }
            rows.update(
                {
                    f"course {r.id}": (r.mux_preview_asset_id, r.mux_preview_playback_id)
                    for r in s.exec(select(World))
                }
            )
            return rows
    finally:
        engine.dispose()


def test_demo_end_to_end_piped(tmp_path: Path) -> None:
    """What a newcomer runs: exit 0, plain text, every command shown, under a minute."""
    workdir = tmp_path / "demo"
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "vidpipe.cli", "demo", "--dir", str(workdir)],
        cwd=tmp_path,
        env=_clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert elapsed < 75  # the promise to a newcomer (about 35 s on an idle 2-core machine)
    both = proc.stdout + proc.stderr
    assert "\x1b[" not in both
    assert "Traceback" not in both
    for command in COMMANDS:
        assert f"$ {command}" in proc.stdout
    # Progress went to stderr as plain lines, ending at 100%.
    assert "(100%)" in proc.stderr
    recorded = _recorded(workdir / demo.DB_FILE)
    assert sorted(recorded) == sorted(ALL_ROWS)
    for target, (asset, playback) in recorded.items():
        assert asset and playback, target
    # --dir keeps what the demo made: the database, the manifest and its videos, serve's log.
    for name in demo.FILES:
        assert (workdir / name).is_file(), name
    # The download brought lesson 1's original back: the sample's exact bytes, nothing partial.
    assert (workdir / demo.DOWNLOADED).read_bytes() == (workdir / demo.VIDEO_FILE).read_bytes()
    assert list(workdir.glob("*.part*")) == []


@pytest.fixture
def fast_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same story without the pauses that make it watchable, for in-process tests."""
    monkeypatch.setattr(demo, "VIDEO_SIZE", 3 * 256 * 1024 + 100)
    monkeypatch.setattr(demo, "IMPORT_SIZE", 256 * 1024 + 100)
    monkeypatch.setattr(demo, "CHUNK_SIZE", "256KiB")
    monkeypatch.setattr(demo, "CHUNK_DELAY", 0.0)
    monkeypatch.setattr(demo, "READY_AFTER", 0.0)
    monkeypatch.setenv("NO_COLOR", "1")


def test_demo_in_process_restores_environment_and_reuses_dir(
    cli: Callable[..., Result], fast_demo: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", "sqlite:///caller.db")
    monkeypatch.delenv("MUX_BASE_URL", raising=False)
    workdir = tmp_path / "demo"
    workdir.mkdir()
    (workdir / "notes.txt").write_text("mine")
    before = dict(os.environ)

    for _ in range(2):  # a second run replaces the first run's files and succeeds again
        result = cli("demo", "--dir", workdir)
        assert result.code == 0, result.err
        assert "verify found drift" in result.out
        assert all(result.out.count(f"$ {c}") >= 1 for c in COMMANDS)

    assert dict(os.environ) == before
    assert Path.cwd() == tmp_path
    assert (workdir / "notes.txt").read_text() == "mine"
    assert all(a and p for a, p in _recorded(workdir / demo.DB_FILE).values())


@dataclass
class Ran:
    argv: tuple[str, ...]
    mux: str
    code: int
    out: str
    rows_before: dict[str, tuple[str | None, str | None]]
    rows_after: dict[str, tuple[str | None, str | None]]


def test_each_step_of_the_demo_ends_as_the_story_says(
    fast_demo: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every command the demo runs, with its exit code and the rows before and after it."""
    from vidpipe.cli import Invocation, run

    workdir = tmp_path / "demo"
    ran: list[Ran] = []

    def runner(argv: list[str], settings: dict[str, Any]) -> int:
        db = workdir / demo.DB_FILE
        before = _recorded(db) if db.exists() and argv[0] != "db" else {}
        capsys.readouterr()
        code = run(argv, invocation=Invocation(settings=settings, read_dotenv=False))
        out = capsys.readouterr().out
        ran.append(Ran(tuple(argv), settings["mux_base_url"], code, out, before, _recorded(db)))
        return code

    demo.run_demo(workdir, runner)

    production = ran[0].mux
    by_command = {(r.argv[0], r.mux == production): r for r in ran}
    # An import of three items: each lesson records a video it did not have.
    imported = by_command["import", True]
    assert imported.code == 0
    for lesson in demo.IMPORTED:
        assert imported.rows_before[f"lesson {lesson}"] == (None, None)
        assert all(imported.rows_after[f"lesson {lesson}"])
    # A signed link for lesson 1.
    url = by_command["url", True]
    assert url.code == 0 and url.out.count("?token=") == 2
    # The sync with another environment's token: refused, nothing changed.
    refused = by_command["sync", False]
    assert refused.code == 2 and refused.out == ""
    assert refused.rows_after == refused.rows_before
    # The --no-wait upload: not recorded by the command; recorded afterwards (by serve).
    no_wait = next(r for r in ran if "--no-wait" in r.argv)
    assert no_wait.code == 0 and no_wait.rows_after["lesson 6"] == (None, None)
    assert all(_recorded(workdir / demo.DB_FILE)["lesson 6"])
    assert "video.asset.ready" in (workdir / demo.SERVE_LOG).read_text()
    # The download: lesson 1's original, the bytes of the sample it was uploaded from.
    downloaded = by_command["download", True]
    assert downloaded.code == 0 and downloaded.rows_after == downloaded.rows_before
    assert (workdir / demo.DOWNLOADED).read_bytes() == (workdir / demo.VIDEO_FILE).read_bytes()
    # doctor on the demo's deployment, every check passing.
    assert by_command["doctor", True].code == 0
    # Captions: the new setting's drift found, fixed, and gone.
    fix = next(r for r in ran if r.argv == ("sync", "--fix-settings"))
    after = ran[ran.index(fix) + 1]
    assert fix.code == 0 and after.argv == ("verify",) and after.code == 0
    # Every other step as expected: only the drift verify and the captions verify exit 1.
    assert [r.argv for r in ran if r.code == 1] == [("verify",), ("verify",)]


def test_demo_temporary_folder_is_removed(
    cli: Callable[..., Result], fast_demo: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    result = cli("demo")
    assert result.code == 0, result.err
    assert list(tmp_path.glob("vidpipe-demo-*")) == []


def test_demo_step_failure_names_the_step(
    cli: Callable[..., Result], fast_demo: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A blank token is "not set": the first Mux command fails with exit 2.
    monkeypatch.setattr(demo, "DEMO_TOKEN_ID", "")
    result = cli("demo", "--dir", tmp_path / "demo")
    assert result.code == 1
    assert f"demo step `vidpipe upload {tmp_path / 'demo' / 'sample.mp4'} --lesson 1" in result.err
    assert "Traceback" not in result.err


def test_demo_dir_that_is_a_file_is_bad_usage(cli: Callable[..., Result], tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    result = cli("demo", "--dir", target)
    assert result.code == 2
    assert target.read_text() == "x"


def test_sample_video_is_an_mp4_vidpipe_accepts(tmp_path: Path) -> None:
    path = write_sample_video(tmp_path / "s.mp4", 1_000_000)
    assert path.stat().st_size == 1_000_000
    assert check_video_file(path).container == "mp4/mov"
    # Top-level boxes tile the file exactly: ftyp, moov, mdat.
    data, boxes, at = path.read_bytes(), [], 0
    while at < len(data):
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        boxes.append(kind)
        at += size
    assert at == len(data)
    assert boxes == [b"ftyp", b"moov", b"mdat"]
    assert data[data.index(b"mvhd") - 4 :][:4] == struct.pack(">I", 108)
