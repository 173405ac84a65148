"""The snapshot: one read of both sides, database first, then Mux.

This module owns every read `verify` and `sync` make: the platform rows that name an asset,
which row IDs exist, the unfinished upload journal entries, and then, from Mux, the assets
(the whole catalogue for a full run; direct GETs for rows the listing lacks and for one
target) and the state of each unfinished upload that has no asset yet. The planner works on
nothing else, and nothing after the snapshot reads Mux.

Reading the database first means a row recorded after that read is simply not seen (a later
run sees it); writes are compare-and-set, so acting on an older view never undoes a newer one.
Anything short of a definite answer from Mux raises here, before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy import Engine

from vidpipe import journal
from vidpipe.db import UploadJournal, transaction
from vidpipe.errors import MuxNotFound, TargetNotFound
from vidpipe.mux import Asset, MuxGateway
from vidpipe.progress import OnProgress, Step, StepProgress, ignore
from vidpipe.records import RowVideo, existing_ids, read_row, rows_with_video
from vidpipe.targets import Kind, Target


@dataclass(frozen=True)
class DatabaseView:
    """What the platform database says, read once (`read_database`)."""

    rows: list[RowVideo]
    """Rows that name an asset (only the named target's, when there is one)."""
    target_row: RowVideo | None
    """The named target's row, with or without a video (None when no target was named)."""
    existing: dict[Kind, frozenset[int]]
    """Every row ID of each kind (empty unless asked for)."""
    unfinished: list[UploadJournal]
    """Unfinished journal entries (the named target's only), oldest first."""


def read_database(
    engine: Engine, target: Target | None = None, *, with_existing: bool = True
) -> DatabaseView:
    """Rows, row IDs and unfinished uploads; `TargetNotFound` when `target` has no row."""
    target_row = None
    existing: dict[Kind, frozenset[int]] = {}
    with transaction(engine) as conn:
        rows = rows_with_video(conn, target)
        if with_existing:
            existing = {kind: frozenset(existing_ids(conn, kind)) for kind in Kind}
        if target is not None:
            target_row = read_row(conn, target)
            if target_row is None:
                raise TargetNotFound(target)
    unfinished = journal.all_unfinished(engine, target)
    return DatabaseView(rows, target_row, existing, unfinished)


@dataclass(frozen=True)
class PendingUpload:
    """An unfinished upload journal entry, as the snapshot saw it."""

    journal_id: int
    target: Target
    state: journal.State
    upload_id: str | None = None
    asset_id: str | None = None
    replace_asset_id: str | None = None

    @classmethod
    def from_entry(cls, entry: UploadJournal) -> PendingUpload:
        return cls(
            journal_id=int(entry.id or 0),
            target=journal.target_of(entry),
            state=journal.State(entry.state),
            upload_id=entry.upload_id,
            asset_id=entry.asset_id,
            replace_asset_id=entry.replace_asset_id,
        )


@dataclass(frozen=True)
class Snapshot:
    """Both sides as one run saw them. Build one by hand to test the planner."""

    rows: Sequence[RowVideo]
    """Platform rows that name an asset."""
    assets: Mapping[str, Asset]
    """Mux assets by ID: the whole catalogue for a full run, else the ones asked for."""
    existing: Mapping[Kind, frozenset[int]] = field(default_factory=dict)
    """Which row IDs exist, by kind."""
    pending: Sequence[PendingUpload] = ()
    """Unfinished upload journal entries."""
    uploads: Mapping[str, str | None] = field(default_factory=dict)
    """For each unfinished upload with no asset yet: Mux's status of the upload, or None when
    Mux answered 404."""
    target: Target | None = None
    """The one target this snapshot is about, or None for everything."""

    @property
    def full(self) -> bool:
        """Whether the whole Mux catalogue was listed (no target named)."""
        return self.target is None

    @cached_property
    def row_by_target(self) -> dict[Target, RowVideo]:
        return {r.target: r for r in self.rows}

    def exists(self, target: Target) -> bool:
        return target.id in self.existing.get(target.kind, frozenset())


def take_snapshot(
    engine: Engine,
    gateway: MuxGateway,
    target: Target | None = None,
    *,
    on_progress: OnProgress = ignore,
) -> Snapshot:
    """Read the database, then Mux. Raises `TargetNotFound` for a named target with no row,
    and the gateway's errors for anything short of a definite answer from Mux. `on_progress`
    hears each step: assets listed, rows checked one by one, unfinished uploads asked about."""
    on_progress(StepProgress(Step.DATABASE))
    db = read_database(engine, target)
    pending = [PendingUpload.from_entry(e) for e in db.unfinished]
    assets: dict[str, Asset] = {}
    full = target is None
    if full:
        assets = list_assets(gateway, on_progress)
    # Rows naming an asset the listing lacks: a direct GET decides (only a 404 is missing).
    unlisted = [r.asset_id for r in db.rows if r.asset_id and r.asset_id not in assets]
    for done, aid in enumerate(unlisted):
        on_progress(StepProgress(Step.CHECKING, done, len(unlisted)))
        if aid not in assets:
            found = gateway.find_asset(aid)
            if found is not None:
                assets[aid] = found
    if unlisted:
        on_progress(StepProgress(Step.CHECKING, len(unlisted), len(unlisted)))
    # Unfinished uploads: their asset, if Mux created one.
    listed_uploads = {a.upload_id for a in assets.values() if a.upload_id}
    for done, p in enumerate(pending):
        on_progress(StepProgress(Step.UPLOADS, done, len(pending)))
        if p.asset_id and p.asset_id not in assets:
            found = gateway.find_asset(p.asset_id)
            if found is not None:
                assets[found.id] = found
        elif not full and p.upload_id and p.upload_id not in listed_uploads:
            for asset in gateway.iter_assets(upload_id=p.upload_id):
                assets[asset.id] = asset
    # Unfinished uploads with no asset at all: how does the upload itself stand?
    with_asset = {a.upload_id for a in assets.values() if a.upload_id}
    uploads: dict[str, str | None] = {}
    for p in pending:
        if p.asset_id or not p.upload_id or p.upload_id in with_asset or p.upload_id in uploads:
            continue
        try:
            uploads[p.upload_id] = gateway.get_upload(p.upload_id).status
        except MuxNotFound:
            uploads[p.upload_id] = None
    if pending:
        on_progress(StepProgress(Step.UPLOADS, len(pending), len(pending)))
    return Snapshot(
        rows=db.rows,
        assets=assets,
        existing=db.existing,
        pending=pending,
        uploads=uploads,
        target=target,
    )


def list_assets(gateway: MuxGateway, on_progress: OnProgress = ignore) -> dict[str, Asset]:
    """The whole Mux catalogue by ID, telling `on_progress` of each asset listed."""
    assets: dict[str, Asset] = {}
    on_progress(StepProgress(Step.LISTING, 0))
    for asset in gateway.iter_assets():
        assets[asset.id] = asset
        on_progress(StepProgress(Step.LISTING, len(assets)))
    return assets
