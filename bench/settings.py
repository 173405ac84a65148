"""Benchmark of `vidpipe sync --fix-settings`: backfilling captions and a static rendition on
a catalogue that has neither, against the emulator with Mux's rate limits.

    .venv/bin/python bench/settings.py              # what `make bench` runs (300 assets)
    .venv/bin/python bench/settings.py --assets 30  # quicker

Rows (each with its target):
  floor    300 recorded assets lacking English captions and a `highest` MP4 rendition: one
           generate-subtitles and one static-rendition POST each, 600 POSTs; wall time of the
           sync beside the POST floor (600 POSTs at Mux's 1 POST/s; target <= 1.1x)
  429      429s the emulator answered during the run (target 0: the one gateway pacer keeps
           every call under Mux's limits)
  gets     GET calls beyond the asset listing (target 0: what each asset carries is read
           from the list pages, no call per asset)
  rerun    POSTs made by running the same command again (target 0: nothing asked twice)
  rss      peak RSS of the sync (reported)

The sync runs as its own child process (bench/measure.py: wall time and peak RSS); the
emulator runs in its own process (bench/emulator_proc.py, rate limited), its catalogue
seeded with vidpipe's passthrough and meta, so only captions and renditions are missing.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

from harness import (
    VIDPIPE,
    Bench,
    Row,
    environment,
    fmt_mb,
    fmt_s,
    run,
    table_lines,
    write_report,
)

POST_RATE = 1.0  # Mux's sustained POST rate


def measure(assets: int, work: Path) -> list[Row]:
    bench = Bench(work)
    try:
        db = work / "settings.db"
        bench.init_db(db)
        emulator = bench.catalogue_emulator("settings", assets, "--no-checksum")
        bench.add_lessons(db, emulator.assets)
        env = {
            **bench.env(emulator.base_url, db),
            "VIDPIPE_CAPTIONS": "en",
            "VIDPIPE_STATIC_RENDITIONS": "highest",
        }
        # The environment pin and nothing else: the run below is the backfill alone.
        run([*VIDPIPE, "db", "pin"], env, work)
        before = emulator.counts()
        cmd = [*VIDPIPE, "sync", "--fix-settings", "--max-fixes", str(assets), "--json"]
        fix = run(cmd, env, work)
        after = emulator.counts()
        rerun = run(cmd, env, work)
        last = emulator.counts()
    finally:
        bench.close()
    doc = json.loads(fix.out)
    fixed = sum(1 for d in doc["drift"] if str(d.get("action", "")).startswith("asked for"))
    posts = after["by_method"].get("POST", 0) - before["by_method"].get("POST", 0)
    limited = after["status_429"] - before["status_429"]
    gets = after["by_method"].get("GET", 0) - before["by_method"].get("GET", 0)
    pages = after["list_gets"] - before["list_gets"]
    floor = posts / POST_RATE
    ratio = fix.wall / floor if floor else math.inf
    rerun_posts = last["by_method"].get("POST", 0) - after["by_method"].get("POST", 0)
    what = f"{assets} assets: captions en + rendition highest"
    return [
        Row(
            "floor",
            what,
            fmt_s(fix.wall),
            f"POST floor {fmt_s(floor)}",
            f"{ratio:.3f}x",
            "<= 1.1x",
            ratio <= 1.1,
            [f"{posts} POSTs, {fixed} assets fixed, {doc['api_calls']} API calls in all"],
        ),
        Row("429", what, str(limited), "-", str(limited), "0", limited == 0),
        Row(
            "gets",
            "GETs beyond the listing",
            str(gets - pages),
            f"{pages} list pages",
            str(gets - pages),
            "0",
            gets - pages == 0,
        ),
        Row(
            "rerun",
            "POSTs when run again",
            str(rerun_posts),
            "-",
            str(rerun_posts),
            "0",
            rerun_posts == 0,
            [f"the re-run took {fmt_s(rerun.wall)}"],
        ),
        Row("rss", "peak RSS of the sync", fmt_mb(fix.maxrss), "-", fmt_mb(fix.maxrss), "-", None),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vidpipe-bench-settings-") as tmp:
        rows = measure(args.assets, Path(tmp))
    lines = ["vidpipe sync --fix-settings benchmark", *environment(), "", *table_lines(rows)]
    write_report("settings.txt", lines)
    if any(r.ok is False for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
