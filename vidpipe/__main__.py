"""The `vidpipe` console script and `python -m vidpipe`: the CLI, started and ended lean.

Starting vidpipe imports its libraries (typer, httpx, sqlalchemy, pydantic, mux_python...):
about a million objects that live as long as the process. CPython's cyclic garbage collector
would walk them over and over for nothing, measured on `upload --no-wait` of 1 MiB (0.6 s):
- while the process starts, a collection every 700 new objects: about 250 collections,
  80-100 ms, before a byte is sent;
- when the interpreter shuts down, one full collection of everything: about 150 ms after
  the command's work is done.

So, as `tune_gc` sets it up:
- the collector is off while the process starts; after `STARTUP_SECONDS` the objects that
  exist by then are frozen (`gc.freeze`: moved where no later collection walks them) and the
  collector is on again with its usual thresholds, so a long upload, import or webhook
  server collects its garbage as always;
- at exit (an `atexit` handler, so after the command has closed its files, connections and
  database) everything is frozen, so the shutdown skips that last walk. Files, sockets and
  database connections are closed explicitly before then; the operating system reclaims the
  rest of the process either way.

A library user importing `vidpipe` is untouched: only this entry point does it.
"""

from __future__ import annotations

import atexit
import gc
import threading

__all__ = ["STARTUP_SECONDS", "main", "tune_gc"]

STARTUP_SECONDS = 1.0
"""How long the collector stays off; the imports and the first requests fit well within."""


def tune_gc(startup_seconds: float = STARTUP_SECONDS) -> threading.Timer | None:
    """Freeze every object at exit; turn the collector off now and on again (what exists
    then frozen) after `startup_seconds`, returning that timer. If the collector is already
    off, it is left off (whoever turned it off decides) and None is returned."""
    atexit.register(gc.freeze)
    if not gc.isenabled():
        return None
    gc.disable()
    timer = threading.Timer(startup_seconds, _settle)
    timer.daemon = True  # never keeps a finished command alive
    timer.name = "vidpipe-gc-startup"
    timer.start()
    return timer


def _settle() -> None:
    gc.freeze()
    gc.enable()


def main() -> None:
    tune_gc()
    from vidpipe.cli import main as cli_main

    cli_main()


if __name__ == "__main__":  # pragma: no cover
    main()
