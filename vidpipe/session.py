"""The resources behind the facade (`vidpipe.api.Vidpipe`) and the checks before each call.

A `Session` owns the settings, the database engine, the Mux gateway and the HTTP client for
uploads, each made on first use and closed by `close()` (or the `with` block), and makes
the one preflight every call that talks to Mux goes through (`_preflight`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar

from vidpipe.config import Settings, load_settings
from vidpipe.progress import Notify
from vidpipe.targets import Target, choose

if TYPE_CHECKING:
    import httpx
    from sqlalchemy import Engine

    from vidpipe.mux import Environment, MuxGateway, Stats

Checked = TypeVar("Checked")


def _quiet(_message: str) -> None:
    pass


class Session:
    """What one `Vidpipe` owns (see there), and the checks every call of it makes first."""

    gateway_defaults: ClassVar[dict[str, Any]] = {}
    """Keyword arguments for every `MuxGateway` a Vidpipe builds (e.g. `retry`, `pace`): a
    public switch for tests and benchmarks, so they never patch private names."""

    def __init__(self, settings: Settings | None = None, *, notify: Notify | None = None) -> None:
        self.settings = settings if settings is not None else load_settings()
        self.notify: Notify = notify or _quiet
        self._engine: Engine | None = None
        self._gateway: MuxGateway | None = None
        self._http: httpx.Client | None = None
        self._environment: Environment | None = None
        self._spent: Stats | None = None  # a closed gateway's counts (see mux_stats)
        # Threads may share one Vidpipe: each resource is made once, under this lock (an
        # RLock: the gateway is made with the HTTP client, the environment check needs both).
        self._lock = threading.RLock()

    @classmethod
    def from_env(cls, *, notify: Notify | None = None, **overrides: Any) -> Self:
        """Settings from the environment and `.env`, as the CLI reads them; keyword
        `overrides` (field names such as `database_url`) win over both."""
        return cls(load_settings(**overrides), notify=notify)

    # -- resources ---------------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the gateway and the HTTP client it shares, and dispose of the engine."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._gateway is not None:
            self._gateway.close()
            self._spent = self._gateway.stats
            self._gateway = None
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def _database(self, *, require_tables: bool = True) -> Engine:
        with self._lock:
            if self._engine is None:
                from vidpipe.db import make_engine

                # Only `init_db` creates a SQLite file: any other call on a missing one raises
                # `DatabaseMissing` and leaves nothing behind (read-only commands change
                # nothing on disk, and nothing else can work without the tables anyway).
                url = self.settings.database_url.get_secret_value()
                self._engine = make_engine(url, create=False)
            engine = self._engine
        if require_tables:
            from vidpipe.db import require_tables as check

            check(engine)
        return engine

    @property
    def engine(self) -> Engine:
        """The platform database (its vidpipe tables checked on first use). A SQLite file
        that does not exist raises `DatabaseMissing` (a `ConfigError`); nothing is created."""
        return self._database()

    def mux_stats(self) -> Stats | None:
        """The Mux calls made so far (requests, retries, 429s), also after `close()`; None
        when no gateway was made."""
        return self._gateway.stats if self._gateway is not None else self._spent

    @property
    def gateway(self) -> MuxGateway:
        """The Mux gateway (credentials checked on first use)."""
        with self._lock:
            if self._gateway is None:
                from vidpipe.mux import MuxGateway

                # One httpx client for the upload bytes and the gateway's own requests.
                options = {"http": self.http, **self.gateway_defaults}
                self._gateway = MuxGateway.from_settings(self.settings, **options)
            return self._gateway

    @property
    def http(self) -> httpx.Client:
        """The HTTP client that moves upload bytes."""
        with self._lock:
            if self._http is None:
                import httpx

                # Generous read/write timeouts: one request may carry many MiB on a slow link.
                self._http = httpx.Client(
                    timeout=httpx.Timeout(connect=15.0, read=120.0, write=120.0, pool=15.0),
                    follow_redirects=False,
                )
            return self._http

    def _preflight(
        self, target: Target | None = None, *, check: Callable[[Engine], Checked] | None = None
    ) -> tuple[Engine, MuxGateway, Checked | None]:
        """The checks every call that talks to Mux makes first, in this order, so bad input
        changes nothing anywhere: the database exists and has its tables, the named
        `target`'s row exists, the call's own `check` passes (its result is returned; the
        input's checks: a file, a manifest), the credentials are configured (so a mistyped
        file is named as such, not as a missing token), and then the token's Mux environment
        is the database's (the first Mux request; pins an unpinned database)."""
        engine = self.engine
        self._require_row(engine, target)
        checked = check(engine) if check is not None else None
        self.settings.mux_credentials()
        self.check_environment()
        return engine, self.gateway, checked

    def check_environment(self) -> Environment:
        """The Mux environment of the token, checked against the database's pin (once per
        Vidpipe): pins an unpinned database and says so; raises `EnvironmentMismatch` when
        the database belongs to another environment (nothing is changed then)."""
        with self._lock:  # one whoami and one pin, however many threads ask at once
            if self._environment is None:
                from vidpipe import environment

                engine = self.engine
                current = self.gateway.whoami()
                pinning = environment.check(engine, current)
                if pinning.change is environment.Change.PINNED:
                    self.notify(f"this database now belongs to Mux environment {current}")
                self._environment = pinning.environment
            return self._environment

    @staticmethod
    def _require_row(engine: Engine, target: Target | None) -> None:
        """A named target must exist: bad input is refused before talking to Mux."""
        if target is None:
            return
        from vidpipe.db import transaction
        from vidpipe.errors import TargetNotFound
        from vidpipe.records import read_row

        with transaction(engine) as conn:
            if read_row(conn, target) is None:
                raise TargetNotFound(target)

    def _has_credentials(self) -> bool:
        return bool(self.settings.mux_token_id and self.settings.mux_token_secret)

    @staticmethod
    def _target(lesson: int | None, course: int | None) -> Target:
        """The target named by exactly one of `lesson` / `course` (`TargetChoiceError`)."""
        target = choose(lesson, course)
        assert target is not None  # required: `choose` raises when neither is named
        return target

    @staticmethod
    def _maybe_target(lesson: int | None, course: int | None) -> Target | None:
        """As `_target`, but naming neither is allowed (None: every target)."""
        return choose(lesson, course, required=False)
