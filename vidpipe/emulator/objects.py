"""Mux's objects as the emulator holds them (uploads, assets, text tracks) and their JSON.

Also `ApiError`, the one way anything in the emulator answers with Mux's error shape.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from vidpipe.emulator.gcs import ResumableSession
from vidpipe.emulator.settings import (
    AssetSettings,
    Subtitle,
    static_rendition_file,
    subtitle_track,
)

TEST_ASSET_MAX_DURATION = 10.0
NOT_FOUND = "The requested resource does not exist"
INVALID_INPUT = {"type": "invalid_input", "messages": ["The input file could not be processed"]}
_ENCODING_TIER = {"basic": "baseline", "plus": "smart", "premium": "premium"}


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


@dataclass(frozen=True)
class UploadBody:
    """A create-upload body as Mux accepted it."""

    timeout: int
    cors_origin: str | None
    test: bool
    new_asset_settings: dict[str, Any]
    """As sent (shown back in the upload's JSON)."""
    asset_settings: AssetSettings
    """Parsed: what the asset will be made with."""


@dataclass
class Upload:
    """A direct upload and the GCS session behind its URL."""

    id: str
    body: UploadBody
    url: str
    created_at: float
    session: ResumableSession
    status: str = "waiting"
    asset_id: str | None = None
    error: dict[str, str] | None = None

    @property
    def expires_at(self) -> float:
        return self.created_at + self.body.timeout

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "timeout": self.body.timeout,
            "status": self.status,
            "new_asset_settings": self.body.new_asset_settings,
        }
        if self.body.cors_origin is not None:
            out["cors_origin"] = self.body.cors_origin
        if self.status == "waiting":
            out["url"] = self.url
        if self.asset_id is not None:
            out["asset_id"] = self.asset_id
        if self.error is not None:
            out["error"] = self.error
        if self.body.test:
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
    parts: Any = None
    """Tracks and static renditions added after creation (`tracks.Parts`), if any."""
    media_track_ids: tuple[str, str] = ("", "")

    @classmethod
    def new(
        cls,
        settings: AssetSettings,
        *,
        seq: int,
        ready_after: float,
        upload_id: str | None,
        size: int,
        outcome: str | None,
        asset_id: str | None = None,
        created_at: int | None = None,
        status: str | None = None,
    ) -> Asset:
        """A new asset with fresh IDs, `preparing` until `ready_after` seconds from now.

        Given a `status`, the asset is pinned at it (a seeded asset).
        """
        now = time.time()
        return cls(
            id=asset_id or random_id(44),
            seq=seq,
            created_at=int(now) if created_at is None else created_at,
            status=status or "preparing",
            settings=settings,
            playback_ids=[{"id": random_id(44), "policy": p} for p in settings.policies],
            upload_id=upload_id,
            size=size,
            ready_at=now + ready_after,
            outcome=outcome,
            pinned=status is not None,
            text_tracks=[TextTrack(sub, random_id(44)) for sub in settings.subtitles],
            rendition_ids=[random_id(44) for _ in settings.static_renditions],
            media_track_ids=(random_id(44), random_id(44)),
        )

    @property
    def passthrough(self) -> str | None:
        return self.settings.passthrough

    def settle(self, now: float) -> str | None:
        """Take the outcome when it is due; the webhook event to send then, else None."""
        if self.pinned or self.status != "preparing" or self.outcome is None:
            return None
        if now < self.ready_at:
            return None
        self.status = self.outcome
        if self.outcome != "errored":
            return "video.asset.ready"
        self.errors = dict(self.failure or INVALID_INPUT)
        for track in self.text_tracks:
            track.status = "errored"
        return "video.asset.errored"

    def playback_id(self, playback_id: str) -> dict[str, str] | None:
        """The entry of `playback_ids` with this ID, if any."""
        return next((p for p in self.playback_ids if p["id"] == playback_id), None)

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
        files = [
            static_rendition_file(r, file_id, self.status)
            for r, file_id in zip(s.static_renditions, self.rendition_ids, strict=True)
        ]
        if self.parts is not None:
            files += [p.to_json() for p in self.parts.renditions]
        if files:
            out["static_renditions"] = {"files": files}
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
        if self.parts is not None:
            tracks += [p.to_json() for p in self.parts.tracks]
        return tracks
