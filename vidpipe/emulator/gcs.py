"""The byte side of an upload URL: a Google Cloud Storage resumable-upload session.

GCS persists a resumable upload only in whole 256 KiB blocks (plus the final bytes of the
object). This module keeps that state for one upload: how many bytes are committed, a
running SHA-256 of them, the first bytes of the file (to tell a video from anything else)
and, optionally, a copy on disk. It never holds the file in memory.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

BLOCK = 256 * 1024
"""GCS's resumable-upload granularity: 256 KiB."""

HEAD_BYTES = 64

_RANGE_RE = re.compile(r"^\s*bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)\s*$")


class RangeError(ValueError):
    """A Content-Range header GCS would refuse (answered with 400)."""


@dataclass(frozen=True)
class ContentRange:
    """A parsed `Content-Range: bytes START-END/TOTAL` (or `bytes */TOTAL`).

    `start`/`end` are None for the `*` (offset query) form; `total` is None for `/*`.
    """

    start: int | None
    end: int | None
    total: int | None

    @property
    def is_query(self) -> bool:
        return self.start is None

    @property
    def length(self) -> int:
        if self.start is None or self.end is None:
            return 0
        return self.end - self.start + 1

    @property
    def is_final(self) -> bool:
        return self.end is not None and self.total is not None and self.end + 1 == self.total


def parse_content_range(value: str) -> ContentRange:
    """Parse a Content-Range header value, raising RangeError when it is malformed."""
    match = _RANGE_RE.match(value)
    if not match:
        raise RangeError(f"Malformed Content-Range header: {value!r}")
    start_s, end_s, total_s = match.groups()
    total = None if total_s == "*" else int(total_s)
    if start_s is None:
        return ContentRange(None, None, total)
    start, end = int(start_s), int(end_s)
    if end < start:
        raise RangeError("Content-Range end is before its start")
    if total is not None and end >= total:
        raise RangeError("Content-Range end is beyond the declared total")
    return ContentRange(start, end, total)


class ResumableSession:
    """Committed bytes of one resumable upload; thread-safe.

    Writers identify themselves with a token from `begin()`: a newer request supersedes an
    older one still draining a dead connection, as on GCS, where only one request of a
    session makes progress at a time.
    """

    def __init__(self, store_path: Path | None = None, *, checksum: bool = True) -> None:
        self._lock = threading.Lock()
        self._hash = hashlib.sha256() if checksum else None
        self._store_path = store_path
        self._file: BinaryIO | None = None
        self._token = 0
        self.committed = 0
        self.total: int | None = None
        self.complete = False
        self.head = b""

    def begin(self) -> int:
        """Start a request on this session; returns the token its commits must carry."""
        with self._lock:
            self._token += 1
            return self._token

    def set_total(self, total: int) -> None:
        """Record the object size a request declared; a different size later is an error."""
        with self._lock:
            if self.total is not None and self.total != total:
                raise RangeError(
                    f"Declared total {total} differs from the session's total {self.total}"
                )
            self.total = total

    def commit(self, token: int, data: memoryview | bytes | bytearray) -> bool:
        """Append `data` to the committed bytes, unless a newer request took over."""
        with self._lock:
            if token != self._token or self.complete:
                return False
            if len(self.head) < HEAD_BYTES:
                self.head += bytes(data[: HEAD_BYTES - len(self.head)])
            if self._hash is not None:
                self._hash.update(data)
            if self._store_path is not None:
                if self._file is None:
                    # opened lazily: most uploads in a test run never receive a byte
                    self._file = open(self._store_path, "ab")  # noqa: SIM115
                self._file.write(data)
            self.committed += len(data)
            return True

    def finish(self, token: int) -> bool:
        """Mark the object complete (all `total` bytes committed); False if superseded."""
        with self._lock:
            if token != self._token or self.complete:
                return False
            self.complete = True
            if self._file is not None:
                self._file.close()
                self._file = None
            return True

    def digest(self) -> tuple[int, str]:
        """(committed size, hex SHA-256 of the committed bytes; "" without checksum)."""
        with self._lock:
            return self.committed, self._hash.copy().hexdigest() if self._hash else ""

    def stored_bytes(self) -> bytes:
        """The committed bytes as stored on disk; only when a store path was given."""
        if self._store_path is None:
            raise RuntimeError("the emulator was started without store_dir")
        with self._lock:
            if self._file is not None:
                self._file.flush()
            if not self._store_path.exists():
                return b""
            return self._store_path.read_bytes()

    def close(self) -> None:
        """Release the on-disk copy's file handle (the file itself stays)."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


class BlockWriter:
    """Feeds one request's body into a session, committing only whole 256 KiB blocks.

    Bytes at offsets the session already holds are skipped. What is left of an incomplete
    block when the request ends is dropped, unless `flush_final()` commits it as the end of
    the object.
    """

    def __init__(self, session: ResumableSession, token: int, start: int) -> None:
        self._session = session
        self._token = token
        self._pos = start
        self._pending = bytearray()
        self.superseded = False

    def feed(self, data: memoryview) -> None:
        """Take the next bytes of the body (at absolute offset `pos`)."""
        if self.superseded:
            return
        held = self._session.committed + len(self._pending)
        if self._pos + len(data) <= held:
            self._pos += len(data)
            return
        if self._pos < held:
            data = data[held - self._pos :]
            self._pos = held
        self._pos += len(data)
        if self._pending:
            need = BLOCK - len(self._pending)
            self._pending += data[:need]
            data = data[need:]
            if len(self._pending) < BLOCK:
                return
            if not self._session.commit(self._token, self._pending):
                self.superseded = True
                return
            self._pending.clear()
        whole = len(data) - len(data) % BLOCK
        if whole and not self._session.commit(self._token, data[:whole]):
            self.superseded = True
            return
        self._pending += data[whole:]

    def flush_final(self) -> bool:
        """Commit the trailing partial block as the object's last bytes and finish."""
        if self.superseded:
            return False
        if self._pending and not self._session.commit(self._token, self._pending):
            return False
        self._pending.clear()
        return self._session.finish(self._token)
