"""Storage: the platform's tables, vidpipe's own `vidpipe_*` tables, engines and transactions.

The platform owns `lesson` and `world`: vidpipe maps only the columns it uses, so a richer real
schema (foreign keys, NOT NULL columns with defaults, text bodies) is read and written safely.
`init_db` creates only what is missing and alters nothing that exists.

What vidpipe keeps from view: engines never put bound parameters (signed upload URLs, tokens)
in their error messages (`hide_parameters`); `mask_url` hides passwords; a DATABASE_URL whose
password holds a raw `@` is refused before anything parses a piece of it as a host. A SQLite
database file that vidpipe's engine creates is created readable by its owner only (0600; SQLite
gives its journal and WAL files the same mode); an existing file is never chmod'ed.
"""

from __future__ import annotations

import hashlib
import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import BigInteger, Column, Engine, String, event, inspect
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlmodel import Field, SQLModel, create_engine

from vidpipe.config import UNENCODED_AT, has_unencoded_at
from vidpipe.errors import ConfigError, DatabaseMissing, VidpipeError


def utcnow() -> datetime:
    return datetime.now(UTC)


class Lesson(SQLModel, table=True):
    """The platform's lesson (only the columns vidpipe uses)."""

    __tablename__ = "lesson"
    id: int | None = Field(default=None, primary_key=True)
    title: str | None = None
    mux_asset_id: str | None = Field(default=None, sa_column=Column(String, nullable=True))
    mux_playback_id: str | None = Field(default=None, sa_column=Column(String, nullable=True))


class World(SQLModel, table=True):
    """The platform's course (table `world`; only the columns vidpipe uses)."""

    __tablename__ = "world"
    id: int | None = Field(default=None, primary_key=True)
    title: str | None = None
    mux_preview_asset_id: str | None = Field(default=None, sa_column=Column(String, nullable=True))
    mux_preview_playback_id: str | None = Field(
        default=None, sa_column=Column(String, nullable=True)
    )


class UploadJournal(SQLModel, table=True):
    """One attempt to put a file on a target: every step of the upload pipeline, resumable.
    Read and written only through `vidpipe.journal` (states: `journal.State`)."""

    __tablename__ = "vidpipe_upload"
    id: int | None = Field(default=None, primary_key=True)
    target_kind: str = Field(index=True)
    target_id: int = Field(index=True)
    file_path: str
    file_size: int = Field(sa_column=Column(BigInteger, nullable=False))
    file_mtime_ns: int = Field(sa_column=Column(BigInteger, nullable=False))
    chunk_size: int = Field(sa_column=Column(BigInteger, nullable=False))
    state: str = Field(default="created", index=True)
    upload_id: str | None = Field(default=None, index=True)
    upload_url: str | None = None  # never written: kept for older databases (see journal)
    confirmed_bytes: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    asset_id: str | None = Field(default=None, index=True)
    playback_id: str | None = None
    replace_asset_id: str | None = None
    last_error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class WebhookTombstone(SQLModel, table=True):
    """An asset Mux said is gone (a `deleted` or `errored` event, or a 404 when a `ready` was
    checked), so a late or re-delivered `ready` for it is not recorded: across restarts and
    whichever `webhook serve` process receives it. `sync` prunes rows older than
    `TOMBSTONE_TTL` (Mux retries a delivery for 24 hours)."""

    __tablename__ = "vidpipe_webhook_tombstone"
    asset_id: str = Field(primary_key=True)
    reason: str
    dead_at: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))


class EnvironmentPin(SQLModel, table=True):
    """The Mux environment this database belongs to: one row (`id` 1) once a command first
    talked to Mux. Read and written only through `vidpipe.environment`."""

    __tablename__ = "vidpipe_environment"
    id: int = Field(default=1, primary_key=True)
    environment_id: str
    environment_name: str
    pinned_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


TOMBSTONE_TTL = 7 * 86400
"""Seconds a tombstone is kept: well past Mux's 24 h of webhook retries."""

PLATFORM_TABLES = ("lesson", "world")

# Seconds to wait for a PostgreSQL server to answer (unless the URL says `connect_timeout`).
PG_CONNECT_TIMEOUT = 10
PG_MAX_OVERFLOW = 40


# Query parameters that carry a secret (libpq takes `?password=` as well as `user:pw@`).
_SECRET_QUERY_KEYS = ("password", "passwd", "pwd", "sslpassword", "secret", "token", "key")


# What `mask_url` shows for a URL whose password holds a raw `@` (see `has_unencoded_at`).
_HIDDEN_WHOLE = "<DATABASE_URL hidden: its password has an unencoded @>"


def mask_url(url: str | URL) -> str:
    """The URL with its password hidden (in the userinfo and in query parameters such as
    `?password=`); a URL SQLAlchemy cannot parse, or whose password holds a raw `@` (so that
    a piece of it would show as the host), is hidden whole."""
    raw = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
    if has_unencoded_at(raw):
        return _HIDDEN_WHOLE
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except (ArgumentError, ValueError):
        return "<unparseable DATABASE_URL>"
    secret_keys = [k for k in parsed.query if any(s in k.lower() for s in _SECRET_QUERY_KEYS)]
    if secret_keys:
        parsed = parsed.update_query_dict({k: "***" for k in secret_keys})
    return parsed.render_as_string(hide_password=True).replace("%2A%2A%2A", "***")


def normalize_url(url: str) -> str:
    """`postgresql://` and `postgres://` mean psycopg 3, the driver vidpipe installs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, *, create: bool = True) -> Engine:
    """An engine for DATABASE_URL; a malformed URL or unknown driver is a ConfigError.

    Its errors never show bound parameters. On SQLite, with `create` it creates a missing
    database file with mode 0600 (see the module docstring); without it, connecting to a
    missing file raises `DatabaseMissing` and leaves no file behind.
    """
    url = normalize_url(url)
    if has_unencoded_at(url):
        raise ConfigError(f"DATABASE_URL {UNENCODED_AT}")
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ConfigError("DATABASE_URL is not a valid SQLAlchemy URL") from None
    # hide_parameters: a failing statement's message would otherwise carry its parameters,
    # such as a signed upload URL, into logs and tracebacks.
    kwargs: dict[str, Any] = {"pool_pre_ping": True, "hide_parameters": True}
    if parsed.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"timeout": 30}
    elif parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        # libpq waits for the OS TCP timeout (minutes) on an unanswering host; cron needs a
        # prompt one-line failure instead.
        kwargs["connect_args"] = {"connect_timeout": PG_CONNECT_TIMEOUT}
    if parsed.get_backend_name() == "postgresql":
        # An import holds one connection per worker for its advisory lock while the workers
        # and the poller open short transactions beside them (up to 16 workers).
        kwargs["max_overflow"] = PG_MAX_OVERFLOW
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ArgumentError, ImportError):
        raise ConfigError(
            f"DATABASE_URL names a database driver vidpipe cannot load ({parsed.drivername})"
        ) from None
    if parsed.get_backend_name() == "sqlite":

        def _before_connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> None:
            # Runs before every DBAPI connect; only the first one can find the file missing.
            if create:
                _create_private_sqlite_file(parsed)
            else:
                _open_existing_only(parsed, cargs, cparams)

        event.listen(engine, "do_connect", _before_connect)
        event.listen(engine, "connect", _sqlite_on_connect)
    return engine


def _open_existing_only(url: URL, cargs: list[Any], cparams: dict[str, Any]) -> None:
    """Refuse a SQLite file that does not exist (`DatabaseMissing`), and have SQLite open a
    plain path read-write without creating it (`mode=rw`), so a file removed meanwhile is an
    error, not a new empty database."""
    path = sqlite_file(url)
    if path is None or url.query.get("mode") not in (None, "rwc"):
        return  # in memory, or `mode=ro`/`mode=rw`: SQLite creates nothing
    if not path.exists():
        raise DatabaseMissing(path, mask_url(url))
    if not cparams.get("uri") and cargs:
        cargs[0] = "file:" + quote(str(path)) + "?mode=rw"
        cparams["uri"] = True


def sqlite_file(url: URL) -> Path | None:
    """The absolute path of a SQLite URL's database file; None for an in-memory database."""
    database = url.database or ""
    if database.startswith("file:"):
        # URI filename (`sqlite:///file:app.db?mode=rwc&uri=true`): strip scheme and query.
        database = database[len("file:") :].split("?", 1)[0]
        if "mode=memory" in (url.database or ""):
            return None
    if url.query.get("mode") == "memory":
        return None
    if database in ("", ":memory:"):
        return None
    return Path(os.path.abspath(database))


def _create_private_sqlite_file(url: URL) -> bool:
    """Create the SQLite database file of `url`, empty and with mode 0600, if it is missing.

    SQLite would create it with 0644 (under the usual umask), readable by every local account.
    An empty file is an empty database to SQLite. O_EXCL makes this a no-op for a file that
    exists (the platform's, or one another process just created): an existing file is never
    touched. URLs that must not create a file (`mode=ro`, `mode=rw`) and URI filenames this
    cannot map to a path are left to SQLite. Returns whether it created the file.
    """
    mode = url.query.get("mode")
    if mode not in (None, "rwc"):
        return False
    database = url.database or ""
    if database.startswith("file:"):
        rest = database[len("file:") :].split("?", 1)[0]
        if "%" in rest or (rest.startswith("//") and not rest.startswith("///")):
            return False  # percent-escapes or a URI authority: not a plain path
    path = sqlite_file(url)
    if path is None:
        return False
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError:
        # It exists, or its folder does not or is not writable: SQLite reports the latter.
        return False
    try:
        os.fchmod(fd, 0o600)  # the umask may have taken the owner's bits; the file is ours
    finally:
        os.close(fd)
    return True


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # A writer (or a reader meeting a writer's commit) waits up to 30 s for the other instead
    # of failing at once with "database is locked". The journal mode is left as the platform
    # set it: switching the file to WAL would be a lasting change to a database vidpipe
    # does not own.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout = 30000")
    cur.close()


@contextmanager
def transaction(engine: Engine, *, immediate: bool = False) -> Iterator[Connection]:
    """One transaction; database errors become a one-line VidpipeError.

    `immediate`: a writer's transaction whose reads decide what it writes. On SQLite it
    starts with `BEGIN IMMEDIATE`, taking the database's write lock before its first read
    (pysqlite would otherwise read outside any transaction and begin only at the first
    write, so two writers could both act on what they read before either wrote); writers
    wait for each other up to the busy timeout. Threads of one process queue on a lock of
    the engine first, so they wait in turn instead of in SQLite's busy-handler sleeps (which
    give a long tail under load); other processes still meet at `BEGIN IMMEDIATE`. On
    PostgreSQL it changes nothing: writers there serialize on per-asset advisory locks
    (`vidpipe.records.lock_asset`).
    """
    if immediate and engine.dialect.name == "sqlite":
        with _writer_lock(engine), _begin(engine) as conn:
            # pysqlite (legacy transaction control) sees an open transaction after this
            # and issues no BEGIN of its own; its commit/rollback end this one.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn
        return
    with _begin(engine) as conn:
        yield conn


@contextmanager
def _begin(engine: Engine) -> Iterator[Connection]:
    try:
        with engine.begin() as conn:
            yield conn
    except OperationalError as exc:
        raise VidpipeError(f"database error: {_one_line(exc)}") from exc


_writer_locks: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
_writer_locks_guard = threading.Lock()


def _writer_lock(engine: Engine) -> threading.Lock:
    """The in-process queue of an SQLite engine's immediate transactions."""
    with _writer_locks_guard:
        lock = _writer_locks.get(engine)
        if lock is None:
            lock = _writer_locks[engine] = threading.Lock()
        return lock


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for PostgreSQL's advisory locks, derived from `name`.

    Hashing (rather than Python's `hash()`, which is salted per process) gives every vidpipe
    process, on every machine and version, the same key for the same name; the `vidpipe:`
    prefix keeps it apart from keys the platform itself might use.
    """
    digest = hashlib.sha256(f"vidpipe:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _one_line(exc: OperationalError) -> str:
    text = str(exc.orig) if exc.orig is not None else str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def check_connection(engine: Engine) -> None:
    """Fail early, in one line, when the database cannot be reached."""
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        raise VidpipeError(
            f"cannot open the database {mask_url(engine.url)}: {_one_line(exc)}"
        ) from None


def init_db(engine: Engine) -> list[str]:
    """Create the tables that are missing (and a missing SQLite file, mode 0600); return
    their names. Changes nothing that exists."""
    if engine.dialect.name == "sqlite":
        _create_private_sqlite_file(engine.url)
    check_connection(engine)
    existing = set(inspect(engine).get_table_names())
    todo = [t for t in SQLModel.metadata.sorted_tables if t.name not in existing]
    if todo:
        SQLModel.metadata.create_all(engine, tables=todo, checkfirst=True)
    return [t.name for t in todo]


def require_tables(engine: Engine) -> None:
    """Commands other than `db init` need the tables: say how to create them."""
    check_connection(engine)
    existing = set(inspect(engine).get_table_names())
    missing = [t.name for t in SQLModel.metadata.sorted_tables if t.name not in existing]
    if missing:
        raise ConfigError(
            f"the database lacks table(s) {', '.join(missing)}: run `vidpipe db init` first"
        )
