"""Day-2 changes to an existing asset, as Mux makes them: generated captions, subtitle files
fetched from a URL, static renditions, and `meta`.

Each new track or rendition starts `preparing` and takes its outcome `ready_after` seconds
later (the store's delay, as for assets), read lazily whenever the asset is shown. Mux's
rules, each a 400 `invalid_parameters` (404 for an unknown asset or track):

- generate-subtitles: only on an audio track of a ready asset, only for Mux's languages
  (`SUBTITLE_LANGUAGES`), never a second generated track of one language;
- a subtitle file: `url` must be http(s), `type` text, `text_type` subtitles, a language code,
  a `name` unique among the asset's text tracks; the emulator fetches the URL in the
  background and the track errors when the file is not WebVTT or SRT (or cannot be fetched);
- static renditions: a known resolution, not one the asset already has (preparing or ready),
  not on an asset with the legacy `mp4_support`; one above the source (1080p here) ends
  `skipped`;
- PATCH: `meta` with Mux's length limits, `passthrough` of at most 255 characters.

Each change is announced as Mux announces it, with a webhook whose `data` is the track or
the rendition plus its `asset_id`: `video.asset.track.created|ready|errored|deleted`,
`video.asset.static_rendition.created|ready|skipped|deleted` (the outcome sent by the store's
clock when it is due), and `video.asset.updated` after a PATCH.

The operations run under the store's lock and change the asset objects in place; the
asset's JSON shows the parts (`objects.Asset`, via `Parts`).
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vidpipe.emulator.ingest import fetch
from vidpipe.emulator.objects import ApiError, random_id
from vidpipe.emulator.settings import (
    PASSTHROUGH_MAX,
    STATIC_RESOLUTIONS,
    SUBTITLE_LANGUAGES,
    Rendition,
    parse_meta,
)

if TYPE_CHECKING:
    from vidpipe.emulator.objects import Asset
    from vidpipe.emulator.store import Store

_SRT = re.compile(rb"^\s*\d+\s*\r?\n\s*\d{1,2}:\d{2}:\d{2}[,.]\d{3}\s*-->")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
NOT_SUBTITLES = "The file is not a WebVTT or SRT subtitle file"


def _bad(*messages: str) -> ApiError:
    return ApiError(400, "invalid_parameters", *messages)


@dataclass
class Part:
    """A track or static rendition added to an existing asset. Its status is `preparing`
    until `ready_at`, then `outcome` (None: still fetching its file)."""

    id: str
    json: dict[str, Any]
    ready_at: float
    outcome: str | None = "ready"
    error: str | None = None
    kind: str = "track"
    """`track` or `static_rendition`: the middle of its webhooks' type."""
    asset_id: str = ""
    announced: str = "created"
    """The last of its events sent."""

    @property
    def status(self) -> str:
        if self.outcome is None or time.time() < self.ready_at:
            return "preparing"
        return self.outcome

    def to_json(self) -> dict[str, Any]:
        out = {**self.json, "status": self.status}
        if out["status"] == "errored" and self.error:
            out["error"] = {"type": "invalid_input", "messages": [self.error]}
        return out


def _announce(store: Store, kind: str, what: str, data: dict[str, Any], asset_id: str) -> None:
    """The webhook `video.asset.{kind}.{what}` for a track or rendition (lock held)."""
    store._emit(f"video.asset.{kind}.{what}", kind, data["id"], {**data, "asset_id": asset_id})


def _added(store: Store, asset: Asset, part: Part) -> None:
    """A new part: announced, and its outcome announced when due (lock held)."""
    part.asset_id = asset.id
    _announce(store, part.kind, "created", part.to_json(), asset.id)
    store._schedule(part.ready_at, "call", part.id, lambda: _settle(store, asset, part))


def _settle(store: Store, asset: Asset, part: Part) -> None:
    """Announce `part`'s outcome once it has one, and once only; nothing for a part deleted
    meanwhile (lock held)."""
    status = part.status
    if status == "preparing" or status == part.announced or not _has(asset, part):
        return
    part.announced = status
    _announce(store, part.kind, status, part.to_json(), part.asset_id)


def _has(asset: Asset, part: Part) -> bool:
    extra = parts(asset)
    return any(p is part for p in [*extra.tracks, *extra.renditions])


@dataclass
class Parts:
    """What one asset got after its creation: text tracks and static renditions."""

    tracks: list[Part] = field(default_factory=list)
    renditions: list[Part] = field(default_factory=list)


def _ready_asset(store: Store, asset_id: str) -> Asset:
    asset = store._refresh_asset(store._asset(asset_id))
    if asset.status != "ready":
        raise _bad(f"Asset {asset_id} is not ready")
    return asset


def _text_tracks(asset: Asset) -> list[dict[str, Any]]:
    return [t for t in asset.to_json()["tracks"] if t.get("type") == "text"]


def generate_subtitles(
    store: Store, asset_id: str, track_id: str, body: Any
) -> list[dict[str, Any]]:
    """POST /video/v1/assets/{ID}/tracks/{TRACK_ID}/generate-subtitles."""
    with store._lock:
        asset = _ready_asset(store, asset_id)
        track = next((t for t in asset.to_json()["tracks"] if t.get("id") == track_id), None)
        if track is None:
            raise ApiError(404, "not_found", f"Track {track_id} not found")
        if track.get("type") != "audio":
            raise _bad("Subtitles can only be generated from an audio track")
        items = body.get("generated_subtitles") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
            raise _bad("generated_subtitles must be a non-empty list of objects")
        have = {
            t.get("language_code")
            for t in _text_tracks(asset)
            if str(t.get("text_source", "")).startswith("generated")
            and t.get("status") in ("preparing", "ready")
        }
        made: list[Part] = []
        for item in items:
            code = item.get("language_code")
            if code not in SUBTITLE_LANGUAGES:
                raise _bad(f"language_code must be one of {', '.join(SUBTITLE_LANGUAGES)}")
            if code in have:
                raise _bad(f"Generated subtitles for {code} already exist on this asset")
            have.add(code)
            name = item.get("name") or f"{SUBTITLE_LANGUAGES[code]} (generated)"
            json: dict[str, Any] = {
                "type": "text",
                "id": random_id(44),
                "text_type": "subtitles",
                "text_source": "generated_vod",
                "language_code": code,
                "name": str(name),
                "closed_captions": False,
            }
            if item.get("passthrough") is not None:
                json["passthrough"] = str(item["passthrough"])
            made.append(Part(json["id"], json, time.time() + store.ready_after))
        parts(asset).tracks.extend(made)
        for part in made:
            _added(store, asset, part)
        return [p.to_json() for p in made]


def create_track(store: Store, asset_id: str, body: Any) -> dict[str, Any]:
    """POST /video/v1/assets/{ID}/tracks: a subtitle file Mux fetches from `url`."""
    if not isinstance(body, dict):
        raise _bad("The request body must be an object")
    url = body.get("url")
    problems = []
    if not isinstance(url, str) or not re.match(r"^https?://[^/\s]+", url):
        problems.append("url must be an http(s) URL")
    if body.get("type") != "text":
        problems.append("type must be text")
    if body.get("text_type", "subtitles") != "subtitles":
        problems.append("text_type must be subtitles")
    code = body.get("language_code")
    if not isinstance(code, str) or not _LANGUAGE.match(code):
        problems.append("language_code must be a BCP 47 language code")
    name = body.get("name") or code
    if not isinstance(name, str):
        problems.append("name must be a string")
    if problems:
        raise _bad(*problems)
    with store._lock:
        asset = _ready_asset(store, asset_id)
        if any(t.get("name") == name for t in _text_tracks(asset)):
            raise _bad(f"A text track named {name} already exists on this asset")
        json: dict[str, Any] = {
            "type": "text",
            "id": random_id(44),
            "text_type": "subtitles",
            "text_source": "uploaded",
            "language_code": code,
            "name": name,
            "closed_captions": body.get("closed_captions") is True,
        }
        if body.get("passthrough") is not None:
            json["passthrough"] = str(body["passthrough"])
        part = Part(json["id"], json, time.time() + store.ready_after, outcome=None)
        parts(asset).tracks.append(part)
        _added(store, asset, part)
        out = part.to_json()
    threading.Thread(
        target=_fetch_subtitles,
        args=(store, asset, part, str(url)),
        name="emulator-text",
        daemon=True,
    ).start()
    return out


def _fetch_subtitles(store: Store, asset: Asset, part: Part, url: str) -> None:
    fetched = fetch(url)
    head = fetched.head.removeprefix(b"\xef\xbb\xbf")
    if fetched.error is not None:
        outcome, error = "errored", fetched.error.replace("input URL", "subtitle file URL")
    elif head.startswith(b"WEBVTT") or _SRT.match(head):
        outcome, error = "ready", None
    else:
        outcome, error = "errored", NOT_SUBTITLES
    with store._lock:
        part.outcome, part.error = outcome, error
        _settle(store, asset, part)  # when the file came after the delay


def delete_track(store: Store, asset_id: str, track_id: str) -> None:
    """DELETE /video/v1/assets/{ID}/tracks/{TRACK_ID}: an added or a generated text track."""
    with store._lock:
        asset = store._asset(asset_id)
        gone = next((t for t in _text_tracks(asset) if t.get("id") == track_id), None)
        extra = parts(asset)
        kept = [t for t in extra.tracks if t.id != track_id]
        if len(kept) != len(extra.tracks):
            extra.tracks = kept
        else:
            made = [t for t in asset.text_tracks if t.id != track_id]
            if len(made) == len(asset.text_tracks):
                raise ApiError(404, "not_found", f"Track {track_id} not found")
            asset.text_tracks = made
        if gone is not None:
            _announce(store, "track", "deleted", gone, asset_id)


def create_static_rendition(store: Store, asset_id: str, body: Any) -> dict[str, Any]:
    """POST /video/v1/assets/{ID}/static-renditions."""
    resolution = body.get("resolution") if isinstance(body, dict) else None
    if resolution not in STATIC_RESOLUTIONS:
        raise _bad(f"resolution must be one of {', '.join(STATIC_RESOLUTIONS)}")
    with store._lock:
        asset = _ready_asset(store, asset_id)
        if asset.settings.mp4_support != "none":
            raise _bad("static_renditions cannot be combined with mp4_support")
        files = (asset.to_json().get("static_renditions") or {}).get("files") or []
        if any(
            f.get("resolution") == resolution and f.get("status") in ("preparing", "ready")
            for f in files
        ):
            raise _bad(f"A static rendition of {resolution} already exists on this asset")
        shape = Rendition(resolution)
        json: dict[str, Any] = {
            "id": random_id(44),
            "type": "standard",
            "resolution": resolution,
            "name": shape.name,
            "ext": shape.ext,
        }
        if isinstance(body, dict) and body.get("passthrough") is not None:
            json["passthrough"] = str(body["passthrough"])
        outcome = "skipped" if shape.above_source else "ready"
        ready_at = time.time() + store.ready_after
        part = Part(json["id"], json, ready_at, outcome=outcome, kind="static_rendition")
        parts(asset).renditions.append(part)
        _added(store, asset, part)
        return part.to_json()


def delete_static_rendition(store: Store, asset_id: str, rendition_id: str) -> None:
    """DELETE /video/v1/assets/{ID}/static-renditions/{ID} (added ones)."""
    with store._lock:
        extra = parts(store._asset(asset_id))
        gone = next((r for r in extra.renditions if r.id == rendition_id), None)
        if gone is None:
            raise ApiError(404, "not_found", f"Static rendition {rendition_id} not found")
        extra.renditions = [r for r in extra.renditions if r is not gone]
        _announce(store, "static_rendition", "deleted", gone.to_json(), asset_id)


def update_asset(store: Store, asset_id: str, body: Any) -> dict[str, Any]:
    """PATCH /video/v1/assets/{ID}: `meta` and `passthrough`, with Mux's limits."""
    if not isinstance(body, dict):
        raise _bad("The request body must be an object")
    problems = []
    unknown = sorted(set(body) - {"meta", "passthrough"})
    if unknown:
        problems.append(f"unknown field(s) {', '.join(unknown)}")
    meta = body.get("meta")
    if meta is not None:
        meta = parse_meta(meta, problems)
    passthrough = body.get("passthrough")
    if passthrough is not None and (
        not isinstance(passthrough, str) or len(passthrough) > PASSTHROUGH_MAX
    ):
        problems.append(f"passthrough must be a string of at most {PASSTHROUGH_MAX} characters")
    if problems:
        raise _bad(*problems)
    with store._lock:
        asset = store._refresh_asset(store._asset(asset_id))
        changes: dict[str, Any] = {}
        if meta is not None:
            changes["meta"] = dict(meta)
        if passthrough is not None:
            changes["passthrough"] = passthrough or None
        asset.settings = dataclasses.replace(asset.settings, **changes)
        shown = asset.to_json()
        store._emit(
            "video.asset.updated", "asset", asset.id, asset.to_json(integer_created_at=True)
        )
        return shown


def parts(asset: Asset) -> Parts:
    """The asset's added parts (made on first use)."""
    if asset.parts is None:
        asset.parts = Parts()
    extra: Parts = asset.parts
    return extra
