"""The emulator's state: direct uploads and assets, with Mux's rules and shapes.

Everything here is in memory and guarded by one re-entrant lock. Time-driven changes
(an upload timing out, an asset becoming ready) are applied lazily whenever a record is
read, and by `Store.run_clock()` so that webhooks go out on time even if nobody asks.
"""

from __future__ import annotations

import base64
import bisect
import dataclasses
import heapq
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidpipe.emulator.gcs import HEAD_BYTES, ResumableSession
from vidpipe.emulator.ingest import Fetched
from vidpipe.emulator.settings import (
    PLAYBACK_POLICIES,
    AssetSettings,
    Subtitle,
    parse_asset_settings,
    static_rendition_file,
    subtitle_track,
)

ASSET_STATUSES = frozenset({"preparing", "ready", "errored"})
TRACK_STATUSES = frozenset({"preparing", "ready", "errored"})
TIMEOUT_MIN, TIMEOUT_MAX, TIMEOUT_DEFAULT = 60, 604800, 3600
LIMIT_DEFAULT, LIMIT_MAX = 25, 100
TEST_ASSET_MAX_DURATION = 10.0

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
    asset_settings: AssetSettings
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
class TextTrack:
    """A generated subtitle track of an asset."""

    subtitle: Subtitle
    id: str
    status: str = "preparing"


@dataclass
class Asset:
    """An asset. `pinned` assets (seeded, or status set by a test) never change by themselves.

    `outcome` is what the asset becomes at `ready_at` ("ready" or "errored"); None while
    the emulator is still fetching its input URL. `failure` is the `errors` it then shows.
    """

    id: str
    seq: int
    created_at: int
    status: str
    settings: AssetSettings
    playback_ids: list[dict[str, str]]
    upload_id: str | None
    size: int
    ready_at: float
    outcome: str | None = "ready"
    pinned: bool = False
    errors: dict[str, Any] | None = None
    failure: dict[str, Any] | None = None
    forced_error: bool = False
    text_tracks: list[TextTrack] = field(default_factory=list)
    rendition_ids: list[str] = field(default_factory=list)
    media_track_ids: tuple[str, str] = ("", "")

    @property
    def passthrough(self) -> str | None:
        return self.settings.passthrough

    @property
    def duration(self) -> float:
        seconds = round(max(self.size, 1) / 250_000, 3)
        return min(seconds, TEST_ASSET_MAX_DURATION) if self.settings.test else seconds

    def to_json(self, *, integer_created_at: bool = False) -> dict[str, Any]:
        s = self.settings
        out: dict[str, Any] = {
            "id": self.id,
            "created_at": self.created_at if integer_created_at else str(self.created_at),
            "status": self.status,
            "playback_ids": [dict(p) for p in self.playback_ids],
            "mp4_support": s.mp4_support,
            "master_access": "none",
            "video_quality": s.video_quality,
            "encoding_tier": _ENCODING_TIER[s.video_quality],
            "max_resolution_tier": s.max_resolution_tier,
            "normalize_audio": s.normalize_audio,
            "ingest_type": "on_demand_direct_upload" if self.upload_id else "on_demand_url",
            "tracks": self._tracks(),
        }
        if s.static_renditions:
            out["static_renditions"] = {
                "files": [
                    static_rendition_file(r, file_id, self.status)
                    for r, file_id in zip(s.static_renditions, self.rendition_ids, strict=True)
                ]
            }
        if s.passthrough is not None:
            out["passthrough"] = s.passthrough
        if self.upload_id is not None:
            out["upload_id"] = self.upload_id
        if s.meta:
            out["meta"] = dict(s.meta)
        if s.test:
            out["test"] = True
        if self.status == "ready":
            out.update(
                duration=self.duration,
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

    def _tracks(self) -> list[dict[str, Any]]:
        tracks: list[dict[str, Any]] = []
        if self.status == "ready":
            video_id, audio_id = self.media_track_ids
            tracks.append(
                {
                    "type": "video",
                    "id": video_id,
                    "duration": self.duration,
                    "max_width": 1920,
                    "max_height": 1080,
                    "max_frame_rate": 30.0,
                }
            )
            tracks.append(
                {
                    "type": "audio",
                    "id": audio_id,
                    "duration": self.duration,
                    "max_channels": 2,
                    "primary": True,
                }
            )
        tracks += [subtitle_track(t.subtitle, t.id, t.status) for t in self.text_tracks]
        return tracks


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
    limit = _query_int(raw, "limit", low=1, high=LIMIT_MAX)
    return LIMIT_DEFAULT if limit is None else limit


def parse_page(raw: str | None) -> int | None:
    """`page` query parameter (1-based), or None when absent."""
    return _query_int(raw, "page", low=1)


def _query_int(raw: str | None, name: str, *, low: int, high: int | None = None) -> int | None:
    """An integer query parameter in low..high (None when absent), else Mux's 400."""
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "invalid_parameters", f"{name} must be an integer") from None
    if high is not None and not low <= value <= high:
        raise ApiError(400, "invalid_parameters", f"{name} must be between {low} and {high}")
    if value < low:
        raise ApiError(400, "invalid_parameters", f"{name} must be at least {low}")
    return value


def _validate_upload_body(
    body: Any,
) -> tuple[int, str | None, bool, dict[str, Any], AssetSettings]:
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
    raw = body.get("new_asset_settings") or {}
    if not isinstance(raw, dict):
        problems.append("new_asset_settings must be an object")
        raw = {}
    settings = parse_asset_settings(raw, problems, direct_upload=True)
    if problems:
        raise ApiError(400, "invalid_parameters", *problems)
    if test:
        settings = dataclasses.replace(settings, test=True)
    return timeout, cors_origin, test, raw, settings


def _validate_asset_body(body: Any) -> AssetSettings:
    """Check a create-asset (ingest from a URL) body the way Mux does."""
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_parameters", "Request body must be a JSON object")
    problems: list[str] = []
    settings = parse_asset_settings(body, problems, direct_upload=False)
    if problems:
        raise ApiError(400, "invalid_parameters", *problems)
    return settings


def _validate_policy(body: Any) -> str:
    """The `policy` of a create-playback-ID body, or ApiError(400)."""
    policy = body.get("policy") if isinstance(body, dict) else None
    if policy not in PLAYBACK_POLICIES:
        raise ApiError(400, "invalid_parameters", "policy must be one of public, signed, drm")
    return str(policy)


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
        timeout, cors_origin, test, raw, settings = _validate_upload_body(body)
        upload_id = random_id(40)
        path = self._store_dir / f"{upload_id}.bin" if self._store_dir else None
        upload = Upload(
            id=upload_id,
            timeout=timeout,
            cors_origin=cors_origin,
            new_asset_settings=raw,
            asset_settings=settings,
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
            size, _ = upload.session.digest()
            ok = looks_like_video(upload.session.head[:HEAD_BYTES]) and not self._take_failure()
            asset = self._new_asset(
                upload.asset_settings,
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
        settings = _validate_asset_body(body)
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
            playback_id = {"id": random_id(44), "policy": _validate_policy(body)}
            asset.playback_ids.append(playback_id)
            return dict(playback_id)

    def get_playback_id(self, asset_id: str, playback_id: str) -> dict[str, str]:
        """GET /video/v1/assets/{id}/playback-ids/{pid}. Raises ApiError(404)."""
        with self._lock:
            for entry in self._asset(asset_id).playback_ids:
                if entry["id"] == playback_id:
                    return dict(entry)
            raise ApiError(404, "not_found", NOT_FOUND)

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
            for asset in self._assets.values():
                for entry in asset.playback_ids:
                    if entry["id"] == playback_id:
                        return {**entry, "object": {"type": "asset", "id": asset.id}}
            raise ApiError(404, "not_found", NOT_FOUND)

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

    def _take_failure(self) -> bool:
        """Whether a `fail_next_assets` failure is due for the asset being created."""
        if self._fail_next > 0:
            self._fail_next -= 1
            return True
        return False

    def _refresh_asset(self, asset: Asset) -> Asset:
        if (
            asset.pinned
            or asset.status != "preparing"
            or asset.outcome is None
            or time.time() < asset.ready_at
        ):
            return asset
        asset.status = asset.outcome
        if asset.outcome == "errored":
            asset.errors = dict(asset.failure or INVALID_INPUT)
            for track in asset.text_tracks:
                track.status = "errored"
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
        settings: AssetSettings,
        *,
        upload_id: str | None,
        size: int,
        outcome: str | None,
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
            settings=settings,
            playback_ids=[{"id": random_id(44), "policy": p} for p in settings.policies],
            upload_id=upload_id,
            size=size,
            ready_at=now + self.ready_after,
            outcome=outcome,
            pinned=status is not None,
            text_tracks=[TextTrack(sub, random_id(44)) for sub in settings.subtitles],
            rendition_ids=[random_id(44) for _ in settings.static_renditions],
            media_track_ids=(random_id(44), random_id(44)),
        )
        if asset.id in self._assets:
            raise ValueError(f"asset {asset.id} already exists")
        self._assets[asset.id] = asset
        self._by_seq[asset.seq] = asset.id
        self._order.append(asset.seq)
        if not asset.pinned:
            self._schedule(asset.ready_at, "asset", asset.id)
        return asset
