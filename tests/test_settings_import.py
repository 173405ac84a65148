"""Captions in import manifests: checked up front with every other field, added once each
item's asset is ready, a file Mux cannot read failing that item only."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import Platform, Result, make_video
from emulator_helpers import FileServer

from vidpipe.emulator import Emulator

VTT = b"WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nHello\n"


@pytest.fixture
def files() -> Iterator[FileServer]:
    server = FileServer({"/en.vtt": VTT, "/fr.vtt": VTT, "/bad.txt": b"not subtitles\n"})
    with server.running():
        yield server


def clips(folder: Path, n: int) -> list[Path]:
    return [make_video(folder / f"l{i}.mp4", 300 * 1024 + i, seed=i) for i in range(1, n + 1)]


def text_tracks(emulator: Emulator, asset_id: str) -> list[tuple[str, str, str]]:
    return sorted(
        (t["language_code"], t["name"], t["text_source"])
        for t in emulator.assets[asset_id]["tracks"]
        if t["type"] == "text"
    )


def test_bad_captions_are_bad_lines_and_nothing_is_created(
    env: Platform, emulator: Emulator, tmp_path: Path, vp: Callable[..., Result]
) -> None:
    clips(tmp_path, 3)
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "source,lesson,captions\n"
        "l1.mp4,1,en=subs/en.vtt\n"
        "l2.mp4,2,fr=ftp://host/fr.srt en\n"
        "l3.mp4,3,e_n=https://host/x.vtt\n"
    )
    res = vp("import", manifest)
    assert res.code == 2
    assert "line 2: captions: subtitle file 'subs/en.vtt' is a local path" in res.err
    assert "line 3: captions: subtitle file 'ftp://host/fr.srt' is not http(s)" in res.err
    assert "line 3: captions 'en' is not LANG=URL" in res.err
    assert "line 4: captions: language 'e_n' is not a BCP 47 language code" in res.err
    assert emulator.writing_calls() == 0
    assert env.lesson(1) is not None and env.lesson(1).mux_asset_id is None  # type: ignore[union-attr]


def test_captions_are_added_once_the_asset_is_ready_and_a_bad_file_fails_its_item_only(
    env: Platform,
    emulator: Emulator,
    tmp_path: Path,
    files: FileServer,
    vp: Callable[..., Result],
) -> None:
    clips(tmp_path, 3)
    manifest = tmp_path / "m.jsonl"
    lines = [
        {"source": "l1.mp4", "lesson": 1, "captions": {"en": files.url("/en.vtt")}},
        {"source": "l2.mp4", "lesson": 2, "captions": {"fr": files.url("/bad.txt")}},
        {"source": "l3.mp4", "lesson": 3},
    ]
    manifest.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    res = vp("import", manifest, "--json")
    assert res.code == 1, res.err
    items = {i["line"]: i for i in json.loads(res.out)["items"]}
    assert (items[1]["state"], items[3]["state"]) == ("done", "done")
    assert items[2]["state"] == "failed" and "not a WebVTT or SRT" in items[2]["error"]
    # The failed item's video is recorded all the same; only its captions failed.
    for lesson in (1, 2, 3):
        row = env.lesson(lesson)
        assert row is not None and row.mux_asset_id == items[lesson]["asset_id"]
    assert text_tracks(emulator, items[1]["asset_id"]) == [("en", "English", "uploaded")]
    assert text_tracks(emulator, items[3]["asset_id"]) == []
    # Again, the bad file fixed: the failed item gets its captions, nothing is asked twice.
    files.files["/bad.txt"] = VTT
    again = vp("import", manifest, "--json")
    assert again.code == 1  # the errored track keeps its name: removing it is for a human
    tracks_posted = sum(
        1 for m, p, s in emulator.request_log if m == "POST" and p.endswith("/tracks")
    )
    assert tracks_posted == 2
