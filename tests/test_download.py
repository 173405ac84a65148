"""`vidpipe download`: an asset's original back, end to end against the emulator, on SQLite
and PostgreSQL (the `env` fixture), through the real CLI entry point."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import Platform, Result

from vidpipe.api import Vidpipe
from vidpipe.emulator import Emulator
from vidpipe.emulator.masters import Cut
from vidpipe.fetch import TransferRetry

MiB = 1024 * 1024
FAST = TransferRetry(attempts=2, initial=0.01, maximum=0.02, jitter=0.0)


@pytest.fixture(autouse=True)
def fast_downloads(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Downloads back off for milliseconds, not seconds (the facade's public switch)."""
    options: dict[str, Any] = {"retry": TransferRetry(attempts=4, initial=0.01, maximum=0.02)}
    monkeypatch.setattr(Vidpipe, "download_defaults", options)
    return options


def seed(emulator: Emulator, env: Platform, size: int = 3 * MiB + 77, lesson: int = 1) -> str:
    """A ready asset recorded on the lesson, whose master has `size` made-up bytes."""
    (asset,) = emulator.seed_assets(1)
    emulator.master_access.set_size(asset["id"], size)
    env.set_lesson(lesson, asset["id"], asset["playback_ids"][0]["id"])
    return str(asset["id"])


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def error_lines(res: Result) -> list[str]:
    return [line for line in res.err.splitlines() if line.startswith("vidpipe: error:")]


def master_calls(emulator: Emulator) -> list[str]:
    return [p for (m, p, _s) in emulator.request_log if m == "PUT" and p.endswith("/master-access")]


def test_download_brings_the_original_back_byte_exact_and_turns_master_access_off(
    env: Platform, emulator: Emulator, vp: Callable[..., Result]
) -> None:
    asset_id = seed(emulator, env)
    res = vp("download", "--lesson", "1", "--json")
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert doc["ok"] is True and doc["target"] == {"kind": "lesson", "id": 1}
    assert doc["asset_id"] == asset_id and doc["path"] == "lesson-1.mp4"
    path = Path("lesson-1.mp4")
    assert doc["bytes"] == path.stat().st_size == 3 * MiB + 77
    assert file_digest(path) == digest(emulator.master_access.bytes(asset_id))
    assert not Path("lesson-1.mp4.part").exists()
    assert sorted(p.name for p in Path(".").iterdir()) == ["lesson-1.mp4"]
    assert emulator.assets[asset_id]["master_access"] == "none"
    assert len(master_calls(emulator)) == 2  # temporary, then none


def test_download_of_a_course_goes_to_the_path_given(
    env: Platform, emulator: Emulator, vp: Callable[..., Result], tmp_path: Path
) -> None:
    (asset,) = emulator.seed_assets(1)
    with env.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE world SET mux_preview_asset_id = :a WHERE id = 2"), {"a": asset["id"]}
        )
    target = tmp_path / "out" / "trailer.mp4"
    target.parent.mkdir()
    res = vp("download", "--course", "2", "-o", target)
    assert res.code == 0, res.err
    assert target.read_bytes() == emulator.master_access.bytes(asset["id"])
    assert "course 2" in res.out and str(target) in res.out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--lesson", "99"], "does not exist"),
        (["--lesson", "2"], "has no video"),
        (["--lesson", "1", "-o", "taken.mp4"], "already exists"),
        (["--lesson", "1", "-o", "no-such-folder/x.mp4"], "does not exist"),
        (["--lesson", "1", "--course", "1"], "not both"),
    ],
)
def test_bad_input_exits_2_before_anything_changes_on_mux(
    env: Platform,
    emulator: Emulator,
    vp: Callable[..., Result],
    args: list[str],
    message: str,
) -> None:
    seed(emulator, env)
    Path("taken.mp4").write_bytes(b"mine")
    before = len(emulator.request_log)
    res = vp("download", *args, "--json")
    assert res.code == 2, res.err
    assert message in res.err and res.out == ""
    assert len(res.err.strip().splitlines()) == 1
    assert emulator.request_log[before:] == []  # not even whoami
    assert Path("taken.mp4").read_bytes() == b"mine"


def test_force_replaces_an_existing_file(
    env: Platform, emulator: Emulator, vp: Callable[..., Result]
) -> None:
    asset_id = seed(emulator, env)
    Path("lesson-1.mp4").write_bytes(b"old")
    res = vp("download", "--lesson", "1", "--force")
    assert res.code == 0, res.err
    assert Path("lesson-1.mp4").read_bytes() == emulator.master_access.bytes(asset_id)


def test_a_cut_connection_mid_body_resumes_in_the_same_run(
    env: Platform, emulator: Emulator, vp: Callable[..., Result]
) -> None:
    asset_id = seed(emulator, env, size=4 * MiB)
    emulator.masters.faults.plan = [Cut(MiB + 11)]
    res = vp("download", "--lesson", "1", "--json")
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert doc["transfer"]["retries"] == 1 and doc["transfer"]["restarts"] == 0
    ranges = [r for (r, _ir, _s) in emulator.masters.log]
    assert ranges == [None, f"bytes={MiB + 11}-"]
    assert file_digest(Path("lesson-1.mp4")) == digest(emulator.master_access.bytes(asset_id))


def test_a_server_that_ignores_range_is_detected_and_the_file_restarted(
    env: Platform, emulator: Emulator, vp: Callable[..., Result]
) -> None:
    asset_id = seed(emulator, env, size=3 * MiB)
    faults = emulator.masters.faults
    faults.plan, faults.ignore_range = [Cut(MiB)], True
    res = vp("download", "--lesson", "1", "--json")
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert doc["transfer"]["restarts"] == 1
    assert [(r, s) for (r, _ir, s) in emulator.masters.log] == [(None, 200), (f"bytes={MiB}-", 200)]
    path = Path("lesson-1.mp4")
    assert path.stat().st_size == 3 * MiB  # never appended to
    assert file_digest(path) == digest(emulator.master_access.bytes(asset_id))


def test_a_source_changed_between_runs_starts_over(
    env: Platform,
    emulator: Emulator,
    vp: Callable[..., Result],
    fast_downloads: dict[str, Any],
) -> None:
    asset_id = seed(emulator, env, size=4 * MiB)
    fast_downloads["retry"] = FAST
    emulator.masters.faults.plan = [Cut(2 * MiB), *[503] * 9]
    failed = vp("download", "--lesson", "1")
    assert failed.code == 1
    assert error_lines(failed) == [error_lines(failed)[0]]
    assert "re-run to resume" in error_lines(failed)[0]
    assert Path("lesson-1.mp4.part").stat().st_size == 2 * MiB
    assert emulator.assets[asset_id]["master_access"] == "none"  # turned off after a failure
    emulator.masters.faults.plan.clear()
    emulator.master_access.change(asset_id, "a new source")
    res = vp("download", "--lesson", "1", "--json")
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert doc["transfer"]["resumed_from"] == 2 * MiB and doc["transfer"]["restarts"] == 1
    assert emulator.masters.log[-1][1] is not None  # asked with If-Range, got 200
    new = emulator.master_access.bytes(asset_id)
    assert file_digest(Path("lesson-1.mp4")) == digest(new)


def test_master_never_ready_times_out_with_exit_1_and_access_off(
    env: Platform, emulator: Emulator, vp: Callable[..., Result]
) -> None:
    asset_id = seed(emulator, env)
    emulator.master_access.ready_after = float("inf")
    started = time.monotonic()
    res = vp("download", "--lesson", "1", "--timeout", "2s")
    assert res.code == 1
    assert time.monotonic() - started < 20
    assert "not ready" in res.err and "Traceback" not in res.err
    assert emulator.assets[asset_id]["master_access"] == "none"
    assert not Path("lesson-1.mp4").exists()


def _mount_tmpfs(where: Path, options: str) -> bool:
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True
    )
    return done.returncode == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (needs the right to mount: skipped elsewhere; the injected ENOSPC of
    test_fetch covers the same code everywhere)."""
    where = tmp_path / "small"
    if not _mount_tmpfs(where, "size=1m"):
        pytest.skip("cannot mount a tmpfs here")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_disk_is_one_line_exit_1_and_the_part_is_kept(
    env: Platform, emulator: Emulator, vp: Callable[..., Result], small_disk: Path
) -> None:
    asset_id = seed(emulator, env, size=3 * MiB)
    res = vp("download", "--lesson", "1", "-o", small_disk / "x.mp4")
    assert res.code == 1
    (line,) = error_lines(res)
    assert "no space left" in line
    part = small_disk / "x.mp4.part"
    assert part.exists() and 0 < part.stat().st_size <= MiB
    assert not (small_disk / "x.mp4").exists()
    assert emulator.assets[asset_id]["master_access"] == "none"


def test_an_unwritable_folder_fails_before_mux_is_asked(
    env: Platform, emulator: Emulator, vp: Callable[..., Result], tmp_path: Path
) -> None:
    seed(emulator, env)
    where = tmp_path / "ro"
    if not _mount_tmpfs(where, "size=1m,ro"):
        pytest.skip("cannot mount a read-only tmpfs here")
    try:
        res = vp("download", "--lesson", "1", "-o", where / "x.mp4")
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
    assert res.code == 1 and "cannot write" in res.err
    assert master_calls(emulator) == []


def _spawn_download(extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "vidpipe", "download", "--lesson", "1", "--json", *extra]


def test_kill_9_mid_download_then_a_rerun_resumes_at_the_partial_size(
    env: Platform, emulator: Emulator
) -> None:
    asset_id = seed(emulator, env, size=8 * MiB)
    emulator.masters.faults.rate = 2 * MiB  # about 4 s for the file: time to kill it
    part = Path("lesson-1.mp4.part")
    proc = subprocess.Popen(
        _spawn_download([]),
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if part.exists() and part.stat().st_size > MiB:
                break
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    partial = part.stat().st_size
    assert MiB < partial < 8 * MiB
    emulator.masters.faults.rate = None
    done = subprocess.run(
        _spawn_download([]), env=os.environ.copy(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["transfer"]["resumed_from"] == partial
    assert doc["transfer"]["bytes_received"] == 8 * MiB - partial
    assert emulator.masters.log[-1][0] == f"bytes={partial}-"
    assert file_digest(Path("lesson-1.mp4")) == digest(emulator.master_access.bytes(asset_id))
    assert emulator.assets[asset_id]["master_access"] == "none"


@pytest.mark.parametrize("flags", [[], ["--json"], ["--debug"], ["--debug", "--json"]])
def test_the_master_url_never_reaches_output_logs_or_the_database(
    env: Platform,
    emulator: Emulator,
    vp: Callable[..., Result],
    caplog: pytest.LogCaptureFixture,
    fast_downloads: dict[str, Any],
    flags: list[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    seed(emulator, env, size=2 * MiB)
    fast_downloads["retry"] = FAST
    debug = [f for f in flags if f == "--debug"]
    rest = [f for f in flags if f != "--debug"]
    emulator.masters.faults.plan = [Cut(MiB)]
    ok = vp(*debug, "download", "--lesson", "1", *rest)
    emulator.masters.faults.plan = [Cut(MiB), *[503] * 9]
    failed = vp(*debug, "download", "--lesson", "1", "-o", "again.mp4", *rest)
    assert ok.code == 0 and failed.code == 1
    links = emulator.masters.links_handed_out()
    assert len(links) >= 2
    tokens = [link.split("/master/")[1].split("/")[0] for link in links]
    seen = ok.out + ok.err + failed.out + failed.err
    seen += "\n".join(r.getMessage() for r in caplog.records)
    with env.engine.connect() as conn:
        for table in sa.inspect(conn).get_table_names():
            for row in conn.execute(sa.text(f"SELECT * FROM {table}")):
                seen += repr(tuple(row))
    assert "/master/" not in seen
    assert not any(token in seen for token in tokens)
