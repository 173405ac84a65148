"""Applying a plan: the only place `sync` writes.

Every change is one transaction and a compare-and-set, through `vidpipe.records` (the rows'
video columns, tombstones) and `vidpipe.journal` (upload entries): a row or an entry that
changed since the snapshot (a concurrent upload, a webhook) is left alone and reported as
skipped. Each change to an asset's rows holds that asset's lock (`vidpipe.records`, which
gives the lock order), and an asset Mux said is gone since the snapshot (a tombstone, from a
webhook or a delete) is not recorded. The Mux writes here: pruning an orphan (re-checking
that no row has started naming it, then deleting it) and fixing policy drift (creating a
playback ID of the right policy when the asset has none, recording it, then deleting the
asset's IDs of the other policy, each re-checked against the database first), and fixing
settings (captions, static renditions and meta added to the asset, nothing removed, no row
changed; a re-run asks only for what is still missing, so nothing is asked twice). The
results are their own types, apart from the plan's items.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, unique
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from vidpipe import journal, recording
from vidpipe.db import transaction
from vidpipe.errors import MuxError
from vidpipe.mux import MuxGateway
from vidpipe.progress import OnProgress, Step, StepProgress, ignore
from vidpipe.reconcile.plan import Action, DriftKind, Plan, PlannedDrift, PlannedEntry
from vidpipe.reconcile.settings_plan import SettingsGap
from vidpipe.recording import Verdict
from vidpipe.records import (
    clear_asset_everywhere,
    clear_video,
    is_tombstoned,
    lock_asset,
    prune_tombstones,
    remember_dead,
    rows_naming,
    rows_naming_playback,
    set_video,
)
from vidpipe.targets import Target


@unique
class SyncOutcome(Enum):
    """What happened to a planned item. `text` is what its action shows: the value, except
    for the three failures, which all show as `failed` (distinct members, so that each one's
    failure line says what failed)."""

    CLEARED = "cleared row"
    WROTE_PLAYBACK = "wrote playback ID"  # followed by the playback ID
    RECORDED = "recorded asset"
    ROW_CHANGED = "skipped: the row changed since the snapshot"
    ASSET_GONE = "skipped: Mux said the asset is gone since the snapshot"
    NO_PUBLIC_PLAYBACK = "skipped: the asset has no playback ID"
    REPORTED = "reported"
    KEPT_YOUNG = "kept: younger than the minimum orphan age"
    KEPT_LIMIT = "kept: the per-run deletion limit is reached"
    KEPT_NAMED = "kept: a row names it now"
    DELETED = "deleted from Mux"
    DELETE_FAILED = "failed deleting"  # shown as `failed`, followed by Mux's error
    WOULD_CLEAR = "would clear row"
    WOULD_WRITE_PLAYBACK = "would write playback ID"
    WOULD_RECORD = "would record asset"
    WOULD_DELETE = "would delete from Mux"
    FINISHED = "finished"
    CLOSED = "closed"
    ENTRY_MOVED_ON = "skipped: the upload moved on"
    WOULD_FINISH = "would finish"
    WOULD_CLOSE = "would close"
    FIXED_POLICY = "fixed policy"  # followed by what was done
    WOULD_FIX_POLICY = "would fix policy"  # followed by what would be done
    POLICY_FAILED = "failed fixing the policy"  # shown as `failed`, + what was done, Mux's error
    FIXED_SETTINGS = "fixed"  # followed by what was done
    SETTINGS_SKIPPED = "skipped"  # followed by why
    WOULD_FIX_SETTINGS = "would fix"  # followed by each step
    SETTINGS_FAILED = "failed fixing settings"  # shown as `failed`, + what was done, Mux's error
    NOT_APPLIED = "not applied"  # the plan is blocked; followed by what it would have done
    UPLOAD_FAILED = "skipped: an upload failed on the asset (Mux said it errored or is gone)"
    UPLOADING = "skipped: another upload to the row is in progress"
    REPLACED = "skipped: an upload replaced the asset on the row"

    @property
    def text(self) -> str:
        return "failed" if self in _FAILURES else self.value


_FAILURES = frozenset(
    {SyncOutcome.DELETE_FAILED, SyncOutcome.POLICY_FAILED, SyncOutcome.SETTINGS_FAILED}
)


@dataclass(frozen=True)
class DriftResult:
    """A drift item and what became of it (`outcome` None: nothing was applied, as in verify)."""

    kind: DriftKind
    target: Target | None
    asset_id: str | None
    detail: str
    outcome: SyncOutcome | None = None
    note: str | None = None
    """WROTE_PLAYBACK: the playback ID written; DELETE_FAILED: Mux's error."""
    settings: SettingsGap | None = None
    """settings_mismatch: what the asset lacks."""

    @classmethod
    def of(
        cls, item: PlannedDrift, outcome: SyncOutcome | None, note: str | None = None
    ) -> DriftResult:
        return cls(item.kind, item.target, item.asset_id, item.detail, outcome, note, item.settings)

    @property
    def action(self) -> str | None:
        if self.outcome is SyncOutcome.WROTE_PLAYBACK:
            return f"{self.outcome.text} {self.note}"
        if self.outcome in _SETTINGS_NOTE and self.note:
            return self.note  # each step says what it did (or would do)
        if self.outcome is SyncOutcome.SETTINGS_FAILED:
            return f"failed: {self.note}"
        if self.outcome in _WITH_NOTE and self.note:
            return f"{self.outcome.text}: {self.note}"
        return self.outcome.text if self.outcome else None

    @property
    def failure(self) -> str | None:
        """A line for the run's failures, when this item failed."""
        if self.outcome is SyncOutcome.DELETE_FAILED:
            return f"deleting orphan {self.asset_id}: {self.note}"
        if self.outcome is SyncOutcome.POLICY_FAILED:
            return f"fixing the playback policy of {self.target} ({self.asset_id}): {self.note}"
        if self.outcome is SyncOutcome.SETTINGS_FAILED:
            return f"fixing the settings of {self.target} ({self.asset_id}): {self.note}"
        return None

    def as_json(self, with_action: bool) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "kind": self.kind.value,
            "target": self.target.as_json() if self.target else None,
            "asset_id": self.asset_id,
            "detail": self.detail,
        }
        if self.settings is not None:
            doc["settings"] = self.settings.as_json()
        if with_action:
            doc["action"] = self.action
        return doc


_WITH_NOTE = (
    SyncOutcome.ROW_CHANGED,
    SyncOutcome.DELETE_FAILED,
    SyncOutcome.FIXED_POLICY,
    SyncOutcome.WOULD_FIX_POLICY,
    SyncOutcome.POLICY_FAILED,
    SyncOutcome.NOT_APPLIED,
)

_SETTINGS_NOTE = (
    SyncOutcome.FIXED_SETTINGS,
    SyncOutcome.SETTINGS_SKIPPED,
    SyncOutcome.WOULD_FIX_SETTINGS,
)
# Decisions of `vidpipe.recording` that refuse to record, as a sync reports them.
_REFUSED = {
    Verdict.GONE: SyncOutcome.ASSET_GONE,
    Verdict.FAILED: SyncOutcome.UPLOAD_FAILED,
    Verdict.NO_ROW: SyncOutcome.ROW_CHANGED,
    Verdict.ROW_CHANGED: SyncOutcome.ROW_CHANGED,
    Verdict.OTHER_ASSET: SyncOutcome.ROW_CHANGED,
    Verdict.UPLOADING: SyncOutcome.UPLOADING,
    Verdict.REPLACED: SyncOutcome.REPLACED,
}

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
    outcome: SyncOutcome | None = None

    @classmethod
    def of(cls, entry: PlannedEntry, outcome: SyncOutcome | None) -> JournalResult:
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
        if self.outcome is SyncOutcome.NOT_APPLIED and self.planned in _DRY:
            return f"{self.outcome.text}: {_DRY[self.planned].text}"
        if self.outcome is not None:
            return self.outcome.text
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
    Action.CLEAR_ROW: SyncOutcome.WOULD_CLEAR,
    Action.WRITE_PLAYBACK: SyncOutcome.WOULD_WRITE_PLAYBACK,
    Action.RECORD_ASSET: SyncOutcome.WOULD_RECORD,
    Action.PRUNE: SyncOutcome.WOULD_DELETE,
    Action.FINISH_ENTRY: SyncOutcome.WOULD_FINISH,
    Action.CLOSE_ENTRY: SyncOutcome.WOULD_CLOSE,
}
# Decisions that write nothing: the same outcome in a dry run and a real one.
_DECIDED = {
    Action.REPORT: SyncOutcome.REPORTED,
    Action.KEEP_TOO_YOUNG: SyncOutcome.KEPT_YOUNG,
    Action.KEEP_LIMIT: SyncOutcome.KEPT_LIMIT,
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
    do and write nothing. A blocked plan writes nothing either (dry run or not): each item
    says what it would have done. Returns one result per planned item, in the plan's order;
    `on_progress` hears the count of items done."""
    if plan.blocked is not None:
        return _not_applied(plan)
    results: list[Result] = []
    created: dict[str, str] = {}
    total = len(plan.drift) + len(plan.journal)
    for item in plan.drift:
        on_progress(StepProgress(Step.APPLYING, len(results), total))
        if item.kind is DriftKind.SETTINGS:
            results.append(_fix_settings(gateway, item, dry_run=dry_run))
        elif item.action in _DECIDED:
            results.append(DriftResult.of(item, _DECIDED[item.action]))
        elif item.action is Action.FIX_POLICY:
            if dry_run:
                results.append(DriftResult.of(item, SyncOutcome.WOULD_FIX_POLICY, _fix_text(item)))
            else:
                results.append(_fix_policy(engine, gateway, item, created))
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


def _not_applied(plan: Plan) -> list[Result]:
    results: list[Result] = []
    for item in plan.drift:
        if item.action in _DECIDED:
            results.append(DriftResult.of(item, _DECIDED[item.action]))
        elif item.action is Action.FIX_SETTINGS and item.fix is not None:
            steps = "; ".join(f"would {s}" for s in item.fix.steps())
            results.append(DriftResult.of(item, SyncOutcome.NOT_APPLIED, steps))
        elif item.action is Action.FIX_POLICY:
            results.append(DriftResult.of(item, SyncOutcome.NOT_APPLIED, _fix_text(item)))
        else:
            results.append(DriftResult.of(item, SyncOutcome.NOT_APPLIED, _DRY[item.action].value))
    for entry in plan.journal:
        outcome = None if entry.action is Action.NONE else SyncOutcome.NOT_APPLIED
        results.append(JournalResult.of(entry, outcome))
    return results


def _repair(engine: Engine, item: PlannedDrift) -> DriftResult:
    """One row, one transaction, compare-and-set on what the snapshot saw."""
    assert item.target is not None and item.asset_id is not None
    if item.action is Action.CLEAR_ROW:
        with transaction(engine, immediate=True) as conn:
            # Mux's answer is definite whether or not the row still names the asset.
            why = f"sync found asset {item.asset_id} gone ({item.kind.value})"
            remember_dead(conn, item.asset_id, why)
            lock_asset(conn, item.asset_id)
            if not clear_video(conn, item.target, expect_asset_id=item.asset_id):
                return DriftResult.of(item, SyncOutcome.ROW_CHANGED)
            journal.fail_matching(conn, f"asset {item.kind.value}", asset_id=item.asset_id)
        return DriftResult.of(item, SyncOutcome.CLEARED)
    if not item.playback_id:
        return DriftResult.of(item, SyncOutcome.NO_PUBLIC_PLAYBACK)
    with transaction(engine, immediate=True) as conn:
        lock_asset(conn, item.asset_id)
        if is_tombstoned(conn, item.asset_id):
            return DriftResult.of(item, SyncOutcome.ASSET_GONE)
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
                return DriftResult.of(item, SyncOutcome.ROW_CHANGED)
            return DriftResult.of(item, SyncOutcome.WROTE_PLAYBACK, item.playback_id)
        if item.action is Action.RECORD_ASSET:
            return DriftResult.of(item, _record(conn, item))
    raise AssertionError(item.action)  # pragma: no cover


def _record(conn: Connection, item: PlannedDrift) -> SyncOutcome:
    """Record an unrecorded asset as `vidpipe.recording` decides (the decision an upload and
    a webhook make too), on the row as the snapshot saw it."""
    assert item.target is not None and item.asset_id is not None and item.playback_id
    decision = recording.decide(
        conn, item.target, item.asset_id, item.playback_id, upload_id=item.upload_id, live=True
    )
    if decision.verdict in _REFUSED:
        return _REFUSED[decision.verdict]
    # The row must still be as the snapshot saw it; one that names the asset already is the
    # next sync's to settle (its plan finishes the upload).
    if decision.verdict is not Verdict.RECORD or decision.row_asset_id != item.expect_asset_id:
        return SyncOutcome.ROW_CHANGED
    return SyncOutcome.RECORDED if recording.write(conn, decision) else SyncOutcome.ROW_CHANGED


def _prune(engine: Engine, gateway: MuxGateway, item: PlannedDrift) -> DriftResult:
    """Delete an orphan on Mux, after re-checking that no row has started naming it; then
    tombstone it and clear any row that started naming it in the meantime."""
    assert item.asset_id is not None
    with transaction(engine) as conn:
        if rows_naming(conn, item.asset_id):
            return DriftResult.of(item, SyncOutcome.KEPT_NAMED)
    try:
        gateway.delete_asset(item.asset_id)
    except MuxError as exc:
        return DriftResult.of(item, SyncOutcome.DELETE_FAILED, str(exc))
    with transaction(engine, immediate=True) as conn:
        remember_dead(conn, item.asset_id, f"sync deleted orphan asset {item.asset_id}")
        lock_asset(conn, item.asset_id)
        clear_asset_everywhere(conn, item.asset_id)
    return DriftResult.of(item, SyncOutcome.DELETED)


def _fix_text(item: PlannedDrift) -> str:
    """What fixing `item` would do, in words."""
    steps = []
    if item.create_playback_id:
        steps.append(f"create a {item.policy} playback ID and record it")
    elif item.playback_id != item.expect_playback_id:
        steps.append(f"record {item.policy} playback ID {item.playback_id}")
    if item.delete_playback_ids:
        steps.append(f"delete playback ID {', '.join(item.delete_playback_ids)}")
    return "; ".join(steps)


def _fix_policy(
    engine: Engine, gateway: MuxGateway, item: PlannedDrift, created: dict[str, str]
) -> DriftResult:
    """Give the asset a playback ID of the row's policy (creating one when it has none; once
    per asset and run, in `created`), record it (compare-and-set on what the snapshot saw),
    then delete the asset's IDs of the other policy that no row names now."""
    assert item.target is not None and item.asset_id is not None and item.policy is not None
    done: list[str] = []
    playback_id = item.playback_id
    if playback_id is None:
        playback_id = created.get(item.asset_id)
    if playback_id is None:
        try:
            playback_id = gateway.create_playback_id(item.asset_id, item.policy).id
        except MuxError as exc:
            return DriftResult.of(item, SyncOutcome.POLICY_FAILED, f"creating a playback ID: {exc}")
        created[item.asset_id] = playback_id
        done.append(f"created {item.policy} playback ID {playback_id}")
    if playback_id != item.expect_playback_id:
        with transaction(engine, immediate=True) as conn:
            lock_asset(conn, item.asset_id)
            if is_tombstoned(conn, item.asset_id):
                return DriftResult.of(item, SyncOutcome.ASSET_GONE, "; ".join(done) or None)
            changed = set_video(
                conn,
                item.target,
                item.asset_id,
                playback_id,
                expect_asset_id=item.expect_asset_id,
                expect_playback_id=item.expect_playback_id,
            )
        if not changed:
            # The new playback ID stays on the asset: harmless, and the next sync records it.
            return DriftResult.of(item, SyncOutcome.ROW_CHANGED, "; ".join(done) or None)
        done.append(f"recorded {playback_id}")
    for old in item.delete_playback_ids:
        with transaction(engine) as conn:
            naming = rows_naming_playback(conn, old)
        if naming:
            names = ", ".join(str(r.target) for r in naming)
            done.append(f"kept {old} ({names} names it)")
            continue
        try:
            gone = gateway.delete_playback_id(item.asset_id, old)
        except MuxError as exc:
            done.append(f"deleting {old}: {exc}")
            return DriftResult.of(item, SyncOutcome.POLICY_FAILED, "; ".join(done))
        done.append(f"deleted {old}" if gone else f"{old} was already gone")
    return DriftResult.of(item, SyncOutcome.FIXED_POLICY, "; ".join(done))


def _fix_settings(gateway: MuxGateway, item: PlannedDrift, *, dry_run: bool) -> DriftResult:
    """One settings item: its calls in order (generated captions on the primary audio track,
    each static rendition, the meta PATCH), or with `dry_run` each step as `would ...`. A Mux
    error stops this asset's calls; the result says what was done before it."""
    fix = item.fix
    skipped = "; ".join(f"skipped: {s}" for s in fix.skipped) if fix and fix.skipped else None
    if item.action is not Action.FIX_SETTINGS or fix is None:
        if skipped:
            return DriftResult.of(item, SyncOutcome.SETTINGS_SKIPPED, skipped)
        return DriftResult.of(item, SyncOutcome.REPORTED)
    assert item.asset_id is not None
    steps = fix.steps()
    if dry_run:
        note = "; ".join([f"would {s}" for s in steps] + ([skipped] if skipped else []))
        return DriftResult.of(item, SyncOutcome.WOULD_FIX_SETTINGS, note)
    done: list[str] = []
    try:
        if fix.captions:
            assert fix.audio_track_id is not None
            gateway.generate_subtitles(item.asset_id, fix.audio_track_id, fix.captions)
            done.append(f"asked for captions {', '.join(fix.captions)}")
        for resolution in fix.renditions:
            gateway.create_static_rendition(item.asset_id, resolution)
            done.append(f"added static rendition {resolution}")
        if fix.meta is not None:
            gateway.update_meta(item.asset_id, fix.meta)
            done.append("updated meta")
    except MuxError as exc:
        done.append(str(exc))
        return DriftResult.of(item, SyncOutcome.SETTINGS_FAILED, "; ".join(done))
    if skipped:
        done.append(skipped)
    return DriftResult.of(item, SyncOutcome.FIXED_SETTINGS, "; ".join(done))


def _settle(engine: Engine, entry: PlannedEntry) -> SyncOutcome:
    """Finish or close one journal entry (one transaction, compare-and-set on its state)."""
    with transaction(engine) as conn:
        if entry.action is Action.FINISH_ENTRY:
            assert entry.asset_id is not None
            finished = journal.finish(conn, entry.journal_id, entry.asset_id, entry.playback_id)
            return SyncOutcome.FINISHED if finished else SyncOutcome.ENTRY_MOVED_ON
        closed = journal.close_if(conn, entry.journal_id, entry.state, entry.detail)
    return SyncOutcome.CLOSED if closed else SyncOutcome.ENTRY_MOVED_ON
