"""Subtitle files on a target's asset: add one from a URL, list the text tracks, remove some.

Mux cannot take a subtitle file as an upload: it fetches a WebVTT or SRT file from a URL
(`POST /video/v1/assets/{ID}/tracks`). So a local path, or a URL Mux cannot fetch by scheme
(`ftp://`, `file://`), is bad input, refused before anything is asked of Mux. Every input
check (the URL, the language code, the row and its video, a track of the same name) comes
before the one write; a track that then errors is Mux's answer (`CaptionFailed`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from vidpipe.asset_parts import Track, check_language, check_subtitle_url, default_name
from vidpipe.errors import UsageError, VidpipeError
from vidpipe.mux import Asset, MuxGateway
from vidpipe.records import recorded_asset
from vidpipe.targets import Target

NAME_MAX = 128  # a sane bound for a track name (Mux documents none)
POLL_SECONDS = 2.0
WAIT_SECONDS = 900.0


class CaptionFailed(VidpipeError):
    """Mux could not make the subtitle track (it errored: an unreadable or non-subtitle file)."""


def text_tracks(asset: Asset) -> list[Track]:
    return [t for t in asset.tracks if t.type == "text"]


@dataclass
class CaptionsReport:
    """`captions list` / `add` / `remove`: the target, its asset and the tracks concerned."""

    target: Target
    asset_id: str
    tracks: list[Track] = field(default_factory=list)
    removed: list[str] | None = None
    """remove: the IDs of the tracks deleted."""
    ok: bool = True

    def as_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "ok": self.ok,
            "target": self.target.as_json(),
            "asset_id": self.asset_id,
            "tracks": [t.as_json() for t in self.tracks],
        }
        if self.removed is not None:
            doc["removed"] = self.removed
        return doc


def list_tracks(engine: Engine, gateway: MuxGateway, target: Target) -> CaptionsReport:
    asset_id = recorded_asset(engine, target)
    asset = gateway.get_asset(asset_id)
    return CaptionsReport(target, asset_id, text_tracks(asset))


def add_track(
    engine: Engine,
    gateway: MuxGateway,
    target: Target,
    url: str,
    *,
    language: str,
    name: str | None = None,
    closed_captions: bool = False,
    wait: bool = True,
    sleep: Callable[[float], None] = time.sleep,
    wait_seconds: float = WAIT_SECONDS,
) -> CaptionsReport:
    """Have Mux fetch the subtitle file at `url` onto the target's asset; with `wait`, until
    the track is ready (`CaptionFailed` when it errors). Inputs are checked first: nothing is
    created for a bad URL or language, a row with no video, or a name already taken."""
    url = check_subtitle_url(url)
    language = check_language(language)
    name = (name if name is not None else default_name(language)).strip()
    if not name or len(name) > NAME_MAX:
        raise UsageError(f"the track name must be 1 to {NAME_MAX} characters")
    asset_id = recorded_asset(engine, target)
    asset = gateway.get_asset(asset_id)
    taken = [t for t in text_tracks(asset) if t.name == name]
    if taken:
        raise UsageError(
            f"asset {asset_id} already has a text track named {name!r} ({taken[0].id}); "
            "give another name or remove that track first"
        )
    if asset.status != "ready":
        raise UsageError(f"asset {asset_id} is {asset.status}: Mux adds tracks to ready assets")
    track = gateway.create_text_track(
        asset_id, url, language=language, name=name, closed_captions=closed_captions
    )
    if wait:
        track = wait_for_track(gateway, asset_id, track.id, sleep=sleep, seconds=wait_seconds)
    return CaptionsReport(target, asset_id, [track])


def wait_for_track(
    gateway: MuxGateway,
    asset_id: str,
    track_id: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
    seconds: float = WAIT_SECONDS,
) -> Track:
    """The track once it is ready; `CaptionFailed` when it errors or is gone."""
    deadline = time.monotonic() + seconds
    while True:
        asset = gateway.get_asset(asset_id)
        track = next((t for t in asset.tracks if t.id == track_id), None)
        if track is None:
            raise CaptionFailed(f"track {track_id} is gone from asset {asset_id}")
        if track.status == "errored":
            raise CaptionFailed(
                f"Mux could not make track {track_id} of asset {asset_id}: "
                f"{track.error or 'no reason given'}"
            )
        if track.status == "ready":
            return track
        if time.monotonic() >= deadline:
            raise CaptionFailed(f"track {track_id} of asset {asset_id} is still {track.status}")
        sleep(POLL_SECONDS)


def remove_tracks(
    engine: Engine,
    gateway: MuxGateway,
    target: Target,
    *,
    language: str | None = None,
    track_id: str | None = None,
    confirm: Callable[[list[Track]], bool] | None = None,
) -> CaptionsReport:
    """Delete the asset's text tracks of `language`, or the one text track `track_id`.
    UsageError when none matches. `confirm(tracks)` may decline (nothing is deleted then)."""
    if (language is None) == (track_id is None):
        raise UsageError("name either a language or a track to remove")
    asset_id = recorded_asset(engine, target)
    asset = gateway.get_asset(asset_id)
    tracks = text_tracks(asset)
    if track_id is not None:
        chosen = [t for t in tracks if t.id == track_id]
        what = f"text track {track_id}"
    else:
        assert language is not None
        chosen = [t for t in tracks if (t.language_code or "").lower() == language.lower()]
        what = f"text track of language {language}"
    if not chosen:
        raise UsageError(f"asset {asset_id} has no {what}")
    if confirm is not None and not confirm(chosen):
        return CaptionsReport(target, asset_id, chosen, removed=[], ok=False)
    removed = []
    for t in chosen:
        gateway.delete_track(asset_id, t.id)
        removed.append(t.id)
    return CaptionsReport(target, asset_id, chosen, removed=removed)
