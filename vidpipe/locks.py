"""One sync at a time: a run lock that never waits and never goes stale.

`run_lock(engine)` either takes the lock at once or raises `LockHeld` at once; it never queues
behind another run, because a cron job piling up behind a slow sync helps nobody. Both `sync`
and `delete` take the same lock ("sync"), so a `delete` cannot race a `sync` on the same rows.

The lock lives where every process that can touch the database can see it, and is always one
the operating system or the database server drops when its holder dies, so a crashed or
SIGKILLed run never leaves a lock behind:

- PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock`) held on a dedicated
  connection for the whole run. If the holder dies, its TCP connection closes and the server
  ends the session, which releases the lock (at once for a killed process: the kernel closes
  its sockets; for a vanished machine, when TCP keepalive gives up on the connection).
  Works across machines, which a file lock would not.
- SQLite: an OS file lock (`flock`, via `filelock`) on `<database file>.vidpipe-<name>.lock`,
  next to the database so every process using that file agrees on it. The kernel drops the
  lock when the holding process exits, however it exits. Only processes on one machine share
  a SQLite file safely anyway.
- In-memory SQLite: the database exists only inside this process, so no other process can
  race it; a process-local `threading.Lock` per lock name is enough.
- Any other backend: a file lock in the system temp directory, keyed by a hash of the URL
  without its password. That serialises runs on this machine only.

Lock files are created with mode 0600: another account that could open one could take the
lock itself and hold every run off. `lock_file` names the file a run lock uses.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from vidpipe.db import advisory_key, sqlite_file
from vidpipe.errors import LockHeld, VidpipeError

__all__ = ["LOCK_FILE_MODE", "advisory_key", "lock_file", "run_lock", "sqlite_file"]

LOCK_FILE_MODE = 0o600
"""Permissions of the lock files vidpipe creates: its owner only."""

_HELD_MESSAGE = "another vidpipe sync holds the lock ({how}); try again later"

# In-memory SQLite: one process-local lock per lock name (see the module docstring).
_memory_locks: dict[str, threading.Lock] = {}
_memory_locks_guard = threading.Lock()


@contextmanager
def run_lock(engine: Engine, name: str = "sync") -> Iterator[None]:
    """Hold the run lock `name` for the body, or raise `LockHeld` at once if another run has it.

    Nothing is waited for and nothing is changed when the lock is held elsewhere. The lock is
    released when the body ends (normally or by an exception), and by the OS or database
    server if this process dies first.
    """
    backend = engine.url.get_backend_name()
    path = lock_file(engine.url, name)
    if backend == "postgresql":
        with _pg_advisory_lock(engine, name):
            yield
    elif path is None:
        with _memory_lock(name):
            yield
    else:
        with _file_lock(path):
            yield


def lock_file(url: URL, name: str = "sync") -> Path | None:
    """The file the run lock `name` takes for a database URL; None where it takes no file
    (PostgreSQL's advisory lock, an in-memory SQLite database)."""
    backend = url.get_backend_name()
    if backend == "postgresql":
        return None
    if backend == "sqlite":
        db_file = sqlite_file(url)
        return None if db_file is None else Path(f"{db_file}.vidpipe-{name}.lock")
    return _fallback_lock_path(url, name)


# -- PostgreSQL -------------------------------------------------------------------------------


@contextmanager
def _pg_advisory_lock(engine: Engine, name: str) -> Iterator[None]:
    key = advisory_key(name)
    try:
        conn = engine.connect()
    except SQLAlchemyError as exc:
        raise VidpipeError(
            f"cannot open the database to take the run lock: {_one_line(exc)}"
        ) from None
    try:
        got = conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar()
        # End the implicit transaction at once: a session-level advisory lock outlives it, and
        # a connection left "idle in transaction" for a whole sync would hold back vacuum.
        conn.commit()
    except SQLAlchemyError as exc:
        _discard(conn)
        raise VidpipeError(f"cannot take the run lock: {_one_line(exc)}") from None
    if not got:
        conn.close()  # holds nothing: safe to return to the pool
        raise LockHeld(_HELD_MESSAGE.format(how=f"PostgreSQL advisory lock {key}"))
    try:
        yield
    finally:
        _pg_unlock(conn, key)


def _pg_unlock(conn: Connection, key: int) -> None:
    """Release the advisory lock and return the connection; never let a pooled connection
    keep holding it (the next user of that connection would hold the lock unknowingly)."""
    try:
        if conn.in_transaction():
            # The body may have used this connection and failed mid-transaction.
            conn.rollback()
        released = conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key}).scalar()
        conn.commit()
    except SQLAlchemyError:
        # The connection is broken or unusable: the server ends its session, which releases
        # the lock. Make sure the pool never hands it out again.
        _discard(conn)
        return
    if released:
        conn.close()
    else:
        # Not held any more (the session was reset under us): don't trust this connection.
        _discard(conn)


def _discard(conn: Connection) -> None:
    try:
        conn.invalidate()
    except SQLAlchemyError:
        pass
    try:
        conn.close()
    except SQLAlchemyError:
        pass


def _one_line(exc: SQLAlchemyError) -> str:
    orig = exc.orig if isinstance(exc, DBAPIError) else None
    text_ = str(orig if orig is not None else exc).strip()
    return text_.splitlines()[0] if text_ else type(exc).__name__


# -- file locks -------------------------------------------------------------------------------


def _fallback_lock_path(url: URL, name: str) -> Path:
    # The password is masked, so it is in no hash input and a rotated password keeps the path.
    ident = url.render_as_string(hide_password=True)
    digest = hashlib.sha256(ident.encode()).hexdigest()[:24]
    return Path(tempfile.gettempdir()) / f"vidpipe-{name}-{digest}.lock"


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    # timeout=0: one attempt, no queueing. fallback_to_soft=False: a "soft" lock is a marker
    # file that a crashed holder would leave behind, which is exactly what must not happen;
    # on a filesystem without flock, fail loudly instead.
    lock = FileLock(path, timeout=0, fallback_to_soft=False, mode=LOCK_FILE_MODE)
    try:
        lock.acquire()
    except Timeout:
        raise LockHeld(_HELD_MESSAGE.format(how=f"lock file {path}")) from None
    except OSError as exc:
        raise VidpipeError(
            f"cannot take the run lock {path}: {exc.strerror or type(exc).__name__}"
        ) from None
    try:
        yield
    finally:
        lock.release()


@contextmanager
def _memory_lock(name: str) -> Iterator[None]:
    with _memory_locks_guard:
        lock = _memory_locks.setdefault(name, threading.Lock())
    if not lock.acquire(blocking=False):
        raise LockHeld(_HELD_MESSAGE.format(how="in-memory database, this process"))
    try:
        yield
    finally:
        lock.release()
