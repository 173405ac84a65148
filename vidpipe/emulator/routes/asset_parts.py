"""An existing asset's day-2 endpoints: generated captions, subtitle tracks, static
renditions, PATCH (the model and Mux's rules: `vidpipe.emulator.tracks`)."""

from __future__ import annotations

from vidpipe.emulator import tracks
from vidpipe.emulator.routing import Request, Response, data, no_content


def generate_subtitles(req: Request) -> Response:
    """POST /video/v1/assets/{asset_id}/tracks/{track_id}/generate-subtitles."""
    made = tracks.generate_subtitles(
        req.store, req.params["asset_id"], req.params["track_id"], req.json()
    )
    return data(made, 201)


def create_track(req: Request) -> Response:
    """POST /video/v1/assets/{asset_id}/tracks: a subtitle file fetched from a URL."""
    return data(tracks.create_track(req.store, req.params["asset_id"], req.json()), 201)


def delete_track(req: Request) -> Response:
    tracks.delete_track(req.store, req.params["asset_id"], req.params["track_id"])
    return no_content()


def create_static_rendition(req: Request) -> Response:
    made = tracks.create_static_rendition(req.store, req.params["asset_id"], req.json())
    return data(made, 201)


def delete_static_rendition(req: Request) -> Response:
    tracks.delete_static_rendition(req.store, req.params["asset_id"], req.params["rendition_id"])
    return no_content()


def update_asset(req: Request) -> Response:
    """PATCH /video/v1/assets/{asset_id}: meta and passthrough."""
    return data(tracks.update_asset(req.store, req.params["asset_id"], req.json()))
