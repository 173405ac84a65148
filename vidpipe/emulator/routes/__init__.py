"""The emulator's API routes: one module per Mux resource, each route declared above its
handler.

How to add an endpoint:
1. In the resource's module here (or a new one, e.g. `tracks.py`, with its own
   `routes = Routes()`), write a function `def name(req: Request) -> Response` under
   `@routes("POST", "/video/v1/assets/{asset_id}/tracks")` (`authenticated=False` for a
   link Mux hands out: no credentials, no rate limit). Read the path's `{name}` segments
   from `req.params`, the query from `req.query`, a JSON body with `req.json()`; change
   state only through `req.store` (add the operation to `Store` in store.py, under its
   lock, with Mux's rules and webhooks). Answer with `data(...)` / `no_content()` from
   `vidpipe.emulator.routing`, or raise `ApiError(status, type, *messages)` for Mux's 4xx
   shape `{"error": {"type", "messages"}}`.
2. A new module's routes join `ROUTES` below.

Credentials, rate limits, injected faults, the request log and the HTTP framing are the
server's job (server.py); a path or method with no route answers Mux's 404. Routes are
tried in order (module by module, as declared); the first whose method and pattern fit
answers.
"""

from vidpipe.emulator.routes import asset_parts, assets, playback_ids, system, uploads
from vidpipe.emulator.routing import Route

ROUTES: tuple[Route, ...] = (
    *system.routes,
    *assets.routes,
    *asset_parts.routes,
    *playback_ids.routes,
    *uploads.routes,
)

__all__ = ["ROUTES"]
