"""When may a ready asset be recorded on a row? The one decision the upload pipeline, the
webhook handler and sync all make, and the write that carries it out.

`decide` runs inside the caller's transaction, after the caller took the asset's lock
(`vidpipe.records`: the lock order), and reads what decides: the tombstone, the row, the
unfinished uploads to the row, and what the journal knows of the asset. In order:

1. the asset has a tombstone (Mux said it is deleted or errored) -> GONE;
2. the row does not exist -> NO_ROW;
3. the row names the asset already -> PLAYBACK when its playback ID must change (only on
   Mux's live word, or when the row has none: a replayed event carries the IDs of its day),
   else ALREADY; either way the uploads that made it are finished;
4. an upload failed on this asset (Mux said it errored or was deleted) -> FAILED;
5. an unfinished upload made this asset: recorded (RECORD), unless the row names another
   asset than the one that upload replaces (someone put a newer video on it) -> ROW_CHANGED;
   a row emptied during the upload holds nobody's video and takes it;
6. no upload made it (a webhook or sync finding an unrecorded asset): the row names another
   asset -> OTHER_ASSET; another upload to the row is in progress -> UPLOADING; a finished
   upload replaced this asset on the row -> REPLACED; else RECORD.

Each caller reacts in its own words (an upload fails, an event is stale, a sync item is
skipped) but none decides differently. `write` is a compare-and-set on the row as `decide`
read it, so a decision never overwrites what it did not see.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from sqlalchemy.engine import Connection

from vidpipe import journal
from vidpipe.db import UploadJournal
from vidpipe.records import is_tombstoned, read_row, set_video
from vidpipe.targets import Target


class Verdict(Enum):
    RECORD = "record"
    PLAYBACK = "playback"
    ALREADY = "already"
    GONE = "gone"
    NO_ROW = "no-row"
    FAILED = "failed"
    ROW_CHANGED = "row-changed"
    OTHER_ASSET = "other-asset"
    UPLOADING = "uploading"
    REPLACED = "replaced"


RECORDABLE = (Verdict.RECORD, Verdict.PLAYBACK, Verdict.ALREADY)
"""Verdicts `write` carries out."""


@dataclass(frozen=True)
class Decision:
    """What may happen to `asset_id` on `target`'s row, and what the decision saw."""

    verdict: Verdict
    target: Target
    asset_id: str
    playback_id: str
    row_asset_id: str | None = None
    """What the row names (the write's compare-and-set expectation)."""
    row_playback_id: str | None = None
    makers: list[UploadJournal] = field(default_factory=list)
    """The unfinished uploads that made the asset: finished by the write."""
    in_progress: UploadJournal | None = None
    """UPLOADING: the other upload to the row."""

    @property
    def recordable(self) -> bool:
        return self.verdict in RECORDABLE

    @property
    def replaced_asset_id(self) -> str | None:
        """RECORD by an upload that replaced an asset: that asset (left on Mux here)."""
        if self.verdict is not Verdict.RECORD or not self.makers:
            return None
        replaced = self.makers[0].replace_asset_id
        return replaced if replaced != self.asset_id else None


def decide(
    conn: Connection,
    target: Target,
    asset_id: str,
    playback_id: str,
    *,
    upload_id: str | None,
    live: bool,
) -> Decision:
    """Decide whether asset `asset_id` (ready, and vidpipe's for `target`; made by direct
    upload `upload_id`, None for a URL ingest) may be recorded on the row with `playback_id`.
    `live` says the caller's knowledge of the asset is Mux's answer of now, not a replayed
    event. Reads under the caller's transaction and asset lock; writes nothing."""

    def verdict(kind: Verdict, **seen: object) -> Decision:
        return Decision(kind, target, asset_id, playback_id, **seen)  # type: ignore[arg-type]

    if is_tombstoned(conn, asset_id):
        return verdict(Verdict.GONE)
    row = read_row(conn, target, for_update=True)
    if row is None:
        return verdict(Verdict.NO_ROW)
    unfinished = journal.unfinished_in(conn, target)
    makers = [e for e in unfinished if _made(e, asset_id, upload_id)]
    seen = {"row_asset_id": row.asset_id, "row_playback_id": row.playback_id, "makers": makers}
    if row.asset_id == asset_id:
        change = row.playback_id != playback_id and (live or row.playback_id is None)
        return verdict(Verdict.PLAYBACK if change else Verdict.ALREADY, **seen)
    if journal.known_failed(conn, asset_id):
        return verdict(Verdict.FAILED, **seen)
    if makers:
        if row.asset_id is not None and row.asset_id != makers[0].replace_asset_id:
            return verdict(Verdict.ROW_CHANGED, **seen)
        return verdict(Verdict.RECORD, **seen)
    if row.asset_id is not None:
        return verdict(Verdict.OTHER_ASSET, **seen)
    if unfinished:
        return verdict(Verdict.UPLOADING, in_progress=unfinished[0], **seen)
    if journal.was_replaced(conn, target, asset_id):
        return verdict(Verdict.REPLACED, **seen)
    return verdict(Verdict.RECORD, **seen)


def write(conn: Connection, decision: Decision) -> bool:
    """Carry out a recordable decision in the caller's transaction: the row (compare-and-set
    on what `decide` saw), then the uploads that made the asset, finished. False when the
    row changed since (nothing is written; decide again)."""
    assert decision.recordable, decision.verdict
    target, asset_id, playback_id = decision.target, decision.asset_id, decision.playback_id
    if decision.verdict is Verdict.PLAYBACK:
        same = {"expect_asset_id": asset_id, "expect_playback_id": decision.row_playback_id}
        if not set_video(conn, target, asset_id, playback_id, **same):
            return False
    elif decision.verdict is Verdict.RECORD and not set_video(
        conn, target, asset_id, playback_id, expect_asset_id=decision.row_asset_id
    ):
        return False
    for entry in decision.makers:
        assert entry.id is not None  # read from the table: always has one
        journal.finish(conn, entry.id, asset_id, playback_id, file_size=entry.file_size)
    return True


def _made(entry: UploadJournal, asset_id: str, upload_id: str | None) -> bool:
    """The journal entry is the upload that made this asset."""
    return entry.asset_id == asset_id or (upload_id is not None and entry.upload_id == upload_id)
