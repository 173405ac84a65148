"""`/video/v1/assets`: create from a URL, list, get, delete, master access."""

from __future__ import annotations

from vidpipe.emulator.params import parse_limit, parse_page
from vidpipe.emulator.routing import Request, Response, Routes, data, no_content

routes = Routes()


@routes("POST", "/video/v1/assets")
def create_asset(req: Request) -> Response:
    """A preparing asset; its input URL is fetched in the background."""
    created, url = req.store.create_asset(req.json())
    req.services.ingest(created["id"], url)
    return data(created, 201)


@routes("GET", "/video/v1/assets")
def list_assets(req: Request) -> Response:
    """A page, oldest first, with `next_cursor`."""
    assets, cursor = req.store.list_assets(
        parse_limit(req.query.get("limit")),
        parse_page(req.query.get("page")),
        req.query.get("cursor"),
        req.query.get("upload_id"),
    )
    return data(assets, next_cursor=cursor)


@routes("GET", "/video/v1/assets/{asset_id}")
def get_asset(req: Request) -> Response:
    return data(req.services.masters.with_fields(req.store.get_asset(req.params["asset_id"])))


@routes("DELETE", "/video/v1/assets/{asset_id}")
def delete_asset(req: Request) -> Response:
    req.store.delete_asset(req.params["asset_id"])
    req.services.masters.forget(req.params["asset_id"])
    return no_content()


@routes("PUT", "/video/v1/assets/{asset_id}/master-access")
def put_master_access(req: Request) -> Response:
    """`temporary` (the master is prepared, then a link is handed out) or `none` (the links
    stop working)."""
    asset = req.store.get_asset(req.params["asset_id"])
    return data(req.services.masters.put_json(asset, req.json()))
