"""Large adaptive requests broken part-way against the real emulator, over real sockets: the
upload resumes from the server's offset and the bytes it holds are exactly the file's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from emulator_helpers import sha256, video_bytes

from vidpipe.emulator import Emulator
from vidpipe.transfer import ChunkSizer, TransferResult, TransferRetry, transfer

KiB = 1024
MiB = 1024 * KiB
NO_WAIT = TransferRetry(attempts=8, initial=0.0, maximum=0.0, jitter=0.0)


@dataclass
class Upload:
    id: str
    url: str


def create_upload(emulator: Emulator) -> Upload:
    response = httpx.post(
        f"{emulator.base_url}/video/v1/uploads",
        auth=("token-id", "token-secret"),
        json={"new_asset_settings": {"playback_policies": ["public"]}},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    return Upload(data["id"], data["url"])


@dataclass
class Puts:
    """Every PUT the client sends to the upload URL; `before_chunk[n]` runs just before the
    n-th chunk request (1-based, offset queries not counted) goes out."""

    before_chunk: dict[int, Callable[[int], None]] = field(default_factory=dict)
    lengths: list[int] = field(default_factory=list)  # body sizes, 0 for a query
    chunks: int = 0

    def __call__(self, request: httpx.Request) -> None:
        length = int(request.headers["Content-Length"])
        self.lengths.append(length)
        if request.headers["Content-Range"].startswith("bytes */"):
            return
        self.chunks += 1
        hook = self.before_chunk.get(self.chunks)
        if hook is not None:
            hook(length)

    @property
    def chunk_lengths(self) -> list[int]:
        return [n for n in self.lengths if n]


@dataclass
class Run:
    result: TransferResult
    confirmed: list[tuple[int, int]]  # (offset reported, bytes the server held at that moment)


def upload_file(
    emulator: Emulator,
    upload: Upload,
    path: Path,
    sizer: ChunkSizer,
    puts: Puts,
    timeout: httpx.Timeout | None = None,
) -> Run:
    confirmed: list[tuple[int, int]] = []

    def on_confirmed(offset: int) -> None:
        confirmed.append((offset, emulator.received(upload.id)[0]))

    with httpx.Client(
        timeout=timeout or httpx.Timeout(30.0), event_hooks={"request": [puts]}
    ) as client:
        result = transfer(
            client,
            upload.url,
            path,
            chunk_size=sizer,
            start_offset=0,
            on_confirmed=on_confirmed,
            retry=NO_WAIT,
            sleep=lambda seconds: None,
        )
    return Run(result, confirmed)


@pytest.fixture
def clip(tmp_path: Path) -> Callable[[int], Path]:
    def make(size: int) -> Path:
        path = tmp_path / "clip.mp4"
        path.write_bytes(video_bytes(size))
        return path

    return make


def assert_exact(emulator: Emulator, upload: Upload, path: Path, run: Run) -> None:
    data = path.read_bytes()
    assert emulator.received(upload.id) == (len(data), sha256(data))
    assert emulator.uploads[upload.id]["status"] == "asset_created"
    assert run.result.total == len(data)
    # Only offsets the server had confirmed were ever reported, ending with the whole file.
    assert run.confirmed[-1][0] == len(data)
    assert all(offset <= held for offset, held in run.confirmed)


def upload_puts(emulator: Emulator) -> list[int]:
    """The status of every PUT to an upload URL, in order (0: closed without an answer)."""
    return [status for method, path, status in emulator.request_log if path.startswith("/upload/")]


def test_a_cut_in_the_middle_of_a_single_large_request_resumes_exactly(
    emulator: Emulator, clip: Callable[[int], Path]
) -> None:
    path = clip(40 * MiB + 4321)
    upload = create_upload(emulator)
    puts = Puts()
    emulator.inject("PUT", "/upload/", "cut", after_bytes=17 * MiB + 1234)

    run = upload_file(emulator, upload, path, ChunkSizer(start=32 * MiB), puts)

    assert_exact(emulator, upload, path, run)
    # The whole file in one request (less than two start sizes), cut; the server kept the
    # whole 256 KiB blocks that arrived and the query said so; then a quarter-size request
    # and the rest.
    assert puts.lengths == [40 * MiB + 4321, 0, 8 * MiB, 15 * MiB + 4321]
    assert upload_puts(emulator) == [0, 308, 308, 200]
    assert [offset for offset, _ in run.confirmed] == [17 * MiB, 25 * MiB, 40 * MiB + 4321]
    assert run.result.retries == 1


def test_cuts_in_several_large_requests_in_a_row_resume_exactly(
    emulator: Emulator, clip: Callable[[int], Path]
) -> None:
    path = clip(96 * MiB + 99)
    upload = create_upload(emulator)

    def cut_halfway(length: int) -> None:
        emulator.inject("PUT", "/upload/", "cut", after_bytes=length // 2 + 1000)

    puts = Puts(before_chunk={2: cut_halfway, 3: cut_halfway, 5: cut_halfway})
    sizer = ChunkSizer(start=8 * MiB, minimum=8 * MiB)  # every request but the last >= 8 MiB

    run = upload_file(emulator, upload, path, sizer, puts)

    assert_exact(emulator, upload, path, run)
    assert run.result.retries == 3
    assert upload_puts(emulator).count(0) == 3
    assert all(n >= 8 * MiB for n in puts.chunk_lengths[:-1])
    assert emulator.pending_faults == 0


def test_a_5xx_answer_to_a_large_request_shrinks_the_next_and_resumes_exactly(
    emulator: Emulator, clip: Callable[[int], Path]
) -> None:
    path = clip(64 * MiB + 5)
    upload = create_upload(emulator)

    def fail(length: int) -> None:
        emulator.inject("PUT", "/upload/", "status", status=503)

    puts = Puts(before_chunk={1: fail})
    sizer = ChunkSizer(start=16 * MiB)

    run = upload_file(emulator, upload, path, sizer, puts)

    assert_exact(emulator, upload, path, run)
    assert puts.lengths[:3] == [16 * MiB, 0, 4 * MiB]  # failed, asked, a quarter of it
    assert upload_puts(emulator)[:2] == [503, 308]
    assert run.result.retries == 1


def test_a_timeout_in_a_large_request_resumes_exactly(
    emulator: Emulator, clip: Callable[[int], Path]
) -> None:
    path = clip(24 * MiB + 7)
    upload = create_upload(emulator)

    def stall(length: int) -> None:
        # The server sits on the request (its body unread) longer than the client waits.
        emulator.inject("PUT", "/upload/", "delay", delay=1.0)

    puts = Puts(before_chunk={1: stall})
    timeout = httpx.Timeout(10.0, read=0.3, write=0.3)

    run = upload_file(emulator, upload, path, ChunkSizer(start=16 * MiB), puts, timeout)

    assert_exact(emulator, upload, path, run)
    assert run.result.retries >= 1
    assert puts.lengths[:2] == [24 * MiB + 7, 0]  # the timed-out request, then the query
