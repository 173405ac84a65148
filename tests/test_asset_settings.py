"""Asset settings end to end: the VIDPIPE_* settings and the upload options, as they reach the
emulator (the created upload's `new_asset_settings`, then the asset) through the real CLI and
mux-python, and what is recorded, on SQLite and PostgreSQL; bad values stop everything."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Platform, Result
from sqlmodel import Session, select

from vidpipe import UsageError, Vidpipe
from vidpipe.db import Lesson, UploadJournal
from vidpipe.emulator import Emulator

CLI = Callable[..., Result]
EVERY_SETTING = {
    "VIDPIPE_PLAYBACK_POLICY": "signed",
    "VIDPIPE_VIDEO_QUALITY": "premium",
    "VIDPIPE_MAX_RESOLUTION": "2160p",
    "VIDPIPE_CAPTIONS": "en,fr",
    "VIDPIPE_STATIC_RENDITIONS": "highest,audio-only",
    "VIDPIPE_NORMALIZE_AUDIO": "true",
}


def only(mapping: dict[str, dict[str, Any]]) -> dict[str, Any]:
    assert len(mapping) == 1, mapping
    return next(iter(mapping.values()))


def upload(cli: CLI, video: Callable[..., Path], *args: str) -> dict[str, Any]:
    result = cli("upload", str(video()), *args, "--json")
    assert result.code == 0, result.err
    return dict(json.loads(result.out))


def set_env(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def journal_count(platform: Platform) -> int:
    with Session(platform.engine) as s:
        return len(list(s.exec(select(UploadJournal))))


def test_an_upload_sends_every_configured_setting_and_records_the_signed_playback_id(
    env: Platform,
    emulator: Emulator,
    cli: CLI,
    video: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_env(monkeypatch, EVERY_SETTING)

    out = upload(cli, video, "--lesson", "1")

    sent = only(emulator.uploads)["new_asset_settings"]
    assert sent["playback_policies"] == ["signed"]
    assert sent["passthrough"] == '{"lesson_id": 1}'
    assert sent["video_quality"] == "premium"
    assert sent["max_resolution_tier"] == "2160p"
    assert sent["normalize_audio"] is True
    assert sent["static_renditions"] == [{"resolution": "highest"}, {"resolution": "audio-only"}]
    assert sent["inputs"] == [
        {
            "generated_subtitles": [
                {"language_code": "en", "name": "English (generated)"},
                {"language_code": "fr", "name": "French (generated)"},
            ]
        }
    ]
    assert sent["meta"] == {"title": "Lesson 1", "external_id": "lesson:1"}
    assert "test" not in sent and not only(emulator.uploads).get("test")

    asset = emulator.assets[out["asset_id"]]
    assert [p["policy"] for p in asset["playback_ids"]] == ["signed"]
    assert not asset.get("test")
    assert (asset["video_quality"], asset["max_resolution_tier"]) == ("premium", "2160p")
    assert asset["normalize_audio"] is True
    captions = [t["language_code"] for t in asset["tracks"] if t["type"] == "text"]
    assert captions == ["en", "fr"]
    files = asset["static_renditions"]["files"]
    assert [f["resolution"] for f in files] == ["highest", "audio-only"]

    row = env.lesson(1)
    assert row is not None
    assert (row.mux_asset_id, row.mux_playback_id) == (out["asset_id"], out["playback_id"])
    assert row.mux_playback_id == asset["playback_ids"][0]["id"]


def test_each_option_overrides_its_setting_for_one_upload(
    env: Platform,
    emulator: Emulator,
    cli: CLI,
    video: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_env(monkeypatch, EVERY_SETTING)

    out = upload(
        cli,
        video,
        "--lesson",
        "2",
        "--playback-policy",
        "public",
        "--video-quality",
        "basic",
        "--max-resolution",
        "1080p",
        "--captions",
        "none",
        "--static-rendition",
        "720p",
        "--static-rendition",
        "audio-only",
        "--no-normalize-audio",
        "--test",
    )

    created = only(emulator.uploads)
    sent = created["new_asset_settings"]
    assert sent["playback_policies"] == ["public"]
    assert sent["video_quality"] == "basic"
    assert sent["max_resolution_tier"] == "1080p"
    assert "inputs" not in sent
    assert "normalize_audio" not in sent
    assert sent["static_renditions"] == [{"resolution": "720p"}, {"resolution": "audio-only"}]
    assert created.get("test") is True
    asset = emulator.assets[out["asset_id"]]
    assert asset.get("test") is True
    assert asset["normalize_audio"] is False
    assert not [t for t in asset["tracks"] if t["type"] == "text"]
    row = env.lesson(2)
    assert row is not None and row.mux_playback_id == asset["playback_ids"][0]["id"]
    assert asset["playback_ids"][0]["policy"] == "public"


def test_without_settings_an_upload_is_public_with_muxs_defaults(
    env: Platform, emulator: Emulator, cli: CLI, video: Callable[..., Path]
) -> None:
    out = upload(cli, video, "--lesson", "1")

    sent = only(emulator.uploads)["new_asset_settings"]
    sent.pop("copy_overlays", None)  # mux-python's own default
    assert sent == {
        "playback_policies": ["public"],
        "passthrough": '{"lesson_id": 1}',
        "meta": {"title": "Lesson 1", "external_id": "lesson:1"},
    }
    asset = emulator.assets[out["asset_id"]]
    assert (asset["video_quality"], asset["max_resolution_tier"]) == ("plus", "1080p")
    row = env.lesson(1)
    assert row is not None and row.mux_playback_id == asset["playback_ids"][0]["id"]


def test_a_course_preview_takes_the_preview_policy_and_its_own_external_id(
    env: Platform,
    emulator: Emulator,
    cli: CLI,
    video: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VIDPIPE_PLAYBACK_POLICY", "signed")
    monkeypatch.setenv("VIDPIPE_PREVIEW_PLAYBACK_POLICY", "public")

    out = upload(cli, video, "--course", "2")

    sent = only(emulator.uploads)["new_asset_settings"]
    assert sent["playback_policies"] == ["public"]
    assert sent["meta"] == {"title": "Course 2", "external_id": "course:2"}
    world = env.world(2)
    assert world is not None
    assert world.mux_preview_playback_id == out["playback_id"]
    assert emulator.assets[out["asset_id"]]["playback_ids"][0]["policy"] == "public"


def test_a_long_title_is_cut_to_512_characters_and_a_missing_one_left_out(
    env: Platform, emulator: Emulator, cli: CLI, video: Callable[..., Path]
) -> None:
    with Session(env.engine) as s:
        s.add(Lesson(id=7, title="é" * 600))
        s.add(Lesson(id=8, title=None))
        s.commit()

    first = upload(cli, video, "--lesson", "7")
    second = upload(cli, video, "--lesson", "8")

    assert emulator.assets[first["asset_id"]]["meta"] == {
        "title": "é" * 512,
        "external_id": "lesson:7",
    }
    assert emulator.assets[second["asset_id"]]["meta"] == {"external_id": "lesson:8"}


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [
        ("VIDPIPE_PLAYBACK_POLICY", "private", "public, signed"),
        ("VIDPIPE_PREVIEW_PLAYBACK_POLICY", "drm", "public, signed"),
        ("VIDPIPE_VIDEO_QUALITY", "ultra", "basic, plus, premium"),
        ("VIDPIPE_MAX_RESOLUTION", "4k", "1080p, 1440p, 2160p"),
        ("VIDPIPE_CAPTIONS", "en,xx", "en, es, it"),
        ("VIDPIPE_STATIC_RENDITIONS", "highest,8k", "highest, audio-only, 2160p"),
        ("VIDPIPE_NORMALIZE_AUDIO", "maybe", "true or false"),
    ],
)
def test_a_bad_setting_exits_2_naming_it_and_the_allowed_values_with_nothing_created(
    env: Platform,
    emulator: Emulator,
    cli: CLI,
    video: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    value: str,
    allowed: str,
) -> None:
    monkeypatch.setenv(name, value)

    result = cli("upload", str(video()), "--lesson", "1", "--json")

    assert result.code == 2
    assert name in result.err and allowed in result.err
    assert result.out == ""
    assert emulator.writing_calls() == 0 and not emulator.uploads
    assert journal_count(env) == 0


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (["--playback-policy", "private"], "--playback-policy: 'private' is not one of public"),
        (["--video-quality", "ultra"], "--video-quality: 'ultra' is not one of basic, plus"),
        (["--max-resolution", "720p"], "--max-resolution: '720p' is not one of 1080p, 1440p"),
        (["--captions", "en,klingon"], "--captions: 'klingon' is not one of en, es"),
        (["--captions", "en,none"], "--captions: none cannot be combined"),
        (["--static-rendition", "highest", "--static-rendition", "8k"], "--static-rendition: '8k'"),
    ],
)
def test_a_bad_option_exits_2_naming_it_and_the_allowed_values_with_nothing_created(
    env: Platform,
    emulator: Emulator,
    cli: CLI,
    video: Callable[..., Path],
    args: list[str],
    shown: str,
) -> None:
    result = cli("upload", str(video()), "--lesson", "1", *args, "--json")

    assert result.code == 2
    assert shown in result.err
    assert result.out == ""
    assert emulator.writing_calls() == 0 and not emulator.uploads
    assert journal_count(env) == 0


def test_the_library_checks_overrides_without_naming_options(
    env: Platform, emulator: Emulator, video: Callable[..., Path]
) -> None:
    with Vidpipe.from_env() as vp:
        with pytest.raises(UsageError) as info:
            vp.upload(video(), lesson=1, video_quality="ultra")
        settings = vp.asset_settings("course", captions=["en", "de"], test=True)
    assert str(info.value) == "video quality: 'ultra' is not one of basic, plus, premium"
    assert "--" not in str(info.value)
    assert emulator.writing_calls() == 0
    assert settings.captions == ("en", "de") and settings.test
    assert settings.playback_policy == "public"
