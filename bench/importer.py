"""Benchmarks of `vidpipe import` against the emulator with Mux's rate limits (429s).

    .venv/bin/python bench/importer.py            # what `make bench` runs after bench/run.py
    .venv/bin/python bench/importer.py --small    # quicker: 4 MiB files instead of 64/256 MiB

Rows (each with its target):
  floor    40 items (38 files + 2 URLs, 64 MiB each), --jobs 4: wall time beside the POST floor
           (40 creates at Mux's 1 POST/s: 40 s; target <= 1.1x), 429s (target 0), and GET
           calls per item (target <= 2)
  rss      peak RSS of that run (target <= 200 MB), beside the 8 x 256 MiB run's: flat in file
           count and size
  jobs     8 x 256 MiB files, --jobs 1 beside --jobs 4 (reported, no target)

Every import runs as its own child process (bench/measure.py: wall from spawn to exit, peak
RSS of that one child). The emulator runs in its own process (bench/emulator_proc.py, rate
limited, no checksums), and a small web server in this process serves the URL items.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from harness import (
    VIDPIPE,
    Bench,
    MiB,
    Row,
    SeededEmulator,
    fmt_mb,
    make_video,
    run,
    table_lines,
    write_report,
)

POST_RATE = 1.0  # Mux's sustained POST rate: the floor of any batch


def emulator(bench: Bench, name: str) -> SeededEmulator:
    """A fresh rate-limited emulator process with an empty catalogue."""
    return bench.catalogue_emulator(name, 0, "--no-checksum")


class FileServer:
    """Serves a folder over HTTP on loopback (the URL items), in this process."""

    def __init__(self, folder: Path) -> None:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def batch(
    bench: Bench,
    name: str,
    files: list[Path],
    urls: list[str],
    jobs: int,
) -> tuple[Any, dict[str, Any], int]:
    """One `vidpipe import` of `files` + `urls` on a fresh database and emulator:
    (the run, the emulator's request counts, the number of items)."""
    emu = emulator(bench, name)
    db = bench.work / f"{name}.db"
    bench.init_db(db)
    items = [*map(str, files), *urls]
    bench.add_lessons(db, [(i, None, None) for i in range(1, len(items) + 1)])
    manifest = bench.work / f"{name}.csv"
    manifest.write_text("source,lesson\n" + "".join(f"{s},{i}\n" for i, s in enumerate(items, 1)))
    before = emu.counts()
    result = run(
        [*VIDPIPE, "import", str(manifest), "--jobs", str(jobs), "--json"],
        bench.env(emu.base_url, db),
        bench.work,
    )
    after = emu.counts()
    counts = {
        "post": after["by_method"].get("POST", 0) - before["by_method"].get("POST", 0),
        "get": after["by_method"].get("GET", 0) - before["by_method"].get("GET", 0),
        "429": after["status_429"] - before["status_429"],
    }
    import json

    doc = json.loads(result.out)
    if not doc["ok"] or doc["summary"]["done"] != len(items):
        raise RuntimeError(f"{name}: not every item done: {doc['summary']}")
    return result, counts, len(items)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="vidpipe import benchmarks.")
    parser.add_argument("--small", action="store_true", help="4 MiB files (a quick check)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (printed)")
    args = parser.parse_args(argv)
    mid, big = (4 * MiB, 4 * MiB) if args.small else (64 * MiB, 256 * MiB)

    work = Path(tempfile.mkdtemp(prefix="vidpipe-bench-import-"))
    bench = Bench(work)
    served = work / "served"
    for folder in (served, work / "mid", work / "big"):
        folder.mkdir()
    web = FileServer(served)
    rows: list[Row] = []
    started = time.monotonic()
    try:
        mids = [make_video(work / "mid" / f"v{i}.mp4", mid + i) for i in range(38)]
        urls = []
        for i in range(2):
            make_video(served / f"u{i}.mp4", mid + 100 + i)
            urls.append(f"{web.base}/u{i}.mp4")
        floor_run, counts, n = batch(bench, "floor", mids, urls, jobs=4)
        floor = n / POST_RATE
        ratio = floor_run.wall / floor
        gets = counts["get"] / n
        ok = ratio <= 1.1 and counts["429"] == 0 and gets <= 2
        rows.append(
            Row(
                "floor",
                f"import {n} items ({n - 2} files + 2 URLs, {mid // MiB} MiB), --jobs 4",
                f"{floor_run.wall:.1f} s",
                f"POST floor {floor:.0f} s",
                f"{ratio:.2f}x floor, {counts['429']} x 429, {gets:.2f} GET/item",
                "<= 1.1x, 0 x 429, <= 2 GET/item",
                ok,
                [f"{counts['post']} POSTs, {counts['get']} GETs under /video/"],
            )
        )

        bigs = [make_video(work / "big" / f"b{i}.mp4", big + i) for i in range(8)]
        one, _, _ = batch(bench, "jobs1", bigs, [], jobs=1)
        four, _, _ = batch(bench, "jobs4", bigs, [], jobs=4)
        rows.append(
            Row(
                "rss",
                f"peak RSS, {n} x {mid // MiB} MiB, --jobs 4",
                fmt_mb(floor_run.maxrss),
                f"8 x {big // MiB} MiB: {fmt_mb(four.maxrss)}",
                fmt_mb(max(floor_run.maxrss, four.maxrss)),
                "<= 200 MB",
                max(floor_run.maxrss, four.maxrss) <= 200e6,
            )
        )
        total = sum(p.stat().st_size for p in bigs)
        rows.append(
            Row(
                "jobs",
                f"import 8 x {big // MiB} MiB, --jobs 4 beside --jobs 1",
                f"{four.wall:.1f} s ({total / four.wall / MiB:.0f} MiB/s)",
                f"{one.wall:.1f} s ({total / one.wall / MiB:.0f} MiB/s)",
                f"{one.wall / four.wall:.2f}x faster",
                "report",
                None,
                [f"peak RSS {fmt_mb(four.maxrss)} (--jobs 4), {fmt_mb(one.maxrss)} (--jobs 1)"],
            )
        )
    finally:
        web.close()
        bench.close()
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    failed = [r.name for r in rows if r.ok is False]
    report = [
        "vidpipe import benchmarks (emulator with Mux's rate limits)",
        f"  total bench time {time.monotonic() - started:.0f} s",
        "",
        *table_lines(rows),
        "",
        "every target met" if not failed else f"targets missed: {', '.join(failed)}",
    ]
    write_report("importer.txt", report)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
