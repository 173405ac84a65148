"""Subtitle files: `vidpipe captions add | list | remove` against the emulator, which fetches
the files from a real loopback HTTP server the test runs; bad input changes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Platform, Result
from emulator_helpers import FileServer

from vidpipe.emulator import Emulator

VTT = b"WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nHello\n"
SRT = b"1\n00:00:00,000 --> 00:00:02,000\nBonjour\n"
SUBTITLE_FILES = {"/en.vtt": VTT, "/fr.srt": SRT, "/notes.txt": b"just some notes, not subtitles\n"}


@pytest.fixture
def files() -> Iterator[str]:
    """A loopback HTTP server for the subtitle files; its base URL."""
    server = FileServer(SUBTITLE_FILES)
    with server.running():
        yield server.base_url


@pytest.fixture
def recorded(env: Platform, emulator: Emulator) -> str:
    """Lesson 1 records a ready asset (with Mux-generated English captions); its ID."""
    asset = emulator.seed_asset(passthrough='{"lesson_id": 1}', generated_subtitles=["en"])
    env.set_lesson(1, asset["id"], asset["playback_ids"][0]["id"])
    return str(asset["id"])


def text_tracks(emulator: Emulator, asset_id: str) -> list[dict[str, Any]]:
    return [t for t in emulator.assets[asset_id]["tracks"] if t["type"] == "text"]


def test_add_waits_until_the_track_is_ready_and_list_shows_it(
    recorded: str, files: str, emulator: Emulator, vp: Callable[..., Result]
) -> None:
    res = vp("captions", "add", "--lesson", "1", f"{files}/fr.srt", "--language", "fr", "--json")
    assert res.code == 0, res.err
    (track,) = json.loads(res.out)["tracks"]
    assert (track["language"], track["name"], track["status"]) == ("fr", "French", "ready")
    assert track["source"] == "uploaded"
    listed = vp("captions", "list", "--lesson", "1", "--json")
    assert listed.code == 0, listed.err
    doc = json.loads(listed.out)
    assert doc["asset_id"] == recorded and doc["target"] == {"kind": "lesson", "id": 1}
    shown = {(t["language"], t["source"], t["status"]) for t in doc["tracks"]}
    assert shown == {("en", "generated", "preparing"), ("fr", "uploaded", "ready")}


def test_a_file_that_is_not_subtitles_errors_the_track_and_exits_1(
    recorded: str, files: str, vp: Callable[..., Result]
) -> None:
    res = vp("captions", "add", "--lesson", "1", f"{files}/notes.txt", "--language", "de")
    assert res.code == 1
    assert "not a WebVTT or SRT" in res.err


def test_remove_by_language_deletes_those_tracks_only(
    recorded: str, files: str, emulator: Emulator, vp: Callable[..., Result]
) -> None:
    assert vp("captions", "add", "--lesson", "1", f"{files}/en.vtt", "--language", "en",
              "--name", "English (edited)").code == 0  # fmt: skip
    assert vp("captions", "add", "--lesson", "1", f"{files}/fr.srt", "--language", "fr").code == 0
    refused = vp("captions", "remove", "--lesson", "1", "--language", "en")
    assert refused.code == 2 and "--yes" in refused.err
    assert len(text_tracks(emulator, recorded)) == 3
    res = vp("captions", "remove", "--lesson", "1", "--language", "en", "--yes", "--json")
    assert res.code == 0, res.err
    assert len(json.loads(res.out)["removed"]) == 2
    assert [t["language_code"] for t in text_tracks(emulator, recorded)] == ["fr"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        pytest.param(["--lesson", "1", "subs/en.vtt"], "local path", id="a local path"),
        pytest.param(["--lesson", "1", "ftp://host/en.vtt"], "http(s)", id="an ftp URL"),
        pytest.param(["--lesson", "99", "URL/en.vtt"], "lesson 99", id="no row"),
        pytest.param(["--lesson", "2", "URL/en.vtt"], "no video", id="a row with no video"),
        pytest.param(
            ["--lesson", "1", "URL/en.vtt", "--name", "English (generated)"],
            "English (generated)",
            id="a name already taken",
        ),
        pytest.param(["--lesson", "1", "URL/en.vtt", "--language", "e n"], "BCP 47", id="lang"),
    ],
)
def test_bad_input_to_captions_add_exits_2_with_nothing_created(
    recorded: str,
    files: str,
    emulator: Emulator,
    vp: Callable[..., Result],
    args: list[str],
    says: str,
) -> None:
    args = [a.replace("URL", files) for a in args]
    if "--language" not in args:
        args += ["--language", "en"]
    res = vp("captions", "add", *args)
    assert res.code == 2, res.err
    assert says in res.err
    assert res.out == ""
    assert emulator.writing_calls() == 0
    assert len(text_tracks(emulator, recorded)) == 1


def test_the_library_adds_lists_and_removes(
    recorded: str, files: str, env: Platform, tmp_path: Path
) -> None:
    from vidpipe import Vidpipe

    with Vidpipe.from_env() as vp:
        added = vp.captions_add(f"{files}/fr.srt", language="fr", lesson=1)
        assert added.as_json()["tracks"][0]["status"] == "ready"
        assert {t.language_code for t in vp.captions_list(lesson=1).tracks} == {"en", "fr"}
        gone = vp.captions_remove(lesson=1, track=added.tracks[0].id)
        assert gone.removed == [added.tracks[0].id]
        assert {t.language_code for t in vp.captions_list(lesson=1).tracks} == {"en"}
