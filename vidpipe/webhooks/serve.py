"""Mux's webhooks over HTTP: a starlette app, run by uvicorn (the only module of vidpipe
that imports either).

Each POST is size-capped and read under a timeout, its signature checked on the event loop
(cheap), then handled in starlette's threadpool, because the writers are synchronous
SQLAlchemy. Answers: 2xx for anything handled, duplicate or not vidpipe's business (so Mux
stops retrying); 400/401 for bodies and signatures that will never be accepted; 413 for a
body over the cap; 5xx when the database or Mux failed, so Mux retries later. One log line
per request; never the secret or the signature. Every `PRUNE_EVERY` seconds (checked as events
arrive, the first time with the first event) it drops tombstones older than `TOMBSTONE_TTL`,
as sync does, in a transaction of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
import time
from collections.abc import Callable, Generator
from typing import Any

import uvicorn
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vidpipe.assets import Policies
from vidpipe.db import TOMBSTONE_TTL, transaction
from vidpipe.errors import ConfigError, MuxError, VidpipeError, WebhookRejected
from vidpipe.mux import MuxGateway, RetryPolicy
from vidpipe.records import prune_tombstones
from vidpipe.webhooks.events import EventOutcome, handle_event, parse_event
from vidpipe.webhooks.signature import BadSignature, verify_signature

MAX_BODY = 1 << 20
"""Mux events are a few KiB; 1 MiB leaves room and bounds the memory a request can take."""
BODY_TIMEOUT = 10.0
"""Seconds to receive a whole body: a slow sender must not hold a connection forever."""
HANDLER_TIMEOUT = 30.0
"""Seconds to handle an event before answering 503 (Mux itself gives up after 5 s and retries;
the handler thread may still finish, which is harmless: the writers are idempotent)."""
PRUNE_EVERY = 3600.0
"""Seconds between two prunings of old tombstones by a running server."""

Log = Callable[[str], None]


def _no_log(_line: str) -> None:
    pass


class _TooLarge(Exception):
    pass


def http_status(rejection: WebhookRejected) -> int:
    """The status that answers a rejected webhook: 401 for a signature that does not match
    or is out of date (`BadSignature`, `StaleSignature`); 400 for a missing or garbled
    signature (`MissingSignature`) or a body that is not a Mux event (`MalformedEvent`)."""
    if isinstance(rejection, BadSignature):
        return 401
    return 400


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
    max_body: int = MAX_BODY,
    log: Log | None = None,
    body_timeout: float = BODY_TIMEOUT,
    handler_timeout: float = HANDLER_TIMEOUT,
    policies: Policies | None = None,
    prune_every: float | None = PRUNE_EVERY,
) -> Starlette:
    """The webhook app: POST `/` and `/webhooks/mux` take events; GET `/` is a health check.
    A ready asset is recorded with its playback ID of its row's policy (`policies`).

    `engine` may be a factory, called once on first use (and so is `gateway_factory`): the
    engine and the Mux client are shared by every request. Old tombstones are pruned after
    the first event handled and then at most every `prune_every` seconds (None: never).
    """
    if not secret:
        raise ConfigError("MUX_WEBHOOK_SECRET is not set (environment or .env)")
    emit = log or _no_log
    lock = threading.Lock()
    shared: dict[str, Any] = {}

    def resources() -> tuple[Engine, MuxGateway | None]:
        with lock:
            if "engine" not in shared:
                shared["engine"] = engine() if callable(engine) else engine
                shared["gateway"] = gateway_factory() if gateway_factory else None
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
            emit(f"webhook tombstone pruning failed: {exc.message}")
            return
        if n:
            emit(f"webhook pruned {n} tombstone(s) older than {TOMBSTONE_TTL // 86400} days")

    def handle(event: dict[str, Any]) -> EventOutcome:
        eng, gateway = resources()
        outcome = handle_event(eng, event, gateway=gateway, policies=policies)
        prune_if_due(eng)
        return outcome

    def answer(status: int, line: str, payload: dict[str, Any]) -> JSONResponse:
        emit(f"webhook {status} {line}")
        return JSONResponse(payload, status_code=status)

    def refuse(status: int, reason: str) -> JSONResponse:
        return answer(status, f"rejected: {reason}", {"ok": False, "error": reason})

    async def receive(request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > max_body:
            # Refused before reading a byte; uvicorn closes the connection after answering.
            return refuse(413, f"body of {int(declared)} bytes is over the {max_body}-byte cap")
        try:
            body = await asyncio.wait_for(_read_capped(request, max_body), body_timeout)
        except _TooLarge:
            return refuse(413, f"body is over the {max_body}-byte cap")
        except TimeoutError:
            return refuse(408, f"body not received within {body_timeout:g} s")
        except ClientDisconnect:
            emit("webhook - rejected: client disconnected before sending the body")
            return Response(status_code=400)
        try:
            # Signature before parsing: unauthenticated bytes are never interpreted.
            verify_signature(secret, request.headers.get("mux-signature"), body)
            event = parse_event(body)
        except WebhookRejected as exc:
            return refuse(http_status(exc), exc.message)
        label = f"{event.get('type')} id={event.get('id') or '-'}"
        try:
            outcome = await asyncio.wait_for(run_in_threadpool(handle, event), handler_timeout)
        except WebhookRejected as exc:
            return answer(
                http_status(exc),
                f"{label} outcome=rejected: {exc.message}",
                {"ok": False, "error": exc.message},
            )
        except TimeoutError:
            reason = f"not handled within {handler_timeout:g} s; retry later"
            return answer(503, f"{label} outcome=error: {reason}", {"ok": False, "error": reason})
        except (MuxError, VidpipeError) as exc:
            # Database or Mux trouble: 5xx so Mux retries; the transaction rolled back.
            return answer(
                503, f"{label} outcome=error: {exc.message}", {"ok": False, "error": exc.message}
            )
        except Exception as exc:  # a bug: answer 500, keep serving, say what kind
            reason = f"internal error ({type(exc).__name__})"
            return answer(500, f"{label} outcome=error: {reason}", {"ok": False, "error": reason})
        return answer(200, outcome.log_line(), {"ok": True, **outcome.as_json()})

    async def health(_request: Request) -> Response:
        return JSONResponse({"ok": True, "service": "vidpipe webhooks"})

    return Starlette(
        routes=[
            Route("/", health, methods=["GET"]),
            Route("/", receive, methods=["POST"]),
            Route("/webhooks/mux", receive, methods=["POST"]),
        ]
    )


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


def server_config(
    app: Any, *, host: str = "127.0.0.1", port: int = 8000, graceful: int = 10
) -> uvicorn.Config:
    """uvicorn settings for a production endpoint (also used by the tests)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="off",
        access_log=False,  # the app logs one line per request itself
        log_level="warning",
        server_header=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=graceful,
        limit_concurrency=200,  # beyond this uvicorn answers 503 rather than queueing forever
        h11_max_incomplete_event_size=16 * 1024,  # header block cap
    )


def serve(
    engine: Engine,
    secret: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    gateway: MuxGateway | None = None,
    log: Log = print,
    max_body: int = MAX_BODY,
    policies: Policies | None = None,
) -> None:
    """Serve webhooks until SIGTERM or SIGINT, then finish open requests (up to 10 s) and
    return. A port that cannot be bound is a VidpipeError."""
    app = create_app(
        engine,
        secret,
        gateway_factory=(lambda: gateway),
        max_body=max_body,
        log=log,
        policies=policies,
    )
    sock = bind(host, port)
    server = _Server(server_config(app, host=host, port=port))
    bound_port = sock.getsockname()[1]
    confirm = "confirming events with Mux" if gateway else "trusting signed events: no Mux token"
    log(f"vidpipe webhooks listening on http://{host}:{bound_port}/ ({confirm})")
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    log(f"vidpipe webhooks stopped ({server.stopped_by or 'shutdown'})")


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
