"""`vidpipe upload URL` and `vidpipe import MANIFEST`, end to end through the real CLI against
the emulator over real sockets (rate-limited like Mux), on SQLite and PostgreSQL: URL ingest,
manifest checks, a parallel batch landing byte-exact, resume after kill -9, two processes on
one manifest, a 429 storm, a failing item among good ones, and a create whose answer was lost.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Platform, Result, fast_retry, sha256_file
from emulator_helpers import FileServer, refused_url, video_bytes, wait_for
from sqlmodel import Session, select

from vidpipe.db import UploadJournal
from vidpipe.emulator import Emulator
from vidpipe.media import url_key
from vidpipe.mux import MuxGateway
from vidpipe.targets import Kind, Target

KiB = 1024
MiB = 1024 * KiB
QUANTUM = 256 * KiB


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """The emulator enforcing Mux's rate limits (POST 1/s, others 5/s), as Mux does."""
    with Emulator(ready_after=0.0, rate_limit=True) as emu:
        yield emu


@pytest.fixture
def files() -> Iterator[FileServer]:
    """A web server with one video and one text file, for URL ingest."""
    server = FileServer({"/course/intro.mp4": video_bytes(300 * KiB), "/notes.txt": b"hi\n"})
    with server.running():
        yield server


def journal_rows(platform: Platform) -> list[UploadJournal]:
    with Session(platform.engine) as s:
        return list(s.exec(select(UploadJournal).order_by(UploadJournal.id)))


def uploads_for(emulator: Emulator, lesson: int) -> list[dict[str, Any]]:
    passthrough = json.dumps({"lesson_id": lesson})
    return [
        u
        for u in emulator.uploads.values()
        if u["new_asset_settings"].get("passthrough") == passthrough
    ]


def assets_for(emulator: Emulator, lesson: int) -> list[dict[str, Any]]:
    passthrough = json.dumps({"lesson_id": lesson})
    return [a for a in emulator.assets.values() if a.get("passthrough") == passthrough]


def write_manifest(folder: Path, lines: list[str], name: str = "course.csv") -> Path:
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path


def make_clips(folder: Path, n: int, size: int, first: int = 1) -> list[Path]:
    from conftest import make_video

    folder.mkdir(parents=True, exist_ok=True)
    return [
        make_video(folder / f"lesson{i}.mp4", size + i, seed=i) for i in range(first, first + n)
    ]


def vidpipe_process(*args: str) -> subprocess.Popen[str]:
    """`vidpipe ARGS` as its own process, with this test's environment."""
    return subprocess.Popen(
        [sys.executable, "-m", "vidpipe.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def assert_lands_exact(env: Platform, emulator: Emulator, lesson: int, clip: Path) -> None:
    """The lesson records the asset of its only upload, whose bytes are the file's."""
    (upload,) = uploads_for(emulator, lesson)
    assert emulator.received(upload["id"]) == (clip.stat().st_size, sha256_file(clip))
    row = env.lesson(lesson)
    assert row is not None and row.mux_asset_id == upload["asset_id"]
    asset = emulator.assets[upload["asset_id"]]
    assert row.mux_playback_id == asset["playback_ids"][0]["id"]


# -- upload URL ---------------------------------------------------------------------------------


def test_upload_of_a_url_has_mux_fetch_it_and_records_the_ready_asset(
    env: Platform, emulator: Emulator, files: FileServer, cli: Callable[..., Result]
) -> None:
    url = files.url("/course/intro.mp4")
    res = cli("upload", url, "--lesson", "2", "--json")
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert doc["state"] == "ready" and doc["upload_id"] is None
    assert doc["transfer"] is None  # Mux fetched it: vidpipe sent no bytes
    (asset,) = assets_for(emulator, 2)
    assert asset["ingest_type"] == "on_demand_url" and asset["status"] == "ready"
    assert files.requests == ["/course/intro.mp4"]
    row = env.lesson(2)
    assert row is not None
    assert (row.mux_asset_id, row.mux_playback_id) == (
        asset["id"],
        asset["playback_ids"][0]["id"],
    )
    assert doc["asset_id"] == asset["id"]
    assert emulator.count(method="POST", path_prefix="/video/v1/uploads") == 0
    (entry,) = journal_rows(env)
    assert entry.state == "done" and entry.file_path == url_key(url)


def test_a_presigned_urls_signature_is_never_stored_or_shown(
    env: Platform, emulator: Emulator, files: FileServer, cli: Callable[..., Result]
) -> None:
    path = "/bucket/intro.mp4?X-Amz-Signature=deadbeefSECRET&X-Amz-Expires=600"
    files.files[path] = video_bytes(300 * KiB)
    url = files.url(path)
    res = cli("upload", url, "--lesson", "2", "--no-wait", "--json")
    assert res.code == 0, res.err
    (entry,) = journal_rows(env)
    assert "deadbeefSECRET" not in entry.file_path and entry.file_path.endswith(
        url_key(url).rsplit(" ", 1)[1]
    )
    status = cli("status", "--json")
    assert status.code == 0 and "deadbeefSECRET" not in status.out + status.err
    # The same URL again is the same source: a re-run finds its journal entry.
    again = cli("upload", url, "--lesson", "2", "--no-wait", "--json")
    assert again.code == 0, again.err
    assert len(journal_rows(env)) == 1


def test_upload_of_a_url_mux_cannot_fetch_fails_and_leaves_the_row_alone(
    env: Platform, emulator: Emulator, cli: Callable[..., Result]
) -> None:
    res = cli("upload", refused_url(), "--lesson", "1")
    assert res.code == 1
    assert "errored" in res.err
    row = env.lesson(1)
    assert row is not None and row.mux_asset_id is None
    (entry,) = journal_rows(env)
    assert entry.state == "failed"


def test_upload_of_a_url_that_is_not_a_video_fails(
    env: Platform, emulator: Emulator, files: FileServer, cli: Callable[..., Result]
) -> None:
    res = cli("upload", files.url("/notes.txt"), "--lesson", "1", "--json")
    assert res.code == 1 and res.out == ""
    row = env.lesson(1)
    assert row is not None and row.mux_asset_id is None


def test_upload_of_a_url_with_another_scheme_is_refused_before_anything_changes(
    env: Platform, emulator: Emulator, cli: Callable[..., Result]
) -> None:
    res = cli("upload", "ftp://example.com/intro.mp4", "--lesson", "1")
    assert res.code == 2
    assert "neither a file nor an http(s):// URL" in res.err
    assert emulator.writing_calls() == 0 and journal_rows(env) == []


def test_a_url_ingest_whose_answer_was_lost_is_found_not_made_twice(
    env: Platform, emulator: Emulator, files: FileServer, cli: Callable[..., Result]
) -> None:
    url = files.url("/course/intro.mp4")
    assert cli("upload", url, "--lesson", "1", "--no-wait").code == 0
    (first,) = assets_for(emulator, 1)
    # As if the process died after Mux made the asset but before the journal heard of it.
    with env.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE vidpipe_upload SET state = 'creating', asset_id = NULL")
    res = cli("upload", url, "--lesson", "1", "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["asset_id"] == first["id"]
    assert len(assets_for(emulator, 1)) == 1
    assert emulator.count(method="POST", path_prefix="/video/v1/assets") == 1
    row = env.lesson(1)
    assert row is not None and row.mux_asset_id == first["id"]


def test_a_direct_upload_whose_answer_was_lost_is_adopted_not_made_twice(
    env: Platform,
    emulator: Emulator,
    video: Callable[..., Path],
    cli: Callable[..., Result],
) -> None:
    from vidpipe import journal

    clip = video(3 * QUANTUM + 7)
    target = Target(Kind.LESSON, 3)
    # Mux made the upload; the process died before journaling its answer.
    with MuxGateway(emulator.base_url, "id", "secret") as mux:
        lost = mux.create_upload(target.passthrough)
    journal.create(
        env.engine,
        target,
        file_path=str(clip.resolve()),
        file_size=clip.stat().st_size,
        file_mtime_ns=clip.stat().st_mtime_ns,
        chunk_size=32 * MiB,
        state=journal.State.CREATING,
    )
    res = cli("upload", clip, "--lesson", "3")
    assert res.code == 0, res.err
    assert [u["id"] for u in uploads_for(emulator, 3)] == [lost.id]
    assert_lands_exact(env, emulator, 3, clip)


# -- manifest checks ------------------------------------------------------------------------------


def test_every_bad_manifest_line_is_named_and_nothing_changes(
    env: Platform, emulator: Emulator, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    env.add_lessons(range(4, 12))
    env.set_lesson(9, "asset-from-elsewhere", "playback-from-elsewhere")
    (good,) = make_clips(tmp_path / "videos", 1, QUANTUM)
    (tmp_path / "videos" / "notes.txt").write_text("not a video\n")
    before = env.dump()
    manifest = write_manifest(
        tmp_path,
        [
            "source,lesson,course",  # 1
            f"videos/{good.name},1,",  # 2: fine
            "videos/missing.mp4,2,",  # 3: no such file
            "",  # 4: blank, counted
            "videos/notes.txt,3,",  # 5: not a video
            "s3://bucket/intro.mp4,4,",  # 6: neither a file nor http(s)
            "http://,5,",  # 7: a URL with no host
            f"videos/{good.name},99,",  # 8: no such lesson
            f"videos/{good.name},6,1",  # 9: both
            f"videos/{good.name},,",  # 10: neither
            "https://example.com/a.mp4,1,",  # 11: lesson 1 again
            "https://example.com/b.mp4,9,",  # 12: has a video from outside
            "https://example.com/c.mp4,abc,",  # 13: not an id
        ],
    )
    res = cli("import", manifest, "--json")
    assert res.code == 2
    assert res.out == ""
    bad = {
        3: "no such file",
        5: "does not look like a video",
        6: "neither a file nor an http(s):// URL",
        7: "names no host",
        8: "lesson 99 does not exist",
        9: "both a lesson and a course",
        10: "neither a lesson nor a course",
        11: "lesson 1 is already the target of line 2",
        12: "lesson 9 already has a video",
        13: "not a positive integer",
    }
    for line, words in bad.items():
        assert any(
            text.startswith(f"line {line}: ") and words in text for text in res.err.splitlines()
        ), (line, res.err)
    assert "line 2:" not in res.err and "line 4:" not in res.err
    assert "--replace" in res.err
    assert emulator.writing_calls() == 0
    assert env.dump() == before and journal_rows(env) == []


def test_bad_json_lines_are_named_by_their_line(
    env: Platform, emulator: Emulator, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    (clip,) = make_clips(tmp_path, 1, QUANTUM)
    manifest = write_manifest(
        tmp_path,
        [
            json.dumps({"source": clip.name, "lesson": 1}),
            "",
            "{not json",
            json.dumps({"source": clip.name, "lesson": 2, "title": "x"}),
            json.dumps([clip.name, 3]),
            json.dumps({"source": clip.name, "course": True}),
        ],
        name="course.jsonl",
    )
    res = cli("import", manifest)
    assert res.code == 2
    for line in (3, 4, 5, 6):
        assert f"line {line}: " in res.err
    assert "line 1:" not in res.err
    assert emulator.writing_calls() == 0 and journal_rows(env) == []


def test_a_csv_with_an_unknown_column_is_refused_at_its_header(
    env: Platform, emulator: Emulator, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    manifest = write_manifest(tmp_path, ["source,lessson", "a.mp4,1"])
    res = cli("import", manifest)
    assert res.code == 2 and "line 1: " in res.err and "lessson" in res.err
    assert emulator.writing_calls() == 0


def test_dry_run_shows_the_plan_and_changes_nothing(
    env: Platform, emulator: Emulator, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    clips = make_clips(tmp_path / "v", 2, QUANTUM)
    manifest = write_manifest(
        tmp_path, ["source,lesson", *(f"v/{c.name},{i}" for i, c in enumerate(clips, 1))]
    )
    res = cli("import", manifest, "--dry-run", "--json")
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert doc["dry_run"] is True
    assert [i["state"] for i in doc["items"]] == ["pending", "pending"]
    assert emulator.count() == 0 and journal_rows(env) == []


# -- the batch ----------------------------------------------------------------------------------


def test_a_batch_of_files_and_urls_lands_byte_exact_with_no_429(
    env: Platform,
    emulator: Emulator,
    files: FileServer,
    tmp_path: Path,
    cli: Callable[..., Result],
) -> None:
    env.add_lessons(range(4, 8))
    clips = make_clips(tmp_path / "videos", 6, 2 * QUANTUM + 100)
    url = files.url("/course/intro.mp4")
    lines = ["source,lesson", *(f"videos/{c.name},{i}" for i, c in enumerate(clips, 1))]
    manifest = write_manifest(tmp_path, [*lines, f"{url},7"])
    os.chdir(tmp_path.parent)  # paths are the manifest's folder's, wherever vidpipe runs
    res = cli("import", manifest, "--jobs", "3", "--chunk-size", "256KiB", "--json")
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert doc["ok"] is True
    assert [i["line"] for i in doc["items"]] == list(range(2, 9))
    assert {i["state"] for i in doc["items"]} == {"done"}
    assert doc["summary"] == {"total": 7, "done": 7, "skipped": 0, "transferred": 0, "failed": 0}
    for lesson, clip in enumerate(clips, 1):
        assert_lands_exact(env, emulator, lesson, clip)
    (asset,) = assets_for(emulator, 7)
    row = env.lesson(7)
    assert row is not None and row.mux_asset_id == asset["id"]
    assert doc["items"][-1]["asset_id"] == asset["id"]
    assert emulator.count(status=429) == 0
    # Readiness came from list pages: well under two reads per item.
    assert emulator.count(method="GET", path_prefix="/video/") <= 2 * 7
    assert all(j.state == "done" for j in journal_rows(env))

    again = cli("import", manifest, "--json")
    assert again.code == 0, again.err
    assert {i["state"] for i in json.loads(again.out)["items"]} == {"skipped"}
    assert emulator.count(method="POST") == 7  # nothing created the second time


def test_one_failing_item_does_not_stop_the_others_and_exits_1(
    env: Platform, emulator: Emulator, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    clips = make_clips(tmp_path, 2, QUANTUM)
    manifest = write_manifest(
        tmp_path,
        ["source,lesson", f"{clips[0].name},1", f"{refused_url()},2", f"{clips[1].name},3"],
    )
    res = cli("import", manifest, "--json")
    assert res.code == 1
    items = {i["line"]: i for i in json.loads(res.out)["items"]}
    assert items[2]["state"] == "done" and items[4]["state"] == "done"
    assert items[3]["state"] == "failed" and "errored" in items[3]["error"]
    assert_lands_exact(env, emulator, 1, clips[0])
    assert_lands_exact(env, emulator, 3, clips[1])
    row = env.lesson(2)
    assert row is not None and row.mux_asset_id is None


def test_no_wait_transfers_then_a_rerun_records(
    env: Platform, emulator: Emulator, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    clips = make_clips(tmp_path, 2, QUANTUM)
    manifest = write_manifest(
        tmp_path, ["source,lesson", *(f"{c.name},{i}" for i, c in enumerate(clips, 1))]
    )
    res = cli("import", manifest, "--no-wait", "--json")
    assert res.code == 0, res.err
    assert {i["state"] for i in json.loads(res.out)["items"]} == {"transferred"}
    assert all(env.lesson(i).mux_asset_id is None for i in (1, 2))  # type: ignore[union-attr]
    res = cli("import", manifest, "--json")
    assert res.code == 0, res.err
    assert {i["state"] for i in json.loads(res.out)["items"]} == {"done"}
    for lesson, clip in enumerate(clips, 1):
        assert_lands_exact(env, emulator, lesson, clip)


def test_replace_swaps_a_recorded_video_and_deletes_the_old_asset(
    env: Platform, emulator: Emulator, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    old = emulator.seed_asset(passthrough='{"lesson_id": 1}')
    env.set_lesson(1, old["id"], old["playback_ids"][0]["id"])
    (clip,) = make_clips(tmp_path, 1, QUANTUM)
    manifest = write_manifest(tmp_path, ["source,lesson", f"{clip.name},1"])
    assert cli("import", manifest).code == 2
    res = cli("import", manifest, "--replace")
    assert res.code == 0, res.err
    assert_lands_exact(env, emulator, 1, clip)
    assert old["id"] not in emulator.assets


def test_a_429_storm_is_waited_out_not_failed(
    env: Platform,
    emulator: Emulator,
    tmp_path: Path,
    cli: Callable[..., Result],
    mux_tuning: dict[str, Any],
) -> None:
    mux_tuning["retry"] = fast_retry(attempts=2)
    clips = make_clips(tmp_path, 3, QUANTUM)
    manifest = write_manifest(
        tmp_path, ["source,lesson", *(f"{c.name},{i}" for i, c in enumerate(clips, 1))]
    )
    emulator.inject("POST", "/video/v1/uploads", "status", status=429, times=8)
    emulator.inject("GET", "/video/v1/assets", "status", status=429, times=8)
    res = cli("import", manifest, "--json")
    assert res.code == 0, res.err
    assert emulator.pending_faults == 0
    assert emulator.count(status=429) >= 16
    assert json.loads(res.out)["rate_limited"] >= 16
    for lesson, clip in enumerate(clips, 1):
        assert_lands_exact(env, emulator, lesson, clip)


def test_the_gateway_holds_back_when_mux_says_the_budget_is_spent(emulator: Emulator) -> None:
    # No pacing of its own: only X-RateLimit-Remaining/Reset keep it under Mux's 5/s.
    with MuxGateway(emulator.base_url, "id", "secret", pace=False, retry=fast_retry(1)) as mux:
        for _ in range(12):
            mux.list_assets_page()
    assert emulator.count(status=429) == 0


# -- crashes and several processes ----------------------------------------------------------------


def test_kill_9_mid_batch_then_rerun_finishes_without_any_item_twice(
    env: Platform, emulator: Emulator, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    env.add_lessons(range(4, 7))
    clips = make_clips(tmp_path / "videos", 6, 6 * QUANTUM)
    manifest = write_manifest(
        tmp_path,
        ["source,lesson", *(f"videos/{c.name},{i}" for i, c in enumerate(clips, 1))],
    )
    # Slow chunks, so the kill lands with transfers in flight.
    emulator.inject("PUT", "/upload/", "delay", delay=0.15, times=1000)
    proc = vidpipe_process("import", str(manifest), "--jobs", "3", "--chunk-size", "256KiB")
    try:
        wait_for(
            lambda: sum(emulator.received(u)[0] for u in emulator.uploads) > 3 * QUANTUM,
            timeout=60,
        )
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    unfinished = [j for j in journal_rows(env) if j.state != "done"]
    assert unfinished, "the kill should leave work in flight"
    emulator.clear_faults()
    res = cli("import", manifest, "--chunk-size", "256KiB", "--json")
    assert res.code == 0, f"{res.err}\n{res.out}"  # the items' errors say which failed
    assert {i["state"] for i in json.loads(res.out)["items"]} <= {"done", "skipped"}
    for lesson, clip in enumerate(clips, 1):
        assert len(assets_for(emulator, lesson)) == 1
        assert_lands_exact(env, emulator, lesson, clip)


def test_two_processes_on_one_manifest_upload_each_item_once(
    env: Platform, emulator: Emulator, tmp_path: Path
) -> None:
    env.add_lessons(range(4, 9))
    clips = make_clips(tmp_path / "videos", 8, 4 * QUANTUM)
    manifest = write_manifest(
        tmp_path,
        ["source,lesson", *(f"videos/{c.name},{i}" for i, c in enumerate(clips, 1))],
    )
    emulator.inject("PUT", "/upload/", "delay", delay=0.05, times=1000)
    procs = [
        vidpipe_process("import", str(manifest), "--jobs", "2", "--chunk-size", "256KiB", "--json")
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=240) for p in procs]
    for proc, (out, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, out + err
        assert {i["state"] for i in json.loads(out)["items"]} <= {"done", "skipped"}
    for lesson, clip in enumerate(clips, 1):
        assert len(assets_for(emulator, lesson)) == 1
        assert_lands_exact(env, emulator, lesson, clip)
    # Both processes did part of the work, and no item was uploaded by both.
    done = [sum(i["state"] == "done" for i in json.loads(out)["items"]) for out, _ in outs]
    assert sum(done) == 8
    # (Two processes share the 1 POST/s budget: their 429s were retried, not failures.)
    assert emulator.count(method="POST", path_prefix="/video/v1/uploads", status=201) == 8


def test_an_item_another_process_holds_is_waited_for_not_failed(
    env: Platform, emulator: Emulator, tmp_path: Path
) -> None:
    from vidpipe.pipeline import Pipeline

    (clip,) = make_clips(tmp_path, 1, QUANTUM)
    manifest = write_manifest(tmp_path, ["source,lesson", f"{clip.name},1"])
    with MuxGateway(emulator.base_url, "id", "secret") as mux:
        holder = Pipeline(env.engine, mux, None)  # type: ignore[arg-type]
        with holder.claim(Target(Kind.LESSON, 1)):
            proc = vidpipe_process("import", str(manifest), "--json")
            time.sleep(2.0)
            assert proc.poll() is None  # still waiting for the item, not failed
            assert emulator.count(method="POST") == 0
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert json.loads(out)["items"][0]["state"] == "done"
    assert_lands_exact(env, emulator, 1, clip)


def test_the_library_imports_a_manifest_and_names_bad_lines_without_option_names(
    env: Platform, emulator: Emulator, tmp_path: Path
) -> None:
    import vidpipe

    clips = make_clips(tmp_path, 2, QUANTUM)
    manifest = write_manifest(
        tmp_path, ["source,lesson", *(f"{c.name},{i}" for i, c in enumerate(clips, 1))]
    )
    with vidpipe.Vidpipe.from_env() as vp:
        report = vp.import_manifest(manifest, jobs=2)
        assert isinstance(report, vidpipe.ImportReport) and report.ok
        assert [i["state"] for i in report.as_json()["items"]] == ["done", "done"]  # type: ignore[index]
        env.set_lesson(3, "elsewhere", "elsewhere-playback")
        bad = write_manifest(tmp_path, ["source,lesson", f"{clips[0].name},3"], name="bad.csv")
        with pytest.raises(vidpipe.ManifestError) as caught:
            vp.import_manifest(bad)
    assert caught.value.problems == [
        (2, "lesson 3 already has a video (asset elsewhere) from outside this manifest")
    ]
    assert "--" not in str(caught.value)


def test_import_creates_every_asset_with_the_asset_setting_options(
    env: Platform,
    emulator: Emulator,
    files: FileServer,
    tmp_path: Path,
    cli: Callable[..., Result],
) -> None:
    (clip,) = make_clips(tmp_path, 1, QUANTUM)
    manifest = write_manifest(
        tmp_path,
        ["source,lesson", f"{clip.name},1", f"{files.url('/course/intro.mp4')},2"],
    )
    res = cli("import", manifest, "--playback-policy", "signed", "--video-quality", "plus")
    assert res.code == 0, res.err
    for lesson in (1, 2):
        (asset,) = assets_for(emulator, lesson)
        assert [p["policy"] for p in asset["playback_ids"]] == ["signed"]
        assert asset["video_quality"] == "plus"
        assert asset["meta"]["external_id"] == f"lesson:{lesson}"
        row = env.lesson(lesson)
        assert row is not None and row.mux_playback_id == asset["playback_ids"][0]["id"]
