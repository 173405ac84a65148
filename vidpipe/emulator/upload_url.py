"""The upload URL: GCS's resumable-upload protocol over one HTTP exchange.

`serve_upload` answers a request to `/upload/{id}`: a whole body, a chunk with
`Content-Range` (308 with `Range` until the last, then 200 with the object), or an offset
query (`bytes */N`). Errors are GCS's plain-text answers, not Mux's JSON. The session
state (committed bytes, superseded requests) lives in gcs.py; the upload in store.py.
"""

from __future__ import annotations

import json
import time
from email.message import Message

from vidpipe.emulator.faults import Fault
from vidpipe.emulator.framing import READ_SIZE, Body, CutConnection
from vidpipe.emulator.gcs import BLOCK, BlockWriter, RangeError, parse_content_range
from vidpipe.emulator.objects import Upload
from vidpipe.emulator.routing import Response
from vidpipe.emulator.store import Store

SLOW_READ_SIZE = 64 * 1024  # reads of an upload body under a "slow" fault


def serve_upload(
    store: Store,
    upload_id: str,
    method: str,
    headers: Message,
    body: Body,
    fault: Fault | None,
) -> Response:
    """The answer to one request to an upload's URL.

    `fault` is the injected rule that matched (a "cut" or "slow" one acts here). Raises
    CutConnection when the connection must close with no answer (a broken request).
    """
    upload = store.writable_upload(upload_id)
    if upload is None:
        return _plain(404, "Not Found")
    if method != "PUT":
        return _plain(405, "Method Not Allowed")
    session = upload.session
    header = headers.get("Content-Range")
    try:
        content_range = parse_content_range(header) if header else None
        if content_range is not None and content_range.total is not None:
            session.set_total(content_range.total)
    except RangeError as exc:
        return _plain(400, str(exc))
    if session.complete:
        return _done(upload)
    length = body.length
    if content_range is None:
        if length is None and "chunked" not in headers.get("Transfer-Encoding", ""):
            return _plain(411, "Length Required")
        try:
            if length is not None:
                session.set_total(length)
        except RangeError as exc:
            return _plain(400, str(exc))
        return _receive(store, upload, body, 0, final=True, fault=fault)
    if content_range.is_query:
        if length:
            return _plain(400, "An offset query must have an empty body")
        token = session.begin()
        if session.total is not None and session.committed == session.total:
            if session.finish(token):
                store.complete_upload(upload)
            return _done(upload)
        return _incomplete(upload)
    start = content_range.start or 0
    if length is not None and length != content_range.length:
        return _plain(400, "Content-Length does not match Content-Range")
    if not content_range.is_final and content_range.length % BLOCK:
        return _plain(400, f"Non-final chunks must be a multiple of {BLOCK} bytes")
    if start > session.committed:
        return _plain(
            400,
            f"Invalid request. According to the Content-Range header, the upload offset is "
            f"{start} byte(s), which exceeds already uploaded size of "
            f"{session.committed} byte(s).",
        )
    return _receive(store, upload, body, start, content_range.is_final, fault)


def _receive(
    store: Store, upload: Upload, body: Body, start: int, final: bool, fault: Fault | None
) -> Response:
    """Read a chunk into the session, then answer 308, or 200 once it is complete."""
    session = upload.session
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
        raise CutConnection
    if not store.accepts_bytes(upload):
        return _plain(404, "Not Found")
    if writer.superseded:
        return _superseded()
    if final:
        if session.total is None:
            session.set_total(start + body.received)
        if writer.flush_final():
            store.complete_upload(upload)
        elif not session.complete:
            # A newer request took over after the body's last block: its tail is not kept,
            # so the object is not complete and a 200 would claim bytes GCS does not hold.
            return _superseded()
        return _done(upload)
    return _incomplete(upload)


def _superseded() -> Response:
    return _plain(503, "Another request for this upload took over")


def _plain(status: int, message: str) -> Response:
    """GCS's plain-text answer."""
    return Response(status, message.encode(), "text/plain; charset=utf-8")


def _incomplete(upload: Upload) -> Response:
    """308 Resume Incomplete, with the committed range when there is one."""
    committed = upload.session.committed
    headers = (("Range", f"bytes=0-{committed - 1}"),) if committed else ()
    return Response(308, headers=headers)


def _done(upload: Upload) -> Response:
    """200 with the stored object, as GCS answers a finished session."""
    size, digest = upload.session.digest()
    body = {
        "kind": "storage#object",
        "bucket": "mux-emulator-direct-uploads",
        "name": upload.id,
        "size": str(size),
        "sha256": digest,
    }
    return Response(200, json.dumps(body).encode(), "application/json")
