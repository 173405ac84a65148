"""The upload URL: GCS's resumable-upload protocol over one HTTP exchange.

`serve_upload` answers a request to `/upload/{id}`: a whole body, a chunk with
`Content-Range` (308 with `Range` until the last, then 200 with the object), or an offset
query (`bytes */N`). Errors are GCS's plain-text answers, not Mux's JSON. The session
state (committed bytes, superseded requests) lives in gcs.py; the upload in store.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from email.message import Message
from typing import Protocol

from vidpipe.emulator.faults import Fault
from vidpipe.emulator.framing import READ_SIZE, Body
from vidpipe.emulator.gcs import BLOCK, BlockWriter, RangeError, parse_content_range
from vidpipe.emulator.store import Store, Upload

SLOW_READ_SIZE = 64 * 1024  # reads of an upload body under a "slow" fault


class Exchange(Protocol):
    """What the upload protocol needs of the HTTP handler."""

    command: str
    headers: Message
    length: int | None
    body: Body

    def send(
        self,
        status: int,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None: ...

    def drop(self, *, reset: bool = False) -> None: ...


def serve_upload(http: Exchange, store: Store, upload_id: str, fault: Fault | None) -> None:
    """Answer one request to an upload's URL (`fault`: a "cut" or "slow" rule that matched)."""
    upload = store.writable_upload(upload_id)
    if upload is None:
        _plain(http, 404, "Not Found")
        return
    if http.command != "PUT":
        _plain(http, 405, "Method Not Allowed")
        return
    session = upload.session
    header = http.headers.get("Content-Range")
    try:
        content_range = parse_content_range(header) if header else None
        if content_range is not None and content_range.total is not None:
            session.set_total(content_range.total)
    except RangeError as exc:
        _plain(http, 400, str(exc))
        return
    if session.complete:
        _done(http, upload)
        return
    length = http.length
    if content_range is None:
        if length is None and "chunked" not in http.headers.get("Transfer-Encoding", ""):
            _plain(http, 411, "Length Required")
            return
        try:
            if length is not None:
                session.set_total(length)
        except RangeError as exc:
            _plain(http, 400, str(exc))
            return
        _receive(http, store, upload, 0, final=True, fault=fault)
        return
    if content_range.is_query:
        if length:
            _plain(http, 400, "An offset query must have an empty body")
            return
        token = session.begin()
        if session.total is not None and session.committed == session.total:
            if session.finish(token):
                store.complete_upload(upload)
            _done(http, upload)
            return
        _incomplete(http, upload)
        return
    start = content_range.start or 0
    if length is not None and length != content_range.length:
        _plain(http, 400, "Content-Length does not match Content-Range")
        return
    if not content_range.is_final and content_range.length % BLOCK:
        _plain(http, 400, f"Non-final chunks must be a multiple of {BLOCK} bytes")
        return
    if start > session.committed:
        _plain(
            http,
            400,
            f"Invalid request. According to the Content-Range header, the upload offset is "
            f"{start} byte(s), which exceeds already uploaded size of "
            f"{session.committed} byte(s).",
        )
        return
    _receive(http, store, upload, start, content_range.is_final, fault)


def _receive(
    http: Exchange, store: Store, upload: Upload, start: int, final: bool, fault: Fault | None
) -> None:
    """Read a chunk into the session, then answer 308, or 200 once it is complete."""
    session, body = upload.session, http.body
    token = session.begin()
    writer = BlockWriter(session, token, start)
    budget = fault.after_bytes if fault is not None and fault.kind == "cut" else None
    rate = fault.rate if fault is not None and fault.kind == "slow" else None
    # A slow link is read a block at a time, so what it holds grows steadily.
    read_size = READ_SIZE if rate is None else SLOW_READ_SIZE
    buf = memoryview(bytearray(read_size))
    started, taken = time.monotonic(), 0
    while not body.done:
        want = read_size if budget is None else min(read_size, budget)
        if want == 0:
            break
        n = body.readinto(buf[:want])
        if not n:
            break
        if budget is not None:
            budget -= n
        writer.feed(buf[:n])
        if rate is not None:
            taken += n
            ahead = started + taken / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
    if budget is not None or body.truncated:
        # GCS keeps whole blocks of a broken request; the client never gets an answer.
        http.drop()
        return
    if not store.accepts_bytes(upload):
        _plain(http, 404, "Not Found")
        return
    if writer.superseded:
        _plain(http, 503, "Another request for this upload took over")
        return
    if final:
        if session.total is None:
            session.set_total(start + body.received)
        if writer.flush_final():
            store.complete_upload(upload)
        _done(http, upload)
        return
    _incomplete(http, upload)


def _plain(http: Exchange, status: int, message: str) -> None:
    http.send(status, message.encode(), "text/plain; charset=utf-8")


def _incomplete(http: Exchange, upload: Upload) -> None:
    """308 Resume Incomplete, with the committed range when there is one."""
    committed = upload.session.committed
    headers = [("Range", f"bytes=0-{committed - 1}")] if committed else []
    http.send(308, headers=headers)


def _done(http: Exchange, upload: Upload) -> None:
    """200 with the stored object, as GCS answers a finished session."""
    size, digest = upload.session.digest()
    body = {
        "kind": "storage#object",
        "bucket": "mux-emulator-direct-uploads",
        "name": upload.id,
        "size": str(size),
        "sha256": digest,
    }
    http.send(200, json.dumps(body).encode(), "application/json")
