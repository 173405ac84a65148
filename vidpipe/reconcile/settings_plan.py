"""`settings_mismatch`: which recorded assets lack what today's settings ask of them. Pure.

What counts is read from the asset as the listing (or a GET) gives it, no call of its own:

- a caption language is there when the asset has a text track of that language (generated or
  uploaded) that is `preparing` or `ready` (an `errored` one does not count);
- a static rendition is there when `static_renditions.files` has that resolution `preparing`
  or `ready` (`errored` and `skipped` do not count). An asset with the legacy `mp4_support`
  has its MP4 files in the old form: its renditions are not judged (moving it to static
  renditions would change its file names and break links stored elsewhere);
- `meta.title` must be the row's title as an upload sets it (trimmed, cut to 512 characters;
  not judged when the row has no title), `meta.external_id` must be `lesson:ID` / `course:ID`.
  An asset several rows share cannot match them all: its meta is not judged.

Settings an asset cannot change after creation (video quality, maximum resolution, normalized
audio) are not judged; the playback policy has its own kind. Only ready assets are judged: a
preparing one is still being made with today's settings, missing and errored ones are drift
of their own. The fix (`SettingsFix`) is additive: generated captions on the primary audio
track (one request for every missing language), one request per missing rendition, one
PATCH of `meta` (keeping its other fields).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vidpipe.assets import asset_meta
from vidpipe.mux import Asset
from vidpipe.records import RowVideo
from vidpipe.targets import from_passthrough

NO_AUDIO = "skipped captions: the asset has no audio track"
NOT_OURS = "the asset's passthrough is not vidpipe's: left alone"


@dataclass(frozen=True)
class Wanted:
    """What today's settings ask of every recorded asset."""

    captions: tuple[str, ...] = ()
    renditions: tuple[str, ...] = ()


@dataclass(frozen=True)
class SettingsGap:
    """What one asset lacks: missing caption languages and renditions, and each `meta`
    field that differs, as (the row's value, Mux's value)."""

    captions: tuple[str, ...] = ()
    renditions: tuple[str, ...] = ()
    meta: Mapping[str, tuple[str, str | None]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.captions or self.renditions or self.meta)

    @property
    def text(self) -> str:
        parts = []
        if self.captions:
            parts.append(f"no captions {', '.join(self.captions)}")
        if self.renditions:
            parts.append(f"no static rendition {', '.join(self.renditions)}")
        for name, (row, mux) in self.meta.items():
            parts.append(f"meta.{name} is {mux!r}, the row says {row!r}")
        return "; ".join(parts)

    def as_json(self) -> dict[str, Any]:
        return {
            "captions": list(self.captions),
            "renditions": list(self.renditions),
            "meta": {k: {"row": row, "mux": mux} for k, (row, mux) in self.meta.items()},
        }


@dataclass(frozen=True)
class SettingsFix:
    """The Mux calls that bring one asset in line (each may be empty)."""

    audio_track_id: str | None = None
    captions: tuple[str, ...] = ()
    """Languages to generate from `audio_track_id` (one request)."""
    renditions: tuple[str, ...] = ()
    """One request each."""
    meta: Mapping[str, str] | None = None
    """The whole `meta` to PATCH (None: in line)."""
    skipped: tuple[str, ...] = ()
    """What cannot be fixed, and why."""

    @property
    def calls(self) -> int:
        return bool(self.captions) + len(self.renditions) + (self.meta is not None)

    def steps(self) -> list[str]:
        """Each call, in words, in the order they are made."""
        out = []
        if self.captions:
            out.append(
                f"generate captions {', '.join(self.captions)} on audio track {self.audio_track_id}"
            )
        out += [f"add static rendition {r}" for r in self.renditions]
        if self.meta is not None:
            out.append(f"update meta ({', '.join(sorted(self.meta))})")
        return out


def settings_gap(
    row: RowVideo, asset: Asset, wanted: Wanted, *, judge_meta: bool = True
) -> SettingsGap:
    """What `asset`, recorded on `row`, lacks of `wanted` and (with `judge_meta`) of the
    row's meta."""
    have_langs = {t.language_code for t in asset.tracks if t.counts and t.language_code}
    captions = tuple(c for c in wanted.captions if c not in have_langs)
    renditions: tuple[str, ...] = ()
    if asset.mp4_support is None:
        have = {r.resolution for r in asset.static_renditions if r.counts}
        renditions = tuple(r for r in wanted.renditions if r not in have)
    meta: dict[str, tuple[str, str | None]] = {}
    for name, value in _row_meta(row).items() if judge_meta else ():
        if asset.meta.get(name) != value:
            meta[name] = (value, asset.meta.get(name))
    return SettingsGap(captions, renditions, meta)


def settings_fix(row: RowVideo, asset: Asset, gap: SettingsGap) -> SettingsFix:
    """The calls that close `gap` (nothing removed, nothing Mux already has asked again)."""
    skipped: list[str] = []
    audio = _primary_audio(asset)
    captions = gap.captions
    if captions and audio is None:
        skipped.append(NO_AUDIO)
        captions = ()
    meta = None
    if gap.meta:
        meta = {**asset.meta, **_row_meta(row)}  # other fields (creator_id) are kept
    return SettingsFix(audio, captions, gap.renditions, meta, tuple(skipped))


def is_ours(asset: Asset) -> bool:
    return from_passthrough(asset.passthrough) is not None


def _row_meta(row: RowVideo) -> dict[str, str]:
    return asset_meta(row.title, row.target.external_id)


def _primary_audio(asset: Asset) -> str | None:
    """The primary audio track's ID (the first audio track when none is marked primary)."""
    audio = [t for t in asset.tracks if t.type == "audio" and t.id]
    for t in audio:
        if t.primary:
            return t.id
    return audio[0].id if audio else None
