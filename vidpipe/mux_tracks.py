"""The gateway's calls on assets that already exist: generated captions, subtitle files,
static renditions, `meta` and master access (Mux's "day-2" endpoints).

A part of `vidpipe.mux.MuxGateway` (which mixes it in): every call goes through the gateway's
one pacer, retry policy and error mapping. The bodies are plain JSON objects, which mux-python
sends as they are. A POST that creates something is never repeated after an answer that may
have been lost (a timeout, a 5xx): Mux has no idempotency key, and the caller re-reads the
asset (a track Mux is preparing counts as there) before it asks again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from vidpipe.asset_parts import Master, StaticRendition, Track
from vidpipe.assets import caption_name
from vidpipe.errors import MuxNotFound, MuxServerError


class TrackCalls:
    """Day-2 calls; mixed into `MuxGateway`, which provides `_call` and `_assets`."""

    _assets: Any
    _call: Callable[..., Any]

    def generate_subtitles(
        self, asset_id: str, audio_track_id: str, languages: Iterable[str]
    ) -> list[Track]:
        """Ask Mux to generate captions of `languages` from the asset's audio track (one
        POST for all of them); returns the new text tracks, `preparing`."""
        body = {
            "generated_subtitles": [
                {"language_code": code, "name": caption_name(code)} for code in languages
            ]
        }
        data = self._call(
            "POST",
            "generate captions",
            self._assets.generate_asset_track_subtitles,
            asset_id,
            audio_track_id,
            body,
            retry_lost=False,
        )
        items = data.get("data") if isinstance(data, dict) else None
        if isinstance(items, dict):
            items = [items]
        return [Track.from_json(t) for t in items or [] if isinstance(t, dict)]

    def create_text_track(
        self,
        asset_id: str,
        url: str,
        *,
        language: str,
        name: str,
        closed_captions: bool = False,
    ) -> Track:
        """Have Mux fetch a WebVTT or SRT file from `url` as a subtitle track of the asset;
        returns the track, `preparing`."""
        body = {
            "url": url,
            "type": "text",
            "text_type": "subtitles",
            "language_code": language,
            "name": name,
            "closed_captions": closed_captions,
        }
        data = self._call(
            "POST",
            "add a subtitle track",
            self._assets.create_asset_track,
            asset_id,
            body,
            retry_lost=False,
        )
        return _one(data, Track.from_json, "subtitle track")

    def delete_track(self, asset_id: str, track_id: str) -> bool:
        """Delete one of the asset's tracks; False when it was already gone (404)."""
        try:
            self._call(
                "DELETE", "delete a track", self._assets.delete_asset_track, asset_id, track_id
            )
        except MuxNotFound:
            return False
        return True

    def create_static_rendition(self, asset_id: str, resolution: str) -> StaticRendition:
        """Ask Mux for a static (MP4) rendition of `resolution`; returns it, `preparing`."""
        data = self._call(
            "POST",
            "add a static rendition",
            self._assets.create_asset_static_rendition,
            asset_id,
            {"resolution": resolution},
            retry_lost=False,
        )
        return _one(data, StaticRendition.from_json, "static rendition")

    def update_meta(self, asset_id: str, meta: Mapping[str, str]) -> None:
        """Set the asset's `meta` (title, external_id, creator_id) to `meta`."""
        self._call(
            "PATCH",
            "update the asset's meta",
            self._assets.update_asset,
            asset_id,
            {"meta": dict(meta)},
        )

    def set_master_access(self, asset_id: str, access: str) -> Master:
        """`PUT /video/v1/assets/{ID}/master-access`: `temporary` asks Mux to prepare the
        asset's original for download (`master.status` `preparing`, then `ready` with a URL
        that expires after 24 h); `none` revokes it. Idempotent, so retried like a GET."""
        data = self._call(
            "PUT",
            "set master access",
            self._assets.update_asset_master_access,
            asset_id,
            {"master_access": access},
        )
        return Master.from_json(data["data"])

    def get_master(self, asset_id: str) -> Master:
        """The asset's master access and its master's state (and URL, once ready)."""
        data = self._call("GET", "get asset", self._assets.get_asset, asset_id)
        return Master.from_json(data["data"])


def _one(data: Any, parse: Callable[[Mapping[str, Any]], Any], what: str) -> Any:
    item = data.get("data") if isinstance(data, dict) else None
    if not isinstance(item, dict) or not item.get("id"):
        raise MuxServerError(f"Mux created a {what} but did not say which")
    return parse(item)
