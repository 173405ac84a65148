"""Playback IDs: an asset's (create, get, delete) and the lookup by playback ID."""

from __future__ import annotations

from vidpipe.emulator.routing import Request, Response, data, no_content


def create(req: Request) -> Response:
    return data(req.store.create_playback_id(req.params["asset_id"], req.json()), 201)


def get(req: Request) -> Response:
    return data(req.store.get_playback_id(req.params["asset_id"], req.params["playback_id"]))


def delete(req: Request) -> Response:
    req.store.delete_playback_id(req.params["asset_id"], req.params["playback_id"])
    return no_content()


def find(req: Request) -> Response:
    """GET /video/v1/playback-ids/{id}: the ID, its policy and the asset it belongs to."""
    return data(req.store.find_playback_id(req.params["playback_id"]))
