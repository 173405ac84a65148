"""End to end: `vidpipe upload` and `vidpipe status` through the real CLI entry point, against
the emulator over real sockets, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import TOKEN_SECRET, Platform, Result, fast_retry, sha256_file
from sqlmodel import Session, select

from vidpipe.db import UploadJournal
from vidpipe.emulator import Emulator

KiB = 1024
QUANTUM = 256 * KiB


def journal_rows(platform: Platform) -> list[UploadJournal]:
    with Session(platform.engine) as s:
        return list(s.exec(select(UploadJournal).order_by(UploadJournal.id)))


def the_upload(emulator: Emulator) -> str:
    (upload_id,) = emulator.uploads.keys()
    return upload_id


def kill_when(cmd: list[str], ready: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Run `cmd` as its own process and SIGKILL it as soon as `ready()` is true (or after
    `timeout`); whether `ready()` was seen."""
    proc = subprocess.Popen(
        cmd, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if ready():
                return True
            time.sleep(0.02)
        return False
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)


def rerun_resumes_exactly(
    cmd: list[str], env: Platform, emulator: Emulator, clip: Path
) -> dict[str, Any]:
    """Run the killed `cmd` (a `--json` upload) again, faults cleared: the same Mux upload
    resumes, the bytes arrive exact and the row records the asset; its JSON document."""
    upload_id = the_upload(emulator)
    emulator.clear_faults()
    done = subprocess.run(cmd, env=os.environ.copy(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    assert doc["upload_id"] == upload_id and doc["resumed"] is True
    assert len(emulator.uploads) == 1
    assert emulator.received(upload_id) == (clip.stat().st_size, sha256_file(clip))
    row = env.lesson(doc["target"]["id"])
    assert row is not None and row.mux_asset_id == doc["asset_id"]
    return doc


def test_upload_lesson_records_ids_and_bytes_arrive_exact(
    env: Platform, emulator: Emulator, video: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    clip = video(5 * QUANTUM + 123)
    res = cli("upload", clip, "--lesson", "2", "--chunk-size", "256KiB")
    assert res.code == 0, res.err
    upload_id = the_upload(emulator)
    size, digest = emulator.received(upload_id)
    assert (size, digest) == (clip.stat().st_size, sha256_file(clip))
    upload = emulator.uploads[upload_id]
    assert upload["new_asset_settings"]["passthrough"] == '{"lesson_id": 2}'
    asset = emulator.assets[upload["asset_id"]]
    row = env.lesson(2)
    assert row is not None
    assert row.mux_asset_id == asset["id"]
    assert row.mux_playback_id == asset["playback_ids"][0]["id"]
    assert asset["playback_ids"][0]["policy"] == "public"
    (entry,) = journal_rows(env)
    assert entry.state == "done" and entry.confirmed_bytes == size
    # 6 chunks of 256 KiB (the last short) plus no restarts.
    puts = emulator.count(method="PUT", path_prefix="/upload/")
    assert puts == 6


def test_upload_course_json(
    env: Platform, emulator: Emulator, video: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    clip = video(QUANTUM // 2)
    res = cli("upload", clip, "--course", "1", "--json")
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    world = env.world(1)
    assert world is not None
    assert doc["asset_id"] == world.mux_preview_asset_id
    assert doc["playback_id"] == world.mux_preview_playback_id
    assert doc["target"] == {"kind": "course", "id": 1}
    upload = emulator.uploads[doc["upload_id"]]
    assert upload["new_asset_settings"]["passthrough"] == '{"course_id": 1}'


def test_no_wait_then_sync_records(
    env: Platform, emulator: Emulator, video: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    clip = video(QUANTUM + 5)
    res = cli("upload", clip, "--lesson", "1", "--no-wait", "--json")
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert doc["state"] == "transferred"
    row = env.lesson(1)
    assert row is not None and row.mux_asset_id is None
    status = cli("status", "--json")
    assert status.code == 0, status.err
    targets = json.loads(status.out)["targets"]
    assert targets[0]["upload"]["state"] == "transferred"
    res = cli("sync", "--json")
    assert res.code == 0, res.err
    row = env.lesson(1)
    assert row is not None and row.mux_asset_id == emulator.uploads[doc["upload_id"]]["asset_id"]
    assert [e.state for e in journal_rows(env)] == ["done"]


def test_cut_connection_mid_chunk_resumes_same_upload(
    env: Platform,
    emulator: Emulator,
    video: Callable[..., Path],
    cli: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clip = video(8 * QUANTUM + 77)
    emulator.inject("PUT", "/upload/", "cut", after_bytes=QUANTUM + 1000, times=1)
    res = cli("upload", clip, "--lesson", "3", "--chunk-size", "1MiB")
    assert res.code == 0, res.err
    upload_id = the_upload(emulator)
    assert emulator.received(upload_id) == (clip.stat().st_size, sha256_file(clip))


def test_upload_reports_what_its_transfer_sent(
    env: Platform, emulator: Emulator, video: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    clip = video(8 * QUANTUM + 77)
    size = clip.stat().st_size
    res = cli("upload", clip, "--lesson", "1", "--chunk-size", "1MiB", "--no-wait")
    assert res.code == 0, res.err
    # 1 MiB, 1 MiB, 77 bytes: three PUTs, every byte once; on stderr, stdout keeps the result.
    (summary,) = [line for line in res.err.splitlines() if line.startswith("sent ")]
    assert summary.startswith("sent 2.0 MiB in ")
    assert summary.endswith(", 3 requests, no retries")
    assert "transferred" in res.out and "sent " not in res.out

    # A cut after QUANTUM + 1000 bytes of the first request: the server keeps one block,
    # the retry asks for the offset and sends the rest; what was sent twice counts twice.
    emulator.inject("PUT", "/upload/", "cut", after_bytes=QUANTUM + 1000, times=1)
    res = cli("upload", clip, "--lesson", "2", "--chunk-size", "1MiB", "--no-wait", "--json")
    assert res.code == 0, res.err
    sent = json.loads(res.out)["transfer"]
    # The cut request, the offset query, then two from the kept block.
    assert (sent["requests"], sent["retries"]) == (4, 1)
    # The first request handed between QUANTUM + 1000 bytes and all of its 1 MiB to the
    # connection before the cut; everything after the kept block went again.
    assert size + 1000 <= sent["bytes_sent"] <= size - QUANTUM + 1024 * 1024
    assert sent["seconds"] > 0


def test_expired_upload_starts_fresh(
    env: Platform, emulator: Emulator, video: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    clip = video(2 * QUANTUM)
    # Transfer half, then the process "dies": simulate with a hard cut and no retries.
    emulator.inject("PUT", "/upload/", "status", status=400, times=1)
    res = cli("upload", clip, "--lesson", "1")
    assert res.code == 1
    first = the_upload(emulator)
    emulator.expire_upload(first)
    res = cli("upload", clip, "--lesson", "1")
    assert res.code == 0, res.err
    assert "starting a fresh upload" in res.err
    assert len(emulator.uploads) == 2
    states = [e.state for e in journal_rows(env)]
    assert states == ["abandoned", "done"]


def test_errored_asset_exit_1_row_unchanged(
    env: Platform, emulator: Emulator, video: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    emulator.fail_next_assets(1)
    res = cli("upload", video(QUANTUM), "--lesson", "2")
    assert res.code == 1
    assert "errored" in res.err
    row = env.lesson(2)
    assert row is not None and row.mux_asset_id is None
    assert [e.state for e in journal_rows(env)] == ["failed"]


def test_replace_records_new_then_deletes_old(
    env: Platform, emulator: Emulator, video: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    assert cli("upload", video(QUANTUM, name="a.mp4"), "--lesson", "1").code == 0
    old = env.lesson(1)
    assert old is not None and old.mux_asset_id
    res = cli("upload", video(QUANTUM, name="b.mp4", seed=2), "--lesson", "1")
    assert res.code == 2 and "--replace" in res.err
    res = cli("upload", video(QUANTUM, name="b.mp4", seed=2), "--lesson", "1", "--replace")
    assert res.code == 0, res.err
    new = env.lesson(1)
    assert new is not None and new.mux_asset_id not in (None, old.mux_asset_id)
    assert old.mux_asset_id not in emulator.assets


def test_replace_keeps_old_asset_another_row_uses(
    env: Platform, emulator: Emulator, video: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    assert cli("upload", video(QUANTUM), "--lesson", "1").code == 0
    old = env.lesson(1)
    assert old is not None
    env.set_lesson(2, old.mux_asset_id, old.mux_playback_id)
    res = cli("upload", video(QUANTUM, name="n.mp4", seed=5), "--lesson", "1", "--replace")
    assert res.code == 0, res.err
    assert old.mux_asset_id in emulator.assets
    assert "still use it" in res.err


def test_unauthorized_exit_1_without_secret(
    env: Platform,
    emulator: Emulator,
    video: Callable[..., Path],
    cli: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emulator.inject(None, "/video/", "status", status=401, times=100)
    res = cli("upload", video(QUANTUM), "--lesson", "1")
    assert res.code == 1
    assert "Mux refused the credentials" in res.err
    assert TOKEN_SECRET not in res.err + res.out
    row = env.lesson(1)
    assert row is not None and row.mux_asset_id is None


def test_429_storm_is_waited_out(
    env: Platform,
    emulator: Emulator,
    video: Callable[..., Path],
    cli: Callable[..., Result],
    mux_tuning: dict[str, Any],
) -> None:
    mux_tuning["retry"] = fast_retry()
    emulator.inject("POST", "/video/v1/uploads", "status", status=429, times=3)
    emulator.inject("GET", "/video/", "status", status=429, times=2)
    res = cli("upload", video(QUANTUM), "--lesson", "1")
    assert res.code == 0, res.err
    assert emulator.count(status=429) == 5
    row = env.lesson(1)
    assert row is not None and row.mux_asset_id


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["upload", "{missing}", "--lesson", "1"], "no such file"),
        (["upload", "{dir}", "--lesson", "1"], "directory"),
        (["upload", "{empty}", "--lesson", "1"], "empty"),
        (["upload", "{text}", "--lesson", "1"], "does not look like a video"),
        (["upload", "{video}", "--lesson", "99"], "does not exist"),
        (["upload", "{video}", "--lesson", "1", "--course", "1"], "not both"),
        (["upload", "{video}"], "--lesson ID or --course ID"),
        (["upload", "{video}", "--lesson", "abc"], "--lesson"),
        (["upload", "{video}", "--lesson", "1", "--chunk-size", "100KiB"], "256 KiB"),
        (["upload", "{video}", "--lesson", "1", "--chunk-size", "lots"], "lots"),
        (["upload", "{video}", "--lesson", "1", "--timeout", "soon"], "soon"),
    ],
)
def test_bad_input_exit_2_nothing_changed(
    env: Platform,
    emulator: Emulator,
    video: Callable[..., Path],
    cli: Callable[..., Result],
    tmp_path: Path,
    args: list[str],
    needle: str,
) -> None:
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("hello, this is not a video at all\n" * 20)
    paths = {
        "{missing}": str(tmp_path / "nope.mp4"),
        "{dir}": str(tmp_path),
        "{empty}": str(tmp_path / "empty.mp4"),
        "{text}": str(tmp_path / "notes.txt"),
        "{video}": str(video(QUANTUM)),
    }
    before = env.dump()
    res = cli(*[paths.get(a, a) for a in args])
    assert res.code == 2, (res.out, res.err)
    assert needle in res.err
    assert len(res.err.strip().splitlines()) <= 3 and "Traceback" not in res.err
    assert env.dump() == before
    assert journal_rows(env) == []
    assert emulator.count(path_prefix="/video/") == 0


def test_status_side_by_side(
    env: Platform, emulator: Emulator, video: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    assert cli("upload", video(QUANTUM), "--lesson", "1").code == 0
    row = env.lesson(1)
    assert row is not None
    env.set_lesson(2, row.mux_asset_id, row.mux_playback_id)
    res = cli("status", "--json")
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    by_id = {t["target"]["id"]: t for t in doc["targets"]}
    assert set(by_id) == {1, 2}
    assert by_id[1]["mux"]["status"] == "ready"
    assert by_id[1]["db"]["playback_id"] in by_id[1]["mux"]["playback_ids"]
    assert by_id[1]["shared_with"] == [{"kind": "lesson", "id": 2}]
    plain = cli("status", "--lesson", "1")
    assert plain.code == 0 and row.mux_asset_id in plain.out and "\x1b[" not in plain.out


def test_killed_process_resumes_same_upload(
    env: Platform, emulator: Emulator, video: Callable[..., Path], tmp_path: Path
) -> None:
    """SIGKILL mid-transfer, then the same command: the same Mux upload continues from the
    server's offset (no restart from 0), and the bytes arrive exact."""
    clip = video(24 * QUANTUM + 999)
    emulator.inject("PUT", "/upload/", "delay", delay=0.25, times=1000)
    cmd = [sys.executable, "-m", "vidpipe.cli", "upload", str(clip), "--lesson", "1"]
    cmd += ["--chunk-size", "256KiB", "--json"]

    def going() -> bool:
        rows = journal_rows(env)
        return bool(rows) and rows[0].confirmed_bytes >= 4 * QUANTUM

    assert kill_when(cmd, going), "the transfer never got going"
    held_at_kill, _ = emulator.received(the_upload(emulator))
    assert 0 < held_at_kill < clip.stat().st_size

    doc = rerun_resumes_exactly(cmd, env, emulator, clip)
    # The server may have taken a request already in flight at the kill: at least that much.
    assert held_at_kill <= doc["resumed_from"] < clip.stat().st_size


def test_second_upload_to_same_target_refused_at_once(
    env: Platform, emulator: Emulator, video: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    from vidpipe.locks import run_lock

    with run_lock(env.engine, "upload-lesson-1"):
        res = cli("upload", video(), "--lesson", "1")
    assert res.code == 1
    assert "another vidpipe upload to lesson 1 is running" in res.err
    assert journal_rows(env) == [] and emulator.count(path_prefix="/video/") == 0
    assert cli("upload", video(), "--lesson", "1").code == 0


def test_killed_in_the_middle_of_a_large_request_resumes_exactly(
    env: Platform, emulator: Emulator, video: Callable[..., Path]
) -> None:
    """SIGKILL while one 32 MiB request is part-way across a slow link: until the server
    answered, the journal claims no byte; the re-run asks the server, continues from what it
    kept, and the bytes arrive exact."""
    mib = 1024 * 1024
    clip = video(48 * mib + 999)
    emulator.inject("PUT", "/upload/", "slow", rate=16 * mib, times=1000)
    cmd = [sys.executable, "-m", "vidpipe", "upload", str(clip), "--lesson", "1"]
    cmd += ["--chunk-size", "32MiB", "--json"]
    journaled: list[int] = []

    def part_way_through_the_first_request() -> bool:
        if not emulator.uploads or emulator.received(the_upload(emulator))[0] < 8 * mib:
            return False
        rows = journal_rows(env)
        journaled.append(rows[0].confirmed_bytes if rows else -1)
        return True

    assert kill_when(cmd, part_way_through_the_first_request), "the first request never got going"
    # Part-way through the first request: nothing answered, so nothing journaled.
    assert journaled == [0]
    held_at_kill, _ = emulator.received(the_upload(emulator))
    assert 8 * mib <= held_at_kill < 32 * mib

    doc = rerun_resumes_exactly(cmd, env, emulator, clip)
    # The server's offset: the whole 256 KiB blocks it kept, at least what it held at the kill.
    assert doc["resumed_from"] % QUANTUM == 0
    assert held_at_kill <= doc["resumed_from"] < 32 * mib
    (row,) = journal_rows(env)
    assert row.confirmed_bytes == clip.stat().st_size
