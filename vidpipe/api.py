"""`Vidpipe`: the library facade. The CLI is a thin layer over it; a Python program can use it
directly:

    with Vidpipe.from_env() as vp:
        result = vp.upload("intro.mp4", lesson=42)
        print(result.as_json())

It owns the settings, the database engine, the Mux gateway and the HTTP client for uploads,
each made on first use and closed by `close()` (or the `with` block). Every method returns a
result whose `as_json()` is what the CLI's `--json` prints, and raises `VidpipeError`
subclasses (`UsageError` for bad input, before anything is changed) whose messages name no
command-line option.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from vidpipe.config import Settings, load_settings
from vidpipe.errors import UsageError
from vidpipe.progress import OnProgress, ignore
from vidpipe.targets import Target, choose
from vidpipe.units import AUTO_CHUNK

if TYPE_CHECKING:
    import httpx
    from sqlalchemy import Engine

    from vidpipe.delete import DeletePlan, DeleteResult
    from vidpipe.mux import MuxGateway
    from vidpipe.pipeline import UploadOutcome
    from vidpipe.reconcile import Report
    from vidpipe.status import StatusReport
    from vidpipe.webhooks import EventOutcome

Progress = Callable[[int, int], None]
Notify = Callable[[str], None]

DEFAULT_WAIT_TIMEOUT = 30 * 60.0
DEFAULT_ORPHAN_MIN_AGE = 24 * 3600.0


def _quiet(_message: str) -> None:
    pass


class Vidpipe:
    """One platform database and one Mux environment, as configured by `settings`.

    `notify` receives progress messages meant for a person ("resuming the unfinished
    upload ..."); the default drops them.
    """

    gateway_defaults: ClassVar[dict[str, Any]] = {}
    """Keyword arguments for every `MuxGateway` a Vidpipe builds (e.g. `retry`, `pace`): a
    public switch for tests and benchmarks, so they never patch private names."""

    def __init__(self, settings: Settings | None = None, *, notify: Notify | None = None) -> None:
        self.settings = settings if settings is not None else load_settings()
        self.notify: Notify = notify or _quiet
        self._engine: Engine | None = None
        self._gateway: MuxGateway | None = None
        self._http: httpx.Client | None = None

    @classmethod
    def from_env(cls, *, notify: Notify | None = None, **overrides: Any) -> Vidpipe:
        """Settings from the environment and `.env`, as the CLI reads them; keyword
        `overrides` (field names such as `database_url`) win over both."""
        return cls(load_settings(**overrides), notify=notify)

    # -- resources ---------------------------------------------------------------------------

    def __enter__(self) -> Vidpipe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP client and the gateway, and dispose of the engine."""
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._gateway is not None:
            self._gateway.close()
            self._gateway = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def _database(self, *, require_tables: bool = True) -> Engine:
        if self._engine is None:
            from vidpipe.db import make_engine

            self._engine = make_engine(self.settings.database_url.get_secret_value())
        if require_tables:
            from vidpipe.db import require_tables as check

            check(self._engine)
        return self._engine

    @property
    def engine(self) -> Engine:
        """The platform database (its vidpipe tables checked on first use)."""
        return self._database()

    @property
    def gateway(self) -> MuxGateway:
        """The Mux gateway (credentials checked on first use)."""
        if self._gateway is None:
            from vidpipe.mux import MuxGateway

            self._gateway = MuxGateway.from_settings(self.settings, **self.gateway_defaults)
        return self._gateway

    @property
    def http(self) -> httpx.Client:
        """The HTTP client that moves upload bytes."""
        if self._http is None:
            import httpx

            # Generous read/write timeouts: one request may carry many MiB on a slow link.
            self._http = httpx.Client(
                timeout=httpx.Timeout(connect=15.0, read=120.0, write=120.0, pool=15.0),
                follow_redirects=False,
            )
        return self._http

    def _mux_and_db(self) -> tuple[Engine, MuxGateway]:
        """Credentials and database checked before any Mux call, then both."""
        self.settings.mux_credentials()
        engine = self.engine
        return engine, self.gateway

    # -- commands ----------------------------------------------------------------------------

    def init_db(self) -> list[str]:
        """Create the missing tables; return their names. Changes nothing that exists."""
        from vidpipe.db import init_db

        return init_db(self._database(require_tables=False))

    def upload(
        self,
        source: str | Path,
        *,
        lesson: int | None = None,
        course: int | None = None,
        chunk_size: int | None = None,
        replace: bool = False,
        wait: bool = True,
        timeout: float = DEFAULT_WAIT_TIMEOUT,
        on_progress: Progress | None = None,
    ) -> UploadOutcome:
        """Upload a video file to a lesson or course: resumable (calling again with the same
        file continues the same Mux upload), waits for the asset unless `wait` is false, and
        records the asset and playback IDs on the row. `chunk_size` None (or 0) sizes each
        request adaptively; otherwise a multiple of 256 KiB is used as given."""
        from vidpipe.pipeline import Pipeline, UploadOptions

        target = self._target(lesson, course)
        if timeout < 0:
            raise UsageError("the wait timeout must not be negative")
        options = UploadOptions(
            chunk_size=chunk_size or AUTO_CHUNK, replace=replace, wait=wait, timeout=timeout
        )
        engine, gateway = self._mux_and_db()
        pipeline = Pipeline(engine, gateway, self.http, notify=self.notify)
        prepared = pipeline.prepare(Path(source), target, options)
        return pipeline.upload(prepared, options, on_progress=on_progress)

    def status(
        self,
        *,
        lesson: int | None = None,
        course: int | None = None,
        on_progress: OnProgress | None = None,
    ) -> StatusReport:
        """The database and Mux side by side (every target with a video or an unfinished
        upload, or the one named). `on_progress(event)` hears the walk (`vidpipe.progress`)."""
        from vidpipe.status import status

        target = self._target(lesson, course, required=False)
        engine, gateway = self._mux_and_db()
        with self._watching(on_progress) as watch:
            return status(engine, gateway, target, on_progress=watch)

    def verify(
        self,
        *,
        lesson: int | None = None,
        course: int | None = None,
        on_progress: OnProgress | None = None,
    ) -> Report:
        """Read-only comparison of the database with Mux; `result.ok` is False on drift.
        `on_progress(event)` hears the walk: assets listed, rows checked, API calls, waits."""
        from vidpipe import reconcile

        target = self._target(lesson, course, required=False)
        engine, gateway = self._mux_and_db()
        with self._watching(on_progress) as watch:
            return reconcile.verify(engine, gateway, target, on_progress=watch)

    def sync(
        self,
        *,
        dry_run: bool = False,
        prune_orphans: bool = False,
        orphan_min_age: float = DEFAULT_ORPHAN_MIN_AGE,
        max_deletes: int = 10,
        before_apply: Callable[[], None] | None = None,
        on_progress: OnProgress | None = None,
    ) -> Report:
        """Make the database agree with Mux (one sync at a time). `before_apply` is called
        after planning, before the first write (a hook for tests); `on_progress(event)` hears
        the walk and the changes applied."""
        from vidpipe import reconcile

        if orphan_min_age < 0:
            raise UsageError("the minimum orphan age must not be negative")
        if max_deletes < 0:
            raise UsageError("the deletion limit must not be negative")
        options = reconcile.SyncOptions(
            dry_run=dry_run,
            prune_orphans=prune_orphans,
            orphan_min_age=orphan_min_age,
            max_deletes=max_deletes,
        )
        engine, gateway = self._mux_and_db()
        with self._watching(on_progress) as watch:
            return reconcile.sync(
                engine, gateway, options, before_apply=before_apply, on_progress=watch
            )

    def plan_delete(
        self,
        *,
        asset_id: str | None = None,
        lesson: int | None = None,
        course: int | None = None,
    ) -> DeletePlan:
        """What `delete` would do: the asset and the rows that name it. Changes nothing."""
        from vidpipe.delete import plan_delete

        if sum(x is not None for x in (asset_id, lesson, course)) != 1:
            raise UsageError("name exactly one of an asset, a lesson or a course")
        if asset_id is not None and not asset_id.strip():
            raise UsageError("the asset id is empty")
        target = self._target(lesson, course, required=False)
        engine, gateway = self._mux_and_db()
        return plan_delete(
            engine, gateway, asset_id=asset_id.strip() if asset_id else None, target=target
        )

    def delete(
        self,
        plan: DeletePlan | None = None,
        *,
        asset_id: str | None = None,
        lesson: int | None = None,
        course: int | None = None,
        on_progress: OnProgress | None = None,
    ) -> DeleteResult:
        """Delete the asset from Mux, then clear it from every row that names it.
        `on_progress(event)` hears the step and its API calls and waits."""
        from vidpipe.delete import delete

        if plan is None:
            plan = self.plan_delete(asset_id=asset_id, lesson=lesson, course=course)
        engine, gateway = self._mux_and_db()
        with self._watching(on_progress) as watch:
            return delete(engine, gateway, plan, on_progress=watch)

    def apply_webhook(
        self, body: bytes, *, signature: str | None = None, verify: bool = True
    ) -> EventOutcome:
        """Verify (unless `verify` is false), parse and apply one raw Mux event. With Mux
        credentials configured, the event is confirmed with Mux first."""
        from vidpipe.webhooks import apply_payload

        secret = self.settings.webhook_secret() if verify else None
        engine = self.engine
        gateway = self.gateway if self._has_credentials() else None
        return apply_payload(
            engine, body, secret=secret, signature=signature, verify=verify, gateway=gateway
        )

    def serve_webhooks(self, *, host: str, port: int, log: Notify) -> None:
        """Serve Mux webhooks until SIGTERM/SIGINT (blocking)."""
        from vidpipe.webhooks.serve import serve, webhook_gateway

        secret = self.settings.webhook_secret()
        engine = self.engine
        gateway = webhook_gateway(self.settings)
        try:
            serve(engine, secret, host=host, port=port, gateway=gateway, log=log)
        finally:
            if gateway is not None:
                gateway.close()

    # -- helpers -----------------------------------------------------------------------------

    @contextmanager
    def _watching(self, on_progress: OnProgress | None) -> Iterator[OnProgress]:
        """`on_progress` (or a no-op) for the walk, and told of the gateway's requests and
        waits for as long as the walk lasts."""
        watch = on_progress or ignore
        gateway = self.gateway
        previous = gateway.on_progress
        gateway.on_progress = watch
        try:
            yield watch
        finally:
            gateway.on_progress = previous

    def _has_credentials(self) -> bool:
        return bool(self.settings.mux_token_id and self.settings.mux_token_secret)

    @staticmethod
    def _target(lesson: int | None, course: int | None, *, required: bool = True) -> Target:
        target = choose(lesson, course, required=required)
        return target  # type: ignore[return-value]
