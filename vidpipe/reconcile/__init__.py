"""Reconciliation: `verify` and `sync`, two consumers of one walk of both sides.

    snapshot.take_snapshot  every read: database first, then Mux
    plan.plan               pure: the drift, the journal entries' fate, orphan pruning
    apply.apply             every write: records/journal, compare-and-set, one transaction each

`verify` takes the snapshot and plans; it applies nothing. `sync` does all three under the
"sync" run lock (a dry run takes no lock and writes nothing). Anything short of a definite
answer from Mux happens while the snapshot is taken, before anything is written: the run then
changes nothing and raises. This module holds the entry points and their `Report`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from vidpipe.assets import Policies
from vidpipe.locks import run_lock
from vidpipe.mux import Environment, MuxGateway
from vidpipe.progress import OnProgress, ignore
from vidpipe.reconcile import apply as _apply
from vidpipe.reconcile import plan as _plan
from vidpipe.reconcile.apply import DriftResult, JournalResult, SyncOutcome
from vidpipe.reconcile.plan import (
    Action,
    Blocked,
    DriftKind,
    Plan,
    PlannedDrift,
    PlannedEntry,
    SyncOptions,
)
from vidpipe.reconcile.settings_plan import SettingsGap, Wanted
from vidpipe.reconcile.snapshot import PendingUpload, Snapshot, take_snapshot
from vidpipe.targets import Target

__all__ = [
    "Action",
    "Blocked",
    "DriftKind",
    "DriftResult",
    "JournalResult",
    "PendingUpload",
    "Plan",
    "PlannedDrift",
    "PlannedEntry",
    "Report",
    "SettingsGap",
    "Snapshot",
    "SyncOptions",
    "SyncOutcome",
    "Wanted",
    "sync",
    "take_snapshot",
    "verify",
]


@dataclass
class Report:
    """What `verify` found, or what `sync` found and did."""

    command: str  # "verify" or "sync"
    checked: int
    assets: int
    drift: list[DriftResult] = field(default_factory=list)
    journal: list[JournalResult] = field(default_factory=list)
    dry_run: bool = False
    failed: list[str] = field(default_factory=list)
    api_calls: int = 0
    rate_limited: int = 0
    scope: str = "all"
    blocked: Blocked | None = None
    """sync: the plan would clear more rows than allowed, so nothing was applied."""
    environment: Environment | None = None
    """The Mux environment compared with (set by the facade once the token is checked)."""

    @property
    def ok(self) -> bool:
        """verify: no drift. sync: nothing it tried failed (reported orphans are fine) and
        the plan was not blocked."""
        if self.command == "verify":
            return not self.drift
        return not self.failed and self.blocked is None

    def as_json(self) -> dict[str, Any]:
        with_action = self.command == "sync"
        doc: dict[str, Any] = {
            "ok": self.ok,
            "environment": self.environment.as_json() if self.environment else None,
            "checked": self.checked,
            "drift": [d.as_json(with_action) for d in self.drift],
            "assets": self.assets,
            "scope": self.scope,
            "journal": [j.as_json() for j in self.journal],
            "api_calls": self.api_calls,
            "rate_limited": self.rate_limited,
        }
        if self.command == "sync":
            doc["dry_run"] = self.dry_run
            doc["failed"] = self.failed
            doc["blocked"] = self.blocked.as_json() if self.blocked else None
        return doc


def verify(
    engine: Engine,
    gateway: MuxGateway,
    target: Target | None = None,
    *,
    policies: Policies | None = None,
    wanted: Wanted | None = None,
    on_progress: OnProgress = ignore,
) -> Report:
    """Compare the database with Mux (everything, or one target); change nothing. Rows are
    held to the playback policy of their kind in `policies` (public for both when None), and
    their assets to the captions and renditions in `wanted` (none when None)."""
    calls0 = gateway.stats.calls
    options = SyncOptions(
        policies=policies or Policies(), max_clears=None, wanted=wanted or Wanted()
    )
    snapshot = take_snapshot(engine, gateway, target, on_progress=on_progress)
    planned = _plan.plan(snapshot, options)
    return Report(
        command="verify",
        checked=planned.checked,
        assets=planned.assets,
        drift=[DriftResult.of(d, None) for d in planned.drift],
        journal=[JournalResult.of(e, None) for e in planned.journal],
        api_calls=gateway.stats.calls - calls0,
        rate_limited=gateway.stats.rate_limited,
        scope=planned.scope,
    )


def sync(
    engine: Engine,
    gateway: MuxGateway,
    options: SyncOptions,
    *,
    clock: Callable[[], float] = time.time,
    before_apply: Callable[[], None] | None = None,
    on_progress: OnProgress = ignore,
) -> Report:
    """Make the database agree with Mux. One sync at a time: raises `LockHeld` at once when
    another holds the lock (a dry run writes nothing and takes no lock).

    `before_apply` is called after planning and before the first write (in a dry run too): a
    test hook to step a concurrent writer in between. `on_progress` hears the walk and then
    each planned item applied.
    """
    if options.dry_run:
        return _sync(engine, gateway, options, clock, before_apply, on_progress)
    with run_lock(engine, "sync"):
        return _sync(engine, gateway, options, clock, before_apply, on_progress)


def _sync(
    engine: Engine,
    gateway: MuxGateway,
    options: SyncOptions,
    clock: Callable[[], float],
    before_apply: Callable[[], None] | None,
    on_progress: OnProgress,
) -> Report:
    calls0 = gateway.stats.calls
    snapshot = take_snapshot(engine, gateway, on_progress=on_progress)
    planned = _plan.plan(snapshot, options, now=clock())
    if before_apply is not None:
        before_apply()
    results = _apply.apply(
        engine, gateway, planned, dry_run=options.dry_run, on_progress=on_progress
    )
    drift = [r for r in results if isinstance(r, DriftResult)]
    return Report(
        command="sync",
        checked=planned.checked,
        assets=planned.assets,
        drift=drift,
        journal=[r for r in results if isinstance(r, JournalResult)],
        dry_run=options.dry_run,
        failed=[f for f in (r.failure for r in drift) if f],
        api_calls=gateway.stats.calls - calls0,
        rate_limited=gateway.stats.rate_limited,
        scope=planned.scope,
        blocked=planned.blocked,
    )
