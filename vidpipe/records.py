"""The writers: every change vidpipe makes to the platform's rows goes through here.

Each writer runs inside the caller's transaction and is a compare-and-set: it changes a row
only if the row still holds what the caller saw (so a sync never undoes a concurrent upload).
upload, delete, sync and webhooks all use these. Beside them, the tombstones
(`vidpipe_webhook_tombstone`): assets Mux said are gone, which a late webhook must not bring back.

Writers that can race on one asset (webhooks' ready, deleted and errored; sync's clears,
recordings and prunes; delete; the upload's record step) are serialized per asset, so that
no interleaving leaves a row naming an asset Mux said is gone. Each such transaction:

1. is opened with `transaction(engine, immediate=True)` (on SQLite: `BEGIN IMMEDIATE`, the
   database's write lock, before the first read);
2. writes its tombstone first, if it has one (`remember_dead`), before any other lock;
3. takes the asset lock(s) with `lock_asset` (PostgreSQL: transaction-scoped advisory locks,
   in sorted order of asset ID), before it reads anything it decides on;
4. only then reads and writes rows (`read_row(..., for_update=True)` locks a row).

The lock order is therefore: (the "sync" run lock, held by sync and delete across their whole
run) -> the SQLite write lock -> tombstone -> asset locks, sorted -> row locks. Every writer
takes them in this order and releases them all at commit or rollback, so two writers cannot
deadlock. A writer that records an asset checks `is_tombstoned` after taking its asset lock;
a writer that learns an asset is dead writes the tombstone, then takes the lock and clears
every row naming it: whichever commits first, the other sees its result.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, text, update
from sqlalchemy.engine import Connection, Engine

from vidpipe.db import TOMBSTONE_TTL, WebhookTombstone, advisory_key, transaction
from vidpipe.errors import TargetNotFound, UsageError
from vidpipe.targets import COLUMNS, Columns, Kind, Target

_TOMBSTONE = WebhookTombstone.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class RowVideo:
    """What a platform row records."""

    target: Target
    title: str | None
    asset_id: str | None
    playback_id: str | None


def lock_asset(conn: Connection, *asset_ids: str | None) -> None:
    """Hold the asset lock of each of `asset_ids` until the transaction ends (see the module
    docstring for the order). PostgreSQL: `pg_advisory_xact_lock` on a stable key per asset,
    taken in sorted order, waiting for another writer of the same asset to commit. SQLite:
    nothing more to take, since the transaction already holds the database's write lock
    (`transaction(engine, immediate=True)`)."""
    if conn.dialect.name != "postgresql":
        return
    for asset_id in sorted({a for a in asset_ids if a}):
        key = advisory_key(f"asset:{asset_id}")
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def read_row(conn: Connection, target: Target, *, for_update: bool = False) -> RowVideo | None:
    """The row's IDs, or None when the row does not exist."""
    cols = target.columns
    stmt = select(cols.table.c.title, cols.asset, cols.playback).where(cols.table.c.id == target.id)
    if for_update and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    if row is None:
        return None
    return RowVideo(target, row[0], row[1], row[2])


def recorded_asset(engine: Engine, target: Target, *, purpose: str = "") -> str:
    """The asset the target's row records, read in a transaction of its own. No row:
    `TargetNotFound`; a row with no video: `UsageError` ("lesson 7 has no video" + `purpose`)."""
    with transaction(engine) as conn:
        found = read_row(conn, target)
    if found is None:
        raise TargetNotFound(target)
    if not found.asset_id:
        raise UsageError(f"{target} has no video{purpose}")
    return found.asset_id


def rows_with_video(conn: Connection, target: Target | None = None) -> list[RowVideo]:
    """Every row that names an asset (or just `target`'s row, if it does)."""
    return _rows(conn, lambda cols: cols.asset.is_not(None), target)


def rows_naming(conn: Connection, asset_id: str) -> list[RowVideo]:
    """Every row, lesson or course, whose asset column holds `asset_id`."""
    return _rows(conn, lambda cols: cols.asset == asset_id)


def rows_naming_playback(conn: Connection, playback_id: str) -> list[RowVideo]:
    """Every row, lesson or course, whose playback column holds `playback_id`."""
    return _rows(conn, lambda cols: cols.playback == playback_id)


def _rows(
    conn: Connection, where: Callable[[Columns], Any], target: Target | None = None
) -> list[RowVideo]:
    """The rows (of `target` alone, when given) matching `where(columns)`, lessons first,
    each kind in ID order."""
    out: list[RowVideo] = []
    for kind, cols in COLUMNS.items():
        if target is not None and target.kind != kind:
            continue
        stmt = select(cols.table.c.id, cols.table.c.title, cols.asset, cols.playback)
        stmt = stmt.where(where(cols))
        if target is not None:
            stmt = stmt.where(cols.table.c.id == target.id)
        for row in conn.execute(stmt.order_by(cols.table.c.id)):
            out.append(RowVideo(Target(kind, row[0]), row[1], row[2], row[3]))
    return out


def existing_ids(conn: Connection, kind: Kind) -> set[int]:
    cols = COLUMNS[kind]
    return {row[0] for row in conn.execute(select(cols.table.c.id))}


def set_video(
    conn: Connection,
    target: Target,
    asset_id: str,
    playback_id: str | None,
    *,
    expect_asset_id: str | None,
    expect_playback_id: str | object | None = ...,
) -> bool:
    """Record `asset_id`/`playback_id` on the row if it still names `expect_asset_id`.

    `expect_playback_id` (when given) must match too. Returns whether the row changed.
    """
    cols = target.columns
    stmt = (
        update(cols.table)
        .where(cols.table.c.id == target.id)
        .where(cols.asset.is_not_distinct_from(expect_asset_id))
        .values({cols.asset.name: asset_id, cols.playback.name: playback_id})
    )
    if expect_playback_id is not ...:
        stmt = stmt.where(cols.playback.is_not_distinct_from(expect_playback_id))
    return conn.execute(stmt).rowcount == 1


def clear_video(conn: Connection, target: Target, *, expect_asset_id: str) -> bool:
    """Clear the row's asset and playback IDs if it still names `expect_asset_id`."""
    cols = target.columns
    stmt = (
        update(cols.table)
        .where(cols.table.c.id == target.id)
        .where(cols.asset == expect_asset_id)
        .values({cols.asset.name: None, cols.playback.name: None})
    )
    return conn.execute(stmt).rowcount == 1


def clear_asset_everywhere(conn: Connection, asset_id: str) -> list[Target]:
    """Clear `asset_id` from every row that names it; return the targets changed. Call it
    after `lock_asset(conn, asset_id)`."""
    changed = []
    for row in rows_naming(conn, asset_id):
        if clear_video(conn, row.target, expect_asset_id=asset_id):
            changed.append(row.target)
    return changed


def remember_dead(conn: Connection, asset_id: str, reason: str) -> None:
    """Record (once) that Mux said `asset_id` is gone.

    Write it only on a definite answer from Mux: a `deleted`/`errored` event, a 404, an
    errored status, or a DELETE that succeeded. Call it first in the transaction, before
    `lock_asset` and before any row is locked: with one lock order, two writers of the same
    asset cannot deadlock."""
    row = {"asset_id": asset_id, "reason": reason[:500], "dead_at": int(time.time())}
    # Each dialect's insert is imported when used: the PostgreSQL one costs a SQLite user
    # 17 ms of every command's start.
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql as dialect
    else:
        from sqlalchemy.dialects import sqlite as dialect  # type: ignore[no-redef]
    conn.execute(dialect.insert(_TOMBSTONE).values(**row).on_conflict_do_nothing())


def prune_tombstones(conn: Connection) -> int:
    """Drop tombstones older than `TOMBSTONE_TTL` (sync and `webhook serve` do this, each in
    a transaction of its own); return how many."""
    cutoff = int(time.time()) - TOMBSTONE_TTL
    return conn.execute(delete(_TOMBSTONE).where(_TOMBSTONE.c.dead_at < cutoff)).rowcount


def is_tombstoned(conn: Connection, asset_id: str) -> bool:
    """Mux said `asset_id` is gone. Ask it after `lock_asset`: a dead asset's tombstone is
    committed before its lock is released."""
    stmt = select(_TOMBSTONE.c.asset_id).where(_TOMBSTONE.c.asset_id == asset_id)
    return conn.execute(stmt).first() is not None
