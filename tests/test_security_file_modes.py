"""Files vidpipe creates are its owner's only: a new SQLite database (and the journal files
SQLite derives from it), the run-lock files next to it, and the fallback lock files in the
temp directory. A platform database vidpipe did not create keeps its mode.

Every test runs under umask 022, the usual default, under which SQLite and a plain
`open()` create files readable by every local account.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import registry
from sqlalchemy.engine import make_url

from vidpipe.db import init_db, make_engine
from vidpipe.locks import lock_file, run_lock

OWNER_ONLY = 0o600


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("form", ["path", "uri"])
def test_a_sqlite_database_vidpipe_creates_is_readable_by_its_owner_only(
    tmp_path: Path, form: str
) -> None:
    path = tmp_path / "new.db"
    url = f"sqlite:///{path}" if form == "path" else f"sqlite:///file:{path}?mode=rwc&uri=true"
    engine = make_engine(url)
    try:
        init_db(engine)
        assert mode_of(path) == OWNER_ONLY
        assert "lesson" in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_sqlite_gives_its_wal_files_the_database_files_mode(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
            conn.commit()
            for side in ("-wal", "-shm"):
                assert mode_of(Path(f"{path}{side}")) == OWNER_ONLY, side
    finally:
        engine.dispose()


@pytest.mark.parametrize("platform_mode", [0o644, 0o640, 0o664])
def test_an_existing_platform_database_keeps_its_mode(tmp_path: Path, platform_mode: int) -> None:
    path = tmp_path / "platform.db"
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE course_note (id INTEGER PRIMARY KEY, body TEXT)")
        raw.execute("INSERT INTO course_note VALUES (1, 'kept')")
    raw.close()
    os.chmod(path, platform_mode)
    engine = make_engine(f"sqlite:///{path}")
    try:
        created = init_db(engine)
        assert "vidpipe_upload" in created
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT body FROM course_note").scalar_one() == "kept"
    finally:
        engine.dispose()
    assert mode_of(path) == platform_mode


def test_a_read_only_url_creates_no_database_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.db"
    engine = make_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    try:
        with pytest.raises(sa.exc.OperationalError):
            with engine.connect():
                pass
    finally:
        engine.dispose()
    assert not path.exists()


def test_the_sqlite_run_lock_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'platform.db'}")
    path = lock_file(engine.url, "sync")
    assert path is not None and path.parent == tmp_path
    try:
        with run_lock(engine, "sync"):
            assert mode_of(path) == OWNER_ONLY
    finally:
        engine.dispose()


def test_the_fallback_run_lock_file_is_readable_by_its_owner_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A backend that is neither SQLite nor PostgreSQL (SQLite's driver under another name) takes
    # the fallback lock in the temp directory, pointed here for the test.
    registry.register(
        "vidpipeother", "sqlalchemy.dialects.sqlite.pysqlite", "SQLiteDialect_pysqlite"
    )
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    engine = sa.create_engine("vidpipeother://")
    path = lock_file(engine.url, "sync")
    assert path is not None and path.parent == tmp_path
    assert lock_file(make_url("vidpipeother://"), "sync") == path
    with run_lock(engine, "sync"):
        assert mode_of(path) == OWNER_ONLY
