"""`status`: what the database says and what Mux says, side by side.

Owns the status report: every target with a video or an unfinished upload (or the one named),
its row, its asset as Mux reports it, the other rows sharing that asset, and its unfinished
upload. The database is read as the reconcile snapshot reads it
(`vidpipe.reconcile.snapshot.read_database`); Mux is asked only about the assets the rows
name, with one GET each for a few, or one walk of the catalogue for many. Read-only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from vidpipe.asset_parts import StaticRendition, Track
from vidpipe.db import UploadJournal, transaction
from vidpipe.journal import target_of
from vidpipe.mux import Asset, Environment, MuxGateway
from vidpipe.progress import OnProgress, Step, StepProgress, ignore
from vidpipe.reconcile.snapshot import list_assets, read_database
from vidpipe.records import read_row
from vidpipe.targets import Target

# Few rows: one GET each is cheaper than walking the whole catalogue.
STATUS_GET_LIMIT = 25


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
    captions: list[dict[str, Any]] = field(default_factory=list)
    """The asset's text tracks: language, name, source, status."""
    renditions: list[dict[str, Any]] = field(default_factory=list)
    """The asset's static renditions: resolution, status."""

    def as_json(self) -> dict[str, Any]:
        return {
            "target": self.target.as_json(),
            "title": self.title,
            "db": {"asset_id": self.db_asset_id, "playback_id": self.db_playback_id},
            "mux": {
                "status": self.mux_status,
                "playback_ids": self.mux_playback_ids,
                "captions": self.captions,
                "renditions": self.renditions,
            },
            "shared_with": [t.as_json() for t in self.shared_with],
            "upload": self.upload,
        }


@dataclass
class StatusReport:
    entries: list[StatusEntry]
    environment: Environment | None = None
    """The Mux environment asked (set by the facade once the token is checked)."""

    ok = True  # a result, never a failure: failures raise

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "environment": self.environment.as_json() if self.environment else None,
            "targets": [e.as_json() for e in self.entries],
        }


def status(
    engine: Engine,
    gateway: MuxGateway,
    target: Target | None = None,
    *,
    on_progress: OnProgress = ignore,
) -> StatusReport:
    """Every target with a video or an unfinished upload, or just `target` (video or not).
    Raises `TargetNotFound` for a named target with no row. `on_progress` hears the walk."""
    on_progress(StepProgress(Step.DATABASE))
    db = read_database(engine, target, with_existing=False)
    rows = db.rows
    if not rows and db.target_row is not None:
        rows = [db.target_row]
    by_target: dict[Target, StatusEntry] = {}
    users: dict[str, list[Target]] = {}
    for row in rows:
        by_target[row.target] = StatusEntry(
            row.target, row.title, row.asset_id, row.playback_id, None
        )
        if row.asset_id:
            users.setdefault(row.asset_id, []).append(row.target)
    for entry in db.unfinished:
        t = target_of(entry)
        if t not in by_target:
            with transaction(engine) as conn:
                found = read_row(conn, t)
            by_target[t] = StatusEntry(
                t,
                found.title if found else None,
                found.asset_id if found else None,
                found.playback_id if found else None,
                None,
            )
        by_target[t].upload = _upload(entry)
    wanted = {e.db_asset_id for e in by_target.values() if e.db_asset_id}
    assets = _assets(gateway, wanted, on_progress)
    for item in by_target.values():
        if item.db_asset_id:
            seen = assets.get(item.db_asset_id)
            item.mux_status = seen.status if seen else "missing"
            item.mux_playback_ids = [p.id for p in seen.playback_ids] if seen else []
            item.captions = (
                [_part(t, _CAPTION_KEYS) for t in seen.tracks if t.type == "text"] if seen else []
            )
            item.renditions = (
                [_part(r, _RENDITION_KEYS) for r in seen.static_renditions] if seen else []
            )
            item.shared_with = [t for t in users.get(item.db_asset_id, []) if t != item.target]
    return StatusReport(sorted(by_target.values(), key=lambda e: e.target))


# What status shows of a caption track and a static rendition: their JSON as `captions list`
# shows it, without Mux's IDs.
_CAPTION_KEYS = ("language", "name", "source", "status")
_RENDITION_KEYS = ("resolution", "status")


def _part(part: Track | StaticRendition, keys: tuple[str, ...]) -> dict[str, Any]:
    shown = part.as_json()
    return {key: shown[key] for key in keys}


def _upload(entry: UploadJournal) -> dict[str, Any]:
    return {
        "journal_id": entry.id,
        "state": entry.state,
        "upload_id": entry.upload_id,
        "confirmed_bytes": entry.confirmed_bytes,
        "file_size": entry.file_size,
        "file": entry.file_path,
        "last_error": entry.last_error,
    }


def _assets(gateway: MuxGateway, wanted: set[str], on_progress: OnProgress) -> dict[str, Asset]:
    """The wanted assets Mux has (absent: a definite 404)."""
    assets: dict[str, Asset] = {}
    if len(wanted) > STATUS_GET_LIMIT:
        listed = list_assets(gateway, on_progress)
        assets = {aid: asset for aid, asset in listed.items() if aid in wanted}
    unlisted = sorted(wanted - assets.keys())
    for done, aid in enumerate(unlisted):
        on_progress(StepProgress(Step.CHECKING, done, len(unlisted)))
        found = gateway.find_asset(aid)
        if found is not None:
            assets[aid] = found
    if unlisted:
        on_progress(StepProgress(Step.CHECKING, len(unlisted), len(unlisted)))
    return assets
