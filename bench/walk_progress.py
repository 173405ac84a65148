"""What a terminal shows during a long walk: `vidpipe verify` of N rows against N assets.

    .venv/bin/python bench/walk_progress.py                 # 50,000 rows and assets (~100 s)
    .venv/bin/python bench/walk_progress.py --assets 5000 --every 2

The emulator (bench/emulator_proc.py, seeded, enforcing Mux's rate limits) runs in its own
process; `vidpipe verify` runs in a tmux pane 80 columns wide, and the pane is captured every
`--every` seconds and once at the end. Prints the captures, the wall time and the exit code.
Needs tmux.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import VIDPIPE, Bench

SESSION = "vidpipe-walk-progress"


def capture() -> str:
    out = subprocess.run(
        ["tmux", "capture-pane", "-p", "-t", SESSION], capture_output=True, text=True, check=False
    ).stdout
    return "\n".join(line.rstrip() for line in out.splitlines()).strip("\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=50_000)
    parser.add_argument("--every", type=float, default=10.0, help="seconds between captures")
    parser.add_argument("--columns", type=int, default=80)
    args = parser.parse_args()
    if not shutil.which("tmux"):
        sys.exit("tmux is needed")
    with tempfile.TemporaryDirectory(prefix="vidpipe-walk-") as tmp:
        work = Path(tmp)
        bench = Bench(work)
        try:
            emu = bench.catalogue_emulator("catalogue", args.assets)
            db = work / "walk.db"
            bench.init_db(db)
            bench.add_lessons(db, [(i, a, p) for i, a, p in emu.assets])
            env = bench.env(emu.base_url, db)
            env.pop("NO_COLOR", None)
            exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
            done = work / "rc"
            cmd = " ".join(shlex.quote(c) for c in [*VIDPIPE, "verify"])
            shell = f"env -i {exports} {cmd}; echo $? > {done}; sleep 600"
            subprocess.run(["tmux", "kill-session", "-t", SESSION], capture_output=True)
            time.sleep(1.5)  # the emulator's rate-limit bucket refills
            start = time.monotonic()
            size = ["-x", str(args.columns), "-y", "24"]
            subprocess.run(
                ["tmux", "new-session", "-d", "-s", SESSION, *size, "bash", "-c", shell],
                check=True,
            )
            next_at = start + args.every
            while not done.exists():
                time.sleep(0.1)
                if time.monotonic() >= next_at:
                    next_at += args.every
                    print(f"--- after {time.monotonic() - start:.0f} s ---")
                    print(capture(), flush=True)
            wall = time.monotonic() - start
            print(f"--- at the end ({wall:.1f} s, exit {done.read_text().strip()}) ---")
            print(capture())
            counts = emu.counts()
            print(
                f"\n{args.assets:,} rows / {args.assets:,} assets: {wall:.1f} s, "
                f"{counts['total']} API requests, {counts['status_429']} answered 429"
            )
        finally:
            subprocess.run(["tmux", "kill-session", "-t", SESSION], capture_output=True)
            bench.close()


if __name__ == "__main__":
    main()
