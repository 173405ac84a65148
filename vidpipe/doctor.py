"""`vidpipe doctor`: the deployment checked, each finding with what to do about it.

`diagnose(settings)` returns a `Diagnosis`: one `Check` per concern, in this order:
- `settings`: they load, and which variables came from the environment and which from
  `.env` (names only, never a value);
- `mux`: Mux answers at `MUX_BASE_URL` and accepts the token (`GET /system/v1/whoami`);
- `environment`: the database's pinned Mux environment is the token's;
- `database`: reachable, with the platform's tables and vidpipe's own, none missing and none
  lacking a column vidpipe uses (tables of an older version);
- `uploads`: no unfinished upload in the journal untouched for more than a day;
- `clock`: this machine's clock within `CLOCK_TOLERANCE` of the `Date` of Mux's answer
  (webhook signatures older than 300 s are refused, so a drifting clock rejects them all);
- `signing_key`: when set, an ID and a base64-encoded PEM RSA private key;
- `webhook_secret`: set when asked for (`webhooks=True`: this deployment receives webhooks).

It changes nothing anywhere: no Mux call but whoami, no pin, no table, no file. The database
is opened read-only (SQLite with `mode=ro`, so a missing file is reported, never created;
PostgreSQL with read-only transactions). Each probe has its own short timeout and the Mux
probe a hard deadline, so the whole run stays under 5 s when Mux or the database does not
answer. Details and hints never carry a secret: variable names, the masked database URL,
Mux's base URL and environment names only.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import NullPool
from sqlmodel import SQLModel

from vidpipe.config import DOTENV_SHOWN, Settings, dotenv_warning
from vidpipe.db import PLATFORM_TABLES, UploadJournal, mask_url, normalize_url, sqlite_file
from vidpipe.errors import ConfigError, MuxNetworkError, MuxUnauthorized, VidpipeError
from vidpipe.mux import Environment, MuxGateway, RetryPolicy

MUX_DEADLINE = 3.0
"""Seconds the Mux probe may take in all (connect, TLS, the answer), whatever the network."""
MUX_CONNECT_TIMEOUT = 2.0
MUX_READ_TIMEOUT = 2.5
DB_TIMEOUT = 3
"""Seconds to open the database (PostgreSQL's connect_timeout; SQLite's busy wait)."""
CLOCK_TOLERANCE = 60.0
"""Seconds this machine's clock may differ from Mux's (webhook signatures allow 300 s)."""
STALE_UPLOAD = 24 * 3600.0
"""An unfinished upload untouched for longer than this is reported."""
SIGNATURE_WINDOW = 300

NAMES = (
    "settings",
    "mux",
    "environment",
    "database",
    "uploads",
    "clock",
    "signing_key",
    "webhook_secret",
)

_LISTED = 5  # stale uploads named in a detail; the rest are counted


@dataclass(frozen=True)
class Check:
    """One finding: what was found (`detail`) and, when there is something to do, what
    (`hint`). A check that could not be carried out is not `ok`."""

    name: str
    ok: bool
    detail: str
    hint: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "hint": self.hint}


@dataclass(frozen=True)
class Diagnosis:
    """Every check, in `NAMES` order; `ok` when all passed."""

    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def __getitem__(self, name: str) -> Check:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [c.as_json() for c in self.checks]}


def diagnose_loading(load: Callable[[], Settings], *, webhooks: bool = False) -> Diagnosis:
    """`diagnose` with settings from `load()`; settings that do not load (a `ConfigError`,
    which names the variable, never its value) fail the `settings` check instead of raising."""
    try:
        settings = load()
    except ConfigError as exc:
        return _unconfigured(str(exc))
    return diagnose(settings, webhooks=webhooks)


def diagnose(
    settings: Settings, *, webhooks: bool = False, clock: Callable[[], float] = time.time
) -> Diagnosis:
    """Check the deployment `settings` describe; changes nothing anywhere.

    `webhooks`: this deployment receives webhooks, so `MUX_WEBHOOK_SECRET` must be set.
    `clock` is this machine's clock (Unix seconds), compared with Mux's."""
    probe = _MuxProbe(settings, clock)
    probe.start()  # Mux is asked while the database is read
    db = _read_database(settings.database_url.get_secret_value(), clock())
    answer = probe.result()
    return Diagnosis(
        (
            _settings_check(settings),
            _mux_check(settings, answer),
            _environment_check(answer, db),
            _database_check(db),
            _uploads_check(db),
            _clock_check(answer),
            _signing_key_check(settings),
            _webhook_secret_check(settings, webhooks),
        )
    )


def _unconfigured(problem: str) -> Diagnosis:
    first = Check(
        "settings",
        False,
        problem,
        f"fix that variable in the environment or in {DOTENV_SHOWN} (the environment wins)",
    )
    rest = [
        Check(name, False, "not checked: the settings did not load", "fix the settings first")
        for name in NAMES[1:]
    ]
    return Diagnosis((first, *rest))


# -- settings --------------------------------------------------------------------------------


def _settings_check(settings: Settings) -> Check:
    parts = []
    if settings.from_environment:
        parts.append(f"from the environment: {_names(settings.from_environment)}")
    if settings.from_dotenv:
        parts.append(f"from {DOTENV_SHOWN}: {_names(settings.from_dotenv)}")
    given = _given_by_caller(settings)
    if given:
        parts.append(f"given by the caller: {_names(given)}")
    if not parts:
        parts.append("nothing set: every setting has its default")
    if settings.shadowed_in_dotenv:
        parts.append(
            f"{DOTENV_SHOWN} also sets {_names(settings.shadowed_in_dotenv)}, "
            "unused (the environment wins)"
        )
    hint = dotenv_warning(settings)
    if hint is not None:
        hint += "; keep each deployment's settings in one place"
    return Check("settings", True, "; ".join(parts), hint)


def _given_by_caller(settings: Settings) -> frozenset[str]:
    from vidpipe.config import env_name

    named = {env_name(f) for f in settings.model_fields_set}
    return frozenset(named - settings.from_environment - settings.from_dotenv)


def _names(names: Iterable[str]) -> str:
    from vidpipe.config import env_name

    order = [env_name(f) for f in Settings.model_fields]
    return ", ".join(sorted(names, key=lambda n: (order.index(n) if n in order else 99, n)))


# -- Mux: one whoami, under a hard deadline --------------------------------------------------


@dataclass
class _MuxAnswer:
    environment: Environment | None = None
    date: str | None = None
    midpoint: float = 0.0
    """This machine's clock halfway between sending the request and reading the answer."""
    error: VidpipeError | None = None
    answered: bool = False
    """False: no answer within the deadline, or no connection at all."""


class _MuxProbe:
    """whoami in a thread, so that a network that swallows packets (or a name that takes a
    minute to resolve) costs at most `MUX_DEADLINE`; the thread is left to end on its own."""

    def __init__(self, settings: Settings, clock: Callable[[], float]) -> None:
        self._settings = settings
        self._clock = clock
        self._answer = _MuxAnswer()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if not (self._settings.mux_token_id and self._settings.mux_token_secret):
            return
        self._thread = threading.Thread(target=self._ask, name="vidpipe-doctor-mux", daemon=True)
        self._thread.start()

    def _ask(self) -> None:
        answer = _MuxAnswer()
        try:
            gateway = MuxGateway.from_settings(
                self._settings,
                pace=False,
                retry=RetryPolicy(attempts=1),
                timeout=(MUX_CONNECT_TIMEOUT, MUX_READ_TIMEOUT),
            )
        except VidpipeError as exc:
            answer.error = exc
            self._answer = answer
            return
        try:
            sent = self._clock()
            answer.environment, answer.date = gateway.whoami_dated()
            answer.midpoint = (sent + self._clock()) / 2
            answer.answered = True
        except MuxNetworkError as exc:
            answer.error = exc
        except VidpipeError as exc:
            answer.error, answer.answered = exc, True
        finally:
            gateway.close()
        self._answer = answer

    def result(self) -> _MuxAnswer | None:
        """The answer, or None when no token is configured."""
        if self._thread is None:
            return None
        self._thread.join(MUX_DEADLINE)
        if self._thread.is_alive():
            return _MuxAnswer(error=MuxNetworkError(f"no answer within {MUX_DEADLINE:g} s"))
        return self._answer


def _mux_check(settings: Settings, answer: _MuxAnswer | None) -> Check:
    where = settings.mux_base_url
    if answer is None:
        return Check(
            "mux",
            False,
            "MUX_TOKEN_ID and MUX_TOKEN_SECRET are not both set",
            f"set them (environment or {DOTENV_SHOWN}) to a Mux access token of this "
            "deployment's environment",
        )
    if answer.environment is not None:
        return Check("mux", True, f"Mux at {where} accepted the token ({answer.environment})")
    if not answer.answered:
        return Check(
            "mux",
            False,
            f"Mux did not answer at {where} ({_reason(answer.error)})",
            "check the network, a proxy or firewall, and MUX_BASE_URL; "
            "Mux's own state: https://status.mux.com",
        )
    if isinstance(answer.error, MuxUnauthorized):
        return Check(
            "mux",
            False,
            f"Mux at {where} refused the token ({answer.error.status or 401})",
            "MUX_TOKEN_ID / MUX_TOKEN_SECRET are wrong, revoked, or of another Mux "
            "organisation: create an access token in the Mux dashboard",
        )
    return Check(
        "mux",
        False,
        f"Mux at {where} failed to answer whoami: {_reason(answer.error)}",
        "try again in a minute; if it persists, check https://status.mux.com",
    )


def _reason(error: VidpipeError | None) -> str:
    text = str(error) if error is not None else "no answer"
    kind = text.rsplit(": ", 1)[-1]
    return {
        "ReadTimeout": f"no answer within {MUX_READ_TIMEOUT:g} s",
        "ConnectTimeout": f"no connection within {MUX_CONNECT_TIMEOUT:g} s",
        "ConnectError": "could not connect",
    }.get(kind, kind)


def _environment_check(answer: _MuxAnswer | None, db: _DatabaseView) -> Check:
    pinned = db.pin
    if db.problem is not None:
        return Check(
            "environment",
            False,
            "not checked: the database cannot be read",
            "fix the database check first",
        )
    if answer is None or answer.environment is None:
        said = "Mux did not answer" if answer is not None and not answer.answered else None
        told = said or "the token's environment is unknown (see the mux check)"
        owner = (
            f"the database belongs to Mux environment {pinned}"
            if pinned
            else "the database is not pinned yet"
        )
        return Check("environment", False, f"{told}; {owner}", "fix the mux check first")
    current = answer.environment
    if pinned is None:
        return Check(
            "environment",
            True,
            f"the database is not pinned yet: the first command that talks to Mux pins it to "
            f"the token's environment, {current}",
            f"`vidpipe db pin` pins it now, if {current} is this database's environment",
        )
    if pinned.id != current.id:
        return Check(
            "environment",
            False,
            f"the database belongs to Mux environment {pinned}, but the token is for "
            f"{current}: every command that talks to Mux refuses to run",
            f"use a token of Mux environment {pinned} (look at MUX_TOKEN_ID in the environment "
            f"and in {DOTENV_SHOWN}); only if the database really moved to {current}, "
            "run `vidpipe db pin --force`",
        )
    if pinned.name != current.name:
        return Check(
            "environment",
            True,
            f"the database belongs to Mux environment {current.id}, the token's (renamed "
            f"from {pinned.name} to {current.name})",
            "`vidpipe db pin` records the new name",
        )
    return Check("environment", True, f"the database and the token belong to {current}")


def _clock_check(answer: _MuxAnswer | None) -> Check:
    if answer is None or not answer.answered or answer.environment is None:
        said = "Mux did not answer" if answer is not None and not answer.answered else None
        return Check(
            "clock",
            False,
            f"not checked: {said or 'no answer from Mux to read its Date from'}",
            "fix the mux check first",
        )
    server = _parse_date(answer.date)
    if server is None:
        return Check(
            "clock",
            False,
            "Mux's answer carried no readable Date header: the clock cannot be compared",
            "a proxy between this machine and Mux may strip it; check the clock by hand",
        )
    # A Date header has whole seconds: Mux's clock was somewhere in [server, server + 1).
    skew = answer.midpoint - (server + 0.5)
    way = "ahead of" if skew > 0 else "behind"
    if abs(skew) > CLOCK_TOLERANCE:
        return Check(
            "clock",
            False,
            f"this machine's clock is {_span(abs(skew))} {way} Mux's (more than "
            f"{CLOCK_TOLERANCE:g} s off)",
            f"turn on time synchronisation (NTP: chrony or systemd-timesyncd); webhook "
            f"signatures more than {SIGNATURE_WINDOW} s old are refused",
        )
    near = "within 1 s of" if abs(skew) < 1.0 else f"{_span(abs(skew))} {way}"
    return Check("clock", True, f"this machine's clock is {near} Mux's")


def _parse_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _span(seconds: float) -> str:
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, rest = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


# -- the database, read-only -----------------------------------------------------------------


@dataclass
class _DatabaseView:
    """What the database holds, as far as it could be read."""

    shown: str
    problem: str | None = None
    missing_file: bool = False
    tables: set[str] = field(default_factory=set)
    missing_columns: dict[str, list[str]] = field(default_factory=dict)
    pin: Environment | None = None
    stale: list[UploadJournal] = field(default_factory=list)
    journal_problem: str | None = None


def read_only_engine(database_url: str) -> Engine:
    """An engine that cannot change the database: SQLite opened with `mode=ro` (a missing
    file raises `FileNotFoundError` and is not created), PostgreSQL in read-only
    transactions with a short connect timeout. ConfigError for a URL it cannot use."""
    url_text = normalize_url(database_url)
    try:
        url = make_url(url_text)
    except (ArgumentError, ValueError):
        raise ConfigError("DATABASE_URL is not a valid SQLAlchemy URL") from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        path = sqlite_file(url)
        if path is None:
            return create_engine("sqlite://", poolclass=NullPool, hide_parameters=True)
        if not path.exists():
            raise FileNotFoundError(str(path))
        uri = f"file:{quote(str(path))}?mode=ro"

        def connect() -> sqlite3.Connection:
            return sqlite3.connect(uri, uri=True, timeout=DB_TIMEOUT, check_same_thread=False)

        return create_engine("sqlite://", creator=connect, poolclass=NullPool, hide_parameters=True)
    connect_args: dict[str, Any] = {}
    if backend == "postgresql":
        options = str(url.query.get("options") or "")
        connect_args["options"] = f"{options} -c default_transaction_read_only=on".strip()
        if "connect_timeout" not in url.query:
            connect_args["connect_timeout"] = DB_TIMEOUT
    try:
        return create_engine(
            url, connect_args=connect_args, poolclass=NullPool, hide_parameters=True
        )
    except (ArgumentError, ImportError) as exc:
        raise ConfigError(
            f"DATABASE_URL names a database driver vidpipe cannot load ({url.drivername})"
        ) from exc


def _read_database(database_url: str, now: float) -> _DatabaseView:
    view = _DatabaseView(shown=mask_url(database_url))
    try:
        engine = read_only_engine(database_url)
    except FileNotFoundError as exc:
        view.problem, view.missing_file = f"the SQLite file {exc} does not exist", True
        return view
    except ConfigError as exc:
        view.problem = str(exc)
        return view
    try:
        _read_tables(engine, view)
        if view.problem is None:
            _read_vidpipe_rows(engine, view, now)
    finally:
        engine.dispose()
    return view


def _read_tables(engine: Engine, view: _DatabaseView) -> None:
    try:
        inspector = inspect(engine)
        view.tables = set(inspector.get_table_names())
        for table in SQLModel.metadata.sorted_tables:
            if table.name in view.tables:
                have = {c["name"] for c in inspector.get_columns(table.name)}
                lacking = [c.name for c in table.columns if c.name not in have]
                if lacking:
                    view.missing_columns[table.name] = lacking
    except SQLAlchemyError as exc:
        view.problem = f"cannot open the database: {_one_line(exc)}"


def _read_vidpipe_rows(engine: Engine, view: _DatabaseView, now: float) -> None:
    from vidpipe import journal
    from vidpipe.db import EnvironmentPin
    from vidpipe.environment import read_pin

    try:
        if _complete(view, EnvironmentPin.__tablename__):
            view.pin = read_pin(engine)
        if _complete(view, UploadJournal.__tablename__):
            view.stale = [
                e for e in journal.all_unfinished(engine) if now - _seconds(e) > STALE_UPLOAD
            ]
    except (VidpipeError, SQLAlchemyError) as exc:
        view.journal_problem = _one_line(exc)


def _complete(view: _DatabaseView, table: Any) -> bool:
    return str(table) in view.tables and str(table) not in view.missing_columns


def _seconds(entry: UploadJournal) -> float:
    when = entry.updated_at or entry.created_at
    if when.tzinfo is None:  # SQLite keeps no zone: vidpipe writes UTC
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _one_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _database_check(db: _DatabaseView) -> Check:
    if db.problem is not None:
        hint = (
            "check DATABASE_URL (a relative sqlite path is read from the working folder); "
            "`vidpipe db init` creates a new database"
            if db.missing_file
            else "check DATABASE_URL, and that the database server runs and lets this user in"
        )
        return Check("database", False, f"{db.shown}: {db.problem}", hint)
    platform = [t for t in PLATFORM_TABLES if t not in db.tables]
    ours = [t.name for t in SQLModel.metadata.sorted_tables if t.name not in PLATFORM_TABLES]
    missing = [t for t in ours if t not in db.tables]
    if platform and len(missing) == len(ours):
        return Check(
            "database",
            False,
            f"{db.shown} has none of the tables vidpipe uses ({', '.join(PLATFORM_TABLES)}, "
            f"{', '.join(ours)})",
            "point DATABASE_URL at the platform's database; on a new one, run `vidpipe db init`",
        )
    if missing:
        older = len(missing) < len(ours)
        found = (
            f"tables of an older vidpipe: {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} missing"
            if older
            else f"vidpipe's tables are missing ({', '.join(missing)})"
        )
        return Check(
            "database",
            False,
            f"{db.shown}: {found}; every other command refuses to run",
            "run `vidpipe db init`: it adds the missing tables and changes nothing that exists",
        )
    if platform:
        return Check(
            "database",
            False,
            f"{db.shown} lacks the platform's table(s) {', '.join(platform)}",
            "DATABASE_URL may name the wrong database; on a new one, `vidpipe db init` "
            "creates them",
        )
    if db.missing_columns:
        lacking = "; ".join(
            f"{table} lacks {', '.join(cols)}" for table, cols in sorted(db.missing_columns.items())
        )
        return Check(
            "database",
            False,
            f"{db.shown}: {lacking}",
            "`vidpipe db init` never alters a table: add the columns with a migration of the "
            "platform's schema (vidpipe_* tables: rename the old table aside, then "
            "`vidpipe db init`)",
        )
    return Check(
        "database",
        True,
        f"{db.shown} is reachable, with the platform's tables and vidpipe's "
        f"{len(ours)} table{'s' if len(ours) != 1 else ''}",
    )


def _uploads_check(db: _DatabaseView) -> Check:
    if db.problem is not None or db.journal_problem is not None:
        return Check(
            "uploads",
            False,
            f"not checked: {db.journal_problem or 'the database cannot be read'}",
            "fix the database check first",
        )
    if not _complete(db, UploadJournal.__tablename__):
        return Check("uploads", True, "no upload journal yet: no unfinished upload")
    if not db.stale:
        return Check("uploads", True, "no unfinished upload older than a day")
    named = ", ".join(
        f"{e.target_kind} {e.target_id} ({e.state}, last step "
        f"{datetime.fromtimestamp(_seconds(e), UTC):%Y-%m-%d %H:%M} UTC)"
        for e in db.stale[:_LISTED]
    )
    more = f" and {len(db.stale) - _LISTED} more" if len(db.stale) > _LISTED else ""
    count = len(db.stale)
    return Check(
        "uploads",
        False,
        f"{count} unfinished upload{'s' if count != 1 else ''} untouched for more than a day: "
        f"{named}{more}",
        "re-run the same upload or import to resume it, or run `vidpipe sync`: it finishes "
        "what Mux completed and closes what Mux ended",
    )


# -- keys and secrets ------------------------------------------------------------------------


def _signing_key_check(settings: Settings) -> Check:
    from vidpipe.assets import SIGNED
    from vidpipe.playback import SigningKey

    key_id, key = settings.mux_signing_key_id, settings.mux_signing_key
    if not key_id and not key:
        policies = settings.playback_policies()
        if SIGNED in (policies.lesson, policies.course):
            return Check(
                "signing_key",
                True,
                "not set, while new assets get signed playback IDs: `vidpipe url` cannot sign "
                "their links",
                "set MUX_SIGNING_KEY_ID and MUX_SIGNING_KEY (a signing key from the Mux "
                "dashboard) if links are made with vidpipe",
            )
        return Check("signing_key", True, "not set (needed only to sign playback links)")
    try:
        signing = SigningKey.from_settings(settings)
    except ConfigError as exc:
        return Check(
            "signing_key",
            False,
            str(exc),
            "copy the signing key as the Mux dashboard gives it: MUX_SIGNING_KEY_ID its ID, "
            "MUX_SIGNING_KEY the base64-encoded private key, whole",
        )
    bits = getattr(signing.private_key, "key_size", None)
    size = f" of {bits} bits" if bits else ""
    return Check("signing_key", True, f"MUX_SIGNING_KEY is an RSA private key{size}")


def _webhook_secret_check(settings: Settings, asked: bool) -> Check:
    if settings.mux_webhook_secret:
        where = _source(settings, "MUX_WEBHOOK_SECRET")
        return Check("webhook_secret", True, f"MUX_WEBHOOK_SECRET is set{where}")
    if asked:
        return Check(
            "webhook_secret",
            False,
            "MUX_WEBHOOK_SECRET is not set: `vidpipe webhook serve` cannot verify Mux's "
            "webhooks and refuses to start",
            "copy the webhook's signing secret from the Mux dashboard (Settings, Webhooks) "
            "into MUX_WEBHOOK_SECRET",
        )
    return Check(
        "webhook_secret", True, "MUX_WEBHOOK_SECRET is not set (needed only to receive webhooks)"
    )


def _source(settings: Settings, name: str) -> str:
    if name in settings.from_environment:
        return " (from the environment)"
    if name in settings.from_dotenv:
        return f" (from {DOTENV_SHOWN})"
    return ""
