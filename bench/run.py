"""vidpipe's benchmarks: each row beside its baseline in the same run, one table.

    .venv/bin/python bench/run.py                      # every row (what `make bench` runs)
    .venv/bin/python bench/run.py --only upload,rss --rounds 7
    .venv/bin/python bench/run.py --only verify --reconcile-runs 1 --keep

Rows (each with its target):
  upload  transfer cost per byte: `vidpipe upload --no-wait` of 1 GiB minus 64 MiB, beside the
          same difference for `curl -T` to fresh upload URLs of the same emulator
  rss     peak RSS of the 1 GiB upload beside the 64 MiB upload's (the same runs)
  fixed   `vidpipe upload --no-wait` of 1 MiB (whole command; target <= 500 ms) beside a minimal
          Typer `--help`, the named dependencies imported alone, and the same command without the
          entry point's collector tuning
  help    `vidpipe --help` beside a minimal two-command Typer app's `--help`
  verify  `vidpipe verify` of 5,000 rows / 5,000 assets, emulator with --rate-limit
  sync    `vidpipe sync` of the same catalogue plus 500 unrecorded rows
  link    transfer() of 1 GiB over shaped 25 ms and 50 ms / 400 Mbit/s links beside `curl -T`
          (bench/link.py, which also has other link profiles)
  webhooks `vidpipe webhook serve` under 32 clients, SQLite and PostgreSQL (bench/webhooks.py)

Every command runs as its own child process, timed from spawn to exit; its peak RSS comes
from `os.wait4` on that one child, so no figure is mixed with another command's. Figures are
medians (peak RSS: the worst run); machines are noisy, so compare the ratios, not the seconds.
The emulator always runs in a separate process: `vidpipe emulator` for uploads, and
`bench/emulator_proc.py` (seeded in-process) for verify and sync.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from harness import (
    BENCH,
    CURL,
    PY,
    VIDPIPE,
    Bench,
    GiB,
    MiB,
    Row,
    Run,
    SeededEmulator,
    environment,
    fmt_mb,
    fmt_s,
    make_video,
    median,
    new_upload_url,
    run,
    stop,
    table_lines,
    write_report,
)

MINIMAL_APP = [PY, str(BENCH / "minimal_app.py")]
BIG, MID, SMALL = GiB, 64 * MiB, MiB
ROWS = ("upload", "rss", "fixed", "help", "verify", "sync", "link", "webhooks")
CATALOGUE = 5000
UNRECORDED = 500
LIST_PAGE = 100  # Mux's maximum page size
OTHER_RATE = 5.0  # Mux's sustained rate for non-POST requests


# -- rows ------------------------------------------------------------------------------------


class Rows:
    def __init__(self, bench: Bench, args: argparse.Namespace) -> None:
        self.b = bench
        self.args = args
        self.next_lesson = 1
        self._upload: tuple[str, Path] | None = None

    def _upload_setup(self) -> tuple[str, Path]:
        if self._upload is None:
            base_url = self.args.upload_emulator or self.b.upload_emulator()
            db = self.b.work / "upload.db"
            self.b.init_db(db)
            self.b.add_lessons(db, ((i, None, None) for i in range(1, 1001)))
            self._upload = (base_url, db)
        return self._upload

    def _vidpipe_upload(
        self, path: Path, vidpipe: Sequence[str] = VIDPIPE, *, json_out: bool = False
    ) -> Run:
        base_url, db = self._upload_setup()
        lesson = self.next_lesson
        self.next_lesson += 1
        cmd = [*vidpipe, "upload", str(path), "--lesson", str(lesson), "--no-wait"]
        cmd += ["--json"] if json_out else []
        cmd += shlex.split(self.args.upload_args)
        return run(cmd, self.b.env(base_url, db), self.b.work)

    def _curl_upload(self, path: Path) -> Run:
        base_url, db = self._upload_setup()
        url = new_upload_url(base_url)
        cmd = [CURL, "-sS", "--fail", "-o", "/dev/null", "-w", "%{time_total}", "-T", str(path)]
        return run([*cmd, url], self.b.env(base_url, db), self.b.work)

    # upload + rss: the same runs

    def uploads(self, want: set[str]) -> list[Row]:
        big = make_video(self.b.work / "big.mp4", BIG)
        mid = make_video(self.b.work / "mid.mp4", MID)
        rounds = max(3, self.args.rounds)
        # Warm-up (page cache, .pyc files, the emulator's first connections): not counted.
        self._vidpipe_upload(mid)
        self._curl_upload(mid)
        vp: dict[str, list[Run]] = {"big": [], "mid": []}
        cu: dict[str, list[Run]] = {"big": [], "mid": []}
        for i in range(rounds):
            steps = [
                ("vp", "big"),
                ("vp", "mid"),
                ("curl", "big"),
                ("curl", "mid"),
            ]
            if i % 2:
                steps = steps[2:] + steps[:2]
            for who, size in steps:
                path = big if size == "big" else mid
                if who == "vp":
                    vp[size].append(self._vidpipe_upload(path, json_out=True))
                else:
                    cu[size].append(self._curl_upload(path))
            print(
                f"  upload round {i + 1}/{rounds}: vidpipe {vp['big'][-1].wall:.2f}/"
                f"{vp['mid'][-1].wall:.2f} s, curl {cu['big'][-1].wall:.2f}/"
                f"{cu['mid'][-1].wall:.2f} s (1 GiB/64 MiB)",
                file=sys.stderr,
                flush=True,
            )
        rows = []
        span = BIG - MID
        d_vp = [b.wall - m.wall for b, m in zip(vp["big"], vp["mid"], strict=True)]
        d_cu = [b.wall - m.wall for b, m in zip(cu["big"], cu["mid"], strict=True)]
        m_vp, m_cu = median(d_vp), median(d_cu)
        per_gib_vp, per_gib_cu = m_vp / span * GiB, m_cu / span * GiB
        ratio = m_vp / m_cu if m_cu > 0 else math.inf
        # Each tool's own clock for its transfer of the 1 GiB, process start and exit left
        # out: vidpipe's `transfer.seconds` (first PUT to final answer), curl's time_total.
        own_vp = median(json.loads(r.out)["transfer"]["seconds"] for r in vp["big"])
        own_cu = median(float(r.out) for r in cu["big"])
        if "upload" in want:
            rows.append(
                Row(
                    "upload",
                    "transfer cost per byte (1 GiB - 64 MiB)",
                    f"{per_gib_vp:.2f} s/GiB ({span / m_vp / 1e6:.0f} MB/s)",
                    f"curl -T {per_gib_cu:.2f} s/GiB ({span / m_cu / 1e6:.0f} MB/s)",
                    f"{ratio:.2f}x curl",
                    "<= 1.15x",
                    ratio <= 1.15,
                    [
                        f"{rounds} rounds; per-round ratios "
                        + ", ".join(f"{a / b:.2f}" for a, b in zip(d_vp, d_cu, strict=True))
                        + f"; each tool's own transfer clock on the 1 GiB: vidpipe "
                        f"{fmt_s(own_vp)}, curl {fmt_s(own_cu)} = {own_vp / own_cu:.2f}x"
                        + f"; whole-command medians: vidpipe 1 GiB "
                        f"{fmt_s(median(r.wall for r in vp['big']))}, 64 MiB "
                        f"{fmt_s(median(r.wall for r in vp['mid']))}; curl 1 GiB "
                        f"{fmt_s(median(r.wall for r in cu['big']))}, 64 MiB "
                        f"{fmt_s(median(r.wall for r in cu['mid']))}"
                    ],
                )
            )
        if "rss" in want:
            rss_big = max(r.maxrss for r in vp["big"])
            rss_mid = max(r.maxrss for r in vp["mid"])
            ok = rss_big <= 150e6 and rss_big <= rss_mid + 20e6
            rows.append(
                Row(
                    "rss",
                    "peak RSS of the 1 GiB upload",
                    fmt_mb(rss_big),
                    f"64 MiB upload {fmt_mb(rss_mid)}",
                    f"+{(rss_big - rss_mid) / 1e6:.1f} MB",
                    "<= 150 MB and <= +20 MB",
                    ok,
                    [
                        "worst of the rounds (wait4 ru_maxrss of each command alone); "
                        f"curl for scale: {fmt_mb(max(r.maxrss for r in cu['big']))}"
                    ],
                )
            )
        return rows

    # fixed cost

    def fixed(self) -> Row:
        small = make_video(self.b.work / "small.mp4", SMALL)
        base_url, db = self._upload_setup()
        env = self.b.env(base_url, db)
        runs = max(10, self.args.runs)
        # The named dependencies imported alone, with the collector handled as vidpipe's
        # entry point does (vidpipe/__main__.py): the floor under vidpipe's own work.
        imports = [
            PY,
            "-c",
            "import atexit, gc; gc.disable(); atexit.register(gc.freeze); "
            "import typer, rich, httpx, sqlmodel, mux_python, pydantic_settings",
        ]
        # The same command without the entry point's collector tuning (`python -m
        # vidpipe.cli` runs the CLI module directly): what that tuning saves.
        untuned = [PY, "-m", "vidpipe.cli"]
        self._vidpipe_upload(small)  # warm-up
        vp, floor, libs, plain = [], [], [], []
        for _ in range(runs):
            vp.append(self._vidpipe_upload(small).wall)
            plain.append(self._vidpipe_upload(small, untuned).wall)
            floor.append(run([*MINIMAL_APP, "--help"], env, self.b.work).wall)
            libs.append(run(imports, env, self.b.work).wall)
        m_vp, m_floor, m_libs = median(vp), median(floor), median(libs)
        return Row(
            "fixed",
            "`upload --no-wait` of 1 MiB, whole command",
            fmt_s(m_vp),
            f"minimal Typer --help {fmt_s(m_floor)}",
            f"{fmt_s(m_vp)} ({m_vp / m_floor:.1f}x the minimal app)",
            "<= 500 ms",
            m_vp <= 0.5,
            [
                f"{runs} runs each, interleaved; importing typer+rich+httpx+sqlmodel+mux_python+"
                f"pydantic_settings alone takes {fmt_s(m_libs)} (median), so "
                f"{fmt_s(m_vp - m_libs)} is vidpipe's own work (config, DB, whoami, 1 POST + "
                f"1 PUT, journal); without the entry point's collector tuning (python -m "
                f"vidpipe.cli) the same command takes {fmt_s(median(plain))}"
            ],
        )

    # --help

    def help(self) -> Row:
        env = {**self.b.base_env}
        runs = max(10, self.args.runs)
        run([*VIDPIPE, "--help"], env, self.b.work)  # warm-up (.pyc)
        run([*MINIMAL_APP, "--help"], env, self.b.work)
        defaults = {**env, "BENCH_TYPER_DEFAULTS": "1"}
        vp, floor, rich_floor = [], [], []
        for _ in range(runs):
            vp.append(run([*VIDPIPE, "--help"], env, self.b.work).wall)
            floor.append(run([*MINIMAL_APP, "--help"], env, self.b.work).wall)
            rich_floor.append(run([*MINIMAL_APP, "--help"], defaults, self.b.work).wall)
        m_vp, m_floor = median(vp), median(floor)
        ratio = m_vp / m_floor
        return Row(
            "help",
            "`vidpipe --help`",
            fmt_s(m_vp),
            f"minimal Typer --help {fmt_s(m_floor)}",
            f"{ratio:.2f}x",
            "<= 1.3x",
            ratio <= 1.3,
            [
                f"{runs} runs each, interleaved, same interpreter; the minimal app has vidpipe's "
                "Typer settings (plain help); with Typer's defaults (rich help) its --help "
                f"takes {fmt_s(median(rich_floor))}"
            ],
        )

    # verify / sync

    def _reconcile_row(self, name: str, emu: SeededEmulator, dbs: list[Path]) -> Row:
        pages = math.ceil(len(emu.assets) / LIST_PAGE)
        floor = pages / OTHER_RATE
        walls, calls, json_calls, limited, json_limited = [], [], [], [], []
        commits: list[int] = []
        changes: list[int] = []
        for db in dbs:
            # A deployed database is pinned to its Mux environment: pin it outside the timing,
            # so the first run's one pinning write is not counted as sync's.
            run([*VIDPIPE, "db", "pin"], self.b.env(emu.base_url, db), self.b.work)
            time.sleep(1.5)  # let the emulator's 5/s bucket refill between runs
            before = emu.counts()
            counter0 = change_counter(db)
            cmd = [*VIDPIPE, name, "--json"]
            result = run(cmd, self.b.env(emu.base_url, db), self.b.work)
            after = emu.counts()
            doc = json.loads(result.out)
            walls.append(result.wall)
            calls.append(after["total"] - before["total"])
            limited.append(after["status_429"] - before["status_429"])
            json_calls.append(int(doc.get("api_calls", -1)))
            json_limited.append(int(doc.get("rate_limited", -1)))
            if name == "sync":
                commits.append(change_counter(db) - counter0)
                changes.append(sum(1 for d in doc["drift"] if d.get("action") == "recorded asset"))
                recorded = count_recorded(db)
                if recorded != len(emu.assets):
                    raise RuntimeError(f"sync recorded {recorded} rows of {len(emu.assets)}")
            elif doc["drift"]:
                raise RuntimeError(f"verify found drift in a clean catalogue: {doc['drift'][:3]}")
            print(
                f"  {name} run {len(walls)}/{len(dbs)}: {result.wall:.2f} s, "
                f"{calls[-1]} calls, {limited[-1]} 429s",
                file=sys.stderr,
                flush=True,
            )
        m_wall = median(walls)
        ratio = m_wall / floor
        ok = max(calls) <= 70 and sum(limited) == 0 and ratio <= 1.5
        rows_n = CATALOGUE + (UNRECORDED if name == "sync" else 0)
        figure = f"{ratio:.2f}x floor, {max(calls)} calls, {sum(limited)} 429s"
        target = "<= 1.5x, <= 70 calls, 0 429s"
        notes = [
            f"{len(dbs)} runs; {rows_n:,} rows, {len(emu.assets):,} assets = {pages} list pages; "
            f"API calls per run (emulator log) {calls}, vidpipe's own count {json_calls}, "
            f"its 429 count {json_limited}; walls " + ", ".join(f"{w:.2f}" for w in walls)
        ]
        if name == "sync":
            per = [c / n if n else math.inf for c, n in zip(commits, changes, strict=True)]
            ok = ok and all(c == n == UNRECORDED for c, n in zip(commits, changes, strict=True))
            figure += f", {max(per):.2f} commits/change"
            target += ", 1 commit/change"
            notes.append(
                f"changes recorded per run {changes}, database write transactions per run "
                f"{commits} (SQLite file change counter)"
            )
        return Row(
            name,
            f"`vidpipe {name}` of {rows_n:,} rows, --rate-limit",
            fmt_s(m_wall),
            f"floor {pages} pages / 5 per s = {fmt_s(floor)}",
            figure,
            target,
            ok,
            notes,
        )

    def verify(self) -> Row:
        emu = self.b.catalogue_emulator("verify", CATALOGUE)
        db = self.b.work / "verify.db"
        self.b.init_db(db)
        self.b.add_lessons(db, ((lid, aid, pid) for lid, aid, pid in emu.assets))
        row = self._reconcile_row("verify", emu, [db] * max(1, self.args.reconcile_runs))
        stop(emu.proc)
        return row

    def sync(self) -> Row:
        emu = self.b.catalogue_emulator("sync", CATALOGUE + UNRECORDED)
        template = self.b.work / "sync-template.db"
        self.b.init_db(template)
        self.b.add_lessons(
            template,
            (
                (lid, aid, pid) if lid <= CATALOGUE else (lid, None, None)
                for lid, aid, pid in emu.assets
            ),
        )
        dbs = []
        for i in range(max(1, self.args.reconcile_runs)):
            db = self.b.work / f"sync-{i}.db"
            shutil.copyfile(template, db)
            dbs.append(db)
        row = self._reconcile_row("sync", emu, dbs)
        stop(emu.proc)
        return row


def change_counter(db: Path) -> int:
    """SQLite's file change counter (header bytes 24-27): +1 per committed write transaction
    in rollback-journal mode, which is how vidpipe opens SQLite."""
    with open(db, "rb") as fh:
        header = fh.read(28)
    return int.from_bytes(header[24:28], "big")


def count_recorded(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        (n,) = conn.execute("SELECT count(*) FROM lesson WHERE mux_asset_id IS NOT NULL").fetchone()
    return int(n)


# -- main ------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="vidpipe's benchmarks.")
    parser.add_argument(
        "--only",
        default=",".join(ROWS),
        help=f"comma-separated rows to run: {', '.join(ROWS)} (default: all)",
    )
    parser.add_argument("--rounds", type=int, default=7, help="upload rounds (min 3)")
    parser.add_argument("--reconcile-runs", type=int, default=3, help="verify and sync runs")
    parser.add_argument("--runs", type=int, default=15, help="--help and fixed-cost runs (min 10)")
    parser.add_argument(
        "--upload-emulator",
        metavar="URL",
        help="for development: upload rows use this running emulator instead of starting one",
    )
    parser.add_argument(
        "--upload-args",
        default="",
        metavar="ARGS",
        help='for development: extra options for `vidpipe upload`, e.g. "--chunk-size 128MiB"',
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (printed)")
    args = parser.parse_args(argv)
    want = {w.strip() for w in args.only.split(",") if w.strip()}
    unknown = want - set(ROWS)
    if unknown:
        parser.error(f"unknown row(s) {', '.join(sorted(unknown))}; choose from {', '.join(ROWS)}")

    work = Path(tempfile.mkdtemp(prefix="vidpipe-bench-"))
    bench = Bench(work)
    rows = Rows(bench, args)
    table: list[Row] = []
    started = time.monotonic()
    try:
        if want & {"upload", "rss"}:
            table += rows.uploads(want)
        if "fixed" in want:
            table.append(rows.fixed())
        if "help" in want:
            table.append(rows.help())
        if "verify" in want:
            table.append(rows.verify())
        if "sync" in want:
            table.append(rows.sync())
        if "link" in want:
            from link import link_rows

            table += link_rows(work)
        if "webhooks" in want:
            from webhooks import webhook_rows

            table += webhook_rows(work)
    finally:
        bench.close()
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    order = {name: i for i, name in enumerate(ROWS)}
    table.sort(key=lambda r: order[r.name])
    failed = [r.name for r in table if r.ok is False]
    report = [
        "vidpipe benchmarks: medians; compare ratios, not absolute times",
        f"  command: .venv/bin/python bench/run.py {' '.join(argv or sys.argv[1:])}".rstrip(),
        *(f"  {line}" for line in environment()),
        f"  total bench time {time.monotonic() - started:.0f} s",
        "",
        *table_lines(table),
        "",
        "every target met" if not failed else f"targets missed: {', '.join(failed)}",
    ]
    print()
    write_report("latest.txt", report)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
