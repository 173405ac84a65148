"""Master downloads: the links Mux hands out once an asset's master access is `temporary`.

On Mux the master URL lives on another host than the API; here it is another loopback
listener (`MasterHost`) beside the API server. A link is a bearer token in the path
(`/master/TOKEN/ASSET_ID.mp4`) that serves the asset's source bytes:
- with `ETag` (strong) and `Last-Modified`, `Accept-Ranges: bytes`;
- `Range: bytes=N-` / `bytes=N-M` -> 206 with `Content-Range`; a range starting beyond the
  end -> 416 `bytes */SIZE`; `If-Range` that matches neither validator -> the whole file, 200;
- an expired link -> 403; a revoked or unknown one -> 404 (plain text bodies, as a CDN).

The bytes: an uploaded asset's own upload when the emulator keeps uploads on disk
(`store_dir`); otherwise (seeded assets, URL ingests, uploads not kept) a deterministic file
of `size` bytes that starts like an MP4 (`ftyp`), the same for the same seed, served without
holding it in memory.

Faults for tests (`MasterFaults`): a slow link (bytes per second), cutting the next N
responses after so many body bytes, and a server that ignores `Range` (200 with everything).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from vidpipe.emulator.objects import ApiError
from vidpipe.emulator.store import Store

LIFETIME = 24 * 3600.0
"""A master link expires this long after it was handed out (Mux: 24 h)."""
DEFAULT_SIZE = 2 * 1024 * 1024 + 12345
"""Bytes of the made-up master of an asset whose upload the emulator did not keep."""
BLOCK = 1024 * 1024

_MP4_HEAD = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41"
_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


class MasterSource:
    """The bytes of one master: `size`, validators, and blocks read at an offset."""

    size: int
    etag: str
    last_modified: str

    def blocks(self, start: int, end: int) -> Any:
        """Yield the bytes [start, end) in blocks of at most `BLOCK`."""
        raise NotImplementedError


class PatternSource(MasterSource):
    """A made-up MP4-looking file: `size` bytes fixed by `seed`, never held in memory."""

    def __init__(self, seed: str, size: int = DEFAULT_SIZE) -> None:
        self.size = size
        digest = hashlib.sha256(f"{seed}:{size}".encode()).digest()
        unit = hashlib.sha256(digest).digest() * (BLOCK // 32)
        self._pattern = memoryview(unit + unit)  # any window of BLOCK bytes, no copy
        self._period = len(unit)
        self.etag = f'"{digest.hex()[:32]}"'
        self.last_modified = formatdate(1_700_000_000 + digest[0] * 3600, usegmt=True)

    def blocks(self, start: int, end: int) -> Any:
        position = start
        while position < end:
            if position < len(_MP4_HEAD):
                chunk: bytes | memoryview = _MP4_HEAD[position : min(end, len(_MP4_HEAD))]
            else:
                at = position % self._period
                chunk = self._pattern[at : at + min(BLOCK, end - position)]
            position += len(chunk)
            yield chunk

    def read_all(self) -> bytes:
        """The whole file (for tests comparing bytes)."""
        return b"".join(bytes(b) for b in self.blocks(0, self.size))


class FileSource(MasterSource):
    """An uploaded file kept on disk by the emulator."""

    def __init__(self, path: Path) -> None:
        self.path = path
        info = path.stat()
        self.size = info.st_size
        stamp = f"{path}:{info.st_size}:{info.st_mtime_ns}".encode()
        self.etag = f'"{hashlib.sha256(stamp).hexdigest()[:32]}"'
        self.last_modified = formatdate(info.st_mtime, usegmt=True)

    def blocks(self, start: int, end: int) -> Any:
        with open(self.path, "rb", buffering=0) as file:
            file.seek(start)
            position = start
            while position < end:
                chunk = file.read(min(BLOCK, end - position))
                if not chunk:
                    return
                position += len(chunk)
                yield chunk


@dataclass(frozen=True)
class Cut:
    """Drop the connection after `after` body bytes of a response."""

    after: int


@dataclass
class MasterFaults:
    """Faults of the master host, for tests and rehearsals."""

    rate: float | None = None
    """Bytes per second each response's body is sent at (None: as fast as possible)."""
    plan: list[Cut | int] = field(default_factory=list)
    """What the next requests get, one entry each, in order: a `Cut`, or an HTTP status
    answered instead of the file (e.g. 503). Requests beyond the plan are served."""
    ignore_range: bool = False
    """Answer every GET with the whole file (200), whatever its Range says."""


@dataclass
class _Grant:
    asset_id: str
    source: MasterSource
    expires_at: float


@dataclass
class MasterHost:
    """The listener that serves master links, and the links handed out."""

    clock: Callable[[], float] = time.time
    faults: MasterFaults = field(default_factory=MasterFaults)
    log: list[tuple[str | None, str | None, int]] = field(default_factory=list)
    """(Range, If-Range, status) of each request, in order."""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._grants: dict[str, _Grant] = {}
        self._handed_out: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    def start(self, host: str = "127.0.0.1") -> str:
        handler = type("_Bound", (_Handler,), {"host": self})
        self._server = server = _QuietServer((host, 0), handler)
        self.base_url = f"http://{host}:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.05),
            name="emulator-masters",
            daemon=True,
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def grant(self, asset_id: str, source: MasterSource, lifetime: float = LIFETIME) -> str:
        """A new link to `source` for `asset_id`; earlier links of the asset stop working."""
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._revoke_locked(asset_id)
            self._grants[token] = _Grant(asset_id, source, self.clock() + lifetime)
            url = f"{self.base_url}/master/{token}/{asset_id}.mp4"
            self._handed_out.append(url)
        return url

    def links_handed_out(self) -> list[str]:
        """Every link granted so far (tests look for them where they must not be)."""
        with self._lock:
            return list(self._handed_out)

    def revoke(self, asset_id: str) -> None:
        """Every link of `asset_id` answers 404 from now on."""
        with self._lock:
            self._revoke_locked(asset_id)

    def expire(self, asset_id: str) -> None:
        """Every link of `asset_id` has expired (403 from now on)."""
        with self._lock:
            for grant in self._grants.values():
                if grant.asset_id == asset_id:
                    grant.expires_at = self.clock() - 1

    def replace(self, asset_id: str, source: MasterSource) -> None:
        """The live links of `asset_id` serve `source` from now on (a changed source)."""
        with self._lock:
            for grant in self._grants.values():
                if grant.asset_id == asset_id:
                    grant.source = source

    def _revoke_locked(self, asset_id: str) -> None:
        for token in [t for t, g in self._grants.items() if g.asset_id == asset_id]:
            del self._grants[token]

    def _lookup(self, token: str) -> tuple[_Grant | None, bool]:
        with self._lock:
            grant = self._grants.get(token)
            return grant, grant is not None and grant.expires_at <= self.clock()

    def _next_fault(self) -> Cut | int | None:
        with self._lock:
            return self.faults.plan.pop(0) if self.faults.plan else None


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client gone mid-response is routine here (a download killed or cut), not worth
        # a traceback; anything else is a bug and shows as one.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    host: MasterHost

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a master link is a bearer credential: no access log

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _plain(self, status: int, text: str) -> None:
        payload = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        self._log(status)

    def _log(self, status: int) -> None:
        with self.host._lock:
            self.host.log.append((self.headers.get("Range"), self.headers.get("If-Range"), status))

    def _serve(self, *, body: bool) -> None:
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) != 3 or parts[0] != "master":
            return self._plain(404, "Not Found")
        grant, expired = self.host._lookup(parts[1])
        if grant is None or not parts[2].startswith(grant.asset_id):
            return self._plain(404, "Not Found")
        if expired:
            return self._plain(403, "Forbidden: the link has expired")
        fault = self.host._next_fault()
        if isinstance(fault, int):
            return self._plain(fault, "Injected failure")
        source, faults = grant.source, self.host.faults
        start, end, status = 0, source.size, 200
        wanted = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        fresh = if_range is None or if_range in (source.etag, source.last_modified)
        match = _RANGE.fullmatch(wanted.strip()) if wanted else None
        if match and fresh and not faults.ignore_range:
            start = int(match.group(1))
            if start >= source.size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{source.size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return self._log(416)
            if match.group(2):
                end = min(int(match.group(2)) + 1, source.size)
            status = 206
        self.send_response(status)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", source.etag)
        self.send_header("Last-Modified", source.last_modified)
        self.send_header("Content-Length", str(end - start))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{source.size}")
        self.end_headers()
        self._log(status)
        if body:
            self._send_body(source, start, end, fault.after if fault is not None else None)

    def _send_body(self, source: MasterSource, start: int, end: int, cut: int | None) -> None:
        rate = self.host.faults.rate
        sent = 0
        began = time.monotonic()
        try:
            for chunk in source.blocks(start, end):
                if cut is not None and sent + len(chunk) >= cut:
                    self.wfile.write(chunk[: max(cut - sent, 0)])
                    self._cut()
                    return
                if rate:
                    for piece in _slices(chunk, max(int(rate / 20), 1)):
                        self.wfile.write(piece)
                        sent += len(piece)
                        ahead = sent / rate - (time.monotonic() - began)
                        if ahead > 0:
                            time.sleep(ahead)
                    continue
                self.wfile.write(chunk)
                sent += len(chunk)
        except OSError:  # the client went away (a download stopped, a process killed)
            self.close_connection = True

    def _cut(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _slices(chunk: bytes | memoryview, size: int) -> Any:
    view = memoryview(chunk)
    for at in range(0, len(view), size):
        yield view[at : at + size]


def kept_uploads(store: Store, store_dir: Path | None) -> Callable[[str], Path | None]:
    """Where an asset's uploaded bytes are kept (`<store_dir>/<upload_id>.bin`), if they are."""

    def upload_file(asset_id: str) -> Path | None:
        if store_dir is None:
            return None
        try:
            upload_id = store.get_asset(asset_id).get("upload_id")
        except ApiError:
            return None
        return store_dir / f"{upload_id}.bin" if upload_id else None

    return upload_file


def source_for(asset_id: str, upload_file: Path | None, size: int | None = None) -> MasterSource:
    """What an asset's master serves: its kept upload, else made-up bytes for the asset."""
    if upload_file is not None and upload_file.is_file() and os.path.getsize(upload_file):
        return FileSource(upload_file)
    return PatternSource(asset_id, size or DEFAULT_SIZE)


@dataclass
class _State:
    access: str = "none"
    status: str | None = None
    ready_at: float = 0.0
    url: str | None = None
    size: int | None = None
    seed: str | None = None


class MasterAccess:
    """Each asset's master access as the API shows it: `PUT .../master-access` moves it,
    `fields(asset_id)` is what the asset's JSON carries (`master_access`, and `master` with
    `status` and, once ready, `url`). `preparing` turns `ready` `ready_after` seconds after
    `temporary` was asked for (read lazily, when the asset is next shown): only then is a
    link granted. `none` revokes the asset's links at once.

    `upload_file(asset_id)` tells where an asset's uploaded bytes are kept, if anywhere.
    """

    def __init__(
        self,
        host: MasterHost,
        upload_file: Callable[[str], Path | None],
        *,
        ready_after: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = host
        self.upload_file = upload_file
        self.ready_after = ready_after
        self.clock = clock
        self._lock = threading.Lock()
        self._states: dict[str, _State] = {}

    def put(self, asset_id: str, access: str) -> None:
        with self._lock:
            state = self._states.setdefault(asset_id, _State())
            if access == "none":
                state.access, state.status, state.url = "none", None, None
                self.host.revoke(asset_id)
            elif state.access != "temporary" or state.status == "errored":
                state.access, state.status, state.url = "temporary", "preparing", None
                state.ready_at = self.clock() + self.ready_after

    def fields(self, asset_id: str) -> dict[str, Any]:
        """`master_access` and `master` for the asset's JSON (as of now)."""
        with self._lock:
            state = self._states.get(asset_id)
            if state is None or state.access == "none":
                return {"master_access": "none"}
            if state.status == "preparing" and self.clock() >= state.ready_at:
                state.status = "ready"
                state.url = self.host.grant(asset_id, self._source(asset_id, state))
            master: dict[str, Any] = {"status": state.status}
            if state.url:
                master["url"] = state.url
            return {"master_access": "temporary", "master": master}

    def forget(self, asset_id: str) -> None:
        """The asset is gone: so are its links."""
        with self._lock:
            self._states.pop(asset_id, None)
        self.host.revoke(asset_id)

    def set_size(self, asset_id: str, size: int) -> None:
        """The made-up master of `asset_id` has `size` bytes (when no upload is kept)."""
        with self._lock:
            self._states.setdefault(asset_id, _State()).size = size

    def change(self, asset_id: str, seed: str) -> None:
        """The asset's master is other bytes from now on (its ETag changes): live links too."""
        with self._lock:
            state = self._states.setdefault(asset_id, _State())
            state.seed = seed
            source = self._source(asset_id, state)
        self.host.replace(asset_id, source)

    def source(self, asset_id: str) -> MasterSource:
        with self._lock:
            return self._source(asset_id, self._states.setdefault(asset_id, _State()))

    def bytes(self, asset_id: str) -> bytes:
        """The whole file the asset's master links serve (for tests comparing bytes)."""
        source = self.source(asset_id)
        return b"".join(bytes(b) for b in source.blocks(0, source.size))

    def with_fields(self, asset: dict[str, Any]) -> dict[str, Any]:
        """`asset` (its JSON) with its master access fields."""
        return {**asset, **self.fields(str(asset["id"]))}

    def put_json(self, asset: dict[str, Any], body: Any) -> dict[str, Any]:
        """`PUT .../master-access` with `body` on the (existing) `asset`: the asset's JSON
        after it, or ApiError(400) for a bad value or an asset that is not ready."""
        access = body.get("master_access") if isinstance(body, dict) else None
        if access not in ("temporary", "none"):
            raise ApiError(400, "invalid_parameters", "master_access must be temporary or none")
        if asset.get("status") != "ready":
            raise ApiError(400, "invalid_parameters", "Asset is not ready")
        self.put(str(asset["id"]), access)
        return self.with_fields(asset)

    def _source(self, asset_id: str, state: _State) -> MasterSource:
        if state.seed is not None:
            return PatternSource(f"{asset_id}:{state.seed}", state.size or DEFAULT_SIZE)
        return source_for(asset_id, self.upload_file(asset_id), state.size)
