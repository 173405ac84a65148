"""The writers: every change vidpipe makes to the platform's rows goes through here.

Each writer runs inside the caller's transaction and is a compare-and-set: it changes a row
only if the row still holds what the caller saw (so a sync never undoes a concurrent upload).
upload, delete, sync and webhooks all use these. Beside them, the tombstones
(`vidpipe_webhook_tombstone`): assets Mux said are gone, which a late webhook must not bring back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from vidpipe.db import TOMBSTONE_TTL, WebhookTombstone
from vidpipe.targets import COLUMNS, Kind, Target

_TOMBSTONE = WebhookTombstone.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class RowVideo:
    """What a platform row records."""

    target: Target
    title: str | None
    asset_id: str | None
    playback_id: str | None


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


def rows_with_video(conn: Connection, target: Target | None = None) -> list[RowVideo]:
    """Every row that names an asset (or just `target`'s row, if it does)."""
    out: list[RowVideo] = []
    for kind, cols in COLUMNS.items():
        if target is not None and target.kind != kind:
            continue
        stmt = select(cols.table.c.id, cols.table.c.title, cols.asset, cols.playback).where(
            cols.asset.is_not(None)
        )
        if target is not None:
            stmt = stmt.where(cols.table.c.id == target.id)
        for row in conn.execute(stmt.order_by(cols.table.c.id)):
            out.append(RowVideo(Target(kind, row[0]), row[1], row[2], row[3]))
    return out


def rows_naming(conn: Connection, asset_id: str) -> list[RowVideo]:
    """Every row, lesson or course, whose asset column holds `asset_id`."""
    out: list[RowVideo] = []
    for kind, cols in COLUMNS.items():
        stmt = select(cols.table.c.id, cols.table.c.title, cols.asset, cols.playback).where(
            cols.asset == asset_id
        )
        for row in conn.execute(stmt.order_by(cols.table.c.id)):
            out.append(RowVideo(Target(kind, row[0]), row[1], row[2], row[3]))
    return out


def rows_naming_playback(conn: Connection, playback_id: str) -> list[RowVideo]:
    """Every row, lesson or course, whose playback column holds `playback_id`."""
    out: list[RowVideo] = []
    for kind, cols in COLUMNS.items():
        stmt = select(cols.table.c.id, cols.table.c.title, cols.asset, cols.playback).where(
            cols.playback == playback_id
        )
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
    """Clear `asset_id` from every row that names it; return the targets changed."""
    changed = []
    for row in rows_naming(conn, asset_id):
        if clear_video(conn, row.target, expect_asset_id=asset_id):
            changed.append(row.target)
    return changed


def remember_dead(conn: Connection, asset_id: str, reason: str) -> None:
    """Record (once) that Mux said `asset_id` is gone.

    Write it only on a definite answer from Mux: a `deleted`/`errored` event, a 404, an
    errored status, or a DELETE that succeeded. Call it first in the transaction, before any
    row is locked: with one lock order, two writers of the same asset cannot deadlock."""
    row = {"asset_id": asset_id, "reason": reason[:500], "dead_at": int(time.time())}
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(_TOMBSTONE).values(**row).on_conflict_do_nothing())


def prune_tombstones(conn: Connection) -> None:
    """Drop tombstones older than `TOMBSTONE_TTL` (sync does this)."""
    cutoff = int(time.time()) - TOMBSTONE_TTL
    conn.execute(delete(_TOMBSTONE).where(_TOMBSTONE.c.dead_at < cutoff))


def is_tombstoned(conn: Connection, asset_id: str) -> bool:
    stmt = select(_TOMBSTONE.c.asset_id).where(_TOMBSTONE.c.asset_id == asset_id)
    return conn.execute(stmt).first() is not None
