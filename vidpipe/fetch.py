"""Resumable streamed GET of a file (an asset's master) to disk: the download twin of
`vidpipe.transfer`.

The caller owns the `httpx.Client` (timeouts, pool, transport); this module decides what to
ask for and how to react, and never prints: progress goes to a callback, failures are
`vidpipe.errors.DownloadError` (or its subclass `DownloadUrlExpired`).

On disk, for a destination `PATH`:
- `PATH.part` holds the bytes received so far; `PATH` appears (by rename) only when the byte
  count equals the length the server declared, after an fsync;
- `PATH.part.json` says what the `.part` bytes are a prefix of: the source's `key` (an asset
  ID), its declared length, and its validator (a strong `ETag`, else `Last-Modified`). It
  holds no URL. Without it, or for another key, a `.part` is not trusted and starts over.

Resuming sends `Range: bytes=N-` with `If-Range: VALIDATOR`: a `206` whose `Content-Range`
starts at N, has the recorded length and (when it sends one) the recorded `ETag` continues
the file; a `200` is the whole body again (the source changed, or the server ignores `Range`)
and the `.part` is truncated and written from its first byte, never appended to.

The URL is a bearer link: it is never part of a message, and httpx's exceptions (which carry
it) are dropped with `from None`. httpx itself logs each request's URL at INFO; `redacted`
hides it from those records while a fetch runs.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

import httpx

from vidpipe.errors import DownloadError
from vidpipe.redact import redacted
from vidpipe.transfer import (
    PROGRESS_INTERVAL,
    FailureStreak,
    Retryable,
    TransferRetry,
    retry_after,
    retry_reason,
    unusable_url,
)

__all__ = [
    "DownloadUrlExpired",
    "FetchResult",
    "TransferRetry",
    "fetch",
    "part_path",
    "redacted",
]

PART_SUFFIX = ".part"
META_SUFFIX = ".part.json"


class DownloadUrlExpired(DownloadError):
    """The URL answered 401/403/404/410: the link expired or was revoked. Asking the source
    for a new link and fetching again continues the `.part`."""


@dataclass(frozen=True)
class FetchResult:
    """What a finished fetch did.

    `total` is the file's length; `start_offset` the `.part` size this run resumed from (0:
    from the start); `received` the body bytes this run wrote (restarts included);
    `restarts` how often the `.part` was started over (a changed source, a server ignoring
    `Range`); `retries` the back-offs after failures; `seconds` the run's wall time.
    """

    path: Path
    total: int
    start_offset: int
    received: int
    requests: int
    retries: int
    restarts: int
    seconds: float


@dataclass(frozen=True)
class _Meta:
    key: str
    length: int
    etag: str | None
    last_modified: str | None

    @property
    def validator(self) -> str | None:
        return self.etag or self.last_modified


def part_path(path: Path) -> Path:
    """Where the bytes of `path` gather until it is complete."""
    return path.with_name(path.name + PART_SUFFIX)


def meta_path(path: Path) -> Path:
    return path.with_name(path.name + META_SUFFIX)


def partial_size(path: Path, key: str) -> int:
    """Bytes a fetch of `path` for `key` would resume from (0 when it would start over)."""
    meta = _read_meta(path)
    if meta is None or meta.key != key:
        return 0
    try:
        return part_path(path).stat().st_size
    except OSError:
        return 0


def fetch(
    client: httpx.Client,
    url: str,
    path: Path,
    *,
    key: str,
    on_progress: Callable[[int, int], None] | None = None,
    retry: TransferRetry = TransferRetry(),
    sleep: Callable[[float], None] = time.sleep,
    read_size: int = 1024 * 1024,
) -> FetchResult:
    """Download `url` to `path` through `path.part`, resuming a `.part` left for the same
    `key` (the source's identity, e.g. its asset ID).

    - `on_progress(done, total)`: bytes on disk of the declared length, throttled to one
      call per `PROGRESS_INTERVAL`, and once at the start and the end. It goes back to 0
      when the `.part` starts over.
    - Dropped connections, timeouts and HTTP 408/429/5xx are retried with back-off
      (`retry.attempts` failures in a row without progress stop it), each time resuming
      from the `.part`'s size.
    - Raises `DownloadUrlExpired` on 401/403/404/410 (the `.part` kept), `DownloadError` on
      other 4xx, on a server that declares no length or sends more than it declared, and
      on a full disk or an unwritable folder (the `.part` kept). Messages never contain
      the URL.
    """
    if read_size <= 0:
        raise ValueError("read_size must be positive")
    with redacted(url, "<download URL>"):
        return _Fetch(client, url, path, key, on_progress, retry, sleep, read_size).run()


# --- internals ---------------------------------------------------------------------------------


_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")
_UNSATISFIED = re.compile(r"bytes \*/(\d+)")


def _read_meta(path: Path) -> _Meta | None:
    try:
        data = json.loads(meta_path(path).read_text("utf-8"))
        return _Meta(
            key=str(data["key"]),
            length=int(data["length"]),
            etag=data.get("etag"),
            last_modified=data.get("last_modified"),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _strong_etag(response: httpx.Response) -> str | None:
    etag = response.headers.get("ETag")
    # If-Range needs a strong validator: a weak ETag cannot say the bytes are the same.
    return etag if etag and not etag.startswith("W/") else None


class _Fetch:
    """One run of `fetch`: the open `.part`, the counters and the retry state."""

    def __init__(
        self,
        client: httpx.Client,
        url: str,
        path: Path,
        key: str,
        on_progress: Callable[[int, int], None] | None,
        retry: TransferRetry,
        sleep: Callable[[float], None],
        read_size: int,
    ) -> None:
        self.client = client
        self.url = url
        self.path = path
        self.part = part_path(path)
        self.key = key
        self.on_progress = on_progress
        self.retry = retry
        self.sleep = sleep
        self.read_size = read_size
        self.meta: _Meta | None = None
        self.offset = 0
        self.received = 0
        self.requests = 0
        self.retries = 0
        self.restarts = 0
        self.last_progress = 0.0
        self.started = time.monotonic()

    def run(self) -> FetchResult:
        self.meta = _read_meta(self.path)
        if self.meta is not None and self.meta.key == self.key and self.meta.validator:
            try:
                self.offset = self.part.stat().st_size
            except FileNotFoundError:
                self.offset = 0
            if self.offset > self.meta.length:
                self.offset = 0
        else:
            self.meta = None
        start_offset = self.offset
        streak = FailureStreak(self.offset)
        with self._open_part() as file:
            while True:
                try:
                    done = self._request(file)
                except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
                    raise DownloadError(unusable_url(exc, "download")) from None
                except (httpx.RequestError, Retryable) as exc:
                    reason, wait_at_least = retry_reason(exc)
                    failures = streak.failed(self.offset)
                    if failures >= self.retry.attempts:
                        total = f" of {self.meta.length:,}" if self.meta else ""
                        raise DownloadError(
                            f"download interrupted: {reason} at {self.offset:,}{total} bytes "
                            f"after {failures} attempts; {self.part.name} is kept, re-run to "
                            "resume"
                        ) from None  # httpx's exception carries the URL: not even in a traceback
                    self.retries += 1
                    self.sleep(self.retry.delay(failures, wait_at_least))
                    continue
                if done:
                    break
            assert self.meta is not None
            self._finish(file)
        self._progress(self.meta.length, force=True)
        return FetchResult(
            path=self.path,
            total=self.meta.length,
            start_offset=start_offset,
            received=self.received,
            requests=self.requests,
            retries=self.retries,
            restarts=self.restarts,
            seconds=time.monotonic() - self.started,
        )

    @contextlib.contextmanager
    def _open_part(self) -> Iterator[BinaryIO]:
        try:
            # Unbuffered: each block goes from httpx to the kernel with no copy of ours.
            file = open(self.part, "r+b" if self.offset else "w+b", buffering=0)  # noqa: SIM115
        except OSError as exc:
            raise _disk_error(exc, self.part, self.offset) from None
        with file:
            if self.offset:
                file.seek(self.offset)
            else:
                self._truncate(file)
            yield file

    def _request(self, file: BinaryIO) -> bool:
        """One GET; True when the `.part` holds the whole file."""
        headers = {"Accept-Encoding": "identity"}
        meta = self.meta
        if meta is not None and self.offset >= meta.length and self.offset > 0:
            return True
        if meta is not None and self.offset > 0 and meta.validator:
            headers["Range"] = f"bytes={self.offset}-"
            headers["If-Range"] = meta.validator
        elif self.offset:
            self._restart(file)
        self.requests += 1
        with self.client.stream("GET", self.url, headers=headers) as response:
            status = response.status_code
            if status == 200:
                if self.offset:
                    # The whole file again: the source changed (If-Range failed) or the
                    # server ignores Range. Start the `.part` over; never append to it.
                    self._restart(file)
                self._take(response, response.headers.get("Content-Length"), start=0)
            elif status == 206:
                self._take_partial(file, response)
            elif status == 416:
                return self._unsatisfiable(file, response)
            elif status in (401, 403, 404, 410):
                raise DownloadUrlExpired(
                    f"the download link answered HTTP {status}: it expired or was revoked"
                )
            elif status in (408, 429) or status >= 500:
                raise Retryable(f"HTTP {status}", retry_after(response))
            else:
                raise DownloadError(
                    f"the download was refused: HTTP {status} {response.reason_phrase}".rstrip()
                )
            self._stream(file, response)
        assert self.meta is not None
        return self.offset == self.meta.length

    def _take(self, response: httpx.Response, length: str | None, *, start: int) -> None:
        """A body from byte `start` of a file of declared `length` (a 200's Content-Length):
        record what the `.part` is a prefix of, before any byte is written."""
        if length is None or not length.strip().isdigit():
            raise DownloadError("the server did not declare the file's length")
        meta = _Meta(
            key=self.key,
            length=int(length),
            etag=_strong_etag(response),
            last_modified=response.headers.get("Last-Modified"),
        )
        if meta != self.meta:
            self._write_meta(meta)
        self.meta = meta
        self._progress(start, force=True)

    def _take_partial(self, file: BinaryIO, response: httpx.Response) -> None:
        match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
        meta = self.meta
        etag = _strong_etag(response)
        if (
            match is None
            or meta is None
            or int(match.group(1)) != self.offset
            or int(match.group(3)) != meta.length
            or (etag is not None and meta.etag is not None and etag != meta.etag)
        ):
            # Not the continuation asked for: start over with a plain GET.
            self._restart(file)
            raise Retryable("the server answered a range that does not continue the file")
        self._progress(self.offset, force=True)

    def _unsatisfiable(self, file: BinaryIO, response: httpx.Response) -> bool:
        match = _UNSATISFIED.fullmatch(response.headers.get("Content-Range", "").strip())
        length = self.meta.length if self.meta is not None else None
        if match and int(match.group(1)) == self.offset == length:
            return True  # every byte was already there (killed before the rename)
        self._restart(file)
        raise Retryable("the server cannot serve the rest of the file")

    def _stream(self, file: BinaryIO, response: httpx.Response) -> None:
        assert self.meta is not None
        length = self.meta.length
        write = file.write
        for block in response.iter_raw():
            if self.offset + len(block) > length:
                raise DownloadError(
                    f"the server sent more than the {length:,} bytes it declared"
                ) from None
            try:
                written = write(block)
                while written is not None and written < len(block):
                    written += write(memoryview(block)[written:])
            except OSError as exc:
                raise _disk_error(exc, self.part, self.offset) from None
            self.offset += len(block)
            self.received += len(block)
            if self.on_progress is not None:
                self._progress(self.offset)
        if self.offset < length:
            # A clean end of a short body: h11 usually raises instead; same handling.
            raise Retryable(f"the body ended at {self.offset:,} of {length:,} bytes")

    def _restart(self, file: BinaryIO) -> None:
        if self.offset:
            self.restarts += 1
        self.offset = 0
        self.meta = None
        with contextlib.suppress(OSError):
            meta_path(self.path).unlink()
        self._truncate(file)
        self._progress(0, force=True)

    def _truncate(self, file: BinaryIO) -> None:
        try:
            file.seek(0)
            file.truncate(0)
        except OSError as exc:
            raise _disk_error(exc, self.part, 0) from None

    def _write_meta(self, meta: _Meta) -> None:
        target = meta_path(self.path)
        temporary = target.with_name(target.name + ".tmp")
        try:
            temporary.write_text(json.dumps(asdict(meta)), "utf-8")
            os.replace(temporary, target)
        except OSError as exc:
            raise _disk_error(exc, target, self.offset) from None

    def _finish(self, file: BinaryIO) -> None:
        try:
            os.fsync(file.fileno())
            size = os.fstat(file.fileno()).st_size
        except OSError as exc:
            raise _disk_error(exc, self.part, self.offset) from None
        assert self.meta is not None
        if size != self.meta.length:
            raise DownloadError(
                f"{self.part.name} holds {size:,} bytes, not the {self.meta.length:,} declared"
            )
        try:
            os.replace(self.part, self.path)
            with contextlib.suppress(OSError):
                meta_path(self.path).unlink()
            _fsync_dir(self.path.parent)
        except OSError as exc:
            raise _disk_error(exc, self.path, size) from None

    def _progress(self, done: int, *, force: bool = False) -> None:
        if self.on_progress is None or self.meta is None:
            return
        now = time.monotonic()
        if force or now - self.last_progress >= PROGRESS_INTERVAL:
            self.last_progress = now
            self.on_progress(done, self.meta.length)


def _fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (where the platform allows opening a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _disk_error(exc: OSError, path: Path, kept: int) -> DownloadError:
    """One line for a local file error, saying what is kept for a re-run."""
    kept_text = f"; {kept:,} bytes kept in {path.name}, re-run to resume" if kept else ""
    if exc.errno == errno.ENOSPC:
        return DownloadError(f"no space left on the device for {path}{kept_text}")
    if exc.errno == errno.EDQUOT:
        return DownloadError(f"disk quota exceeded writing {path}{kept_text}")
    if isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EROFS):
        return DownloadError(f"cannot write {path}: {exc.strerror or 'permission denied'}")
    return DownloadError(f"cannot write {path}: {exc.strerror or type(exc).__name__}{kept_text}")
