"""Adaptive request sizes: `ChunkSizer` alone on a fake clock, and `transfer` over a fake link
(the scripted GCS session of test_transfer behind a simulated round trip and bandwidth)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_transfer import (
    NO_JITTER,
    URL,
    Cut,
    FakeSession,
    Forget,
    Short,
    Sleeps,
    Status,
    client_for,
    make_file,
    sha256_file,
)

from vidpipe import transfer as transfer_module
from vidpipe.transfer import (
    AUTO_CHUNK,
    CHUNK_QUANTUM,
    IDLE_TARGET,
    MIN_CHUNK,
    START_CHUNK,
    ChunkSizer,
    TransferResult,
    TransferRetry,
    transfer,
)

KiB = 1024
MiB = 1024 * 1024


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeLink(FakeSession):
    """The fake session behind a link: every body block takes len/rate seconds to arrive and
    every answer a further `rtt`; the clock is the one the sizer reads."""

    def __init__(self, clock: FakeClock, *, rtt: float, rate: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clock = clock
        self.rtt = rtt
        self.rate = rate
        self.answers: list[int] = []  # the offsets every 308 and 200 said the server held

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = super().handle_request(request)
        finally:
            self.clock.advance(self.rtt)
        if response.status_code == 308:
            match = re.fullmatch(r"bytes=0-(\d+)", response.headers.get("Range", "bytes=0--1"))
            self.answers.append(int(match.group(1)) + 1 if match else 0)
        elif response.status_code in (200, 201):
            self.answers.append(self.held)
        return response

    def _blocks(self, request: httpx.Request) -> Iterator[bytes]:  # type: ignore[override]
        for block in FakeSession._blocks(request):
            self.clock.advance(len(block) / self.rate)
            yield block

    @property
    def sizes(self) -> list[int]:
        """The body size of every chunk request, in order (queries left out)."""
        out = []
        for seen in self.seen:
            match = re.fullmatch(r"bytes (\d+)-(\d+)/\d+", seen.content_range)
            if match:
                out.append(int(match.group(2)) - int(match.group(1)) + 1)
        return out


def sparse_file(tmp_path: Path, size: int) -> Path:
    """A file of `size` zero bytes that takes no disk space (sizing tests ignore content)."""
    path = tmp_path / "big.mp4"
    with open(path, "wb") as fh:
        fh.truncate(size)
    return path


def send(link: FakeLink, path: Path, sizer: ChunkSizer | None, **kwargs: Any) -> TransferResult:
    kwargs.setdefault("retry", NO_JITTER)
    kwargs.setdefault("start_offset", 0)
    with client_for(link) as client:
        return transfer(
            client,
            URL,
            path,
            chunk_size=sizer if sizer is not None else AUTO_CHUNK,
            sleep=Sleeps(),
            **kwargs,
        )


def idle_share(link: FakeLink, size: int) -> float:
    """What fraction of a request of `size` bytes the link idles, on the fake link's model."""
    return link.rtt / (link.rtt + size / link.rate)


def assert_valid_sizes(sizes: list[int], total: int) -> None:
    assert sum(sizes) == total
    assert all(size % CHUNK_QUANTUM == 0 for size in sizes[:-1])
    assert sizes[-1] > 0


# --- ChunkSizer on its own -----------------------------------------------------------------


def test_the_first_request_is_the_start_size_and_a_small_file_goes_in_one() -> None:
    sizer = ChunkSizer()
    assert sizer.next_size(10 * START_CHUNK) == START_CHUNK
    assert sizer.next_size(2 * START_CHUNK) == START_CHUNK
    # Less than two requests' worth left: all of it, so no short tail request follows.
    assert sizer.next_size(2 * START_CHUNK - 1) == 2 * START_CHUNK - 1
    assert sizer.next_size(5) == 5


def test_without_an_overhead_to_size_by_it_grows_by_the_growth_factor() -> None:
    sizer = ChunkSizer(start=MiB, growth=4.0)
    sizer.observe(MiB, 0.5)  # no wait known
    assert sizer.size == 4 * MiB
    sizer.observe(4 * MiB, 0.0)  # an instant answer says nothing either
    assert sizer.size == 16 * MiB


def test_it_grows_until_the_round_trip_is_the_target_share_then_holds() -> None:
    rate, rtt = 50e6, 0.05
    sizer = ChunkSizer(start=8 * MiB, growth=4.0, idle=0.02)
    sizes = []
    for _ in range(6):
        size = sizer.size
        sizes.append(size)
        sizer.observe(size, rtt + size / rate, wait=rtt)
    # rate * rtt * (1 - idle) / idle = 122.5 MB, rounded up to whole 256 KiB.
    steady = 468 * CHUNK_QUANTUM
    assert sizes == [8 * MiB, 32 * MiB, steady, steady, steady, steady]
    assert rtt / (rtt + steady / rate) <= 0.02 < rtt / (rtt + (steady - CHUNK_QUANTUM) / rate)
    assert sizer.overhead == pytest.approx(rtt)
    assert sizer.rate == pytest.approx(rate)


def test_an_offset_query_measures_the_overhead() -> None:
    clock = FakeClock()
    sizer = ChunkSizer(clock=clock)
    sizer.request_started()
    clock.advance(0.2)
    sizer.request_answered(0)
    assert sizer.overhead == pytest.approx(0.2)
    assert sizer.size == START_CHUNK  # a query carries no bytes to size by


def test_the_clock_driven_calls_feed_the_policy() -> None:
    clock = FakeClock()
    sizer = ChunkSizer(start=MiB, clock=clock)
    sizer.request_started()
    clock.advance(1.0)  # the body goes out
    sizer.body_sent()
    clock.advance(0.1)  # the answer comes back
    sizer.request_answered(MiB)
    assert sizer.overhead == pytest.approx(0.1)
    assert sizer.rate == pytest.approx(MiB / 1.0)
    assert sizer.size == 4 * MiB  # wanted ~4.9 MiB, capped at 4x


def drive(
    sizer: ChunkSizer, clock: FakeClock, *, rate: float, rtt: float, stall: float
) -> list[int]:
    """Six requests over a link of `rate` and `rtt`, the sender spending `stall` seconds of
    its own between an answer and the next request and as much in a callback mid-body
    (the journal's write of the previous offset), as `transfer` does from the second on."""
    sizes = []
    for n in range(6):
        size = sizer.size
        sizes.append(size)
        sizer.request_started()
        clock.advance(size / rate / 2)
        if n:
            sizer.callback_started()
            clock.advance(stall)
            sizer.callback_ended()
        clock.advance(size / rate / 2)
        sizer.body_sent()
        clock.advance(rtt)
        sizer.request_answered(size)
        clock.advance(stall)
    return sizes


def test_the_senders_own_stall_counts_like_a_round_trip() -> None:
    # Loopback-like: a fast link whose round trip is shorter than a journal write.
    rate, rtt, stall = 2e9, 0.0005, 0.002
    clock = FakeClock()
    plain = ChunkSizer(clock=clock)
    plain_sizes = drive(plain, clock, rate=rate, rtt=rtt, stall=0.0)
    stalled = ChunkSizer(clock=clock)
    stalled_sizes = drive(stalled, clock, rate=rate, rtt=rtt, stall=stall)

    assert plain.stall == 0.0
    assert stalled.stall == pytest.approx(2 * stall)  # before the request and inside it
    # Sized so that everything the link idles per request is the target share.
    idle = rtt + 2 * stall
    steady = stalled_sizes[-1]
    assert idle / (idle + steady / stalled.rate) <= IDLE_TARGET  # type: ignore[operator]
    assert idle / (idle + (steady - 2 * CHUNK_QUANTUM) / stalled.rate) > IDLE_TARGET  # type: ignore[operator]
    # Without counting the stall the requests stay far smaller: the link idles longer.
    assert plain_sizes[-1] * 4 < steady


def test_a_back_off_is_no_part_of_the_stall() -> None:
    clock = FakeClock()
    sizer = ChunkSizer(clock=clock)
    drive(sizer, clock, rate=2e9, rtt=0.0005, stall=0.001)
    before = sizer.stall
    sizer.request_started()
    sizer.request_failed()
    clock.advance(30.0)  # the back-off
    sizer.request_started()  # the offset query
    clock.advance(0.001)
    sizer.request_answered(0)
    sizer.request_started()  # the next chunk, right away
    clock.advance(0.01)
    sizer.body_sent()
    clock.advance(0.0005)
    sizer.request_answered(8 * MiB)
    assert sizer.stall == pytest.approx(before, rel=0.2)


def test_success_never_shrinks_a_request_but_a_slow_link_caps_its_duration() -> None:
    sizer = ChunkSizer(start=64 * MiB, max_seconds=10.0)
    sizer.observe(64 * MiB, 0.7, wait=0.001)  # a fast link with a short round trip
    assert sizer.size == 64 * MiB  # 4.7 MB would be enough; no reason to shrink
    sizer.observe(64 * MiB, 64.5, wait=0.5)  # the link turned slow: 1 MiB/s
    assert sizer.size == 10 * MiB  # ten seconds' worth


def test_a_failure_shrinks_the_next_request_down_to_the_minimum() -> None:
    sizer = ChunkSizer(start=64 * MiB, shrink=4.0)
    sizes = []
    for _ in range(5):
        sizer.request_failed()
        sizes.append(sizer.size)
    assert sizes == [16 * MiB, 4 * MiB, MIN_CHUNK, MIN_CHUNK, MIN_CHUNK]


def test_sizes_are_whole_quanta_within_the_bounds() -> None:
    sizer = ChunkSizer(start=MiB, maximum=8 * MiB, minimum=512 * KiB)
    sizer.observe(MiB, 0.3, wait=0.0123)  # odd figures: wanted is no multiple of 256 KiB
    assert sizer.size % CHUNK_QUANTUM == 0
    for _ in range(5):
        sizer.observe(sizer.size, 0.001, wait=0.001)
    assert sizer.size == 8 * MiB
    sizer.request_failed()
    sizer.request_failed()
    sizer.request_failed()
    assert sizer.size == 512 * KiB


@pytest.mark.parametrize(
    "kwargs",
    [
        {"start": MiB + 1},
        {"start": 0},
        {"minimum": 100},
        {"maximum": 3 * CHUNK_QUANTUM, "start": 8 * MiB},
        {"start": 512 * KiB},  # below the minimum
        {"idle": 0.0},
        {"idle": 1.0},
        {"growth": 0.5},
        {"shrink": 0.5},
        {"max_seconds": 0.0},
    ],
)
def test_impossible_settings_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ChunkSizer(**kwargs)


# --- transfer with adaptive sizes over a fake link -----------------------------------------


def test_requests_grow_on_a_fast_link_until_the_round_trip_is_a_small_share(tmp_path: Path) -> None:
    size = 400 * MiB + 12345
    path = sparse_file(tmp_path, size)
    clock = FakeClock()
    link = FakeLink(clock, rtt=0.05, rate=20e6, store=False)
    sizer = ChunkSizer(clock=clock)

    result = send(link, path, sizer)

    sizes = link.sizes
    assert_valid_sizes(sizes, size)
    assert sizes[0] == START_CHUNK
    assert sizes[1] == 4 * START_CHUNK  # capped by the growth factor
    assert all(b >= a for a, b in itertools.pairwise(sizes[:-1]))
    assert all(b <= 4 * a for a, b in itertools.pairwise(sizes[:-1]))
    # Once the link is measured, the round trip costs at most the target share of each.
    assert all(idle_share(link, s) <= IDLE_TARGET for s in sizes[2:])
    assert idle_share(link, sizes[2]) > IDLE_TARGET / 2  # and requests are not needlessly long
    assert sizes[-1] < 2 * sizes[-2]
    assert result.requests == len(sizes)
    assert link.sink_len == size
    assert link.sink_hash.hexdigest() == sha256_file(path)


@pytest.mark.parametrize("chunk_size", [None, AUTO_CHUNK])
def test_none_and_auto_chunk_both_mean_adaptive(tmp_path: Path, chunk_size: int | None) -> None:
    path = sparse_file(tmp_path, 2 * START_CHUNK + CHUNK_QUANTUM)
    link = FakeLink(FakeClock(), rtt=0.0, rate=1e12, store=False)
    with client_for(link) as client:
        transfer(client, URL, path, chunk_size=chunk_size, start_offset=0, sleep=Sleeps())
    # The start size, then the rest (less than two requests' worth, whatever was measured).
    assert link.sizes == [START_CHUNK, START_CHUNK + CHUNK_QUANTUM]


def test_an_explicit_chunk_size_is_still_exact(tmp_path: Path) -> None:
    path = sparse_file(tmp_path, 10 * MiB + 5)
    link = FakeLink(FakeClock(), rtt=0.05, rate=20e6, store=False)
    with client_for(link) as client:
        transfer(client, URL, path, chunk_size=3 * MiB, start_offset=0, sleep=Sleeps())
    assert link.sizes == [3 * MiB, 3 * MiB, 3 * MiB, MiB + 5]


def test_a_cut_in_a_large_request_shrinks_the_next_and_resumes_exactly(tmp_path: Path) -> None:
    path = make_file(tmp_path, 40 * MiB + 777)
    clock = FakeClock()
    sizer = ChunkSizer(start=MiB, clock=clock)
    # Requests: 1 = 1 MiB, 2 = 4 MiB, 3 = 16 MiB, cut after 5 MiB and a bit; 4 = the query.
    link = FakeLink(clock, rtt=0.05, rate=100e6, plan={3: Cut(after=5 * MiB + 100)})
    confirmed: list[int] = []

    result = send(link, path, sizer, read_size=256 * KiB, on_confirmed=confirmed.append)

    sizes = link.sizes
    assert sizes[:3] == [MiB, 4 * MiB, 16 * MiB]
    assert link.seen[3].is_query
    # 5 MiB held before; the cut request delivered 5 MiB + 256 KiB in whole blocks.
    assert link.starts[4] == 10 * MiB + 256 * KiB
    assert sizes[3] == 4 * MiB  # a quarter of the failed request
    assert_valid_sizes(sizes[3:], path.stat().st_size - link.starts[4])
    assert result.retries == 1
    assert link.sha256() == sha256_file(path)
    # The journal only ever hears what the server said it held.
    assert confirmed and set(confirmed) <= set(link.answers)
    assert confirmed == sorted(confirmed)
    assert confirmed[-1] == path.stat().st_size


def test_repeated_failures_shrink_to_the_minimum_then_it_grows_back(tmp_path: Path) -> None:
    path = make_file(tmp_path, 40 * MiB)
    clock = FakeClock()
    sizer = ChunkSizer(start=16 * MiB, clock=clock)
    # Chunk requests 1, 3, 5 are answered 503 after their bodies (each followed by a query).
    plan = {1: Status(503), 3: Status(503), 5: Status(503)}
    link = FakeLink(clock, rtt=0.05, rate=100e6, plan=plan)

    result = send(link, path, sizer)

    sizes = link.sizes
    assert sizes[:4] == [16 * MiB, 4 * MiB, MIN_CHUNK, MIN_CHUNK]
    assert sizes[4] == 4 * MIN_CHUNK  # growth resumes after a success
    assert result.retries == 3
    assert link.sha256() == sha256_file(path)


def test_a_short_range_is_no_failure(tmp_path: Path) -> None:
    path = make_file(tmp_path, 20 * MiB)
    clock = FakeClock()
    sizer = ChunkSizer(start=MiB, clock=clock)
    link = FakeLink(clock, rtt=0.05, rate=100e6, plan={1: Short(keep=256 * KiB)})
    result = send(link, path, sizer)
    assert link.sizes[:2] == [MiB, 4 * MiB]
    assert link.starts[1] == 256 * KiB
    assert result.retries == 0
    assert link.sha256() == sha256_file(path)


def test_a_server_that_kept_nothing_counts_as_a_failure(tmp_path: Path) -> None:
    path = make_file(tmp_path, 40 * MiB)
    clock = FakeClock()
    sizer = ChunkSizer(start=8 * MiB, clock=clock)
    link = FakeLink(clock, rtt=0.05, rate=100e6, plan={2: Forget()})
    send(link, path, sizer)
    assert link.sizes[:3] == [8 * MiB, 32 * MiB, 8 * MiB]
    assert link.sha256() == sha256_file(path)


def test_a_failed_offset_query_does_not_shrink_requests(tmp_path: Path) -> None:
    path = make_file(tmp_path, 20 * MiB)
    clock = FakeClock()
    sizer = ChunkSizer(start=4 * MiB, clock=clock)
    link = FakeLink(clock, rtt=0.0, rate=1e12, plan={1: Status(503)})
    send(link, path, sizer, start_offset=None)
    assert [s.is_query for s in link.seen[:3]] == [True, True, False]
    assert link.sizes[0] == 4 * MiB


def test_progress_moves_within_one_large_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfer_module, "PROGRESS_INTERVAL", 0.0)
    size = 12 * MiB
    path = sparse_file(tmp_path, size)
    link = FakeLink(FakeClock(), rtt=0.05, rate=20e6, store=False)
    calls: list[int] = []
    send(link, path, None, on_progress=lambda done, total: calls.append(done))
    assert link.sizes == [size]  # less than two start sizes: one request
    assert len([done for done in calls if 0 < done < size]) >= 11
    assert calls[-1] == size


def test_memory_stays_bounded_by_the_read_size_with_adaptive_sizes(tmp_path: Path) -> None:
    import tracemalloc

    size = 48 * MiB
    path = sparse_file(tmp_path, size)
    link = FakeLink(FakeClock(), rtt=0.05, rate=100e6, store=False)
    tracemalloc.start()
    try:
        send(link, path, ChunkSizer(clock=link.clock))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert link.sizes == [START_CHUNK, size - START_CHUNK]  # 32 MiB planned: the rest goes
    assert peak < 4 * MiB, f"peak {peak:,} bytes"


def test_exhaustion_still_counts_attempts_without_progress(tmp_path: Path) -> None:
    path = make_file(tmp_path, 20 * MiB)
    link = FakeLink(FakeClock(), rtt=0.0, rate=1e12, default=Status(503))
    with pytest.raises(transfer_module.TransferError, match="after 3 attempts"):
        send(link, path, None, retry=TransferRetry(attempts=3, jitter=0.0))
