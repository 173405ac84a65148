"""The emulator's HTTP server: sockets, request framing, credentials, limits and faults.

Built on the standard library's threading HTTP server so that tests keep raw-socket
control: faults can cut a connection mid-body or reset it. Each request is logged, checked
against the injected faults, then handed to the upload protocol (`/upload/{id}`,
upload_url.py) or to a route of the API (routes/). The in-process control API over all
this is `Emulator` (control.py).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from vidpipe.emulator.faults import Fault, FaultPlan, RateLimiter
from vidpipe.emulator.framing import Body, CutConnection
from vidpipe.emulator.objects import NOT_FOUND, ApiError
from vidpipe.emulator.routing import Request, Response, Router, Services, json_response
from vidpipe.emulator.upload_url import serve_upload

MAX_DRAIN = 64 * 1024 * 1024
TOO_MANY_REQUESTS = {"errors": ["Too many requests, retry later."]}
API_PREFIXES = ("/video/", "/system/")
UPLOAD_PREFIX = "/upload/"
NO_RESPONSE = 0
"""Status recorded in the request log when the connection was closed without an answer."""


@dataclass(frozen=True)
class Wiring:
    """What the server takes from the `Emulator` that runs it.

    `record(method, path, status)` appends to the request log; `base_url()` is the
    server's own address (for upload URLs when a request has no Host header);
    `credentials`: the one accepted (id, secret), or None for any non-empty pair.
    `clock()`: the emulated Mux's time (Unix seconds), which every answer's `Date` shows.
    """

    services: Services
    router: Router
    faults: FaultPlan
    limiter: RateLimiter | None
    credentials: tuple[str, str] | None
    record: Callable[[str, str, int], None]
    base_url: Callable[[], str]
    clock: Callable[[], float] = time.time


class Server(ThreadingHTTPServer):
    """Tracks open client sockets so `stop()` can close idle keep-alive connections."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], wiring: Wiring) -> None:
        self.wiring = wiring
        self._open: set[socket.socket] = set()
        self._reset: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, Handler)

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


class Handler(BaseHTTPRequestHandler):
    """One connection's requests: framing, then the upload protocol or an API route."""

    protocol_version = "HTTP/1.1"
    server_version = "MuxEmulator/1.0"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 60
    server: Server
    body: Body

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: requests are recorded in `Emulator.request_log` instead."""

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The `Date` header: the emulated Mux's clock (which a test may skew)."""
        return super().date_time_string(self.wiring.clock() if timestamp is None else timestamp)

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    @property
    def wiring(self) -> Wiring:
        return self.server.wiring

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        self._route_path = url.path
        self._query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        self._answered = False
        self._extra_headers: list[tuple[str, str]] = []
        self.body = Body(self.rfile, 0, chunked=False)  # until the headers are checked
        try:
            self.body = self._open_body()
            fault = self.wiring.faults.take(self.command, url.path)
            if fault is not None and self._apply_fault(fault):
                return
            if url.path.startswith(UPLOAD_PREFIX):
                upload_id = url.path.removeprefix(UPLOAD_PREFIX)
                store = self.wiring.services.store
                self._answer(
                    serve_upload(store, upload_id, self.command, self.headers, self.body, fault)
                )
            else:
                self._answer(self._handle_api(url.path))
        except ApiError as exc:
            self._answer(json_response(exc.status, exc.body()))
        except CutConnection:
            self._drop()
        except (ConnectionError, TimeoutError):
            self._drop()

    def _open_body(self) -> Body:
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
        return Body(self.rfile, length, chunked)

    def _apply_fault(self, fault: Fault) -> bool:
        """Carry out an injected fault; True when the request is finished with."""
        if fault.kind == "delay":
            time.sleep(fault.delay)
            return False
        if fault.kind == "hold":
            fault.hold()
            return False
        if fault.kind == "reset":
            self._drop(reset=True)
            return True
        if fault.kind == "cut":
            if self._route_path.startswith(UPLOAD_PREFIX) and self.command == "PUT":
                return False  # the upload protocol reads `after_bytes` first
            self._drop()
            return True
        if fault.kind == "slow":
            return False  # the upload protocol paces its reads; other requests run as usual
        if fault.status == 429:
            self._answer(json_response(429, TOO_MANY_REQUESTS))
        else:
            error = ApiError(fault.status, _error_type(fault.status), "Injected fault")
            self._answer(json_response(fault.status, error.body()))
        return True

    # ----- the API -------------------------------------------------------------------

    def _handle_api(self, path: str) -> Response:
        found = self.wiring.router.find(self.command, path)
        authenticated = found[0].authenticated if found else path.startswith(API_PREFIXES)
        if authenticated:
            credential = self._authenticate()
            limiter = self.wiring.limiter
            if limiter is not None:
                quota = limiter.take(credential, self.command)
                self._extra_headers = quota.headers()
                if not quota.allowed:
                    return json_response(429, TOO_MANY_REQUESTS)
        if found is None:
            raise ApiError(404, "not_found", NOT_FOUND)
        route, params = found
        request = Request(
            method=self.command,
            path=path,
            params=params,
            query=self._query,
            headers=self.headers,
            url_base=self._url_base(),
            services=self.wiring.services,
            read_json=self.body.read_json,
        )
        return route.handler(request)

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
        expected = self.wiring.credentials
        if expected is not None:
            same_user = hmac.compare_digest(user.encode(), expected[0].encode())
            same_password = hmac.compare_digest(password.encode(), expected[1].encode())
            if not (same_user and same_password):
                raise unauthorized
        return decoded

    def _url_base(self) -> str:
        host = self.headers.get("Host")
        return f"http://{host}" if host else self.wiring.base_url()

    # ----- answering -----------------------------------------------------------------

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
            self.wiring.record(self.command, self._route_path, status)

    def _answer(self, response: Response) -> None:
        self._send(response.status, response.body, response.content_type, response.headers)

    def _send(
        self,
        status: int,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Answer: status line, headers, body (none for HEAD); a 204 has no Content-Length.

        A modest unread request body is drained first so the connection can be reused;
        a larger one closes it after the answer.
        """
        if not self.body.drain(MAX_DRAIN):
            self.close_connection = True
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


def _error_type(status: int) -> str:
    return {
        400: "invalid_parameters",
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
    }.get(status, "internal_server_error" if status >= 500 else "error")
