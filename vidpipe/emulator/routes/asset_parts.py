"""An existing asset's day-2 endpoints: generated captions, subtitle tracks, static
renditions, PATCH (the model and Mux's rules: `vidpipe.emulator.tracks`)."""

from __future__ import annotations

from vidpipe.emulator import tracks
from vidpipe.emulator.routing import Request, Response, Routes, data, no_content

routes = Routes()
ASSET = "/video/v1/assets/{asset_id}"


@routes("PATCH", ASSET)
def update_asset(req: Request) -> Response:
    """Meta and passthrough."""
    return data(tracks.update_asset(req.store, req.params["asset_id"], req.json()))


@routes("POST", f"{ASSET}/tracks")
def create_track(req: Request) -> Response:
    """A subtitle file fetched from a URL."""
    return data(tracks.create_track(req.store, req.params["asset_id"], req.json()), 201)


@routes("DELETE", f"{ASSET}/tracks/{{track_id}}")
def delete_track(req: Request) -> Response:
    tracks.delete_track(req.store, req.params["asset_id"], req.params["track_id"])
    return no_content()


@routes("POST", f"{ASSET}/tracks/{{track_id}}/generate-subtitles")
def generate_subtitles(req: Request) -> Response:
    made = tracks.generate_subtitles(
        req.store, req.params["asset_id"], req.params["track_id"], req.json()
    )
    return data(made, 201)


@routes("POST", f"{ASSET}/static-renditions")
def create_static_rendition(req: Request) -> Response:
    made = tracks.create_static_rendition(req.store, req.params["asset_id"], req.json())
    return data(made, 201)


@routes("DELETE", f"{ASSET}/static-renditions/{{rendition_id}}")
def delete_static_rendition(req: Request) -> Response:
    tracks.delete_static_rendition(req.store, req.params["asset_id"], req.params["rendition_id"])
    return no_content()
