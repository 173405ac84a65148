"""One sync at a time: `vidpipe.locks.run_lock` on SQLite and on a real PostgreSQL server.

Contention is always tested from a second *process* (that is what the lock is for), and the
"no stale lock" promise by SIGKILLing a holder process and timing how soon the lock is free.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from pgserver import PgServer
from sqlalchemy.engine import make_url

from vidpipe.db import make_engine
from vidpipe.errors import LockHeld, UsageError
from vidpipe.locks import advisory_key, lock_file, run_lock, sqlite_file

# Holds the lock, says so, then sleeps until killed.
HOLDER = """
import sys, time
from vidpipe.db import make_engine
from vidpipe.locks import run_lock
with run_lock(make_engine(sys.argv[1])):
    print("LOCKED", flush=True)
    time.sleep(300)
"""

# One attempt: prints GOT or HELD with the seconds the attempt took; exit 0 or 3.
TRY_ONCE = """
import sys, time
from vidpipe.db import make_engine
from vidpipe.errors import LockHeld, UsageError
from vidpipe.locks import run_lock
engine = make_engine(sys.argv[1])
start = time.monotonic()
try:
    with run_lock(engine):
        print("GOT", time.monotonic() - start)
except LockHeld as exc:
    print("HELD", time.monotonic() - start, exc)
    sys.exit(3)
"""

StartHolder = Callable[[str], "subprocess.Popen[str]"]

PROMPT = 2.0  # seconds a refused attempt may take
RELEASE_LIMIT = 5.0  # seconds a SIGKILLed holder's lock may outlive it


def try_in_subprocess(url: str) -> tuple[str, float, str]:
    """Run one lock attempt in another process: ("GOT"|"HELD", seconds taken, full output)."""
    proc = subprocess.run(
        [sys.executable, "-c", TRY_ONCE, url], capture_output=True, text=True, timeout=60
    )
    words = proc.stdout.split()
    assert words, f"no output; stderr:\n{proc.stderr}"
    assert proc.returncode == (0 if words[0] == "GOT" else 3), proc.stderr
    return words[0], float(words[1]), proc.stdout


@pytest.fixture
def holder() -> Iterator[StartHolder]:
    """Start a process that takes the lock on a URL and keeps it; killed at teardown."""
    procs: list[subprocess.Popen[str]] = []

    def start(url: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the holder has the lock (or died)
        if line.strip() != "LOCKED":
            proc.kill()
            _, err = proc.communicate(timeout=10)
            pytest.fail(f"holder did not take the lock: {line!r}\n{err}")
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def kill_and_time_release(proc: subprocess.Popen[str], engine: sa.Engine) -> float:
    """SIGKILL the holder, then measure how long until this process can take the lock."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    start = time.monotonic()
    while True:
        try:
            with run_lock(engine):
                return time.monotonic() - start
        except LockHeld:
            if time.monotonic() - start > 30:
                pytest.fail("the lock of a SIGKILLed holder was still held after 30 s")
            time.sleep(0.02)


# -- pure helpers ---------------------------------------------------------------------------


def test_advisory_key_is_stable_signed_64_bit() -> None:
    key = advisory_key("sync")
    assert key == advisory_key("sync")
    assert -(2**63) <= key < 2**63
    assert key != advisory_key("other")
    # Pinned: a different key in a new release would let old and new versions run at once.
    assert key == int.from_bytes(hashlib.sha256(b"vidpipe:sync").digest()[:8], "big", signed=True)


def test_sqlite_file_and_memory_detection(tmp_path: Path) -> None:
    assert sqlite_file(make_url(f"sqlite:///{tmp_path}/a.db")) == tmp_path / "a.db"
    assert sqlite_file(make_url("sqlite://")) is None
    assert sqlite_file(make_url("sqlite:///:memory:")) is None
    assert sqlite_file(make_url("sqlite:///file:x?mode=memory&uri=true")) is None


def test_fallback_lock_path_ignores_password() -> None:
    one = lock_file(make_url("mysql://app:secret1@db.example/prod"), "sync")
    two = lock_file(make_url("mysql://app:secret2@db.example/prod"), "sync")
    other = lock_file(make_url("mysql://app:secret1@db.example/staging"), "sync")
    assert one is not None and one == two != other
    assert "secret" not in str(one)


def test_lock_file_names_no_file_where_the_lock_is_not_a_file(tmp_path: Path) -> None:
    assert lock_file(make_url("postgresql+psycopg://u:pw@h/db")) is None
    assert lock_file(make_url("sqlite://")) is None
    db = tmp_path / "platform.db"
    assert (
        lock_file(make_url(f"sqlite:///{db}"), "sync") == tmp_path / "platform.db.vidpipe-sync.lock"
    )


# -- SQLite ---------------------------------------------------------------------------------


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'platform.db'}"


def test_sqlite_second_process_is_refused_then_admitted(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with run_lock(engine):
        outcome, seconds, out = try_in_subprocess(sqlite_url)
        assert outcome == "HELD", out
        assert seconds < PROMPT
        assert "another vidpipe sync holds the lock" in out
    outcome, _, out = try_in_subprocess(sqlite_url)
    assert outcome == "GOT", out


def test_sqlite_lock_file_sits_next_to_the_database(sqlite_url: str, tmp_path: Path) -> None:
    engine = make_engine(sqlite_url)
    with run_lock(engine):
        assert (tmp_path / "platform.db.vidpipe-sync.lock").exists()
        assert lock_file(engine.url) == tmp_path / "platform.db.vidpipe-sync.lock"


def test_sqlite_second_acquire_in_same_process_is_refused(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with run_lock(engine):
        with pytest.raises(LockHeld) as info:
            with run_lock(make_engine(sqlite_url)):
                pass
    assert not isinstance(info.value, UsageError)  # a failed run (exit 1), not bad usage
    with run_lock(engine):  # released by the first block, not broken by the refusal
        pass


def test_sqlite_lock_released_when_body_raises(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with pytest.raises(RuntimeError):
        with run_lock(engine):
            raise RuntimeError("boom")
    assert try_in_subprocess(sqlite_url)[0] == "GOT"


def test_sqlite_killed_holder_leaves_no_lock(sqlite_url: str, holder: StartHolder) -> None:
    proc = holder(sqlite_url)
    engine = make_engine(sqlite_url)
    with pytest.raises(LockHeld):
        with run_lock(engine):
            pass
    waited = kill_and_time_release(proc, engine)
    print(f"sqlite: lock free {waited * 1000:.0f} ms after SIGKILL")
    assert waited < RELEASE_LIMIT


def test_different_lock_names_do_not_conflict(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with run_lock(engine, "sync"), run_lock(engine, "other"):
        pass


def test_in_memory_sqlite_uses_a_process_lock() -> None:
    engine = make_engine("sqlite://")
    with run_lock(engine):
        with pytest.raises(LockHeld):
            with run_lock(make_engine("sqlite:///:memory:")):
                pass
    with run_lock(engine):
        pass


# -- PostgreSQL -----------------------------------------------------------------------------


def advisory_locks_held(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")
            ).scalar_one()
        )


@pytest.mark.postgres
def test_pg_second_process_is_refused_promptly_then_admitted(pg_url: str) -> None:
    engine = make_engine(pg_url)
    with run_lock(engine):
        outcome, seconds, out = try_in_subprocess(pg_url)
        assert outcome == "HELD", out
        assert seconds < PROMPT
        assert "advisory lock" in out
    outcome, _, out = try_in_subprocess(pg_url)
    assert outcome == "GOT", out
    engine.dispose()


@pytest.mark.postgres
def test_pg_second_connection_in_same_process_is_refused(pg_url: str) -> None:
    first, second = make_engine(pg_url), make_engine(pg_url)
    with run_lock(first):
        start = time.monotonic()
        with pytest.raises(LockHeld, match="another vidpipe sync holds the lock"):
            with run_lock(second):
                pass
        assert time.monotonic() - start < PROMPT
    with run_lock(second):
        pass
    first.dispose()
    second.dispose()


@pytest.mark.postgres
def test_pg_release_leaves_no_lock_on_pooled_connections(pg_url: str) -> None:
    engine = make_engine(pg_url)
    with run_lock(engine):
        assert advisory_locks_held(engine) == 1
    assert advisory_locks_held(engine) == 0
    with pytest.raises(RuntimeError):
        with run_lock(engine):
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            raise RuntimeError("boom")
    assert advisory_locks_held(engine) == 0
    assert try_in_subprocess(pg_url)[0] == "GOT"
    engine.dispose()


@pytest.mark.postgres
def test_pg_locks_are_per_database(pg_server: PgServer, pg_url: str) -> None:
    """Advisory locks are scoped to a database: two platforms on one server don't block."""
    other_url = pg_server.create_database()
    one, two = make_engine(pg_url), make_engine(other_url)
    with run_lock(one), run_lock(two):
        pass
    one.dispose()
    two.dispose()
    pg_server.drop_database(make_url(other_url).database or "")


@pytest.mark.postgres
def test_pg_killed_holder_releases_lock_promptly(pg_url: str, holder: StartHolder) -> None:
    proc = holder(pg_url)
    engine = make_engine(pg_url)
    with pytest.raises(LockHeld):
        with run_lock(engine):
            pass
    waited = kill_and_time_release(proc, engine)
    print(f"postgresql: lock free {waited * 1000:.0f} ms after SIGKILL")
    assert waited < RELEASE_LIMIT
    engine.dispose()
