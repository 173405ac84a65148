"""The Mux emulator in its own process, seeded with a catalogue of ready assets.

`vidpipe emulator` cannot be seeded from outside (creating 5,000 assets through the API would
take 5,000 POSTs at 1/s), so the verify and sync benchmarks run this instead:

    python bench/emulator_proc.py --out DIR --assets 5500 [--rate-limit] [--vidpipe-meta TITLE]
                                  [--master-sizes N,N...]

Asset i (1-based) has passthrough `{"lesson_id": i}` (and with `--vidpipe-meta`, the meta
vidpipe's upload gives lesson i titled TITLE). Once listening it writes
`DIR/catalogue.json` ({"base_url", "assets": [[lesson_id, asset_id, playback_id], ...]}).
On SIGUSR1 it writes `DIR/counts.json` (requests under /video/: total, by method, asset
list pages, 429s, and a sequence number); on SIGTERM it writes them once more and exits.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from vidpipe.emulator import Emulator


def _write(path: Path, doc: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--assets", type=int, default=5000)
    parser.add_argument("--rate-limit", action="store_true")
    parser.add_argument("--ready-after", type=float, default=0.0)
    parser.add_argument("--no-checksum", action="store_true")
    parser.add_argument(
        "--vidpipe-meta",
        metavar="TITLE",
        help="give asset i the meta vidpipe's upload gives lesson i titled TITLE",
    )
    parser.add_argument(
        "--master-sizes", default="", help="comma-separated master sizes of the seeded assets"
    )
    parser.add_argument("--master-ready-after", type=float, default=0.5)
    args = parser.parse_args()

    emulator = Emulator(
        ready_after=args.ready_after, rate_limit=args.rate_limit, checksum=not args.no_checksum
    )
    if args.vidpipe_meta is None:
        seeded = emulator.seed_assets(
            args.assets, passthrough_fn=lambda i: json.dumps({"lesson_id": i + 1})
        )
    else:
        seeded = [
            emulator.seed_asset(
                json.dumps({"lesson_id": i}),
                meta={"title": args.vidpipe_meta, "external_id": f"lesson:{i}"},
            )
            for i in range(1, args.assets + 1)
        ]
    emulator.master_access.ready_after = args.master_ready_after
    for asset, size in zip(
        seeded, (int(s) for s in args.master_sizes.split(",") if s), strict=False
    ):
        emulator.master_access.set_size(asset["id"], size)
    base_url = emulator.start()
    catalogue = [
        [i + 1, asset["id"], asset["playback_ids"][0]["id"]] for i, asset in enumerate(seeded)
    ]
    _write(args.out / "catalogue.json", {"base_url": base_url, "assets": catalogue})

    seq = 0
    stop = threading.Event()

    def counts() -> None:
        nonlocal seq
        seq += 1
        by_method: dict[str, int] = {}
        list_gets = 0
        for method, path, _status in list(emulator.request_log):
            if path.startswith("/video/"):
                by_method[method] = by_method.get(method, 0) + 1
            list_gets += method == "GET" and path == "/video/v1/assets"
        _write(
            args.out / "counts.json",
            {
                "seq": seq,
                "total": emulator.count(),
                "status_429": emulator.count(status=429),
                "by_method": by_method,
                "list_gets": list_gets,
            },
        )

    def on_usr1(signum: int, frame: object) -> None:
        counts()

    def on_term(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGUSR1, on_usr1)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    print(base_url, flush=True)
    try:
        while not stop.is_set():
            stop.wait(0.5)
    finally:
        counts()
        emulator.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
