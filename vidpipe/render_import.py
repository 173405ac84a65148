"""An import's live display (a bar per item on a terminal, plain lines otherwise) and its
result table.

Text vidpipe did not write (file names, Mux's messages) goes into a line only through
`vidpipe.text.shown`; table cells are the UI's (it escapes each one)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from vidpipe.importer import ImportReport, ItemResult, ItemState, Observer
from vidpipe.manifest import Item
from vidpipe.text import rich_text, shown
from vidpipe.ui import UI, Col, Role, size_text


@contextmanager
def import_progress(ui: UI) -> Iterator[Observer]:
    """How an import shows its progress: on a terminal, an overall bar (items done/total,
    bytes, rate, ETA) and a line per active transfer (stderr); otherwise plain lines on
    stderr (each item's start and end, and the totals every 10 s); nothing with --json
    off a terminal."""
    if ui.err.is_terminal:
        observer: _ImportObserver = _RichImport(ui)
    elif ui.json_mode:
        observer = _ImportObserver(ui)
    else:
        observer = _PlainImport(ui)
    try:
        yield observer
    finally:
        observer.close()


def render_import(ui: UI, report: ImportReport) -> None:
    if ui.json_mode:
        ui.json(report.as_json())
        return
    for result in report.items:
        for warning in result.warnings:
            ui.warn(f"line {result.line}: {shown(warning)}")
    columns = [
        Col("Line"),
        Col("Target"),
        Col("Source"),
        Col("State"),
        Col("Asset", Role.ID),
        Col("Playback", Role.ID),
        Col("Error", Role.TEXT),
    ]
    rows: list[tuple[Any, ...]] = [
        (r.line, str(r.target), r.source, r.state.value, r.asset_id, r.playback_id, r.error)
        for r in report.items
    ]
    if not any(r.error for r in report.items):
        columns, rows = columns[:-1], [row[:-1] for row in rows]
    ui.table("vidpipe import (dry run)" if report.dry_run else "vidpipe import", columns, rows)
    parts = [f"{report.count(s)} {s.value}" for s in ItemState if report.count(s)]
    summary = f"import: {len(report.items)} item{'s' if len(report.items) != 1 else ''}: "
    summary += ", ".join(parts)
    if not report.dry_run:
        summary += f" in {report.seconds:.1f} s ({report.api_calls} API calls"
        summary += f", {report.rate_limited} rate-limited)" if report.rate_limited else ")"
    ui.line(summary)


class _ImportObserver(Observer):
    """Tracks the totals; shows nothing (--json off a terminal)."""

    def __init__(self, ui: UI) -> None:
        self.ui = ui
        self.lock = threading.Lock()
        self.total_items = 0
        self.ended = 0
        self.total_bytes = 0
        self.bytes_by_line: dict[int, int] = {}

    @property
    def bytes_done(self) -> int:
        return sum(self.bytes_by_line.values())

    def planned(self, items: list[Item]) -> None:
        with self.lock:
            self.total_items = len(items)
            self.total_bytes = sum(i.size for i in items)

    def progress(self, item: Item, done: int, total: int) -> None:
        with self.lock:
            self.bytes_by_line[item.line] = done

    def finished(self, result: ItemResult) -> None:
        with self.lock:
            if result.state != ItemState.SKIPPED:
                self.ended += 1
            if result.size and result.state != ItemState.FAILED:
                self.bytes_by_line[result.line] = result.size

    def close(self) -> None:
        pass


class _PlainImport(_ImportObserver):
    """Plain lines on stderr: not a terminal (cron, pipes)."""

    EVERY = 10.0

    def __init__(self, ui: UI) -> None:
        super().__init__(ui)
        self.started_at = time.monotonic()
        self.last = self.started_at

    def started(self, item: Item) -> None:
        size = f" ({size_text(item.size)})" if item.size else ""
        self.ui.message(f"line {item.line}: {item.target}: {shown(item.shown)}{size}: started")

    def progress(self, item: Item, done: int, total: int) -> None:
        super().progress(item, done, total)
        now = time.monotonic()
        with self.lock:
            if now - self.last < self.EVERY:
                return
            self.last = now
        self.ui.message(self._totals(now))

    def held(self, item: Item) -> None:
        self.ui.message(f"line {item.line}: {item.target}: another process holds it; waiting")

    def waiting(self, item: Item) -> None:
        self.ui.message(f"line {item.line}: {item.target}: waiting for Mux to make it ready")

    def finished(self, result: ItemResult) -> None:
        super().finished(result)
        text = f"line {result.line}: {result.target}: {result.state.value}"
        if result.error:
            text += f": {shown(result.error)}"
        self.ui.message(text)

    def _totals(self, now: float) -> str:
        elapsed = max(now - self.started_at, 1e-6)
        done = self.bytes_done
        return (
            f"import: {self.ended}/{self.total_items} items, {size_text(done)} of "
            f"{size_text(self.total_bytes)} ({size_text(done / elapsed)}/s)"
        )


class _RichImport(_ImportObserver):
    """A live rich display on stderr: the overall bar, then one line per active transfer."""

    def __init__(self, ui: UI) -> None:
        super().__init__(ui)
        self.bar = ui.byte_bar(transient=False)
        self.overall = self.bar.add_task("import", total=None, style="bold")
        self.tasks: dict[int, Any] = {}
        self.bar.start()

    def _describe(self) -> str:
        return f"{self.ended}/{self.total_items} items"

    def planned(self, items: list[Item]) -> None:
        super().planned(items)
        self.bar.update(self.overall, total=self.total_bytes or None, description=self._describe())

    def started(self, item: Item) -> None:
        label = f"  {item.target}: {shown(item.shown)}" + ("" if item.size else " (Mux fetches it)")
        with self.lock:
            self.tasks[item.line] = self.bar.add_task(label, total=item.size or None)

    def progress(self, item: Item, done: int, total: int) -> None:
        super().progress(item, done, total)
        with self.lock:
            task = self.tasks.get(item.line)
        if task is not None:
            self.bar.update(task, completed=done)
        self.bar.update(self.overall, completed=self.bytes_done)

    def _drop(self, line: int) -> None:
        with self.lock:
            task = self.tasks.pop(line, None)
        if task is not None:
            self.bar.remove_task(task)

    def waiting(self, item: Item) -> None:
        self._drop(item.line)

    def finished(self, result: ItemResult) -> None:
        super().finished(result)
        self._drop(result.line)
        if result.state == ItemState.FAILED:
            failed = f"line {result.line}: {result.target}: failed: {shown(result.error)}"
            self.bar.console.print(rich_text(failed))
        self.bar.update(self.overall, completed=self.bytes_done, description=self._describe())

    def close(self) -> None:
        self.bar.stop()


# -- captions -----------------------------------------------------------------------------------
