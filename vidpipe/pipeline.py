"""The upload pipeline, one flow for every target:

validate -> create the direct upload -> transfer -> wait for the asset -> confirm it is ready
-> record asset + playback ID on the row (one transaction, with the journal) -> delete the
replaced asset. Each step is written to the journal (`vidpipe_upload`) before it is taken, so
re-running the same command resumes the same Mux upload from the offset the server holds.

The upload URL is a bearer credential: it lives in memory only. A resumed upload asks Mux for
it again (Mux returns it while the upload waits for bytes).

A URL source skips the direct upload and the transfer: Mux is asked to fetch the URL
(`POST /video/v1/assets`), and the rest is the same.

Mux has no idempotency key. Before a create request the entry goes to `creating`; an entry
found in that state (the process died, or the answer was lost on the way) first looks for
what Mux may have made (`_find_lost_upload`, `_find_lost_asset`) before it asks again.

`upload` runs the whole flow for one target. A batch uses the pieces: `claim` (the lock that
keeps one target to one uploader), `send` (create + transfer, under the claim), its own
waiting, and `complete` (record + delete the replaced asset).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

import httpx
from sqlalchemy import Engine

from vidpipe import journal
from vidpipe.assets import AssetSettings, asset_meta
from vidpipe.db import UploadJournal, transaction
from vidpipe.errors import (
    LockHeld,
    MuxBadRequest,
    MuxError,
    MuxNetworkError,
    MuxNotFound,
    MuxServerError,
    TargetHasVideo,
    TargetNotFound,
    UploadFailed,
    VidpipeError,
    WaitTimeout,
)
from vidpipe.journal import State
from vidpipe.locks import run_lock
from vidpipe.media import (
    VideoFile,
    check_url,
    check_video_file,
    display_source,
    is_url,
    journal_source,
)
from vidpipe.mux import Asset, MuxGateway, Upload
from vidpipe.records import (
    clear_asset_everywhere,
    is_tombstoned,
    lock_asset,
    read_row,
    remember_dead,
    rows_naming,
    set_video,
)
from vidpipe.targets import Target, from_passthrough
from vidpipe.transfer import TransferResult, UploadUrlExpired, transfer
from vidpipe.units import AUTO_CHUNK

FAILED_UPLOAD_STATES = ("errored", "cancelled", "timed_out")
POLL_START = 1.0
POLL_CAP = 10.0
DEFAULT_WAIT_TIMEOUT = 30 * 60.0
LOOKUP_PAGES = 10
"""List pages (100 each) searched for what a create whose answer was lost may have made."""
LOOKUP_MARGIN = 600
"""Seconds before the journaled create that an asset found by that search may date from
(clock skew between this machine and Mux)."""
CREATE_ATTEMPTS = 3
"""URL ingests asked for at most this often in one run when the answers keep getting lost."""

Progress = Callable[[int, int], None]
Notify = Callable[[str], None]


@dataclass
class UploadOptions:
    chunk_size: int = AUTO_CHUNK  # bytes per request; AUTO_CHUNK sizes each request itself
    replace: bool = False
    wait: bool = True
    timeout: float = DEFAULT_WAIT_TIMEOUT
    upload_timeout: int = 3600 * 24  # Mux keeps the upload URL open this long (resume window)
    asset: AssetSettings = field(default_factory=AssetSettings)
    """What the new asset is created with; its playback policy decides the ID recorded."""


@dataclass
class UploadOutcome:
    target: Target
    journal_id: int
    upload_id: str | None  # None for a URL source (no direct upload)
    state: str  # "ready" when recorded; "transferred" when not waiting
    file_size: int
    resumed: bool = False
    resumed_from: int = 0
    asset_id: str | None = None
    playback_id: str | None = None
    replaced_asset_id: str | None = None
    old_asset_deleted: bool | None = None
    recorded_elsewhere: bool = False  # another run (or a webhook) recorded it first
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
            "transfer": None if self.transfer is None else transfer_json(self.transfer),
        }


def transfer_json(result: TransferResult) -> dict[str, object]:
    """What this run sent (JSON): body bytes (resends included), PUT requests (offset queries
    included), retries after failures, and wall seconds from the first request to the end."""
    return {
        "bytes_sent": result.bytes_sent,
        "requests": result.requests,
        "retries": result.retries,
        "seconds": round(result.seconds, 3),
    }


@dataclass
class Prepared:
    """What validation found; nothing has been changed yet. Exactly one of `video` (a file)
    and `url` (Mux fetches it) is set."""

    video: VideoFile | None
    target: Target
    current_asset_id: str | None
    title: str | None = None
    url: str | None = None

    @property
    def source(self) -> str:
        """What the journal keeps as the source (`media.journal_source`)."""
        return journal_source(self.video, self.url)

    @property
    def size(self) -> int:
        """Bytes to transfer (0 for a URL)."""
        return self.video.size if self.video is not None else 0

    @property
    def shown(self) -> str:
        """The source as messages show it (a file's name; a URL without its query)."""
        if self.url is not None:
            return display_source(self.url)
        assert self.video is not None
        return self.video.path.name


def prepare(engine: Engine, source: Path | str, target: Target, options: UploadOptions) -> Prepared:
    """Every check that can fail on bad input, before anything changes (UsageError): no Mux
    call and no credentials needed. `source` is a file path, or an `http(s)://` URL for Mux
    to fetch."""
    video: VideoFile | None = None
    url: str | None = None
    if isinstance(source, str) and is_url(source):
        url = check_url(source)
    else:
        video = check_video_file(Path(source))
    with transaction(engine) as conn:
        row = read_row(conn, target)
    if row is None:
        raise TargetNotFound(target)
    if row.asset_id and not options.replace:
        raise TargetHasVideo(target, row.asset_id)
    return Prepared(video, target, row.asset_id, row.title, url=url)


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

    def prepare(self, source: Path | str, target: Target, options: UploadOptions) -> Prepared:
        """`prepare` on this pipeline's database."""
        return prepare(self.engine, source, target, options)

    # -- the flow -----------------------------------------------------------------------

    def upload(
        self,
        prepared: Prepared,
        options: UploadOptions,
        on_progress: Progress | None = None,
    ) -> UploadOutcome:
        """The whole flow for one target, under its claim."""
        with self.claim(prepared.target):
            entry, outcome = self.send(prepared, options, on_progress)
            if not options.wait:
                return outcome
            if entry.state != State.DONE:
                self.notify(f"waiting for Mux to make the asset for {prepared.target} ready")
            asset = self.wait_for_asset(entry, deadline=self.clock() + options.timeout)
            return self.complete(entry, asset, outcome, options)

    @contextmanager
    def claim(self, target: Target) -> Iterator[None]:
        """Hold the target for the body, or raise `LockHeld` at once: one uploader per target,
        across threads, processes and (on PostgreSQL) machines. A lock the OS or the database
        server drops when its holder dies, so a killed run never leaves it behind."""
        stack = ExitStack()
        try:
            stack.enter_context(run_lock(self.engine, f"upload-{target.kind.value}-{target.id}"))
        except LockHeld:
            raise LockHeld(
                f"another vidpipe upload to {target} is running; wait for it to finish"
            ) from None
        with stack:
            yield

    def send(
        self, prepared: Prepared, options: UploadOptions, on_progress: Progress | None = None
    ) -> tuple[UploadJournal, UploadOutcome]:
        """Create the upload and move the bytes (a URL: have Mux ingest it), journaled, under
        the caller's `claim`. The outcome's state is `transferred`."""
        if prepared.url is not None:
            return self._send_url(prepared, options)
        assert prepared.video is not None
        entry, resumed = self._journal_entry(prepared, options)
        resumed_from = 0
        result: TransferResult | None = None

        for _fresh_start in range(2):
            url: str | None = None
            if entry.upload_id is None:
                url = self._create_upload(entry, prepared, options)
                assert url is not None
            if entry.state == State.UPLOADING:
                assert entry.upload_id is not None
                status = None
                if url is None:  # resumed: Mux says where the upload stands, and its URL
                    status = self.mux.get_upload(entry.upload_id)
                    url = status.url
                if status is not None and status.status in FAILED_UPLOAD_STATES:
                    entry = self._start_over(entry, prepared, options, status)
                    resumed = False
                    continue
                if status is not None and status.status == "asset_created":
                    self._mark_transferred(entry, status)
                elif url is None:
                    assert status is not None
                    raise UploadFailed(
                        f"Mux upload {status.id} is {status.status} and gives no upload URL; "
                        "try again later"
                    )
                else:
                    try:
                        result = self._transfer(entry, url, prepared, options, on_progress, resumed)
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
            state="transferred",
            file_size=prepared.size,
            resumed=resumed,
            resumed_from=resumed_from,
            asset_id=entry.asset_id,
            replaced_asset_id=entry.replace_asset_id,
            transfer=result,
        )
        return entry, outcome

    def complete(
        self, entry: UploadJournal, asset: Asset, outcome: UploadOutcome, options: UploadOptions
    ) -> UploadOutcome:
        """The asset is ready: record it on the row and delete the asset it replaces."""
        playback_id, recorded_here = self.record(entry, asset, options.asset.playback_policy)
        outcome.recorded_elsewhere = not recorded_here
        outcome.state = "ready"
        outcome.asset_id = asset.id
        outcome.playback_id = playback_id
        if entry.replace_asset_id and entry.replace_asset_id != asset.id:
            outcome.old_asset_deleted = self._delete_replaced(entry.replace_asset_id, outcome)
        return outcome

    def _send_url(
        self, prepared: Prepared, options: UploadOptions
    ) -> tuple[UploadJournal, UploadOutcome]:
        entry, resumed = self._journal_entry(prepared, options)
        if entry.asset_id is None:
            self._create_asset(entry, prepared, options)
        outcome = UploadOutcome(
            target=prepared.target,
            journal_id=entry.id or 0,
            upload_id=None,
            state="transferred",
            file_size=0,
            resumed=resumed,
            asset_id=entry.asset_id,
            replaced_asset_id=entry.replace_asset_id,
        )
        return entry, outcome

    # -- steps --------------------------------------------------------------------------

    def _journal_entry(
        self, prepared: Prepared, options: UploadOptions
    ) -> tuple[UploadJournal, bool]:
        """The unfinished entry for this same file (resume), or a new one.

        Unfinished entries of this target for another file are abandoned (their Mux upload
        cancelled), so one target never has two live uploads from vidpipe.
        """
        video, target = prepared.video, prepared.target
        mtime_ns = video.mtime_ns if video is not None else 0
        resume: UploadJournal | None = None
        for entry in journal.unfinished_for(self.engine, target):
            same = (
                entry.file_path == prepared.source
                and entry.file_size == prepared.size
                and entry.file_mtime_ns == mtime_ns
            )
            if resume is None and same:
                resume = entry
            else:
                self._abandon(entry, "superseded by an upload of another source")
        if resume is not None:
            if resume.upload_id or resume.asset_id:
                what = f"Mux upload {resume.upload_id}" if resume.upload_id else "Mux ingest"
            else:
                what = "not yet created"
            self.notify(f"resuming the unfinished upload of {prepared.shown} to {target} ({what})")
            if resume.chunk_size != options.chunk_size:
                journal.update(self.engine, resume, chunk_size=options.chunk_size)
            return resume, True
        entry = journal.create(
            self.engine,
            target,
            file_path=prepared.source,
            file_size=prepared.size,
            file_mtime_ns=mtime_ns,
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
    ) -> str:
        """Create the Mux upload, journal its ID (not its URL) and return its URL. An entry
        whose earlier create may have been carried out (its answer lost) adopts the waiting
        upload that create made, if Mux has one, instead of making another."""
        target = prepared.target
        if entry.state == State.CREATING:
            found = self._find_lost_upload(entry)
            if found is not None and found.url:
                self.notify(f"found Mux upload {found.id}, made before the answer was lost")
                journal.update(
                    self.engine, entry, upload_id=found.id, state=State.UPLOADING, confirmed_bytes=0
                )
                return found.url
        # Journaled before the request: a restart knows a create may be in flight.
        journal.update(self.engine, entry, state=State.CREATING)
        upload = self.mux.create_upload(
            target.passthrough,
            settings=options.asset,
            meta=asset_meta(prepared.title, target.external_id),
            timeout=options.upload_timeout,
        )
        if not upload.url:
            raise UploadFailed(f"Mux created upload {upload.id} without an upload URL")
        journal.update(
            self.engine, entry, upload_id=upload.id, state=State.UPLOADING, confirmed_bytes=0
        )
        return upload.url

    def _create_asset(
        self, entry: UploadJournal, prepared: Prepared, options: UploadOptions
    ) -> None:
        """Have Mux ingest the entry's URL; the asset ID goes to the journal. An answer that
        was lost (now, or in a run that died) is looked for before asking again."""
        assert prepared.url is not None
        if entry.state == State.CREATING:
            found = self._find_lost_asset(entry)
            if found is not None:
                self.notify(f"found asset {found.id}, made before the answer was lost")
                journal.update(self.engine, entry, state=State.ASSET_CREATED, asset_id=found.id)
                return
        lost: MuxError | None = None
        for _attempt in range(CREATE_ATTEMPTS):
            journal.update(self.engine, entry, state=State.CREATING)
            try:
                asset = self.mux.create_asset_from_url(
                    prepared.url,
                    prepared.target.passthrough,
                    settings=options.asset,
                    meta=asset_meta(prepared.title, prepared.target.external_id),
                )
            except MuxBadRequest as exc:
                reason = f"Mux refused to ingest {prepared.shown}: {exc}"
                journal.update(self.engine, entry, state=State.FAILED, last_error=reason)
                raise UploadFailed(f"{reason}; {prepared.target} is unchanged") from None
            except (MuxNetworkError, MuxServerError) as exc:
                lost = exc
                found = self._find_lost_asset(entry)
                if found is None:
                    continue
                asset = found
            journal.update(self.engine, entry, state=State.ASSET_CREATED, asset_id=asset.id)
            return
        assert lost is not None
        journal.update(self.engine, entry, last_error=str(lost))
        raise lost

    def _lookup_since(self, entry: UploadJournal) -> float:
        stamp = entry.updated_at
        if stamp.tzinfo is None:  # SQLite hands back naive UTC
            stamp = stamp.replace(tzinfo=UTC)
        return stamp.timestamp() - LOOKUP_MARGIN

    def _find_lost_upload(self, entry: UploadJournal) -> Upload | None:
        """A waiting direct upload for this target that no journal entry knows: the one an
        earlier create made before its answer was lost."""
        target = journal.target_of(entry)
        known_uploads, _ = journal.known_mux_ids(self.engine, target)
        for page in range(1, LOOKUP_PAGES + 1):
            uploads = self.mux.list_uploads(page)
            for upload in uploads:
                if (
                    upload.passthrough == target.passthrough
                    and upload.status == "waiting"
                    and upload.url
                    and upload.id not in known_uploads
                ):
                    return upload
            if not uploads:
                break
        return None

    def _find_lost_asset(self, entry: UploadJournal) -> Asset | None:
        """An asset ingested for this target (by URL) since the entry's create was journaled
        that no journal entry or row knows: the one a lost answer would have named."""
        target = journal.target_of(entry)
        _, known_assets = journal.known_mux_ids(self.engine, target)
        with transaction(self.engine) as conn:
            row = read_row(conn, target)
        if row is not None and row.asset_id:
            known_assets.add(row.asset_id)
        since = self._lookup_since(entry)
        found: list[Asset] = []
        cursor: str | None = None
        for _page in range(LOOKUP_PAGES):
            assets, cursor = self.mux.list_assets_page(cursor)
            found += [
                a
                for a in assets
                if a.passthrough == target.passthrough
                and a.upload_id is None
                and a.id not in known_assets
                and (a.created_at is None or a.created_at >= since)
            ]
            if cursor is None:
                break
        if not found:
            return None
        return max(found, key=lambda a: a.created_at or 0)

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
        url: str,
        prepared: Prepared,
        options: UploadOptions,
        on_progress: Progress | None,
        resumed: bool,
    ) -> TransferResult:
        def confirmed(offset: int) -> None:
            if offset != entry.confirmed_bytes:
                journal.update(self.engine, entry, confirmed_bytes=offset)

        assert prepared.video is not None
        try:
            return transfer(
                self.http,
                url,
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
        assert entry.upload_id is not None or entry.asset_id is not None
        delay = POLL_START
        while True:
            if entry.asset_id is None and entry.upload_id is not None:
                upload = self.mux.get_upload(entry.upload_id)
                if upload.status in FAILED_UPLOAD_STATES:
                    reason = upload_failure(upload)
                    journal.update(self.engine, entry, state=State.FAILED, last_error=reason)
                    raise UploadFailed(reason + f"; {journal.target_of(entry)} is unchanged")
                if upload.asset_id:
                    journal.update(
                        self.engine, entry, state=State.ASSET_CREATED, asset_id=upload.asset_id
                    )
            if entry.asset_id is not None:
                try:
                    asset = self.mux.get_asset(entry.asset_id)
                    self._check_belongs(entry, asset)
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

    def fail(self, entry: UploadJournal, reason: str) -> UploadFailed:
        """Journal the entry as failed (Mux said no); the error to raise or report."""
        journal.update(self.engine, entry, state=State.FAILED, last_error=reason)
        return UploadFailed(f"{reason}; {journal.target_of(entry)} is unchanged")

    def _check_belongs(self, entry: UploadJournal, asset: Asset) -> None:
        """Refuse an asset this entry's upload did not make for its target: the journal's
        asset ID may come from a webhook, and a signed event is not proof. Mux's asset must
        name the entry's upload and carry its target's passthrough; otherwise the entry
        fails (forgetting that asset ID, which may be another row's) and nothing is recorded.
        """
        target = journal.target_of(entry)
        if asset.upload_id != entry.upload_id:
            reason = (
                f"asset {asset.id} was not made by upload {entry.upload_id} "
                f"(Mux says upload {asset.upload_id or 'none'})"
            )
        elif from_passthrough(asset.passthrough) != target:
            reason = f"asset {asset.id}'s passthrough does not name {target}"
        else:
            return
        journal.update(self.engine, entry, state=State.FAILED, asset_id=None, last_error=reason)
        raise UploadFailed(f"{reason}; not recording it, {target} is unchanged")

    def record(
        self, entry: UploadJournal, asset: Asset, policy: str = "public"
    ) -> tuple[str, bool]:
        """Record the ready asset on the row and close the journal entry: one transaction,
        holding the asset's lock (`vidpipe.records`); an asset Mux said is gone since (a
        tombstone) is not recorded. Returns the playback ID, and whether this call closed the
        entry (False: another run or a webhook recorded the same asset first).

        The asset must be the one the entry's upload made for its target (`UploadFailed`).
        The playback ID recorded is the asset's of `policy` (the upload's); an asset that has
        none of that policy (an upload resumed under other settings) gets its other one
        recorded, which `verify` then reports as a policy mismatch."""
        self._check_belongs(entry, asset)
        target = journal.target_of(entry)
        playback_id = asset.playback_id_for(policy, fallback=True)
        if playback_id is None:
            raise UploadFailed(f"asset {asset.id} has no playback ID; {target} is unchanged")
        with transaction(self.engine, immediate=True) as conn:
            lock_asset(conn, asset.id)
            if is_tombstoned(conn, asset.id):
                raise UploadFailed(
                    f"asset {asset.id} was deleted or errored on Mux before it could be "
                    f"recorded; {target} is unchanged"
                )
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
            recorded_here = journal.finish(
                conn, entry.id, asset.id, playback_id, file_size=entry.file_size
            )
        entry.state, entry.asset_id, entry.playback_id = State.DONE, asset.id, playback_id
        return playback_id, recorded_here

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
        with transaction(self.engine, immediate=True) as conn:
            # Gone for good: a late webhook must not bring it back, and a row that started
            # naming it since the check above must not keep a dead asset.
            remember_dead(conn, old_asset_id, f"vidpipe upload replaced asset {old_asset_id}")
            lock_asset(conn, old_asset_id)
            clear_asset_everywhere(conn, old_asset_id)
        return True


def upload_failure(upload: Upload) -> str:
    """Why a failed (errored, cancelled, timed out) Mux upload failed, in one line."""
    reason = f"Mux says upload {upload.id} {upload.status}"
    return reason + f": {upload.error}" if upload.error else reason
