"""Terminal output: rich on a terminal, plain lines elsewhere, one JSON document with --json.

Only the CLI uses this module; the core never prints.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, Any

from rich.console import Console


def _console(file: IO[str]) -> Console:
    return Console(file=file, highlight=False, soft_wrap=True, no_color="NO_COLOR" in os.environ)


class UI:
    """Where output goes. stdout carries results; stderr carries messages and progress."""

    def __init__(self, *, json_mode: bool = False) -> None:
        self.json_mode = json_mode
        self.out = _console(sys.stdout)
        self.err = _console(sys.stderr)

    @property
    def rich(self) -> bool:
        """Rich rendering (tables, colour) only on a terminal and never with --json."""
        return self.out.is_terminal and not self.json_mode

    def message(self, text: str, *, style: str = "") -> None:
        """A message for the user: stderr, so stdout stays clean for results and JSON."""
        if self.err.is_terminal:
            self.err.print(text, style=style or None, markup=False)
        else:
            print(text, file=sys.stderr, flush=True)

    def warn(self, text: str) -> None:
        self.message(f"warning: {text}", style="yellow")

    def error(self, text: str) -> None:
        self.message(f"error: {text}", style="bold red")

    def line(self, text: str = "") -> None:
        """A plain result line on stdout (not in --json mode)."""
        if self.json_mode:
            return
        if self.out.is_terminal:
            self.out.print(text, markup=False)
        else:
            print(text, flush=True)

    def json(self, doc: Any) -> None:
        sys.stdout.write(json.dumps(doc, indent=2, sort_keys=False, default=str) + "\n")
        sys.stdout.flush()

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """A rich table on a terminal; tab-free plain lines `col=value ...` otherwise."""
        if self.json_mode:
            return
        if self.rich:
            from rich.table import Table

            table = Table(title=title, title_justify="left")
            for col in columns:
                # IDs are copied from here: keep them on one line; prose may wrap.
                table.add_column(col, overflow="fold", no_wrap=col not in _WRAPPING)
            for row in rows:
                table.add_row(*("" if v is None else str(v) for v in row))
            self.out.print(table)
            return
        for row in rows:
            parts = [
                f"{c.lower().replace(' ', '_')}={_plain(v)}"
                for c, v in zip(columns, row, strict=False)
            ]
            print(" ".join(parts), flush=True)

    @contextmanager
    def progress(self, description: str) -> Iterator[Callable[[int, int], None]]:
        """A byte progress callback `(done, total)`: a rich bar on a terminal (stderr),
        plain periodic lines otherwise (every 10% or 10 s), nothing in --json off a terminal.
        The bar starts on the first call, when the total is known, and stops when done."""
        if self.err.is_terminal:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                DownloadColumn(binary_units=True),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=self.err,
                transient=False,
            )
            tasks: list[Any] = []

            def update(done: int, total: int) -> None:
                if not tasks:
                    bar.start()
                    tasks.append(bar.add_task(description, total=total))
                bar.update(tasks[0], completed=done)
                if done >= total:
                    # Finished: stop the live bar so later messages print below it.
                    bar.stop()

            try:
                yield update
            finally:
                bar.stop()
            return
        if self.json_mode:
            yield lambda done, total: None
            return
        state = {"pct": -10, "at": 0.0}

        def plain(done: int, total_: int) -> None:
            pct = int(done * 100 / total_) if total_ else 100
            now = time.monotonic()
            if pct >= state["pct"] + 10 or now - state["at"] >= 10 or done == total_:
                if pct == state["pct"] and done != total_:
                    return
                state["pct"], state["at"] = pct, now
                print(
                    f"{description}: {done:,} / {total_:,} bytes ({pct}%)",
                    file=sys.stderr,
                    flush=True,
                )

        yield plain


_WRAPPING = {"Title", "Detail", "Action", "Upload", "Shared with", "Notes", "Mux"}


def _plain(value: Any) -> str:
    if value is None or value == "":
        return "-"
    text = str(value)
    return json.dumps(text) if any(c.isspace() for c in text) or '"' in text else text
