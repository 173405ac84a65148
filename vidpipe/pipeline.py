"""The upload pipeline, one flow for every target:

prepare (every check of the input, nothing changed) -> claim the target -> send (the journal
entry, the create, the transfer) -> wait for the asset -> record asset + playback ID on the
row (one transaction, with the journal; `vidpipe.recording` decides) -> delete the replaced
asset. Each step is written to the journal (`vidpipe_upload`) before it is taken, so
re-running the same command resumes the same Mux upload from the offset the server holds.

A source is a file (`FileSource`: vidpipe moves its bytes) or a URL (`UrlSource`: Mux is
asked to fetch it, `POST /video/v1/assets`, and there is no transfer); the rest is the same.
Creating what Mux needs, and finding what a create whose answer was lost made, is
`vidpipe.creation`'s.

The upload URL is a bearer credential: it lives in memory only. A resumed upload asks Mux for
it again (Mux returns it while the upload waits for bytes).

`upload` runs the whole flow for one target. A batch uses the pieces: `claim` (the lock that
keeps one target to one uploader), `send` (create + transfer, under the claim), its own
waiting, and `complete` (record + delete the replaced asset).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

import httpx
from sqlalchemy import Engine

from vidpipe import journal, readiness, recording
from vidpipe.assets import AssetSettings
from vidpipe.creation import Creator, Prepared
from vidpipe.db import UploadJournal, transaction
from vidpipe.errors import (
    LockHeld,
    MuxError,
    UploadFailed,
    VidpipeError,
    WaitTimeout,
)
from vidpipe.journal import State
from vidpipe.locks import run_lock
from vidpipe.media import FileSource, UrlSource
from vidpipe.mux import Asset, MuxGateway, Upload
from vidpipe.progress import ByteProgress, Notify
from vidpipe.readiness import DEFAULT_WAIT_TIMEOUT, FAILED_UPLOAD_STATES, Backoff, Stage
from vidpipe.recording import Verdict
from vidpipe.records import clear_asset_everywhere, lock_asset, remember_dead, rows_naming
from vidpipe.targets import Target, from_passthrough
from vidpipe.transfer import TransferResult, UploadUrlExpired, transfer
from vidpipe.units import AUTO_CHUNK


@dataclass
class UploadOptions:
    chunk_size: int = AUTO_CHUNK  # bytes per request; AUTO_CHUNK sizes each request itself
    replace: bool = False
    wait: bool = True
    timeout: float = DEFAULT_WAIT_TIMEOUT
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


class Pipeline:
    """Runs uploads. The facade hands it the engine, the Mux gateway and an httpx client."""

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
        self.creator = Creator(engine, gateway, self.notify)

    # -- the flow -----------------------------------------------------------------------

    def upload(
        self,
        prepared: Prepared,
        options: UploadOptions,
        on_progress: ByteProgress | None = None,
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
        self, prepared: Prepared, options: UploadOptions, on_progress: ByteProgress | None = None
    ) -> tuple[UploadJournal, UploadOutcome]:
        """Create the upload and move the bytes (a URL: have Mux ingest it), journaled, under
        the caller's `claim`. The outcome's state is `transferred`."""
        entry, resumed = self.creator.entry_for(prepared, options.chunk_size)
        outcome = UploadOutcome(
            target=prepared.target,
            journal_id=0,
            upload_id=None,
            state="transferred",
            file_size=prepared.source.size,
            resumed=resumed,
        )
        if isinstance(prepared.source, UrlSource):
            if entry.asset_id is None:
                self.creator.create_asset(entry, prepared, prepared.source, options.asset)
        else:
            entry = self._send_file(entry, prepared, prepared.source, options, on_progress, outcome)
            outcome.upload_id = entry.upload_id
        outcome.journal_id = entry.id or 0
        outcome.asset_id = entry.asset_id
        outcome.replaced_asset_id = entry.replace_asset_id
        return entry, outcome

    def _send_file(
        self,
        entry: UploadJournal,
        prepared: Prepared,
        source: FileSource,
        options: UploadOptions,
        on_progress: ByteProgress | None,
        outcome: UploadOutcome,
    ) -> UploadJournal:
        """The steps of a file: an upload URL (a new upload, or where the journaled one
        stands), then the transfer; twice at most, when Mux ended the upload meanwhile and a
        fresh one starts over. Returns the entry the bytes went under."""
        for _fresh_start in range(2):
            if entry.upload_id is not None and entry.state != State.UPLOADING:
                return entry  # transferred already (an earlier run)
            url, status = self._upload_url(entry, prepared, options)
            if status is not None and status.status in FAILED_UPLOAD_STATES:
                entry, outcome.resumed = self._start_over(entry, status, options), False
                continue
            if status is not None and status.status == "asset_created":
                self._mark_transferred(entry, status)
                return entry
            if url is None:
                assert status is not None
                raise UploadFailed(
                    f"Mux upload {status.id} is {status.status} and gives no upload URL; "
                    "try again later"
                )
            try:
                result = self._transfer(entry, url, source, options, on_progress, outcome.resumed)
            except UploadUrlExpired:
                assert entry.upload_id is not None
                status = self.mux.get_upload(entry.upload_id)
                if status.status == "asset_created":
                    self._mark_transferred(entry, status)
                    return entry
                entry, outcome.resumed = self._start_over(entry, status, options), False
                continue
            outcome.resumed_from, outcome.transfer = result.start_offset, result
            journal.update(
                self.engine, entry, state=State.TRANSFERRED, confirmed_bytes=result.total
            )
            return entry
        # pragma: no cover - two fresh starts in one run means Mux keeps expiring uploads
        raise UploadFailed("Mux expired the upload twice in a row; try again later")

    def _upload_url(
        self, entry: UploadJournal, prepared: Prepared, options: UploadOptions
    ) -> tuple[str | None, Upload | None]:
        """Where to send the bytes: a new upload's URL, or (resuming) what Mux says of the
        journaled upload, with its URL while it waits for bytes."""
        if entry.upload_id is None:
            return self.creator.create_upload(entry, prepared, options.asset), None
        status = self.mux.get_upload(entry.upload_id)
        return status.url, status

    def _start_over(
        self, entry: UploadJournal, status: Upload, options: UploadOptions
    ) -> UploadJournal:
        return self.creator.start_over(entry, status, options.chunk_size)

    def _transfer(
        self,
        entry: UploadJournal,
        url: str,
        source: FileSource,
        options: UploadOptions,
        on_progress: ByteProgress | None,
        resumed: bool,
    ) -> TransferResult:
        def confirmed(offset: int) -> None:
            if offset != entry.confirmed_bytes:
                journal.update(self.engine, entry, confirmed_bytes=offset)

        try:
            return transfer(
                self.http,
                url,
                source.video.path,
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

    # -- waiting ------------------------------------------------------------------------

    def wait_for_asset(self, entry: UploadJournal, *, deadline: float) -> Asset:
        """Poll the upload until it has an asset, then the asset until ready (or failed:
        the entry is journaled as failed and `UploadFailed` raised)."""
        assert entry.upload_id is not None or entry.asset_id is not None
        backoff = Backoff()
        while True:
            if entry.asset_id is None and entry.upload_id is not None:
                made = readiness.of_upload(self.mux.get_upload(entry.upload_id))
                if made.stage is Stage.FAILED:
                    raise self.fail(entry, made.reason or "failed")
                if made.asset_id:
                    journal.update(
                        self.engine, entry, state=State.ASSET_CREATED, asset_id=made.asset_id
                    )
            if entry.asset_id is not None:
                asset = self.mux.find_asset(entry.asset_id)
                if asset is not None:
                    self._check_belongs(entry, asset)
                ready = readiness.of_asset(asset, entry.asset_id)
                if ready.stage is Stage.FAILED:
                    raise self.fail(entry, ready.reason or "failed")
                if ready.stage is Stage.READY and asset is not None:
                    return asset
            delay = backoff.next()
            if self.clock() + delay > deadline:
                raise WaitTimeout(
                    f"the asset for {journal.target_of(entry)} is not ready yet; "
                    "a sync records it once it is"
                )
            self.sleep(delay)

    def fail(self, entry: UploadJournal, reason: str) -> UploadFailed:
        """Journal the entry as failed (Mux said no); the error to raise or report."""
        journal.update(self.engine, entry, state=State.FAILED, last_error=reason)
        return UploadFailed(f"{reason}; {journal.target_of(entry)} is unchanged")

    # -- recording ----------------------------------------------------------------------

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
        holding the asset's lock, as `vidpipe.recording` decides (the same decision as a
        webhook's and a sync's). Returns the playback ID, and whether this call closed the
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
            decision = recording.decide(
                conn, target, asset.id, playback_id, upload_id=asset.upload_id, live=True
            )
            if not decision.recordable:
                raise _refusal(decision)
            if not recording.write(conn, decision):
                raise VidpipeError(f"{target} changed during the upload; not overwriting it")
        recorded_here = any(e.id == entry.id for e in decision.makers)
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


def _refusal(decision: recording.Decision) -> VidpipeError:
    """Why an upload does not record its asset, as the error it fails with."""
    target, asset_id = decision.target, decision.asset_id
    if decision.verdict in (Verdict.GONE, Verdict.FAILED):
        return UploadFailed(
            f"asset {asset_id} was deleted or errored on Mux before it could be recorded; "
            f"{target} is unchanged"
        )
    if decision.verdict is Verdict.NO_ROW:
        return VidpipeError(
            f"{target} no longer exists; asset {asset_id} stays on Mux "
            "(a sync reports it as an orphan)"
        )
    if decision.verdict is Verdict.UPLOADING:
        assert decision.in_progress is not None
        return VidpipeError(
            f"another upload to {target} started since (journal #{decision.in_progress.id}); "
            f"not recording asset {asset_id}, which stays on Mux (a sync reports it as an orphan)"
        )
    if decision.verdict is Verdict.REPLACED:
        return VidpipeError(f"asset {asset_id} was replaced on {target}; not recording it")
    return VidpipeError(
        f"{target} changed during the upload (it now names asset {decision.row_asset_id}); "
        f"not overwriting it with {asset_id}"
    )
