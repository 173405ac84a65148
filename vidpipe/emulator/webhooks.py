"""Webhook delivery: Mux-shaped, signed events POSTed from one background thread."""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

DEFAULT_ENVIRONMENT = {"name": "Development", "id": "emu-env-1"}
"""The environment of an `Emulator` built without `environment_id`/`environment_name`."""
ATTEMPTS = 4
BACKOFF = (0.1, 0.3, 0.9)
ATTEMPT_TIMEOUT = 5.0


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The `Mux-Signature` header value for `body`: `t=<unix>,v1=<hex hmac-sha256>`."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def envelope(
    event_type: str,
    object_type: str,
    object_id: str,
    data: dict[str, Any],
    environment: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A Mux webhook event around `data`, from `environment` ({"name", "id"}; by default
    the one a default `Emulator` is in)."""
    return {
        "type": event_type,
        "id": str(uuid.uuid4()),
        "created_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "object": {"type": object_type, "id": object_id},
        "environment": dict(environment or DEFAULT_ENVIRONMENT),
        "data": data,
        "attempts": [],
    }


class WebhookSender:
    """Queues events and delivers them in order, retrying failures a few times.

    Every attempt is appended to `log` as (event type, HTTP status or error text).
    """

    def __init__(self, url: str, secret: str, clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.secret = secret
        self._clock = clock  # signatures carry the sender's (possibly skewed) time
        self.log: list[tuple[str, int | str]] = []
        self.sent: list[dict[str, Any]] = []
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="emulator-webhooks", daemon=True)
        self._stopping = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def enqueue(self, event: dict[str, Any]) -> None:
        """Schedule `event` for delivery; never blocks."""
        self._queue.put(event)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until every queued event was delivered or given up; False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def stop(self) -> None:
        """Stop after the delivery in progress; undelivered events are dropped."""
        self._stopping.set()
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout=ATTEMPT_TIMEOUT + 1)

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            try:
                if event is None or self._stopping.is_set():
                    if event is None:
                        return
                    continue
                self._deliver(event)
            finally:
                self._queue.task_done()

    def _deliver(self, event: dict[str, Any]) -> None:
        body = json.dumps(event, separators=(",", ":")).encode()
        for attempt in range(ATTEMPTS):
            request = urllib.request.Request(
                self.url,
                data=body,
                method="POST",
                headers={
                    "Content-Type": "application/json",
                    "Mux-Signature": sign(self.secret, body, int(self._clock())),
                    "User-Agent": "Mux Webhooks (vidpipe emulator)",
                },
            )
            outcome: int | str
            try:
                with urllib.request.urlopen(request, timeout=ATTEMPT_TIMEOUT) as response:
                    outcome = response.status
            except urllib.error.HTTPError as exc:
                outcome = exc.code
            except (OSError, ValueError) as exc:
                outcome = f"{type(exc).__name__}: {exc}"
            self.log.append((event["type"], outcome))
            if isinstance(outcome, int) and 200 <= outcome < 300:
                self.sent.append(event)
                return
            if attempt < len(BACKOFF) and not self._stopping.wait(BACKOFF[attempt]):
                continue
            return
