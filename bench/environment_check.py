"""What the environment check costs a command: one whoami and one database transaction.

    .venv/bin/python bench/environment_check.py [--rows 20] [--rounds 15]

Prints, for `verify` of a small platform (ROWS lessons recording ready assets) through the
facade on a SQLite file, the median wall time with the check (a fresh `Vidpipe` per round,
as each CLI run is) beside the same work without it (snapshot, plan, the same gateway), with
the gateway's pacing on (the default: Mux's 5 GET/s) and off; and the two parts alone: the
whoami round trip and the pin-check transaction. The emulator runs in this process, on
loopback, so network latency to the real Mux (tens of ms) comes on top of the whoami figure.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlmodel import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidpipe import environment, reconcile
from vidpipe.api import Vidpipe
from vidpipe.config import load_settings
from vidpipe.db import Lesson, init_db, make_engine
from vidpipe.emulator import Emulator
from vidpipe.targets import Kind, Target


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, Emulator(ready_after=0.0) as emu:
        url = f"sqlite:///{Path(tmp) / 'platform.db'}"
        engine = make_engine(url)
        init_db(engine)
        with Session(engine) as s:
            for i in range(1, args.rows + 1):
                a = emu.seed_asset(Target(Kind.LESSON, i).passthrough)
                s.add(
                    Lesson(
                        id=i,
                        title=f"L{i}",
                        mux_asset_id=a["id"],
                        mux_playback_id=a["playback_ids"][0]["id"],
                    )
                )
            s.commit()
        settings = load_settings(
            read_dotenv=False,
            database_url=url,
            mux_base_url=emu.base_url,
            mux_token_id="bench",
            mux_token_secret="bench",
        )

        print(f"verify of {args.rows} rows, median of {args.rounds} rounds (SQLite, loopback)")
        for pace in (True, False):
            Vidpipe.gateway_defaults = {"pace": pace}
            with_check, without = [], []
            for _ in range(args.rounds):
                with Vidpipe(settings) as vp:
                    vp.engine, vp.gateway  # noqa: B018 - build both outside the timing
                    t0 = time.perf_counter()
                    vp.verify()
                    with_check.append(time.perf_counter() - t0)
                with Vidpipe(settings) as vp:
                    eng, gw = vp.engine, vp.gateway
                    t0 = time.perf_counter()
                    reconcile.verify(eng, gw)
                    without.append(time.perf_counter() - t0)
            a, b = statistics.median(with_check), statistics.median(without)
            print(
                f"  pacing {'on ' if pace else 'off'}: with the check {a * 1000:7.1f} ms, "
                f"without {b * 1000:7.1f} ms, difference {(a - b) * 1000:6.1f} ms"
            )

        Vidpipe.gateway_defaults = {"pace": False}
        whoami, check = [], []
        with Vidpipe(settings) as vp:
            gw, eng = vp.gateway, vp.engine
            gw.whoami()  # warm the connection as a command's first call does not: see note
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                current = gw.whoami()
                whoami.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                environment.check(eng, current)
                check.append(time.perf_counter() - t0)
        calls = emu.count("GET", "/system/v1/whoami")
        print(f"  whoami round trip (warm connection): {statistics.median(whoami) * 1000:.2f} ms")
        print(f"  pin check transaction (SQLite):      {statistics.median(check) * 1000:.2f} ms")
        print(f"  whoami calls made in all: {calls} (one per Vidpipe, plus the timed ones)")


if __name__ == "__main__":
    main()
