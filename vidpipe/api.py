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
from typing import TYPE_CHECKING, Any

from vidpipe.assets import AssetSettings
from vidpipe.errors import UsageError
from vidpipe.facade_assets import AssetCommands
from vidpipe.facade_webhooks import WebhookCommands
from vidpipe.progress import ByteProgress, OnProgress, ignore
from vidpipe.readiness import DEFAULT_WAIT_TIMEOUT
from vidpipe.session import Session
from vidpipe.targets import Kind
from vidpipe.units import AUTO_CHUNK

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from vidpipe.delete import DeletePlan, DeleteResult
    from vidpipe.doctor import Diagnosis
    from vidpipe.environment import Pinning
    from vidpipe.importer import ImportReport, Observer
    from vidpipe.manifest import Item
    from vidpipe.pipeline import UploadOptions, UploadOutcome
    from vidpipe.reconcile import Report
    from vidpipe.reconcile.settings_plan import Wanted
    from vidpipe.status import StatusReport

DEFAULT_ORPHAN_MIN_AGE = 24 * 3600.0


class Vidpipe(AssetCommands, WebhookCommands, Session):
    """One platform database and one Mux environment, as configured by `settings`: the
    commands (`Session`: the resources and the checks before each call; `AssetCommands`: the
    URLs, originals and subtitle tracks of a recorded asset; `WebhookCommands`: Mux's events).

    `notify` receives progress messages meant for a person ("resuming the unfinished
    upload ..."); the default drops them.

    A database belongs to one Mux environment: every method that talks to Mux first checks
    the token's environment (one whoami per Vidpipe), after its input checks and before any
    other Mux call or database write. An unpinned database is pinned to it (announced through
    `notify`); another environment raises `EnvironmentMismatch` and changes nothing.
    """

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

    def asset_settings(self, kind: str = "lesson", **overrides: Any) -> AssetSettings:
        """The settings a new asset of `kind` (`lesson` or `course`) is created with: the
        configured ones, each overridden by a keyword of `AssetSettings.override` (checked:
        `InvalidAssetSetting`, a `UsageError`, names the setting and the allowed values)."""
        return self.settings.asset_settings(str(kind)).override(**overrides)

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

    def _wanted(self) -> Wanted:
        """What today's settings ask of every recorded asset."""
        from vidpipe.reconcile.settings_plan import Wanted

        asked = self.asset_settings()
        return Wanted(captions=asked.captions, renditions=asked.static_renditions)

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
