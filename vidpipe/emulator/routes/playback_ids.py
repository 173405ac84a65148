"""Playback IDs: an asset's (create, get, delete) and the lookup by playback ID."""

from __future__ import annotations

from vidpipe.emulator.routing import Request, Response, Routes, data, no_content

routes = Routes()
ASSET_IDS = "/video/v1/assets/{asset_id}/playback-ids"


@routes("POST", ASSET_IDS)
def create(req: Request) -> Response:
    return data(req.store.create_playback_id(req.params["asset_id"], req.json()), 201)


@routes("GET", f"{ASSET_IDS}/{{playback_id}}")
def get(req: Request) -> Response:
    return data(req.store.get_playback_id(req.params["asset_id"], req.params["playback_id"]))


@routes("DELETE", f"{ASSET_IDS}/{{playback_id}}")
def delete(req: Request) -> Response:
    req.store.delete_playback_id(req.params["asset_id"], req.params["playback_id"])
    return no_content()


@routes("GET", "/video/v1/playback-ids/{playback_id}")
def find(req: Request) -> Response:
    """The ID, its policy and the asset it belongs to."""
    return data(req.store.find_playback_id(req.params["playback_id"]))
