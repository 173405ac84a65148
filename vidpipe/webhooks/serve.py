"""Mux's webhooks over HTTP: a starlette app, run by uvicorn (the only module of vidpipe
that imports either).

Each POST is size-capped and read under a timeout, its signature checked on the event loop
(cheap), then handled in starlette's threadpool, because the writers are synchronous
SQLAlchemy. Answers: 2xx for anything handled, duplicate or not vidpipe's business (so Mux
stops retrying); 400/401 for bodies and signatures that will never be accepted; 413 for a
body over the cap; 5xx when the database or Mux failed, so Mux retries later. One log line
per request, control characters escaped (a client cannot forge a line); never the secret or
the signature. Every `PRUNE_EVERY` seconds (checked as events arrive, the first time with the
first event) it drops tombstones older than `TOMBSTONE_TTL`, as sync does, in a transaction
of its own.

Against hostile clients the process holds on its own (see `_GuardedH11Protocol`): a request's
line and headers must arrive within `HEADER_TIMEOUT` seconds of the connection opening (or
of the previous response), the header block is capped at `MAX_HEADER_BYTES` however it
arrives, at most `MAX_CONNECTIONS` connections stay open (the oldest idle one is closed to
make room), and only requests in progress (headers received, not yet answered) count against
`MAX_IN_PROGRESS`: idle and half-open connections hold no slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import resource
import signal
import socket
import threading
import time
from collections.abc import Callable, Generator
from typing import Any

import h11
import uvicorn
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from vidpipe.assets import Policies
from vidpipe.db import TOMBSTONE_TTL, transaction
from vidpipe.errors import ConfigError, MuxError, VidpipeError, WebhookRejected
from vidpipe.mux import Environment, MuxGateway, RetryPolicy
from vidpipe.records import prune_tombstones
from vidpipe.webhooks import health
from vidpipe.webhooks.events import EventOutcome, handle_event, parse_event
from vidpipe.webhooks.logs import LogFormat, LogRecord, formatter, level_of
from vidpipe.webhooks.signature import (
    BadSignature,
    MissingSignature,
    StaleSignature,
    verify_signature,
)
from vidpipe.webhooks.telemetry import ByPort, WebhookMetrics, metrics_app, observe_mux

MAX_BODY = 1 << 20
"""Mux events are a few KiB; 1 MiB leaves room and bounds the memory a request can take."""
BODY_TIMEOUT = 10.0
"""Seconds to receive a whole body: a slow sender must not hold a connection forever."""
HANDLER_TIMEOUT = 30.0
"""Seconds to handle an event before answering 503 (Mux itself gives up after 5 s and retries;
the handler thread may still finish, which is harmless: the writers are idempotent)."""
HEADER_TIMEOUT = 10.0
"""Seconds from a connection's opening (or its previous response) to a complete request line
and headers; then the connection is closed. Mux sends its whole request at once."""
MAX_HEADER_BYTES = 16 * 1024
"""Cap on a request's line plus headers (a Mux delivery's are well under 2 KiB): 431 beyond."""
MAX_IN_PROGRESS = 200
"""Requests being handled at once (headers received, not yet answered); 503 beyond."""
MAX_CONNECTIONS = 1000
"""Open connections at most (fewer when the file-descriptor limit is low); beyond, the
oldest connection waiting for a request is closed to make room."""
PRUNE_EVERY = 3600.0
"""Seconds between two prunings of old tombstones by a running server."""

Log = Callable[[str], None]


def _no_log(_line: str) -> None:
    pass


class _TooLarge(Exception):
    pass


WEBHOOK_PATHS = ("/", "/webhooks/mux")


def http_status(rejection: WebhookRejected) -> int:
    """The status that answers a rejected webhook: 401 for a signature that does not match
    or is out of date (`BadSignature`, `StaleSignature`); 400 for a missing or garbled
    signature (`MissingSignature`) or a body that is not a Mux event (`MalformedEvent`)."""
    if isinstance(rejection, BadSignature):
        return 401
    return 400


def rejection_reason(rejection: WebhookRejected) -> str:
    """The metrics label of a rejection: `stale`, `signature` (missing, garbled or wrong)
    or `malformed` (a body that is not a Mux event)."""
    if isinstance(rejection, StaleSignature):
        return "stale"
    if isinstance(rejection, BadSignature | MissingSignature):
        return "signature"
    return "malformed"


def _database_failed(exc: BaseException) -> bool:
    """Whether `exc` (or what it was raised from) is SQLAlchemy's: the database failed."""
    from sqlalchemy.exc import SQLAlchemyError

    return isinstance(exc, SQLAlchemyError) or isinstance(exc.__cause__, SQLAlchemyError)


def webhook_gateway(settings: Any) -> MuxGateway | None:
    """A gateway for confirming events with Mux, or None when no Mux token is configured.

    Short timeouts and few retries: Mux waits only 5 s for an answer, and retries itself.
    """
    if not (settings.mux_token_id and settings.mux_token_secret):
        return None
    return MuxGateway.from_settings(
        settings,
        retry=RetryPolicy(attempts=2, initial=0.2, maximum=1.0, jitter=0.2),
        timeout=(3.0, 5.0),
    )


def create_app(
    engine: Engine | Callable[[], Engine],
    secret: str,
    *,
    gateway_factory: Callable[[], MuxGateway | None] | None = None,
    environment: Environment | None = None,
    max_body: int = MAX_BODY,
    log: Log | None = None,
    body_timeout: float = BODY_TIMEOUT,
    handler_timeout: float = HANDLER_TIMEOUT,
    policies: Policies | None = None,
    max_in_progress: int = MAX_IN_PROGRESS,
    prune_every: float | None = PRUNE_EVERY,
    metrics: WebhookMetrics | None = None,
    log_format: LogFormat | str = LogFormat.TEXT,
) -> Starlette:
    """The webhook app: POST `/` and `/webhooks/mux` take events; GET `/` is a health check,
    and so are `/healthz` and `/readyz` (`vidpipe.webhooks.health`).
    A ready asset is recorded with its playback ID of its row's policy (`policies`).

    `engine` may be a factory, called once on first use (and so is `gateway_factory`): the
    engine and the Mux client are shared by every request. More than `max_in_progress`
    requests at once are answered 503 (Mux retries later). `environment` is the one the
    database belongs to: events from another Mux environment are answered 200 and ignored.
    Old tombstones are pruned after the first event handled and then at most every
    `prune_every` seconds (None: never). Every request is counted in `metrics` (the app's
    `state.metrics`; a fresh `WebhookMetrics` when none is given) and the Mux gateway's
    calls too. `log` receives one line per request, as text or JSON (`log_format`).
    A `gateway_factory` means events are confirmed with Mux (it may not return None).
    """
    if not secret:
        raise ConfigError("MUX_WEBHOOK_SECRET is not set (environment or .env)")
    sink = log or _no_log
    line_of = formatter(log_format)
    counts = metrics if metrics is not None else WebhookMetrics()
    lock = threading.Lock()
    shared: dict[str, Any] = {}

    def emit(record: LogRecord) -> None:
        sink(line_of(record))

    def resources() -> tuple[Engine, MuxGateway | None]:
        with lock:
            if "engine" not in shared:
                shared["engine"] = engine() if callable(engine) else engine
                shared["gateway"] = gateway_factory() if gateway_factory else None
                observe_mux(shared["gateway"], counts)
        return shared["engine"], shared["gateway"]

    pruned_at: list[float] = []  # monotonic time of the last pruning, once there was one

    def prune_if_due(eng: Engine) -> None:
        if prune_every is None:
            return
        with lock:
            now = time.monotonic()
            if pruned_at and now - pruned_at[0] < prune_every:
                return
            pruned_at[:] = [now]  # claimed: concurrent requests do not prune as well
        try:
            with transaction(eng) as conn:
                n = prune_tombstones(conn)
        except VidpipeError as exc:  # the event was handled; pruning waits for its next turn
            counts.database_errors.inc()
            emit(LogRecord(f"webhook tombstone pruning failed: {exc.message}", level="error"))
            return
        if n:
            days = TOMBSTONE_TTL // 86400
            emit(LogRecord(f"webhook pruned {n} tombstone(s) older than {days} days"))

    def handle(event: dict[str, Any]) -> EventOutcome:
        eng, gateway = resources()
        outcome = handle_event(
            eng, event, gateway=gateway, environment=environment, policies=policies
        )
        prune_if_due(eng)
        return outcome

    def answer(status: int, line: str, payload: dict[str, Any], **fields: Any) -> JSONResponse:
        """The response, and its log record (`fields`: the event's, and `started`)."""
        started = fields.pop("started", None)
        duration = None if started is None else time.monotonic() - started
        level = level_of(status)
        emit(LogRecord(f"webhook {status} {line}", level, status, duration=duration, **fields))
        return JSONResponse(payload, status_code=status)

    def refuse(status: int, reason: str, label: str, started: float) -> JSONResponse:
        counts.refused(label)
        payload = {"ok": False, "error": reason}
        return answer(status, f"rejected: {reason}", payload, started=started)

    def unhandled(status: int, word: str, reason: str, fields: dict[str, Any]) -> JSONResponse:
        """An authentic event not handled: `word` is `rejected` or `error`."""
        line = f"{fields['type']} id={fields['event_id'] or '-'} outcome={word}: {reason}"
        return answer(status, line, {"ok": False, "error": reason}, outcome=word, **fields)

    async def receive(request: Request) -> Response:
        started = time.monotonic()
        declared = request.headers.get("content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > max_body:
            # Refused before reading a byte; uvicorn closes the connection after answering.
            reason = f"body of {int(declared)} bytes is over the {max_body}-byte cap"
            return refuse(413, reason, "too_large", started)
        try:
            body = await asyncio.wait_for(_read_capped(request, max_body), body_timeout)
        except _TooLarge:
            return refuse(413, f"body is over the {max_body}-byte cap", "too_large", started)
        except TimeoutError:
            return refuse(408, f"body not received within {body_timeout:g} s", "timeout", started)
        except ClientDisconnect:
            counts.refused("malformed")
            emit(LogRecord("webhook - rejected: client disconnected before sending the body"))
            return Response(status_code=400)
        try:
            # Signature before parsing: unauthenticated bytes are never interpreted.
            verify_signature(secret, request.headers.get("mux-signature"), body)
            event = parse_event(body)
        except WebhookRejected as exc:
            return refuse(http_status(exc), exc.message, rejection_reason(exc), started)
        fields: dict[str, Any] = {
            "type": str(event.get("type")),
            "event_id": str(event.get("id") or "") or None,
            "started": started,
        }
        try:
            outcome = await asyncio.wait_for(run_in_threadpool(handle, event), handler_timeout)
        except WebhookRejected as exc:
            counts.refused(rejection_reason(exc))
            return unhandled(http_status(exc), "rejected", exc.message, fields)
        except TimeoutError:
            counts.refused("timeout")
            reason = f"not handled within {handler_timeout:g} s; retry later"
            return unhandled(503, "error", reason, fields)
        except Exception as exc:
            # Database or Mux trouble (MuxError, VidpipeError): 503 so Mux retries; the
            # transaction rolled back. Anything else is a bug: 500, keep serving, say what kind.
            counts.accepted(fields["type"], "error")
            if _database_failed(exc):
                counts.database_errors.inc()
            if isinstance(exc, MuxError | VidpipeError):
                return unhandled(503, "error", exc.message, fields)
            return unhandled(500, "error", f"internal error ({type(exc).__name__})", fields)
        counts.accepted(outcome.event_type, outcome.outcome.value)
        return answer(
            200,
            outcome.log_line(),
            {"ok": True, **outcome.as_json()},
            outcome=outcome.outcome.value,
            asset=outcome.asset_id,
            **fields,
        )

    async def health_root(_request: Request) -> Response:
        return JSONResponse({"ok": True, "service": "vidpipe webhooks"})

    def busy() -> None:
        counts.refused("overloaded")
        emit(
            LogRecord(
                f"webhook 503 rejected: more than {max_in_progress} requests in progress",
                level="error",
                status=503,
            )
        )

    def shared_engine() -> Engine:
        return resources()[0]

    app = Starlette(
        routes=[
            Route("/", health_root, methods=["GET"]),
            Route("/", receive, methods=["POST"]),
            Route("/webhooks/mux", receive, methods=["POST"]),
            *health.probes(shared_engine, environment, detail=False),
        ],
        middleware=[
            Middleware(_InProgressLimit, limit=max_in_progress, on_refuse=busy, metrics=counts)
        ],
    )
    app.state.metrics = counts
    app.state.probes = health.probes(shared_engine, environment, detail=True)
    # What `serve` tells at start and stop, in the app's log.
    app.state.say = lambda text: emit(LogRecord(text))
    app.state.confirms = gateway_factory is not None
    app.state.environment = environment
    return app


class _InProgressLimit:
    """Answers 503 when `limit` requests are already in progress, and times the deliveries.

    It counts requests the application is handling (uvicorn calls it once a request's line
    and headers are complete) until their answer is sent. Connections that are idle, half
    open or still sending headers are never counted: uvicorn's own `limit_concurrency`
    counts open connections, so a few hundred idle sockets would take every slot.
    `GET /healthz` is answered even at the limit (a busy server is alive). Every POST to a
    webhook path, refused here or not, is one observation of the request histogram.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int,
        on_refuse: Callable[[], None],
        metrics: WebhookMetrics,
    ) -> None:
        self.app = app
        self.limit = limit
        self.on_refuse = on_refuse
        self.metrics = metrics
        self.active = 0  # one event loop: no lock needed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/healthz":
            await self.app(scope, receive, send)
            return
        delivery = scope["method"] == "POST" and scope["path"] in WEBHOOK_PATHS
        started = time.perf_counter()
        try:
            await self._limited(scope, receive, send)
        finally:
            if delivery:
                self.metrics.request_seconds.observe(time.perf_counter() - started)

    async def _limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.active >= self.limit:
            self.on_refuse()
            refusal = JSONResponse(
                {"ok": False, "error": "too many requests in progress; retry later"},
                status_code=503,
                headers={"Retry-After": "5", "Connection": "close"},
            )
            await refusal(scope, receive, send)
            return
        self.active += 1
        self.metrics.in_progress.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1
            self.metrics.in_progress.dec()


async def _read_capped(request: Request, max_body: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_body:
            raise _TooLarge  # stop reading; the rest is never buffered
        chunks.append(chunk)
    return b"".join(chunks)


class _Server(uvicorn.Server):
    """uvicorn's server, but a SIGTERM/SIGINT ends `run()` normally after the graceful
    shutdown instead of re-raising the signal, so `serve()` returns normally when stopped."""

    stopped_by: str | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, sig: int, _frame: Any) -> None:
        self.stopped_by = signal.Signals(sig).name
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True  # a second Ctrl-C stops waiting for open requests
        self.should_exit = True


class _GuardedConnection(h11.Connection):
    """h11's connection, with the header cap applied to every request.

    h11 checks `max_incomplete_event_size` only while an event is incomplete: a header block
    that arrives whole in one read (asyncio reads up to 256 KiB at a time) was parsed and
    passed on whatever its size. Here a complete request's line and headers are measured too.
    `error_status` keeps the status h11 suggests for the last protocol error (431, 400).
    """

    def __init__(self, *, max_header_bytes: int, on_head: Callable[[], None]) -> None:
        super().__init__(h11.SERVER, max_incomplete_event_size=max_header_bytes)
        self.max_header_bytes = max_header_bytes
        self.on_head = on_head
        self.error_status = 400

    def next_event(self) -> Any:
        try:
            event = super().next_event()
        except h11.RemoteProtocolError as exc:
            self.error_status = exc.error_status_hint
            raise
        if isinstance(event, h11.Request):
            self.on_head()
            size = len(event.method) + len(event.target) + 12  # "M T HTTP/1.1\r\n" + "\r\n"
            size += sum(len(name) + len(value) + 4 for name, value in event.headers.raw_items())
            if size > self.max_header_bytes:
                self.error_status = 431
                raise h11.RemoteProtocolError(
                    f"request header block of {size} bytes is over the cap", error_status_hint=431
                )
        return event


class _Guard:
    """Limits shared by every connection of one server: the open connections, oldest first.
    `on_reject(reason)` hears each request refused before it reached the app."""

    def __init__(
        self,
        *,
        header_timeout: float,
        max_header_bytes: int,
        max_connections: int,
        on_reject: Callable[[str], None] | None = None,
    ) -> None:
        self.header_timeout = header_timeout
        self.max_header_bytes = max_header_bytes
        self.max_connections = max_connections
        self.on_reject = on_reject or _no_log
        self.open: dict[_GuardedH11Protocol, None] = {}  # insertion-ordered set


class _GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with what it lacks against hostile clients.

    uvicorn runs no timer until a request's first byte (its keep-alive timer starts after a
    response, and any byte resets it), so an idle or trickling connection could stay open
    forever. Here a deadline is armed when the connection opens and again after each
    response; it is cancelled once a request's line and headers are complete. If it passes
    first the connection is closed (with a 408 when part of a request had arrived). The
    deadline is absolute: trickling bytes does not extend it.

    Subclassed per server (see `server_config`) so that `guard` is that server's.
    """

    guard: _Guard

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn = _GuardedConnection(
            max_header_bytes=self.guard.max_header_bytes, on_head=self._head_complete
        )
        self.head_timer: asyncio.TimerHandle | None = None
        self.head_bytes = 0  # bytes received while waiting for a request head

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        guard = self.guard
        if len(guard.open) >= guard.max_connections:
            idle = next((p for p in guard.open if p.waiting_for_head()), None)
            if idle is None:  # every connection has a request in progress: refuse this one
                transport.close()
                return
            idle.close_idle()
        guard.open[self] = None
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.open.pop(self, None)
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.head_timer is not None:
            self.head_bytes += len(data)
        super().data_received(data)

    def on_response_complete(self) -> None:
        # Armed before uvicorn handles a pipelined request, whose head then disarms it.
        if not self.transport.is_closing():
            self._arm()
        super().on_response_complete()

    def send_400_response(self, msg: str) -> None:
        status = self.conn.error_status if isinstance(self.conn, _GuardedConnection) else 400
        if status not in (400, 413, 414, 431):
            status = 400
        self.guard.on_reject("malformed" if status == 400 else "too_large")
        phrase = http.HTTPStatus(status).phrase
        self.transport.write(
            f"HTTP/1.1 {status} {phrase}\r\ncontent-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(phrase)}\r\nconnection: close\r\n\r\n{phrase}".encode()
        )
        self.transport.close()

    def waiting_for_head(self) -> bool:
        """No request is in progress: the connection is idle or still sending headers."""
        return self.head_timer is not None

    def close_idle(self) -> None:
        """Close a connection that has no request in progress."""
        self._disarm()
        self.guard.open.pop(self, None)
        if not self.transport.is_closing():
            if self.head_bytes:
                self.guard.on_reject("timeout")
                self.transport.write(
                    b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n"
                    b"connection: close\r\n\r\n"
                )
            self.transport.close()

    def _arm(self) -> None:
        self._disarm()
        self.head_bytes = 0
        self.head_timer = self.loop.call_later(self.guard.header_timeout, self.close_idle)

    def _disarm(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_complete(self) -> None:
        self._disarm()


def _connection_cap(wanted: int) -> int:
    """`wanted`, or fewer when the process may not open that many files (half the limit,
    leaving the rest to the database, the Mux client and the listening socket)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(16, min(wanted, soft // 2))


def server_config(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    graceful: int = 10,
    header_timeout: float = HEADER_TIMEOUT,
    max_header_bytes: int = MAX_HEADER_BYTES,
    max_connections: int = MAX_CONNECTIONS,
    on_reject: Callable[[str], None] | None = None,
) -> uvicorn.Config:
    """uvicorn settings for a production endpoint (also used by the tests): h11 with the
    guards of `_GuardedH11Protocol`; the limit on requests in progress is the app's.
    `on_reject(reason)`: told of each request the guards refuse (a `REASONS` label)."""
    guard = _Guard(
        header_timeout=header_timeout,
        max_header_bytes=max_header_bytes,
        max_connections=_connection_cap(max_connections),
        on_reject=on_reject,
    )
    protocol = type("GuardedH11Protocol", (_GuardedH11Protocol,), {"guard": guard})
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        lifespan="off",
        access_log=False,  # the app logs one line per request itself
        log_level="warning",
        server_header=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=graceful,
        # No limit_concurrency: it counts open connections, idle ones included (see
        # `_InProgressLimit`, which counts requests in progress instead).
        h11_max_incomplete_event_size=max_header_bytes,
    )


def serve(
    app: Starlette,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    metrics_host: str = "127.0.0.1",
    metrics_port: int | None = None,
) -> None:
    """Serve `app` (made by `create_app`) until SIGTERM or SIGINT, then finish open requests
    (up to 10 s) and return. A port that cannot be bound is a VidpipeError. The server's own
    lines (listening, stopped) go to the app's log, in its format.

    With `metrics_port`, a second listening socket (on `metrics_host`) answers `/metrics`,
    `/healthz` and `/readyz`, in the same process and event loop."""
    metrics: WebhookMetrics = app.state.metrics
    say: Callable[[str], None] = app.state.say
    sockets = [bind(host, port)]
    bound_port = sockets[0].getsockname()[1]
    asgi: Any = app
    try:
        if metrics_port is not None:
            sockets.append(bind(metrics_host, metrics_port))
            metrics_bound = sockets[1].getsockname()[1]
            scrape = metrics_app(metrics, app.state.probes)
            asgi = ByPort(app, port=metrics_bound, app=scrape)
    except VidpipeError:
        sockets[0].close()
        raise
    config = server_config(asgi, host=host, port=port, on_reject=metrics.refused)
    server = _Server(config)
    confirm = (
        "confirming events with Mux"
        if app.state.confirms
        else "trusting signed events: no Mux token"
    )
    say(f"vidpipe webhooks listening on http://{host}:{bound_port}/ ({confirm})")
    if metrics_port is not None:
        say(f"metrics and health checks on http://{metrics_host}:{metrics_bound}/metrics")
    if app.state.environment is not None:
        say(f"accepting events of Mux environment {app.state.environment} only")
    try:
        server.run(sockets=sockets)
    finally:
        for sock in sockets:
            sock.close()
    say(f"vidpipe webhooks stopped ({server.stopped_by or 'shutdown'})")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, bound here so a busy port is one clear error (not uvicorn's exit)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise VidpipeError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, socktype, proto, _canon, address = infos[0]
    sock = socket.socket(family, socktype, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise VidpipeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock
