"""Asset settings: what every new Mux asset is created with, and which playback policy each
kind of row is held to.

`AssetSettings` is the one resolved value: the `VIDPIPE_*` settings (`vidpipe.config`), then
per-upload overrides (`AssetSettings.override`), each checked against what Mux accepts. The
upload pipeline hands it to the gateway, which turns it into `new_asset_settings` (or the
body of a create-asset request for a URL: `MuxGateway.asset_request`). `Policies` says which
playback policy lesson rows and course previews are held to by `verify`.

Every check raises `InvalidAssetSetting` naming the setting (by its field name) and the
allowed values; the CLI and `vidpipe.config` word it with their own option or variable name.
This module imports nothing of vidpipe's but its errors, so every layer can use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from vidpipe.errors import UsageError

PUBLIC = "public"
SIGNED = "signed"
PLAYBACK_POLICIES = (PUBLIC, SIGNED)
"""The policies vidpipe creates and holds rows to (`drm` needs a DRM configuration)."""
VIDEO_QUALITIES = ("basic", "plus", "premium")
MAX_RESOLUTIONS = ("1080p", "1440p", "2160p")
STATIC_RENDITIONS = (
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
CAPTION_LANGUAGES: Mapping[str, str] = {
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
"""The languages Mux generates captions for (mux-python 5.1's `AssetGeneratedSubtitleSettings`
allowed values), with the name given to each generated track."""
NONE = "none"
"""The list value that clears a list setting (captions, static renditions) for one upload."""

TITLE_MAX = 512
EXTERNAL_ID_MAX = 128

ALLOWED: Mapping[str, tuple[str, ...]] = {
    "playback_policy": PLAYBACK_POLICIES,
    "video_quality": VIDEO_QUALITIES,
    "max_resolution": MAX_RESOLUTIONS,
    "captions": tuple(CAPTION_LANGUAGES),
    "static_renditions": STATIC_RENDITIONS,
}
"""The values each checked setting accepts, by field name."""


class InvalidAssetSetting(UsageError):
    """A value Mux would refuse for an asset setting. `setting` is the field name (e.g.
    `video_quality`), `value` the offending item, `allowed` what would do."""

    def __init__(self, setting: str, value: str, allowed: Iterable[str], reason: str = "") -> None:
        self.setting = setting
        self.value = value
        self.allowed = tuple(allowed)
        self.reason = reason or f"{value!r} is not one of {', '.join(self.allowed)}"
        super().__init__(f"{setting.replace('_', ' ')}: {self.reason}")


def check_choice(setting: str, value: str) -> str:
    """`value` (trimmed, lower-cased) if it is one `setting` allows, else InvalidAssetSetting."""
    allowed = ALLOWED[setting]
    normal = value.strip().lower()
    if normal not in allowed:
        raise InvalidAssetSetting(setting, value.strip(), allowed)
    return normal


def parse_list(setting: str, value: str | Iterable[str] | None) -> tuple[str, ...]:
    """A comma-separated text (or a list of such texts) as checked, de-duplicated items.

    Empty text is no items, and so is `none` (alone)."""
    if value is None:
        return ()
    texts = [value] if isinstance(value, str) else list(value)
    items: list[str] = []
    for text in texts:
        for part in str(text).split(","):
            part = part.strip()
            if not part:
                continue
            if part.lower() == NONE:
                if len(texts) > 1 or "," in str(text):
                    raise InvalidAssetSetting(
                        setting, part, ALLOWED[setting], "none cannot be combined with others"
                    )
                return ()
            item = check_choice(setting, part)
            if item not in items:
                items.append(item)
    return tuple(items)


@dataclass(frozen=True)
class AssetSettings:
    """What a new asset is created with (None: Mux's default)."""

    playback_policy: str = PUBLIC
    video_quality: str | None = None
    max_resolution: str | None = None
    captions: tuple[str, ...] = ()
    static_renditions: tuple[str, ...] = ()
    normalize_audio: bool = False
    test: bool = False

    def __post_init__(self) -> None:
        check_choice("playback_policy", self.playback_policy)
        for name in ("video_quality", "max_resolution"):
            value = getattr(self, name)
            if value is not None:
                check_choice(name, value)
        parse_list("captions", self.captions)
        parse_list("static_renditions", self.static_renditions)

    def override(
        self,
        *,
        playback_policy: str | None = None,
        video_quality: str | None = None,
        max_resolution: str | None = None,
        captions: str | Iterable[str] | None = None,
        static_renditions: str | Iterable[str] | None = None,
        normalize_audio: bool | None = None,
        test: bool | None = None,
    ) -> AssetSettings:
        """These settings with each given (not None) value in place of its own, checked.

        `captions` and `static_renditions` take a list or comma-separated text; `"none"` (or
        an empty list) clears them."""
        changes: dict[str, Any] = {}
        if playback_policy is not None:
            changes["playback_policy"] = check_choice("playback_policy", playback_policy)
        if video_quality is not None:
            changes["video_quality"] = check_choice("video_quality", video_quality)
        if max_resolution is not None:
            changes["max_resolution"] = check_choice("max_resolution", max_resolution)
        if captions is not None:
            changes["captions"] = parse_list("captions", captions)
        if static_renditions is not None:
            changes["static_renditions"] = parse_list("static_renditions", static_renditions)
        if normalize_audio is not None:
            changes["normalize_audio"] = bool(normalize_audio)
        if test is not None:
            changes["test"] = bool(test)
        return replace(self, **changes)

    def as_json(self) -> dict[str, Any]:
        return {
            "playback_policy": self.playback_policy,
            "video_quality": self.video_quality,
            "max_resolution": self.max_resolution,
            "captions": list(self.captions),
            "static_renditions": list(self.static_renditions),
            "normalize_audio": self.normalize_audio,
            "test": self.test,
        }


def caption_name(code: str) -> str:
    """The name of the caption track Mux generates for language `code`."""
    return f"{CAPTION_LANGUAGES[code]} (generated)"


def asset_meta(title: str | None, external_id: str) -> dict[str, str]:
    """`meta` for a new asset: the row's title cut to Mux's 512 characters (left out when the
    row has none) and the external ID (`lesson:42`)."""
    meta: dict[str, str] = {}
    if title and title.strip():
        meta["title"] = title.strip()[:TITLE_MAX]
    meta["external_id"] = external_id[:EXTERNAL_ID_MAX]
    return meta


@dataclass(frozen=True)
class Policies:
    """The playback policy each kind of row is held to: lessons (paid content) and course
    previews (table `world`), by the kind's value (`"lesson"`, `"course"`)."""

    lesson: str = PUBLIC
    course: str = PUBLIC
    by_kind: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_choice("playback_policy", self.lesson)
        check_choice("playback_policy", self.course)
        object.__setattr__(self, "by_kind", {"lesson": self.lesson, "course": self.course})

    def of(self, kind: str) -> str:
        """The policy of rows of `kind` (a `Kind`, or its value)."""
        return self.by_kind[str(kind)]
