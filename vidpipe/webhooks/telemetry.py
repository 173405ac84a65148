"""Prometheus metrics of `webhook serve`, and the app that serves them on the metrics port.

Every label is a closed set: an event's type is one of `EVENT_TYPES` or `other`, an outcome
one of `OUTCOMES`, a rejection one of `REASONS`, a Mux call's method one of `METHODS` and its
status a class (`2xx`, `3xx`, `4xx`, `429`, `5xx`, `error` for no answer). Nothing a sender
chooses (an asset ID, a URL, an unknown type) ever becomes a label value, so no client can
grow the number of series.

Each `WebhookMetrics` has a registry of its own (never prometheus-client's global one): two
servers in one process, the tests and a program using vidpipe as a library stay independent.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

EVENT_TYPES = (
    "video.asset.created",
    "video.asset.ready",
    "video.asset.errored",
    "video.asset.updated",
    "video.asset.deleted",
    "video.asset.track.created",
    "video.asset.track.ready",
    "video.asset.track.errored",
    "video.asset.track.deleted",
    "video.upload.created",
    "video.upload.asset_created",
    "video.upload.cancelled",
    "video.upload.errored",
)
"""Event types counted under their own name; any other type counts as `other`."""

OUTCOMES = ("recorded", "cleared", "journal-updated", "duplicate", "stale", "ignored", "error")
"""What an accepted delivery came to (`vidpipe.webhooks.Outcome`, or `error` when the
database or Mux failed and the answer was 5xx, so Mux retries)."""

REASONS = ("signature", "stale", "malformed", "too_large", "overloaded", "timeout")
"""Why a request was refused: a missing, garbled or wrong signature; a signature too old; a
body (or request head) that is not a Mux event; over the size caps; too many requests in
progress; not received or not handled in time."""

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Seconds; Mux gives up on a delivery after 5 s, and `serve` answers 503 after 30 s."""


def type_label(event_type: object) -> str:
    """The label of an event type: itself when it is one of `EVENT_TYPES`, else `other`."""
    return event_type if isinstance(event_type, str) and event_type in EVENT_TYPES else "other"


def status_class(status: int | None) -> str:
    """`429` on its own (Mux's rate limit), else the class of `status`; `error` for none."""
    if status is None or not 100 <= status <= 599:
        return "error"
    return "429" if status == 429 else f"{status // 100}xx"


class WebhookMetrics:
    """The counters of one `serve`: deliveries by type and outcome, rejections by reason, the
    request-duration histogram, requests in progress, Mux calls by method and status class,
    database errors, and the process's own figures (CPU, memory, open files)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self.events = Counter(
            "vidpipe_webhook_events",
            "Webhook deliveries accepted (signature and body valid), by type and outcome.",
            ["type", "outcome"],
            registry=reg,
        )
        self.rejected = Counter(
            "vidpipe_webhook_rejected",
            "Webhook requests refused, by reason.",
            ["reason"],
            registry=reg,
        )
        self.request_seconds = Histogram(
            "vidpipe_webhook_request_seconds",
            "Time from a webhook request's headers to its answer.",
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.in_progress = Gauge(
            "vidpipe_webhook_in_progress",
            "Webhook requests being handled (headers received, not yet answered).",
            registry=reg,
        )
        self.mux_requests = Counter(
            "vidpipe_mux_requests",
            "Requests to the Mux API, by method and status class (error: no answer).",
            ["method", "status"],
            registry=reg,
        )
        self.database_errors = Counter(
            "vidpipe_database_errors",
            "Database operations that failed while handling webhooks.",
            registry=reg,
        )
        ProcessCollector(registry=reg)
        # Zero from the start, so rate() and absent-series alerts work before the first one.
        for reason in REASONS:
            self.rejected.labels(reason)

    def accepted(self, event_type: object, outcome: str) -> None:
        known = outcome if outcome in OUTCOMES else "error"
        self.events.labels(type_label(event_type), known).inc()

    def refused(self, reason: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}")
        self.rejected.labels(reason).inc()

    def mux_request(self, method: str, status: int | None) -> None:
        """A `vidpipe.mux.RequestObserver`: one Mux call answered (or not)."""
        verb = method.upper()
        self.mux_requests.labels(verb if verb in METHODS else "other", status_class(status)).inc()

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)


def metrics_app(metrics: WebhookMetrics, probes: list[BaseRoute]) -> Starlette:
    """The metrics port's app: `GET /metrics`, and the health `probes` (the same routes as
    on the webhook port). Anything else is 404."""

    async def scrape(_request: Request) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/metrics", scrape, methods=["GET"]), *probes])


class ByPort:
    """Sends each request to the app of the port it arrived on: one uvicorn server, one
    event loop and one set of connection guards for the webhook and the metrics ports.
    Requests on any port but `port` go to `default`."""

    def __init__(self, default: ASGIApp, *, port: int, app: ASGIApp) -> None:
        self.default = default
        self.port = port
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        server = scope.get("server")
        target = self.app if server is not None and server[1] == self.port else self.default
        await target(scope, receive, send)


def observe_mux(gateway: Any, metrics: WebhookMetrics) -> None:
    """Count `gateway`'s calls (a `vidpipe.mux.MuxGateway`, or None: nothing to count)."""
    if gateway is not None:
        gateway.on_request = metrics.mux_request
