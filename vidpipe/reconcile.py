"""Reconciliation: snapshot (database rows + journal + Mux assets) -> drift -> plan -> apply.

`verify` computes the plan and applies nothing; `sync --dry-run` shows it; `sync` applies it,
one transaction per change, each a compare-and-set through records.py, so a row that changed
since the snapshot (a concurrent upload) is left alone. `status` and `delete` live here too.

Any failure short of a definite answer from Mux happens while the snapshot is taken, before
anything is written: the run then changes nothing and exits 1.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, update

from vidpipe import journal
from vidpipe.db import UNFINISHED_STATES, UploadJournal, transaction, utcnow
from vidpipe.errors import MuxError, UsageError, VidpipeError
from vidpipe.locks import run_lock
from vidpipe.mux import Asset, MuxGateway
from vidpipe.records import (
    RowVideo,
    clear_asset_everywhere,
    clear_video,
    existing_ids,
    prune_tombstones,
    read_row,
    remember_dead,
    rows_naming,
    rows_with_video,
    set_video,
)
from vidpipe.targets import Kind, Target, from_passthrough

MISSING = "missing_asset"
ERRORED = "asset_errored"
MISMATCH = "playback_mismatch"
UNRECORDED = "unrecorded"
ORPHAN = "orphan"

# Few rows: one GET each is cheaper than walking the whole catalogue.
STATUS_GET_LIMIT = 25


@dataclass
class Drift:
    kind: str
    target: Target | None
    asset_id: str | None
    detail: str
    action: str | None = None
    # What the plan needs to apply it (not part of the output).
    playback_id: str | None = None
    expect_asset_id: str | None = None
    expect_playback_id: str | None = None
    journal_id: int | None = None
    asset_created_at: int | None = None

    def as_json(self, with_action: bool) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "kind": self.kind,
            "target": self.target.as_json() if self.target else None,
            "asset_id": self.asset_id,
            "detail": self.detail,
        }
        if with_action:
            doc["action"] = self.action
        return doc


@dataclass
class JournalItem:
    """An unfinished upload the snapshot found, and what happens to it."""

    journal_id: int
    target: Target
    upload_id: str | None
    state: str
    detail: str
    action: str | None = None
    # For action "finish": the IDs its target row already records (not part of the output).
    asset_id: str | None = None
    playback_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "journal_id": self.journal_id,
            "target": self.target.as_json(),
            "upload_id": self.upload_id,
            "state": self.state,
            "detail": self.detail,
            "action": self.action,
        }


@dataclass
class Report:
    command: str
    checked: int
    assets: int
    drift: list[Drift] = field(default_factory=list)
    journal: list[JournalItem] = field(default_factory=list)
    dry_run: bool = False
    failed: list[str] = field(default_factory=list)
    api_calls: int = 0
    rate_limited: int = 0
    scope: str = "all"

    @property
    def ok(self) -> bool:
        if self.command == "verify":
            return not self.drift
        return not self.failed

    def as_json(self) -> dict[str, Any]:
        with_action = self.command == "sync"
        doc: dict[str, Any] = {
            "ok": self.ok,
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
        return doc


@dataclass
class SyncOptions:
    dry_run: bool = False
    prune_orphans: bool = False
    orphan_min_age: float = 24 * 3600.0
    max_deletes: int = 10


@dataclass
class StatusEntry:
    target: Target
    title: str | None
    db_asset_id: str | None
    db_playback_id: str | None
    mux_status: str | None  # ready / preparing / errored / missing / None (no asset)
    mux_playback_ids: list[str] = field(default_factory=list)
    shared_with: list[Target] = field(default_factory=list)
    upload: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "target": self.target.as_json(),
            "title": self.title,
            "db": {"asset_id": self.db_asset_id, "playback_id": self.db_playback_id},
            "mux": {"status": self.mux_status, "playback_ids": self.mux_playback_ids},
            "shared_with": [t.as_json() for t in self.shared_with],
            "upload": self.upload,
        }


@dataclass
class StatusReport:
    entries: list[StatusEntry]

    def as_json(self) -> dict[str, Any]:
        return {"ok": True, "targets": [e.as_json() for e in self.entries]}


@dataclass
class DeletePlan:
    asset_id: str
    targets: list[Target]


@dataclass
class DeleteResult:
    asset_id: str
    deleted_on_mux: bool
    already_gone: bool
    cleared: list[Target]

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": True,
            "asset_id": self.asset_id,
            "deleted_on_mux": self.deleted_on_mux,
            "already_gone": self.already_gone,
            "cleared": [t.as_json() for t in self.cleared],
        }


@dataclass
class Snapshot:
    rows: list[RowVideo]
    assets: dict[str, Asset]
    unfinished: list[UploadJournal]
    existing: dict[Kind, set[int]]
    row_by_target: dict[Target, RowVideo]
    full: bool


class Reconciler:
    """verify, sync, status and delete over one snapshot/plan/apply engine."""

    def __init__(
        self, engine: Engine, gateway: MuxGateway, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.engine = engine
        self.mux = gateway
        self.clock = clock

    # -- snapshot -----------------------------------------------------------------------

    def snapshot(self, target: Target | None = None) -> Snapshot:
        """Database first, then Mux: a row recorded after the DB read is simply not seen."""
        with transaction(self.engine) as conn:
            rows = rows_with_video(conn, target)
            existing = {kind: existing_ids(conn, kind) for kind in Kind}
            if target is not None:
                row = read_row(conn, target)
                if row is None:
                    raise UsageError(f"{target} does not exist in the database")
        unfinished = journal.all_unfinished(self.engine)
        if target is not None:
            unfinished = [e for e in unfinished if journal.target_of(e) == target]
        assets: dict[str, Asset] = {}
        full = target is None
        if full:
            for asset in self.mux.iter_assets():
                assets[asset.id] = asset
        # Rows naming an asset the listing lacks: a direct GET decides (only a 404 is missing).
        for row in rows:
            aid = row.asset_id
            if aid and aid not in assets:
                found = self.mux.find_asset(aid)
                if found is not None:
                    assets[aid] = found
        # Unfinished uploads: their asset, if Mux created one.
        by_upload = {a.upload_id: a for a in assets.values() if a.upload_id}
        for entry in unfinished:
            if entry.asset_id and entry.asset_id not in assets:
                found = self.mux.find_asset(entry.asset_id)
                if found is not None:
                    assets[found.id] = found
            elif not full and entry.upload_id and entry.upload_id not in by_upload:
                for asset in self.mux.iter_assets(upload_id=entry.upload_id):
                    assets[asset.id] = asset
        return Snapshot(
            rows=rows,
            assets=assets,
            unfinished=unfinished,
            existing=existing,
            row_by_target={r.target: r for r in rows},
            full=full,
        )

    # -- drift --------------------------------------------------------------------------

    def find_drift(self, snap: Snapshot) -> tuple[list[Drift], list[JournalItem]]:
        drift: list[Drift] = []
        named: set[str] = set()
        for row in snap.rows:
            assert row.asset_id is not None
            named.add(row.asset_id)
            asset = snap.assets.get(row.asset_id)
            if asset is None:
                drift.append(
                    Drift(
                        MISSING,
                        row.target,
                        row.asset_id,
                        f"Mux has no asset {row.asset_id} (404)",
                        expect_asset_id=row.asset_id,
                    )
                )
            elif asset.status == "errored":
                drift.append(
                    Drift(
                        ERRORED,
                        row.target,
                        row.asset_id,
                        f"asset {row.asset_id} errored: {asset.error or 'no reason given'}",
                        expect_asset_id=row.asset_id,
                    )
                )
            elif asset.status == "ready" and not (
                row.playback_id and asset.has_playback_id(row.playback_id)
            ):
                drift.append(
                    Drift(
                        MISMATCH,
                        row.target,
                        row.asset_id,
                        f"row has playback ID {row.playback_id or 'none'}; asset has "
                        f"{', '.join(p.id for p in asset.playback_ids) or 'none'}",
                        playback_id=asset.public_playback_id,
                        expect_asset_id=row.asset_id,
                        expect_playback_id=row.playback_id,
                    )
                )

        # Journal entries name the asset they expect; a ready one of theirs is unrecorded.
        expects: dict[str, UploadJournal] = {}
        items: list[JournalItem] = []
        assets_by_upload = {a.upload_id: a for a in snap.assets.values() if a.upload_id}
        for entry in snap.unfinished:
            target = journal.target_of(entry)
            asset = snap.assets.get(entry.asset_id or "") or assets_by_upload.get(
                entry.upload_id or ""
            )
            if asset is not None:
                expects[asset.id] = entry
            own = snap.row_by_target.get(target)
            if (
                asset is not None
                and asset.status != "errored"
                and own is not None
                and own.asset_id == asset.id
            ):
                # Recorded already (a webhook, another run): the upload is done, not abandoned.
                items.append(
                    JournalItem(
                        entry.id or 0,
                        target,
                        entry.upload_id,
                        entry.state,
                        f"asset {asset.id} is already recorded on {target}",
                        "finish",
                        asset_id=asset.id,
                        playback_id=own.playback_id,
                    )
                )
            elif asset is not None and asset.id in named:
                items.append(
                    JournalItem(
                        entry.id or 0,
                        target,
                        entry.upload_id,
                        entry.state,
                        f"asset {asset.id} is already recorded",
                        "close",
                    )
                )
            elif asset is None and entry.asset_id:
                # The snapshot asked Mux for it directly: only a definite 404 gets here.
                items.append(
                    JournalItem(
                        entry.id or 0,
                        target,
                        entry.upload_id,
                        entry.state,
                        f"asset {entry.asset_id} is gone from Mux (404)",
                        "close",
                    )
                )
            elif asset is not None and asset.status == "errored":
                items.append(
                    JournalItem(
                        entry.id or 0,
                        target,
                        entry.upload_id,
                        entry.state,
                        f"asset {asset.id} errored",
                        "close",
                    )
                )
            elif asset is None and entry.upload_id:
                items.append(
                    JournalItem(
                        entry.id or 0, target, entry.upload_id, entry.state, "", "check-upload"
                    )
                )

        if snap.full or expects:
            # The plan clears rows whose asset is missing or errored: judge the assets as they
            # will stand afterwards (that row is empty, its asset named by no one), so one run
            # reaches the fixed point and a second run has nothing left to do.
            cleared = {d.target for d in drift if d.kind in (MISSING, ERRORED) and d.target}
            kept = {r.asset_id for r in snap.rows if r.asset_id and r.target not in cleared}
            drift.extend(self._asset_drift(snap, kept, expects, cleared))
            # An upload whose asset ended up an orphan (its row now records another video,
            # a newer asset claims the row, or the row is gone) can never finish: close it.
            handled = {i.journal_id for i in items}
            for d in drift:
                orphaned = expects.get(d.asset_id or "")
                if d.kind == ORPHAN and orphaned is not None and orphaned.id not in handled:
                    items.append(
                        JournalItem(
                            orphaned.id or 0,
                            journal.target_of(orphaned),
                            orphaned.upload_id,
                            orphaned.state,
                            d.detail,
                            "close",
                        )
                    )
        return drift, items

    def _asset_drift(
        self,
        snap: Snapshot,
        named: set[str],
        expects: dict[str, UploadJournal],
        cleared: set[Target],
    ) -> list[Drift]:
        drift: list[Drift] = []
        # Newest ready asset first: when several name one empty row, the newest is recorded.
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
            exists = target.id in snap.existing[target.kind]
            if asset.status not in ("ready", "errored"):
                continue  # preparing (in flight), or a status Mux added later: not drift
            if not exists:
                drift.append(self._orphan(asset, target, f"{target} does not exist"))
            elif asset.status == "errored":
                drift.append(
                    self._orphan(
                        asset,
                        target,
                        f"errored and recorded nowhere ({asset.error or 'no reason'})",
                    )
                )
            elif target in claimed:
                drift.append(self._orphan(asset, target, f"{target} gets a newer asset of its own"))
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
                    Drift(
                        UNRECORDED,
                        target,
                        asset.id,
                        detail,
                        playback_id=asset.public_playback_id,
                        expect_asset_id=replaces,
                        journal_id=entry.id if entry else None,
                    )
                )
            else:
                drift.append(
                    self._orphan(asset, target, f"{target} records another asset ({row.asset_id})")
                )
        return drift

    @staticmethod
    def _orphan(asset: Asset, target: Target, why: str) -> Drift:
        return Drift(
            ORPHAN, target, asset.id, f"asset {asset.id}: {why}", asset_created_at=asset.created_at
        )

    # -- verify -------------------------------------------------------------------------

    def verify(self, target: Target | None = None) -> Report:
        calls0 = self.mux.stats.calls
        snap = self.snapshot(target)
        drift, items = self.find_drift(snap)
        self._check_uploads(items)
        return self._report("verify", snap, drift, items, calls0, target)

    def _report(
        self,
        command: str,
        snap: Snapshot,
        drift: list[Drift],
        items: list[JournalItem],
        calls0: int,
        target: Target | None,
    ) -> Report:
        return Report(
            command=command,
            checked=len(snap.rows),
            assets=len(snap.assets),
            drift=drift,
            journal=items,
            api_calls=self.mux.stats.calls - calls0,
            rate_limited=self.mux.stats.rate_limited,
            scope=str(target) if target else "all",
        )

    def _check_uploads(self, items: list[JournalItem]) -> None:
        """For unfinished uploads with no asset yet, ask Mux how the upload stands."""
        for item in items:
            if item.action != "check-upload" or not item.upload_id:
                continue
            try:
                upload = self.mux.get_upload(item.upload_id)
            except MuxError as exc:
                if exc.status == 404:
                    item.detail, item.action = "Mux has no such upload", "close"
                    continue
                raise
            if upload.status in ("timed_out", "cancelled", "errored"):
                item.detail = f"Mux upload is {upload.status}"
                item.action = "close"
            elif upload.status == "waiting":
                item.detail = "upload still waiting for bytes (re-run the upload to resume)"
                item.action = None
            else:
                item.detail = f"upload is {upload.status}; asset not ready yet"
                item.action = None

    # -- sync ---------------------------------------------------------------------------

    def sync(self, options: SyncOptions) -> Report:
        calls0 = self.mux.stats.calls
        if options.dry_run:
            return self._sync_locked(options, calls0)
        with run_lock(self.engine, "sync"):
            return self._sync_locked(options, calls0)

    def _sync_locked(self, options: SyncOptions, calls0: int) -> Report:
        snap = self.snapshot()
        drift, items = self.find_drift(snap)
        self._check_uploads(items)
        report = self._report("sync", snap, drift, items, calls0, None)
        report.dry_run = options.dry_run
        deletes = 0
        now = self.clock()
        for item in drift:
            if item.kind == ORPHAN:
                age = now - item.asset_created_at if item.asset_created_at else 0.0
                if not options.prune_orphans:
                    item.action = "reported"
                elif age < options.orphan_min_age:
                    item.action = "kept: younger than --orphan-min-age"
                elif deletes >= options.max_deletes:
                    item.action = "kept: --max-deletes reached"
                elif options.dry_run:
                    deletes += 1
                    item.action = "would delete from Mux"
                else:
                    deletes += 1
                    item.action = self._prune(item, report)
                continue
            if options.dry_run:
                item.action = "would " + _VERB[item.kind]
                continue
            item.action = self._apply(item)
        for jitem in items:
            if jitem.action == "finish":
                if options.dry_run:
                    jitem.action = "would finish"
                else:
                    assert jitem.asset_id is not None
                    with transaction(self.engine) as conn:
                        _finish_journal(conn, jitem.journal_id, jitem.asset_id, jitem.playback_id)
                    jitem.action = "finished"
            elif jitem.action == "close":
                if options.dry_run:
                    jitem.action = "would close"
                else:
                    with transaction(self.engine) as conn:
                        closed = _close_journal(conn, jitem.journal_id, jitem.state, jitem.detail)
                    jitem.action = "closed" if closed else "skipped: the upload moved on"
            elif jitem.action == "check-upload":
                jitem.action = None
        if not options.dry_run:
            with transaction(self.engine) as conn:
                prune_tombstones(conn)
        report.api_calls = self.mux.stats.calls - calls0
        report.rate_limited = self.mux.stats.rate_limited
        return report

    def _apply(self, item: Drift) -> str:
        """One drift item, one transaction, compare-and-set."""
        assert item.target is not None and item.asset_id is not None
        with transaction(self.engine) as conn:
            if item.kind in (MISSING, ERRORED):
                # Mux's answer is definite whether or not the row still names the asset.
                why = f"sync found asset {item.asset_id} gone ({item.kind})"
                remember_dead(conn, item.asset_id, why)
                if not clear_video(conn, item.target, expect_asset_id=item.asset_id):
                    return _ROW_CHANGED
                _close_journal_for_asset(conn, item.asset_id, item.kind)
                return "cleared row"
            if not item.playback_id:
                return "skipped: the asset has no public playback ID"
            if item.kind == MISMATCH:
                changed = set_video(
                    conn,
                    item.target,
                    item.asset_id,
                    item.playback_id,
                    expect_asset_id=item.asset_id,
                    expect_playback_id=item.expect_playback_id,
                )
                return f"wrote playback ID {item.playback_id}" if changed else _ROW_CHANGED
            if item.kind == UNRECORDED:
                changed = set_video(
                    conn,
                    item.target,
                    item.asset_id,
                    item.playback_id,
                    expect_asset_id=item.expect_asset_id,
                )
                if not changed:
                    return _ROW_CHANGED
                if item.journal_id:
                    _finish_journal(conn, item.journal_id, item.asset_id, item.playback_id)
                return "recorded asset"
        raise AssertionError(item.kind)  # pragma: no cover

    def _prune(self, item: Drift, report: Report) -> str:
        """Delete an orphan, after re-checking that no row has started naming it."""
        assert item.asset_id is not None
        with transaction(self.engine) as conn:
            if rows_naming(conn, item.asset_id):
                return "kept: a row names it now"
        try:
            self.mux.delete_asset(item.asset_id)
        except MuxError as exc:
            report.failed.append(f"deleting orphan {item.asset_id}: {exc}")
            return f"failed: {exc}"
        with transaction(self.engine) as conn:
            remember_dead(conn, item.asset_id, f"sync deleted orphan asset {item.asset_id}")
        return "deleted from Mux"

    # -- status -------------------------------------------------------------------------

    def status(self, target: Target | None = None) -> StatusReport:
        with transaction(self.engine) as conn:
            rows = rows_with_video(conn, target)
            if target is not None:
                row = read_row(conn, target)
                if row is None:
                    raise UsageError(f"{target} does not exist in the database")
                if not rows:
                    rows = [row]
        unfinished = journal.all_unfinished(self.engine)
        if target is not None:
            unfinished = [e for e in unfinished if journal.target_of(e) == target]
        by_target: dict[Target, StatusEntry] = {}
        users: dict[str, list[Target]] = {}
        for row in rows:
            by_target[row.target] = StatusEntry(
                row.target, row.title, row.asset_id, row.playback_id, None
            )
            if row.asset_id:
                users.setdefault(row.asset_id, []).append(row.target)
        for entry in unfinished:
            t = journal.target_of(entry)
            if t not in by_target:
                with transaction(self.engine) as conn:
                    row = read_row(conn, t)
                by_target[t] = StatusEntry(
                    t,
                    row.title if row else None,
                    row.asset_id if row else None,
                    row.playback_id if row else None,
                    None,
                )
            by_target[t].upload = {
                "journal_id": entry.id,
                "state": entry.state,
                "upload_id": entry.upload_id,
                "confirmed_bytes": entry.confirmed_bytes,
                "file_size": entry.file_size,
                "file": entry.file_path,
                "last_error": entry.last_error,
            }
        wanted = {e.db_asset_id for e in by_target.values() if e.db_asset_id}
        assets: dict[str, Asset] = {}
        if len(wanted) > STATUS_GET_LIMIT:
            for asset in self.mux.iter_assets():
                if asset.id in wanted:
                    assets[asset.id] = asset
        for aid in sorted(wanted - assets.keys()):
            found = self.mux.find_asset(aid)
            if found is not None:
                assets[aid] = found
        for entry_ in by_target.values():
            if entry_.db_asset_id:
                seen = assets.get(entry_.db_asset_id)
                entry_.mux_status = seen.status if seen else "missing"
                entry_.mux_playback_ids = [p.id for p in seen.playback_ids] if seen else []
                entry_.shared_with = [
                    t for t in users.get(entry_.db_asset_id, []) if t != entry_.target
                ]
        return StatusReport(sorted(by_target.values(), key=lambda e: e.target))

    # -- delete -------------------------------------------------------------------------

    def plan_delete(self, *, asset_id: str | None, target: Target | None) -> DeletePlan:
        with transaction(self.engine) as conn:
            if target is not None:
                row = read_row(conn, target)
                if row is None:
                    raise UsageError(f"{target} does not exist in the database")
                if not row.asset_id:
                    raise UsageError(f"{target} has no video to delete")
                asset_id = row.asset_id
            assert asset_id is not None
            rows = rows_naming(conn, asset_id)
        if not rows:
            asset = self.mux.find_asset(asset_id)
            if asset is None:
                raise UsageError(f"asset {asset_id} is neither on Mux nor named by any row")
            if from_passthrough(asset.passthrough) is None:
                raise UsageError(
                    f"asset {asset_id} is not vidpipe's (its passthrough names no lesson or "
                    "course) and no row names it; delete it from the Mux dashboard instead"
                )
        return DeletePlan(asset_id, [r.target for r in rows])

    def delete(self, plan: DeletePlan) -> DeleteResult:
        """Delete on Mux, confirm the 404, then clear every row naming the asset."""
        with run_lock(self.engine, "sync"):
            deleted = self.mux.delete_asset(plan.asset_id)
            if self.mux.find_asset(plan.asset_id) is not None:
                raise VidpipeError(
                    f"Mux still has asset {plan.asset_id} after deleting it; rows left unchanged, "
                    "re-run to try again"
                )
            with transaction(self.engine) as conn:
                remember_dead(conn, plan.asset_id, f"vidpipe delete removed asset {plan.asset_id}")
                cleared = clear_asset_everywhere(conn, plan.asset_id)
                _close_journal_for_asset(conn, plan.asset_id, "deleted")
        return DeleteResult(plan.asset_id, deleted, not deleted, cleared)


_ROW_CHANGED = "skipped: the row changed since the snapshot"

_VERB = {
    MISSING: "clear row",
    ERRORED: "clear row",
    MISMATCH: "write playback ID",
    UNRECORDED: "record asset",
}

_JOURNAL = UploadJournal.__table__  # type: ignore[attr-defined]


def _finish_journal(conn: Any, journal_id: int, asset_id: str, playback_id: str | None) -> None:
    conn.execute(
        update(_JOURNAL)
        .where(_JOURNAL.c.id == journal_id)
        .where(_JOURNAL.c.state.in_(UNFINISHED_STATES))
        .values(state="done", asset_id=asset_id, playback_id=playback_id, updated_at=utcnow())
    )


def _close_journal(conn: Any, journal_id: int, seen_state: str, why: str) -> bool:
    """Abandon an entry only if it is still in the state the snapshot saw (compare-and-set):
    an upload that finished meanwhile keeps its `done`."""
    result = conn.execute(
        update(_JOURNAL)
        .where(_JOURNAL.c.id == journal_id)
        .where(_JOURNAL.c.state == seen_state)
        .values(state="abandoned", last_error=why, updated_at=utcnow())
    )
    return bool(result.rowcount == 1)


def _close_journal_for_asset(conn: Any, asset_id: str, why: str) -> None:
    conn.execute(
        update(_JOURNAL)
        .where(_JOURNAL.c.asset_id == asset_id)
        .where(_JOURNAL.c.state.in_(UNFINISHED_STATES))
        .values(state="failed", last_error=f"asset {why}", updated_at=utcnow())
    )
