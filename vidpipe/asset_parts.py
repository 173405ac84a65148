"""What an asset carries besides its playback IDs: tracks, static renditions, the legacy
`mp4_support`, and `meta`, parsed from the asset's JSON as the list pages and GETs give it.

The gateway (`vidpipe.mux.Asset.from_json`) fills these in from the same answers it already
reads, so knowing an asset's captions and renditions costs no call of its own. Parsing is
lenient: a field missing or of an unexpected shape is simply absent, never an error (Mux adds
fields and values). Beside them, the checks of a subtitle track's inputs (its URL and
language), made before anything is asked of Mux.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from vidpipe.assets import CAPTION_LANGUAGES
from vidpipe.errors import UsageError

# BCP 47, as far as a check before asking Mux can tell: a 2-3 letter language, then subtags.
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
# States in which a text track or a static rendition counts as there (or on its way).
PRESENT_STATES = ("preparing", "ready")


@dataclass(frozen=True)
class Track:
    """One of an asset's tracks (`type` video, audio or text)."""

    id: str
    type: str
    primary: bool = False
    language_code: str | None = None
    name: str | None = None
    text_source: str | None = None
    status: str | None = None
    closed_captions: bool = False
    error: str | None = None
    """Mux's reason, for an errored track."""

    @property
    def source(self) -> str:
        """`generated` for Mux's own captions, otherwise Mux's `text_source` (`uploaded`...)."""
        src = self.text_source or "unknown"
        return "generated" if src.startswith("generated") else src

    @property
    def counts(self) -> bool:
        """A text track that is there or on its way (an errored one does not count)."""
        return self.type == "text" and (self.status or "ready") in PRESENT_STATES

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "language": self.language_code,
            "name": self.name,
            "source": self.source,
            "status": self.status,
            "closed_captions": self.closed_captions,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Track:
        lang = data.get("language_code")
        name = data.get("name")
        source = data.get("text_source")
        status = data.get("status")
        return cls(
            id=str(data.get("id") or ""),
            type=str(data.get("type") or ""),
            primary=data.get("primary") is True,
            language_code=str(lang) if lang else None,
            name=str(name) if name is not None else None,
            text_source=str(source) if source else None,
            status=str(status) if status else None,
            closed_captions=data.get("closed_captions") is True,
            error=_error(data),
        )


@dataclass(frozen=True)
class StaticRendition:
    """One file of an asset's `static_renditions`."""

    id: str
    resolution: str | None
    status: str
    name: str | None = None

    @property
    def counts(self) -> bool:
        """There or on its way (`errored` and `skipped` do not count)."""
        return self.status in PRESENT_STATES

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "resolution": self.resolution, "status": self.status}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StaticRendition:
        res = data.get("resolution")
        name = data.get("name")
        return cls(
            id=str(data.get("id") or ""),
            resolution=str(res) if res else None,
            status=str(data.get("status") or "unknown"),
            name=str(name) if name is not None else None,
        )


def check_subtitle_url(url: str) -> str:
    """`url` if Mux could fetch it (`http(s)://` with a host), else a UsageError."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        what = "a local path" if not parts.scheme or len(parts.scheme) == 1 else "not http(s)"
        raise UsageError(
            f"subtitle file {url!r} is {what}: Mux fetches subtitle files itself, so give an "
            "http(s):// URL it can reach"
        )
    return url.strip()


def check_language(code: str) -> str:
    """A BCP 47 language code (e.g. `en`, `pt-BR`), else a UsageError."""
    if not _LANGUAGE.match(code.strip()):
        raise UsageError(f"language {code!r} is not a BCP 47 language code (e.g. en, pt-BR)")
    return code.strip()


def default_name(language: str) -> str:
    """The track name when none is given: the language's English name, else its code."""
    return CAPTION_LANGUAGES.get(language.lower(), language)


def parse_tracks(data: Mapping[str, Any]) -> tuple[Track, ...]:
    return tuple(Track.from_json(t) for t in _dicts(data.get("tracks")))


def parse_renditions(data: Mapping[str, Any]) -> tuple[StaticRendition, ...]:
    block = data.get("static_renditions")
    files = block.get("files") if isinstance(block, dict) else None
    return tuple(StaticRendition.from_json(f) for f in _dicts(files))


def parse_meta(data: Mapping[str, Any]) -> dict[str, str]:
    meta = data.get("meta")
    if not isinstance(meta, dict):
        return {}
    return {str(k): str(v) for k, v in meta.items() if isinstance(v, str)}


def parse_mp4_support(data: Mapping[str, Any]) -> str | None:
    """The legacy `mp4_support` when it gives MP4 files (None for `none` or absent)."""
    value = data.get("mp4_support")
    if not isinstance(value, str) or value in ("", "none"):
        return None
    return value


def _error(data: Mapping[str, Any]) -> str | None:
    """Mux's words from a part's `errors` ({type, messages}) or `error`, on one line."""
    err = data.get("errors") or data.get("error")
    if isinstance(err, dict):
        msgs = err.get("messages")
        if isinstance(msgs, list) and msgs:
            return " ".join(" ".join(str(m) for m in msgs).split())[:300]
        kind = err.get("type") or err.get("message")
        return str(kind) if kind else None
    return None


def _dicts(value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, dict)]


@dataclass(frozen=True)
class Master:
    """An asset's master (its original, for download): `access` is `temporary` or `none`;
    `status` is `preparing`, `ready` or `errored` (None while access is `none`); `url`, once
    ready, is a bearer link: never shown, logged or stored."""

    asset_id: str
    access: str
    status: str | None
    url: str | None = field(default=None, repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Master:
        master = data.get("master") if isinstance(data.get("master"), dict) else {}
        url = master.get("url") if isinstance(master, dict) else None
        status = master.get("status") if isinstance(master, dict) else None
        return cls(
            asset_id=str(data["id"]),
            access=str(data.get("master_access") or "none"),
            status=str(status) if status else None,
            url=url if isinstance(url, str) and url else None,
        )
