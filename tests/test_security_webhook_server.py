"""The webhook endpoint against hostile clients, over real sockets: idle and trickling
connections neither hold a slot nor stay open, only requests in progress count against the
limit, the header block is capped however it arrives, malformed input is answered 4xx (never
5xx), and log lines cannot be forged."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_helpers import ServeProcess
from sqlalchemy import Engine
from sqlmodel import Session
from test_webhooks import SECRET, Served, asset_data, event, post, ready, row

from vidpipe.db import Lesson, World, init_db, make_engine
from vidpipe.mux import Asset
from vidpipe.targets import MAX_ID, Kind, Target, from_passthrough
from vidpipe.webhooks import MissingSignature, sign, verify_signature
from vidpipe.webhooks.serve import create_app


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = make_engine(f"sqlite:///{tmp_path / 'platform.db'}")
    init_db(eng)
    with Session(eng) as session:
        session.add_all([Lesson(id=i, title=f"Lesson {i}") for i in range(1, 6)])
        session.add(World(id=1, title="Course 1"))
        session.commit()
    yield eng
    eng.dispose()


def served(app: Any, **limits: Any) -> Served:
    """A real uvicorn server in a thread, with the production config and test-sized limits."""
    return Served(app, graceful=1, **limits)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.settimeout(10)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (a 10 s socket timeout fails the test)."""
    answer = b""
    try:
        while data := sock.recv(65536):
            answer += data
    except ConnectionResetError:
        pass
    return answer


class Trickle:
    """Sockets that each send one byte of a request head per `interval` seconds until closed."""

    def __init__(self, port: int, count: int, interval: float = 1.0) -> None:
        self.socks = [connect(port) for _ in range(count)]
        self.interval = interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        head = b"POST /webhooks/mux HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 4096
        position = 0
        while not self.stop.wait(self.interval):
            for sock in self.socks:
                try:
                    sock.send(head[position : position + 1])
                except OSError:
                    pass
            position += 1

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        for sock in self.socks:
            sock.close()


@pytest.fixture
def served_process(engine: Engine) -> Iterator[str]:
    """`serve()` in its own process, with its production limits; yields its URL."""
    server = ServeProcess(str(engine.url), SECRET)
    try:
        yield server.url
    finally:
        server.stop()


# -- idle and slow connections -------------------------------------------------------------


def test_a_delivery_is_answered_while_205_idle_and_slow_sockets_are_open(
    served_process: str, engine: Engine
) -> None:
    port = int(served_process.rsplit(":", 1)[1])
    idle = [connect(port) for _ in range(105)]
    slow = Trickle(port, 100, interval=1.0)
    try:
        time.sleep(1.5)  # every socket accepted, the slow ones a byte or two into their head
        response = post(served_process + "/webhooks/mux", ready("A"))
        assert response.status_code == 200, response.text
        assert response.json()["outcome"] == "recorded"
        assert row(engine) == ("A", "pb-A")
    finally:
        slow.close()
        for sock in idle:
            sock.close()


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(
    engine: Engine,
) -> None:
    with served(create_app(engine, SECRET), header_timeout=0.5) as s:
        sock = connect(s.port)
        with sock:
            assert read_until_closed(sock) == b""  # closed by the server, nothing said
        assert post(s.url, ready("A")).status_code == 200


def test_a_trickled_header_is_cut_off_with_408_however_steady_the_bytes(
    engine: Engine,
) -> None:
    with served(create_app(engine, SECRET), header_timeout=1.0) as s:
        slow = Trickle(s.port, 1, interval=0.05)  # 20 bytes/s: never idle, never done
        try:
            answer = read_until_closed(slow.socks[0])
        finally:
            slow.close()
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert row(engine) == (None, None)


def test_a_request_handled_for_longer_than_the_header_timeout_is_answered(
    engine: Engine,
) -> None:
    gate = threading.Event()

    class SlowGateway:
        def find_asset(self, asset_id: str) -> Asset:
            gate.wait(10)
            return Asset.from_json(asset_data(asset_id))

    app = create_app(engine, SECRET, gateway_factory=lambda: SlowGateway())  # type: ignore[arg-type,return-value]
    with served(app, header_timeout=0.5) as s:
        with httpx.Client(timeout=10) as client:
            body = json.dumps(ready("A")).encode()
            timer = threading.Timer(1.5, gate.set)  # handled well past the header timeout
            timer.start()
            first = client.post(s.url, content=body, headers={"Mux-Signature": sign(SECRET, body)})
            timer.join()
            assert first.status_code == 200 and first.json()["outcome"] == "recorded"


# -- the limits ----------------------------------------------------------------------------


def test_idle_connections_take_no_slot_of_the_requests_in_progress(engine: Engine) -> None:
    app = create_app(engine, SECRET, max_in_progress=2)
    with served(app) as s:
        idle = [connect(s.port) for _ in range(20)]
        try:
            time.sleep(0.3)
            assert post(s.url, ready("A")).status_code == 200
        finally:
            for sock in idle:
                sock.close()


def test_requests_in_progress_beyond_the_limit_are_answered_503(engine: Engine) -> None:
    gate = threading.Event()
    entered = threading.Semaphore(0)

    class BlockingGateway:
        def find_asset(self, asset_id: str) -> Asset:
            entered.release()
            gate.wait(10)
            return Asset.from_json(asset_data(asset_id, passthrough=_lesson(int(asset_id[1:]))))

    logs: list[str] = []
    app = create_app(
        engine,
        SECRET,
        gateway_factory=lambda: BlockingGateway(),  # type: ignore[arg-type,return-value]
        max_in_progress=2,
        log=logs.append,
    )
    with served(app) as s:
        results: dict[int, int] = {}

        def deliver(i: int) -> None:
            results[i] = post(s.url, ready(f"A{i}", passthrough=_lesson(i))).status_code

        busy = [threading.Thread(target=deliver, args=(i,)) for i in (1, 2)]
        for t in busy:
            t.start()
        for _ in busy:
            assert entered.acquire(timeout=10)
        refused = post(s.url, ready("A3", passthrough=_lesson(3)))
        gate.set()
        for t in busy:
            t.join(timeout=10)
    assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
    assert results == {1: 200, 2: 200}
    assert row(engine, Target(Kind.LESSON, 3)) == (None, None)
    assert any("503" in line and "in progress" in line for line in logs)


def test_at_the_connection_cap_the_oldest_idle_connection_makes_room(engine: Engine) -> None:
    with served(create_app(engine, SECRET), max_connections=20) as s:
        idle = [connect(s.port) for _ in range(30)]
        try:
            time.sleep(0.3)
            assert post(s.url, ready("A")).status_code == 200
            # The first ones were closed to make room for the later ones.
            assert read_until_closed(idle[0]) == b""
        finally:
            for sock in idle:
                sock.close()


@pytest.mark.parametrize("pad", [20 * 1024, 100 * 1024])
def test_a_header_block_over_the_cap_is_refused_even_when_it_arrives_whole(
    engine: Engine, pad: int
) -> None:
    with served(create_app(engine, SECRET)) as s:
        body = json.dumps(ready("A")).encode()
        head = (
            b"POST /webhooks/mux HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Mux-Signature: " + sign(SECRET, body).encode() + b"\r\n"
            b"X-Pad: " + b"a" * pad + b"\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        with connect(s.port) as sock:
            sock.sendall(head + body)  # one write: it reaches the server in one read
            answer = read_until_closed(sock)
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:80]
        assert row(engine) == (None, None)
        assert post(s.url, ready("A")).status_code == 200


# -- malformed input: 4xx, never 5xx --------------------------------------------------------


def _lesson(lesson_id: int) -> str:
    return json.dumps({"lesson_id": lesson_id})


def _nested(depth: int) -> bytes:
    return b'{"type": "video.asset.ready", "id": "e", "data": ' + b"[" * depth + b"]" * depth + b"}"


def _signed(body: bytes) -> dict[str, str]:
    return {"Mux-Signature": sign(SECRET, body)}


MALFORMED: dict[str, tuple[bytes, dict[str, Any] | None]] = {
    # Each is answered 4xx.
    "a 5,000-digit timestamp": (b"{}", {"Mux-Signature": "t=" + "9" * 5000 + ",v1=" + "0" * 64}),
    "a timestamp with non-ASCII digits": (b"{}", {"Mux-Signature": "t=١٢٣,v1=00".encode()}),
    "a deeply nested signed body": (_nested(100_000), None),
    "a signed body nested just under the parser's limit": (_nested(900), None),
    "NaN and Infinity in a signed body": (
        b'{"type": "video.asset.ready", "id": "e", "data": {"id": "A", "created_at": Infinity,'
        b' "duration": NaN}}',
        None,
    ),
    "a signed body that is not UTF-8": (b'{"type": "\xff\xfe"}', None),
    "a 100 KB data.id": (
        json.dumps(event("video.asset.deleted", {"id": "A" * 100_000})).encode(),
        None,
    ),
    "data that is a list": (json.dumps({"type": "video.asset.ready", "data": []}).encode(), None),
    "an upload event without an asset": (
        json.dumps(event("video.upload.asset_created", {"id": "up-1", "asset_id": 7})).encode(),
        None,
    ),
    "a ready asset whose playback IDs are not a list": (
        json.dumps(event("video.asset.ready", {"id": "A", "playback_ids": 5})).encode(),
        None,
    ),
}

ODD: dict[str, dict[str, Any]] = {
    # Each is a well-formed event with odd fields: handled (2xx, nothing changed), never 5xx.
    "an errored event whose errors are garbage": event(
        "video.asset.errored", {"id": "A", "errors": [1, 2]}
    ),
    "a ready asset whose passthrough is a list": event(
        "video.asset.ready", {**asset_data("A"), "passthrough": [1]}
    ),
    "a ready asset whose passthrough is an object": event(
        "video.asset.ready", {**asset_data("A"), "passthrough": {"lesson_id": 1}}
    ),
    "a ready asset whose created_at is huge": event(
        "video.asset.ready", {**asset_data("A", passthrough=None), "created_at": 1e308}
    ),
    "an upload error that is a list": event("video.upload.errored", {"id": "up-1", "error": ["x"]}),
    "an upload error whose message is an object": event(
        "video.upload.errored", {"id": "up-1", "error": {"message": {"a": 1}}}
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_input_is_a_4xx_and_changes_nothing(
    engine: Engine, case: str, capfd: pytest.CaptureFixture[str]
) -> None:
    body, headers = MALFORMED[case]
    logs: list[str] = []
    with served(create_app(engine, SECRET, log=logs.append)) as s:
        response = httpx.post(s.url, content=body, headers=headers or _signed(body), timeout=10)
        assert 400 <= response.status_code < 500, (response.status_code, response.text)
        assert httpx.get(s.url).status_code == 200  # still serving
    assert row(engine) == (None, None)
    assert "Traceback" not in capfd.readouterr().err
    assert all("internal error" not in line for line in logs)


@pytest.mark.parametrize("case", sorted(ODD))
def test_odd_fields_in_a_signed_event_are_handled_without_a_5xx(
    engine: Engine, case: str, capfd: pytest.CaptureFixture[str]
) -> None:
    with served(create_app(engine, SECRET)) as s:
        response = post(s.url, ODD[case])
    assert response.status_code < 500, response.text
    assert row(engine) == (None, None)
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize("lesson_id", [10**30, 2**63, -1, 0])
def test_a_passthrough_id_no_row_can_have_is_not_vidpipes(engine: Engine, lesson_id: int) -> None:
    with served(create_app(engine, SECRET)) as s:
        response = post(s.url, ready("A", passthrough=_lesson(lesson_id)))
    assert response.status_code == 200 and response.json()["outcome"] == "ignored"


def test_passthrough_ids_are_bounded_by_bigint() -> None:
    assert from_passthrough(_lesson(MAX_ID)) == Target(Kind.LESSON, 2**63 - 1)
    assert from_passthrough(_lesson(MAX_ID + 1)) is None


def test_a_timestamp_of_thousands_of_digits_is_a_garbled_signature() -> None:
    with pytest.raises(MissingSignature):
        verify_signature(SECRET, "t=" + "1" * 5000 + ",v1=00", b"{}")


# -- log lines -----------------------------------------------------------------------------


def test_an_event_cannot_forge_log_lines(engine: Engine) -> None:
    logs: list[str] = []
    forged = "\nwebhook 200 video.asset.deleted id=x outcome=cleared: lesson 1\r\x1b[2K"
    with served(create_app(engine, SECRET, log=logs.append)) as s:
        evt = ready("A")
        evt["id"] = "evt-1" + forged
        assert post(s.url, evt).status_code == 200
        other = event("video.asset.created" + forged, asset_data("B"))
        assert post(s.url, other).status_code == 200
        gone = event("video.asset.deleted", asset_data("C" + forged))
        assert post(s.url, gone).status_code == 200
    assert len(logs) == 3
    for line in logs:
        assert "\n" not in line and "\r" not in line and "\x1b" not in line
        assert "\\n" in line  # escaped, still readable
    assert row(engine) == ("A", "pb-A")


def test_a_long_field_is_cut_in_the_log(engine: Engine) -> None:
    logs: list[str] = []
    with served(create_app(engine, SECRET, log=logs.append)) as s:
        assert post(s.url, event("x" * 50_000, asset_data("B"))).status_code == 200
    assert len(logs) == 1 and len(logs[0]) <= 1000
