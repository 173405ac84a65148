"""The planner: a snapshot in, a typed plan out. Pure.

This module owns the drift rules (which rows and assets disagree, and how, including the
playback policy each kind of row is held to), what happens to each unfinished upload journal
entry, the orphan pruning policy (minimum age, per-run deletion limit), and the mass-change
guard (a plan that would clear more rows than allowed is blocked whole: applied, it changes
nothing). It reads no database, calls no Mux, and reads no clock: the time is an argument.
The same plan serves `verify` (shown), a dry-run `sync` (shown as "would ...") and `sync`
(applied by `vidpipe.reconcile.apply`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from enum import Enum, StrEnum

from vidpipe.assets import PLAYBACK_POLICIES, PUBLIC, SIGNED, Policies
from vidpipe.journal import State
from vidpipe.mux import Asset
from vidpipe.readiness import FAILED_UPLOAD_STATES
from vidpipe.reconcile.settings_plan import (
    NOT_OURS,
    SettingsFix,
    SettingsGap,
    Wanted,
    is_ours,
    settings_fix,
    settings_gap,
)
from vidpipe.reconcile.snapshot import PendingUpload, Snapshot
from vidpipe.records import RowVideo
from vidpipe.targets import Target, from_passthrough

# Mux upload statuses after which an upload can never produce an asset.


class DriftKind(StrEnum):
    """How the database and Mux disagree (the `kind` of a drift item)."""

    MISSING = "missing_asset"
    ERRORED = "asset_errored"
    MISMATCH = "playback_mismatch"
    UNRECORDED = "unrecorded"
    ORPHAN = "orphan"
    POLICY = "policy_mismatch"
    SETTINGS = "settings_mismatch"


class Action(Enum):
    """What the plan does about a drift item or a journal entry."""

    CLEAR_ROW = "clear row"  # missing or errored asset: empty the row (compare-and-set)
    WRITE_PLAYBACK = "write playback ID"  # the asset's playback ID of the row's policy
    RECORD_ASSET = "record asset"  # an unrecorded asset onto its (empty) row
    REPORT = "report"  # an orphan (pruning not asked for), policy drift (fixing not asked for)
    FIX_POLICY = "fix policy"  # give the asset an ID of the right policy, record it, drop others
    FIX_SETTINGS = "fix settings"  # add the captions, renditions and meta the asset lacks
    PRUNE = "delete from Mux"  # an orphan old enough, within the per-run limit
    KEEP_TOO_YOUNG = "keep: too young"  # an orphan younger than the minimum age
    KEEP_LIMIT = "keep: limit reached"  # an orphan past the per-run deletion limit
    FINISH_ENTRY = "finish"  # the entry's asset is recorded on its row: mark it done
    CLOSE_ENTRY = "close"  # the entry can never finish: abandon it
    NONE = "none"  # an entry still in flight: nothing to do


@dataclass(frozen=True)
class SyncOptions:
    """What a sync may do beyond repairing rows."""

    dry_run: bool = False
    prune_orphans: bool = False
    orphan_min_age: float = 24 * 3600.0  # seconds
    max_deletes: int = 10
    fix_policy: bool = False
    """Repair policy drift (a Mux write: playback IDs created and deleted), not just report it."""
    policies: Policies = field(default_factory=Policies)
    """The playback policy each kind of row is held to."""
    max_clears: int | None = 10
    """Most rows one sync may clear (missing and errored assets together); None: no limit."""
    wanted: Wanted = field(default_factory=Wanted)
    """The captions and static renditions today's settings ask of every recorded asset."""
    fix_settings: bool = False
    """Add what recorded assets lack of `wanted` and of their row's meta (Mux writes)."""
    max_fixes: int | None = 100
    """Most assets one sync may fix settings of; over it, nothing is applied. None: no limit."""


@dataclass(frozen=True)
class Blocked:
    """Why a plan is not to be applied at all: it would clear more rows than allowed (a
    token of another environment, an outage answering 404s, a mass deletion: a human
    decides)."""

    clears: int
    max_clears: int | None
    fixes: int = 0
    """Assets whose settings the plan would fix."""
    max_fixes: int | None = None

    @property
    def over_fixes(self) -> bool:
        return self.max_fixes is not None and self.fixes > self.max_fixes

    @property
    def over_clears(self) -> bool:
        return self.max_clears is not None and self.clears > self.max_clears

    @property
    def reason(self) -> str:
        why = []
        if self.over_clears:
            why.append(
                f"{self.clears} rows would be cleared (missing or errored assets), more than "
                f"the limit of {self.max_clears}"
            )
        if self.over_fixes:
            why.append(
                f"{self.fixes} assets' settings would be fixed, more than the limit of "
                f"{self.max_fixes}"
            )
        return "; ".join(why) + "; nothing was changed"

    def as_json(self) -> dict[str, object]:
        return {
            "reason": self.reason,
            "clears": self.clears,
            "max_clears": self.max_clears,
            "fixes": self.fixes,
            "max_fixes": self.max_fixes,
        }


@dataclass(frozen=True)
class PlannedDrift:
    """One disagreement, and what the plan does about it."""

    kind: DriftKind
    target: Target | None
    asset_id: str | None
    detail: str
    action: Action
    playback_id: str | None = None
    """WRITE_PLAYBACK / RECORD_ASSET: the playback ID to write (None: the asset has none)."""
    expect_asset_id: str | None = None
    """The asset ID the row must still hold for the write to happen (compare-and-set)."""
    expect_playback_id: str | None = None
    """WRITE_PLAYBACK: the playback ID the row must still hold."""
    journal_id: int | None = None
    """RECORD_ASSET: the upload entry that made the asset, finished with the same write."""
    upload_id: str | None = None
    """RECORD_ASSET: the direct upload that made the asset (None: a URL ingest)."""
    asset_created_at: int | None = None
    """Orphans: when Mux created the asset (Unix seconds)."""
    policy: str | None = None
    """POLICY: the policy the row is held to."""
    create_playback_id: bool = False
    """FIX_POLICY: the asset has no playback ID of `policy`; create one and record it."""
    delete_playback_ids: tuple[str, ...] = ()
    """FIX_POLICY: the asset's playback IDs of the other policy that no row will name (each
    re-checked against the database before it is deleted)."""
    settings: SettingsGap | None = None
    """SETTINGS: what the asset lacks."""
    fix: SettingsFix | None = None
    """FIX_SETTINGS: the calls that bring the asset in line."""


@dataclass(frozen=True)
class PlannedEntry:
    """An unfinished upload journal entry, and what the plan does about it."""

    journal_id: int
    target: Target
    upload_id: str | None
    state: State
    detail: str
    action: Action
    asset_id: str | None = None
    """FINISH_ENTRY: the asset its row records."""
    playback_id: str | None = None
    """FINISH_ENTRY: the playback ID its row records."""


@dataclass(frozen=True)
class Plan:
    drift: tuple[PlannedDrift, ...]
    journal: tuple[PlannedEntry, ...]
    checked: int
    """Rows compared."""
    assets: int
    """Mux assets seen."""
    scope: str
    """Either "all" or the one target the plan is about."""
    blocked: Blocked | None = None
    """Set when the mass-change guard stops the whole plan: nothing of it is applied."""


def plan(
    snapshot: Snapshot, options: SyncOptions | None = None, *, now: float | None = None
) -> Plan:
    """The plan for `snapshot`. `now` (Unix seconds) is needed only to prune orphans."""
    options = options or SyncOptions()
    if options.prune_orphans and now is None:
        raise ValueError("pruning orphans needs the current time")
    drift = _row_drift(snapshot, options.policies)
    drift.extend(_policy_drift(snapshot, options))
    drift.extend(_settings_drift(snapshot, options))
    named = {r.asset_id for r in snapshot.rows if r.asset_id}
    entries, expects = _journal_entries(snapshot, named)

    if snapshot.full or expects:
        # Rows whose asset is missing or errored are cleared: judge the assets as they will
        # stand afterwards (that row is empty, its asset named by no one), so one run reaches
        # the fixed point and a second run has nothing left to do.
        gone = (DriftKind.MISSING, DriftKind.ERRORED)
        cleared = {d.target for d in drift if d.kind in gone and d.target is not None}
        kept = {r.asset_id for r in snapshot.rows if r.asset_id and r.target not in cleared}
        # An errored asset a row records now is that row's `asset_errored` item, nothing
        # more: it becomes an orphan only in a later run, once no row names it.
        errored = {d.asset_id for d in drift if d.kind is DriftKind.ERRORED and d.asset_id}
        kept |= errored
        drift.extend(_asset_drift(snapshot, kept, expects, cleared, options.policies))
        # An upload whose asset ended up an orphan (its row now records another video, a
        # newer asset claims the row, or the row is gone) can never finish: close it.
        handled = {e.journal_id for e in entries}
        for d in drift:
            orphaned = expects.get(d.asset_id or "")
            if (
                d.kind is DriftKind.ORPHAN
                and orphaned is not None
                and orphaned.journal_id not in handled
            ):
                entries.append(_entry(orphaned, d.detail, Action.CLOSE_ENTRY))

    # The guard counts every planned clear; over the limit, nothing at all is applied.
    clears = sum(1 for d in drift if d.action is Action.CLEAR_ROW)
    fixes = sum(1 for d in drift if d.action is Action.FIX_SETTINGS)
    blocked = Blocked(clears, options.max_clears, fixes, options.max_fixes)
    return Plan(
        drift=tuple(_decide_orphans(drift, options, now)),
        journal=tuple(entries),
        checked=len(snapshot.rows),
        assets=len(snapshot.assets),
        scope=str(snapshot.target) if snapshot.target else "all",
        blocked=blocked if blocked.over_clears or blocked.over_fixes else None,
    )


def _row_drift(snap: Snapshot, policies: Policies) -> list[PlannedDrift]:
    """Rows whose asset is gone, errored, or lacks the row's playback ID."""
    drift: list[PlannedDrift] = []
    for row in snap.rows:
        if not row.asset_id:
            continue
        aid = row.asset_id
        asset = snap.assets.get(aid)
        if asset is None:
            detail = f"Mux has no asset {aid} (404)"
            drift.append(
                PlannedDrift(
                    DriftKind.MISSING,
                    row.target,
                    aid,
                    detail,
                    Action.CLEAR_ROW,
                    expect_asset_id=aid,
                )
            )
        elif asset.status == "errored":
            detail = f"asset {aid} errored: {asset.error or 'no reason given'}"
            drift.append(
                PlannedDrift(
                    DriftKind.ERRORED,
                    row.target,
                    aid,
                    detail,
                    Action.CLEAR_ROW,
                    expect_asset_id=aid,
                )
            )
        elif asset.status == "ready" and not (
            row.playback_id and asset.has_playback_id(row.playback_id)
        ):
            on_mux = ", ".join(p.id for p in asset.playback_ids) or "none"
            detail = f"row has playback ID {row.playback_id or 'none'}; asset has {on_mux}"
            drift.append(
                PlannedDrift(
                    DriftKind.MISMATCH,
                    row.target,
                    aid,
                    detail,
                    Action.WRITE_PLAYBACK,
                    playback_id=asset.playback_id_for(policies.of(row.target.kind), fallback=True),
                    expect_asset_id=aid,
                    expect_playback_id=row.playback_id,
                )
            )
    return drift


def _policy_drift(snap: Snapshot, options: SyncOptions) -> list[PlannedDrift]:
    """Rows whose playback ID (one of their ready asset's) has another policy than their
    kind's, or whose asset also carries a public playback ID while that policy is signed.

    A row whose playback ID is not its asset's at all is a playback mismatch instead; its
    policy is judged once it names one of the asset's IDs. The fix (with `fix_policy`, for
    assets whose passthrough is vidpipe's) records the asset's ID of the right policy,
    creating one when it has none, then deletes the asset's IDs of the other policy that no
    row will name once the plan is applied.
    """
    found: list[tuple[RowVideo, Asset, str]] = []
    for row in snap.rows:
        asset = snap.assets.get(row.asset_id or "")
        if asset is None or asset.status != "ready" or not row.playback_id:
            continue
        has = asset.policy_of(row.playback_id)
        if has is None:
            continue  # a playback mismatch
        want = options.policies.of(row.target.kind)
        leaks = want == SIGNED and any(p.policy == PUBLIC for p in asset.playback_ids)
        if has != want or leaks:
            found.append((row, asset, want))

    # The playback ID each row will hold once the plan is applied: what the fix records for
    # the rows it fixes (an ID not yet created, for an asset that has none of the policy),
    # what the row holds for every other row.
    will_name = {r.target: r.playback_id for r in snap.rows}
    if options.fix_policy:
        for row, asset, want in found:
            if from_passthrough(asset.passthrough) is not None:
                will_name[row.target] = asset.playback_id_for(want)
    named_after = {pid for pid in will_name.values() if pid}

    drift: list[PlannedDrift] = []
    for row, asset, want in found:
        assert row.playback_id is not None
        has = asset.policy_of(row.playback_id)
        kind = row.target.kind.value
        problems = []
        if has != want:
            problems.append(f"row has {has} playback ID {row.playback_id}; {kind}s are {want}")
        public = [p.id for p in asset.playback_ids if p.policy == PUBLIC]
        if want == SIGNED and public:
            problems.append(f"asset {asset.id} also carries public playback ID {', '.join(public)}")
        detail = "; ".join(problems)
        right = asset.playback_id_for(want)
        others = tuple(
            p.id
            for p in asset.playback_ids
            if p.policy in PLAYBACK_POLICIES and p.policy != want and p.id not in named_after
        )
        action = Action.REPORT
        if options.fix_policy:
            if from_passthrough(asset.passthrough) is None:
                detail += " (the asset's passthrough is not vidpipe's: left alone)"
            elif right is None or right != row.playback_id or others:
                action = Action.FIX_POLICY
            else:
                detail += " (other rows name its other playback IDs: kept)"
        drift.append(
            PlannedDrift(
                DriftKind.POLICY,
                row.target,
                asset.id,
                detail,
                action,
                playback_id=right,
                expect_asset_id=asset.id,
                expect_playback_id=row.playback_id,
                policy=want,
                create_playback_id=right is None,
                delete_playback_ids=others if action is Action.FIX_POLICY else (),
            )
        )
    return drift


def _settings_drift(snap: Snapshot, options: SyncOptions) -> list[PlannedDrift]:
    """Recorded ready assets lacking what today's settings ask (`settings_plan`). With
    `fix_settings`, the fix of each asset that is vidpipe's; an asset shared by several rows
    gets its captions and renditions asked for once."""
    drift: list[PlannedDrift] = []
    asked: set[str] = set()
    users = Counter(r.asset_id for r in snap.rows)
    for row in snap.rows:
        asset = snap.assets.get(row.asset_id or "")
        if asset is None or asset.status != "ready":
            continue
        gap = settings_gap(row, asset, options.wanted, judge_meta=users[asset.id] == 1)
        if not gap:
            continue
        detail = gap.text
        action = Action.REPORT
        fix = None
        if options.fix_settings:
            if not is_ours(asset):
                detail += f" ({NOT_OURS})"
            else:
                fix = settings_fix(row, asset, gap)
                if asset.id in asked:
                    fix = replace(fix, captions=(), renditions=())
                asked.add(asset.id)
                for why in fix.skipped:
                    detail += f" ({why})"
                action = Action.FIX_SETTINGS if fix.calls else Action.REPORT
        drift.append(
            PlannedDrift(
                DriftKind.SETTINGS,
                row.target,
                asset.id,
                detail,
                action,
                expect_asset_id=asset.id,
                settings=gap,
                fix=fix,
            )
        )
    return drift


def _entry(
    p: PendingUpload,
    detail: str,
    action: Action,
    *,
    asset_id: str | None = None,
    playback_id: str | None = None,
) -> PlannedEntry:
    return PlannedEntry(
        p.journal_id, p.target, p.upload_id, p.state, detail, action, asset_id, playback_id
    )


def _journal_entries(
    snap: Snapshot, named: set[str]
) -> tuple[list[PlannedEntry], dict[str, PendingUpload]]:
    """What happens to each unfinished upload, and which asset each one expects."""
    entries: list[PlannedEntry] = []
    expects: dict[str, PendingUpload] = {}
    by_upload = {a.upload_id: a for a in snap.assets.values() if a.upload_id}
    for p in snap.pending:
        asset = snap.assets.get(p.asset_id or "") or by_upload.get(p.upload_id or "")
        if asset is not None:
            expects[asset.id] = p
        own = snap.row_by_target.get(p.target)
        if (
            asset is not None
            and asset.status != "errored"
            and own is not None
            and own.asset_id == asset.id
        ):
            # Recorded already (a webhook, another run): the upload is done, not abandoned.
            detail = f"asset {asset.id} is already recorded on {p.target}"
            entries.append(
                _entry(
                    p, detail, Action.FINISH_ENTRY, asset_id=asset.id, playback_id=own.playback_id
                )
            )
        elif asset is not None and asset.id in named:
            entries.append(_entry(p, f"asset {asset.id} is already recorded", Action.CLOSE_ENTRY))
        elif asset is None and p.asset_id:
            # The snapshot asked Mux for it directly: only a definite 404 gets here.
            detail = f"asset {p.asset_id} is gone from Mux (404)"
            entries.append(_entry(p, detail, Action.CLOSE_ENTRY))
        elif asset is not None and asset.status == "errored":
            entries.append(_entry(p, f"asset {asset.id} errored", Action.CLOSE_ENTRY))
        elif asset is None and p.upload_id:
            entries.append(_upload_entry(snap, p, p.upload_id))
    return entries, expects


def _upload_entry(snap: Snapshot, p: PendingUpload, upload_id: str) -> PlannedEntry:
    """An unfinished upload with no asset: what Mux says of the upload decides."""
    if upload_id not in snap.uploads:
        return _entry(p, "", Action.NONE)  # not asked: no answer, no action
    status = snap.uploads[upload_id]
    if status is None:
        return _entry(p, "Mux has no such upload", Action.CLOSE_ENTRY)
    if status in FAILED_UPLOAD_STATES:
        return _entry(p, f"Mux upload is {status}", Action.CLOSE_ENTRY)
    if status == "waiting":
        detail = "upload still waiting for bytes (re-run the upload to resume)"
        return _entry(p, detail, Action.NONE)
    return _entry(p, f"upload is {status}; asset not ready yet", Action.NONE)


def _asset_drift(
    snap: Snapshot,
    named: set[str],
    expects: dict[str, PendingUpload],
    cleared: set[Target],
    policies: Policies,
) -> list[PlannedDrift]:
    """Assets no (remaining) row names: unrecorded on an empty row, or orphans."""
    drift: list[PlannedDrift] = []
    # Newest first: when several ready assets name one empty row, the newest is recorded.
    candidates = sorted(
        (a for a in snap.assets.values() if a.id not in named),
        key=lambda a: (a.created_at or 0, a.id),
        reverse=True,
    )
    claimed: set[Target] = set()
    for asset in candidates:
        target = from_passthrough(asset.passthrough)
        if target is None:
            continue  # not vidpipe's: never reported, never touched
        if not snap.full and asset.id not in expects:
            continue
        entry = expects.get(asset.id)
        row = None if target in cleared else snap.row_by_target.get(target)
        if asset.status not in ("ready", "errored"):
            continue  # preparing (in flight), or a status Mux added later: not drift
        if not snap.exists(target):
            drift.append(_orphan(asset, target, f"{target} does not exist"))
        elif asset.status == "errored":
            why = f"errored and recorded nowhere ({asset.error or 'no reason'})"
            drift.append(_orphan(asset, target, why))
        elif target in claimed:
            drift.append(_orphan(asset, target, f"{target} gets a newer asset of its own"))
        elif row is None or (entry is not None and row.asset_id == entry.replace_asset_id):
            claimed.add(target)
            replaces = row.asset_id if row is not None else None
            detail = f"ready asset for {target} is not recorded"
            if replaces:
                detail += f" (it replaces {replaces})"
            elif target in cleared:
                lost = snap.row_by_target[target].asset_id
                detail += f" (it replaces {lost}, which is being cleared)"
            drift.append(
                PlannedDrift(
                    DriftKind.UNRECORDED,
                    target,
                    asset.id,
                    detail,
                    Action.RECORD_ASSET,
                    playback_id=asset.playback_id_for(policies.of(target.kind), fallback=True),
                    expect_asset_id=replaces,
                    journal_id=entry.journal_id if entry else None,
                    upload_id=asset.upload_id,
                )
            )
        else:
            why = f"{target} records another asset ({row.asset_id})"
            drift.append(_orphan(asset, target, why))
    return drift


def _orphan(asset: Asset, target: Target, why: str) -> PlannedDrift:
    return PlannedDrift(
        DriftKind.ORPHAN,
        target,
        asset.id,
        f"asset {asset.id}: {why}",
        Action.REPORT,
        asset_created_at=asset.created_at,
    )


def _decide_orphans(
    drift: list[PlannedDrift], options: SyncOptions, now: float | None
) -> list[PlannedDrift]:
    """Orphans are reported, or pruned when asked: old enough, at most `max_deletes` a run
    (a dry run counts the deletions it would make, so it shows what the real run does)."""
    if not options.prune_orphans:
        return drift
    assert now is not None
    out: list[PlannedDrift] = []
    deletes = 0
    for d in drift:
        if d.kind is DriftKind.ORPHAN:
            age = now - d.asset_created_at if d.asset_created_at else 0.0
            if age < options.orphan_min_age:
                d = replace(d, action=Action.KEEP_TOO_YOUNG)
            elif deletes >= options.max_deletes:
                d = replace(d, action=Action.KEEP_LIMIT)
            else:
                deletes += 1
                d = replace(d, action=Action.PRUNE)
        out.append(d)
    return out
