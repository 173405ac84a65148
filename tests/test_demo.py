"""`vidpipe demo` end to end: the real command in a subprocess (as `make demo` runs it), plus
cheaper in-process runs for set-up, clean-up and failure behaviour."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Result
from sqlmodel import Session

from vidpipe import demo
from vidpipe.db import Lesson, World, make_engine
from vidpipe.media import check_video_file
from vidpipe.samples import write_sample_video

COMMANDS = ("vidpipe db init", "vidpipe upload", "vidpipe status", "vidpipe verify", "vidpipe sync")


def _clean_env(tmp_path: Path) -> dict[str, str]:
    """The caller's environment minus anything that would point vidpipe elsewhere."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MUX_", "DATABASE_URL", "VIDPIPE_")) and k != "NO_COLOR"
    }
    env["HOME"] = str(tmp_path)
    return env


def _recorded(db: Path) -> dict[str, tuple[str | None, str | None]]:
    """The video IDs the demo's database holds for lessons 1, 2 and course 1."""
    engine = make_engine(f"sqlite:///{db}")
    try:
        with Session(engine) as s:
            l1, l2, c1 = s.get(Lesson, 1), s.get(Lesson, 2), s.get(World, 1)
            assert l1 is not None and l2 is not None and c1 is not None
            return {
                "lesson 1": (l1.mux_asset_id, l1.mux_playback_id),
                "lesson 2": (l2.mux_asset_id, l2.mux_playback_id),
                "course 1": (c1.mux_preview_asset_id, c1.mux_preview_playback_id),
            }
    finally:
        engine.dispose()


def test_demo_end_to_end_piped(tmp_path: Path) -> None:
    """What a newcomer runs: exit 0, plain text, every command shown, under a minute."""
    workdir = tmp_path / "demo"
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "vidpipe.cli", "demo", "--dir", str(workdir)],
        cwd=tmp_path,
        env=_clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert elapsed < 60
    both = proc.stdout + proc.stderr
    assert "\x1b[" not in both
    assert "Traceback" not in both
    for command in COMMANDS:
        assert f"$ {command}" in proc.stdout
    # Progress went to stderr as plain lines, ending at 100%.
    assert "(100%)" in proc.stderr
    for target, (asset, playback) in _recorded(workdir / demo.DB_FILE).items():
        assert asset and playback, target


@pytest.fixture
def fast_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same story without the pauses that make it watchable, for in-process tests."""
    monkeypatch.setattr(demo, "VIDEO_SIZE", 3 * 256 * 1024 + 100)
    monkeypatch.setattr(demo, "CHUNK_SIZE", "256KiB")
    monkeypatch.setattr(demo, "CHUNK_DELAY", 0.0)
    monkeypatch.setattr(demo, "READY_AFTER", 0.0)
    monkeypatch.setenv("NO_COLOR", "1")


def test_demo_in_process_restores_environment_and_reuses_dir(
    cli: Callable[..., Result], fast_demo: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", "sqlite:///caller.db")
    monkeypatch.delenv("MUX_BASE_URL", raising=False)
    workdir = tmp_path / "demo"
    workdir.mkdir()
    (workdir / "notes.txt").write_text("mine")
    before = dict(os.environ)

    for _ in range(2):  # a second run replaces the first run's files and succeeds again
        result = cli("demo", "--dir", workdir)
        assert result.code == 0, result.err
        assert "verify found drift" in result.out
        assert all(result.out.count(f"$ {c}") >= 1 for c in COMMANDS)

    assert dict(os.environ) == before
    assert Path.cwd() == tmp_path
    assert (workdir / "notes.txt").read_text() == "mine"
    assert all(a and p for a, p in _recorded(workdir / demo.DB_FILE).values())


def test_demo_temporary_folder_is_removed(
    cli: Callable[..., Result], fast_demo: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    result = cli("demo")
    assert result.code == 0, result.err
    assert list(tmp_path.glob("vidpipe-demo-*")) == []


def test_demo_step_failure_names_the_step(
    cli: Callable[..., Result], fast_demo: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A blank token is "not set": the first Mux command fails with exit 2.
    monkeypatch.setattr(demo, "DEMO_TOKEN_ID", "")
    result = cli("demo", "--dir", tmp_path / "demo")
    assert result.code == 1
    assert f"demo step `vidpipe upload {tmp_path / 'demo' / 'sample.mp4'} --lesson 1" in result.err
    assert "Traceback" not in result.err


def test_demo_dir_that_is_a_file_is_bad_usage(cli: Callable[..., Result], tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    result = cli("demo", "--dir", target)
    assert result.code == 2
    assert target.read_text() == "x"


def test_sample_video_is_an_mp4_vidpipe_accepts(tmp_path: Path) -> None:
    path = write_sample_video(tmp_path / "s.mp4", 1_000_000)
    assert path.stat().st_size == 1_000_000
    assert check_video_file(path).container == "mp4/mov"
    # Top-level boxes tile the file exactly: ftyp, moov, mdat.
    data, boxes, at = path.read_bytes(), [], 0
    while at < len(data):
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        boxes.append(kind)
        at += size
    assert at == len(data)
    assert boxes == [b"ftyp", b"moov", b"mdat"]
    assert data[data.index(b"mvhd") - 4 :][:4] == struct.pack(">I", 108)
