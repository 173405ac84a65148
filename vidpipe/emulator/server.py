"""A local stand-in for the Mux Video API and its GCS upload URLs, over real HTTP.

Built on the standard library's threading HTTP server so that tests keep raw-socket
control: faults can cut a connection mid-body or reset it. See `Emulator` for the
in-process API and `run_emulator` for the blocking entry point of `vidpipe emulator`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import io
import json
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from vidpipe.emulator.faults import Fault, FaultPlan, RateLimiter
from vidpipe.emulator.gcs import BLOCK, BlockWriter, RangeError, parse_content_range
from vidpipe.emulator.ingest import Ingestor
from vidpipe.emulator.masters import MasterAccess, MasterHost
from vidpipe.emulator.store import (
    NOT_FOUND,
    ApiError,
    Store,
    Upload,
    parse_limit,
    parse_page,
)
from vidpipe.emulator.webhooks import DEFAULT_ENVIRONMENT, WebhookSender, envelope

READ_SIZE = 1024 * 1024
SLOW_READ_SIZE = 64 * 1024  # reads of an upload body under a "slow" fault
MAX_JSON_BODY = 1024 * 1024
MAX_DRAIN = 64 * 1024 * 1024
TOO_MANY_REQUESTS = {"errors": ["Too many requests, retry later."]}
WRITING_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})
ORGANIZATION = {"organization_id": "emu-org-1", "organization_name": "Emulator Organization"}
TOKEN_NAME = "vidpipe emulator token"
PERMISSIONS = ("video:read", "video:write", "system:read", "system:write", "data:read")
NO_RESPONSE = 0
"""Status recorded in `request_log` when the connection was closed without an answer."""


class _CutConnection(Exception):
    """The client went away mid-body, or a fault tells us to drop the connection."""


class _Body:
    """The request body, read with `Content-Length` or chunked transfer-encoding.

    `truncated` becomes True when the connection ends before the body does.
    """

    def __init__(self, rfile: io.BufferedIOBase, length: int | None, chunked: bool) -> None:
        self._rfile = rfile
        self._left = length or 0
        self._chunked = chunked
        self._chunk_left = 0
        self.done = not chunked and not self._left
        self.truncated = False
        self.received = 0

    def readinto(self, buf: memoryview) -> int:
        """Read up to len(buf) bytes; 0 at the end of the body (or of the connection)."""
        if self.done:
            return 0
        try:
            if self._chunked and not self._chunk_left and not self._next_chunk():
                return 0
            want = min(len(buf), self._chunk_left if self._chunked else self._left)
            n = self._rfile.readinto(buf[:want])
        except (OSError, ValueError):
            n = 0
        if not n:
            self.done = self.truncated = True
            return 0
        self.received += n
        if self._chunked:
            self._chunk_left -= n
            if not self._chunk_left:
                self._rfile.readline(16)
        else:
            self._left -= n
            self.done = not self._left
        return n

    def drain(self, limit: int) -> bool:
        """Discard up to `limit` bytes of what is left; True when the body is used up."""
        buf = memoryview(bytearray(min(READ_SIZE, max(limit, 1))))
        while not self.done and limit > 0:
            n = self.readinto(buf[: min(len(buf), limit)])
            limit -= n
        return self.done and not self.truncated

    def _next_chunk(self) -> bool:
        line = self._rfile.readline(1024)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            self.done = self.truncated = True
            return False
        if size == 0:
            while self._rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                pass
            self.done = True
            return False
        self._chunk_left = size
        return True


class _Server(ThreadingHTTPServer):
    """Tracks open client sockets so `stop()` can close idle keep-alive connections."""

    daemon_threads = True
    emulator: Emulator

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        self.emulator = emulator
        self._open: set[socket.socket] = set()
        self._reset: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def mark_reset(self, request: socket.socket) -> None:
        """Close this connection with a bare RST: no FIN first (see shutdown_request)."""
        with self._open_lock:
            self._reset.add(request)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
            reset = request in self._reset
            self._reset.discard(request)
        if reset:
            self.close_request(request)
        else:
            super().shutdown_request(request)

    def close_clients(self) -> None:
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "MuxEmulator/1.0"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 60
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: requests are recorded in `Emulator.request_log` instead."""

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    # ----- plumbing ------------------------------------------------------------------

    @property
    def emu(self) -> Emulator:
        return self.server.emulator

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        self._route_path = url.path
        self._query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        self._answered = False
        self._length: int | None = None
        self._extra_headers: list[tuple[str, str]] = []
        try:
            self._body = self._open_body()
            fault = self.emu._faults.take(self.command, url.path)
            if fault is not None and self._apply_fault(fault):
                return
            if url.path.startswith("/upload/"):
                self._handle_upload(url.path.removeprefix("/upload/"), fault)
            elif url.path.startswith(("/video/", "/system/")):
                self._handle_api(url.path)
            else:
                raise ApiError(404, "not_found", NOT_FOUND)
        except ApiError as exc:
            self._send_json(exc.status, exc.body())
        except _CutConnection:
            self._drop()
        except (ConnectionError, TimeoutError):
            self._drop()

    def _open_body(self) -> _Body:
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        raw = self.headers.get("Content-Length")
        length: int | None = None
        if raw is not None and not chunked:
            try:
                length = int(raw)
            except ValueError:
                length = -1
            if length < 0:
                self.close_connection = True
                raise ApiError(400, "invalid_parameters", "Invalid Content-Length")
        self._length = length
        return _Body(self.rfile, length, chunked)

    def _apply_fault(self, fault: Fault) -> bool:
        """Carry out an injected fault; True when the request is finished with."""
        if fault.kind == "delay":
            time.sleep(fault.delay)
            return False
        if fault.kind == "reset":
            self._drop(reset=True)
            return True
        if fault.kind == "cut":
            if self._route_path.startswith("/upload/") and self.command == "PUT":
                return False  # the upload handler reads `after_bytes` first
            self._drop()
            return True
        if fault.kind == "slow":
            return False  # the upload handler paces its reads; other requests run as usual
        if fault.status == 429:
            self._send_json(429, TOO_MANY_REQUESTS)
        else:
            error = ApiError(fault.status, _error_type(fault.status), "Injected fault")
            self._send_json(fault.status, error.body())
        return True

    def _drop(self, *, reset: bool = False) -> None:
        """Close the connection without an answer (RST when `reset`)."""
        self._log(NO_RESPONSE)
        self.close_connection = True
        if reset:
            with contextlib.suppress(OSError):
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
            self.server.mark_reset(self.connection)
        else:
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    def _log(self, status: int) -> None:
        if not self._answered:
            self._answered = True
            with self.emu._log_lock:
                self.emu.request_log.append((self.command, self._route_path, status))

    def _finish_body(self) -> None:
        """Make the connection reusable: drain a modest unread body, else close after."""
        if not self._body.drain(MAX_DRAIN):
            self.close_connection = True

    def _send(
        self,
        status: int,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        self._finish_body()
        self.send_response(status)
        for name, value in [*self._extra_headers, *headers]:
            self.send_header(name, value)
        if content_type:
            self.send_header("Content-Type", content_type)
        if status != 204:
            self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self._log(status)  # before the answer, so a client that got it sees it logged
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, payload: dict[str, Any] | None) -> None:
        body = b"" if payload is None else json.dumps(payload).encode()
        self._send(status, body, "application/json" if payload is not None else None)

    # ----- the Mux API ---------------------------------------------------------------

    def _handle_api(self, path: str) -> None:
        credential = self._authenticate()
        if self.emu._limiter is not None:
            quota = self.emu._limiter.take(credential, self.command)
            self._extra_headers = quota.headers()
            if not quota.allowed:
                self._send_json(429, TOO_MANY_REQUESTS)
                return
        store = self.emu._store
        parts = path.strip("/").split("/")
        method = self.command
        match parts:
            case ["system", "v1", "whoami"] if method == "GET":
                self._send_json(200, {"data": self.emu.whoami()})
            case ["video", "v1", "assets"] if method == "POST":
                data, url = store.create_asset(self._json_body())
                self.emu._ingestor.start(data["id"], url)
                self._send_json(201, {"data": data})
            case ["video", "v1", "assets", asset_id, "playback-ids"] if method == "POST":
                created = store.create_playback_id(asset_id, self._json_body())
                self._send_json(201, {"data": created})
            case ["video", "v1", "assets", asset_id, "playback-ids", playback_id]:
                if method == "GET":
                    self._send_json(200, {"data": store.get_playback_id(asset_id, playback_id)})
                elif method == "DELETE":
                    store.delete_playback_id(asset_id, playback_id)
                    self._send_json(204, None)
                else:
                    raise ApiError(404, "not_found", NOT_FOUND)
            case ["video", "v1", "playback-ids", playback_id] if method == "GET":
                self._send_json(200, {"data": store.find_playback_id(playback_id)})
            case ["video", "v1", "uploads"] if method == "POST":
                data = store.create_upload(self._json_body(), self._url_base())
                self._send_json(201, {"data": data})
            case ["video", "v1", "uploads"] if method == "GET":
                limit, page = (
                    parse_limit(self._query.get("limit")),
                    parse_page(self._query.get("page")),
                )
                self._send_json(200, {"data": store.list_uploads(limit, page)})
            case ["video", "v1", "uploads", upload_id] if method == "GET":
                self._send_json(200, {"data": store.get_upload(upload_id)})
            case ["video", "v1", "uploads", upload_id, "cancel"] if method == "PUT":
                self._send_json(200, {"data": store.cancel_upload(upload_id)})
            case ["video", "v1", "assets"] if method == "GET":
                assets, cursor = store.list_assets(
                    parse_limit(self._query.get("limit")),
                    parse_page(self._query.get("page")),
                    self._query.get("cursor"),
                    self._query.get("upload_id"),
                )
                self._send_json(200, {"data": assets, "next_cursor": cursor})
            case ["video", "v1", "assets", asset_id] if method == "GET":
                asset = self.emu.master_access.with_fields(store.get_asset(asset_id))
                self._send_json(200, {"data": asset})
            case ["video", "v1", "assets", asset_id, "master-access"] if method == "PUT":
                asset = store.get_asset(asset_id)
                changed = self.emu.master_access.put_json(asset, self._json_body())
                self._send_json(200, {"data": changed})
            case ["video", "v1", "assets", asset_id] if method == "DELETE":
                store.delete_asset(asset_id)
                self.emu.master_access.forget(asset_id)
                self._send_json(204, None)
            case _:
                raise ApiError(404, "not_found", NOT_FOUND)

    def _authenticate(self) -> str:
        """The request's `id:secret`, or ApiError(401)."""
        unauthorized = ApiError(401, "unauthorized", "Unauthorized request")
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            raise unauthorized
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise unauthorized from None
        user, sep, password = decoded.partition(":")
        if not sep or not user or not password:
            raise unauthorized
        expected = self.emu._credentials
        if expected is not None:
            same_user = hmac.compare_digest(user.encode(), expected[0].encode())
            same_password = hmac.compare_digest(password.encode(), expected[1].encode())
            if not (same_user and same_password):
                raise unauthorized
        return decoded

    def _json_body(self) -> Any:
        if self._body.received == 0 and self._body.done:
            return {}
        buf = bytearray(MAX_JSON_BODY + 1)
        view, size = memoryview(buf), 0
        while size <= MAX_JSON_BODY:
            n = self._body.readinto(view[size:])
            if not n:
                break
            size += n
        if not self._body.done:
            raise ApiError(413, "invalid_parameters", "Request body is too large")
        if self._body.truncated:
            raise _CutConnection
        raw = bytes(buf[:size])
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "invalid_parameters", "Request body is not valid JSON") from None

    def _url_base(self) -> str:
        host = self.headers.get("Host")
        return f"http://{host}" if host else self.emu.base_url

    # ----- the upload URL (GCS resumable session) ------------------------------------

    def _gcs(self, status: int, message: str) -> None:
        self._send(status, message.encode(), "text/plain; charset=utf-8")

    def _handle_upload(self, upload_id: str, fault: Fault | None) -> None:
        store = self.emu._store
        upload = store.writable_upload(upload_id)
        if upload is None:
            self._gcs(404, "Not Found")
            return
        if self.command != "PUT":
            self._gcs(405, "Method Not Allowed")
            return
        session = upload.session
        header = self.headers.get("Content-Range")
        try:
            content_range = parse_content_range(header) if header else None
            if content_range is not None and content_range.total is not None:
                session.set_total(content_range.total)
        except RangeError as exc:
            self._gcs(400, str(exc))
            return
        if session.complete:
            self._upload_done(upload)
            return
        length = self._length
        if content_range is None:
            if length is None and "chunked" not in self.headers.get("Transfer-Encoding", ""):
                self._gcs(411, "Length Required")
                return
            try:
                if length is not None:
                    session.set_total(length)
            except RangeError as exc:
                self._gcs(400, str(exc))
                return
            self._receive(upload, 0, final=True, fault=fault)
            return
        if content_range.is_query:
            if length:
                self._gcs(400, "An offset query must have an empty body")
                return
            token = session.begin()
            if session.total is not None and session.committed == session.total:
                if session.finish(token):
                    store.complete_upload(upload)
                self._upload_done(upload)
                return
            self._resume_incomplete(upload)
            return
        start = content_range.start or 0
        if length is not None and length != content_range.length:
            self._gcs(400, "Content-Length does not match Content-Range")
            return
        if not content_range.is_final and content_range.length % BLOCK:
            self._gcs(400, f"Non-final chunks must be a multiple of {BLOCK} bytes")
            return
        if start > session.committed:
            self._gcs(
                400,
                f"Invalid request. According to the Content-Range header, the upload offset is "
                f"{start} byte(s), which exceeds already uploaded size of "
                f"{session.committed} byte(s).",
            )
            return
        self._receive(upload, start, content_range.is_final, fault)

    def _receive(self, upload: Upload, start: int, final: bool, fault: Fault | None) -> None:
        """Read a chunk into the session, then answer 308, or 200 once it is complete."""
        store, session = self.emu._store, upload.session
        token = session.begin()
        writer = BlockWriter(session, token, start)
        budget = fault.after_bytes if fault is not None and fault.kind == "cut" else None
        rate = fault.rate if fault is not None and fault.kind == "slow" else None
        # A slow link is read a block at a time, so what it holds grows steadily.
        read_size = READ_SIZE if rate is None else SLOW_READ_SIZE
        buf = memoryview(bytearray(read_size))
        started, taken = time.monotonic(), 0
        while not self._body.done:
            want = read_size if budget is None else min(read_size, budget)
            if want == 0:
                break
            n = self._body.readinto(buf[:want])
            if not n:
                break
            if budget is not None:
                budget -= n
            writer.feed(buf[:n])
            if rate is not None:
                taken += n
                ahead = started + taken / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
        if budget is not None or self._body.truncated:
            # GCS keeps whole blocks of a broken request; the client never gets an answer.
            self._drop()
            return
        if not store.accepts_bytes(upload):
            self._gcs(404, "Not Found")
            return
        if writer.superseded:
            self._gcs(503, "Another request for this upload took over")
            return
        if final:
            if session.total is None:
                session.set_total(start + self._body.received)
            if writer.flush_final():
                store.complete_upload(upload)
            self._upload_done(upload)
            return
        self._resume_incomplete(upload)

    def _resume_incomplete(self, upload: Upload) -> None:
        committed = upload.session.committed
        headers = [("Range", f"bytes=0-{committed - 1}")] if committed else []
        self._send(308, headers=headers)

    def _upload_done(self, upload: Upload) -> None:
        size, digest = upload.session.digest()
        body = {
            "kind": "storage#object",
            "bucket": "mux-emulator-direct-uploads",
            "name": upload.id,
            "size": str(size),
            "sha256": digest,
        }
        self._send(200, json.dumps(body).encode(), "application/json")


def _error_type(status: int) -> str:
    return {
        400: "invalid_parameters",
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
    }.get(status, "internal_server_error" if status >= 500 else "error")


class Emulator:
    """The Mux emulator: a real HTTP server on loopback plus hooks for tests.

    One emulator is one Mux environment (`environment_id`, `environment_name`,
    `environment_type`, as `GET /system/v1/whoami` reports them and webhooks carry them):
    two emulators with different IDs stand for two environments.
    `ready_after`: seconds from an asset's creation until it is ready (or errored); an asset
    ingested from a URL is ready no sooner than its URL has been fetched.
    `rate_limit`: apply Mux's per-credential limits (429 without Retry-After) and send
    `X-RateLimit-Limit`/`-Remaining`/`-Reset` on every answer of the API.
    `credentials`: require exactly this (id, secret); None accepts any non-empty pair.
    `webhook_url`/`webhook_secret`: POST signed events there from a background thread.
    `store_dir`: keep each upload's committed bytes in `<store_dir>/<upload_id>.bin`.
    `checksum`: SHA-256 every committed byte (for `received()`); off, the upload path costs
    no hashing (benchmarks), and `received()` gives the size with an empty digest.
    """

    def __init__(
        self,
        ready_after: float = 0.0,
        rate_limit: bool = False,
        credentials: tuple[str, str] | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        store_dir: str | Path | None = None,
        checksum: bool = True,
        environment_id: str = DEFAULT_ENVIRONMENT["id"],
        environment_name: str = DEFAULT_ENVIRONMENT["name"],
        environment_type: str = "development",
    ) -> None:
        self._environment = {"name": environment_name, "id": environment_id}
        self._environment_type = environment_type
        self._credentials = credentials
        self._limiter = RateLimiter() if rate_limit else None
        self._faults = FaultPlan()
        self._store_dir = Path(store_dir) if store_dir is not None else None
        self._webhooks = (
            WebhookSender(webhook_url, webhook_secret) if webhook_url and webhook_secret else None
        )
        self._store = Store(
            ready_after=ready_after, emit=self._emit, store_dir=self._store_dir, checksum=checksum
        )
        self._ingestor = Ingestor(self._store.finish_ingest)
        self.masters = MasterHost()
        """The host of master download links: its `faults` and request `log` (tests)."""
        self.master_access = MasterAccess(self.masters, self._upload_file)
        """Master access per asset, and the hooks of tests (its ready delay, sizes, bytes)."""
        self._log_lock = threading.Lock()
        self.request_log: list[tuple[str, str, int]] = []
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []
        self._base_url = ""

    # ----- lifecycle -----------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on host:port (0 = a free port) in background threads; returns the base URL."""
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        if self._store_dir is not None:
            self._store_dir.mkdir(parents=True, exist_ok=True)
        self._server = server = _Server((host, port), self)
        shown = "127.0.0.1" if host in ("", "0.0.0.0") else host
        if ":" in shown:
            shown = f"[{shown}]"
        self._base_url = f"http://{shown}:{self._server.server_address[1]}"
        self.masters.start(shown)
        if self._webhooks is not None:
            self._webhooks.start()
        targets: list[tuple[str, Callable[[], None]]] = [
            ("emulator-http", lambda: server.serve_forever(poll_interval=0.05)),
            ("emulator-clock", self._store.run_clock),
        ]
        for name, target in targets:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self._base_url

    def stop(self) -> None:
        """Stop serving, close every connection and join the emulator's threads."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_clients()
        server.server_close()
        self._ingestor.wait_idle(timeout=2)
        self.masters.stop()
        self._store.close()
        if self._webhooks is not None:
            self._webhooks.stop()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """`http://HOST:PORT` once started."""
        return self._base_url

    @property
    def port(self) -> int:
        """The listening port once started."""
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        return int(self._server.server_address[1])

    # ----- the environment -----------------------------------------------------------

    @property
    def environment(self) -> dict[str, str]:
        """This emulator's Mux environment: `{"id", "name"}` (as webhooks carry it)."""
        return dict(self._environment)

    def rename_environment(self, name: str) -> None:
        """Give the environment a new name (its ID stays), as a rename in the dashboard does."""
        self._environment = {"name": name, "id": self._environment["id"]}

    def whoami(self) -> dict[str, Any]:
        """What `GET /system/v1/whoami` answers in `data`."""
        environment = self._environment
        return {
            "access_token_name": TOKEN_NAME,
            "environment_id": environment["id"],
            "environment_name": environment["name"],
            "environment_type": self._environment_type,
            **ORGANIZATION,
            "permissions": list(PERMISSIONS),
        }

    # ----- state for tests -----------------------------------------------------------

    @property
    def assets(self) -> dict[str, dict[str, Any]]:
        """A copy of every asset's JSON (as GET would return it), by ID."""
        return {
            k: self.master_access.with_fields(v) for k, v in self._store.snapshot_assets().items()
        }

    @property
    def uploads(self) -> dict[str, dict[str, Any]]:
        """A copy of every upload's JSON, by ID."""
        return self._store.snapshot_uploads()

    @property
    def webhook_log(self) -> list[tuple[str, int | str]]:
        """Every webhook delivery attempt: (event type, HTTP status or error text)."""
        return list(self._webhooks.log) if self._webhooks else []

    @property
    def webhook_events(self) -> list[dict[str, Any]]:
        """The events delivered with a 2xx answer, in order."""
        return list(self._webhooks.sent) if self._webhooks else []

    def wait_webhooks(self, timeout: float = 5.0) -> bool:
        """Wait until queued webhooks are delivered (or given up); False on timeout."""
        return self._webhooks.wait_idle(timeout) if self._webhooks else True

    def count(
        self, method: str | None = None, path_prefix: str = "/video/", status: int | None = None
    ) -> int:
        """How many logged requests match the method, path prefix and status."""
        with self._log_lock:
            return sum(
                1
                for m, p, s in self.request_log
                if (method is None or m == method.upper())
                and p.startswith(path_prefix)
                and (status is None or s == status)
            )

    def method_counts(self, path_prefix: str = "/video/") -> dict[str, int]:
        """How many logged requests under `path_prefix` each HTTP method made (any status)."""
        with self._log_lock:
            counts: dict[str, int] = {}
            for method, path, _ in self.request_log:
                if path.startswith(path_prefix):
                    counts[method] = counts.get(method, 0) + 1
            return counts

    def writing_calls(self, path_prefix: str = "/video/") -> int:
        """How many POST/PUT/DELETE/PATCH requests reached the API under `path_prefix`.

        Every request counts, whatever its answer (401, 429, a dropped connection
        included): a read-only command must show 0. Upload-URL PUTs are not under /video/.
        """
        return sum(n for m, n in self.method_counts(path_prefix).items() if m in WRITING_METHODS)

    def received(self, upload_id: str) -> tuple[int, str]:
        """(bytes committed, hex SHA-256 of them) at an upload's URL."""
        return self._store.received(upload_id)

    def upload_bytes(self, upload_id: str) -> bytes:
        """The committed bytes of an upload; needs `store_dir`."""
        return self._store.upload_bytes(upload_id)

    # ----- hooks for tests -----------------------------------------------------------

    def seed_asset(
        self,
        passthrough: str | None = None,
        status: str = "ready",
        created_at: int | None = None,
        playback_policies: Iterable[str] = ("public",),
        asset_id: str | None = None,
        upload_id: str | None = None,
        **settings: Any,
    ) -> dict[str, Any]:
        """Add an asset directly, with no webhook; returns its JSON. Its status stays put.

        A seeded asset has a public playback ID unless `playback_policies` says otherwise
        (`()` for none). `settings` take the other asset settings: see `seed_assets`.
        """
        return self.seed_assets(
            1,
            lambda _: passthrough,
            status=status,
            created_at=created_at,
            playback_policies=playback_policies,
            asset_ids=[asset_id] if asset_id else None,
            upload_id=upload_id,
            **settings,
        )[0]

    def seed_assets(
        self,
        n: int,
        passthrough_fn: Callable[[int], str | None] = lambda _: None,
        status: str = "ready",
        created_at: int | None = None,
        playback_policies: Iterable[str] = ("public",),
        *,
        asset_ids: list[str] | None = None,
        upload_id: str | None = None,
        video_quality: str | None = None,
        max_resolution_tier: str | None = None,
        normalize_audio: bool = False,
        test: bool = False,
        meta: dict[str, str] | None = None,
        generated_subtitles: Iterable[str | dict[str, Any]] = (),
        static_renditions: Iterable[str | dict[str, Any]] = (),
    ) -> list[dict[str, Any]]:
        """Add `n` assets at once (passthrough_fn(i) for asset i); returns their JSON.

        The settings are validated as Mux validates them (ValueError otherwise).
        `generated_subtitles` and `static_renditions` take language codes / resolutions, or
        the objects Mux takes (`{"language_code", "name"}`, `{"resolution"}`).
        """
        raw: dict[str, Any] = {
            "playback_policies": list(playback_policies),
            "normalize_audio": normalize_audio,
            "test": test,
        }
        if video_quality is not None:
            raw["video_quality"] = video_quality
        if max_resolution_tier is not None:
            raw["max_resolution_tier"] = max_resolution_tier
        if meta is not None:
            raw["meta"] = meta
        subtitles = [{"language_code": s} if isinstance(s, str) else s for s in generated_subtitles]
        if subtitles:
            raw["inputs"] = [{"generated_subtitles": subtitles}]
        renditions = [{"resolution": r} if isinstance(r, str) else r for r in static_renditions]
        if renditions:
            raw["static_renditions"] = renditions
        return self._store.seed_assets(
            n,
            passthrough_fn,
            settings=raw,
            status=status,
            created_at=created_at,
            asset_ids=asset_ids,
            upload_id=upload_id,
        )

    def delete_asset_silently(self, asset_id: str) -> None:
        """Make an asset vanish without a webhook (as if deleted elsewhere, event lost)."""
        try:
            self._store.delete_asset(asset_id, notify=False)
        except ApiError as exc:
            raise KeyError(asset_id) from exc
        self.master_access.forget(asset_id)

    def _upload_file(self, asset_id: str) -> Path | None:
        if self._store_dir is None:
            return None
        upload_id = self._store.snapshot_assets().get(asset_id, {}).get("upload_id")
        return self._store_dir / f"{upload_id}.bin" if upload_id else None

    def set_asset_status(self, asset_id: str, status: str) -> None:
        """Force an asset's status (preparing|ready|errored); it then stays there."""
        self._store.set_asset_status(asset_id, status)

    def fail_next_assets(self, n: int = 1) -> None:
        """The next `n` assets created (from uploads or URLs) become errored, not ready."""
        self._store.fail_next_assets(n)

    def set_track_status(self, asset_id: str, language_code: str, status: str) -> None:
        """Set the status (preparing|ready|errored) of an asset's generated subtitle track.

        Generated subtitle tracks stay `preparing` otherwise (as they often still are when
        Mux reports the asset ready); an asset that errors takes its tracks with it.
        """
        self._store.set_track_status(asset_id, language_code, status)

    def expire_upload(self, upload_id: str) -> None:
        """Make a waiting upload time out now; its URL then answers 404."""
        self._store.expire_upload(upload_id)

    def inject(
        self,
        method: str | None,
        path_prefix: str,
        kind: str,
        *,
        status: int = 503,
        times: int = 1,
        delay: float = 0.0,
        after_bytes: int = 0,
        rate: float = 0.0,
    ) -> None:
        """Add a fault for the next `times` requests matching method (None = any) and path.

        kind "status": answer `status` (Mux's error shape; the 429 shape for 429).
        kind "delay": sleep `delay` seconds, then answer normally.
        kind "cut": an upload PUT reads `after_bytes` of its body, keeps whole 256 KiB
        blocks of them, then the connection closes with no answer; other requests close
        with no answer and are not processed.
        kind "reset": the connection is reset (RST) before anything is read or processed.
        kind "slow": an upload PUT's body is read at `rate` bytes per second (what the
        session holds grows as it arrives), then answered as usual; other requests are not
        affected. With `times` large, every request of an upload crosses a slow link.
        Rules are checked in the order they were added.
        """
        self._faults.add(
            Fault(
                method,
                path_prefix,
                kind,
                status,
                times,
                delay=delay,
                after_bytes=after_bytes,
                rate=rate,
            )
        )

    def clear_faults(self) -> None:
        """Forget every injected fault not yet used."""
        self._faults.clear()

    @property
    def pending_faults(self) -> int:
        """How many injected faults are not used up yet (0 once every one has fired)."""
        return self._faults.pending()

    def _emit(
        self, event_type: str, object_type: str, object_id: str, data: dict[str, Any]
    ) -> None:
        if self._webhooks is not None:
            event = envelope(event_type, object_type, object_id, data, self._environment)
            self._webhooks.enqueue(event)


def run_emulator(
    host: str,
    port: int,
    ready_after: float,
    rate_limit: bool,
    credentials: tuple[str, str] | None = None,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    on_started: Callable[[str], None] | None = None,
    checksum: bool = True,
    environment_id: str = DEFAULT_ENVIRONMENT["id"],
    environment_name: str = DEFAULT_ENVIRONMENT["name"],
) -> None:
    """Serve until KeyboardInterrupt or SIGTERM, then stop cleanly.

    `on_started(base_url)` is called once the port is listening. The emulator stands for
    the Mux environment `environment_id` / `environment_name`.
    """
    emulator = Emulator(
        ready_after=ready_after,
        rate_limit=rate_limit,
        credentials=credentials,
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
        checksum=checksum,
        environment_id=environment_id,
        environment_name=environment_name,
    )
    base_url = emulator.start(host, port)
    previous: Any = None
    in_main = threading.current_thread() is threading.main_thread()

    def _terminate(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    if in_main:
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        if on_started is not None:
            on_started(base_url)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
        if in_main:
            signal.signal(signal.SIGTERM, previous)
