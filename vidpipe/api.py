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

from collections.abc import Callable
from dataclasses import replace as replace_fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from vidpipe.assets import AssetSettings
from vidpipe.errors import UsageError
from vidpipe.progress import ByteProgress, Notify, OnProgress, ignore
from vidpipe.readiness import DEFAULT_WAIT_TIMEOUT
from vidpipe.session import Session
from vidpipe.targets import Kind
from vidpipe.units import AUTO_CHUNK

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from vidpipe.asset_parts import Track
    from vidpipe.captions import CaptionsReport
    from vidpipe.delete import DeletePlan, DeleteResult
    from vidpipe.doctor import Diagnosis
    from vidpipe.download import Downloader, DownloadObserver, DownloadResult
    from vidpipe.environment import Pinning
    from vidpipe.export import ExportObserver, ExportReport
    from vidpipe.importer import ImportReport, Observer
    from vidpipe.manifest import Item
    from vidpipe.mux import MuxGateway
    from vidpipe.pipeline import UploadOptions, UploadOutcome
    from vidpipe.playback import PlaybackUrls
    from vidpipe.reconcile import Report
    from vidpipe.reconcile.settings_plan import Wanted
    from vidpipe.status import StatusReport
    from vidpipe.webhooks import EventOutcome

DEFAULT_ORPHAN_MIN_AGE = 24 * 3600.0
DEFAULT_URL_EXPIRY = 6 * 3600.0


class Vidpipe(Session):
    """One platform database and one Mux environment, as configured by `settings`: the
    commands (`Session`: the resources and the checks before each call).

    `notify` receives progress messages meant for a person ("resuming the unfinished
    upload ..."); the default drops them.

    A database belongs to one Mux environment: every method that talks to Mux first checks
    the token's environment (one whoami per Vidpipe), after its input checks and before any
    other Mux call or database write. An unpinned database is pinned to it (announced through
    `notify`); another environment raises `EnvironmentMismatch` and changes nothing.
    """

    download_defaults: ClassVar[dict[str, Any]] = {}
    """Keyword arguments for every `Downloader` (e.g. `retry`, the download's back-off): a
    public switch for tests and benchmarks, as `gateway_defaults` is for the gateway."""

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

        self.settings.mux_credentials()  # before the database: a configuration error first
        pinning = environment.pin(self.engine, self.gateway.whoami(), force=force)
        self._environment = pinning.environment
        return pinning

    def doctor(self, *, webhooks: bool = False) -> Diagnosis:
        """Check the deployment and say what to fix: the settings, Mux and the token, the
        database's environment, its tables, stale unfinished uploads, the clock, the signing
        key and (with `webhooks`, for a deployment that receives them) the webhook secret.
        Changes nothing anywhere; `result.ok` is False when any check failed."""
        from vidpipe.doctor import diagnose

        return diagnose(self.settings, webhooks=webhooks)

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
        on_progress: ByteProgress | None = None,
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
        from vidpipe.creation import prepare
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
        engine, gateway, prepared = self._preflight(
            check=lambda engine: prepare(engine, source, target, replace=replace)
        )
        assert prepared is not None
        pipeline = Pipeline(engine, gateway, self.http, notify=self.notify)
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
        path = Path(manifest)

        def load(engine: Engine) -> list[Item]:
            return manifests.load(path, engine, replace=replace)  # no Mux call, no write

        if dry_run:
            return importer.plan(path, load(self.engine))
        engine, shared, items = self._preflight(check=load)
        assert items is not None
        # Other processes may share the environment's budget: 429s are waited out (by this
        # call only: the shared gateway keeps its own policy).
        patience = max(shared.retry.rate_limit_patience, importer.RATE_LIMIT_PATIENCE)
        gateway = shared.using(retry=replace_fields(shared.retry, rate_limit_patience=patience))
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
        given = Path(path) if path else None
        _engine, gateway, planned = self._preflight(
            check=lambda engine: download.check(engine, target, given, force=force)
        )
        assert planned is not None
        return self._downloader(gateway, timeout).download(planned, observer)

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

        target = self._maybe_target(lesson, course)
        if not 1 <= jobs <= export.MAX_EXPORT_JOBS:
            raise UsageError(f"the number of parallel jobs must be 1..{export.MAX_EXPORT_JOBS}")
        if timeout < 0:
            raise UsageError("the wait timeout must not be negative")
        folder = Path(directory)
        _engine, gateway, found = self._preflight(
            check=lambda engine: export.check(engine, target, folder)  # no Mux call, no write
        )
        assert found is not None
        runner = export.Exporter(self._downloader(gateway, timeout), jobs=jobs, observer=observer)
        return runner.run(folder, found)

    def _downloader(self, gateway: MuxGateway, timeout: float) -> Downloader:
        from vidpipe.download import Downloader

        return Downloader(gateway, self.http, timeout=timeout, **self.download_defaults)

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
        engine, gateway, _ = self._preflight(target)
        return playback_urls(engine, gateway, target, self.settings, expires=expires)

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

        target = self._maybe_target(lesson, course)
        engine, gateway, _ = self._preflight(target)
        watch = on_progress or ignore
        report = status(engine, gateway.using(on_progress=watch), target, on_progress=watch)
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

        target = self._maybe_target(lesson, course)
        policies = self.settings.playback_policies()
        engine, gateway, _ = self._preflight(target)
        watch = on_progress or ignore
        report = reconcile.verify(
            engine,
            gateway.using(on_progress=watch),
            target,
            policies=policies,
            wanted=self._wanted(),
            on_progress=watch,
        )
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
        fix_settings: bool = False,
        max_fixes: int | None = 100,
        before_apply: Callable[[], None] | None = None,
        on_progress: OnProgress | None = None,
    ) -> Report:
        """Make the database agree with Mux (one sync at a time). A plan that would clear more
        than `max_clears` rows (None: no limit) changes nothing and reports `blocked`. Policy
        drift is reported, and repaired only with `fix_policy`; assets lacking the configured
        captions, static renditions or their row's meta are given them only with
        `fix_settings` (more than `max_fixes` assets to fix: nothing at all is applied).
        `before_apply` is called after planning, before the first write (a hook for tests);
        `on_progress(event)` hears the walk and the changes applied."""
        from vidpipe import reconcile

        if orphan_min_age < 0:
            raise UsageError("the minimum orphan age must not be negative")
        if max_deletes < 0:
            raise UsageError("the deletion limit must not be negative")
        if max_clears is not None and max_clears < 0:
            raise UsageError("the clear limit must not be negative")
        if max_fixes is not None and max_fixes < 0:
            raise UsageError("the fix limit must not be negative")
        options = reconcile.SyncOptions(
            dry_run=dry_run,
            prune_orphans=prune_orphans,
            fix_policy=fix_policy,
            policies=self.settings.playback_policies(),
            orphan_min_age=orphan_min_age,
            max_deletes=max_deletes,
            max_clears=max_clears,
            wanted=self._wanted(),
            fix_settings=fix_settings,
            max_fixes=max_fixes,
        )
        engine, gateway, _ = self._preflight()
        watch = on_progress or ignore
        report = reconcile.sync(
            engine,
            gateway.using(on_progress=watch),
            options,
            before_apply=before_apply,
            on_progress=watch,
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
        target = self._maybe_target(lesson, course)
        _engine, gateway, plan = self._preflight(
            check=lambda engine: plan_rows(engine, asset_id=asset_id, target=target)
        )
        assert plan is not None
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
        engine, gateway, _ = self._preflight()
        watch = on_progress or ignore
        return delete(engine, gateway.using(on_progress=watch), plan, on_progress=watch)

    # -- captions (subtitle files on a target's asset) -----------------------------------

    def captions_add(
        self,
        url: str,
        *,
        language: str,
        lesson: int | None = None,
        course: int | None = None,
        name: str | None = None,
        closed_captions: bool = False,
        wait: bool = True,
    ) -> CaptionsReport:
        """Have Mux fetch the WebVTT or SRT file at `url` as a subtitle track of the target's
        asset; with `wait`, until it is ready (`vidpipe.captions.CaptionFailed` when Mux
        cannot read it). A local path or a non-http(s) URL, a bad language code, a target
        with no row or no video, or a track name already taken: `UsageError`, nothing made."""
        from vidpipe import captions

        target = self._target(lesson, course)
        captions.check_subtitle_url(url)
        captions.check_language(language)
        engine, gateway, _ = self._preflight(
            target, check=lambda engine: captions.recorded_asset(engine, target)
        )
        return captions.add_track(
            engine,
            gateway,
            target,
            url,
            language=language,
            name=name,
            closed_captions=closed_captions,
            wait=wait,
        )

    def captions_list(
        self, *, lesson: int | None = None, course: int | None = None
    ) -> CaptionsReport:
        """The text tracks of the target's asset."""
        from vidpipe import captions

        target = self._target(lesson, course)
        engine, gateway, _ = self._preflight(
            target, check=lambda engine: captions.recorded_asset(engine, target)
        )
        return captions.list_tracks(engine, gateway, target)

    def captions_remove(
        self,
        *,
        lesson: int | None = None,
        course: int | None = None,
        language: str | None = None,
        track: str | None = None,
        confirm: Callable[[list[Track]], bool] | None = None,
    ) -> CaptionsReport:
        """Delete the target's text tracks of `language`, or the text track `track`;
        `confirm(tracks)` may decline. None matching: `UsageError`."""
        from vidpipe import captions

        target = self._target(lesson, course)
        if (language is None) == (track is None):
            raise UsageError("name either a language or a track to remove")
        engine, gateway, _ = self._preflight(
            target, check=lambda engine: captions.recorded_asset(engine, target)
        )
        return captions.remove_tracks(
            engine, gateway, target, language=language, track_id=track, confirm=confirm
        )

    def _wanted(self) -> Wanted:
        """What today's settings ask of every recorded asset."""
        from vidpipe.reconcile.settings_plan import Wanted

        asked = self.asset_settings()
        return Wanted(captions=asked.captions, renditions=asked.static_renditions)

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
            _engine, gateway, _ = self._preflight()
        pinned = self._environment or read_pin(engine)
        return handle_event(
            engine,
            event,
            gateway=gateway,
            environment=pinned,
            policies=self.settings.playback_policies(),
        )

    def serve_webhooks(
        self,
        *,
        host: str,
        port: int,
        log: Notify,
        metrics_host: str = "127.0.0.1",
        metrics_port: int | None = None,
        log_format: str = "text",
    ) -> None:
        """Serve Mux webhooks until SIGTERM/SIGINT (blocking). With `metrics_port`, Prometheus
        metrics and health checks on that port too; `log_format`: `text` or `json` lines."""
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
                metrics_host=metrics_host,
                metrics_port=metrics_port,
                log_format=log_format,
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
