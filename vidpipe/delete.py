"""`delete`: remove an asset from Mux and clear it from every row that names it.

Owns the delete plan (which asset, which rows; refusals for a target with no video, an asset
nobody knows, or an asset that is not vidpipe's) and the delete itself: under the "sync" run
lock, delete on Mux, confirm the 404, then in one transaction remember the asset as dead
(`vidpipe.records` tombstone), clear every row naming it and fail its unfinished uploads
(`vidpipe.journal`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from vidpipe import journal
from vidpipe.db import transaction
from vidpipe.errors import TargetNotFound, UsageError, VidpipeError
from vidpipe.locks import run_lock
from vidpipe.mux import MuxGateway
from vidpipe.progress import OnProgress, Step, StepProgress, ignore
from vidpipe.records import (
    clear_asset_everywhere,
    lock_asset,
    read_row,
    remember_dead,
    rows_naming,
)
from vidpipe.targets import Target, from_passthrough


class DeleteChoiceError(UsageError):
    """Not exactly one of an asset, a lesson or a course named to delete, or an empty asset
    ID. `problem` is `"count"` or `"empty"`; the CLI words it with its option names."""

    def __init__(self, problem: str, message: str) -> None:
        super().__init__(message)
        self.problem = problem


def choose_asset(asset_id: str | None, *targets: object) -> str | None:
    """The asset ID to delete (stripped), or None when a target is named instead: exactly one
    of `asset_id` and `targets` (a lesson and a course, or a `Target`) must be given; else
    `DeleteChoiceError`."""
    if sum(x is not None for x in (asset_id, *targets)) != 1:
        raise DeleteChoiceError("count", "name exactly one of an asset, a lesson or a course")
    if asset_id is not None:
        asset_id = asset_id.strip()
        if not asset_id:
            raise DeleteChoiceError("empty", "the asset ID to delete is empty")
    return asset_id


@dataclass(frozen=True)
class DeletePlan:
    """The asset to delete and the rows that name it now."""

    asset_id: str
    targets: list[Target]


@dataclass
class DeleteResult:
    asset_id: str
    deleted_on_mux: bool
    already_gone: bool
    cleared: list[Target]

    ok = True  # a result, never a failure: failures raise

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "asset_id": self.asset_id,
            "deleted_on_mux": self.deleted_on_mux,
            "already_gone": self.already_gone,
            "cleared": [t.as_json() for t in self.cleared],
        }


def plan_delete(
    engine: Engine,
    gateway: MuxGateway,
    *,
    asset_id: str | None = None,
    target: Target | None = None,
) -> DeletePlan:
    """What deleting `asset_id` (or `target`'s asset) would do. Changes nothing; raises
    `UsageError` (`TargetNotFound` for a missing row) when there is nothing vidpipe may delete."""
    return check_on_mux(gateway, plan_rows(engine, asset_id=asset_id, target=target))


def plan_rows(
    engine: Engine, *, asset_id: str | None = None, target: Target | None = None
) -> DeletePlan:
    """The database half of `plan_delete` (no Mux call): the asset and the rows naming it;
    `UsageError` for a missing row, a row with no video or an empty asset ID."""
    asset_id = choose_asset(asset_id, target)
    with transaction(engine) as conn:
        if target is not None:
            row = read_row(conn, target)
            if row is None:
                raise TargetNotFound(target)
            if not row.asset_id:
                raise UsageError(f"{target} has no video to delete")
            asset_id = row.asset_id
        assert asset_id is not None
        rows = rows_naming(conn, asset_id)
    return DeletePlan(asset_id, [r.target for r in rows])


def check_on_mux(gateway: MuxGateway, plan: DeletePlan) -> DeletePlan:
    """The Mux half of `plan_delete`: an asset no row names must be on Mux and vidpipe's."""
    if not plan.targets:
        asset = gateway.find_asset(plan.asset_id)
        if asset is None:
            raise UsageError(f"asset {plan.asset_id} is neither on Mux nor named by any row")
        if from_passthrough(asset.passthrough) is None:
            raise UsageError(
                f"asset {plan.asset_id} is not vidpipe's (its passthrough names no lesson or "
                "course) and no row names it; delete it from the Mux dashboard instead"
            )
    return plan


def delete(
    engine: Engine, gateway: MuxGateway, plan: DeletePlan, *, on_progress: OnProgress = ignore
) -> DeleteResult:
    """Delete on Mux, confirm the 404, then clear every row naming the asset (one
    transaction). Raises `LockHeld` at once while a sync runs. `on_progress` hears the step
    (and, through the gateway, its requests and waits)."""
    with run_lock(engine, "sync"):
        on_progress(StepProgress(Step.DELETING, 0, 1))
        deleted = gateway.delete_asset(plan.asset_id)
        if gateway.find_asset(plan.asset_id) is not None:
            raise VidpipeError(
                f"Mux still has asset {plan.asset_id} after deleting it; rows left unchanged, "
                "re-run to try again"
            )
        with transaction(engine, immediate=True) as conn:
            remember_dead(conn, plan.asset_id, f"vidpipe delete removed asset {plan.asset_id}")
            lock_asset(conn, plan.asset_id)  # the lock order of `vidpipe.records`
            cleared = clear_asset_everywhere(conn, plan.asset_id)
            journal.fail_matching(conn, "asset deleted", asset_id=plan.asset_id)
        on_progress(StepProgress(Step.DELETING, 1, 1))
    return DeleteResult(plan.asset_id, deleted, not deleted, cleared)
