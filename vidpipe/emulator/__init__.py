"""A local stand-in for the Mux Video API (and its GCS upload URLs) for tests and demos.

`Emulator` runs a real HTTP server on loopback; `run_emulator` is the blocking entry point
behind `vidpipe emulator`. Nothing in vidpipe's core imports this package.

Where Mux or GCS leave a choice open, the emulator answers like this:
- upload URL of an unknown, cancelled or timed-out upload: 404, plain-text body `Not Found`
  (an expired GCS session); a completed upload's URL keeps answering 200.
- a chunk starting beyond the held offset: 400 (GCS's "exceeds already uploaded size");
  a chunk starting at or before it: the bytes already held are skipped.
- a non-final chunk that is not a multiple of 256 KiB, a Content-Length that disagrees
  with Content-Range, or a total that changes: 400, plain text.
- a broken request (cut connection, short body) keeps only whole 256 KiB blocks of it.
- a newer request on the same upload supersedes one still draining a dead connection: the
  older one keeps nothing more and is answered 503, a final chunk too (never a 200 for
  an object short of its last bytes).
- asset order in lists is creation order, oldest first; the cursor names the last asset
  returned, so deletes between pages neither skip nor repeat assets.
- an asset created (uploaded or from a URL) without a playback policy has no playback ID,
  as on Mux; a seeded asset has a public one unless `playback_policies` says otherwise.
- one emulator is one environment (`environment_id`/`environment_name`, shown by
  `GET /system/v1/whoami` and in every webhook); assets are never shared between emulators.
- the emulated source video is 1080p: static renditions above it end up `skipped`;
  generated subtitle tracks stay `preparing` (see `set_track_status`) unless the asset
  errors; `meta` keys other than title, creator_id and external_id are refused (400).
- a track or static rendition added to an existing asset is announced by webhook when made,
  when it ends (`ready`, `errored`, `skipped`: sent on time by the clock) and when deleted
  (`video.asset.track.*`, `video.asset.static_rendition.*`; `data` is the part plus its
  `asset_id`, `object.type` is `track` / `static_rendition`); a PATCH by
  `video.asset.updated`.
- a URL is fetched once, with a GET; any error, a non-2xx answer or bytes that are not a
  video make the asset `errored` (`invalid_input`) at `ready_after` or when the fetch ends.
- with `rate_limit`, every API answer (429s and errors included) carries
  `X-RateLimit-Limit` (bucket size), `-Remaining` and `-Reset` (Unix seconds when the
  bucket is full again); never Retry-After.
- seeded assets and assets given a status by `set_asset_status` keep that status.
- `request_log` records status 0 for a request closed without an answer.
- `webhook_log` holds one entry per delivery attempt.
"""

from vidpipe.emulator.control import Emulator, run_emulator
from vidpipe.emulator.gcs import BLOCK
from vidpipe.emulator.webhooks import sign

__all__ = ["BLOCK", "Emulator", "run_emulator", "sign"]
