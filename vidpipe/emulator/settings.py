"""Asset settings as Mux takes them: validation of a create-asset body (or an upload's
`new_asset_settings`) and the shapes an asset then shows (tracks, static renditions).

`parse_asset_settings` collects every problem into one list, so a 400 names them all, as
Mux's `invalid_parameters` answers do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

PLAYBACK_POLICIES = ("public", "signed", "drm")
VIDEO_QUALITIES = ("basic", "plus", "premium")
ENCODING_TIERS = {"baseline": "basic", "smart": "plus", "premium": "premium"}
"""The older `encoding_tier` names and the `video_quality` each stands for."""
MAX_RESOLUTION_TIERS = ("1080p", "1440p", "2160p")
MP4_SUPPORT = ("none", "standard", "capped-1080p", "audio-only", "audio-only,capped-1080p")
META_LIMITS = {"title": 512, "creator_id": 128, "external_id": 128}
PASSTHROUGH_MAX = 255
SUBTITLE_LANGUAGES = {
    "en": "English",
    "es": "Spanish",
    "it": "Italian",
    "pt": "Portuguese",
    "de": "German",
    "fr": "French",
    "pl": "Polish",
    "ru": "Russian",
    "nl": "Dutch",
    "ca": "Catalan",
    "tr": "Turkish",
    "sv": "Swedish",
    "uk": "Ukrainian",
    "no": "Norwegian",
    "fi": "Finnish",
    "sk": "Slovak",
    "el": "Greek",
    "cs": "Czech",
    "hr": "Croatian",
    "da": "Danish",
    "ro": "Romanian",
    "bg": "Bulgarian",
}
"""The languages Mux generates captions for (mux-python 5.1's allowed values), by code."""
STATIC_RESOLUTIONS = (
    "highest",
    "audio-only",
    "2160p",
    "1440p",
    "1080p",
    "720p",
    "540p",
    "480p",
    "360p",
    "270p",
)
SOURCE_HEIGHT = 1080
"""The emulated source is 1080p: static renditions taller than this are `skipped`."""


@dataclass(frozen=True)
class Subtitle:
    """One generated-subtitles request from the first input."""

    language_code: str
    name: str
    passthrough: str | None = None


@dataclass(frozen=True)
class Rendition:
    """One requested static (MP4) rendition."""

    resolution: str
    passthrough: str | None = None

    @property
    def name(self) -> str:
        if self.resolution == "audio-only":
            return "audio.m4a"
        return f"{self.resolution}.mp4"

    @property
    def ext(self) -> str:
        return "m4a" if self.resolution == "audio-only" else "mp4"

    @property
    def above_source(self) -> bool:
        height = self.resolution.removesuffix("p")
        return height.isdigit() and int(height) > SOURCE_HEIGHT


@dataclass(frozen=True)
class AssetSettings:
    """What an asset is created with, validated and normalised."""

    policies: tuple[str, ...] = ()
    passthrough: str | None = None
    video_quality: str = "plus"
    max_resolution_tier: str = "1080p"
    normalize_audio: bool = False
    test: bool = False
    meta: Mapping[str, str] = field(default_factory=dict)
    subtitles: tuple[Subtitle, ...] = ()
    static_renditions: tuple[Rendition, ...] = ()
    mp4_support: str = "none"
    input_url: str | None = None


def parse_asset_settings(
    raw: Mapping[str, Any], problems: list[str], *, direct_upload: bool
) -> AssetSettings:
    """Validate `raw` (a create-asset body or `new_asset_settings`), appending problems.

    For a direct upload the first input carries no `url`; otherwise `inputs[0].url` (or the
    deprecated `input`) must be an http(s) URL.
    """
    url, subtitles = _inputs(raw, problems, direct_upload=direct_upload)
    quality = _video_quality(raw, problems)
    tier = raw.get("max_resolution_tier", "1080p")
    if tier not in MAX_RESOLUTION_TIERS:
        problems.append(f"max_resolution_tier must be one of {', '.join(MAX_RESOLUTION_TIERS)}")
    mp4_support = raw.get("mp4_support", "none")
    if mp4_support not in MP4_SUPPORT:
        problems.append(f"mp4_support must be one of {', '.join(MP4_SUPPORT)}")
    renditions = _static_renditions(raw.get("static_renditions"), problems)
    if renditions and raw.get("mp4_support") not in (None, "none"):
        problems.append("static_renditions cannot be combined with mp4_support")
    return AssetSettings(
        policies=_policies(raw, problems),
        passthrough=_passthrough(raw.get("passthrough"), "passthrough", problems),
        video_quality=quality,
        max_resolution_tier=tier if tier in MAX_RESOLUTION_TIERS else "1080p",
        normalize_audio=_boolean(raw, "normalize_audio", problems),
        test=_boolean(raw, "test", problems),
        meta=parse_meta(raw.get("meta"), problems),
        subtitles=subtitles,
        static_renditions=renditions,
        mp4_support=mp4_support if mp4_support in MP4_SUPPORT else "none",
        input_url=url,
    )


def subtitle_track(subtitle: Subtitle, track_id: str, status: str) -> dict[str, Any]:
    """A generated subtitle track as the asset shows it."""
    track: dict[str, Any] = {
        "type": "text",
        "id": track_id,
        "text_type": "subtitles",
        "text_source": "generated_vod",
        "language_code": subtitle.language_code,
        "name": subtitle.name,
        "closed_captions": False,
        "status": status,
    }
    if subtitle.passthrough is not None:
        track["passthrough"] = subtitle.passthrough
    return track


def static_rendition_file(rendition: Rendition, file_id: str, asset_status: str) -> dict[str, Any]:
    """A static rendition as the asset shows it, following the asset's status."""
    if asset_status == "ready":
        status = "skipped" if rendition.above_source else "ready"
    else:
        status = "errored" if asset_status == "errored" else "preparing"
    out: dict[str, Any] = {
        "id": file_id,
        "type": "standard",
        "status": status,
        "resolution": rendition.resolution,
        "name": rendition.name,
        "ext": rendition.ext,
    }
    if rendition.passthrough is not None:
        out["passthrough"] = rendition.passthrough
    return out


# ----- one setting each -----------------------------------------------------------------


def _policies(raw: Mapping[str, Any], problems: list[str]) -> tuple[str, ...]:
    policies: list[str] = []
    for key in ("playback_policies", "playback_policy"):
        value = raw.get(key)
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
    return tuple(policies)


def _passthrough(value: Any, name: str, problems: list[str]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        problems.append(f"{name} must be a string")
        return None
    if len(value) > PASSTHROUGH_MAX:
        problems.append(f"{name} must be at most {PASSTHROUGH_MAX} characters")
        return None
    return value


def _video_quality(raw: Mapping[str, Any], problems: list[str]) -> str:
    quality = raw.get("video_quality")
    tier = raw.get("encoding_tier")
    if tier is not None and tier not in ENCODING_TIERS:
        problems.append(f"encoding_tier must be one of {', '.join(ENCODING_TIERS)}")
        tier = None
    if quality is None:
        return ENCODING_TIERS[tier] if tier is not None else "plus"
    if quality not in VIDEO_QUALITIES:
        problems.append(f"video_quality must be one of {', '.join(VIDEO_QUALITIES)}")
        return "plus"
    return str(quality)


def _boolean(raw: Mapping[str, Any], key: str, problems: list[str]) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        problems.append(f"{key} must be a boolean")
        return False
    return value


def parse_meta(value: Any, problems: list[str]) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append("meta must be an object")
        return {}
    out: dict[str, str] = {}
    for key, item in value.items():
        limit = META_LIMITS.get(key)
        if limit is None:
            problems.append(f"meta.{key} is not one of {', '.join(META_LIMITS)}")
        elif not isinstance(item, str) or len(item) > limit:
            problems.append(f"meta.{key} must be a string of at most {limit} characters")
        else:
            out[key] = item
    return out


def _inputs(
    raw: Mapping[str, Any], problems: list[str], *, direct_upload: bool
) -> tuple[str | None, tuple[Subtitle, ...]]:
    """(URL of the first input, generated subtitles requested on it)."""
    inputs = raw.get("inputs")
    legacy = raw.get("input")
    if inputs is None and legacy is not None:
        inputs = [{"url": legacy}] if isinstance(legacy, str) else legacy
    if inputs is None:
        if not direct_upload:
            problems.append("inputs must name the video's url")
        return None, ()
    if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
        problems.append("inputs must be a list of objects")
        return None, ()
    if not inputs:
        if not direct_upload:
            problems.append("inputs must name the video's url")
        return None, ()
    url = inputs[0].get("url")
    if direct_upload:
        if url is not None:
            problems.append("inputs[0].url is not allowed for a direct upload")
        url = None
    elif not _http_url(url):
        problems.append("inputs[0].url must be an http or https URL")
        url = None
    for index, extra in enumerate(inputs[1:], start=1):
        if not _http_url(extra.get("url")):
            problems.append(f"inputs[{index}].url must be an http or https URL")
        if "generated_subtitles" in extra:
            problems.append("generated_subtitles are only allowed on the first input")
    return url, _subtitles(inputs[0].get("generated_subtitles"), problems)


def _http_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _objects(value: Any, name: str, problems: list[str]) -> list[dict[str, Any]]:
    """A list of JSON objects (none when absent); a problem when it is something else."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        problems.append(f"{name} must be a list of objects")
        return []
    return value


def _subtitles(value: Any, problems: list[str]) -> tuple[Subtitle, ...]:
    out: list[Subtitle] = []
    for index, item in enumerate(_objects(value, "generated_subtitles", problems)):
        where = f"generated_subtitles[{index}]"
        code = item.get("language_code", "en")
        if code not in SUBTITLE_LANGUAGES:
            problems.append(f"{where}.language_code must be one of {', '.join(SUBTITLE_LANGUAGES)}")
            continue
        name = item.get("name", f"{SUBTITLE_LANGUAGES[code]} (generated)")
        if not isinstance(name, str) or not name:
            problems.append(f"{where}.name must be a non-empty string")
            continue
        passthrough = _passthrough(item.get("passthrough"), f"{where}.passthrough", problems)
        out.append(Subtitle(code, name, passthrough))
    return tuple(out)


def _static_renditions(value: Any, problems: list[str]) -> tuple[Rendition, ...]:
    out: list[Rendition] = []
    for index, item in enumerate(_objects(value, "static_renditions", problems)):
        resolution = item.get("resolution")
        if resolution not in STATIC_RESOLUTIONS:
            problems.append(
                f"static_renditions[{index}].resolution must be one of "
                f"{', '.join(STATIC_RESOLUTIONS)}"
            )
            continue
        passthrough = _passthrough(
            item.get("passthrough"), f"static_renditions[{index}].passthrough", problems
        )
        rendition = Rendition(resolution, passthrough)
        if any(r.resolution == resolution for r in out):
            problems.append(f"static_renditions names {resolution} more than once")
            continue
        out.append(rendition)
    return tuple(out)
