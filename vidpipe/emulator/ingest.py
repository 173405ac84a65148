"""Ingest from a URL: the emulator fetches the video itself, as Mux does, in the background."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from vidpipe.emulator.gcs import HEAD_BYTES

FETCH_TIMEOUT = 30.0
READ_SIZE = 1024 * 1024
USER_AGENT = "Mux Ingest (vidpipe emulator)"


@dataclass(frozen=True)
class Fetched:
    """What a fetch got: the size and first bytes, or why it failed (`error`)."""

    size: int = 0
    head: bytes = b""
    error: str | None = None


def fetch(url: str, timeout: float = FETCH_TIMEOUT) -> Fetched:
    """GET `url`, streaming the body: its size and first `HEAD_BYTES` bytes, never all of it."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            head, size = b"", 0
            while chunk := response.read(READ_SIZE):
                if len(head) < HEAD_BYTES:
                    head += chunk[: HEAD_BYTES - len(head)]
                size += len(chunk)
            return Fetched(size=size, head=head)
    except urllib.error.HTTPError as exc:
        return Fetched(error=f"The input URL answered HTTP {exc.code}")
    except urllib.error.URLError as exc:
        return Fetched(error=f"The input URL could not be fetched: {exc.reason}")
    except (OSError, ValueError) as exc:
        return Fetched(error=f"The input URL could not be fetched: {exc}")


class Ingestor:
    """Runs one daemon thread per fetch and hands each result to `on_done(asset_id, fetched)`."""

    def __init__(self, on_done: Callable[[str, Fetched], None]) -> None:
        self._on_done = on_done
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()

    def start(self, asset_id: str, url: str) -> None:
        thread = threading.Thread(
            target=self._run, args=(asset_id, url), name="emulator-ingest", daemon=True
        )
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def wait_idle(self, timeout: float) -> bool:
        """Wait for the fetches in flight; False if some are still running after `timeout`."""
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)

    def _run(self, asset_id: str, url: str) -> None:
        try:
            self._on_done(asset_id, fetch(url))
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())
