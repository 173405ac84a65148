"""`vidpipe.webhooks.serve.serve()` run for real, in a process of its own."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

SERVE = """
import sys
from vidpipe.db import make_engine
from vidpipe.webhooks.serve import create_app, serve
app = create_app(
    make_engine(sys.argv[1]), sys.argv[2], log_format=sys.argv[3],
    log=lambda line: print(line, flush=True),
)
serve(app, port=0, metrics_port=0 if sys.argv[4] == "metrics" else None)
"""


class ServeProcess:
    """The real `serve()` (with its production limits, and a metrics port with `metrics`) in a
    process of its own, on free ports; its log lines are collected as they come."""

    def __init__(
        self, db_url: str, secret: str, *, log_format: str = "text", metrics: bool = False
    ) -> None:
        self.log_format = log_format
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVE, db_url, secret, log_format, "metrics" * metrics],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.errors: list[str] = []
        # One reader per pipe, for the process's whole life: a second reader of stdout (such as
        # communicate() in stop) would swallow the last lines before this one sees them.
        self._readers = [
            threading.Thread(target=self._read, daemon=True),
            threading.Thread(target=self._read_errors, daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        self.url = self._address("listening on ")
        self.metrics_url = (
            self._address("metrics and health checks on ").removesuffix("/metrics")
            if metrics
            else ""
        )

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def _read_errors(self) -> None:
        assert self.proc.stderr is not None
        self.errors.extend(self.proc.stderr)

    def message(self, line: str) -> str:
        return json.loads(line)["message"] if self.log_format == "json" else line

    def _address(self, marker: str) -> str:
        while True:
            try:
                line = self.lines.get(timeout=20)
            except queue.Empty:
                err = "".join(self.errors)
                raise AssertionError(f"serve did not say {marker!r}: {err}") from None
            self.seen.append(line)
            text = self.message(line)
            if marker in text:
                return text.split(marker)[1].split()[0].rstrip("/")

    def drain(self, settle: float = 0.3) -> list[str]:
        """Every line logged so far (waiting `settle` s for stragglers)."""
        time.sleep(settle)
        while True:
            try:
                self.seen.append(self.lines.get_nowait())
            except queue.Empty:
                return self.seen

    def stop(self) -> tuple[int, str]:
        """SIGTERM, then wait for the exit and for both pipes to reach their end, so that
        every line the process wrote is in `lines` when this returns."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        for reader in self._readers:
            reader.join(timeout=10)
        return self.proc.returncode, "".join(self.errors)
