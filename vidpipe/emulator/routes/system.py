"""`/system/v1`: who the credentials belong to."""

from __future__ import annotations

from vidpipe.emulator.routing import Request, Response, Routes, data

routes = Routes()


@routes("GET", "/system/v1/whoami")
def whoami(req: Request) -> Response:
    """The token's environment, organization and permissions."""
    return data(req.services.whoami())
