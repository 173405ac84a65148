"""How `download` and `export` show themselves: progress while they run, then the result.

On a terminal: a live line while Mux prepares a master, then a rich byte bar (stderr); an
export shows an overall bar (items, bytes, rate) and a line per active download. Off a
terminal: plain lines on stderr (each wait and item event, bytes every 10 % or 10 s, an
export's totals every 10 s); nothing with --json off a terminal.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

from vidpipe.export import ExportItem, ExportObserver, ExportReport, ExportState
from vidpipe.ui import UI, Col, Role, size_text

if TYPE_CHECKING:
    from vidpipe.download import DownloadResult
    from vidpipe.targets import Target

PLAIN_EVERY = 10.0


def _waiting_text(target: Target, status: str | None, seconds: float) -> str:
    if status == "ready":
        return f"{target}: the original is ready ({seconds:.0f} s)"
    return f"{target}: Mux is preparing the original ({status or 'asked'}, {seconds:.0f} s)"


class _DownloadView(ExportObserver):
    """One download: the wait, then the bytes (through `UI.progress`)."""

    def __init__(self, ui: UI, bytes_progress: Callable[[int, int], None]) -> None:
        self.ui = ui
        self.bytes_progress = bytes_progress
        self.status: Any = None
        self.last_wait = -PLAIN_EVERY
        self.last_status: str | None = None

    def waiting(self, target: Target, status: str | None, seconds: float) -> None:
        text = _waiting_text(target, status, seconds)
        if self.ui.err.is_terminal:
            if self.status is None:
                self.status = self.ui.err.status(text)
                self.status.start()
            else:
                self.status.update(text)
            return
        if self.ui.json_mode:
            return
        now = time.monotonic()
        if status != self.last_status or now - self.last_wait >= PLAIN_EVERY:
            self.last_wait, self.last_status = now, status
            self.ui.message(text)

    def progress(self, target: Target, done: int, total: int) -> None:
        self.close()
        self.bytes_progress(done, total)

    def close(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None


@contextmanager
def download_progress(ui: UI, label: str) -> Iterator[ExportObserver]:
    """The observer of one download: a wait line, then a byte bar labelled `label`."""
    with ui.progress(label) as bar:
        view = _DownloadView(ui, bar)
        try:
            yield view
        finally:
            view.close()


def render_download(ui: UI, result: DownloadResult) -> None:
    for warning in result.warnings or []:
        ui.warn(warning)
    if ui.json_mode:
        ui.json(result.as_json())
        return
    fetched = result.fetched
    if fetched is not None:
        speed = f" ({size_text(fetched.received / fetched.seconds)}/s)" if fetched.seconds else ""
        notes = []
        if fetched.start_offset:
            notes.append(f"resumed at {fetched.start_offset:,} bytes")
        if fetched.restarts:
            notes.append(f"started over {fetched.restarts}x (the source changed)")
        retries = {0: "no retries", 1: "1 retry"}.get(fetched.retries, f"{fetched.retries} retries")
        notes.append(retries)
        ui.message(
            f"received {size_text(fetched.received)} in {fetched.seconds:.1f} s{speed}, "
            + ", ".join(notes)
        )
    ui.line(f"{result.target}: asset {result.asset_id}: {result.bytes:,} bytes -> {result.path}")


# -- export ---------------------------------------------------------------------------------------


class _ExportTotals(ExportObserver):
    """Counts items and bytes; shows nothing (--json off a terminal)."""

    def __init__(self, ui: UI) -> None:
        self.ui = ui
        self.lock = threading.Lock()
        self.total_items = 0
        self.ended = 0
        self.done: dict[Target, int] = {}
        self.sizes: dict[Target, int] = {}
        self.started_at = time.monotonic()

    @property
    def bytes_done(self) -> int:
        return sum(self.done.values())

    def planned(self, total: int, skipped: int) -> None:
        with self.lock:
            self.total_items, self.ended = total, skipped

    def progress(self, target: Target, done: int, total: int) -> None:
        with self.lock:
            self.done[target], self.sizes[target] = done, total

    def finished(self, item: ExportItem) -> None:
        with self.lock:
            self.ended += 1

    def close(self) -> None:
        pass

    def totals(self) -> str:
        elapsed = max(time.monotonic() - self.started_at, 1e-6)
        done = self.bytes_done
        return (
            f"export: {self.ended}/{self.total_items} items, {size_text(done)} of "
            f"{size_text(sum(self.sizes.values()))} known ({size_text(done / elapsed)}/s)"
        )


class _PlainExport(_ExportTotals):
    def __init__(self, ui: UI) -> None:
        super().__init__(ui)
        self.last = self.started_at
        self.waits: dict[Target, str | None] = {}

    def started(self, item: ExportItem) -> None:
        self.ui.message(f"{item.target}: asset {item.asset_id}: started")

    def waiting(self, target: Target, status: str | None, seconds: float) -> None:
        with self.lock:
            if self.waits.get(target, "") == status:
                return
            self.waits[target] = status
        self.ui.message(_waiting_text(target, status, seconds))

    def progress(self, target: Target, done: int, total: int) -> None:
        super().progress(target, done, total)
        now = time.monotonic()
        with self.lock:
            if now - self.last < PLAIN_EVERY:
                return
            self.last = now
        self.ui.message(self.totals())

    def finished(self, item: ExportItem) -> None:
        super().finished(item)
        text = f"{item.target}: {item.state.value}"
        self.ui.message(text + (f": {item.error}" if item.error else ""))


class _RichExport(_ExportTotals):
    def __init__(self, ui: UI) -> None:
        super().__init__(ui)
        self.bar = ui.byte_bar(transient=False)
        self.overall = self.bar.add_task("export", total=None, style="bold")
        self.tasks: dict[Target, Any] = {}
        self.bar.start()

    def _describe(self) -> str:
        return f"{self.ended}/{self.total_items} items"

    def planned(self, total: int, skipped: int) -> None:
        super().planned(total, skipped)
        self.bar.update(self.overall, description=self._describe())

    def started(self, item: ExportItem) -> None:
        with self.lock:
            self.tasks[item.target] = self.bar.add_task(
                f"  {item.target}: waiting for Mux", total=None
            )

    def progress(self, target: Target, done: int, total: int) -> None:
        super().progress(target, done, total)
        with self.lock:
            task = self.tasks.get(target)
        if task is not None:
            self.bar.update(task, completed=done, total=total, description=f"  {target}")
        self.bar.update(
            self.overall, completed=self.bytes_done, total=sum(self.sizes.values()) or None
        )

    def finished(self, item: ExportItem) -> None:
        super().finished(item)
        with self.lock:
            task = self.tasks.pop(item.target, None)
        if task is not None:
            with suppress(KeyError):
                self.bar.remove_task(task)
        if item.state is ExportState.FAILED:
            self.bar.console.print(f"{item.target}: failed: {item.error}", markup=False)
        self.bar.update(self.overall, description=self._describe())

    def close(self) -> None:
        self.bar.stop()


@contextmanager
def export_progress(ui: UI) -> Iterator[ExportObserver]:
    """How an export shows its progress (see the module docstring)."""
    if ui.err.is_terminal:
        observer: _ExportTotals = _RichExport(ui)
    elif ui.json_mode:
        observer = _ExportTotals(ui)
    else:
        observer = _PlainExport(ui)
    try:
        yield observer
    finally:
        observer.close()


def render_export(ui: UI, report: ExportReport) -> None:
    if ui.json_mode:
        ui.json(report.as_json())
        return
    for item in report.items:
        for warning in item.warnings:
            ui.warn(f"{item.target}: {warning}")
    columns = [
        Col("Target"),
        Col("Asset", Role.ID),
        Col("File"),
        Col("Bytes"),
        Col("State"),
        Col("Error", Role.TEXT),
    ]
    rows: list[tuple[Any, ...]] = [
        (str(i.target), i.asset_id, i.path.name, f"{i.bytes:,}", i.state.value, i.error)
        for i in report.items
    ]
    if not any(i.error for i in report.items):
        columns, rows = columns[:-1], [row[:-1] for row in rows]
    ui.table("vidpipe export", columns, rows)
    parts = [f"{report.count(s)} {s.value}" for s in ExportState if report.count(s)]
    count = len(report.items)
    ui.line(
        f"export: {count} item{'s' if count != 1 else ''}: {', '.join(parts) or 'nothing to do'}"
        f" in {report.seconds:.1f} s ({report.api_calls} API calls); manifest {report.manifest}"
    )
