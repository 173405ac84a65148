"""The emulator can pretend Mux's clock is off (the `Date` of its answers and the time in
its webhook signatures), and its webhooks can be pointed at a new URL while it runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import ClassVar

import httpx
import pytest

from vidpipe.emulator import Emulator


def _server_time(response: httpx.Response) -> float:
    return parsedate_to_datetime(response.headers["Date"]).timestamp()


def test_the_date_header_follows_the_skewed_clock(emu: Emulator, http: httpx.Client) -> None:
    assert abs(_server_time(http.get("/system/v1/whoami")) - time.time()) < 2

    emu.set_clock_skew(-600)

    assert abs(_server_time(http.get("/system/v1/whoami")) - (time.time() - 600)) < 2
    assert abs(_server_time(http.get("/video/v1/assets")) - (time.time() - 600)) < 2


class _Catcher(BaseHTTPRequestHandler):
    signatures: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        _Catcher.signatures.append(self.headers["Mux-Signature"])
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def catcher() -> Iterator[str]:
    _Catcher.signatures = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Catcher)
    Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_webhooks_go_to_a_url_set_while_running_signed_with_the_skewed_clock(
    catcher: str,
) -> None:
    with Emulator(clock_skew=3600) as emu:
        emu.seed_asset()  # seeding sends nothing, before or after
        emu.send_webhooks_to(catcher, "whsec")
        with httpx.Client(base_url=emu.base_url, auth=("id", "secret")) as http:
            http.post("/video/v1/uploads", json={"new_asset_settings": {}})
        assert emu.wait_webhooks(5)

    assert len(_Catcher.signatures) == 1
    stamp = int(re.match(r"t=(\d+),", _Catcher.signatures[0]).group(1))  # type: ignore[union-attr]
    assert abs(stamp - (time.time() + 3600)) < 5


def test_vidpipe_emulator_takes_a_clock_skew() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidpipe", "emulator", "--port", "0", "--clock-skew", "-900"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        url = re.search(r"http://\S+", line).group(0)  # type: ignore[union-attr]
        answer = httpx.get(url + "/system/v1/whoami", auth=("id", "secret"), timeout=10)
        assert abs(_server_time(answer) - (time.time() - 900)) < 2
    finally:
        proc.terminate()
        proc.wait(10)
