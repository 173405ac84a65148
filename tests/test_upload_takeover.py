"""A newer request on an upload session takes it over from an older one still running (as a
killed client's last PUT, answered late, does to a resumed upload's request): the overtaken
request is answered 503 and keeps nothing more, even when it was the final chunk, and a
resumed transfer retries it and lands byte-exact. Real emulator, real sockets; the order of
the two requests is fixed by barriers, not by timing."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from emulator_helpers import BLOCK, sha256, video_bytes, wait_for
from test_transfer_emulator import NO_WAIT, create_upload, upload_puts

from vidpipe.emulator import Emulator
from vidpipe.transfer import transfer


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


FAST = 1024.0**3
"""Bytes per second of a "slow" fault that only makes the emulator keep a body's blocks as
they arrive (instead of reading it whole first), so a test can act between two blocks."""


def put_block(url: str, data: bytes, start: int) -> httpx.Response:
    """A chunk of one block at `start`: the late request of a client that is gone."""
    end = start + BLOCK
    headers = {"Content-Range": f"bytes {start}-{end - 1}/{len(data)}"}
    return httpx.put(url, content=data[start:end], headers=headers, timeout=10)


def test_a_final_chunk_overtaken_by_a_newer_request_is_503_not_a_short_200(
    emulator: Emulator,
) -> None:
    data = video_bytes(2 * BLOCK + 2)
    upload = create_upload(emulator)
    assert put_block(upload.url, data, 0).status_code == 308
    emulator.inject("PUT", "/upload/", "slow", rate=FAST)  # kept as it arrives
    parts = urlsplit(upload.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        head = [
            f"PUT {parts.path} HTTP/1.1",
            f"Host: {parts.netloc}",
            "Connection: close",
            f"Content-Range: bytes {BLOCK}-{len(data) - 1}/{len(data)}",
            f"Content-Length: {len(data) - BLOCK}",
        ]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + data[BLOCK:-1])
        # The final chunk has begun: its whole block is kept; its last byte is still to come.
        wait_for(lambda: emulator.received(upload.id)[0] == 2 * BLOCK)
        assert put_block(upload.url, data, 0).status_code == 308  # the newer request
        sock.sendall(data[-1:])
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.split(b" ", 2)[1] == b"503"
    assert emulator.received(upload.id)[0] == 2 * BLOCK
    assert emulator.uploads[upload.id]["status"] == "waiting"


class OvertakeFinalChunk(httpx.BaseTransport):
    """Sends requests over real sockets; the first time the final chunk goes out, `overtake`
    runs after its first block was handed to the connection and before the rest."""

    def __init__(self, emulator: Emulator, total: int, overtake: Callable[[], None]) -> None:
        self._emulator = emulator
        self._inner = httpx.HTTPTransport()
        self._final = f"-{total - 1}/{total}"
        self._overtake: Callable[[], None] | None = overtake

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        overtake = self._overtake
        if overtake is not None and request.headers["Content-Range"].endswith(self._final):
            self._overtake = None
            self._emulator.inject("PUT", "/upload/", "slow", rate=FAST)  # kept as it arrives
            request.stream = _Interrupted(request.stream, overtake)
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


class _Interrupted(httpx.SyncByteStream):
    def __init__(
        self, stream: httpx.SyncByteStream | httpx.AsyncByteStream, hook: Callable[[], None]
    ) -> None:
        assert isinstance(stream, httpx.SyncByteStream)
        self._stream, self._hook = stream, hook

    def __iter__(self) -> Iterator[bytes]:
        blocks = iter(self._stream)
        yield next(blocks)
        self._hook()
        yield from blocks


def test_a_resumed_upload_whose_last_chunk_a_dead_clients_request_overtakes_lands_exact(
    emulator: Emulator, tmp_path: Path
) -> None:
    data = video_bytes(3 * BLOCK + 2)
    path = tmp_path / "clip.mp4"
    path.write_bytes(data)
    upload = create_upload(emulator)

    def late_put_of_the_dead_client() -> None:
        # The final chunk's first block is kept (so it has begun) when the late PUT arrives.
        wait_for(lambda: emulator.received(upload.id)[0] == 3 * BLOCK)
        assert put_block(upload.url, data, BLOCK).status_code == 308

    transport = OvertakeFinalChunk(emulator, len(data), late_put_of_the_dead_client)
    with httpx.Client(transport=transport, timeout=30) as client:
        result = transfer(
            client,
            upload.url,
            path,
            chunk_size=2 * BLOCK,  # then a final chunk of one block and 2 bytes
            read_size=BLOCK,
            retry=NO_WAIT,
            sleep=lambda seconds: None,
        )

    assert emulator.received(upload.id) == (len(data), sha256(data))
    assert emulator.uploads[upload.id]["status"] == "asset_created"
    assert result.total == len(data) and result.retries == 1
    # Where to resume (nothing held), the first chunk, the late PUT, the overtaken final
    # chunk, where to resume, the rest.
    assert upload_puts(emulator) == [308, 308, 308, 503, 308, 200]
