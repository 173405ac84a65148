"""The whole loop with real processes: `vidpipe upload --no-wait`, then only the emulator's
signed webhooks to a running `vidpipe webhook serve`, leave the row with the right IDs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from conftest import WEBHOOK_SECRET, Platform, Result

from vidpipe.emulator import Emulator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(env: Platform) -> Iterator[str]:
    """`vidpipe webhook serve` as a real process, without Mux credentials (trusts signed
    events), on a free port; stopped with SIGTERM."""
    port = free_port()
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("MUX_TOKEN")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidpipe.cli", "webhook", "serve", "--port", str(port)],
        env=child_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("webhook serve did not start: " + (proc.stderr.read() if proc.stderr else ""))
    yield url
    proc.terminate()
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert WEBHOOK_SECRET not in err


@contextmanager
def emulator_sending_to(
    served: str, monkeypatch: pytest.MonkeyPatch, *, ready_after: float
) -> Iterator[Emulator]:
    """An emulator whose signed webhooks go to `served`, with MUX_BASE_URL pointing at it."""
    hooks = served + "/webhooks/mux"
    with Emulator(ready_after=ready_after, webhook_url=hooks, webhook_secret=WEBHOOK_SECRET) as emu:
        monkeypatch.setenv("MUX_BASE_URL", emu.base_url)
        yield emu


def test_no_wait_upload_recorded_by_webhooks_alone(
    env: Platform,
    served: str,
    video: Callable[..., Path],
    cli: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with emulator_sending_to(served, monkeypatch, ready_after=0.5) as emu:
        res = cli("upload", video(), "--lesson", "3", "--no-wait")
        assert res.code == 0, res.err
        row = env.lesson(3)
        assert row is not None and row.mux_asset_id is None  # not recorded by upload
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            row = env.lesson(3)
            # serve commits the row before it answers, and the emulator logs a delivery once
            # answered: wait for both.
            if (
                row is not None
                and row.mux_asset_id
                and ("video.asset.ready", 200) in (emu.webhook_log)
            ):
                break
            time.sleep(0.1)
        (asset,) = emu.assets.values()
        assert row is not None
        assert row.mux_asset_id == asset["id"]
        assert row.mux_playback_id == asset["playback_ids"][0]["id"]
        assert ("video.asset.ready", 200) in emu.webhook_log
        # The journal entry is finished too: nothing is left unfinished for sync.
        status = cli("status", "--json")
        assert status.code == 0, status.err
        (entry,) = json.loads(status.out)["targets"]
        assert entry["target"] == {"kind": "lesson", "id": 3} and entry["upload"] is None


def test_fix_settings_changes_are_announced_and_serve_acknowledges_each_without_a_row_change(
    env: Platform,
    served: str,
    cli: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with emulator_sending_to(served, monkeypatch, ready_after=0.3) as emu:
        asset = emu.seed_asset(passthrough='{"lesson_id": 1}', meta={"title": "Lesson 1"})
        env.set_lesson(1, asset["id"], asset["playback_ids"][0]["id"])
        before = env.dump()
        monkeypatch.setenv("VIDPIPE_CAPTIONS", "en")
        monkeypatch.setenv("VIDPIPE_STATIC_RENDITIONS", "highest")
        res = cli("sync", "--fix-settings", "--json")
        assert res.code == 0, res.err
        wanted = {
            "video.asset.track.created",
            "video.asset.track.ready",
            "video.asset.static_rendition.created",
            "video.asset.static_rendition.ready",
        }
        deadline = time.monotonic() + 20
        while not wanted <= {t for t, code in emu.webhook_log if code == 200}:
            assert time.monotonic() < deadline, emu.webhook_log
            time.sleep(0.1)
        assert emu.wait_webhooks()
        assert all(code == 200 for _, code in emu.webhook_log), emu.webhook_log
    assert env.dump() == before  # acknowledged, and nothing a row records changed
