"""Tests for vidpipe.fetch (the resumable download) against a scripted fake file server."""

from __future__ import annotations

import errno
import hashlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from vidpipe.errors import DownloadError
from vidpipe.fetch import DownloadUrlExpired, TransferRetry, fetch, part_path, partial_size

KiB = 1024
MiB = 1024 * 1024
URL = "https://master.example.com/download/asset.mp4?token=MASTER-BEARER-SECRET"
NO_JITTER = TransferRetry(attempts=4, initial=1.0, maximum=30.0, jitter=0.0)
KEY = "asset-1"


def payload(size: int, seed: int = 1) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest() * 4096
    return (block * (size // len(block) + 1))[:size]


@dataclass
class Cut:
    """Send `after` body bytes, then drop the connection."""

    after: int


@dataclass
class Status:
    code: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    range: str | None
    if_range: str | None
    url: str


class _Body(httpx.SyncByteStream):
    def __init__(self, data: bytes, start: int, cut: int | None, block: int = 64 * KiB) -> None:
        self.data, self.start, self.cut, self.block = data, start, cut, block

    def __iter__(self) -> Iterator[bytes]:
        size = len(self.data) - self.start
        limit = self.start + (size if self.cut is None else min(self.cut, size))
        for at in range(self.start, limit, self.block):
            yield self.data[at : min(at + self.block, limit)]
        if self.cut is not None:
            raise httpx.ReadError("connection reset while fetching " + URL)


class FileServer(httpx.BaseTransport):
    """Serves `data` with an ETag, honouring Range and If-Range (unless `ignore_range`).

    `plan` maps a request number (1-based) to a fault."""

    def __init__(
        self,
        data: bytes,
        *,
        plan: dict[int, Cut | Status] | None = None,
        ignore_range: bool = False,
        etag: str | None = None,
        last_modified: str | None = None,
        declare_length: bool = True,
    ) -> None:
        self.data = data
        self.plan = plan or {}
        self.ignore_range = ignore_range
        self.etag = etag if etag is not None else f'"{hashlib.sha256(data).hexdigest()[:16]}"'
        self.last_modified = last_modified
        self.declare_length = declare_length
        self.seen: list[Seen] = []

    def change(self, data: bytes) -> None:
        self.data = data
        self.etag = f'"{hashlib.sha256(data).hexdigest()[:16]}"'

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        rng, if_range = request.headers.get("Range"), request.headers.get("If-Range")
        self.seen.append(Seen(rng, if_range, str(request.url)))
        fault = self.plan.get(len(self.seen))
        if isinstance(fault, Status):
            return httpx.Response(fault.code, headers=fault.headers, content=b"nope")
        cut = fault.after if isinstance(fault, Cut) else None
        headers = {"Accept-Ranges": "bytes"}
        if self.etag:
            headers["ETag"] = self.etag
        if self.last_modified:
            headers["Last-Modified"] = self.last_modified
        start = 0
        status = 200
        valid = if_range is None or if_range in (self.etag, self.last_modified)
        if rng and not self.ignore_range and valid:
            start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))  # type: ignore[union-attr]
            if start >= len(self.data):
                return httpx.Response(
                    416, headers={"Content-Range": f"bytes */{len(self.data)}"}, content=b""
                )
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(self.data) - 1}/{len(self.data)}"
        if self.declare_length:
            headers["Content-Length"] = str(len(self.data) - start)
        return httpx.Response(status, headers=headers, stream=_Body(self.data, start, cut))


def run(server: FileServer, dest: Path, **kwargs: object) -> object:
    sleeps: list[float] = []
    with httpx.Client(transport=server) as client:
        return fetch(
            client,
            URL,
            dest,
            key=kwargs.pop("key", KEY),  # type: ignore[arg-type]
            retry=kwargs.pop("retry", NO_JITTER),  # type: ignore[arg-type]
            sleep=sleeps.append,
            **kwargs,  # type: ignore[arg-type]
        )


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_whole_file_arrives_byte_exact_and_only_then_has_its_name(tmp_path: Path) -> None:
    data = payload(3 * MiB + 17)
    dest = tmp_path / "lesson-1.mp4"
    progress: list[tuple[int, int]] = []
    result = run(FileServer(data), dest, on_progress=lambda d, t: progress.append((d, t)))
    assert sha(dest.read_bytes()) == sha(data)
    assert not part_path(dest).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lesson-1.mp4"]
    assert result.total == len(data) and result.start_offset == 0  # type: ignore[attr-defined]
    assert progress[-1] == (len(data), len(data))


def test_a_cut_connection_mid_body_resumes_with_range_and_if_range(tmp_path: Path) -> None:
    data = payload(5 * MiB)
    server = FileServer(data, plan={1: Cut(2 * MiB + 5)})
    dest = tmp_path / "x.mp4"
    result = run(server, dest)
    assert sha(dest.read_bytes()) == sha(data)
    assert [s.range for s in server.seen] == [None, f"bytes={2 * MiB + 5}-"]
    assert server.seen[1].if_range == server.etag
    assert result.retries == 1 and result.received == len(data)  # type: ignore[attr-defined]


def test_a_part_left_by_an_earlier_run_is_continued_from_its_size(tmp_path: Path) -> None:
    data = payload(4 * MiB)
    dest = tmp_path / "x.mp4"
    server = FileServer(data, plan={1: Cut(MiB + 3)})
    with pytest.raises(DownloadError):
        run(server, dest, retry=TransferRetry(attempts=1))
    assert part_path(dest).stat().st_size == MiB + 3
    assert partial_size(dest, KEY) == MiB + 3
    second = FileServer(data)
    result = run(second, dest)
    assert second.seen[0].range == f"bytes={MiB + 3}-"
    assert result.start_offset == MiB + 3  # type: ignore[attr-defined]
    assert result.received == len(data) - (MiB + 3)  # type: ignore[attr-defined]
    assert sha(dest.read_bytes()) == sha(data)


def test_a_source_whose_etag_changed_starts_over_and_is_never_appended_to(
    tmp_path: Path,
) -> None:
    old, new = payload(4 * MiB, seed=1), payload(4 * MiB, seed=2)
    dest = tmp_path / "x.mp4"
    with pytest.raises(DownloadError):
        run(FileServer(old, plan={1: Cut(MiB)}), dest, retry=TransferRetry(attempts=1))
    server = FileServer(new)
    result = run(server, dest)
    # If-Range did not match: the server sent the whole new file (200), written from byte 0.
    assert server.seen[0].if_range is not None and len(server.seen) == 1
    assert sha(dest.read_bytes()) == sha(new)
    assert result.restarts == 1  # type: ignore[attr-defined]


def test_a_server_that_ignores_range_restarts_the_file_instead_of_appending(
    tmp_path: Path,
) -> None:
    data = payload(3 * MiB)
    dest = tmp_path / "x.mp4"
    server = FileServer(data, plan={1: Cut(MiB)}, ignore_range=True)
    result = run(server, dest)
    assert [s.range for s in server.seen] == [None, f"bytes={MiB}-"]
    assert dest.stat().st_size == len(data)
    assert sha(dest.read_bytes()) == sha(data)
    assert result.restarts == 1  # type: ignore[attr-defined]


def test_a_range_that_does_not_continue_the_file_starts_over(tmp_path: Path) -> None:
    data = payload(2 * MiB)
    dest = tmp_path / "x.mp4"
    with pytest.raises(DownloadError):
        run(FileServer(data, plan={1: Cut(MiB)}), dest, retry=TransferRetry(attempts=1))
    # Same ETag (a broken server), but the file is longer now: the 206's total disagrees.
    longer = FileServer(data + b"tail", etag=FileServer(data).etag)
    run(longer, dest)
    assert dest.read_bytes() == data + b"tail"


def test_server_errors_are_retried_with_backoff_then_succeed(tmp_path: Path) -> None:
    data = payload(MiB)
    server = FileServer(data, plan={1: Status(503), 2: Status(429, {"Retry-After": "7"})})
    sleeps: list[float] = []
    dest = tmp_path / "x.mp4"
    with httpx.Client(transport=server) as client:
        fetch(client, URL, dest, key=KEY, retry=NO_JITTER, sleep=sleeps.append)
    assert dest.read_bytes() == data
    assert sleeps[0] == 1.0 and sleeps[1] == 7.0


def test_failures_without_progress_give_up_keeping_the_part(tmp_path: Path) -> None:
    data = payload(2 * MiB)
    server = FileServer(data, plan={1: Cut(MiB), **{n: Status(502) for n in range(2, 10)}})
    dest = tmp_path / "x.mp4"
    with pytest.raises(DownloadError) as caught:
        run(server, dest)
    assert "re-run to resume" in str(caught.value)
    assert part_path(dest).stat().st_size == MiB
    assert not dest.exists()


@pytest.mark.parametrize("code", [403, 404, 410])
def test_an_expired_link_raises_expired_and_keeps_the_part(tmp_path: Path, code: int) -> None:
    data = payload(2 * MiB)
    dest = tmp_path / "x.mp4"
    with pytest.raises(DownloadUrlExpired):
        run(FileServer(data, plan={1: Cut(MiB), 2: Status(code)}), dest)
    assert part_path(dest).stat().st_size == MiB


def test_a_body_without_a_declared_length_is_refused(tmp_path: Path) -> None:
    dest = tmp_path / "x.mp4"
    with pytest.raises(DownloadError, match="did not declare"):
        run(FileServer(payload(KiB), declare_length=False), dest)
    assert not dest.exists()


def test_a_part_of_another_source_is_not_trusted(tmp_path: Path) -> None:
    data = payload(2 * MiB)
    dest = tmp_path / "x.mp4"
    with pytest.raises(DownloadError):
        run(FileServer(data, plan={1: Cut(MiB)}), dest, retry=TransferRetry(attempts=1))
    server = FileServer(payload(2 * MiB, seed=3))
    run(server, dest, key="another-asset")
    assert server.seen[0].range is None
    assert dest.read_bytes() == server.data


def test_last_modified_serves_as_the_validator_without_an_etag(tmp_path: Path) -> None:
    data = payload(2 * MiB)
    stamp = "Wed, 21 Oct 2026 07:28:00 GMT"
    server = FileServer(data, plan={1: Cut(MiB)}, etag="", last_modified=stamp)
    dest = tmp_path / "x.mp4"
    run(server, dest)
    assert server.seen[1].if_range == stamp
    assert dest.read_bytes() == data


def test_a_full_disk_is_one_clear_error_and_the_part_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = payload(4 * MiB)
    dest = tmp_path / "x.mp4"
    real_open = open
    budget = {"left": 2 * MiB}

    class Full:
        def __init__(self, file: object) -> None:
            self.file = file

        def write(self, block: bytes) -> int:
            if budget["left"] <= 0:
                raise OSError(errno.ENOSPC, "No space left on device")
            budget["left"] -= len(block)
            return self.file.write(block)  # type: ignore[attr-defined,no-any-return]

        def __getattr__(self, name: str) -> object:
            return getattr(self.file, name)

        def __enter__(self) -> Full:
            return self

        def __exit__(self, *exc: object) -> None:
            self.file.close()  # type: ignore[attr-defined]

    def fake_open(path: object, *args: object, **kwargs: object) -> object:
        handle = real_open(path, *args, **kwargs)  # type: ignore[call-overload]
        return Full(handle) if str(path).endswith(".part") else handle

    import vidpipe.fetch as module

    monkeypatch.setattr(module, "open", fake_open, raising=False)
    with pytest.raises(DownloadError) as caught:
        run(FileServer(data), dest)
    message = str(caught.value)
    assert "no space left" in message and "re-run to resume" in message
    assert "\n" not in message
    assert part_path(dest).stat().st_size == 2 * MiB
    monkeypatch.undo()
    run(FileServer(data), dest)
    assert sha(dest.read_bytes()) == sha(data)


def test_a_folder_that_cannot_be_written_is_one_clear_error(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_bytes(b"")
    with pytest.raises(DownloadError, match="cannot write") as caught:
        run(FileServer(payload(KiB)), not_a_folder / "x.mp4")
    assert "\n" not in str(caught.value)


def test_no_error_and_no_log_record_shows_the_url(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    data = payload(MiB)
    server = FileServer(data, plan={n: Cut(0) for n in range(1, 10)})
    with pytest.raises(DownloadError) as caught:
        run(server, tmp_path / "x.mp4")
    texts = [str(caught.value), repr(caught.value)]
    exc: BaseException | None = caught.value
    while exc is not None:  # nothing chained either, not even in a --debug traceback
        texts.append(str(exc))
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    texts += [r.getMessage() for r in caplog.records]
    assert caplog.records, "httpx logged its requests"
    assert not any("MASTER-BEARER-SECRET" in t or "master.example.com" in t for t in texts)


def test_memory_stays_flat_whatever_the_size(tmp_path: Path) -> None:
    import tracemalloc

    data = payload(32 * MiB)
    tracemalloc.start()
    run(FileServer(data), tmp_path / "x.mp4")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # The fake server holds the payload itself; the download adds a few blocks at most.
    assert peak < 4 * MiB
