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
from dataclasses import replace as replace_fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from vidpipe.assets import AssetSettings
from vidpipe.config import Settings, load_settings
from vidpipe.errors import UsageError
from vidpipe.progress import OnProgress, ignore
from vidpipe.targets import Kind, Target, choose
from vidpipe.units import AUTO_CHUNK

if TYPE_CHECKING:
    import httpx
    from sqlalchemy import Engine

    from vidpipe.delete import DeletePlan, DeleteResult
    from vidpipe.download import DownloadResult
    from vidpipe.download import Observer as DownloadObserver
    from vidpipe.environment import Pinning
    from vidpipe.export import ExportObserver, ExportReport
    from vidpipe.importer import ImportReport, Observer
    from vidpipe.mux import Environment, MuxGateway
    from vidpipe.pipeline import UploadOptions, UploadOutcome
    from vidpipe.playback import PlaybackUrls
    from vidpipe.reconcile import Report
    from vidpipe.status import StatusReport
    from vidpipe.webhooks import EventOutcome

Progress = Callable[[int, int], None]
Notify = Callable[[str], None]

DEFAULT_WAIT_TIMEOUT = 30 * 60.0
DEFAULT_ORPHAN_MIN_AGE = 24 * 3600.0
DEFAULT_URL_EXPIRY = 6 * 3600.0


def _quiet(_message: str) -> None:
    pass


class Vidpipe:
    """One platform database and one Mux environment, as configured by `settings`.

    `notify` receives progress messages meant for a person ("resuming the unfinished
    upload ..."); the default drops them.

    A database belongs to one Mux environment: every method that talks to Mux first checks
    the token's environment (one whoami per Vidpipe), after its input checks and before any
    other Mux call or database write. An unpinned database is pinned to it (announced through
    `notify`); another environment raises `EnvironmentMismatch` and changes nothing.
    """

    gateway_defaults: ClassVar[dict[str, Any]] = {}
    """Keyword arguments for every `MuxGateway` a Vidpipe builds (e.g. `retry`, `pace`): a
    public switch for tests and benchmarks, so they never patch private names."""

    download_defaults: ClassVar[dict[str, Any]] = {}
    """Keyword arguments for every `Downloader` (e.g. `retry`, the download's back-off): the
    same kind of switch for downloads."""

    def __init__(self, settings: Settings | None = None, *, notify: Notify | None = None) -> None:
        self.settings = settings if settings is not None else load_settings()
        self.notify: Notify = notify or _quiet
        self._engine: Engine | None = None
        self._gateway: MuxGateway | None = None
        self._http: httpx.Client | None = None
        self._environment: Environment | None = None

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
        """Close the gateway and the HTTP client it shares, and dispose of the engine."""
        if self._gateway is not None:
            self._gateway.close()
            self._gateway = None
        if self._http is not None:
            self._http.close()
            self._http = None
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

            # One httpx client for the upload bytes and the gateway's own requests.
            options = {"http": self.http, **self.gateway_defaults}
            self._gateway = MuxGateway.from_settings(self.settings, **options)
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
        """Credentials and database checked before any Mux call, then the token's
        environment; then both."""
        self.settings.mux_credentials()
        engine = self.engine
        self.check_environment()
        return engine, self.gateway

    def check_environment(self) -> Environment:
        """The Mux environment of the token, checked against the database's pin (once per
        Vidpipe): pins an unpinned database and says so; raises `EnvironmentMismatch` when
        the database belongs to another environment (nothing is changed then)."""
        if self._environment is None:
            from vidpipe import environment

            engine = self.engine
            current = self.gateway.whoami()
            pinning = environment.check(engine, current)
            if pinning.change is environment.Change.PINNED:
                self.notify(f"this database now belongs to Mux environment {current}")
            self._environment = pinning.environment
        return self._environment

    def _require_row(self, target: Target | None) -> None:
        """A named target must exist: bad input is refused before talking to Mux."""
        if target is None:
            return
        from vidpipe.db import transaction
        from vidpipe.errors import TargetNotFound
        from vidpipe.records import read_row

        with transaction(self.engine) as conn:
            if read_row(conn, target) is None:
                raise TargetNotFound(target)

    # -- commands ----------------------------------------------------------------------------

    def init_db(self) -> list[str]:
        """Create the missing tables; return their names. Changes nothing that exists, but
        for clearing the upload URLs (bearer credentials) an older vidpipe kept in its journal."""
        from vidpipe import journal
        from vidpipe.db import init_db

        engine = self._database(require_tables=False)
        created = init_db(engine)
        journal.forget_upload_urls(engine)
        return created

    def pin_environment(self, *, force: bool = False) -> Pinning:
        """Pin the database to the token's Mux environment: records an unpinned database,
        follows a renamed environment (same ID), and moves a database pinned to another
        environment only with `force` (else `EnvironmentMismatch`)."""
        from vidpipe import environment

        self.settings.mux_credentials()
        engine = self.engine
        pinning = environment.pin(engine, self.gateway.whoami(), force=force)
        self._environment = pinning.environment
        return pinning

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
        settings: AssetSettings | None = None,
        **asset_options: Any,
    ) -> UploadOutcome:
        """Upload a video to a lesson or course: `source` is a file (resumable: calling again
        with the same file continues the same Mux upload) or an `http(s)://` URL that Mux
        fetches itself. Waits for the asset unless `wait` is false, and records the asset and
        its playback ID of the upload's policy on the row. `chunk_size` None (or 0) sizes each
        request adaptively; otherwise a multiple of 256 KiB is used as given.

        The asset is created with the configured asset settings, each overridden by a keyword
        of `AssetSettings.override` (`playback_policy`, `video_quality`, `max_resolution`,
        `captions`, `static_renditions`, `normalize_audio`, `test`), or with `settings` as
        given (from `asset_settings`)."""
        from vidpipe.pipeline import Pipeline

        target = self._target(lesson, course)
        options = self._upload_options(
            target.kind,
            chunk_size=chunk_size,
            replace=replace,
            wait=wait,
            timeout=timeout,
            settings=settings,
            **asset_options,
        )
        self.settings.mux_credentials()
        pipeline = Pipeline(self.engine, self.gateway, self.http, notify=self.notify)
        prepared = pipeline.prepare(source, target, options)  # no Mux call, no write
        self._mux_and_db()
        return pipeline.upload(prepared, options, on_progress=on_progress)

    def import_manifest(
        self,
        manifest: str | Path,
        *,
        jobs: int = 4,
        replace: bool = False,
        wait: bool = True,
        dry_run: bool = False,
        timeout: float = DEFAULT_WAIT_TIMEOUT,
        chunk_size: int | None = None,
        observer: Observer | None = None,
        settings: AssetSettings | None = None,
        **asset_options: Any,
    ) -> ImportReport:
        """Upload every item of a manifest (CSV or JSON Lines: `source` and `lesson` or
        `course`), `jobs` at a time. Every line is checked first: a bad one raises
        `ManifestError` (a `UsageError` naming each bad line) and nothing is changed.
        Re-running the same manifest skips the items done and resumes those in flight;
        several processes may run it at once. Every item's asset is created as `upload`
        would create it: the configured settings of its kind (lesson or course), overridden
        by `asset_options` (or `settings` as given). The report's `ok` is False when an item
        failed.
        """
        from vidpipe import importer
        from vidpipe import manifest as manifests
        from vidpipe.pipeline import Pipeline

        if not 1 <= jobs <= importer.MAX_JOBS:
            raise UsageError(f"the number of parallel jobs must be 1..{importer.MAX_JOBS}")
        options = {
            kind: self._upload_options(
                kind,
                chunk_size=chunk_size,
                replace=replace,
                wait=wait,
                timeout=timeout,
                settings=settings,
                **asset_options,
            )
            for kind in Kind
        }
        if not dry_run:
            self.settings.mux_credentials()
        path = Path(manifest)
        items = manifests.load(path, self.engine, replace=replace)  # no Mux call, no write
        if dry_run:
            return importer.plan(path, items)
        engine, gateway = self._mux_and_db()
        # Other processes may share the environment's budget: 429s are waited out.
        patience = max(gateway.retry.rate_limit_patience, importer.RATE_LIMIT_PATIENCE)
        gateway.retry = replace_fields(gateway.retry, rate_limit_patience=patience)
        pipeline = Pipeline(engine, gateway, self.http, notify=self.notify)
        runner = importer.Importer(engine, gateway, pipeline, options, jobs=jobs, observer=observer)
        return runner.run(path, items)

    def download(
        self,
        *,
        lesson: int | None = None,
        course: int | None = None,
        path: str | Path | None = None,
        force: bool = False,
        timeout: float = DEFAULT_WAIT_TIMEOUT,
        observer: DownloadObserver | None = None,
    ) -> DownloadResult:
        """The row's original (the asset's master) to `path` (default `lesson-ID.mp4` /
        `course-ID.mp4` in the working directory), through `path.part`: calling again after
        an interruption continues it. Master access is `temporary` for the download and
        `none` after it. An existing `path` needs `force`; no row, a row with no video, or
        an existing `path` raise `UsageError` before Mux is asked anything."""
        from vidpipe import download

        target = self._target(lesson, course)
        if timeout < 0:
            raise UsageError("the wait timeout must not be negative")
        self.settings.mux_credentials()
        planned = download.check(self.engine, target, Path(path) if path else None, force=force)
        self._mux_and_db()
        return self._downloader(timeout).download(planned, observer)

    def export(
        self,
        directory: str | Path,
        *,
        lesson: int | None = None,
        course: int | None = None,
        jobs: int = 4,
        timeout: float = DEFAULT_WAIT_TIMEOUT,
        observer: ExportObserver | None = None,
    ) -> ExportReport:
        """Every row with a video (or the one named) downloaded into `directory` as
        `lesson-ID.mp4` / `course-ID.mp4`, `jobs` at a time, and `directory/manifest.csv`
        that `import_manifest` takes back. Files already complete are skipped (no Mux call);
        partial ones are continued. The report's `ok` is False when an item failed."""
        from vidpipe import export

        target = self._target(lesson, course, required=False)
        if not 1 <= jobs <= export.MAX_JOBS:
            raise UsageError(f"the number of parallel jobs must be 1..{export.MAX_JOBS}")
        if timeout < 0:
            raise UsageError("the wait timeout must not be negative")
        self.settings.mux_credentials()
        folder = Path(directory)
        found = export.rows(self.engine, target)  # no Mux call, no write
        export.prepare_dir(folder)
        self._mux_and_db()
        runner = export.Exporter(self._downloader(timeout), jobs=jobs, observer=observer)
        return runner.run(folder, found)

    def _downloader(self, timeout: float) -> Any:
        from vidpipe.download import Downloader

        return Downloader(self.gateway, self.http, timeout=timeout, **self.download_defaults)

    def asset_settings(self, kind: str = "lesson", **overrides: Any) -> AssetSettings:
        """The settings a new asset of `kind` (`lesson` or `course`) is created with: the
        configured ones, each overridden by a keyword of `AssetSettings.override` (checked:
        `InvalidAssetSetting`, a `UsageError`, names the setting and the allowed values)."""
        return self.settings.asset_settings(str(kind)).override(**overrides)

    def url(
        self,
        *,
        lesson: int | None = None,
        course: int | None = None,
        expires: float = DEFAULT_URL_EXPIRY,
    ) -> PlaybackUrls:
        """The row's stream and thumbnail URLs; signed (a token valid for `expires` seconds)
        when Mux reports the recorded playback ID as signed."""
        from vidpipe.playback import check_lifetime, playback_urls

        check_lifetime(expires)
        target = self._target(lesson, course)
        self.settings.mux_credentials()
        self._require_row(target)
        return playback_urls(*self._mux_and_db(), target, self.settings, expires=expires)

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
        self.settings.mux_credentials()
        self._require_row(target)
        engine, gateway = self._mux_and_db()
        with self._watching(on_progress) as watch:
            report = status(engine, gateway, target, on_progress=watch)
        report.environment = self._environment
        return report

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
        self.settings.mux_credentials()
        self._require_row(target)
        policies = self.settings.playback_policies()
        engine, gateway = self._mux_and_db()
        with self._watching(on_progress) as watch:
            report = reconcile.verify(engine, gateway, target, policies=policies, on_progress=watch)
        report.environment = self._environment
        return report

    def sync(
        self,
        *,
        dry_run: bool = False,
        prune_orphans: bool = False,
        orphan_min_age: float = DEFAULT_ORPHAN_MIN_AGE,
        max_deletes: int = 10,
        max_clears: int | None = 10,
        fix_policy: bool = False,
        before_apply: Callable[[], None] | None = None,
        on_progress: OnProgress | None = None,
    ) -> Report:
        """Make the database agree with Mux (one sync at a time). A plan that would clear more
        than `max_clears` rows (None: no limit) changes nothing and reports `blocked`. Policy
        drift is reported, and repaired only with `fix_policy`. `before_apply` is called after
        planning, before the first write (a hook for tests); `on_progress(event)` hears the
        walk and the changes applied."""
        from vidpipe import reconcile

        if orphan_min_age < 0:
            raise UsageError("the minimum orphan age must not be negative")
        if max_deletes < 0:
            raise UsageError("the deletion limit must not be negative")
        if max_clears is not None and max_clears < 0:
            raise UsageError("the clear limit must not be negative")
        options = reconcile.SyncOptions(
            dry_run=dry_run,
            prune_orphans=prune_orphans,
            orphan_min_age=orphan_min_age,
            max_deletes=max_deletes,
            max_clears=max_clears,
            fix_policy=fix_policy,
            policies=self.settings.playback_policies(),
        )
        engine, gateway = self._mux_and_db()
        with self._watching(on_progress) as watch:
            report = reconcile.sync(
                engine, gateway, options, before_apply=before_apply, on_progress=watch
            )
        report.environment = self._environment
        return report

    def plan_delete(
        self,
        *,
        asset_id: str | None = None,
        lesson: int | None = None,
        course: int | None = None,
    ) -> DeletePlan:
        """What `delete` would do: the asset and the rows that name it. Changes nothing."""
        from vidpipe.delete import check_on_mux, choose_asset, plan_rows

        asset_id = choose_asset(asset_id, lesson, course)
        target = self._target(lesson, course, required=False)
        self.settings.mux_credentials()
        plan = plan_rows(self.engine, asset_id=asset_id, target=target)
        _engine, gateway = self._mux_and_db()
        return check_on_mux(gateway, plan)

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
        credentials configured, the token's environment is checked and the event confirmed
        with Mux. An event from another environment than the database's is ignored."""
        from vidpipe.environment import read_pin
        from vidpipe.webhooks import handle_event, read_event

        secret = self.settings.webhook_secret() if verify else None
        engine = self.engine
        event = read_event(body, secret=secret, signature=signature, verify=verify)
        gateway = None
        if self._has_credentials():
            _engine, gateway = self._mux_and_db()
        pinned = self._environment or read_pin(engine)
        return handle_event(
            engine,
            event,
            gateway=gateway,
            environment=pinned,
            policies=self.settings.playback_policies(),
        )

    def serve_webhooks(self, *, host: str, port: int, log: Notify) -> None:
        """Serve Mux webhooks until SIGTERM/SIGINT (blocking)."""
        from vidpipe.environment import read_pin
        from vidpipe.webhooks.serve import serve, webhook_gateway

        secret = self.settings.webhook_secret()
        engine = self.engine
        if self._has_credentials():
            self.check_environment()  # the token's environment, once, before serving
        pinned = self._environment or read_pin(engine)
        gateway = webhook_gateway(self.settings)
        try:
            serve(
                engine,
                secret,
                host=host,
                port=port,
                gateway=gateway,
                environment=pinned,
                log=log,
                policies=self.settings.playback_policies(),
            )
        finally:
            if gateway is not None:
                gateway.close()

    # -- helpers -----------------------------------------------------------------------------

    def _upload_options(
        self,
        kind: Kind,
        *,
        chunk_size: int | None,
        replace: bool,
        wait: bool,
        timeout: float,
        settings: AssetSettings | None = None,
        **asset_options: Any,
    ) -> UploadOptions:
        """The options of one upload to a row of `kind`, shared by `upload` and every item of
        `import_manifest` (the one place per-upload settings are checked and resolved)."""
        from vidpipe.pipeline import UploadOptions

        if timeout < 0:
            raise UsageError("the wait timeout must not be negative")
        if settings is None:
            settings = self.asset_settings(kind, **asset_options)
        elif asset_options:
            settings = settings.override(**asset_options)
        return UploadOptions(
            chunk_size=chunk_size or AUTO_CHUNK,
            replace=replace,
            wait=wait,
            timeout=timeout,
            asset=settings,
        )

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
