"""vidpipe as a library: `vidpipe.Vidpipe` does the job with no CLI, and its results' JSON is
exactly what the CLI's `--json` prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Platform, Result

import vidpipe
from vidpipe.emulator import Emulator


def test_a_script_using_only_the_facade_uploads_verifies_and_syncs(
    env: Platform, emulator: Emulator, video: Callable[..., Path], tmp_path: Path
) -> None:
    clip = video()
    script = textwrap.dedent(
        f"""
        import json, vidpipe
        with vidpipe.Vidpipe.from_env() as vp:
            up = vp.upload({str(clip)!r}, lesson=1)
            out = {{"upload": up.as_json(), "verify": vp.verify().as_json(),
                    "sync": vp.sync().as_json(), "status": vp.status().as_json()}}
        print(json.dumps(out))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["upload"]["state"] == "ready"
    row = env.lesson(1)
    assert row is not None
    assert row.mux_asset_id == out["upload"]["asset_id"]
    assert out["verify"]["ok"] is True and out["verify"]["drift"] == []
    assert out["sync"]["ok"] is True
    assert [t["target"] for t in out["status"]["targets"]] == [{"kind": "lesson", "id": 1}]


def test_library_results_print_the_same_json_as_the_cli(
    env: Platform, emulator: Emulator, video: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    assert cli("upload", video(), "--lesson", "1").code == 0
    emulator.seed_asset(passthrough='{"lesson_id": 2}')  # drift: a missed webhook
    with vidpipe.Vidpipe.from_env() as vp:
        lib_status = vp.status().as_json()
        lib_verify = vp.verify().as_json()
        lib_dry = vp.sync(dry_run=True).as_json()
    for args, expected in (
        (("status",), lib_status),
        (("verify",), lib_verify),
        (("sync", "--dry-run"), lib_dry),
    ):
        res = cli(*args, "--json")
        assert json.loads(res.out) == expected, args
    assert lib_verify["ok"] is False and lib_verify["drift"][0]["kind"] == "unrecorded"


def test_library_errors_are_vidpipe_errors_that_name_no_option(
    env: Platform, video: Callable[..., Path]
) -> None:
    with vidpipe.Vidpipe.from_env() as vp:
        vp.upload(video(), lesson=1)
        with pytest.raises(vidpipe.TargetHasVideo) as has_video:
            vp.upload(video(name="other.mp4", seed=1), lesson=1)
        with pytest.raises(vidpipe.UsageError) as both:
            vp.upload(video(), lesson=1, course=1)
        with pytest.raises(vidpipe.TargetNotFound):
            vp.verify(lesson=99)
    assert has_video.value.asset_id == env.lesson(1).mux_asset_id  # type: ignore[union-attr]
    for exc in (has_video.value, both.value):
        assert "--" not in str(exc)


def test_importing_vidpipe_loads_no_heavy_library() -> None:
    code = (
        "import sys, vidpipe; "
        "heavy = [m for m in ('sqlalchemy', 'httpx', 'mux_python', 'rich', 'typer') "
        "if m in sys.modules]; print(heavy)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr


def test_a_sqlite_upload_path_loads_no_postgresql_dialect() -> None:
    # The PostgreSQL dialect costs 17 ms of every command's start; the core loads it only
    # for a PostgreSQL database (the engine does, and records' insert does when it runs).
    code = (
        "import sys, vidpipe.api, vidpipe.pipeline, vidpipe.records, vidpipe.journal; "
        "print('sqlalchemy.dialects.postgresql' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "False", proc.stdout + proc.stderr
