"""Tests for vidpipe.transfer against a scripted fake of a GCS resumable upload session."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import json
import os
import re
import threading
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from vidpipe import transfer as transfer_module
from vidpipe.errors import TransferError
from vidpipe.transfer import (
    CHUNK_QUANTUM,
    TransferRetry,
    UploadUrlExpired,
    query_offset,
    transfer,
)

KiB = 1024
MiB = 1024 * 1024
URL = "https://storage.example.com/upload/video?upload_id=SECRET-SESSION&sig=TOPSECRET"
NO_JITTER = TransferRetry(attempts=8, initial=1.0, maximum=30.0, jitter=0.0)


# --- the fake server ---------------------------------------------------------------------


@dataclass
class Cut:
    """Drop the connection after reading at least `after` body bytes; whole 256 KiB blocks
    of what arrived are kept, as GCS does."""

    after: int
    exc: type[httpx.TransportError] = httpx.ReadError


@dataclass
class Status:
    """Answer with this status (after reading and discarding any body)."""

    code: int
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None


@dataclass
class Short:
    """Read the whole chunk but keep only its first `keep` bytes; 308 says so."""

    keep: int


@dataclass
class Forget:
    """Read the whole chunk, then lose everything held; 308 with no Range."""


Action = Cut | Status | Short | Forget


@dataclass
class Seen:
    content_range: str
    content_length: str | None
    transfer_encoding: str | None
    received: int
    max_block: int

    @property
    def start(self) -> int | None:
        match = re.fullmatch(r"bytes (\d+)-\d+/\d+", self.content_range)
        return int(match.group(1)) if match else None

    @property
    def is_query(self) -> bool:
        return self.content_range.startswith("bytes */")


class FakeSession(httpx.BaseTransport):
    """A GCS resumable session: holds bytes, answers 308 + Range, 200 when complete.

    `plan` maps a request number (1-based, queries included) to a fault; `default` applies
    to every request not in the plan. The request body is read block by block as httpx
    produces it, so the block sizes seen are the sizes the client streams.
    """

    def __init__(
        self,
        plan: dict[int, Action] | None = None,
        default: Action | None = None,
        *,
        held: bytes = b"",
        store: bool = True,
    ) -> None:
        self.plan = plan or {}
        self.default = default
        self.data = bytearray(held)
        self.store = store
        self.sink_hash = hashlib.sha256()
        self.sink_len = 0
        self.complete = False
        self.seen: list[Seen] = []

    # --- what tests look at
    @property
    def starts(self) -> list[int | None]:
        return [s.start for s in self.seen]

    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    # --- the protocol
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert request.method == "PUT"
        assert str(request.url) == URL
        number = len(self.seen) + 1
        action = self.plan.get(number, self.default)
        content_range = request.headers["Content-Range"]
        seen = Seen(
            content_range,
            request.headers.get("Content-Length"),
            request.headers.get("Transfer-Encoding"),
            0,
            0,
        )
        self.seen.append(seen)
        query = re.fullmatch(r"bytes \*/(\d+)", content_range)
        chunk = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", content_range)
        assert query or chunk, content_range
        start = int(chunk.group(1)) if chunk else self.held
        if chunk:
            assert start == self.held, f"chunk starts at {start}, server holds {self.held}"

        if isinstance(action, Cut) and action.after == 0:
            raise action.exc("connection refused", request=request)
        body = bytearray()
        for block in self._blocks(request):
            seen.received += len(block)
            seen.max_block = max(seen.max_block, len(block))
            if self.store:
                body += block
            else:
                self.sink_hash.update(block)
                self.sink_len += len(block)
            if isinstance(action, Cut) and seen.received >= action.after:
                whole = len(body) - len(body) % CHUNK_QUANTUM
                self.data += body[:whole]
                raise action.exc("connection reset by peer", request=request)

        if isinstance(action, Status):
            headers = dict(action.headers)
            if action.json is not None:
                return httpx.Response(action.code, headers=headers, json=action.json)
            return httpx.Response(action.code, headers=headers)

        if chunk:
            end, total = int(chunk.group(2)), int(chunk.group(3))
            assert seen.received == end - start + 1 == int(seen.content_length or -1)
            assert seen.transfer_encoding is None
            if end + 1 < total:
                assert (end + 1 - start) % CHUNK_QUANTUM == 0, "non-final chunk off quantum"
            if isinstance(action, Short):
                body = body[: action.keep]
            self.data += body
            if isinstance(action, Forget):
                self.data.clear()
            if self.held == total:
                self.complete = True
        total = int(content_range.rsplit("/", 1)[1])
        if self.complete:
            return httpx.Response(200, json={"size": str(total), "name": "video"})
        if self.held == 0:
            return httpx.Response(308)
        return httpx.Response(308, headers={"Range": f"bytes=0-{self.held - 1}"})

    @property
    def held(self) -> int:
        return len(self.data) if self.store else self.sink_len

    @staticmethod
    def _blocks(request: httpx.Request) -> Iterator[bytes]:
        assert isinstance(request.stream, httpx.SyncByteStream)
        yield from request.stream


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


# --- fixtures ------------------------------------------------------------------------------


def make_file(tmp_path: Path, size: int, name: str = "video.mp4") -> Path:
    path = tmp_path / name
    # Not a repeating pattern, so a misplaced block changes the hash.
    path.write_bytes(os.urandom(size))
    return path


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def client_for(fake: httpx.BaseTransport) -> httpx.Client:
    return httpx.Client(transport=fake)


SIZE = 3 * MiB + 100 * KiB  # four 1 MiB chunks, the last one short


@pytest.fixture
def video(tmp_path: Path) -> Path:
    return make_file(tmp_path, SIZE)


def run(
    fake: FakeSession, path: Path, *, sleeps: Sleeps | None = None, **kwargs: Any
) -> transfer_module.TransferResult:
    kwargs.setdefault("chunk_size", MiB)
    kwargs.setdefault("retry", NO_JITTER)
    with client_for(fake) as client:
        return transfer(
            client, URL, path, sleep=sleeps if sleeps is not None else Sleeps(), **kwargs
        )


# --- the happy paths -----------------------------------------------------------------------


def test_uploads_the_file_in_chunks_after_asking_for_the_offset(video: Path) -> None:
    fake = FakeSession()
    confirmed: list[int] = []

    result = run(fake, video, on_confirmed=confirmed.append)

    assert fake.sha256() == sha256_file(video)
    assert [s.content_range for s in fake.seen] == [
        f"bytes */{SIZE}",
        f"bytes 0-{MiB - 1}/{SIZE}",
        f"bytes {MiB}-{2 * MiB - 1}/{SIZE}",
        f"bytes {2 * MiB}-{3 * MiB - 1}/{SIZE}",
        f"bytes {3 * MiB}-{SIZE - 1}/{SIZE}",
    ]
    assert confirmed == [0, MiB, 2 * MiB, 3 * MiB, SIZE]
    assert result.seconds > 0  # its own wall clock, first request to the final answer
    assert dataclasses.replace(result, seconds=0.0) == transfer_module.TransferResult(
        total=SIZE,
        bytes_sent=SIZE,
        requests=5,
        retries=0,
        response_json={"size": str(SIZE), "name": "video"},
    )


def test_one_put_when_the_chunk_is_larger_than_the_file(video: Path) -> None:
    fake = FakeSession()
    result = run(fake, video, chunk_size=8 * MiB, start_offset=0)
    assert fake.starts == [0]
    assert result.requests == 1
    assert fake.sha256() == sha256_file(video)


def test_start_offset_skips_the_query(video: Path) -> None:
    fake = FakeSession(held=video.read_bytes()[: 2 * MiB])
    result = run(fake, video, start_offset=2 * MiB)
    assert fake.starts == [2 * MiB, 3 * MiB]
    assert result.bytes_sent == SIZE - 2 * MiB
    assert fake.sha256() == sha256_file(video)


def test_resumes_from_what_the_server_already_holds(video: Path) -> None:
    fake = FakeSession(held=video.read_bytes()[: MiB + 256 * KiB])
    result = run(fake, video)
    assert fake.starts == [None, MiB + 256 * KiB, 2 * MiB + 256 * KiB]
    assert result.bytes_sent == SIZE - MiB - 256 * KiB
    assert fake.sha256() == sha256_file(video)


def test_already_complete_returns_at_once(video: Path) -> None:
    fake = FakeSession(held=video.read_bytes())
    fake.complete = True
    confirmed: list[int] = []
    result = run(fake, video, on_confirmed=confirmed.append)
    assert result.requests == 1
    assert result.bytes_sent == 0
    assert result.response_json == {"size": str(SIZE), "name": "video"}
    assert confirmed == [SIZE]


def test_an_early_200_is_completion(video: Path) -> None:
    fake = FakeSession({2: Status(201, json={"id": "x"})})
    result = run(fake, video)
    assert result.requests == 2
    assert result.response_json == {"id": "x"}


def test_a_200_without_json_returns_none(video: Path) -> None:
    fake = FakeSession({1: Status(200)})
    assert run(fake, video).response_json is None


def test_progress_reports_bytes_going_out_and_ends_at_total(
    video: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfer_module, "PROGRESS_INTERVAL", 0.0)
    fake = FakeSession()
    calls: list[tuple[int, int]] = []
    run(
        fake,
        video,
        read_size=256 * KiB,
        on_progress=lambda done, total: calls.append((done, total)),
    )
    dones = [done for done, _ in calls]
    assert {total for _, total in calls} == {SIZE}
    assert dones == sorted(dones)
    assert dones[-1] == SIZE
    # Every 256 KiB block is reported, not just the chunk boundaries.
    assert set(range(256 * KiB, SIZE, 256 * KiB)) <= set(dones)


def test_progress_is_throttled(video: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transfer_module, "PROGRESS_INTERVAL", 3600.0)
    fake = FakeSession()
    calls: list[int] = []
    run(fake, video, read_size=64 * KiB, on_progress=lambda done, total: calls.append(done))
    # Only the confirmations get through (one per answer), not one per 64 KiB read.
    assert calls == [0, MiB, 2 * MiB, 3 * MiB, SIZE]


def test_an_empty_file_is_completed_by_the_query(tmp_path: Path) -> None:
    path = make_file(tmp_path, 0)
    fake = FakeSession({1: Status(200)})
    result = run(fake, path)
    assert [s.content_range for s in fake.seen] == ["bytes */0"]
    assert result.bytes_sent == 0


# --- the body is streamed ------------------------------------------------------------------


def test_the_chunk_body_is_streamed_in_read_size_blocks(tmp_path: Path) -> None:
    path = make_file(tmp_path, 10 * MiB)
    fake = FakeSession()
    run(fake, path, chunk_size=4 * MiB, read_size=256 * KiB, start_offset=0)
    assert [s.received for s in fake.seen] == [4 * MiB, 4 * MiB, 2 * MiB]
    assert max(s.max_block for s in fake.seen) == 256 * KiB
    assert fake.sha256() == sha256_file(path)


def test_memory_does_not_grow_with_the_chunk(tmp_path: Path) -> None:
    size = 24 * MiB
    path = make_file(tmp_path, size)
    fake = FakeSession(store=False)
    tracemalloc.start()
    try:
        run(fake, path, chunk_size=size, start_offset=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert fake.sink_hash.hexdigest() == sha256_file(path)
    assert peak < 4 * MiB, f"peak {peak:,} bytes for a {size:,}-byte chunk"


# --- the server's word wins ----------------------------------------------------------------


def test_a_short_range_makes_the_next_chunk_start_where_the_server_is(video: Path) -> None:
    fake = FakeSession({3: Short(keep=256 * KiB)})
    result = run(fake, video)
    assert fake.starts == [None, 0, MiB, MiB + 256 * KiB, 2 * MiB + 256 * KiB]
    assert result.retries == 0
    assert result.bytes_sent == SIZE + MiB - 256 * KiB
    assert fake.sha256() == sha256_file(video)


def test_a_308_without_range_means_nothing_is_held(video: Path) -> None:
    fake = FakeSession({3: Forget()})
    result = run(fake, video)
    assert fake.starts == [None, 0, MiB, None, 0, MiB, 2 * MiB, 3 * MiB]
    assert result.retries == 1  # the server kept none of that chunk: counted as a failure
    assert fake.sha256() == sha256_file(video)


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ReadError,
        httpx.WriteError,
        httpx.RemoteProtocolError,
        httpx.ReadTimeout,
        httpx.WriteTimeout,
    ],
)
def test_a_dropped_connection_resumes_from_the_server_offset(
    video: Path, exc: type[httpx.TransportError]
) -> None:
    sleeps = Sleeps()
    fake = FakeSession({3: Cut(after=600 * KiB, exc=exc)})
    result = run(fake, video, sleeps=sleeps, read_size=128 * KiB)
    # The second chunk broke after 640 KiB had arrived; the server kept 512 KiB of it.
    assert fake.starts == [None, 0, MiB, None, MiB + 512 * KiB, 2 * MiB + 512 * KiB]
    assert result.retries == 1
    assert result.requests == 6
    assert result.bytes_sent == SIZE + 128 * KiB  # 640 KiB went out, 512 KiB were kept
    assert sleeps == [1.0]
    assert fake.sha256() == sha256_file(video)


def test_a_failed_connect_is_retried(video: Path) -> None:
    fake = FakeSession({1: Cut(after=0, exc=httpx.ConnectError)})
    result = run(fake, video)
    assert fake.starts[:2] == [None, None]
    assert result.retries == 1
    assert fake.sha256() == sha256_file(video)


def test_503s_back_off_then_query_and_continue(video: Path) -> None:
    sleeps = Sleeps()
    fake = FakeSession({3: Status(503), 4: Status(503), 5: Status(502)})
    result = run(fake, video, sleeps=sleeps)
    assert fake.starts == [None, 0, MiB, None, None, None, MiB, 2 * MiB, 3 * MiB]
    assert sleeps == [1.0, 2.0, 4.0]
    assert result.retries == 3
    assert result.requests == 9
    assert fake.sha256() == sha256_file(video)


@pytest.mark.parametrize("code", [408, 429, 500, 504])
def test_retryable_statuses(video: Path, code: int) -> None:
    fake = FakeSession({2: Status(code)})
    result = run(fake, video)
    assert result.retries == 1
    assert fake.sha256() == sha256_file(video)


def test_retry_after_is_honoured(video: Path) -> None:
    sleeps = Sleeps()
    fake = FakeSession({2: Status(429, headers={"Retry-After": "7"})})
    run(fake, video, sleeps=sleeps)
    assert sleeps == [7.0]


def test_backoff_grows_with_jitter_and_is_capped(video: Path) -> None:
    sleeps = Sleeps()
    policy = TransferRetry(attempts=7, initial=1.0, maximum=5.0, jitter=0.5)
    fake = FakeSession(default=Status(503))
    with pytest.raises(TransferError):
        run(fake, video, sleeps=sleeps, retry=policy)
    assert len(sleeps) == 6
    for sleep, base in zip(sleeps, [1, 2, 4, 5, 5, 5], strict=True):
        assert base <= sleep <= min(base + 0.5, 5.0)


# --- giving up -----------------------------------------------------------------------------


def test_gives_up_after_consecutive_failures_without_progress(video: Path) -> None:
    sleeps = Sleeps()
    fake = FakeSession(default=Status(503))
    fake.plan = {1: Status(308, headers={"Range": f"bytes=0-{MiB - 1}"})}
    fake.data += video.read_bytes()[:MiB]
    policy = TransferRetry(attempts=4, initial=1.0, maximum=30.0, jitter=0.0)

    with pytest.raises(TransferError) as info:
        run(fake, video, sleeps=sleeps, retry=policy)

    message = str(info.value)
    assert message == (
        f"upload interrupted: HTTP 503 at 1,048,576 of {SIZE:,} bytes after 4 attempts; "
        "re-run the same command to resume"
    )
    assert "\n" not in message
    assert sleeps == [1.0, 2.0, 4.0]
    assert len(fake.seen) == 5  # the query, the chunk, then three queries


def test_the_exhaustion_message_never_contains_the_url(video: Path) -> None:
    fake = FakeSession(default=Cut(after=0, exc=httpx.ConnectError))
    with pytest.raises(TransferError) as info:
        run(fake, video, retry=TransferRetry(attempts=3))
    message = str(info.value)
    assert "could not connect" in message
    assert "after 3 attempts" in message
    for secret in ("SECRET", "storage.example.com", "upload_id", "sig="):
        assert secret not in message


def test_failures_after_progress_do_not_exhaust_the_attempts(video: Path) -> None:
    # Every chunk breaks after 300 KiB (256 KiB kept), far more often than `attempts`.
    # Requests alternate query, chunk, query, chunk...: the chunks are the even ones.
    fake = FakeSession({n: Cut(after=300 * KiB) for n in range(2, 1000, 2)})

    result = run(fake, video, read_size=64 * KiB, retry=TransferRetry(attempts=2, jitter=0.0))

    assert fake.sha256() == sha256_file(video)
    assert result.retries >= SIZE // (256 * KiB) - 1


def test_a_server_that_never_keeps_anything_is_given_up_on(video: Path) -> None:
    fake = FakeSession(default=Forget())
    with pytest.raises(TransferError, match=r"kept none of the chunk at 0 .* after 3 attempts"):
        run(fake, video, retry=TransferRetry(attempts=3))


# --- no retry ------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [404, 410])
@pytest.mark.parametrize("number", [1, 2])
def test_an_expired_url_raises_at_once(video: Path, code: int, number: int) -> None:
    sleeps = Sleeps()
    fake = FakeSession({number: Status(code)})
    with pytest.raises(UploadUrlExpired, match=f"HTTP {code}") as info:
        run(fake, video, sleeps=sleeps)
    assert isinstance(info.value, TransferError)
    assert len(fake.seen) == number
    assert sleeps == []


@pytest.mark.parametrize("code", [400, 401, 403, 413])
def test_other_4xx_raise_at_once(video: Path, code: int) -> None:
    sleeps = Sleeps()
    fake = FakeSession({2: Status(code)})
    with pytest.raises(TransferError) as info:
        run(fake, video, sleeps=sleeps)
    assert not isinstance(info.value, UploadUrlExpired)
    assert f"HTTP {code}" in str(info.value)
    assert "SECRET" not in str(info.value)
    assert len(fake.seen) == 2
    assert sleeps == []


def test_a_server_claiming_more_than_the_file_fails(video: Path) -> None:
    fake = FakeSession({1: Status(308, headers={"Range": f"bytes=0-{SIZE + 9}"})})
    with pytest.raises(TransferError, match="claims"):
        run(fake, video)


def test_a_308_claiming_more_than_was_sent_fails(video: Path) -> None:
    fake = FakeSession({2: Status(308, headers={"Range": f"bytes=0-{2 * MiB - 1}"})})
    with pytest.raises(TransferError, match="only 1,048,576"):
        run(fake, video)


def test_a_200_with_another_size_fails(video: Path) -> None:
    fake = FakeSession({2: Status(200, json={"size": "12"})})
    with pytest.raises(TransferError, match="completed with 12 bytes"):
        run(fake, video)


def test_an_unreadable_range_fails(video: Path) -> None:
    fake = FakeSession({1: Status(308, headers={"Range": "bytes=5-9"})})
    with pytest.raises(TransferError, match="Range"):
        run(fake, video)


def test_a_file_that_grows_during_the_upload_fails(video: Path) -> None:
    fake = FakeSession()

    def grow(offset: int) -> None:
        if offset == MiB:
            with video.open("ab") as f:
                f.write(b"more")

    with pytest.raises(TransferError, match="file changed"):
        run(fake, video, on_confirmed=grow)


def test_a_file_that_shrinks_during_the_upload_fails(video: Path) -> None:
    fake = FakeSession()

    def shrink(offset: int) -> None:
        if offset == MiB:
            os.truncate(video, MiB + 10)

    with pytest.raises(TransferError, match="shrank"):
        run(fake, video, on_confirmed=shrink)


def test_a_start_offset_past_the_end_is_refused(video: Path) -> None:
    with pytest.raises(TransferError, match="outside the file"):
        run(FakeSession(), video, start_offset=SIZE + 1)


def test_a_chunk_size_off_the_quantum_is_a_programming_error(video: Path) -> None:
    with pytest.raises(ValueError):
        run(FakeSession(), video, chunk_size=MiB + 1)


# --- query_offset --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (Status(308, headers={"Range": "bytes=0-262143"}), 262144),
        (Status(308), 0),
        (Status(200, json={"size": "100"}), None),
        (Status(201), None),
    ],
)
def test_query_offset(answer: Status, expected: int | None) -> None:
    fake = FakeSession({1: answer})
    with client_for(fake) as client:
        assert query_offset(client, URL, 100 if expected is None else 10 * MiB) == expected
    assert fake.seen[0].content_range in ("bytes */100", f"bytes */{10 * MiB}")
    assert fake.seen[0].content_length == "0"


def test_query_offset_failures() -> None:
    with client_for(FakeSession({1: Status(410)})) as client:
        with pytest.raises(UploadUrlExpired):
            query_offset(client, URL, 100)
    with client_for(FakeSession({1: Status(503)})) as client:
        with pytest.raises(TransferError, match="HTTP 503"):
            query_offset(client, URL, 100)
    with client_for(FakeSession({1: Cut(after=0)})) as client:
        with pytest.raises(TransferError, match="connection dropped") as info:
            query_offset(client, URL, 100)
        assert "SECRET" not in str(info.value)


# --- over a real socket --------------------------------------------------------------------


class _GcsHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    data = bytearray()
    ports: list[int] = []  # noqa: RUF012 - shared with the test on purpose

    def do_PUT(self) -> None:
        type(self).ports.append(self.client_address[1])
        assert "Transfer-Encoding" not in self.headers
        length = int(self.headers["Content-Length"])
        remaining = length
        while remaining:
            block = self.rfile.read(min(remaining, 64 * KiB))
            self.data.extend(block)
            remaining -= len(block)
        total = int(self.headers["Content-Range"].rsplit("/", 1)[1])
        if len(self.data) == total:
            body = json.dumps({"size": str(total)}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(308)
        if self.data:
            self.send_header("Range", f"bytes=0-{len(self.data) - 1}")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_over_a_real_socket_on_one_kept_alive_connection(tmp_path: Path) -> None:
    path = make_file(tmp_path, 5 * MiB + 3)
    _GcsHandler.data = bytearray()
    _GcsHandler.ports = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _GcsHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/upload?upload_id=x"
        with httpx.Client(timeout=10.0) as client:
            result = transfer(client, url, path, chunk_size=2 * MiB)
    finally:
        server.shutdown()
        server.server_close()
    assert hashlib.sha256(_GcsHandler.data).hexdigest() == sha256_file(path)
    assert result.requests == 4
    assert result.response_json == {"size": str(5 * MiB + 3)}
    assert len(set(_GcsHandler.ports)) == 1
