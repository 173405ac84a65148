"""Helpers for driving the Mux emulator over real sockets in tests."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import mux_python

from vidpipe.emulator import Emulator

KIB = 1024
BLOCK = 256 * KIB


def video_bytes(size: int, seed: int = 0) -> bytes:
    """`size` bytes that start like an MP4 file (an `ftyp` box) and are otherwise varied."""
    head = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
    out = bytearray(head)
    counter = seed
    while len(out) < size:
        out += hashlib.sha256(counter.to_bytes(8, "big")).digest() * 64
        counter += 1
    return bytes(out[:size])


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def mux_config(base_url: str, user: str = "id", password: str = "secret") -> Any:
    """A mux-python Configuration pointed at the emulator."""
    cfg = mux_python.Configuration()
    cfg.host = base_url
    cfg.username = user
    cfg.password = password
    cfg.client_side_validation = False
    return cfg


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll `predicate` until it is true; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def raw_request(
    url: str,
    method: str,
    headers: dict[str, str],
    body: bytes = b"",
    *,
    send_only: int | None = None,
) -> tuple[int, dict[str, str], bytes] | None:
    """Send one HTTP/1.1 request on a fresh socket.

    With `send_only`, send just that many bytes of the body and close the connection
    (a client cut mid-chunk); returns None then. Otherwise returns (status, headers, body).
    """
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    try:
        lines = [f"{method} {parts.path} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        if send_only is not None:
            sock.sendall(body[:send_only])
            return None
        sock.sendall(body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    finally:
        sock.close()
    head, _, payload = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    parsed = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), parsed, payload


class WebhookReceiver:
    """A tiny HTTP server that records POSTed webhooks; answers `statuses` in turn, then 200."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.statuses = list(statuses or [])
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                if status == 200:
                    receiver.received.append((dict(self.headers), body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]

    @contextmanager
    def running(self) -> Iterator[WebhookReceiver]:
        self._thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()


def mux_api(api_class: Any, base_url: str, user: str = "id", password: str = "secret") -> Any:
    """An instance of a mux-python API class (AssetsApi, ...) pointed at the emulator."""
    return api_class(mux_python.ApiClient(mux_config(base_url, user, password)))


class FileServer:
    """A tiny HTTP server on loopback serving `files` (path -> bytes); 404 for anything else.

    `requests` records the paths asked for, in order.
    """

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = dict(files)
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                body = server.files.get(self.path)
                self.send_response(404 if body is None else 200)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    @contextmanager
    def running(self) -> Iterator[FileServer]:
        self._thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()


def refused_url(path: str = "/video.mp4") -> str:
    """An http URL on a loopback port nobody listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


def vidpipe_meta(passthrough: str | None) -> dict[str, str] | None:
    """The meta vidpipe's upload gives an asset whose passthrough is `passthrough`, for the
    rows of the `platform` fixture (`Lesson N` / `Course N`); None for another passthrough."""
    try:
        named = json.loads(passthrough or "")
    except ValueError:
        return None
    if not isinstance(named, dict) or len(named) != 1:
        return None
    ((key, row_id),) = named.items()
    kind = {"lesson_id": "lesson", "course_id": "course"}.get(key)
    if kind is None or not isinstance(row_id, int):
        return None
    return {"title": f"{kind.title()} {row_id}", "external_id": f"{kind}:{row_id}"}


class PlatformEmulator(Emulator):
    """The emulator, whose seeded assets carry the meta vidpipe's uploads give them
    (`vidpipe_meta`) unless a test gives its own: a seeded asset then looks as vidpipe made
    it, so only the drift a test sets up shows."""

    def seed_assets(  # type: ignore[override]
        self,
        n: int,
        passthrough_fn: Callable[[int], str | None] = lambda _: None,
        *args: Any,
        meta: dict[str, str] | None = None,
        asset_ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[dict[str, Any]]:
        if meta is not None:
            return super().seed_assets(
                n, passthrough_fn, *args, meta=meta, asset_ids=asset_ids, **kwargs
            )
        out: list[dict[str, Any]] = []
        for i in range(n):
            passthrough = passthrough_fn(i)
            out += super().seed_assets(
                1,
                lambda _, p=passthrough: p,  # type: ignore[misc]
                *args,
                meta=vidpipe_meta(passthrough),
                asset_ids=[asset_ids[i]] if asset_ids else None,
                **kwargs,
            )
        return out
