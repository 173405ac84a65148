"""Resumable chunked PUT of a file to a Mux direct-upload URL (a GCS resumable session).

The caller owns the `httpx.Client` (its timeouts, its connection pool, its transport); this
module only decides what to send and how to react. It never prints: progress goes to
callbacks, failures are `vidpipe.errors.TransferError` (or its subclass `UploadUrlExpired`).

Protocol (Mux's upload URL is a Google Cloud Storage resumable session):
- each chunk is a `PUT` with `Content-Range: bytes START-END/TOTAL`; every chunk but the last
  is a multiple of 256 KiB;
- 308 means "continue", its `Range: bytes=0-N` says the server holds N+1 bytes (no `Range`:
  nothing), and the next chunk starts there, whatever was sent;
- 200/201 means complete;
- an empty `PUT` with `Content-Range: bytes */TOTAL` asks for the offset.

Request sizes: each chunk's 308 costs a round trip in which the link idles, so by default
(`AUTO_CHUNK`) a `ChunkSizer` starts small and grows each request until that idle time is a
small fraction of the request's; an explicit `chunk_size` is used exactly as given.

Timeouts are the client's. httpx applies the write timeout to each block handed to the
socket (`read_size` bytes), not to a whole request, so an ordinary write timeout (tens of
seconds) is right whatever the request size; nothing here overrides it.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import httpx
from tenacity import RetryCallState, Retrying, wait_exponential_jitter

from vidpipe.errors import TransferError
from vidpipe.redact import redacted
from vidpipe.units import AUTO_CHUNK, CHUNK_QUANTUM

__all__ = [
    "AUTO_CHUNK",
    "CHUNK_QUANTUM",
    "READ_SIZE",
    "ChunkSizer",
    "TransferResult",
    "TransferRetry",
    "UploadUrlExpired",
    "describe_request_error",
    "query_offset",
    "retry_after",
    "transfer",
]


UPLOAD_URL_SHOWN = "<upload URL>"
"""What httpx's log records show in place of an upload URL while vidpipe uses it."""

READ_SIZE = 1024 * 1024
"""Bytes read from disk and handed to httpx at a time: memory use is bounded by this."""

PROGRESS_INTERVAL = 0.1
"""Minimum seconds between two `on_progress` calls while bytes stream out."""

CONFIRM_OVERLAP = 4 * 1024 * 1024
"""How far into the next chunk the previous chunk's `on_confirmed` waits (see `transfer`).

About what the kernel buffers on a socket: with that much in flight the server keeps receiving
while the callback writes its journal row, instead of idling once per chunk.
"""

RETRY_AFTER_CAP = 300.0
"""A server's Retry-After is honoured up to this many seconds."""

START_CHUNK = 8 * 1024 * 1024
"""`ChunkSizer`'s first request: small enough to answer soon on a slow link, big enough to
measure the link's throughput."""

MIN_CHUNK = 1024 * 1024
"""`ChunkSizer` never plans a request smaller than this, however many failures in a row."""

IDLE_TARGET = 0.02
"""`ChunkSizer` sizes requests so the round trip after each costs at most this fraction of
the request's time."""

MAX_REQUEST_SECONDS = 60.0
"""`ChunkSizer` plans no request longer than this at the measured throughput (the last one may
be up to twice as long), so a journal hears of progress at least about this often."""


class UploadUrlExpired(TransferError):
    """The upload URL answered 404/410: the session expired or the upload was cancelled.

    Resuming is impossible; a new direct upload has to be created.
    """


class ChunkSizer:
    """How many bytes the next PUT carries: small first, then as large as the link warrants.

    A pure policy: it sees what each request sent and how long it took (`observe`, or the
    clock-driven `request_started`/`body_sent`/`request_answered`), and failures
    (`request_failed`). `transfer` drives one per run when `chunk_size` is `AUTO_CHUNK`;
    pass your own to `transfer` to change its settings or its clock.

    - Start: `start` bytes (`START_CHUNK`).
    - Overhead: the shortest wait seen between a request's last body byte leaving and its
      answer arriving, or an offset query's round trip, whichever is smaller. It is what the
      link idles per request (plus what was still buffered on the way, so it errs large, and
      requests err long).
    - Stall: what the sender itself spends per request besides sending: its own work from
      one answer to the next request, and callbacks that hold up a request's body (the
      journal's write of the previous offset). On a slow link the bytes already in flight
      hide it; on a fast one (loopback, a LAN) it idles the link like a round trip does, so
      it counts with the overhead. A running mean of the requests so far.
    - Growth, after each answered request: enough bytes, at that request's throughput (its
      bytes over its time less the overhead), that overhead plus stall is at most `idle` of
      a request's time; but at most `growth` times the previous size, and never smaller
      than it unless a request would last longer than `max_seconds`. Until an overhead is
      known it just grows by `growth`.
    - Shrink, after a failed request: the size is divided by `shrink`.
    - Bounds: between `minimum` and `maximum` (None: no limit), always a multiple of
      `CHUNK_QUANTUM`; `next_size` sends what is left in one request once that is less than
      two planned requests, so no short tail request follows a long one.

    One instance per upload: a second transfer with the same instance starts from what the
    first learned (its size and estimates).
    """

    def __init__(
        self,
        *,
        start: int = START_CHUNK,
        minimum: int = MIN_CHUNK,
        maximum: int | None = None,
        idle: float = IDLE_TARGET,
        growth: float = 4.0,
        shrink: float = 4.0,
        max_seconds: float = MAX_REQUEST_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for name, value in (("start", start), ("minimum", minimum), ("maximum", maximum)):
            if value is not None and (value <= 0 or value % CHUNK_QUANTUM):
                raise ValueError(f"{name} must be a positive multiple of {CHUNK_QUANTUM}")
        if not minimum <= start <= (maximum or start):
            raise ValueError("sizes must satisfy minimum <= start <= maximum")
        if not 0 < idle < 1 or growth < 1 or shrink < 1 or max_seconds <= 0:
            raise ValueError("need 0 < idle < 1, growth >= 1, shrink >= 1, max_seconds > 0")
        self.size = start
        """Bytes the next request carries (unless less is left, see `next_size`)."""
        self.overhead: float | None = None
        """Seconds the link is thought to idle per request; None until measured."""
        self.rate: float | None = None
        """Bytes per second of the last answered request's body; None before."""
        self.stall = 0.0
        """Seconds the sender is thought to spend per request besides sending (see above)."""
        self.minimum = minimum
        self.maximum = maximum
        self.idle = idle
        self.growth = growth
        self.shrink = shrink
        self.max_seconds = max_seconds
        self.clock = clock
        self._started: float | None = None
        self._body_sent: float | None = None
        self._answered: float | None = None  # when the last request was answered
        # The current request's stall so far; None when it is not measured (no answer came
        # before it in this run, or since a failure).
        self._stalled: float | None = None
        self._callback: float | None = None  # when a callback inside a body began
        self._stalls_seen = 0

    def next_size(self, remaining: int) -> int:
        """Bytes for a request when `remaining` bytes of the file are left to send.

        `size`, or all of `remaining` when that is less than twice `size`.
        """
        if remaining <= 0:
            raise ValueError("nothing left to send")
        return remaining if remaining < 2 * self.size else self.size

    # --- driven by a clock

    def request_started(self) -> None:
        """A request (a chunk or an offset query) is about to go out."""
        now = self.clock()
        # The sender's own work since the last answer, if there was one.
        self._stalled = None if self._answered is None else now - self._answered
        self._answered = None
        self._started = now
        self._body_sent = None

    def callback_started(self) -> None:
        """A callback that holds up the current request's body (a journal write) begins."""
        self._callback = self.clock()

    def callback_ended(self) -> None:
        """That callback returned: its time counts as the request's stall."""
        if self._callback is not None and self._stalled is not None:
            self._stalled += self.clock() - self._callback
        self._callback = None

    def body_sent(self) -> None:
        """The request's last body byte has been handed to the connection."""
        self._body_sent = self.clock()

    def request_answered(self, sent: int) -> None:
        """The request started last was answered (a 308, or 200/201); it carried `sent`
        body bytes (0 for an offset query)."""
        if self._started is None:
            return
        now = self.clock()
        seconds = now - self._started
        if self._body_sent is not None:
            wait: float | None = now - self._body_sent
        else:
            wait = seconds if sent == 0 else None
        stall = self._stalled if sent > 0 else None
        self._started = self._body_sent = self._callback = self._stalled = None
        self._answered = now
        self.observe(sent, seconds, wait, stall=stall)

    def request_failed(self) -> None:
        """The chunk request started last failed (dropped, timed out, 408/429/5xx, or the
        server kept none of it): the next one is smaller."""
        # A back-off and an offset query follow: no part of the sender's usual stall.
        self._started = self._body_sent = self._callback = self._answered = None
        self._stalled = None
        self.size = self._bounded(self.size / self.shrink)

    # --- the policy itself

    def observe(
        self, sent: int, seconds: float, wait: float | None = None, *, stall: float | None = None
    ) -> None:
        """Learn from one answered request: `sent` body bytes (0 for an offset query) over
        `seconds` from its start to its answer, of which `wait` (if known) came after the
        last body byte left; `stall`, if known, is what the sender spent besides sending for
        it (its work before the request, callbacks during it)."""
        if wait is not None and wait >= 0:
            self.overhead = wait if self.overhead is None else min(self.overhead, wait)
        if stall is not None and stall >= 0:
            self._stalls_seen += 1
            self.stall += (stall - self.stall) / self._stalls_seen
        if sent <= 0:
            return
        # The body's own time: the request's less the overhead, which is no part of it (at
        # least half the request's, in case the overhead is overestimated).
        body_seconds = max(seconds - (self.overhead or 0.0), seconds / 2)
        rate = sent / body_seconds if body_seconds > 0 else math.inf
        self.rate = rate
        if self.overhead is None or math.isinf(rate):
            wanted = math.inf
        else:
            # The idle share of a request is idle time / (idle time + its body's time).
            wanted = rate * (self.overhead + self.stall) * (1 - self.idle) / self.idle
        wanted = max(wanted, self.size)  # success alone never shrinks a request...
        longest = rate * self.max_seconds  # ...except to keep it this short
        self.size = self._bounded(min(wanted, self.size * self.growth, longest))

    def _bounded(self, size: float) -> int:
        # Rounded up: rounding down would leave the idle share just over its target.
        whole = math.ceil(size / CHUNK_QUANTUM) * CHUNK_QUANTUM
        if self.maximum is not None:
            whole = min(whole, self.maximum)
        return max(self.minimum, whole)


class _FixedSize:
    """`chunk_size` given as a number: every request but the last carries exactly that."""

    def __init__(self, size: int) -> None:
        self.size = size

    def next_size(self, remaining: int) -> int:
        return min(self.size, remaining)

    def request_started(self) -> None:
        pass

    def body_sent(self) -> None:
        pass

    def request_answered(self, sent: int) -> None:
        pass

    def request_failed(self) -> None:
        pass

    def callback_started(self) -> None:
        pass

    def callback_ended(self) -> None:
        pass


class _SizePolicy(Protocol):
    def next_size(self, remaining: int) -> int: ...
    def request_started(self) -> None: ...
    def body_sent(self) -> None: ...
    def request_answered(self, sent: int) -> None: ...
    def request_failed(self) -> None: ...
    def callback_started(self) -> None: ...
    def callback_ended(self) -> None: ...


@dataclass(frozen=True)
class TransferRetry:
    """How hard `transfer` tries before giving up.

    `attempts` counts consecutive failed attempts without progress: a failure after the
    server confirmed more bytes than at the previous failure starts the count again, so a
    long upload over a flaky link keeps going as long as it keeps moving.
    Delays are exponential (`initial` * 2^n, capped at `maximum`) plus up to `jitter` seconds.
    """

    attempts: int = 8
    initial: float = 1.0
    maximum: float = 30.0
    jitter: float = 1.0

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        """Seconds to back off after the `failures`-th failure in a row; at least a
        server's `retry_after` when it gave one."""
        wait = wait_exponential_jitter(
            multiplier=self.initial, max=self.maximum, jitter=self.jitter
        )
        state = RetryCallState(retry_object=Retrying(), fn=None, args=(), kwargs={})
        state.attempt_number = failures
        delay = wait(state)
        return delay if retry_after is None else max(delay, retry_after)


class FailureStreak:
    """The count `TransferRetry.attempts` bounds: failures in a row without progress. A
    failure after more bytes are confirmed than at the previous one starts it again."""

    def __init__(self, at: int) -> None:
        self.count = 0
        self._at = at

    def failed(self, at: int) -> int:
        """Count a failure with `at` bytes confirmed; returns the failures in a row."""
        if at > self._at:
            self.count = 0
        self.count += 1
        self._at = at
        return self.count


@dataclass(frozen=True)
class TransferResult:
    """What a finished transfer did.

    `bytes_sent` counts body bytes handed to the connection, resends included; `requests`
    counts every PUT (offset queries included); `retries` counts back-offs after failures.
    `response_json` is the body of the final 200/201 when it was JSON, else None.
    `seconds` is the run's wall time, from its first request to the final answer (back-offs
    included).
    """

    total: int
    bytes_sent: int
    requests: int
    retries: int
    response_json: Any | None
    start_offset: int = 0  # where this run started: the caller's offset or the server's
    seconds: float = 0.0


def query_offset(client: httpx.Client, url: str, total: int) -> int | None:
    """Ask the upload URL how many bytes it holds, with one empty `PUT` (`bytes */TOTAL`).

    Returns the number of bytes held (0 when the server holds nothing), or None when the
    upload is already complete. One attempt, no retries: any failure raises
    `TransferError` (`UploadUrlExpired` for 404/410).
    """
    # `from None` throughout: httpx's exceptions carry the request, URL and all.
    try:
        with redacted(url, UPLOAD_URL_SHOWN):
            answer = _interpret(_put_query(client, url, total), total, sent_to=None)
    except httpx.InvalidURL:
        raise TransferError("the upload URL is not a valid URL") from None
    except httpx.RequestError as exc:
        reason = describe_request_error(exc)
        raise TransferError(f"could not query the upload offset: {reason}") from None
    except Retryable as exc:
        raise TransferError(f"could not query the upload offset: {exc.reason}") from None
    return None if answer.complete else answer.held


def transfer(
    client: httpx.Client,
    url: str,
    path: Path,
    *,
    chunk_size: int | ChunkSizer | None = AUTO_CHUNK,
    start_offset: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    on_confirmed: Callable[[int], None] | None = None,
    retry: TransferRetry = TransferRetry(),
    sleep: Callable[[float], None] = time.sleep,
    read_size: int = READ_SIZE,
) -> TransferResult:
    """Upload `path` to the resumable upload `url`, resuming where the server left off.

    - `start_offset`: where to start (e.g. from a journal); None asks the server first, and
      returns at once if it says the upload is complete. The server's word wins after the
      first answer either way.
    - `chunk_size`: `AUTO_CHUNK` (or None) lets a fresh `ChunkSizer` size each PUT; a
      `ChunkSizer` is used as given; a number is the exact size of every PUT but the last,
      a positive multiple of `CHUNK_QUANTUM`.
    - `on_progress(done, total)`: the position in the file as bytes go out (throttled to
      one call per `PROGRESS_INTERVAL`) and after each server answer. It can go back when
      the server held fewer bytes than were sent.
    - `on_confirmed(offset)`: the server-confirmed byte count after each 308 and on
      completion (`total`), in order; safe to journal. The call for a 308 waits until the
      next request has `CONFIRM_OVERLAP` bytes in flight (or is about to read its last block),
      so a journal write there overlaps the network instead of stalling it once per request;
      a pending call is always made before `transfer` retries, returns or raises.
    - `read_size`: bytes read from disk per block; memory stays at about this much.

    Dropped connections, timeouts and HTTP 408/429/5xx are retried with back-off, then the
    offset is queried and the upload resumes. Raises `UploadUrlExpired` on 404/410 and
    `TransferError` on other 4xx, on `retry.attempts` consecutive failures without
    progress, on a server answer that contradicts the file's size, or if the file changes
    during the transfer. Messages never contain the URL.
    """
    sizes: _SizePolicy
    if isinstance(chunk_size, ChunkSizer):
        sizes = chunk_size
    elif chunk_size is None or chunk_size == AUTO_CHUNK:
        sizes = ChunkSizer()
    elif chunk_size < 0 or chunk_size % CHUNK_QUANTUM:
        raise ValueError(f"chunk_size must be a positive multiple of {CHUNK_QUANTUM}")
    else:
        sizes = _FixedSize(chunk_size)
    if read_size <= 0:
        raise ValueError("read_size must be positive")
    # Unbuffered: each read goes straight from the kernel into the bytes object httpx sends.
    with open(path, "rb", buffering=0) as file, redacted(url, UPLOAD_URL_SHOWN):
        # In the order of `_Session`'s fields.
        session = _Session(
            client, url, file, sizes, read_size, on_progress, on_confirmed, retry, sleep
        )
        return session.run(start_offset)


# --- internals ---------------------------------------------------------------------------


class Retryable(Exception):
    """A failure worth retrying after a back-off and an offset query (upload and download)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def unusable_url(exc: httpx.InvalidURL | httpx.UnsupportedProtocol, verb: str) -> str:
    """Why a request to `verb` (upload, download) at this URL can never work (no retry)."""
    if isinstance(exc, httpx.InvalidURL):
        return f"the {verb} URL is not a valid URL"
    return f"cannot {verb}: {describe_request_error(exc)}"


def retry_reason(exc: httpx.RequestError | Retryable) -> tuple[str, float | None]:
    """Why a request failed in a way worth retrying, and the least wait the server asked for."""
    if isinstance(exc, Retryable):
        return exc.reason, exc.retry_after
    return describe_request_error(exc), None


@dataclass(frozen=True)
class _Answer:
    held: int  # bytes the server holds; meaningful when not complete
    complete: bool
    body: Any | None = None


_RANGE_RE = re.compile(r"bytes=0-(\d+)")


def _put_query(client: httpx.Client, url: str, total: int) -> httpx.Response:
    headers = {"Content-Range": f"bytes */{total}", "Content-Length": "0"}
    return client.put(url, content=b"", headers=headers)


def _interpret(response: httpx.Response, total: int, *, sent_to: int | None) -> _Answer:
    """Turn a response into an answer, or raise. `sent_to`: end of the chunk just sent."""
    status = response.status_code
    if status == 308:
        header = response.headers.get("Range")
        if header is None:
            held = 0
        else:
            match = _RANGE_RE.fullmatch(header.strip())
            if match is None:
                raise TransferError(f"upload server sent an unreadable Range header: {header!r}")
            held = int(match.group(1)) + 1
        if held > total:
            raise TransferError(f"upload server claims {held:,} bytes of a {total:,}-byte file")
        if sent_to is not None and held > sent_to:
            raise TransferError(
                f"upload server claims {held:,} bytes but only {sent_to:,} of {total:,} were sent"
            )
        return _Answer(held=held, complete=False)
    if status in (200, 201):
        body = _json_or_none(response)
        size = body.get("size") if isinstance(body, dict) else None
        if size is not None and str(size) != str(total):
            raise TransferError(
                f"upload server completed with {size} bytes, but the file has {total:,}"
            )
        return _Answer(held=total, complete=True, body=body)
    if status in (404, 410):
        raise UploadUrlExpired(
            f"upload URL is gone (HTTP {status}): it expired or the upload was cancelled; "
            "create a new upload"
        )
    if status == 408 or status == 429 or status >= 500:
        return _raise_retryable(response)
    if 400 <= status < 500:
        raise TransferError(f"upload rejected: HTTP {status} {response.reason_phrase}".rstrip())
    # Any other answer (202, 204, 3xx) is not part of the protocol; the offset query that
    # follows a retry tells what the server really holds.
    raise Retryable(f"unexpected HTTP {status}")


def _raise_retryable(response: httpx.Response) -> _Answer:
    raise Retryable(f"HTTP {response.status_code}", retry_after(response))


def retry_after(response: httpx.Response) -> float | None:
    """The response's `Retry-After` in seconds (at most `RETRY_AFTER_CAP`), if it has one."""
    value = response.headers.get("Retry-After", "")
    return min(float(value), RETRY_AFTER_CAP) if value.strip().isdigit() else None


def _json_or_none(response: httpx.Response) -> Any | None:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def describe_request_error(exc: httpx.RequestError) -> str:
    """What went wrong with a request, in a few words, never with its URL (the exception's
    own text is left out on purpose: some carry the request URL)."""
    if isinstance(exc, httpx.UnsupportedProtocol):
        what = "not an http(s) URL"
    elif isinstance(exc, httpx.TimeoutException):
        what = "timed out"
    elif isinstance(exc, httpx.ConnectError):
        what = "could not connect"
    else:
        what = "connection dropped"
    return f"{what} ({type(exc).__name__})"


@dataclass(eq=False)
class _Session:
    """One run of `transfer`: the open file, the counters and the retry state."""

    client: httpx.Client
    url: str
    file: BinaryIO
    sizes: _SizePolicy
    read_size: int
    on_progress: Callable[[int, int], None] | None
    on_confirmed: Callable[[int], None] | None
    retry: TransferRetry
    sleep: Callable[[float], None]

    def __post_init__(self) -> None:
        file = self.file
        self.stat = os.fstat(file.fileno())
        self.total = self.stat.st_size
        self.bytes_sent = 0
        self.requests = 0
        self.retries = 0
        self.pending: int | None = None  # confirmed, `on_confirmed` not called yet
        self.best = 0  # highest offset the server has confirmed in this run
        self.known = 0  # latest offset known to be held: the caller's, then the server's
        self.last_progress_call = 0.0
        self.started = time.monotonic()

    def run(self, start_offset: int | None) -> TransferResult:
        try:
            return self._run(start_offset)
        finally:
            self._report_confirmed()

    def _run(self, start_offset: int | None) -> TransferResult:
        total = self.total
        if start_offset is not None and not 0 <= start_offset <= total:
            raise TransferError(f"start offset {start_offset:,} is outside the file (0-{total:,})")
        offset = start_offset
        first: int | None = start_offset
        if offset is not None:
            self.known = offset
            self._progress(offset, force=True)
        streak = FailureStreak(self.best)
        while True:
            try:
                if offset is None or offset >= total:
                    answer = self._query()
                else:
                    answer = self._send_chunk(offset)
            except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
                raise TransferError(unusable_url(exc, "upload")) from None
            except (httpx.RequestError, Retryable) as exc:
                self._report_confirmed()
                reason, retry_after = retry_reason(exc)
                failures = streak.failed(self.best)
                if failures >= self.retry.attempts:
                    raise TransferError(
                        f"upload interrupted: {reason} at {self.known:,} of {total:,} bytes "
                        f"after {failures} attempts; re-run the same command to resume"
                    ) from None  # httpx's exception carries the URL: not even in a traceback
                self.retries += 1
                self.sleep(self.retry.delay(failures, retry_after))
                offset = None
                continue
            self._check_file_unchanged()
            if first is None:
                first = total if answer.complete else answer.held
            if answer.complete:
                self._confirm(total)
                return TransferResult(
                    total=total,
                    bytes_sent=self.bytes_sent,
                    requests=self.requests,
                    retries=self.retries,
                    response_json=answer.body,
                    start_offset=first,
                    seconds=time.monotonic() - self.started,
                )
            self._confirm(answer.held, defer=True)
            offset = answer.held

    def _query(self) -> _Answer:
        self.requests += 1
        self.sizes.request_started()
        answer = _interpret(_put_query(self.client, self.url, self.total), self.total, sent_to=None)
        self.sizes.request_answered(0)
        if not answer.complete and answer.held >= self.total:
            # Every byte is there but the session is not finalised; asking again later is
            # all a client can do.
            raise Retryable("server holds every byte but has not completed the upload")
        return answer

    def _send_chunk(self, start: int) -> _Answer:
        end = start + self.sizes.next_size(self.total - start)
        headers = {
            "Content-Range": f"bytes {start}-{end - 1}/{self.total}",
            "Content-Length": str(end - start),
        }
        self.requests += 1
        self.sizes.request_started()
        try:
            response = self.client.put(self.url, content=self._body(start, end), headers=headers)
            answer = _interpret(response, self.total, sent_to=end)
        except (httpx.RequestError, Retryable):
            self.sizes.request_failed()
            raise
        if not answer.complete and answer.held <= start:
            # Without this a server that keeps accepting nothing would loop forever.
            self.sizes.request_failed()
            self._confirm(answer.held)
            raise Retryable(f"server kept none of the chunk at {start:,}")
        self.sizes.request_answered(end - start)
        return answer

    def _body(self, start: int, end: int) -> Iterator[bytes]:
        """Yield the file's bytes [start, end) in blocks of `read_size`, read as sent."""
        file, read_size, total = self.file, self.read_size, self.total
        # The previous request's confirmation is reported once this much of this one is in
        # flight, and at the latest before its last block is read (before the first, for a
        # one-block chunk): the callback's database write overlaps the network.
        last_block = start + (end - start - 1) // read_size * read_size
        report_at = min(start + CONFIRM_OVERLAP, last_block)
        file.seek(start)
        position = start
        while position < end:
            if position >= report_at and self.pending is not None:
                self.sizes.callback_started()
                self._report_confirmed()
                self.sizes.callback_ended()
            data = file.read(min(read_size, end - position))
            if not data:
                raise TransferError(
                    f"file shrank during the upload: expected {total:,} bytes, "
                    f"ended at {position:,}"
                )
            position += len(data)
            self.bytes_sent += len(data)
            yield data
            if self.on_progress is not None:
                self._progress(position)
        # httpx asks for more only once the last block is written to the connection.
        self.sizes.body_sent()

    def _progress(self, done: int, *, force: bool = False) -> None:
        if self.on_progress is None:
            return
        now = time.monotonic()
        if force or now - self.last_progress_call >= PROGRESS_INTERVAL:
            self.last_progress_call = now
            self.on_progress(done, self.total)

    def _confirm(self, held: int, *, defer: bool = False) -> None:
        """Record a server-confirmed offset; `defer` reports it from the next chunk's body."""
        self.best = max(self.best, held)
        self.known = held
        self._report_confirmed()
        self.pending = held
        if not defer:
            self._report_confirmed()
        self._progress(held, force=True)

    def _report_confirmed(self) -> None:
        held, self.pending = self.pending, None
        if held is not None and self.on_confirmed is not None:
            self.on_confirmed(held)

    def _check_file_unchanged(self) -> None:
        now = os.fstat(self.file.fileno())
        if (now.st_size, now.st_mtime_ns) != (self.stat.st_size, self.stat.st_mtime_ns):
            raise TransferError(
                f"file changed during the upload (was {self.stat.st_size:,} bytes, "
                f"now {now.st_size:,}); re-run once it is final"
            )
