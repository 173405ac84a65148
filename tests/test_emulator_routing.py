"""The emulator's route table: how a request finds its route (no sockets)."""

from __future__ import annotations

from vidpipe.emulator.routes import ROUTES
from vidpipe.emulator.routing import Request, Response, Route, Router, data


def _answer(name: str):  # type: ignore[no-untyped-def]
    def handler(req: Request) -> Response:
        return data({"route": name, **req.params})

    return handler


def test_a_pattern_segment_in_braces_reaches_the_handler_as_a_param() -> None:
    router = Router([Route("GET", "/video/v1/assets/{asset_id}/tracks/{track_id}", _answer("t"))])
    found = router.find("GET", "/video/v1/assets/a1/tracks/t9")
    assert found is not None
    route, params = found
    assert params == {"asset_id": "a1", "track_id": "t9"}
    assert route.pattern == "/video/v1/assets/{asset_id}/tracks/{track_id}"


def test_a_known_path_with_another_method_or_more_segments_finds_no_route() -> None:
    router = Router([Route("GET", "/video/v1/assets/{asset_id}", _answer("get"))])
    assert router.find("PATCH", "/video/v1/assets/a1") is None
    assert router.find("GET", "/video/v1/assets/a1/extra") is None
    assert router.find("GET", "/video/v1/uploads/a1") is None


def test_the_first_route_in_table_order_answers() -> None:
    first, second = _answer("first"), _answer("second")
    router = Router([Route("GET", "/x/{anything}", first), Route("GET", "/x/literal", second)])
    found = router.find("GET", "/x/literal")
    assert found is not None and found[0].handler is first


def test_every_route_of_the_table_has_a_distinct_method_and_pattern() -> None:
    keys = [(r.method, r.pattern) for r in ROUTES]
    assert len(keys) == len(set(keys))
    assert {r.method for r in ROUTES} <= {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"}
