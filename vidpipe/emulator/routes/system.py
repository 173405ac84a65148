"""`/system/v1`: who the credentials belong to."""

from __future__ import annotations

from vidpipe.emulator.routing import Request, Response, data


def whoami(req: Request) -> Response:
    """GET /system/v1/whoami: the token's environment, organization and permissions."""
    return data(req.services.whoami())
