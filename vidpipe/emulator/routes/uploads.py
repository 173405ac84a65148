"""`/video/v1/uploads`: direct uploads (create, list, get, cancel).

The upload URL itself (the GCS resumable session) is served by upload_url.py.
"""

from __future__ import annotations

from vidpipe.emulator.params import parse_limit, parse_page
from vidpipe.emulator.routing import Request, Response, Routes, data

routes = Routes()


@routes("POST", "/video/v1/uploads")
def create_upload(req: Request) -> Response:
    """A waiting upload whose URL is on this server."""
    return data(req.store.create_upload(req.json(), req.url_base), 201)


@routes("GET", "/video/v1/uploads")
def list_uploads(req: Request) -> Response:
    limit, page = parse_limit(req.query.get("limit")), parse_page(req.query.get("page"))
    return data(req.store.list_uploads(limit, page))


@routes("GET", "/video/v1/uploads/{upload_id}")
def get_upload(req: Request) -> Response:
    return data(req.store.get_upload(req.params["upload_id"]))


@routes("PUT", "/video/v1/uploads/{upload_id}/cancel")
def cancel_upload(req: Request) -> Response:
    return data(req.store.cancel_upload(req.params["upload_id"]))
