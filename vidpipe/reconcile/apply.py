"""Applying a plan: the only place `sync` writes.

Every change is one transaction and a compare-and-set, through `vidpipe.records` (the rows'
video columns, tombstones) and `vidpipe.journal` (upload entries): a row or an entry that
changed since the snapshot (a concurrent upload, a webhook) is left alone and reported as
skipped. Pruning an orphan re-checks that no row has started naming it, then deletes it on
Mux: the one Mux write here. The results are their own types, apart from the plan's items.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from sqlalchemy import Engine

from vidpipe import journal
from vidpipe.db import transaction
from vidpipe.errors import MuxError
from vidpipe.mux import MuxGateway
from vidpipe.progress import OnProgress, Step, StepProgress, ignore
from vidpipe.reconcile.plan import Action, DriftKind, Plan, PlannedDrift, PlannedEntry
from vidpipe.records import clear_video, prune_tombstones, remember_dead, rows_naming, set_video
from vidpipe.targets import Target


class Outcome(Enum):
    """What happened to a planned item (the value is the text shown as its action)."""

    CLEARED = "cleared row"
    WROTE_PLAYBACK = "wrote playback ID"  # followed by the playback ID
    RECORDED = "recorded asset"
    ROW_CHANGED = "skipped: the row changed since the snapshot"
    NO_PUBLIC_PLAYBACK = "skipped: the asset has no public playback ID"
    REPORTED = "reported"
    KEPT_YOUNG = "kept: younger than the minimum orphan age"
    KEPT_LIMIT = "kept: the per-run deletion limit is reached"
    KEPT_NAMED = "kept: a row names it now"
    DELETED = "deleted from Mux"
    DELETE_FAILED = "failed"  # followed by Mux's error
    WOULD_CLEAR = "would clear row"
    WOULD_WRITE_PLAYBACK = "would write playback ID"
    WOULD_RECORD = "would record asset"
    WOULD_DELETE = "would delete from Mux"
    FINISHED = "finished"
    CLOSED = "closed"
    ENTRY_MOVED_ON = "skipped: the upload moved on"
    WOULD_FINISH = "would finish"
    WOULD_CLOSE = "would close"


@dataclass(frozen=True)
class DriftResult:
    """A drift item and what became of it (`outcome` None: nothing was applied, as in verify)."""

    kind: DriftKind
    target: Target | None
    asset_id: str | None
    detail: str
    outcome: Outcome | None = None
    note: str | None = None
    """WROTE_PLAYBACK: the playback ID written; DELETE_FAILED: Mux's error."""

    @classmethod
    def of(
        cls, item: PlannedDrift, outcome: Outcome | None, note: str | None = None
    ) -> DriftResult:
        return cls(item.kind, item.target, item.asset_id, item.detail, outcome, note)

    @property
    def action(self) -> str | None:
        if self.outcome is Outcome.WROTE_PLAYBACK:
            return f"{self.outcome.value} {self.note}"
        if self.outcome is Outcome.DELETE_FAILED:
            return f"{self.outcome.value}: {self.note}"
        return self.outcome.value if self.outcome else None

    @property
    def failure(self) -> str | None:
        """A line for the run's failures, when this item failed."""
        if self.outcome is Outcome.DELETE_FAILED:
            return f"deleting orphan {self.asset_id}: {self.note}"
        return None

    def as_json(self, with_action: bool) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "kind": self.kind.value,
            "target": self.target.as_json() if self.target else None,
            "asset_id": self.asset_id,
            "detail": self.detail,
        }
        if with_action:
            doc["action"] = self.action
        return doc


# What a plan says of an entry when nothing is applied (verify).
_PLANNED_TEXT = {Action.FINISH_ENTRY: "finish", Action.CLOSE_ENTRY: "close"}


@dataclass(frozen=True)
class JournalResult:
    """An unfinished upload journal entry and what became of it (`outcome` None: nothing was
    applied; `action` then says what the plan would do)."""

    journal_id: int
    target: Target
    upload_id: str | None
    state: journal.State
    detail: str
    planned: Action
    outcome: Outcome | None = None

    @classmethod
    def of(cls, entry: PlannedEntry, outcome: Outcome | None) -> JournalResult:
        return cls(
            entry.journal_id,
            entry.target,
            entry.upload_id,
            entry.state,
            entry.detail,
            entry.action,
            outcome,
        )

    @property
    def action(self) -> str | None:
        if self.outcome is not None:
            return self.outcome.value
        return _PLANNED_TEXT.get(self.planned)

    def as_json(self) -> dict[str, Any]:
        return {
            "journal_id": self.journal_id,
            "target": self.target.as_json(),
            "upload_id": self.upload_id,
            "state": self.state.value,
            "detail": self.detail,
            "action": self.action,
        }


Result = DriftResult | JournalResult

_DRY = {
    Action.CLEAR_ROW: Outcome.WOULD_CLEAR,
    Action.WRITE_PLAYBACK: Outcome.WOULD_WRITE_PLAYBACK,
    Action.RECORD_ASSET: Outcome.WOULD_RECORD,
    Action.PRUNE: Outcome.WOULD_DELETE,
    Action.FINISH_ENTRY: Outcome.WOULD_FINISH,
    Action.CLOSE_ENTRY: Outcome.WOULD_CLOSE,
}
# Decisions that write nothing: the same outcome in a dry run and a real one.
_DECIDED = {
    Action.REPORT: Outcome.REPORTED,
    Action.KEEP_TOO_YOUNG: Outcome.KEPT_YOUNG,
    Action.KEEP_LIMIT: Outcome.KEPT_LIMIT,
}


def apply(
    engine: Engine,
    gateway: MuxGateway,
    plan: Plan,
    *,
    dry_run: bool,
    on_progress: OnProgress = ignore,
) -> list[Result]:
    """Apply `plan` (drift first, then journal entries), or with `dry_run` say what it would
    do and write nothing. Returns one result per planned item, in the plan's order;
    `on_progress` hears the count of items done."""
    results: list[Result] = []
    total = len(plan.drift) + len(plan.journal)
    for item in plan.drift:
        on_progress(StepProgress(Step.APPLYING, len(results), total))
        if item.action in _DECIDED:
            results.append(DriftResult.of(item, _DECIDED[item.action]))
        elif dry_run:
            results.append(DriftResult.of(item, _DRY[item.action]))
        elif item.action is Action.PRUNE:
            results.append(_prune(engine, gateway, item))
        else:
            results.append(_repair(engine, item))
    for entry in plan.journal:
        on_progress(StepProgress(Step.APPLYING, len(results), total))
        if entry.action is Action.NONE:
            results.append(JournalResult.of(entry, None))
        elif dry_run:
            results.append(JournalResult.of(entry, _DRY[entry.action]))
        else:
            results.append(JournalResult.of(entry, _settle(engine, entry)))
    if total:
        on_progress(StepProgress(Step.APPLYING, total, total))
    if not dry_run:
        with transaction(engine) as conn:
            prune_tombstones(conn)
    return results


def _repair(engine: Engine, item: PlannedDrift) -> DriftResult:
    """One row, one transaction, compare-and-set on what the snapshot saw."""
    assert item.target is not None and item.asset_id is not None
    if item.action is Action.CLEAR_ROW:
        with transaction(engine) as conn:
            # Mux's answer is definite whether or not the row still names the asset.
            why = f"sync found asset {item.asset_id} gone ({item.kind.value})"
            remember_dead(conn, item.asset_id, why)
            if not clear_video(conn, item.target, expect_asset_id=item.asset_id):
                return DriftResult.of(item, Outcome.ROW_CHANGED)
            journal.fail_matching(conn, f"asset {item.kind.value}", asset_id=item.asset_id)
        return DriftResult.of(item, Outcome.CLEARED)
    if not item.playback_id:
        return DriftResult.of(item, Outcome.NO_PUBLIC_PLAYBACK)
    with transaction(engine) as conn:
        if item.action is Action.WRITE_PLAYBACK:
            changed = set_video(
                conn,
                item.target,
                item.asset_id,
                item.playback_id,
                expect_asset_id=item.expect_asset_id,
                expect_playback_id=item.expect_playback_id,
            )
            if not changed:
                return DriftResult.of(item, Outcome.ROW_CHANGED)
            return DriftResult.of(item, Outcome.WROTE_PLAYBACK, item.playback_id)
        if item.action is Action.RECORD_ASSET:
            changed = set_video(
                conn,
                item.target,
                item.asset_id,
                item.playback_id,
                expect_asset_id=item.expect_asset_id,
            )
            if not changed:
                return DriftResult.of(item, Outcome.ROW_CHANGED)
            if item.journal_id:
                journal.finish(conn, item.journal_id, item.asset_id, item.playback_id)
            return DriftResult.of(item, Outcome.RECORDED)
    raise AssertionError(item.action)  # pragma: no cover


def _prune(engine: Engine, gateway: MuxGateway, item: PlannedDrift) -> DriftResult:
    """Delete an orphan on Mux, after re-checking that no row has started naming it."""
    assert item.asset_id is not None
    with transaction(engine) as conn:
        if rows_naming(conn, item.asset_id):
            return DriftResult.of(item, Outcome.KEPT_NAMED)
    try:
        gateway.delete_asset(item.asset_id)
    except MuxError as exc:
        return DriftResult.of(item, Outcome.DELETE_FAILED, str(exc))
    with transaction(engine) as conn:
        remember_dead(conn, item.asset_id, f"sync deleted orphan asset {item.asset_id}")
    return DriftResult.of(item, Outcome.DELETED)


def _settle(engine: Engine, entry: PlannedEntry) -> Outcome:
    """Finish or close one journal entry (one transaction, compare-and-set on its state)."""
    with transaction(engine) as conn:
        if entry.action is Action.FINISH_ENTRY:
            assert entry.asset_id is not None
            finished = journal.finish(conn, entry.journal_id, entry.asset_id, entry.playback_id)
            return Outcome.FINISHED if finished else Outcome.ENTRY_MOVED_ON
        closed = journal.close_if(conn, entry.journal_id, entry.state, entry.detail)
    return Outcome.CLOSED if closed else Outcome.ENTRY_MOVED_ON
