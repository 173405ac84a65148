"""download: a row's original back from Mux, as a file.

check (no Mux call, no write) -> master access `temporary` -> wait until `master.status` is
`ready` -> `fetch` the master URL to `PATH.part` (resumable) -> rename -> master access back
to `none` (also after a failure, best effort).

The master URL is a bearer link: it lives in memory for the length of one download and is
never put in a message, a log record, a result or the database. Nothing here writes to the
database: a download changes Mux (master access) and the local disk only.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import Engine

from vidpipe.asset_parts import Master
from vidpipe.errors import (
    DownloadError,
    MuxError,
    UsageError,
    WaitTimeout,
)
from vidpipe.fetch import DownloadUrlExpired, FetchResult, TransferRetry, fetch
from vidpipe.mux import MuxGateway
from vidpipe.readiness import Backoff
from vidpipe.records import recorded_asset
from vidpipe.targets import Target

RENEWALS = 3
"""How many times one download asks Mux for a new link after the one it had expired."""


def default_path(target: Target) -> Path:
    """`lesson-ID.mp4` / `course-ID.mp4`: the file name of a target's original."""
    return Path(f"{target.kind.value}-{target.id}.mp4")


class DownloadObserver:
    """What a download reports as it goes (the CLI draws progress from it). Export calls it
    from worker threads: implementations must be thread-safe. The default does nothing."""

    def waiting(self, target: Target, status: str | None, seconds: float) -> None:
        """Mux is preparing the master (`status`), `seconds` after master access was asked."""

    def progress(self, target: Target, done: int, total: int) -> None:
        """Bytes of the file on disk so far, of the length the server declared."""


@dataclass(frozen=True)
class Planned:
    """A checked download: the row's asset and where its file goes."""

    target: Target
    asset_id: str
    path: Path


@dataclass
class DownloadResult:
    target: Target
    asset_id: str
    path: Path
    bytes: int
    seconds: float
    fetched: FetchResult | None = None
    warnings: list[str] | None = None

    def as_json(self) -> dict[str, object]:
        fetched = self.fetched
        return {
            "ok": True,
            "target": self.target.as_json(),
            "asset_id": self.asset_id,
            "path": str(self.path),
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "transfer": None
            if fetched is None
            else {
                "resumed_from": fetched.start_offset,
                "bytes_received": fetched.received,
                "requests": fetched.requests,
                "retries": fetched.retries,
                "restarts": fetched.restarts,
                "seconds": round(fetched.seconds, 3),
            },
        }


def check(engine: Engine, target: Target, path: Path | None, *, force: bool) -> Planned:
    """Bad input raises `UsageError` (no row, a row with no video, PATH exists without
    `force`, no such folder); a folder that cannot be written raises `DownloadError`. No
    Mux call, no write."""
    asset_id = recorded_asset(engine, target, purpose=" to download")
    path = path if path is not None else default_path(target)
    if path.is_dir():
        raise UsageError(f"{path} is a folder; name the file to write")
    if (path.exists() or path.is_symlink()) and not force:
        raise UsageError(f"{path} already exists; nothing was downloaded")
    check_folder(path.parent)
    return Planned(target, asset_id, path)


def check_folder(folder: Path) -> None:
    """The folder a file will be written to exists and is writable (before Mux is asked)."""
    folder = folder if str(folder) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DownloadError(f"cannot write to the folder {folder}: permission denied")


@dataclass(frozen=True)
class Downloader:
    """Downloads asset masters through one gateway (its pacer shared by every caller) and
    one HTTP client; thread-safe for distinct assets."""

    gateway: MuxGateway
    http: httpx.Client
    _: KW_ONLY
    timeout: float
    retry: TransferRetry = field(default_factory=TransferRetry)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def download(
        self, planned: Planned, observer: DownloadObserver | None = None
    ) -> DownloadResult:
        """The asset's master to `planned.path`, resuming a `.part` left there; master access
        is set back to `none` however it ends (a failure to do so is a warning)."""
        watch = observer or DownloadObserver()
        started = self.clock()
        target, asset_id = planned.target, planned.asset_id
        warnings: list[str] = []
        self.gateway.set_master_access(asset_id, "temporary")
        try:
            fetched = self._fetch(planned, watch)
        finally:
            warning = self.revoke(asset_id)
            if warning:
                warnings.append(warning)
        return DownloadResult(
            target=target,
            asset_id=asset_id,
            path=planned.path,
            bytes=fetched.total,
            seconds=self.clock() - started,
            fetched=fetched,
            warnings=warnings,
        )

    def revoke(self, asset_id: str) -> str | None:
        """Master access back to `none`; a warning text when Mux could not be told."""
        try:
            self.gateway.set_master_access(asset_id, "none")
        except MuxError as exc:
            return (
                f"master access of asset {asset_id} is still temporary ({exc}); Mux turns it "
                "off after 24 h"
            )
        return None

    def _fetch(self, planned: Planned, watch: DownloadObserver) -> FetchResult:
        renewals = 0
        while True:
            url = self._ready_url(planned, watch)
            try:
                return fetch(
                    self.http,
                    url,
                    planned.path,
                    key=planned.asset_id,
                    on_progress=lambda done, total: watch.progress(planned.target, done, total),
                    retry=self.retry,
                    sleep=self.sleep,
                )
            except DownloadUrlExpired:
                renewals += 1
                if renewals > RENEWALS:
                    raise
                # Another client revoked it, or it expired: ask for the master again.
                self.gateway.set_master_access(planned.asset_id, "temporary")

    def _ready_url(self, planned: Planned, watch: DownloadObserver) -> str:
        """Poll the asset until its master is ready (within the timeout); its URL."""
        asset_id = planned.asset_id
        started = self.clock()
        backoff = Backoff()  # the one polling schedule (1 s, growing to 5 s)
        while True:
            master = self.gateway.get_master(asset_id)
            if master.status == "ready" and master.url:
                watch.waiting(planned.target, master.status, self.clock() - started)
                return master.url
            if master.status == "errored":
                raise DownloadError(f"Mux could not prepare the original of asset {asset_id}")
            if master.access != "temporary":
                # Someone turned it off meanwhile (another download finishing): ask again.
                self._ask_again(master)
            elapsed = self.clock() - started
            watch.waiting(planned.target, master.status, elapsed)
            if elapsed >= self.timeout:
                raise WaitTimeout(
                    f"the original of asset {asset_id} was not ready after {elapsed:.0f} s "
                    f"(master {master.status or 'not requested'})"
                )
            self.sleep(min(backoff.next(), max(self.timeout - elapsed, 0.0)))

    def _ask_again(self, master: Master) -> None:
        self.gateway.set_master_access(master.asset_id, "temporary")
