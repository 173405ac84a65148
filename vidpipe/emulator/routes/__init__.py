"""The emulator's API routes: one module per Mux resource, one table.

How to add an endpoint:
1. In the resource's module here (or a new one, e.g. `tracks.py`), write a function
   `def name(req: Request) -> Response`. Read the path's `{name}` segments from
   `req.params`, the query from `req.query`, a JSON body with `req.json()`; change state
   only through `req.store` (add the operation to `Store` in store.py, under its lock, with
   Mux's rules and webhooks). Answer with `data(...)` / `no_content()` from
   `vidpipe.emulator.routing`, or raise `ApiError(status, type, *messages)` for Mux's
   4xx shape `{"error": {"type", "messages"}}`.
2. Register it with one line in `ROUTES` below, in its resource's group:
   `Route("POST", "/video/v1/assets/{asset_id}/tracks", tracks.create_track),`
   (`authenticated=False` for a link Mux hands out: no credentials, no rate limit).

Credentials, rate limits, injected faults, the request log and the HTTP framing are the
server's job (server.py); a path or method with no route answers Mux's 404. Routes are
tried in order; the first whose method and pattern fit answers.
"""

from vidpipe.emulator.routes import asset_parts, assets, playback_ids, system, uploads
from vidpipe.emulator.routing import Route

ROUTES: tuple[Route, ...] = (
    # /system/v1
    Route("GET", "/system/v1/whoami", system.whoami),
    # assets
    Route("POST", "/video/v1/assets", assets.create_asset),
    Route("GET", "/video/v1/assets", assets.list_assets),
    Route("GET", "/video/v1/assets/{asset_id}", assets.get_asset),
    Route("DELETE", "/video/v1/assets/{asset_id}", assets.delete_asset),
    Route("PUT", "/video/v1/assets/{asset_id}/master-access", assets.put_master_access),
    # an existing asset's tracks, static renditions and meta
    Route("PATCH", "/video/v1/assets/{asset_id}", asset_parts.update_asset),
    Route("POST", "/video/v1/assets/{asset_id}/tracks", asset_parts.create_track),
    Route("DELETE", "/video/v1/assets/{asset_id}/tracks/{track_id}", asset_parts.delete_track),
    Route(
        "POST",
        "/video/v1/assets/{asset_id}/tracks/{track_id}/generate-subtitles",
        asset_parts.generate_subtitles,
    ),
    Route(
        "POST",
        "/video/v1/assets/{asset_id}/static-renditions",
        asset_parts.create_static_rendition,
    ),
    Route(
        "DELETE",
        "/video/v1/assets/{asset_id}/static-renditions/{rendition_id}",
        asset_parts.delete_static_rendition,
    ),
    # playback IDs
    Route("POST", "/video/v1/assets/{asset_id}/playback-ids", playback_ids.create),
    Route("GET", "/video/v1/assets/{asset_id}/playback-ids/{playback_id}", playback_ids.get),
    Route("DELETE", "/video/v1/assets/{asset_id}/playback-ids/{playback_id}", playback_ids.delete),
    Route("GET", "/video/v1/playback-ids/{playback_id}", playback_ids.find),
    # direct uploads (the upload URL itself is served by upload_url.py)
    Route("POST", "/video/v1/uploads", uploads.create_upload),
    Route("GET", "/video/v1/uploads", uploads.list_uploads),
    Route("GET", "/video/v1/uploads/{upload_id}", uploads.get_upload),
    Route("PUT", "/video/v1/uploads/{upload_id}/cancel", uploads.cancel_upload),
)

__all__ = ["ROUTES"]
