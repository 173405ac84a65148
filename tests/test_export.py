"""`vidpipe export DIR`: every row's original into a folder with a manifest, re-runs, and the
way back: `vidpipe import` into a second emulator standing for another Mux environment."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import Platform, Result, make_video, seed_platform, sha256_file
from sqlalchemy.engine import make_url
from sqlmodel import Session

from vidpipe.api import Vidpipe
from vidpipe.db import Lesson, World, make_engine
from vidpipe.emulator import Emulator
from vidpipe.emulator.masters import Cut
from vidpipe.fetch import TransferRetry

MiB = 1024 * 1024


@pytest.fixture(autouse=True)
def fast_downloads(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    options: dict[str, Any] = {"retry": TransferRetry(attempts=2, initial=0.01, maximum=0.02)}
    monkeypatch.setattr(Vidpipe, "download_defaults", options)
    return options


def record(env: Platform, kind: str, row: int, asset: dict[str, Any]) -> None:
    table, column = (
        ("lesson", "mux_asset_id") if kind == "lesson" else ("world", "mux_preview_asset_id")
    )
    with env.engine.begin() as conn:
        conn.execute(
            sa.text(f"UPDATE {table} SET {column} = :a WHERE id = :i"), {"a": asset["id"], "i": row}
        )


def catalogue(emulator: Emulator, env: Platform) -> list[str]:
    """Lessons 1 and 2 with assets of their own, course 1 sharing lesson 1's asset."""
    assets = emulator.seed_assets(2)
    for asset, size in zip(assets, (2 * MiB + 1, MiB + 5), strict=True):
        emulator.master_access.set_size(asset["id"], size)
    record(env, "lesson", 1, assets[0])
    record(env, "lesson", 2, assets[1])
    record(env, "course", 1, assets[0])
    return [str(a["id"]) for a in assets]


def manifest_rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def master_gets(emulator: Emulator) -> int:
    return sum(1 for (_r, _ir, status) in emulator.masters.log if status in (200, 206))


def master_puts(emulator: Emulator) -> int:
    return sum(1 for (m, p, _s) in emulator.request_log if m == "PUT" and "master" in p)


def test_export_downloads_every_row_once_per_asset_and_writes_a_manifest(
    env: Platform, emulator: Emulator, vp: Callable[..., Result], tmp_path: Path
) -> None:
    first, second = catalogue(emulator, env)
    out = tmp_path / "backup"
    res = vp("export", out, "--json", "--jobs", "2")
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert doc["ok"] is True and doc["manifest"] == str(out / "manifest.csv")
    states = {(i["target"]["kind"], i["target"]["id"]): i["state"] for i in doc["items"]}
    assert states == {
        ("lesson", 1): "downloaded",
        ("lesson", 2): "downloaded",
        ("course", 1): "downloaded",
    }
    assert doc["summary"]["downloaded"] == 3 and doc["summary"]["failed"] == 0
    assert (out / "lesson-1.mp4").read_bytes() == emulator.master_access.bytes(first)
    assert (out / "course-1.mp4").read_bytes() == emulator.master_access.bytes(first)
    assert (out / "lesson-2.mp4").read_bytes() == emulator.master_access.bytes(second)
    assert master_gets(emulator) == 2  # the shared asset was downloaded once
    assert manifest_rows(out) == [
        {"source": "lesson-1.mp4", "lesson": "1", "course": ""},
        {"source": "lesson-2.mp4", "lesson": "2", "course": ""},
        {"source": "course-1.mp4", "lesson": "", "course": "1"},
    ]
    assert all(emulator.assets[a]["master_access"] == "none" for a in (first, second))


def test_a_rerun_skips_complete_files_without_asking_mux_and_continues_partial_ones(
    env: Platform, emulator: Emulator, vp: Callable[..., Result], tmp_path: Path
) -> None:
    first, _second = catalogue(emulator, env)
    out = tmp_path / "backup"
    emulator.masters.faults.plan = [Cut(MiB), *[503] * 9]
    res = vp("export", out, "--lesson", "1", "--json")
    assert res.code == 1
    assert (out / "lesson-1.mp4.part").stat().st_size == MiB
    emulator.masters.faults.plan.clear()
    assert vp("export", out, "--lesson", "2").code == 0
    puts_before, log_before = master_puts(emulator), len(emulator.masters.log)
    res = vp("export", out, "--json")
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    states = {(i["target"]["kind"], i["target"]["id"]): i["state"] for i in doc["items"]}
    assert states == {
        ("lesson", 1): "downloaded",
        ("lesson", 2): "skipped",
        ("course", 1): "downloaded",
    }
    # Only lesson 1's asset was asked for (on, then off), and it continued from the .part.
    assert master_puts(emulator) - puts_before == 2
    assert [r for (r, _ir, _s) in emulator.masters.log[log_before:]] == [f"bytes={MiB}-"]
    assert (out / "lesson-1.mp4").read_bytes() == emulator.master_access.bytes(first)
    puts_before = master_puts(emulator)
    again = vp("export", out, "--json")
    assert again.code == 0
    assert {i["state"] for i in json.loads(again.out)["items"]} == {"skipped"}
    assert master_puts(emulator) == puts_before
    assert len(manifest_rows(out)) == 3


def test_one_failing_item_does_not_stop_the_others(
    env: Platform, emulator: Emulator, vp: Callable[..., Result], tmp_path: Path
) -> None:
    _first, second = catalogue(emulator, env)
    emulator.delete_asset_silently(second)
    out = tmp_path / "backup"
    res = vp("export", out, "--json")
    assert res.code == 1
    doc = json.loads(res.out)
    by = {(i["target"]["kind"], i["target"]["id"]): i for i in doc["items"]}
    assert by[("lesson", 2)]["state"] == "failed" and by[("lesson", 2)]["error"]
    assert by[("lesson", 1)]["state"] == by[("course", 1)]["state"] == "downloaded"
    assert [r["source"] for r in manifest_rows(out)] == ["lesson-1.mp4", "course-1.mp4"]


def test_export_refuses_bad_input_before_mux_is_asked(
    env: Platform, emulator: Emulator, vp: Callable[..., Result], tmp_path: Path
) -> None:
    catalogue(emulator, env)
    (tmp_path / "a-file").write_text("x")
    before = len(emulator.request_log)
    for args, message in (
        (["--lesson", "3"], "has no video"),
        (["--lesson", "99"], "does not exist"),
        (["--jobs", "0"], "jobs"),
    ):
        res = vp("export", tmp_path / "out", *args, "--json")
        assert res.code == 2 and message in res.err and res.out == ""
    res = vp("export", tmp_path / "a-file")
    assert res.code == 2 and "not a folder" in res.err
    assert emulator.request_log[before:] == []


# -- the round trip: export, then import into another environment ---------------------------------


@pytest.fixture
def source_emulator(tmp_path: Path) -> Iterator[Emulator]:
    """An emulator that keeps uploads on disk: masters serve the uploaded bytes."""
    with Emulator(ready_after=0.0, store_dir=tmp_path / "uploads") as emu:
        yield emu


@pytest.fixture
def second_emulator() -> Iterator[Emulator]:
    with Emulator(ready_after=0.0, environment_id="emu-env-2", environment_name="Staging") as emu:
        yield emu


def test_export_then_import_reproduces_the_catalogue_in_another_environment(
    env: Platform,
    source_emulator: Emulator,
    second_emulator: Emulator,
    vp: Callable[..., Result],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    second_db_url: str,
) -> None:
    monkeypatch.setenv("MUX_BASE_URL", source_emulator.base_url)
    assert vp("db", "pin", "--force").code == 0
    clips = {
        ("lesson", 1): make_video(tmp_path / "a.mp4", 3 * MiB + 3, seed=1),
        ("lesson", 3): make_video(tmp_path / "b.mp4", MiB + 9, seed=2),
        ("course", 2): make_video(tmp_path / "c.mp4", 2 * MiB, seed=3),
    }
    for (kind, row), clip in clips.items():
        assert vp("upload", clip, f"--{kind}", row).code == 0
    out = tmp_path / "move"
    res = vp("export", out, "--json")
    assert res.code == 0, res.err
    for (kind, row), clip in clips.items():
        assert sha256_file(out / f"{kind}-{row}.mp4") == sha256_file(clip)

    # Another environment: the platform's rows, no videos yet, pinned to the second emulator.
    second_url = second_db_url
    monkeypatch.setenv("DATABASE_URL", second_url)
    monkeypatch.setenv("MUX_BASE_URL", second_emulator.base_url)
    assert vp("db", "pin").code == 0
    res = vp("import", out / "manifest.csv", "--json")
    assert res.code == 0, res.err
    assert {i["state"] for i in json.loads(res.out)["items"]} == {"done"}
    engine = make_engine(second_url)
    try:
        with Session(engine) as s:
            recorded = {
                ("lesson", 1): s.get(Lesson, 1).mux_asset_id,  # type: ignore[union-attr]
                ("lesson", 3): s.get(Lesson, 3).mux_asset_id,  # type: ignore[union-attr]
                ("course", 2): s.get(World, 2).mux_preview_asset_id,  # type: ignore[union-attr]
            }
    finally:
        engine.dispose()
    by_asset = {a["id"]: a for a in second_emulator.assets.values()}
    for key, clip in clips.items():
        asset = by_asset[recorded[key]]
        size, digest = second_emulator.received(asset["upload_id"])
        assert (size, digest) == (clip.stat().st_size, sha256_file(clip))


@pytest.fixture
def second_db_url(db_url: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A platform database of the other environment: the same rows, no Mux IDs; of the same
    kind as `db_url` (a SQLite file, or another database on the test PostgreSQL server)."""
    server = None
    if db_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'second.db'}"
    else:
        server = request.getfixturevalue("pg_server")
        url = server.create_database()
    engine = make_engine(url)
    try:
        seed_platform(engine)
    finally:
        engine.dispose()
    yield url
    if server is not None:
        server.drop_database(make_url(url).database or "")


def test_a_file_from_an_asset_the_row_no_longer_names_is_downloaded_again(
    env: Platform, emulator: Emulator, vp: Callable[..., Result], tmp_path: Path
) -> None:
    first, second = catalogue(emulator, env)
    out = tmp_path / "backup"
    assert vp("export", out).code == 0
    # Lesson 1 gets lesson 2's video (a replaced video): its file is stale, and course 1,
    # which still shares the first asset, keeps its bytes.
    record(env, "lesson", 1, {"id": second})
    res = vp("export", out, "--json")
    assert res.code == 0, res.err
    states = {
        (i["target"]["kind"], i["target"]["id"]): i["state"] for i in json.loads(res.out)["items"]
    }
    assert states[("lesson", 1)] == "downloaded"
    assert states[("lesson", 2)] == states[("course", 1)] == "skipped"
    assert (out / "lesson-1.mp4").read_bytes() == emulator.master_access.bytes(second)
    assert (out / "course-1.mp4").read_bytes() == emulator.master_access.bytes(first)
