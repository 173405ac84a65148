"""`settings_mismatch` end to end: verify names what each asset lacks, `sync --fix-settings`
adds it (captions, static renditions, meta) against the emulator, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Platform, Result
from test_upload_cli import kill_when

from vidpipe.emulator import Emulator

VIDPIPE = Path(sys.executable).parent / "vidpipe"
CAPTIONS = "/generate-subtitles"
RENDITIONS = "/static-renditions"


def in_line_meta(lesson: int) -> dict[str, str]:
    return {"title": f"Lesson {lesson}", "external_id": f"lesson:{lesson}"}


def record(
    env: Platform, emulator: Emulator, lesson: int, *, meta: dict[str, str] | None = None, **kw: Any
) -> str:
    """Seed a ready asset for `lesson` (vidpipe's passthrough, meta in line unless given) and
    record it on the row; its ID."""
    kw.setdefault("passthrough", json.dumps({"lesson_id": lesson}))
    asset = emulator.seed_asset(meta=meta if meta is not None else in_line_meta(lesson), **kw)
    env.set_lesson(lesson, asset["id"], asset["playback_ids"][0]["id"])
    return str(asset["id"])


def posts(emulator: Emulator, suffix: str, asset_id: str | None = None) -> int:
    """Answered POSTs whose path ends with `suffix` (for one asset, when given)."""
    return sum(
        1
        for method, path, status in emulator.request_log
        if method == "POST"
        and suffix in path
        and status == 201
        and (asset_id is None or f"/assets/{asset_id}/" in path)
    )


@pytest.fixture
def wanted(env: Platform, monkeypatch: pytest.MonkeyPatch) -> Platform:
    monkeypatch.setenv("VIDPIPE_CAPTIONS", "en")
    monkeypatch.setenv("VIDPIPE_STATIC_RENDITIONS", "highest")
    return env


def test_verify_names_every_asset_that_lacks_the_configured_captions_and_renditions(
    wanted: Platform, emulator: Emulator, vp: Callable[..., Result]
) -> None:
    record(wanted, emulator, 1, generated_subtitles=["en"], static_renditions=["highest"])
    a2 = record(wanted, emulator, 2)
    a3 = record(wanted, emulator, 3, generated_subtitles=["en"])
    res = vp("verify", "--json")
    assert res.code == 1, res.err
    items = {d["target"]["id"]: d for d in json.loads(res.out)["drift"]}
    assert set(items) == {2, 3}
    assert items[2]["kind"] == items[3]["kind"] == "settings_mismatch"
    assert (items[2]["asset_id"], items[3]["asset_id"]) == (a2, a3)
    assert items[2]["settings"] == {"captions": ["en"], "renditions": ["highest"], "meta": {}}
    assert items[3]["settings"] == {"captions": [], "renditions": ["highest"], "meta": {}}
    assert emulator.writing_calls() == 0


def test_fix_settings_converges_the_catalogue_and_a_rerun_asks_for_nothing(
    wanted: Platform, emulator: Emulator, vp: Callable[..., Result]
) -> None:
    done = record(wanted, emulator, 1, generated_subtitles=["en"], static_renditions=["highest"])
    a2 = record(wanted, emulator, 2)
    a3 = record(wanted, emulator, 3, meta={"title": "Old name", "external_id": "lesson:3"})
    before = wanted.dump()
    res = vp("sync", "--fix-settings", "--json")
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    actions = {d["target"]["id"]: d["action"] for d in doc["drift"]}
    assert "asked for captions en" in actions[2] and "added static rendition highest" in actions[2]
    assert "updated meta" in actions[3]
    assert (posts(emulator, CAPTIONS, a2), posts(emulator, RENDITIONS, a2)) == (1, 1)
    assert (posts(emulator, CAPTIONS, a3), posts(emulator, RENDITIONS, a3)) == (1, 1)
    assert posts(emulator, CAPTIONS, done) == posts(emulator, RENDITIONS, done) == 0
    assert emulator.assets[a3]["meta"] == in_line_meta(3)
    assert emulator.count("DELETE") == 0  # additive only
    assert wanted.dump() == before  # no row changes
    # Mux is still preparing what was asked for: that counts as present.
    writes = emulator.writing_calls()
    again = vp("sync", "--fix-settings", "--json")
    assert again.code == 0, again.err
    assert json.loads(again.out)["drift"] == []
    assert emulator.writing_calls() == writes
    assert vp("verify").code == 0


def test_dry_run_names_each_step_and_changes_nothing(
    wanted: Platform, emulator: Emulator, vp: Callable[..., Result]
) -> None:
    record(wanted, emulator, 2, meta={"external_id": "lesson:2"})
    res = vp("sync", "--fix-settings", "--dry-run", "--json")
    assert res.code == 0, res.err
    (item,) = json.loads(res.out)["drift"]
    assert item["action"].startswith("would generate captions en on audio track ")
    assert "would add static rendition highest" in item["action"]
    assert "would update meta (external_id, title)" in item["action"]
    assert emulator.writing_calls() == 0


def test_more_assets_than_max_fixes_changes_nothing_and_says_how_to_allow_it(
    wanted: Platform, emulator: Emulator, vp: Callable[..., Result]
) -> None:
    for lesson in (1, 2, 3):
        record(wanted, emulator, lesson)
    over = vp("sync", "--fix-settings", "--max-fixes", "2")
    assert over.code == 1
    assert "--max-fixes 3" in over.err
    assert emulator.writing_calls() == 0
    at = vp("sync", "--fix-settings", "--max-fixes", "3", "--json")
    assert at.code == 0, at.err
    assert posts(emulator, CAPTIONS) == posts(emulator, RENDITIONS) == 3


def test_an_asset_whose_passthrough_is_not_vidpipes_is_reported_and_never_touched(
    wanted: Platform, emulator: Emulator, vp: Callable[..., Result]
) -> None:
    foreign = record(wanted, emulator, 1, passthrough="cms:lesson-1", meta={})
    res = vp("sync", "--fix-settings", "--json")
    assert res.code == 0, res.err
    (item,) = json.loads(res.out)["drift"]
    assert item["asset_id"] == foreign and "not vidpipe's" in item["detail"]
    assert emulator.writing_calls() == 0


def test_a_storm_of_429s_is_waited_out_and_nothing_is_asked_twice(
    wanted: Platform, emulator: Emulator, vp: Callable[..., Result], mux_tuning: dict[str, Any]
) -> None:
    from conftest import fast_retry

    mux_tuning["retry"] = fast_retry(attempts=8)
    ids = [record(wanted, emulator, lesson) for lesson in (1, 2, 3)]
    emulator.inject("POST", "/video/v1/assets/", "status", status=429, times=5)
    res = vp("sync", "--fix-settings", "--json")
    assert res.code == 0, res.err
    for asset_id in ids:
        assert posts(emulator, CAPTIONS, asset_id) == posts(emulator, RENDITIONS, asset_id) == 1
    assert json.loads(res.out)["rate_limited"] == 5


def test_a_killed_fix_is_finished_by_running_it_again_with_nothing_asked_twice(
    wanted: Platform, emulator: Emulator
) -> None:
    wanted.add_lessons(range(4, 7))
    ids = [record(wanted, emulator, lesson) for lesson in range(1, 7)]
    cmd = [str(VIDPIPE), "sync", "--fix-settings", "--json"]
    # Paced at 1 POST/s: kill it once a few of its 12 POSTs have been answered.
    assert kill_when(cmd, lambda: posts(emulator, "/video/v1/assets/") >= 3)
    assert posts(emulator, "/video/v1/assets/") < 12
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for asset_id in ids:
        assert posts(emulator, CAPTIONS, asset_id) == posts(emulator, RENDITIONS, asset_id) == 1
