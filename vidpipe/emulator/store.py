"""The emulator's state: direct uploads and assets, with Mux's rules and shapes.

Everything here is in memory and guarded by one re-entrant lock. Time-driven changes
(an upload timing out, an asset becoming ready) are applied lazily whenever a record is
read, and by `Store.run_clock()` so that webhooks go out on time even if nobody asks.
The objects and their JSON are in objects.py; the checks of request bodies in params.py.
"""

from __future__ import annotations

import dataclasses
import heapq
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidpipe.emulator.catalogue import Catalogue
from vidpipe.emulator.gcs import HEAD_BYTES, ResumableSession
from vidpipe.emulator.ingest import Fetched
from vidpipe.emulator.objects import (
    INVALID_INPUT,
    NOT_FOUND,
    ApiError,
    Asset,
    Upload,
    looks_like_video,
    random_id,
)
from vidpipe.emulator.params import validate_asset_body, validate_policy, validate_upload_body
from vidpipe.emulator.settings import AssetSettings, parse_asset_settings

ASSET_STATUSES = frozenset({"preparing", "ready", "errored"})
TRACK_STATUSES = frozenset({"preparing", "ready", "errored"})

Emit = Callable[[str, str, str, dict[str, Any]], None]
"""emit(event_type, object_type, object_id, data) — called with the store lock held."""


@dataclass(order=True)
class _Due:
    when: float
    kind: str = field(compare=False)
    ident: str = field(compare=False)


class Store:
    """Uploads and assets with Mux's state machine. All public methods are thread-safe."""

    def __init__(
        self, *, ready_after: float, emit: Emit, store_dir: Path | None, checksum: bool = True
    ) -> None:
        self._checksum = checksum
        self.ready_after = ready_after
        self._emit = emit
        self._store_dir = store_dir
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._uploads: dict[str, Upload] = {}
        self._assets = Catalogue()
        self._fail_next = 0
        self._due: list[_Due] = []
        self._closed = False

    # ----- uploads -------------------------------------------------------------------

    def create_upload(self, body: Any, url_base: str) -> dict[str, Any]:
        """POST /video/v1/uploads. Raises ApiError(400) for an invalid body."""
        accepted = validate_upload_body(body)
        upload_id = random_id(40)
        path = self._store_dir / f"{upload_id}.bin" if self._store_dir else None
        upload = Upload(
            id=upload_id,
            body=accepted,
            url=f"{url_base}/upload/{upload_id}",
            created_at=time.time(),
            session=ResumableSession(path, checksum=self._checksum),
        )
        with self._lock:
            self._uploads[upload_id] = upload
            self._schedule(upload.expires_at, "upload", upload_id)
            data = upload.to_json()
            self._emit("video.upload.created", "upload", upload_id, data)
            return data

    def get_upload(self, upload_id: str) -> dict[str, Any]:
        """GET /video/v1/uploads/{id}. Raises ApiError(404)."""
        with self._lock:
            return self._upload(upload_id).to_json()

    def list_uploads(self, limit: int, page: int | None) -> list[dict[str, Any]]:
        """GET /video/v1/uploads: page-numbered, oldest first."""
        with self._lock:
            start = ((page or 1) - 1) * limit
            uploads = list(self._uploads.values())[start : start + limit]
            return [self._refresh_upload(u).to_json() for u in uploads]

    def cancel_upload(self, upload_id: str) -> dict[str, Any]:
        """PUT /video/v1/uploads/{id}/cancel. Raises ApiError(404 | 403)."""
        with self._lock:
            upload = self._upload(upload_id)
            if upload.status != "waiting":
                raise ApiError(403, "forbidden", "Cancellation no longer possible")
            upload.status = "cancelled"
            upload.session.close()
            data = upload.to_json()
            self._emit("video.upload.cancelled", "upload", upload_id, data)
            return data

    def expire_upload(self, upload_id: str) -> None:
        """Test hook: make a waiting upload time out now."""
        with self._lock:
            upload = self._uploads[upload_id]
            upload.created_at = min(upload.created_at, time.time() - upload.body.timeout - 1)
            self._refresh_upload(upload)

    def writable_upload(self, upload_id: str) -> Upload | None:
        """The upload whose URL accepts bytes, or None (unknown, finished, cancelled, expired).

        A completed upload is returned too: GCS answers a finished session with 200.
        """
        with self._lock:
            upload = self._uploads.get(upload_id)
            if upload is None:
                return None
            self._refresh_upload(upload)
            if upload.status == "waiting" or upload.session.complete:
                return upload
            return None

    def accepts_bytes(self, upload: Upload) -> bool:
        """Whether bytes for `upload` may still be committed (it is waiting, not expired)."""
        with self._lock:
            return self._refresh_upload(upload).status == "waiting"

    def complete_upload(self, upload: Upload) -> None:
        """All bytes are in: the upload becomes asset_created and its asset is created."""
        with self._lock:
            if upload.status != "waiting":
                return
            size, _ = upload.session.digest()
            ok = looks_like_video(upload.session.head[:HEAD_BYTES]) and not self._take_failure()
            asset = self._new_asset(
                upload.body.asset_settings,
                upload_id=upload.id,
                size=size,
                outcome="ready" if ok else "errored",
            )
            upload.status = "asset_created"
            upload.asset_id = asset.id
            self._emit(
                "video.asset.created", "asset", asset.id, asset.to_json(integer_created_at=True)
            )
            self._emit("video.upload.asset_created", "upload", upload.id, upload.to_json())
            self._refresh_asset(asset)

    def received(self, upload_id: str) -> tuple[int, str]:
        """(bytes committed, hex SHA-256 of them) for an upload's URL."""
        with self._lock:
            session = self._uploads[upload_id].session
        return session.digest()

    def upload_bytes(self, upload_id: str) -> bytes:
        """The committed bytes of an upload, read back from store_dir."""
        with self._lock:
            session = self._uploads[upload_id].session
        return session.stored_bytes()

    def fail_next_assets(self, n: int) -> None:
        """Test hook: the next `n` assets created (from uploads or URLs) end up errored."""
        with self._lock:
            self._fail_next += n

    # ----- assets --------------------------------------------------------------------

    def create_asset(self, body: Any) -> tuple[dict[str, Any], str]:
        """POST /video/v1/assets: (the new, preparing asset, the input URL to fetch).

        The caller fetches the URL and reports with `finish_ingest`. Raises ApiError(400).
        """
        settings = validate_asset_body(body)
        assert settings.input_url is not None
        with self._lock:
            asset = self._new_asset(settings, upload_id=None, size=0, outcome=None)
            asset.forced_error = self._take_failure()
            data = asset.to_json()
            self._emit(
                "video.asset.created", "asset", asset.id, asset.to_json(integer_created_at=True)
            )
            return data, settings.input_url

    def finish_ingest(self, asset_id: str, fetched: Fetched) -> None:
        """The fetch of an asset's input URL is over: it becomes ready or errored on time."""
        with self._lock:
            asset = self._assets.get(asset_id)
            if asset is None or asset.outcome is not None:
                return  # deleted meanwhile, or given a status by a test
            asset.size = fetched.size
            if fetched.error is not None:
                asset.outcome = "errored"
                asset.failure = {"type": "invalid_input", "messages": [fetched.error]}
            elif asset.forced_error or not looks_like_video(fetched.head):
                asset.outcome = "errored"
            else:
                asset.outcome = "ready"
            self._refresh_asset(asset)

    def get_asset(self, asset_id: str) -> dict[str, Any]:
        """GET /video/v1/assets/{id}. Raises ApiError(404)."""
        with self._lock:
            return self._refresh_asset(self._asset(asset_id)).to_json()

    def delete_asset(self, asset_id: str, *, notify: bool = True) -> None:
        """DELETE /video/v1/assets/{id}. Raises ApiError(404)."""
        with self._lock:
            asset = self._refresh_asset(self._asset(asset_id))
            self._assets.remove(asset)
            if notify:
                data = asset.to_json(integer_created_at=True)
                self._emit("video.asset.deleted", "asset", asset_id, data)

    def list_assets(
        self, limit: int, page: int | None, cursor: str | None, upload_id: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """GET /video/v1/assets: (page of assets oldest first, next_cursor or None).

        The cursor names the last asset returned, so deleting assets between pages never
        skips or repeats one.
        """
        with self._lock:
            picked, next_cursor = self._assets.page(limit, page, cursor, upload_id)
            return [self._refresh_asset(a).to_json() for a in picked], next_cursor

    def seed_assets(
        self,
        n: int,
        passthrough_fn: Callable[[int], str | None] = lambda _: None,
        *,
        settings: Mapping[str, Any] | None = None,
        status: str = "ready",
        created_at: int | None = None,
        asset_ids: list[str] | None = None,
        upload_id: str | None = None,
        size: int = 5_000_000,
        errors: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Test hook: add `n` assets at once, with no webhook; their status is pinned.

        `settings` are asset settings as in an upload's `new_asset_settings` (ValueError
        when Mux would refuse them); passthrough_fn(i) gives asset i's passthrough.
        """
        if status not in ASSET_STATUSES:
            raise ValueError(f"unknown asset status {status!r}")
        problems: list[str] = []
        parsed = parse_asset_settings(settings or {}, problems, direct_upload=True)
        if problems:
            raise ValueError("; ".join(problems))
        stamp = int(time.time()) if created_at is None else created_at
        out = []
        with self._lock:
            for i in range(n):
                asset = self._new_asset(
                    dataclasses.replace(parsed, passthrough=passthrough_fn(i)),
                    upload_id=upload_id,
                    size=size,
                    outcome="ready",
                    asset_id=asset_ids[i] if asset_ids else None,
                    created_at=stamp,
                    status=status,
                )
                if status == "errored":
                    asset.errors = dict(errors or INVALID_INPUT)
                out.append(asset.to_json())
        return out

    def set_asset_status(self, asset_id: str, status: str) -> None:
        """Test hook: force an asset's status (and pin it there); no webhook."""
        if status not in ASSET_STATUSES:
            raise ValueError(f"unknown asset status {status!r}")
        with self._lock:
            asset = self._assets[asset_id]
            asset.status = status
            asset.pinned = True
            if status == "errored" and asset.errors is None:
                asset.errors = dict(INVALID_INPUT)

    def set_track_status(self, asset_id: str, language_code: str, status: str) -> None:
        """Test hook: set the status of an asset's generated subtitle track(s) of a language."""
        if status not in TRACK_STATUSES:
            raise ValueError(f"unknown track status {status!r}")
        with self._lock:
            tracks = [
                t
                for t in self._assets[asset_id].text_tracks
                if t.subtitle.language_code == language_code
            ]
            if not tracks:
                raise KeyError(f"asset {asset_id} has no {language_code} subtitle track")
            for track in tracks:
                track.status = status

    # ----- playback IDs --------------------------------------------------------------

    def create_playback_id(self, asset_id: str, body: Any) -> dict[str, str]:
        """POST /video/v1/assets/{id}/playback-ids. Raises ApiError(400 | 404)."""
        with self._lock:
            asset = self._asset(asset_id)
            playback_id = {"id": random_id(44), "policy": validate_policy(body)}
            asset.playback_ids.append(playback_id)
            return dict(playback_id)

    def get_playback_id(self, asset_id: str, playback_id: str) -> dict[str, str]:
        """GET /video/v1/assets/{id}/playback-ids/{pid}. Raises ApiError(404)."""
        with self._lock:
            entry = self._asset(asset_id).playback_id(playback_id)
            if entry is None:
                raise ApiError(404, "not_found", NOT_FOUND)
            return dict(entry)

    def delete_playback_id(self, asset_id: str, playback_id: str) -> None:
        """DELETE /video/v1/assets/{id}/playback-ids/{pid}. Raises ApiError(404)."""
        with self._lock:
            asset = self._asset(asset_id)
            kept = [p for p in asset.playback_ids if p["id"] != playback_id]
            if len(kept) == len(asset.playback_ids):
                raise ApiError(404, "not_found", NOT_FOUND)
            asset.playback_ids = kept

    def find_playback_id(self, playback_id: str) -> dict[str, Any]:
        """GET /video/v1/playback-ids/{pid}: the ID, its policy and its asset."""
        with self._lock:
            for asset in self._assets:
                entry = asset.playback_id(playback_id)
                if entry is not None:
                    return {**entry, "object": {"type": "asset", "id": asset.id}}
            raise ApiError(404, "not_found", NOT_FOUND)

    def snapshot_assets(self) -> dict[str, dict[str, Any]]:
        """A copy of every asset's JSON, by ID."""
        with self._lock:
            return {a.id: self._refresh_asset(a).to_json() for a in self._assets}

    def snapshot_uploads(self) -> dict[str, dict[str, Any]]:
        """A copy of every upload's JSON, by ID."""
        with self._lock:
            return {u.id: self._refresh_upload(u).to_json() for u in self._uploads.values()}

    # ----- time ----------------------------------------------------------------------

    def run_clock(self) -> None:
        """Apply due state changes on time until `close()`; run it in a daemon thread."""
        with self._wake:
            while not self._closed:
                now = time.time()
                while self._due and self._due[0].when <= now:
                    due = heapq.heappop(self._due)
                    if due.kind == "asset" and due.ident in self._assets:
                        self._refresh_asset(self._assets[due.ident])
                    elif due.kind == "upload" and due.ident in self._uploads:
                        self._refresh_upload(self._uploads[due.ident])
                timeout = self._due[0].when - now if self._due else None
                self._wake.wait(timeout)

    def close(self) -> None:
        """Stop `run_clock()` and release upload files."""
        with self._wake:
            self._closed = True
            self._wake.notify_all()
            for upload in self._uploads.values():
                upload.session.close()

    # ----- internals (lock held) -----------------------------------------------------

    def _schedule(self, when: float, kind: str, ident: str) -> None:
        heapq.heappush(self._due, _Due(when, kind, ident))
        if self._due[0].ident == ident:
            self._wake.notify_all()

    def _upload(self, upload_id: str) -> Upload:
        upload = self._uploads.get(upload_id)
        if upload is None:
            raise ApiError(404, "not_found", NOT_FOUND)
        return self._refresh_upload(upload)

    def _asset(self, asset_id: str) -> Asset:
        asset = self._assets.get(asset_id)
        if asset is None:
            raise ApiError(404, "not_found", NOT_FOUND)
        return asset

    def _refresh_upload(self, upload: Upload) -> Upload:
        if upload.status == "waiting" and time.time() >= upload.expires_at:
            upload.status = "timed_out"
            upload.session.close()
        return upload

    def _take_failure(self) -> bool:
        """Whether a `fail_next_assets` failure is due for the asset being created."""
        if self._fail_next > 0:
            self._fail_next -= 1
            return True
        return False

    def _refresh_asset(self, asset: Asset) -> Asset:
        event = asset.settle(time.time())
        if event is not None:
            self._emit(event, "asset", asset.id, asset.to_json(integer_created_at=True))
        return asset

    def _new_asset(self, settings: AssetSettings, **fields: Any) -> Asset:
        """A new asset (see `Asset.new` for `fields`), listed and scheduled unless pinned."""
        seq = self._assets.next_seq()
        asset = Asset.new(settings, seq=seq, ready_after=self.ready_after, **fields)
        self._assets.add(asset)
        if not asset.pinned:
            self._schedule(asset.ready_at, "asset", asset.id)
        return asset
