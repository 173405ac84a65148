"""Health checks of `webhook serve` for an orchestrator or a load balancer.

`GET /healthz`: the process answers (never touches the database; answered even when the
server is at its limit of requests in progress). `GET /readyz`: the database answers and
its environment pin can be read (and is still the one the server started with); 503 with
the reason otherwise. Neither writes a log line: probes come every few seconds.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from vidpipe.db import sqlite_file
from vidpipe.environment import read_pin
from vidpipe.errors import VidpipeError
from vidpipe.mux import Environment

READY_TIMEOUT = 5.0
"""Seconds a readiness check may take before it counts as not ready."""

HEALTH_PATHS = ("/healthz", "/readyz")


def not_ready(engine: Engine, started_with: Environment | None) -> str | None:
    """Why the database cannot serve webhooks now, or None when it can.

    A SQLite database must still be at its path: an open connection keeps working on a file
    moved away or deleted, which is no database the platform sees (and opening the path
    would create an empty one, so it is checked, not opened). `started_with` is the pin read
    when the server started: a database pinned to another environment since (`db pin
    --force`) needs a restart.
    """
    path = sqlite_file(engine.url) if engine.dialect.name == "sqlite" else None
    if path is not None and not (path.is_file() and os.access(path, os.R_OK | os.W_OK)):
        return "the SQLite database file is missing or not readable and writable"
    try:
        pinned = read_pin(engine)
    except VidpipeError as exc:
        return exc.message
    except Exception as exc:  # e.g. a missing table: not a connection error, still not ready
        return f"the database cannot be read ({type(exc).__name__})"
    if started_with is not None and (pinned is None or pinned.id != started_with.id):
        return "the database's Mux environment changed since the server started; restart it"
    return None


def probes(
    engine: Callable[[], Engine],
    environment: Environment | None,
    *,
    detail: bool,
    timeout: float = READY_TIMEOUT,
) -> list[BaseRoute]:
    """The `/healthz` and `/readyz` routes; `engine` gives the server's shared engine.
    `detail`: a 503 says why (on the private metrics port); else only that it is not ready
    (the webhook port is public: a database error names hosts and tables)."""

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def readyz(_request: Request) -> Response:
        try:
            reason = await asyncio.wait_for(
                run_in_threadpool(lambda: not_ready(engine(), environment)), timeout
            )
        except TimeoutError:
            reason = f"the database did not answer within {timeout:g} s"
        except VidpipeError as exc:
            reason = exc.message
        if reason is None:
            return JSONResponse({"ok": True})
        error = reason if detail else "not ready"
        return JSONResponse({"ok": False, "error": error}, status_code=503)

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
