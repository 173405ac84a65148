"""HTTP/1.1 request bodies for the emulator's handler: length-delimited or chunked.

Read by hand (not through `http.server`'s helpers) so the upload protocol can keep a
broken request's whole blocks and faults can cut a body short.
"""

from __future__ import annotations

import io
import json
from typing import Any

from vidpipe.emulator.objects import ApiError

READ_SIZE = 1024 * 1024
MAX_JSON_BODY = 1024 * 1024


class CutConnection(Exception):
    """The client went away mid-body, or a fault tells us to drop the connection."""


class Body:
    """The request body, read with `Content-Length` or chunked transfer-encoding.

    `length` is the Content-Length (None when absent or chunked); `truncated` becomes
    True when the connection ends before the body does.
    """

    def __init__(self, rfile: io.BufferedIOBase, length: int | None, chunked: bool) -> None:
        self._rfile = rfile
        self.length = length
        self._left = length or 0
        self._chunked = chunked
        self._chunk_left = 0
        self.done = not chunked and not self._left
        self.truncated = False
        self.received = 0

    def readinto(self, buf: memoryview) -> int:
        """Read up to len(buf) bytes; 0 at the end of the body (or of the connection)."""
        if self.done:
            return 0
        try:
            if self._chunked and not self._chunk_left and not self._next_chunk():
                return 0
            want = min(len(buf), self._chunk_left if self._chunked else self._left)
            n = self._rfile.readinto(buf[:want])
        except (OSError, ValueError):
            n = 0
        if not n:
            self.done = self.truncated = True
            return 0
        self.received += n
        if self._chunked:
            self._chunk_left -= n
            if not self._chunk_left:
                self._rfile.readline(16)
        else:
            self._left -= n
            self.done = not self._left
        return n

    def drain(self, limit: int) -> bool:
        """Discard up to `limit` bytes of what is left; True when the body is used up."""
        buf = memoryview(bytearray(min(READ_SIZE, max(limit, 1))))
        while not self.done and limit > 0:
            n = self.readinto(buf[: min(len(buf), limit)])
            limit -= n
        return self.done and not self.truncated

    def read_json(self) -> Any:
        """The body as JSON (`{}` when empty); ApiError(400 | 413), CutConnection when cut."""
        if self.received == 0 and self.done:
            return {}
        buf = bytearray(MAX_JSON_BODY + 1)
        view, size = memoryview(buf), 0
        while size <= MAX_JSON_BODY:
            n = self.readinto(view[size:])
            if not n:
                break
            size += n
        if not self.done:
            raise ApiError(413, "invalid_parameters", "Request body is too large")
        if self.truncated:
            raise CutConnection
        raw = bytes(buf[:size])
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "invalid_parameters", "Request body is not valid JSON") from None

    def _next_chunk(self) -> bool:
        line = self._rfile.readline(1024)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            self.done = self.truncated = True
            return False
        if size == 0:
            while self._rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                pass
            self.done = True
            return False
        self._chunk_left = size
        return True
