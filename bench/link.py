"""Upload time over a long, narrow link: vidpipe's transfer() beside `curl -T`.

    .venv/bin/python bench/link.py                        # every profile
    .venv/bin/python bench/link.py --profiles 25ms --rounds 5
    .venv/bin/python bench/link.py --profiles 5ms,100ms --size 256MiB --rounds 1

`vidpipe emulator --no-checksum` runs in its own process and bench/shaper.py (also its own
process) stands between it and the clients: a one-way delay, a bandwidth cap and a bounded
queue per direction. Each upload gets a fresh direct upload (POST /video/v1/uploads through
the shaper, so its URL points at the shaper). Per round, in rotating order:
- curl: `curl -T FILE URL`, one PUT of the whole file, timed from spawn to exit (curl asks
  `Expect: 100-continue` first, so it pays one round trip more than the bare link);
- adaptive: `transfer()` with the default adaptive request sizes, in this process, timed
  from opening a fresh httpx client (so its TCP connection is new, as curl's) to return;
- fixed 32 MiB: the same with `chunk_size=32 MiB`, what vidpipe used before.
Figures are medians; the ratio is to curl's median on the same link.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from harness import (
    BENCH,
    CURL,
    PY,
    VIDPIPE,
    GiB,
    MiB,
    Row,
    free_port,
    make_video,
    new_upload_url,
    stop,
    wait_listening,
    write_report,
)

from vidpipe.transfer import ChunkSizer, transfer

FIXED = 32 * MiB
WAYS = ("curl", "adaptive", "fixed")


@dataclass(frozen=True)
class Profile:
    key: str
    delay_ms: float
    mbit: float
    size: int
    rounds: int
    target: float | None  # adaptive / curl, when there is one

    @property
    def name(self) -> str:
        rate = f"{self.mbit / 1000:g} Gbit/s" if self.mbit >= 1000 else f"{self.mbit:g} Mbit/s"
        return f"{self.delay_ms:g} ms / {rate}"


PROFILES = (
    Profile("25ms", 25, 400, GiB, 3, 1.05),
    Profile("50ms", 50, 400, GiB, 3, 1.05),
    Profile("5ms", 5, 1000, GiB, 3, None),
    Profile("100ms", 100, 50, 256 * MiB, 1, None),
)


class RecordingSizer(ChunkSizer):
    """The default policy, remembering the size of every request it planned."""

    def __init__(self) -> None:
        super().__init__()
        self.planned: list[int] = []

    def next_size(self, remaining: int) -> int:
        size = super().next_size(remaining)
        self.planned.append(size)
        return size


@dataclass
class Result:
    profile: Profile
    size: int
    seconds: dict[str, list[float]] = field(default_factory=lambda: {w: [] for w in WAYS})
    requests: dict[str, list[int]] = field(default_factory=lambda: {w: [] for w in WAYS})
    sizes: list[int] = field(default_factory=list)  # the last adaptive run's requests
    overhead: float | None = None
    rate: float | None = None

    def median(self, way: str) -> float:
        return statistics.median(self.seconds[way])

    def ratio(self, way: str) -> float:
        return self.median(way) / self.median("curl")


def fmt_size(n: int) -> str:
    return f"{n / GiB:g} GiB" if n >= GiB else f"{n / MiB:g} MiB"


def parse_size(text: str) -> int:
    units = {"gib": GiB, "mib": MiB}
    for unit, factor in units.items():
        if text.lower().endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(text)


class Link:
    """The emulator and one shaper at a time, each in its own process."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.emulator_port = free_port()
        self.emulator = subprocess.Popen(
            [
                *VIDPIPE,
                "emulator",
                "--port",
                str(self.emulator_port),
                "--ready-after",
                "0",
                "--no-checksum",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=work,
        )
        wait_listening(self.emulator_port, self.emulator)
        self.shaper: subprocess.Popen[Any] | None = None
        self.base_url = ""

    def shape(self, profile: Profile) -> None:
        self.unshape()
        self.shaper = subprocess.Popen(
            [
                PY,
                str(BENCH / "shaper.py"),
                "--target",
                f"127.0.0.1:{self.emulator_port}",
                "--delay-ms",
                str(profile.delay_ms),
                "--mbit",
                str(profile.mbit),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.shaper.stdout is not None
        line = self.shaper.stdout.readline().strip()
        if not line.startswith("listening on "):
            raise RuntimeError(f"bench/shaper.py did not start: {line!r}")
        self.base_url = f"http://{line.removeprefix('listening on ')}"

    def unshape(self) -> None:
        if self.shaper is not None:
            stop(self.shaper)
            self.shaper = None

    def close(self) -> None:
        self.unshape()
        stop(self.emulator)

    def curl(self, path: Path) -> tuple[float, int]:
        url = new_upload_url(self.base_url)
        started = time.perf_counter()
        subprocess.run(
            [CURL, "-sS", "--fail", "-o", "/dev/null", "-T", str(path), url],
            stdin=subprocess.DEVNULL,
            check=True,
        )
        return time.perf_counter() - started, 1

    def vidpipe(self, path: Path, chunk_size: int | ChunkSizer) -> tuple[float, int]:
        url = new_upload_url(self.base_url)
        started = time.perf_counter()
        with httpx.Client(timeout=httpx.Timeout(60.0)) as client:
            result = transfer(
                client,
                url,
                path,
                chunk_size=chunk_size,
                start_offset=0,
                on_progress=lambda done, total: None,
                on_confirmed=lambda offset: None,
            )
        seconds = time.perf_counter() - started
        if result.bytes_sent != path.stat().st_size:
            raise RuntimeError(f"transfer sent {result.bytes_sent:,} bytes, expected the file's")
        return seconds, result.requests


def run_profile(link: Link, profile: Profile, path: Path, rounds: int) -> Result:
    link.shape(profile)
    result = Result(profile, path.stat().st_size)
    try:
        for i in range(rounds):
            order = WAYS[i % len(WAYS) :] + WAYS[: i % len(WAYS)]
            for way in order:
                if way == "curl":
                    seconds, requests = link.curl(path)
                elif way == "adaptive":
                    sizer = RecordingSizer()
                    seconds, requests = link.vidpipe(path, sizer)
                    result.sizes = sizer.planned
                    result.overhead, result.rate = sizer.overhead, sizer.rate
                else:
                    seconds, requests = link.vidpipe(path, FIXED)
                result.seconds[way].append(seconds)
                result.requests[way].append(requests)
            print(
                f"  {profile.name} round {i + 1}/{rounds}: "
                + ", ".join(f"{way} {result.seconds[way][-1]:.2f} s" for way in WAYS),
                file=sys.stderr,
                flush=True,
            )
    finally:
        link.unshape()
    return result


def measure(
    profiles: Sequence[Profile], work: Path, rounds: int | None = None, size: int | None = None
) -> list[Result]:
    """Run every profile (its own rounds and file size unless given) and return the figures."""
    link = Link(work)
    results = []
    try:
        for profile in profiles:
            path = make_video(work / "link.mp4", size or profile.size)
            results.append(run_profile(link, profile, path, rounds or profile.rounds))
    finally:
        link.close()
    return results


def verdict(result: Result) -> str:
    target = result.profile.target
    if target is None:
        return "report"
    return f"{'PASS' if result.ratio('adaptive') <= target else 'FAIL'} (<= {target:g}x)"


def table(results: Sequence[Result]) -> list[str]:
    headers = ("link: one way / rate", "file", "rounds", "curl -T", "vidpipe adaptive")
    headers += ("vidpipe fixed 32 MiB", "adaptive")
    cells = [
        (
            r.profile.name,
            fmt_size(r.size),
            str(len(r.seconds["curl"])),
            f"{r.median('curl'):.2f} s",
            f"{r.median('adaptive'):.2f} s = {r.ratio('adaptive'):.3f}x",
            f"{r.median('fixed'):.2f} s = {r.ratio('fixed'):.3f}x",
            verdict(r),
        )
        for r in results
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)).rstrip() for c in cells]
    lines += [f"  {note}" for r in results for note in notes(r)]
    return lines


def notes(r: Result) -> list[str]:
    p = r.profile
    per_round = "; ".join(f"{w} " + " ".join(f"{s:.2f}" for s in r.seconds[w]) for w in WAYS)
    floor = r.size / (p.mbit * 1e6 / 8)
    return [
        f"[{p.name}] seconds per round: {per_round}; the rate alone would take {floor:.2f} s",
        f"[{p.name}] adaptive requests (MiB): {', '.join(f'{s / MiB:g}' for s in r.sizes)}; "
        f"it measured an overhead of {(r.overhead or 0) * 1000:.0f} ms per request (round "
        f"trip {2 * p.delay_ms:g} ms, the rest is queued bytes draining) and "
        f"{(r.rate or 0) / 1e6:.1f} MB/s (link {p.mbit / 8:g} MB/s); fixed 32 MiB made "
        f"{r.requests['fixed'][-1]} request(s)",
    ]


def link_rows(work: Path) -> list[Row]:
    """bench/run.py's `link` rows: the profiles with a target (25 and 50 ms at 400 Mbit/s)."""
    rows = []
    for result in measure([p for p in PROFILES if p.target is not None], work):
        ratio = result.ratio("adaptive")
        target = result.profile.target or 0.0
        rows.append(
            Row(
                "link",
                f"transfer() of {fmt_size(result.size)} over {result.profile.name} (shaped)",
                f"{result.median('adaptive'):.2f} s",
                f"curl -T {result.median('curl'):.2f} s",
                f"{ratio:.3f}x curl (fixed 32 MiB {result.ratio('fixed'):.3f}x)",
                f"<= {target:g}x",
                ratio <= target,
                notes(result),
            )
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    keys = [p.key for p in PROFILES]
    parser.add_argument(
        "--profiles", default=",".join(keys), help=f"comma-separated: {', '.join(keys)}"
    )
    parser.add_argument("--rounds", type=int, help="rounds per profile (default: its own)")
    parser.add_argument("--size", type=parse_size, help="file size, e.g. 256MiB (default: own)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (printed)")
    args = parser.parse_args(argv)
    wanted = [k.strip() for k in args.profiles.split(",") if k.strip()]
    unknown = set(wanted) - set(keys)
    if unknown:
        parser.error(f"unknown profile(s) {', '.join(sorted(unknown))}; choose from {keys}")
    profiles = [p for p in PROFILES if p.key in wanted]

    work = Path(tempfile.mkdtemp(prefix="vidpipe-link-"))
    started = time.monotonic()
    try:
        results = measure(profiles, work, args.rounds, args.size)
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    lines = [
        "vidpipe upload over a shaped link: medians; ratios are to curl -T on the same link",
        f"  command: .venv/bin/python bench/link.py {' '.join(argv or sys.argv[1:])}".rstrip(),
        f"  total bench time {time.monotonic() - started:.0f} s",
        "",
        *table(results),
    ]
    print()
    write_report("link.txt", lines)
    failed = [r for r in results if verdict(r).startswith("FAIL")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
