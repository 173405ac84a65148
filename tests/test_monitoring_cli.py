"""`vidpipe webhook serve --metrics-port … --log-format json` through the real command."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
from conftest import Platform
from test_monitoring_serve import SECRET, deliver, scrape, signed, value

from vidpipe.emulator import Emulator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_serve_command_takes_a_metrics_port_and_json_logs(
    platform: Platform, tmp_path: Path
) -> None:
    port, metrics_port = free_port(), free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("MUX_", "DATABASE_", "VIDPIPE_"))
    }
    env.update(DATABASE_URL=platform.url, MUX_WEBHOOK_SECRET=SECRET, PYTHONUNBUFFERED="1")
    args = ["webhook", "serve", "--port", str(port), "--metrics-port", str(metrics_port)]
    with Emulator(ready_after=0.0) as emu:
        # with a Mux token: the database is pinned at start, and that is said in JSON too
        env.update(MUX_BASE_URL=emu.base_url, MUX_TOKEN_ID="id", MUX_TOKEN_SECRET="secret")
        proc = subprocess.Popen(
            [sys.executable, "-m", "vidpipe", *args, "--log-format", "json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tmp_path,
        )
        try:
            assert proc.stderr is not None
            starting = [json.loads(proc.stderr.readline()) for _ in range(4)]
            messages = " | ".join(r["message"] for r in starting)
            assert "now belongs to Mux environment" in messages
            assert f"listening on http://127.0.0.1:{port}/" in messages
            assert f"127.0.0.1:{metrics_port}/metrics" in messages
            body = b"not json"
            assert deliver(f"http://127.0.0.1:{port}", body, signed(body)) == 400
            m = scrape(f"http://127.0.0.1:{metrics_port}")
            assert value(m, "vidpipe_webhook_rejected_total", reason="malformed") == 1
            assert httpx.get(f"http://127.0.0.1:{port}/metrics").status_code == 404
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err
    assert out == ""
    records = [json.loads(line) for line in err.splitlines()]
    assert [r["status"] for r in records if "status" in r] == [400]
    assert "stopped (SIGTERM)" in records[-1]["message"]
