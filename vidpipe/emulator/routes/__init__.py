"""The emulator's API routes: one module per Mux resource, one table.

How to add an endpoint:
1. In the resource's module here (or a new one, e.g. `tracks.py`), write a function
   `def name(req: Request) -> Response`. Read the path's `{name}` segments from
   `req.params`, the query from `req.query`, a JSON body with `req.json()`; change state
   only through `req.store` (add the operation to `Store` in store.py, under its lock, with
   Mux's rules and webhooks). Answer with `data(...)` / `no_content()` from
   `vidpipe.emulator.routing`, or raise `ApiError(status, type, *messages)` for Mux's
   4xx shape `{"error": {"type", "messages"}}`.
2. Register it with one line in that module's `ROUTES`:
   `Route("POST", "/video/v1/assets/{asset_id}/tracks", create_track)`.
   `authenticated=False` for a link Mux hands out (no credentials, no rate limit).
3. A new module: add it to `ROUTES` below (one line).

Credentials, rate limits, injected faults, the request log and the HTTP framing are the
server's job (server.py); a path or method with no route answers Mux's 404. Routes are
tried in order; the first whose method and pattern fit answers.
"""

from vidpipe.emulator.routes import assets, playback_ids, system, uploads
from vidpipe.emulator.routing import Route

ROUTES: tuple[Route, ...] = (
    *assets.ROUTES,
    *playback_ids.ROUTES,
    *system.ROUTES,
    *uploads.ROUTES,
)

__all__ = ["ROUTES"]
