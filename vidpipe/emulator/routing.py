"""The route machinery of the emulator's API: requests in, responses out, no sockets.

A route is (method, path pattern, function). The function takes a `Request` and returns a
`Response`; it reaches the emulator's state only through `Request.services` (the store,
`whoami`, the URL fetcher), never through the HTTP handler or the `Emulator`. The table of
routes and how to add one: `vidpipe.emulator.routes`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from vidpipe.emulator.masters import MasterAccess
from vidpipe.emulator.objects import NOT_FOUND, ApiError
from vidpipe.emulator.store import Store


@dataclass(frozen=True)
class Services:
    """What routes may use: the narrow interface between the API and the emulator's state.

    `whoami()` answers `GET /system/v1/whoami`; `ingest(asset_id, url)` starts fetching an
    asset's input URL in the background; `masters` is every asset's master access.
    """

    store: Store
    whoami: Callable[[], dict[str, Any]]
    ingest: Callable[[str, str], None]
    masters: MasterAccess


@dataclass(frozen=True)
class Request:
    """One API request as a route sees it.

    `params` are the `{name}` segments of the route's pattern; `query` holds the last value
    of each query parameter; `url_base` is `http://HOST:PORT` as the client addressed us.
    """

    method: str
    path: str
    params: Mapping[str, str]
    query: Mapping[str, str]
    headers: Message
    url_base: str
    services: Services
    read_json: Callable[[], Any]

    @property
    def store(self) -> Store:
        return self.services.store

    def json(self) -> Any:
        """The body as JSON (`{}` when empty); ApiError(400) when it is not JSON."""
        return self.read_json()


@dataclass(frozen=True)
class Response:
    """An answer: status, body bytes, Content-Type and extra headers.

    A 204 is sent without Content-Length; a HEAD request gets the headers only.
    """

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


def json_response(status: int, payload: dict[str, Any] | None) -> Response:
    """`payload` as a JSON body (None: an empty body with no Content-Type)."""
    if payload is None:
        return Response(status)
    return Response(status, json.dumps(payload).encode(), "application/json")


def data(payload: Any, status: int = 200, **extra: Any) -> Response:
    """Mux's usual answer: `{"data": payload, **extra}`."""
    return json_response(status, {"data": payload, **extra})


def no_content() -> Response:
    """204 with no body (Mux's answer to a delete)."""
    return json_response(204, None)


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    """`method` + `pattern` (`/video/v1/assets/{asset_id}`) -> `handler`.

    A `{name}` segment matches any one path segment and reaches the handler as
    `request.params[name]`. `authenticated` routes need Basic credentials and count against
    the rate limit; others (links Mux hands out, like a download URL) do not.
    """

    method: str
    pattern: str
    handler: Handler
    authenticated: bool = True
    segments: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "segments", tuple(self.pattern.strip("/").split("/")))

    def match(self, parts: list[str]) -> dict[str, str] | None:
        """The `{name}` values when `parts` (the path split on '/') fit the pattern."""
        if len(parts) != len(self.segments):
            return None
        params: dict[str, str] = {}
        for segment, part in zip(self.segments, parts, strict=True):
            if segment.startswith("{") and segment.endswith("}"):
                params[segment[1:-1]] = part
            elif segment != part:
                return None
        return params


class Routes:
    """A resource module's routes, each declared above its handler (as Flask's or FastAPI's
    routers do), so a handler's method and path are read where it is written:

        routes = Routes()

        @routes("GET", "/video/v1/assets/{asset_id}")
        def get_asset(req: Request) -> Response: ...

    Iterating gives the routes in the order they were declared.
    """

    def __init__(self) -> None:
        self._routes: list[Route] = []

    def __call__(
        self, method: str, pattern: str, *, authenticated: bool = True
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self._routes.append(Route(method, pattern, handler, authenticated))
            return handler

        return register

    def __iter__(self) -> Iterator[Route]:
        return iter(self._routes)


class Router:
    """Finds the route for a request: the first in table order whose method and path fit."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self._routes = tuple(routes)
        for route in self._routes:
            if route.method != route.method.upper():
                raise ValueError(f"route method must be upper case: {route.method!r}")

    def find(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        parts = path.strip("/").split("/")
        for route in self._routes:
            if route.method == method:
                params = route.match(parts)
                if params is not None:
                    return route, params
        return None


def not_found() -> ApiError:
    """Mux's 404 for a path or method it does not serve."""
    return ApiError(404, "not_found", NOT_FOUND)
