"""Benchmarks of `vidpipe download` and `vidpipe export` beside `curl` fetching the same link.

    .venv/bin/python bench/download.py                  # what `make bench` runs
    .venv/bin/python bench/download.py --only loopback,rss --rounds 3
    .venv/bin/python bench/download.py --small          # quicker: 256 MiB, 8 x 16 MiB

Rows (each with its target):
  loopback  cost per byte of `vidpipe download` of 1 GiB minus 64 MiB (whole commands, spawn to
            exit: master access, the wait, the transfer, the fsync, master access off), beside
            the same difference for `curl -o` fetching fresh links to the same masters
            (target <= 1.1x); also each tool's own transfer clock for the 1 GiB file
  rss       peak RSS of the 1 GiB download beside the 64 MiB one's (target <= 150 MB, flat)
  link      `fetch()` (vidpipe's download, in this process) of 1 GiB over the shaped 50 ms /
            400 Mbit/s link of bench/shaper.py beside `curl -o` over the same link (target
            <= 1.05x)
  export    `vidpipe export` of 16 x 64 MiB, --jobs 4 beside --jobs 1 (reported)

The emulator runs in its own process (bench/emulator_proc.py with Mux's rate limits); its
master links are served by its second listener, from made-up bytes generated on the fly
(nothing held in memory). Every command runs as its own child (bench/measure.py: wall from
spawn to exit, peak RSS of that child). The loopback rows write both tools' files to a tmpfs
(/dev/shm) unless --disk: on a shared machine the disk's write-back otherwise decides the
figure (vidpipe's fsync included). The machine is shared: compare ratios, not seconds.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from harness import (
    BENCH,
    CURL,
    PY,
    TOKEN,
    VIDPIPE,
    Bench,
    GiB,
    MiB,
    Row,
    fmt_mb,
    fmt_s,
    median,
    run,
    stop,
    table_lines,
    write_report,
)

from vidpipe.fetch import fetch

ROWS = ("loopback", "rss", "link", "export")
LINK = (50.0, 400.0)  # one-way delay (ms), Mbit/s
REFILL = 1.5
"""Seconds between the bench's own API calls (fresh links for curl) and a vidpipe command,
so the emulator's rate-limit bucket is full again and no 429 back-off lands in a timing."""


# -- the emulator's API, as the bench drives it ------------------------------------------------


def _api(base_url: str, method: str, path: str, body: Any = None) -> Any:
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    auth = base64.b64encode(f"{TOKEN[0]}:{TOKEN[1]}".encode()).decode()
    headers = {"Authorization": f"Basic {auth}", "Content-Type": "application/json"}
    for _ in range(50):
        conn.request(
            method, path, body=json.dumps(body) if body is not None else None, headers=headers
        )
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 429:
            break
        time.sleep(0.3)
    conn.close()
    if resp.status != 200:
        raise RuntimeError(f"{method} {path}: HTTP {resp.status} {data[:200]!r}")
    return json.loads(data)["data"]


def master_url(base_url: str, asset_id: str) -> str:
    """Master access on, then the link once ready (what curl fetches; the bench may see it)."""
    _api(
        base_url,
        "PUT",
        f"/video/v1/assets/{asset_id}/master-access",
        {"master_access": "temporary"},
    )
    while True:
        master = _api(base_url, "GET", f"/video/v1/assets/{asset_id}").get("master") or {}
        if master.get("status") == "ready":
            return str(master["url"])
        time.sleep(0.05)


def curl(url: str, dest: Path, env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """`curl -o` of `url`: (wall from spawn to exit, curl's own time_total)."""
    dest.unlink(missing_ok=True)
    done = run([CURL, "-sS", "-o", str(dest), "-w", "%{time_total}", url], env, cwd)
    return done.wall, float(done.out.strip() or 0)


def vidpipe_download(
    lesson: int, dest: Path, env: dict[str, str], cwd: Path
) -> tuple[float, int, float]:
    """`vidpipe download`: (wall, peak RSS, its own transfer clock)."""
    for path in (dest, dest.with_name(dest.name + ".part")):
        path.unlink(missing_ok=True)
    done = run([*VIDPIPE, "download", "--lesson", str(lesson), "-o", str(dest), "--json"], env, cwd)
    doc = json.loads(done.out)
    return done.wall, done.maxrss, float(doc["transfer"]["seconds"])


# -- rows ------------------------------------------------------------------------------------


def loopback_rows(bench: Bench, files: Path, big: int, small: int, rounds: int) -> list[Row]:
    """The loopback and rss rows; both tools write their files into `files`."""
    emu = bench.catalogue_emulator(
        "download",
        2,
        "--no-checksum",
        "--master-sizes",
        f"{big},{small}",
        "--master-ready-after",
        "0",
    )
    db = bench.work / "download.db"
    bench.init_db(db)
    (_, big_asset, big_pid), (_, small_asset, small_pid) = emu.assets
    bench.add_lessons(db, [(1, big_asset, big_pid), (2, small_asset, small_pid)])
    env = bench.env(emu.base_url, db)
    work = files
    ways: dict[str, list[float]] = {"v_big": [], "v_small": [], "c_big": [], "c_small": []}
    own: dict[str, list[float]] = {"vidpipe": [], "curl": []}
    rss = {"big": 0, "small": 0}
    for i in range(rounds):
        order = ["curl", "vidpipe"] if i % 2 else ["vidpipe", "curl"]
        for way in order:
            if way == "curl":
                wall, clock = curl(master_url(emu.base_url, big_asset), work / "c.bin", env, work)
                ways["c_big"].append(wall)
                own["curl"].append(clock)
                wall, _ = curl(master_url(emu.base_url, small_asset), work / "c.bin", env, work)
                ways["c_small"].append(wall)
            else:
                time.sleep(REFILL)
                wall, peak, clock = vidpipe_download(1, work / "v.bin", env, work)
                ways["v_big"].append(wall)
                own["vidpipe"].append(clock)
                rss["big"] = max(rss["big"], peak)
                time.sleep(REFILL)
                wall, peak, _ = vidpipe_download(2, work / "v.bin", env, work)
                ways["v_small"].append(wall)
                rss["small"] = max(rss["small"], peak)
        (work / "c.bin").unlink(missing_ok=True)
        (work / "v.bin").unlink(missing_ok=True)
    per_byte = (median(ways["v_big"]) - median(ways["v_small"])) / (big - small)
    curl_per_byte = (median(ways["c_big"]) - median(ways["c_small"])) / (big - small)
    ratio = per_byte / curl_per_byte
    rounds_ratio = [
        (vb - vs) / (cb - cs)
        for vb, vs, cb, cs in zip(
            ways["v_big"], ways["v_small"], ways["c_big"], ways["c_small"], strict=True
        )
    ]
    size = f"{big / GiB:g} GiB" if big >= GiB else f"{big // MiB} MiB"
    loop = Row(
        "loopback",
        f"download cost per byte ({size} minus {small // MiB} MiB)",
        f"{per_byte * GiB:.2f} s/GiB",
        f"curl -o, fresh links: {curl_per_byte * GiB:.2f} s/GiB",
        f"{ratio:.2f}x curl (rounds {min(rounds_ratio):.2f}-{max(rounds_ratio):.2f})",
        "<= 1.1x",
        ratio <= 1.1,
        [
            f"whole commands, {size}: vidpipe {fmt_s(median(ways['v_big']))}, curl "
            f"{fmt_s(median(ways['c_big']))}; {small // MiB} MiB: vidpipe "
            f"{fmt_s(median(ways['v_small']))}, curl {fmt_s(median(ways['c_small']))}",
            f"each tool's own transfer clock, {size}: vidpipe {fmt_s(median(own['vidpipe']))} "
            f"(with its fsync) vs curl {fmt_s(median(own['curl']))} (time_total)",
        ],
    )
    flat = rss["big"] - rss["small"]
    memory = Row(
        "rss",
        f"peak RSS of the {size} download",
        fmt_mb(rss["big"]),
        f"the {small // MiB} MiB download: {fmt_mb(rss['small'])}",
        f"{flat / 1e6:+.1f} MB",
        "<= 150 MB, flat",
        rss["big"] <= 150e6 and flat <= 20e6,
    )
    return [loop, memory]


def link_row(bench: Bench, size: int, rounds: int) -> Row:
    emu = bench.catalogue_emulator(
        "download-link",
        1,
        "--no-checksum",
        "--master-sizes",
        str(size),
        "--master-ready-after",
        "0",
    )
    ((_, asset_id, _pid),) = emu.assets
    delay, mbit = LINK
    first = master_url(emu.base_url, asset_id)
    target = urlsplit(first)
    shaper = subprocess.Popen(
        [
            PY,
            str(BENCH / "shaper.py"),
            "--target",
            f"{target.hostname}:{target.port}",
            "--delay-ms",
            str(delay),
            "--mbit",
            str(mbit),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert shaper.stdout is not None
        line = shaper.stdout.readline().strip()
        if not line.startswith("listening on "):
            raise RuntimeError(f"bench/shaper.py did not start: {line!r}")
        shaped_host = line.removeprefix("listening on ")
        times: dict[str, list[float]] = {"curl": [], "vidpipe": []}
        env = bench.base_env
        for i in range(rounds):
            for way in ["curl", "vidpipe"] if i % 2 == 0 else ["vidpipe", "curl"]:
                url = master_url(emu.base_url, asset_id).replace(
                    f"{target.hostname}:{target.port}", shaped_host
                )
                dest = bench.work / f"link-{way}.bin"
                for p in (
                    dest,
                    dest.with_name(dest.name + ".part"),
                    dest.with_name(dest.name + ".part.json"),
                ):
                    p.unlink(missing_ok=True)
                if way == "curl":
                    times["curl"].append(curl(url, dest, env, bench.work)[0])
                else:
                    started = time.perf_counter()
                    with httpx.Client(timeout=httpx.Timeout(120.0, connect=15.0)) as client:
                        fetch(client, url, dest, key=asset_id)
                    times["vidpipe"].append(time.perf_counter() - started)
                dest.unlink(missing_ok=True)
    finally:
        stop(shaper)
    ratio = median(times["vidpipe"]) / median(times["curl"])
    size_text = f"{size / GiB:g} GiB" if size >= GiB else f"{size // MiB} MiB"
    return Row(
        "link",
        f"fetch() of {size_text} over {delay:g} ms / {mbit:g} Mbit/s",
        fmt_s(median(times["vidpipe"])),
        f"curl -o, same link: {fmt_s(median(times['curl']))}",
        f"{ratio:.3f}x curl",
        "<= 1.05x",
        ratio <= 1.05,
        [
            f"rounds: vidpipe {', '.join(fmt_s(t) for t in times['vidpipe'])}; curl "
            f"{', '.join(fmt_s(t) for t in times['curl'])}"
        ],
    )


def export_row(bench: Bench, items: int, size: int) -> Row:
    emu = bench.catalogue_emulator(
        "export",
        items,
        "--no-checksum",
        "--master-sizes",
        ",".join([str(size)] * items),
        "--master-ready-after",
        "0",
    )
    db = bench.work / "export.db"
    bench.init_db(db)
    bench.add_lessons(db, [(lesson, asset, pid) for lesson, asset, pid in emu.assets])
    env = bench.env(emu.base_url, db)
    walls: dict[int, float] = {}
    rss: dict[int, int] = {}
    for jobs in (1, 4):
        out = bench.work / f"export-{jobs}"
        shutil.rmtree(out, ignore_errors=True)
        done = run([*VIDPIPE, "export", str(out), "--jobs", str(jobs), "--json"], env, bench.work)
        walls[jobs], rss[jobs] = done.wall, done.maxrss
        shutil.rmtree(out, ignore_errors=True)
    total = items * size
    speed = {j: total / MiB / walls[j] for j in walls}
    return Row(
        "export",
        f"{items} x {size // MiB} MiB, --jobs 4",
        f"{fmt_s(walls[4])} ({speed[4]:.0f} MiB/s)",
        f"--jobs 1: {fmt_s(walls[1])} ({speed[1]:.0f} MiB/s)",
        f"{walls[1] / walls[4]:.2f}x faster",
        "report",
        None,
        [f"peak RSS: --jobs 4 {fmt_mb(rss[4])}, --jobs 1 {fmt_mb(rss[1])}"],
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(ROWS), help=f"rows: {','.join(ROWS)}")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--link-rounds", type=int, default=3)
    parser.add_argument("--small", action="store_true", help="256 MiB and 8 x 16 MiB files")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument(
        "--disk",
        action="store_true",
        help="loopback files on disk (default: a tmpfs, /dev/shm, when there is one)",
    )
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    big, small = (256 * MiB, 16 * MiB) if args.small else (GiB, 64 * MiB)
    items, item_size = (8, 16 * MiB) if args.small else (16, 64 * MiB)
    work = Path(tempfile.mkdtemp(prefix="vidpipe-bench-download-"))
    bench = Bench(work)
    rows: list[Row] = []
    try:
        if only & {"loopback", "rss"}:
            shm = Path("/dev/shm")
            files = work
            if not args.disk and shm.is_dir():
                files = Path(tempfile.mkdtemp(prefix="vidpipe-bench-", dir=shm))
            try:
                found = loopback_rows(bench, files, big, small, args.rounds)
            finally:
                if files != work:
                    shutil.rmtree(files, ignore_errors=True)
            where = "a tmpfs" if files != work else "disk"
            for row in found:
                row.notes.append(f"files written to {where} (both tools)")
            rows += [r for r in found if r.name in only]
        if "link" in only:
            rows.append(link_row(bench, big, args.link_rounds))
        if "export" in only:
            rows.append(export_row(bench, items, item_size))
    finally:
        bench.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    write_report("download.txt", ["vidpipe download / export benchmarks", *table_lines(rows)])
    return 0 if all(r.ok is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
