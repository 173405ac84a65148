"""The emulator's state: direct uploads and assets, with Mux's rules and shapes.

Everything here is in memory and guarded by one re-entrant lock. Time-driven changes
(an upload timing out, an asset becoming ready) are applied lazily whenever a record is
read, and by `Store.run_clock()` so that webhooks go out on time even if nobody asks.
"""

from __future__ import annotations

import base64
import bisect
import heapq
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidpipe.emulator.gcs import HEAD_BYTES, ResumableSession

PLAYBACK_POLICIES = frozenset({"public", "signed", "drm"})
VIDEO_QUALITIES = frozenset({"basic", "plus", "premium"})
ASSET_STATUSES = frozenset({"preparing", "ready", "errored"})
META_LIMITS = {"title": 512, "creator_id": 128, "external_id": 128}
TIMEOUT_MIN, TIMEOUT_MAX, TIMEOUT_DEFAULT = 60, 604800, 3600
LIMIT_DEFAULT, LIMIT_MAX = 25, 100
PASSTHROUGH_MAX = 255

NOT_FOUND = "The requested resource does not exist"
INVALID_INPUT = {"type": "invalid_input", "messages": ["The input file could not be processed"]}
_ENCODING_TIER = {"basic": "baseline", "plus": "smart", "premium": "premium"}

Emit = Callable[[str, str, str, dict[str, Any]], None]
"""emit(event_type, object_type, object_id, data) — called with the store lock held."""


class ApiError(Exception):
    """A Mux error answer: `{"error": {"type": type, "messages": messages}}` with `status`."""

    def __init__(self, status: int, type_: str, *messages: str) -> None:
        super().__init__(f"{status} {type_}: {'; '.join(messages)}")
        self.status = status
        self.type = type_
        self.messages = list(messages)

    def body(self) -> dict[str, Any]:
        return {"error": {"type": self.type, "messages": self.messages}}


def random_id(length: int = 40) -> str:
    """A Mux-looking opaque ID of ASCII letters and digits."""
    out = ""
    while len(out) < length:
        out += secrets.token_urlsafe(length).replace("-", "").replace("_", "")
    return out[:length]


def looks_like_video(head: bytes) -> bool:
    """True when `head` starts with a container signature Mux would ingest."""
    return (
        head[4:8] == b"ftyp"  # MP4 / MOV / 3GP
        or head.startswith(b"\x1a\x45\xdf\xa3")  # Matroska / WebM
        or (head[:4] == b"RIFF" and head[8:12] == b"AVI ")
        or head.startswith(b"\x00\x00\x01\xba")  # MPEG program stream
        or head.startswith(b"FLV")
        or head[:1] == b"\x47"  # MPEG transport stream sync byte
    )


@dataclass
class Upload:
    """A direct upload and the GCS session behind its URL."""

    id: str
    timeout: int
    cors_origin: str | None
    new_asset_settings: dict[str, Any]
    test: bool
    url: str
    created_at: float
    session: ResumableSession
    status: str = "waiting"
    asset_id: str | None = None
    error: dict[str, str] | None = None

    @property
    def expires_at(self) -> float:
        return self.created_at + self.timeout

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "timeout": self.timeout,
            "status": self.status,
            "new_asset_settings": self.new_asset_settings,
        }
        if self.cors_origin is not None:
            out["cors_origin"] = self.cors_origin
        if self.status == "waiting":
            out["url"] = self.url
        if self.asset_id is not None:
            out["asset_id"] = self.asset_id
        if self.error is not None:
            out["error"] = self.error
        if self.test:
            out["test"] = True
        return out


@dataclass
class Asset:
    """An asset. `pinned` assets (seeded, or status set by a test) never change by themselves."""

    id: str
    seq: int
    created_at: int
    status: str
    playback_ids: list[dict[str, str]]
    passthrough: str | None
    upload_id: str | None
    size: int
    video_quality: str
    meta: dict[str, Any] | None
    test: bool
    ready_at: float
    outcome: str = "ready"
    pinned: bool = False
    errors: dict[str, Any] | None = None

    def to_json(self, *, integer_created_at: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "created_at": self.created_at if integer_created_at else str(self.created_at),
            "status": self.status,
            "playback_ids": [dict(p) for p in self.playback_ids],
            "mp4_support": "none",
            "master_access": "none",
            "video_quality": self.video_quality,
            "encoding_tier": _ENCODING_TIER.get(self.video_quality, "smart"),
            "max_resolution_tier": "1080p",
            "ingest_type": "on_demand_direct_upload" if self.upload_id else "on_demand_url",
            "tracks": [],
        }
        if self.passthrough is not None:
            out["passthrough"] = self.passthrough
        if self.upload_id is not None:
            out["upload_id"] = self.upload_id
        if self.meta:
            out["meta"] = dict(self.meta)
        if self.test:
            out["test"] = True
        if self.status == "ready":
            out.update(
                duration=round(max(self.size, 1) / 250_000, 3),
                max_stored_resolution="HD",
                max_stored_frame_rate=30.0,
                resolution_tier="1080p",
                aspect_ratio="16:9",
                progress={"state": "completed", "progress": 100},
            )
        elif self.status == "errored":
            out["errors"] = dict(self.errors or INVALID_INPUT)
            out["progress"] = {"state": "errored", "progress": -1}
        else:
            out["progress"] = {"state": "ingesting", "progress": 0}
        return out


@dataclass(order=True)
class _Due:
    when: float
    kind: str = field(compare=False)
    ident: str = field(compare=False)


def _encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"emu:{seq}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, seq = raw.partition(":")
        if prefix != "emu":
            raise ValueError(cursor)
        return int(seq)
    except ValueError as exc:
        raise ApiError(400, "invalid_parameters", "cursor is invalid") from exc


def parse_limit(raw: str | None) -> int:
    """`limit` query parameter: default 25, 1..100, else a 400."""
    if raw is None or raw == "":
        return LIMIT_DEFAULT
    try:
        limit = int(raw)
    except ValueError:
        raise ApiError(400, "invalid_parameters", "limit must be an integer") from None
    if not 1 <= limit <= LIMIT_MAX:
        raise ApiError(400, "invalid_parameters", f"limit must be between 1 and {LIMIT_MAX}")
    return limit


def parse_page(raw: str | None) -> int | None:
    """`page` query parameter (1-based), or None when absent."""
    if raw is None or raw == "":
        return None
    try:
        page = int(raw)
    except ValueError:
        raise ApiError(400, "invalid_parameters", "page must be an integer") from None
    if page < 1:
        raise ApiError(400, "invalid_parameters", "page must be at least 1")
    return page


def _validate_upload_body(body: Any) -> tuple[int, str | None, bool, dict[str, Any], list[str]]:
    """Check a create-upload body the way Mux does; returns its normalised parts."""
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_parameters", "Request body must be a JSON object")
    problems: list[str] = []
    timeout = body.get("timeout", TIMEOUT_DEFAULT)
    if isinstance(timeout, bool) or not isinstance(timeout, int):
        problems.append("timeout must be an integer")
    elif not TIMEOUT_MIN <= timeout <= TIMEOUT_MAX:
        problems.append(f"timeout must be between {TIMEOUT_MIN} and {TIMEOUT_MAX}")
    cors_origin = body.get("cors_origin")
    if cors_origin is not None and not isinstance(cors_origin, str):
        problems.append("cors_origin must be a string")
    test = body.get("test", False)
    if not isinstance(test, bool):
        problems.append("test must be a boolean")
    settings = body.get("new_asset_settings") or {}
    policies: list[str] = []
    if not isinstance(settings, dict):
        problems.append("new_asset_settings must be an object")
        settings = {}
    for key in ("playback_policies", "playback_policy"):
        value = settings.get(key)
        if value is None:
            continue
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            problems.append(f"{key} must be a list of strings")
            continue
        for policy in values:
            if policy not in PLAYBACK_POLICIES:
                problems.append(f"{key} value {policy!r} is not one of public, signed, drm")
            elif policy not in policies:
                policies.append(policy)
    passthrough = settings.get("passthrough")
    if passthrough is not None:
        if not isinstance(passthrough, str):
            problems.append("passthrough must be a string")
        elif len(passthrough) > PASSTHROUGH_MAX:
            problems.append(f"passthrough must be at most {PASSTHROUGH_MAX} characters")
    quality = settings.get("video_quality")
    if quality is not None and quality not in VIDEO_QUALITIES:
        problems.append("video_quality must be one of basic, plus, premium")
    meta = settings.get("meta")
    if meta is not None:
        if not isinstance(meta, dict):
            problems.append("meta must be an object")
        else:
            for key, limit in META_LIMITS.items():
                value = meta.get(key)
                if value is not None and (not isinstance(value, str) or len(value) > limit):
                    problems.append(f"meta.{key} must be a string of at most {limit} characters")
    if problems:
        raise ApiError(400, "invalid_parameters", *problems)
    return timeout, cors_origin, test, settings, policies or ["public"]


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
        self._assets: dict[str, Asset] = {}
        self._order: list[int] = []  # asset seqs in creation order, for cursor paging
        self._by_seq: dict[int, str] = {}
        self._seq = 0
        self._fail_next = 0
        self._due: list[_Due] = []
        self._closed = False

    # ----- uploads -------------------------------------------------------------------

    def create_upload(self, body: Any, url_base: str) -> dict[str, Any]:
        """POST /video/v1/uploads. Raises ApiError(400) for an invalid body."""
        timeout, cors_origin, test, settings, _ = _validate_upload_body(body)
        upload_id = random_id(40)
        path = self._store_dir / f"{upload_id}.bin" if self._store_dir else None
        upload = Upload(
            id=upload_id,
            timeout=timeout,
            cors_origin=cors_origin,
            new_asset_settings=settings,
            test=test,
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
            upload.created_at = min(upload.created_at, time.time() - upload.timeout - 1)
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
            settings = upload.new_asset_settings
            _, _, _, _, policies = _validate_upload_body({"new_asset_settings": settings})
            size, _ = upload.session.digest()
            ok = looks_like_video(upload.session.head[:HEAD_BYTES])
            if self._fail_next > 0:
                self._fail_next -= 1
                ok = False
            asset = self._new_asset(
                passthrough=settings.get("passthrough"),
                upload_id=upload.id,
                policies=policies,
                size=size,
                video_quality=settings.get("video_quality") or "plus",
                meta=settings.get("meta"),
                test=upload.test,
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
        """Test hook: the next `n` assets created from uploads end up errored."""
        with self._lock:
            self._fail_next += n

    # ----- assets --------------------------------------------------------------------

    def get_asset(self, asset_id: str) -> dict[str, Any]:
        """GET /video/v1/assets/{id}. Raises ApiError(404)."""
        with self._lock:
            return self._refresh_asset(self._asset(asset_id)).to_json()

    def delete_asset(self, asset_id: str, *, notify: bool = True) -> None:
        """DELETE /video/v1/assets/{id}. Raises ApiError(404)."""
        with self._lock:
            asset = self._refresh_asset(self._asset(asset_id))
            del self._assets[asset_id]
            del self._by_seq[asset.seq]
            index = bisect.bisect_left(self._order, asset.seq)
            del self._order[index]
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
            if cursor:
                index = bisect.bisect_right(self._order, _decode_cursor(cursor))
                skip = 0
            else:
                index = 0
                skip = ((page or 1) - 1) * limit
            picked: list[Asset] = []
            while index < len(self._order) and len(picked) < limit:
                asset = self._assets[self._by_seq[self._order[index]]]
                index += 1
                if upload_id is not None and asset.upload_id != upload_id:
                    continue
                if skip:
                    skip -= 1
                    continue
                picked.append(asset)
            more = any(
                upload_id is None or self._assets[self._by_seq[s]].upload_id == upload_id
                for s in self._order[index:]
            )
            next_cursor = _encode_cursor(picked[-1].seq) if picked and more else None
            return [self._refresh_asset(a).to_json() for a in picked], next_cursor

    def seed_asset(
        self,
        *,
        passthrough: str | None = None,
        status: str = "ready",
        created_at: int | None = None,
        playback_policies: Iterable[str] = ("public",),
        asset_id: str | None = None,
        upload_id: str | None = None,
        size: int = 5_000_000,
    ) -> dict[str, Any]:
        """Test hook: add an asset directly (no webhook); its status is pinned."""
        return self.seed_assets(
            1,
            passthrough_fn=lambda _: passthrough,
            status=status,
            created_at=created_at,
            playback_policies=playback_policies,
            asset_ids=[asset_id] if asset_id else None,
            upload_id=upload_id,
            size=size,
        )[0]

    def seed_assets(
        self,
        n: int,
        passthrough_fn: Callable[[int], str | None] = lambda _: None,
        *,
        status: str = "ready",
        created_at: int | None = None,
        playback_policies: Iterable[str] = ("public",),
        asset_ids: list[str] | None = None,
        upload_id: str | None = None,
        size: int = 5_000_000,
    ) -> list[dict[str, Any]]:
        """Test hook: add `n` assets at once; passthrough_fn(i) gives asset i's passthrough."""
        if status not in ASSET_STATUSES:
            raise ValueError(f"unknown asset status {status!r}")
        policies = list(playback_policies)
        stamp = int(time.time()) if created_at is None else created_at
        out = []
        with self._lock:
            for i in range(n):
                asset = self._new_asset(
                    passthrough=passthrough_fn(i),
                    upload_id=upload_id,
                    policies=policies,
                    size=size,
                    video_quality="plus",
                    meta=None,
                    test=False,
                    outcome="ready",
                    asset_id=asset_ids[i] if asset_ids else None,
                    created_at=stamp,
                    status=status,
                )
                if status == "errored":
                    asset.errors = dict(INVALID_INPUT)
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

    def snapshot_assets(self) -> dict[str, dict[str, Any]]:
        """A copy of every asset's JSON, by ID."""
        with self._lock:
            return {a.id: self._refresh_asset(a).to_json() for a in self._assets.values()}

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

    def _refresh_asset(self, asset: Asset) -> Asset:
        if asset.pinned or asset.status != "preparing" or time.time() < asset.ready_at:
            return asset
        asset.status = asset.outcome
        if asset.outcome == "errored":
            asset.errors = dict(INVALID_INPUT)
            self._emit(
                "video.asset.errored", "asset", asset.id, asset.to_json(integer_created_at=True)
            )
        else:
            self._emit(
                "video.asset.ready", "asset", asset.id, asset.to_json(integer_created_at=True)
            )
        return asset

    def _new_asset(
        self,
        *,
        passthrough: str | None,
        upload_id: str | None,
        policies: list[str],
        size: int,
        video_quality: str,
        meta: Mapping[str, Any] | None,
        test: bool,
        outcome: str,
        asset_id: str | None = None,
        created_at: int | None = None,
        status: str | None = None,
    ) -> Asset:
        self._seq += 1
        now = time.time()
        asset = Asset(
            id=asset_id or random_id(44),
            seq=self._seq,
            created_at=int(now) if created_at is None else created_at,
            status=status or "preparing",
            playback_ids=[{"id": random_id(44), "policy": p} for p in policies],
            passthrough=passthrough,
            upload_id=upload_id,
            size=size,
            video_quality=video_quality,
            meta=dict(meta) if meta else None,
            test=test,
            ready_at=now + self.ready_after,
            outcome=outcome,
            pinned=status is not None,
        )
        if asset.id in self._assets:
            raise ValueError(f"asset {asset.id} already exists")
        self._assets[asset.id] = asset
        self._by_seq[asset.seq] = asset.id
        self._order.append(asset.seq)
        if not asset.pinned:
            self._schedule(asset.ready_at, "asset", asset.id)
        return asset
