"""Is an upload's asset ready yet? The one way vidpipe classifies what Mux says of an upload
or an asset, and the one polling schedule both wait loops use (`Pipeline.wait_for_asset` for
one upload, the importer's waiter for a batch).

`of_upload` and `of_asset` turn Mux's answer into a `Readiness`: READY, FAILED (with the
reason, worded once here) or PENDING. The callers decide what to do about it (journal the
failure, record the asset); this module reads nothing and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vidpipe.mux import Asset, Upload

FAILED_UPLOAD_STATES = ("errored", "cancelled", "timed_out")
"""Upload states that end it without an asset."""

DEFAULT_WAIT_TIMEOUT = 30 * 60.0
"""How long an upload waits for its asset to be ready unless told otherwise (seconds)."""

POLL_START = 1.0
POLL_GROWTH = 1.5
POLL_CAP = 5.0
"""Seconds between polls: from `POLL_START`, growing by `POLL_GROWTH` while nothing changes,
at most `POLL_CAP` (an asset that becomes ready is seen within 5 s; a 30-minute wait costs
a few hundred GETs, well under Mux's read budget)."""


class Stage(Enum):
    READY = "ready"
    FAILED = "failed"
    PENDING = "pending"


@dataclass(frozen=True)
class Readiness:
    """What Mux's answer means for the wait: `reason` says why when FAILED; `asset_id` is
    the asset an upload made, once it made one."""

    stage: Stage
    reason: str | None = None
    asset_id: str | None = None


def upload_failure(upload_id: str, status: str, error: str | None = None) -> str:
    """Why a failed (errored, cancelled, timed out) Mux upload failed, in one line."""
    reason = f"Mux says upload {upload_id} {status}"
    return reason + f": {error}" if error else reason


def asset_failure(asset_id: str, error: str | None = None) -> str:
    """Why an errored asset failed, in one line (Mux's reason, when it gave one)."""
    reason = f"Mux could not process the video (asset {asset_id} errored"
    return reason + (f": {error})" if error else ")")


def asset_gone(asset_id: str) -> str:
    return f"asset {asset_id} was deleted on Mux before it was ready"


def of_upload(upload: Upload) -> Readiness:
    """A direct upload: FAILED when Mux ended it, else PENDING (with its asset, once made)."""
    if upload.status in FAILED_UPLOAD_STATES:
        return Readiness(Stage.FAILED, upload_failure(upload.id, upload.status, upload.error))
    return Readiness(Stage.PENDING, asset_id=upload.asset_id or None)


def of_asset(asset: Asset | None, asset_id: str) -> Readiness:
    """An asset (None: Mux answered 404 for `asset_id`): READY, FAILED (errored or deleted)
    or PENDING (preparing, or a status Mux added later)."""
    if asset is None:
        return Readiness(Stage.FAILED, asset_gone(asset_id), asset_id)
    if asset.status == "ready":
        return Readiness(Stage.READY, asset_id=asset.id)
    if asset.status == "errored":
        return Readiness(Stage.FAILED, asset_failure(asset.id, asset.error), asset.id)
    return Readiness(Stage.PENDING, asset_id=asset.id)


class Backoff:
    """The polling schedule: `next()` is the pause before the next poll; `reset()` after a
    change starts again from `POLL_START`."""

    def __init__(self) -> None:
        self.delay = POLL_START

    def next(self) -> float:
        delay = self.delay
        self.delay = min(self.delay * POLL_GROWTH, POLL_CAP)
        return delay

    def reset(self) -> None:
        self.delay = POLL_START
