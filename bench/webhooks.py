"""Load benchmark of `vidpipe webhook serve`: events/s and latency under 32 concurrent clients.

    .venv/bin/python bench/webhooks.py                       # SQLite and PostgreSQL
    .venv/bin/python bench/webhooks.py --db sqlite --events 1000 --clients 16

`bench/run.py --only webhooks` (and `make bench`) runs the same and puts it in its table.

The server is the real command (`vidpipe webhook serve`, its own process, no Mux token: signed
events are trusted); the clients are threads of this process, each with one keep-alive HTTP
connection, taking signed events from one shared queue. Two workloads per database:

- `ready`: one `video.asset.ready` per lesson (distinct rows). Targets: >= 150 events/s on
  SQLite and p99 <= 1 s; PostgreSQL is reported.
- `pairs`: for each lesson, `video.asset.ready(A)` and `video.asset.deleted(A)` next to each
  other in the queue (in random order), so the two are handled at the same moment, plus a
  duplicate of one of them. Afterwards no row may name a deleted asset (`dead rows`, target 0).

PostgreSQL is a throwaway server started the way the tests start theirs (tests/pgserver.py);
without PostgreSQL binaries its rows are skipped. Latencies are per request, from sending it to
reading the whole answer. The machine is shared and noisy: compare runs on one machine.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import random
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import ROOT, VIDPIPE, Row, free_port, spawn, stop, wait_listening
from sqlalchemy import insert, select

from vidpipe.db import Lesson, init_db, make_engine
from vidpipe.webhooks import sign

SECRET = "whsec-bench-webhooks"
SQLITE_RATE_TARGET = 150.0
P99_TARGET = 1.0


@dataclass
class Figures:
    """One workload on one database."""

    db: str
    workload: str
    events: int
    clients: int
    seconds: float
    latencies: list[float]
    statuses: dict[int, int]
    dead_rows: int | None = None
    wrong_rows: int = 0
    load: float = 0.0  # the machine's 1-minute load average when the workload ended
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    @property
    def ok(self) -> bool | None:
        """Targets: every answer 200 and every row right; SQLite `ready`: the rate and p99;
        `pairs`: no dead rows. None for a row that is only reported."""
        good = set(self.statuses) == {200} and self.wrong_rows == 0
        if self.workload == "pairs":
            return good and self.dead_rows == 0
        if self.db == "sqlite":
            return good and self.rate >= SQLITE_RATE_TARGET and self.pct(99) <= P99_TARGET
        return None if good else False

    def line(self) -> str:
        extra = "" if self.dead_rows is None else f", dead rows {self.dead_rows}"
        codes = ", ".join(f"{code}: {n}" for code, n in sorted(self.statuses.items()))
        return (
            f"{self.db:8} {self.workload:6} {self.events} events, {self.clients} clients: "
            f"{self.rate:.0f} events/s, p50 {self.pct(50) * 1000:.0f} ms, "
            f"p99 {self.pct(99) * 1000:.0f} ms; answers {{{codes}}}{extra}"
            + (f", wrong rows {self.wrong_rows}" if self.wrong_rows else "")
            + f" (load average {self.load:.1f})"
        )


# -- events ----------------------------------------------------------------------------------


def _event(kind: str, lesson: int, asset: str, seq: int) -> bytes:
    data: dict[str, Any] = {
        "id": asset,
        "status": "ready" if kind == "ready" else "deleted",
        "passthrough": json.dumps({"lesson_id": lesson}),
        "created_at": 1700000000,
        "playback_ids": [{"id": f"pb-{asset}", "policy": "public"}],
    }
    return json.dumps(
        {
            "type": f"video.asset.{kind}",
            "id": f"evt-{kind}-{asset}-{seq}",
            "object": {"type": "asset", "id": asset},
            "data": data,
        }
    ).encode()


def ready_workload(lessons: int, tag: str) -> list[bytes]:
    return [_event("ready", i, f"{tag}-A{i}", 0) for i in range(1, lessons + 1)]


def pairs_workload(lessons: int, tag: str, rng: random.Random) -> list[bytes]:
    out: list[bytes] = []
    for i in range(1, lessons + 1):
        asset = f"{tag}-D{i}"
        pair = [_event("ready", i, asset, 0), _event("deleted", i, asset, 0)]
        rng.shuffle(pair)
        out += pair
        if i % 4 == 0:  # a redelivery, overlapping its original
            out.append(_event(rng.choice(["ready", "deleted"]), i, asset, 1))
    return out


# -- the server ------------------------------------------------------------------------------


@contextmanager
def served(url: str, work: Path, name: str) -> Iterator[int]:
    """`vidpipe webhook serve` on a free port for `url`; yields the port."""
    port = free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("MUX_", "DATABASE_", "VIDPIPE_"))
    }
    env.update(DATABASE_URL=url, MUX_WEBHOOK_SECRET=SECRET, NO_COLOR="1")
    log = work / f"serve-{name}.log"
    cmd = [*VIDPIPE, "webhook", "serve", "--host", "127.0.0.1", "--port", str(port)]
    proc = spawn(cmd, log, env, work)
    try:
        wait_listening(port, proc, what=f"webhook serve (see {log})")
        yield port
    finally:
        stop(proc, timeout=20)


def fire(port: int, bodies: list[bytes], clients: int) -> tuple[float, list[float], dict[int, int]]:
    """Send every body from `clients` threads (one keep-alive connection each)."""
    todo: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
    signed = [(b, sign(SECRET, b)) for b in bodies]
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    start_line = threading.Barrier(clients + 1)
    for i in range(len(signed)):
        todo.put(i)  # type: ignore[arg-type]
    for _ in range(clients):
        todo.put(None)

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine: list[float] = []
        codes: dict[int, int] = {}
        start_line.wait()
        while (item := todo.get()) is not None:
            body, header = signed[item]  # type: ignore[index]
            headers = {"Content-Type": "application/json", "Mux-Signature": header}
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/webhooks/mux", body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                code = response.status
                if response.getheader("connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException):
                conn.close()
                code = 0
            mine.append(time.perf_counter() - t0)
            codes[code] = codes.get(code, 0) + 1
        conn.close()
        with lock:
            latencies.extend(mine)
            for code, n in codes.items():
                statuses[code] = statuses.get(code, 0) + n

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    start_line.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, latencies, statuses


# -- one database ----------------------------------------------------------------------------


def run_db(name: str, url: str, work: Path, events: int, clients: int) -> list[Figures]:
    lessons = events
    pair_lessons = max(1, events // 4)
    engine = make_engine(url)
    init_db(engine)
    with engine.begin() as conn:
        conn.execute(
            insert(Lesson.__table__),  # type: ignore[attr-defined]
            [{"id": i, "title": f"bench lesson {i}"} for i in range(1, lessons + 1)],
        )
    out: list[Figures] = []
    rng = random.Random(16)
    with served(url, work, name) as port:
        # Warm-up (imports, first connections, the pool): not counted, then undone.
        warm = [_event("ready", i, f"warm-{i}", 0) for i in range(1, 33)]
        fire(port, warm, clients)
        fire(port, [_event("deleted", i, f"warm-{i}", 0) for i in range(1, 33)], clients)

        bodies = ready_workload(lessons, "r")
        seconds, lat, codes = fire(port, bodies, clients)
        fig = Figures(name, "ready", len(bodies), clients, seconds, lat, codes)
        fig.load = os.getloadavg()[0]
        with engine.connect() as conn:
            rows = conn.execute(select(Lesson.id, Lesson.mux_asset_id)).all()  # type: ignore[call-overload]
        fig.wrong_rows = sum(1 for lid, asset in rows if asset != f"r-A{lid}")
        out.append(fig)

        with engine.begin() as conn:
            conn.execute(Lesson.__table__.update().values(mux_asset_id=None, mux_playback_id=None))  # type: ignore[attr-defined]
        bodies = pairs_workload(pair_lessons, "p", rng)
        seconds, lat, codes = fire(port, bodies, clients)
        fig = Figures(name, "pairs", len(bodies), clients, seconds, lat, codes)
        fig.load = os.getloadavg()[0]
        with engine.connect() as conn:
            named = conn.execute(
                select(Lesson.mux_asset_id).where(Lesson.mux_asset_id.is_not(None))  # type: ignore[union-attr]
            ).all()
        fig.dead_rows = sum(1 for (asset,) in named if str(asset).startswith("p-D"))
        out.append(fig)
    engine.dispose()
    return out


def _pg_server() -> Any:
    """A started throwaway PostgreSQL (tests/pgserver.py), or None without its binaries."""
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from pgserver import PgServer, postgres_available
    finally:
        sys.path.pop(0)
    if not postgres_available():
        return None
    server = PgServer()
    server.start()
    return server


def measure(work: Path, dbs: list[str], events: int, clients: int) -> list[Figures]:
    """Every workload on every database in `dbs` (`sqlite`, `postgres`)."""
    figures: list[Figures] = []
    if "sqlite" in dbs:
        figures += run_db("sqlite", f"sqlite:///{work / 'webhooks.db'}", work, events, clients)
    if "postgres" in dbs:
        server = _pg_server()
        if server is None:
            print("PostgreSQL binaries not found: its rows are skipped", file=sys.stderr)
        else:
            try:
                figures += run_db("postgres", server.create_database(), work, events, clients)
            finally:
                server.stop()
    return figures


def webhook_rows(work: Path, events: int = 2000, clients: int = 32) -> list[Row]:
    """bench/run.py's `webhooks` rows."""
    rows = []
    for f in measure(work, ["sqlite", "postgres"], events, clients):
        if f.workload == "ready":
            target = ">= 150/s, p99 <= 1 s" if f.db == "sqlite" else "report"
            figure = f"{f.rate:.0f} events/s, p99 {f.pct(99) * 1000:.0f} ms"
        else:
            target = "0 dead rows"
            figure = f"{f.dead_rows} dead rows, {f.rate:.0f} events/s"
        rows.append(
            Row(
                "webhooks",
                f"{f.db} {f.workload}, {f.clients} clients",
                f"p50 {f.pct(50) * 1000:.0f} ms",
                "-",
                figure,
                target,
                f.ok,
                [f.line()],
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Load benchmark of `vidpipe webhook serve`.")
    parser.add_argument("--db", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--events", type=int, default=2000, help="ready events (one per lesson)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (printed)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="vidpipe-bench-webhooks-"))
    try:
        figures = measure(work, [d.strip() for d in args.db.split(",")], args.events, args.clients)
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    for f in figures:
        print(f.line())
    failed = [f"{f.db} {f.workload}" for f in figures if f.ok is False]
    print("every target met" if not failed else f"targets missed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
