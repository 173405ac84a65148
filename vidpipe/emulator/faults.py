"""Injected faults and Mux's rate limits: what may go wrong with a request before it runs."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

FAULT_KINDS = frozenset({"status", "delay", "cut", "reset", "slow", "hold"})
HOLD_LIMIT = 60.0
"""Seconds a held request waits at most when nobody releases it (so no test hangs)."""


@dataclass
class Fault:
    """One injected fault rule; see `Emulator.inject`."""

    method: str | None
    path_prefix: str
    kind: str
    status: int = 503
    times: int = 1
    delay: float = 0.0
    after_bytes: int = 0
    rate: float = 0.0  # bytes per second, for "slow"
    released: threading.Event = field(default_factory=threading.Event, compare=False)
    """For "hold": set by `FaultPlan.release`."""

    def hold(self) -> None:
        """Wait until released (at most `delay` seconds, or HOLD_LIMIT when 0)."""
        self.released.wait(self.delay or HOLD_LIMIT)

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method) and path.startswith(
            self.path_prefix
        )


class FaultPlan:
    """Fault rules consumed in order by the requests they match; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[Fault] = []
        self._holds: list[Fault] = []  # "hold" rules not released yet

    def add(self, fault: Fault) -> None:
        if fault.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {fault.kind!r}; use one of {sorted(FAULT_KINDS)}")
        if fault.times < 1:
            raise ValueError("times must be at least 1")
        if fault.kind == "slow" and not fault.rate > 0:
            raise ValueError("a slow fault needs a rate > 0 (bytes per second)")
        with self._lock:
            self._rules.append(fault)
            if fault.kind == "hold":
                self._holds.append(fault)

    def clear(self) -> None:
        """Forget every rule not used yet, and release every held request."""
        with self._lock:
            self._rules.clear()
        self.release()

    def release(self) -> None:
        """Let every request a "hold" rule holds (or will hold) go on."""
        with self._lock:
            holds, self._holds = self._holds, []
        for fault in holds:
            fault.released.set()

    def pending(self) -> int:
        """How many rules still have applications left."""
        with self._lock:
            return len(self._rules)

    def take(self, method: str, path: str) -> Fault | None:
        """The first rule matching this request, used up by one application."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path):
                    rule.times -= 1
                    if rule.times == 0:
                        self._rules.remove(rule)
                    return rule
        return None


@dataclass(frozen=True)
class Quota:
    """One rate-limit decision and what the `X-RateLimit-*` headers say about the bucket.

    `limit`: requests a full bucket allows at once; `remaining`: whole requests left now;
    `reset`: Unix time (whole seconds, rounded up) when the bucket is full again.
    """

    allowed: bool
    limit: int
    remaining: int
    reset: int

    def headers(self) -> list[tuple[str, str]]:
        return [
            ("X-RateLimit-Limit", str(self.limit)),
            ("X-RateLimit-Remaining", str(self.remaining)),
            ("X-RateLimit-Reset", str(self.reset)),
        ]


class TokenBucket:
    """`rate` tokens a second, at most `capacity` saved up."""

    def __init__(self, rate: float, capacity: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.stamp = time.monotonic()

    def take(self) -> Quota:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        allowed = self.tokens >= 1
        if allowed:
            self.tokens -= 1
        full_in = (self.capacity - self.tokens) / self.rate
        return Quota(
            allowed=allowed,
            limit=int(self.capacity),
            remaining=int(self.tokens),
            reset=math.ceil(time.time() + full_in),
        )


class RateLimiter:
    """Mux's limits per credential pair: POST 1/s (burst 2), other verbs 5/s (burst 5)."""

    POST = (1.0, 2.0)
    OTHER = (5.0, 5.0)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, bool], TokenBucket] = {}

    def take(self, credential: str, method: str) -> Quota:
        """Spend one request of `credential`'s bucket for `method`, if there is one left."""
        is_post = method == "POST"
        with self._lock:
            bucket = self._buckets.get((credential, is_post))
            if bucket is None:
                rate, capacity = self.POST if is_post else self.OTHER
                bucket = self._buckets[(credential, is_post)] = TokenBucket(rate, capacity)
            return bucket.take()

    def allow(self, credential: str, method: str) -> bool:
        """Whether one more request is allowed now (and spend it)."""
        return self.take(credential, method).allowed
