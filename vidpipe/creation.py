"""The first half of sending an upload: its checks (`prepare`: nothing is changed), which
journal entry it goes under, and the create requests that give it a Mux upload (a file) or
an asset (a URL).

Mux has no idempotency key. Before a create request the entry goes to `creating`; an entry
found in that state (the process died, or the answer was lost on the way) first looks for
what Mux may have made (`find_lost_upload`, `find_lost_asset`) before it asks again.

The upload URL is a bearer credential: it is returned to the caller and never journaled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

from sqlalchemy import Engine

from vidpipe import journal
from vidpipe.assets import AssetSettings, asset_meta
from vidpipe.db import UploadJournal, transaction
from vidpipe.errors import (
    MuxBadRequest,
    MuxError,
    MuxNetworkError,
    MuxServerError,
    TargetHasVideo,
    TargetNotFound,
    UploadFailed,
)
from vidpipe.journal import State
from vidpipe.media import FileSource, Source, UrlSource, check_source
from vidpipe.mux import Asset, MuxGateway, Upload
from vidpipe.records import read_row
from vidpipe.targets import Target

LOOKUP_PAGES = 10
"""List pages (100 each) searched for what a create whose answer was lost may have made."""
LOOKUP_MARGIN = 600
"""Seconds before the journaled create that an asset found by that search may date from
(clock skew between this machine and Mux)."""
CREATE_ATTEMPTS = 3
"""URL ingests asked for at most this often in one run when the answers keep getting lost."""
UPLOAD_URL_LIFETIME = 3600 * 24
"""Seconds Mux keeps a direct upload's URL open (the window to resume in)."""


@dataclass(frozen=True)
class Prepared:
    """What the checks found; nothing has been changed yet."""

    source: Source
    target: Target
    current_asset_id: str | None
    title: str | None = None


def prepare(
    engine: Engine, source: Path | str | Source, target: Target, *, replace: bool
) -> Prepared:
    """Every check that can fail on bad input, before anything changes (UsageError).
    `source` is a file path, an `http(s)://` URL for Mux to fetch, or a source checked
    already."""
    checked = source if isinstance(source, FileSource | UrlSource) else check_source(source)
    with transaction(engine) as conn:
        row = read_row(conn, target)
    if row is None:
        raise TargetNotFound(target)
    if row.asset_id and not replace:
        raise TargetHasVideo(target, row.asset_id)
    return Prepared(checked, target, row.asset_id, row.title)


@dataclass
class Creator:
    """Creates what an upload needs on Mux, journaled (see the module docstring)."""

    engine: Engine
    mux: MuxGateway
    notify: Callable[[str], None]

    def entry_for(self, prepared: Prepared, chunk_size: int) -> tuple[UploadJournal, bool]:
        """The unfinished entry for this same source (resume: True), or a new one.

        Unfinished entries of this target for another source are abandoned (their Mux
        upload cancelled), so one target never has two live uploads from vidpipe."""
        source, target = prepared.source, prepared.target
        resume: UploadJournal | None = None
        for entry in journal.unfinished_for(self.engine, target):
            if resume is None and _same_source(entry, source):
                resume = entry
            else:
                self._abandon(entry, "superseded by an upload of another source")
        if resume is not None:
            if resume.upload_id or resume.asset_id:
                what = f"Mux upload {resume.upload_id}" if resume.upload_id else "Mux ingest"
            else:
                what = "not yet created"
            self.notify(f"resuming the unfinished upload of {source.shown} to {target} ({what})")
            if resume.chunk_size != chunk_size:
                journal.update(self.engine, resume, chunk_size=chunk_size)
            return resume, True
        entry = journal.create(
            self.engine,
            target,
            file_path=source.key,
            file_size=source.size,
            file_mtime_ns=source.mtime_ns,
            chunk_size=chunk_size,
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

    def start_over(self, entry: UploadJournal, status: Upload, chunk_size: int) -> UploadJournal:
        """Mux ended the entry's upload (failed, expired): abandon the entry, and a new one
        for the same file, to create a fresh upload."""
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
            chunk_size=chunk_size,
            replace_asset_id=entry.replace_asset_id,
        )

    def create_upload(
        self, entry: UploadJournal, prepared: Prepared, settings: AssetSettings
    ) -> str:
        """Create the Mux upload, journal its ID (not its URL) and return its URL. An entry
        whose earlier create may have been carried out (its answer lost) adopts the waiting
        upload that create made, if Mux has one, instead of making another."""
        target = prepared.target
        if entry.state == State.CREATING:
            found = self.find_lost_upload(entry)
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
            settings=settings,
            meta=asset_meta(prepared.title, target.external_id),
            timeout=UPLOAD_URL_LIFETIME,
        )
        if not upload.url:
            raise UploadFailed(f"Mux created upload {upload.id} without an upload URL")
        journal.update(
            self.engine, entry, upload_id=upload.id, state=State.UPLOADING, confirmed_bytes=0
        )
        return upload.url

    def create_asset(
        self, entry: UploadJournal, prepared: Prepared, source: UrlSource, settings: AssetSettings
    ) -> None:
        """Have Mux ingest the source URL; the asset ID goes to the journal. An answer that
        was lost (now, or in a run that died) is looked for before asking again."""
        target = prepared.target
        if entry.state == State.CREATING:
            found = self.find_lost_asset(entry)
            if found is not None:
                self.notify(f"found asset {found.id}, made before the answer was lost")
                journal.update(self.engine, entry, state=State.ASSET_CREATED, asset_id=found.id)
                return
        lost: MuxError | None = None
        for _attempt in range(CREATE_ATTEMPTS):
            journal.update(self.engine, entry, state=State.CREATING)
            try:
                asset = self.mux.create_asset_from_url(
                    source.url,
                    target.passthrough,
                    settings=settings,
                    meta=asset_meta(prepared.title, target.external_id),
                )
            except MuxBadRequest as exc:
                reason = f"Mux refused to ingest {source.shown}: {exc}"
                journal.update(self.engine, entry, state=State.FAILED, last_error=reason)
                raise UploadFailed(f"{reason}; {target} is unchanged") from None
            except (MuxNetworkError, MuxServerError) as exc:
                lost = exc
                found = self.find_lost_asset(entry)
                if found is None:
                    continue
                asset = found
            journal.update(self.engine, entry, state=State.ASSET_CREATED, asset_id=asset.id)
            return
        assert lost is not None
        journal.update(self.engine, entry, last_error=str(lost))
        raise lost

    def find_lost_upload(self, entry: UploadJournal) -> Upload | None:
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

    def find_lost_asset(self, entry: UploadJournal) -> Asset | None:
        """An asset ingested for this target (by URL) since the entry's create was journaled
        that no journal entry or row knows: the one a lost answer would have named."""
        target = journal.target_of(entry)
        known = self._known_assets(target)
        since = _lookup_since(entry)
        found: list[Asset] = []
        cursor: str | None = None
        for _page in range(LOOKUP_PAGES):
            assets, cursor = self.mux.list_assets_page(cursor)
            found += [
                a
                for a in assets
                if a.passthrough == target.passthrough
                and a.upload_id is None
                and a.id not in known
                and (a.created_at is None or a.created_at >= since)
            ]
            if cursor is None:
                break
        if not found:
            return None
        return max(found, key=lambda a: a.created_at or 0)

    def _known_assets(self, target: Target) -> set[str]:
        _, known = journal.known_mux_ids(self.engine, target)
        with transaction(self.engine) as conn:
            row = read_row(conn, target)
        if row is not None and row.asset_id:
            known.add(row.asset_id)
        return known


def _same_source(entry: UploadJournal, source: Source) -> bool:
    """The entry is an upload of this same source (same key, size and modification time)."""
    return (
        entry.file_path == source.key
        and entry.file_size == source.size
        and entry.file_mtime_ns == source.mtime_ns
    )


def _lookup_since(entry: UploadJournal) -> float:
    stamp = entry.updated_at
    if stamp.tzinfo is None:  # SQLite hands back naive UTC
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp() - LOOKUP_MARGIN
