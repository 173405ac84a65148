"""The upload pipeline, one flow for every target:

validate -> create the direct upload -> transfer -> wait for the asset -> confirm it is ready
-> record asset + playback ID on the row (one transaction, with the journal) -> delete the
replaced asset. Each step is written to the journal (`vidpipe_upload`) before it is taken, so
re-running the same command resumes the same Mux upload from the offset the server holds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import Engine

from vidpipe import journal
from vidpipe.db import UploadJournal, transaction
from vidpipe.errors import (
    LockHeld,
    MuxError,
    MuxNotFound,
    TargetHasVideo,
    TargetNotFound,
    UploadFailed,
    VidpipeError,
    WaitTimeout,
)
from vidpipe.journal import State
from vidpipe.locks import run_lock
from vidpipe.media import VideoFile, check_video_file
from vidpipe.mux import Asset, MuxGateway, Upload
from vidpipe.records import read_row, rows_naming, set_video
from vidpipe.targets import Target
from vidpipe.transfer import TransferResult, UploadUrlExpired, transfer
from vidpipe.units import AUTO_CHUNK

FAILED_UPLOAD_STATES = ("errored", "cancelled", "timed_out")
POLL_START = 1.0
POLL_CAP = 10.0
DEFAULT_WAIT_TIMEOUT = 30 * 60.0

Progress = Callable[[int, int], None]
Notify = Callable[[str], None]


@dataclass
class UploadOptions:
    chunk_size: int = AUTO_CHUNK  # bytes per request; AUTO_CHUNK sizes each request itself
    replace: bool = False
    wait: bool = True
    timeout: float = DEFAULT_WAIT_TIMEOUT
    upload_timeout: int = 3600 * 24  # Mux keeps the upload URL open this long (resume window)


@dataclass
class UploadOutcome:
    target: Target
    journal_id: int
    upload_id: str
    state: str  # "ready" when recorded; "transferred" when not waiting
    file_size: int
    resumed: bool = False
    resumed_from: int = 0
    asset_id: str | None = None
    playback_id: str | None = None
    replaced_asset_id: str | None = None
    old_asset_deleted: bool | None = None
    warnings: list[str] = field(default_factory=list)
    transfer: TransferResult | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "ok": True,
            "target": self.target.as_json(),
            "state": self.state,
            "upload_id": self.upload_id,
            "asset_id": self.asset_id,
            "playback_id": self.playback_id,
            "file_size": self.file_size,
            "resumed": self.resumed,
            "resumed_from": self.resumed_from,
            "replaced_asset_id": self.replaced_asset_id,
            "old_asset_deleted": self.old_asset_deleted,
            "warnings": self.warnings,
        }


@dataclass
class Prepared:
    """What validation found; nothing has been changed yet."""

    video: VideoFile
    target: Target
    current_asset_id: str | None


class Pipeline:
    """Runs uploads. The CLI hands it the engine, the Mux gateway and an httpx client."""

    def __init__(
        self,
        engine: Engine,
        gateway: MuxGateway,
        http: httpx.Client,
        *,
        notify: Notify | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.mux = gateway
        self.http = http
        self.notify = notify or (lambda _msg: None)
        self.sleep = sleep
        self.clock = clock

    # -- validation ---------------------------------------------------------------------

    def prepare(self, path: Path, target: Target, options: UploadOptions) -> Prepared:
        """Every check that can fail on bad input, before anything changes (UsageError)."""
        video = check_video_file(path)
        with transaction(self.engine) as conn:
            row = read_row(conn, target)
        if row is None:
            raise TargetNotFound(target)
        if row.asset_id and not options.replace:
            raise TargetHasVideo(target, row.asset_id)
        return Prepared(video, target, row.asset_id)

    # -- the flow -----------------------------------------------------------------------

    def upload(
        self,
        prepared: Prepared,
        options: UploadOptions,
        on_progress: Progress | None = None,
    ) -> UploadOutcome:
        target = prepared.target
        try:
            lock = run_lock(self.engine, f"upload-{target.kind.value}-{target.id}")
            with lock:
                return self._upload_locked(prepared, options, on_progress)
        except LockHeld:
            raise LockHeld(
                f"another vidpipe upload to {target} is running; wait for it to finish"
            ) from None

    def _upload_locked(
        self, prepared: Prepared, options: UploadOptions, on_progress: Progress | None
    ) -> UploadOutcome:
        entry, resumed = self._journal_entry(prepared, options)
        resumed_from = 0
        result: TransferResult | None = None

        for _fresh_start in range(2):
            if entry.upload_id is None:
                self._create_upload(entry, prepared, options)
            if entry.state == State.UPLOADING:
                assert entry.upload_id is not None and entry.upload_url is not None
                status = self.mux.get_upload(entry.upload_id) if resumed else None
                if status is not None and status.status in FAILED_UPLOAD_STATES:
                    entry = self._start_over(entry, prepared, options, status)
                    resumed = False
                    continue
                if status is not None and status.status == "asset_created":
                    self._mark_transferred(entry, status)
                else:
                    try:
                        result = self._transfer(entry, prepared, options, on_progress, resumed)
                    except UploadUrlExpired:
                        assert entry.upload_id is not None
                        status = self.mux.get_upload(entry.upload_id)
                        if status.status == "asset_created":
                            self._mark_transferred(entry, status)
                        else:
                            entry = self._start_over(entry, prepared, options, status)
                            resumed = False
                            continue
                    if result is not None:
                        resumed_from = result.start_offset
                        journal.update(
                            self.engine,
                            entry,
                            state=State.TRANSFERRED,
                            confirmed_bytes=result.total,
                        )
            break
        else:  # pragma: no cover - two fresh starts in one run means Mux keeps expiring uploads
            raise UploadFailed("Mux expired the upload twice in a row; try again later")

        assert entry.upload_id is not None
        outcome = UploadOutcome(
            target=prepared.target,
            journal_id=entry.id or 0,
            upload_id=entry.upload_id,
            state=entry.state,
            file_size=prepared.video.size,
            resumed=resumed,
            resumed_from=resumed_from,
            asset_id=entry.asset_id,
            replaced_asset_id=entry.replace_asset_id,
            transfer=result,
        )
        if not options.wait:
            outcome.state = "transferred"
            return outcome

        if entry.state != State.DONE:
            self.notify(f"waiting for Mux to make the asset for {prepared.target} ready")
        asset = self.wait_for_asset(entry, deadline=self.clock() + options.timeout)
        playback_id = self.record(entry, asset)
        outcome.state = "ready"
        outcome.asset_id = asset.id
        outcome.playback_id = playback_id
        if entry.replace_asset_id and entry.replace_asset_id != asset.id:
            outcome.old_asset_deleted = self._delete_replaced(entry.replace_asset_id, outcome)
        return outcome

    # -- steps --------------------------------------------------------------------------

    def _journal_entry(
        self, prepared: Prepared, options: UploadOptions
    ) -> tuple[UploadJournal, bool]:
        """The unfinished entry for this same file (resume), or a new one.

        Unfinished entries of this target for another file are abandoned (their Mux upload
        cancelled), so one target never has two live uploads from vidpipe.
        """
        video, target = prepared.video, prepared.target
        resume: UploadJournal | None = None
        for entry in journal.unfinished_for(self.engine, target):
            same = (
                entry.file_path == str(video.path)
                and entry.file_size == video.size
                and entry.file_mtime_ns == video.mtime_ns
            )
            if resume is None and same:
                resume = entry
            else:
                self._abandon(entry, "superseded by an upload of another file")
        if resume is not None:
            self.notify(
                f"resuming the unfinished upload of {video.path.name} to {target} "
                f"(Mux upload {resume.upload_id or 'not yet created'})"
            )
            if resume.chunk_size != options.chunk_size:
                journal.update(self.engine, resume, chunk_size=options.chunk_size)
            return resume, True
        entry = journal.create(
            self.engine,
            target,
            file_path=str(video.path),
            file_size=video.size,
            file_mtime_ns=video.mtime_ns,
            chunk_size=options.chunk_size,
            replace_asset_id=prepared.current_asset_id,
        )
        return entry, False

    def _abandon(self, entry: UploadJournal, reason: str) -> None:
        if entry.upload_id and entry.state == State.UPLOADING:
            try:
                self.mux.cancel_upload(entry.upload_id)
            except MuxError as exc:
                # 403 (no longer waiting) and 404 (gone) both mean nothing is left to cancel.
                if exc.status not in (403, 404):
                    raise
        journal.update(self.engine, entry, state=State.ABANDONED, last_error=reason)

    def _create_upload(
        self, entry: UploadJournal, prepared: Prepared, options: UploadOptions
    ) -> None:
        upload = self.mux.create_upload(prepared.target.passthrough, timeout=options.upload_timeout)
        if not upload.url:
            raise UploadFailed(f"Mux created upload {upload.id} without an upload URL")
        journal.update(
            self.engine,
            entry,
            upload_id=upload.id,
            upload_url=upload.url,
            state=State.UPLOADING,
            confirmed_bytes=0,
        )

    def _start_over(
        self, entry: UploadJournal, prepared: Prepared, options: UploadOptions, status: Upload
    ) -> UploadJournal:
        reason = f"Mux upload {status.id} is {status.status}"
        if status.error:
            reason += f" ({status.error})"
        self.notify(f"{reason}; starting a fresh upload")
        journal.update(self.engine, entry, state=State.ABANDONED, last_error=reason)
        return journal.create(
            self.engine,
            journal.target_of(entry),
            file_path=entry.file_path,
            file_size=entry.file_size,
            file_mtime_ns=entry.file_mtime_ns,
            chunk_size=options.chunk_size,
            replace_asset_id=entry.replace_asset_id,
        )

    def _transfer(
        self,
        entry: UploadJournal,
        prepared: Prepared,
        options: UploadOptions,
        on_progress: Progress | None,
        resumed: bool,
    ) -> TransferResult:
        assert entry.upload_url is not None

        def confirmed(offset: int) -> None:
            if offset != entry.confirmed_bytes:
                journal.update(self.engine, entry, confirmed_bytes=offset)

        try:
            return transfer(
                self.http,
                entry.upload_url,
                prepared.video.path,
                chunk_size=options.chunk_size,
                start_offset=None if resumed else 0,
                on_progress=on_progress,
                on_confirmed=confirmed,
            )
        except UploadUrlExpired:
            raise
        except VidpipeError as exc:
            journal.update(self.engine, entry, last_error=str(exc))
            raise

    def _mark_transferred(self, entry: UploadJournal, status: Upload) -> None:
        journal.update(
            self.engine,
            entry,
            state=State.ASSET_CREATED if status.asset_id else State.TRANSFERRED,
            confirmed_bytes=entry.file_size,
            asset_id=status.asset_id,
        )

    def wait_for_asset(self, entry: UploadJournal, *, deadline: float) -> Asset:
        """Poll the upload until it has an asset, then the asset until ready (or failed)."""
        assert entry.upload_id is not None
        delay = POLL_START
        while True:
            if entry.asset_id is None:
                upload = self.mux.get_upload(entry.upload_id)
                if upload.status in FAILED_UPLOAD_STATES:
                    reason = f"Mux says upload {upload.id} {upload.status}"
                    if upload.error:
                        reason += f": {upload.error}"
                    journal.update(self.engine, entry, state=State.FAILED, last_error=reason)
                    raise UploadFailed(reason + f"; {journal.target_of(entry)} is unchanged")
                if upload.asset_id:
                    journal.update(
                        self.engine, entry, state=State.ASSET_CREATED, asset_id=upload.asset_id
                    )
            if entry.asset_id is not None:
                try:
                    asset = self.mux.get_asset(entry.asset_id)
                except MuxNotFound:
                    reason = f"asset {entry.asset_id} was deleted on Mux before it was ready"
                    journal.update(self.engine, entry, state=State.FAILED, last_error=reason)
                    raise UploadFailed(
                        reason + f"; {journal.target_of(entry)} is unchanged"
                    ) from None
                if asset.status == "ready":
                    return asset
                if asset.status == "errored":
                    reason = f"Mux could not process the video (asset {asset.id} errored"
                    reason += f": {asset.error})" if asset.error else ")"
                    journal.update(self.engine, entry, state=State.FAILED, last_error=reason)
                    raise UploadFailed(reason + f"; {journal.target_of(entry)} is unchanged")
            if self.clock() + delay > deadline:
                raise WaitTimeout(
                    f"the asset for {journal.target_of(entry)} is not ready yet; "
                    "a sync records it once it is"
                )
            self.sleep(delay)
            delay = min(delay * 1.6, POLL_CAP)

    def record(self, entry: UploadJournal, asset: Asset) -> str:
        """Record the ready asset on the row and close the journal entry: one transaction."""
        target = journal.target_of(entry)
        playback_id = asset.public_playback_id
        if playback_id is None:
            raise UploadFailed(f"asset {asset.id} has no public playback ID; {target} is unchanged")
        with transaction(self.engine) as conn:
            row = read_row(conn, target, for_update=True)
            if row is None:
                raise VidpipeError(
                    f"{target} no longer exists; asset {asset.id} stays on Mux "
                    "(a sync reports it as an orphan)"
                )
            if row.asset_id == asset.id:
                if row.playback_id != playback_id:
                    set_video(conn, target, asset.id, playback_id, expect_asset_id=asset.id)
            elif row.asset_id != entry.replace_asset_id:
                raise VidpipeError(
                    f"{target} changed during the upload (it now names asset {row.asset_id}); "
                    f"not overwriting it with {asset.id}"
                )
            elif not set_video(
                conn, target, asset.id, playback_id, expect_asset_id=entry.replace_asset_id
            ):
                raise VidpipeError(f"{target} changed during the upload; not overwriting it")
            assert entry.id is not None
            journal.finish(conn, entry.id, asset.id, playback_id, file_size=entry.file_size)
        entry.state, entry.asset_id, entry.playback_id = State.DONE, asset.id, playback_id
        return playback_id

    def _delete_replaced(self, old_asset_id: str, outcome: UploadOutcome) -> bool:
        with transaction(self.engine) as conn:
            still_named = rows_naming(conn, old_asset_id)
        if still_named:
            names = ", ".join(str(r.target) for r in still_named)
            outcome.warnings.append(
                f"kept the replaced asset {old_asset_id} on Mux: {names} still use it"
            )
            return False
        try:
            self.mux.delete_asset(old_asset_id)
        except MuxError as exc:
            outcome.warnings.append(
                f"the new video is recorded, but deleting the replaced asset {old_asset_id} "
                f"failed ({exc}); a sync will report it as an orphan"
            )
            return False
        return True
