"""Progress of long walks, as values: the core reports, the CLI shows.

`verify`, `sync`, `status` and `delete` take an optional `on_progress(event)` callback and call
it as they go; the gateway calls it for every API request and every wait. Nothing here prints:
the CLI turns the events into a live line on a terminal, and drops them elsewhere. A callback
must be quick and must not raise (it runs inside the walk).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

Notify = Callable[[str], None]
"""Receives messages meant for a person ("resuming the unfinished upload ...")."""

ByteProgress = Callable[[int, int], None]
"""`(done, total)`: bytes of a file sent so far."""


class Step(StrEnum):
    """What a walk is doing (the value is how a person reads it)."""

    DATABASE = "reading the database"
    LISTING = "listing assets"
    CHECKING = "checking rows"
    UPLOADS = "checking unfinished uploads"
    APPLYING = "applying changes"
    DELETING = "deleting the asset"


@dataclass(frozen=True)
class StepProgress:
    """`done` items of `step` so far, of `total` when it is known (listing: never)."""

    step: Step
    done: int = 0
    total: int | None = None


@dataclass(frozen=True)
class ApiCall:
    """The gateway is about to send a request; `calls` counts this gateway's requests."""

    calls: int


@dataclass(frozen=True)
class Waiting:
    """The gateway is about to sleep `seconds`: pacing itself under Mux's rate limit
    (`retry` False), or backing off before retrying a 429, 5xx or network failure
    (`retry` True; `rate_limited` when Mux answered 429)."""

    seconds: float
    retry: bool = False
    rate_limited: bool = False


Event = StepProgress | ApiCall | Waiting
OnProgress = Callable[[Event], None]


def ignore(_event: Event) -> None:
    """The default callback: nobody is watching."""
