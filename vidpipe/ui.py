"""Terminal output: rich on a terminal, plain lines elsewhere, one JSON document with --json.

Only the CLI uses this module; the core never prints. Everything it prints passes through
`vidpipe.text`: control characters are written as escapes (`\\x1b`) and markup is never
interpreted (rich `Text` objects, `markup=False`), so text vidpipe did not write cannot
drive the terminal however it reaches here. Callers still pass each foreign value through
`vidpipe.text.shown` (which escapes its line breaks too) where they format it into a line.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import IO, TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.console import Console

from vidpipe.text import rich_text, shown, shown_lines

if TYPE_CHECKING:
    from rich.console import ConsoleOptions, RenderResult
    from rich.progress import Progress, ProgressColumn, Task
    from rich.text import Text

    from vidpipe.progress import Event
    from vidpipe.transfer import TransferResult


def _console(file: IO[str]) -> Console:
    return Console(file=file, highlight=False, soft_wrap=True, no_color="NO_COLOR" in os.environ)


class Role(Enum):
    """How a column behaves when the terminal is narrow."""

    KEY = "key"
    """Short values read as one word (kind, target, status): never wrapped, never cut."""
    ID = "id"
    """Mux IDs: shortened with an ellipsis when space is short (full with `wide`)."""
    TEXT = "text"
    """Prose. The last column wraps at word boundaries; an earlier text column keeps its own
    column while there is room, and otherwise becomes a line of the last column's cell."""


@dataclass(frozen=True)
class Col:
    """A table column: its heading, its role, and the prefix its values take when folded
    into the last column (default `heading: `)."""

    name: str
    role: Role = Role.KEY
    label: str | None = None

    @property
    def fold_label(self) -> str:
        return f"{self.name.lower()}: " if self.label is None else self.label


SHORT_ID = 12
"""Characters an ID keeps when shortened (then an ellipsis)."""
LAST_MIN = 20
"""Below this many columns for the last (wrapping) column, a table becomes a list."""
_GAP = 3  # between two columns: padding, divider, padding
_LONG_ID = re.compile(r"\b[A-Za-z0-9]{24,}\b")


def short_id(value: str) -> str:
    """`QrikEQpEXp3R…` for a long ID; short values unchanged."""
    return value if len(value) <= SHORT_ID + 1 else value[:SHORT_ID] + "…"


def _short_ids_in(text: str) -> str:
    return _LONG_ID.sub(lambda m: short_id(m.group(0)), text)


@dataclass(frozen=True)
class _Layout:
    """One way to lay a table out: full or shortened IDs, earlier text columns kept as
    columns or folded into the last one."""

    short: bool
    fold: bool


class UI:
    """Where output goes. stdout carries results; stderr carries messages and progress.

    `out` and `err` are the consoles (default: stdout and stderr); tests pass consoles of a
    given width. `wide` keeps full IDs in terminal tables."""

    def __init__(
        self,
        *,
        json_mode: bool = False,
        out: Console | None = None,
        err: Console | None = None,
        wide: bool = False,
    ) -> None:
        self.json_mode = json_mode
        self.wide = wide
        self.out = out or _console(sys.stdout)
        self.err = err or _console(sys.stderr)

    @property
    def rich(self) -> bool:
        """Rich rendering (tables, colour) only on a terminal and never with --json."""
        return self.out.is_terminal and not self.json_mode

    def message(self, text: str, *, style: str = "") -> None:
        """A message for the user: stderr, so stdout stays clean for results and JSON."""
        if self.err.is_terminal:
            self.err.print(rich_text(text, style))
        else:
            print(shown_lines(text), file=self.err.file, flush=True)

    def notice(self, text: str) -> None:
        """A one-line note from the core (it may quote file names and Mux's words): the
        whole of it `shown`, so nothing in it can start a line of its own."""
        self.message(shown(text))

    def warn(self, text: str) -> None:
        self.message(f"warning: {text}", style="yellow")

    def error(self, text: str) -> None:
        self.message(f"error: {text}", style="bold red")

    def line(self, text: str = "") -> None:
        """A plain result line on stdout (not in --json mode)."""
        if self.json_mode:
            return
        if self.out.is_terminal:
            # Wrapped at word boundaries (the terminal would cut words, IDs included).
            self.out.print(rich_text(text), soft_wrap=False)
        else:
            print(shown_lines(text), file=self.out.file, flush=True)

    def json(self, doc: Any) -> None:
        self.out.file.write(json.dumps(doc, indent=2, sort_keys=False, default=str) + "\n")
        self.out.file.flush()

    def table(
        self, title: str, columns: Sequence[str | Col], rows: Sequence[Sequence[Any]]
    ) -> None:
        """A table that fits the terminal; tab-free plain lines `col=value ...` (every value
        whole) otherwise. Columns are `Col`s (a plain name is a key column, or a text column
        for the prose headings in `_WRAPPING`)."""
        if self.json_mode:
            return
        cols = [c if isinstance(c, Col) else _legacy(c) for c in columns]
        if self.rich:
            # Each cell is one value: its line breaks too are escaped (the layout adds its own).
            cells = [[shown(v) for v in row] for row in rows]
            self._fitted(title, cols, cells)
            return
        for row in rows:
            parts = [
                f"{c.name.lower().replace(' ', '_')}={_plain(v)}"
                for c, v in zip(cols, row, strict=False)
            ]
            print(" ".join(parts), file=self.out.file, flush=True)

    def _fitted(self, title: str, cols: list[Col], rows: list[list[str]]) -> None:
        """A rich table laid out for the console's width, or a list when no table fits."""
        from rich import box
        from rich.table import Table

        # Earlier text columns with nothing in them are left out.
        keep = [
            i
            for i, c in enumerate(cols)
            if i == len(cols) - 1 or c.role is not Role.TEXT or any(r[i] for r in rows)
        ]
        cols = [cols[i] for i in keep]
        rows = [[r[i] for i in keep] for r in rows]
        fitted = self._layout(cols, rows)
        if fitted is None:
            self._as_list(title, cols, rows)
            return
        shown, cells, widths = fitted
        table = Table(
            title=rich_text(title),
            title_justify="left",
            box=box.SIMPLE_HEAD,
            show_edge=False,
            pad_edge=False,
        )
        for i, col in enumerate(shown):
            last = i == len(shown) - 1
            table.add_column(
                col.name,
                width=widths[i],
                no_wrap=not (last and col.role is Role.TEXT),
                overflow="fold" if last else "ellipsis",
            )
        for row in cells:
            table.add_row(*(rich_text(cell) for cell in row))
        self.out.print(table)

    def _layout(
        self, cols: list[Col], rows: list[list[str]]
    ) -> tuple[list[Col], list[list[str]], list[int]] | None:
        """The first layout whose last column gets enough room: full IDs with every column
        (the last on one line), then shortened IDs, then earlier text folded into the last
        column. None: no table fits (`wide` never shortens IDs)."""
        width = self.out.width
        # (layout, room the last column needs: None = all of it, on one line; else at least
        # this much, or all of it when it is shorter)
        attempts: list[tuple[_Layout, int | None]] = [
            (_Layout(short=False, fold=False), None),
            (_Layout(short=True, fold=False), 30),
            (_Layout(short=True, fold=True), LAST_MIN),
        ]
        if self.wide:
            attempts = [(_Layout(False, False), 30), (_Layout(False, True), LAST_MIN)]
        for layout, want in attempts:
            shown, cells = _arrange(cols, rows, layout)
            natural = [
                max([cell_len(c.name)] + [_longest_line(r[i]) for r in cells])
                for i, c in enumerate(shown)
            ]
            room = width - sum(natural[:-1]) - _GAP * (len(shown) - 1)
            need = natural[-1]
            if want is not None and shown[-1].role is Role.TEXT:
                need = min(need, want)
            if room >= need:
                return shown, cells, [*natural[:-1], min(room, natural[-1])]
        return None

    def _as_list(self, title: str, cols: list[Col], rows: list[list[str]]) -> None:
        """Each row as a block: its key values on one line, then one indented line per other
        value (wrapped at word boundaries). For terminals too narrow for a table."""
        from rich.table import Table

        self.out.print(rich_text(title, "italic"))
        keys = [i for i, c in enumerate(cols) if c.role is Role.KEY]
        others = [i for i in range(len(cols)) if i not in keys]
        label = max((len(cols[i].name) for i in others), default=0)
        for row in rows:
            head = "  ".join(row[i] for i in keys if row[i])
            self.out.print(rich_text(head, "bold"), overflow="fold", soft_wrap=False)
            grid = Table.grid(padding=(0, 1))
            grid.add_column(width=label + 2, no_wrap=True)
            grid.add_column(overflow="fold")
            for i in others:
                if row[i]:
                    grid.add_row(rich_text("  " + cols[i].name.lower()), rich_text(row[i]))
            if grid.row_count:
                self.out.print(grid)

    @contextmanager
    def walk(self, title: str) -> Iterator[Callable[[Event], None]]:
        """A progress callback for a long walk (`vidpipe.progress` events): on a terminal, one
        live line on stderr (the step and its count, API calls, waits for the rate limit,
        time so far) that disappears when the walk ends, however it ends. Off a terminal the
        events are dropped: plain and JSON output stay as they are."""
        if not self.err.is_terminal:
            yield _walk_drop
            return
        from rich.live import Live

        view = _WalkView(title)
        live = Live(
            view,
            console=self.err,
            transient=True,
            refresh_per_second=8,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        live.start()
        try:
            yield view.update
        finally:
            live.stop()

    def byte_bar(self, *, transient: bool, style: str = "") -> Progress:
        """A rich bar of bytes on stderr (not started): each task's description (as text in
        `style`, or the task's own `style` field; never markup), the bar, bytes done of
        total, speed, time left."""
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        return Progress(
            _description_column(style),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self.err,
            transient=transient,
        )

    @contextmanager
    def progress(self, description: str) -> Iterator[Callable[[int, int], None]]:
        """A byte progress callback `(done, total)`: a rich bar on a terminal (stderr),
        plain periodic lines otherwise (every 10% or 10 s), nothing in --json off a terminal.
        The bar starts on the first call, when the total is known, and stops when done."""
        if self.err.is_terminal:
            bar = self.byte_bar(transient=True, style="bold")
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
                    f"{shown_lines(description)}: {done:,} / {total_:,} bytes ({pct}%)",
                    file=sys.stderr,
                    flush=True,
                )

        yield plain


class _WalkView:
    """The live line of a walk, redrawn by rich from the latest events."""

    def __init__(self, title: str, clock: Callable[[], float] = time.monotonic) -> None:
        from rich.spinner import Spinner

        self.title = title
        self.clock = clock
        self.started = clock()
        self.spinner = Spinner("dots")
        self.step = ""
        self.done = 0
        self.total: int | None = None
        self.calls = 0
        self._base: int | None = None
        self.wait_until = 0.0
        self.wait_note = ""
        self.step_started = self.started

    def update(self, event: Event) -> None:
        from vidpipe.progress import ApiCall, StepProgress, Waiting

        if isinstance(event, StepProgress):
            if event.step.value != self.step:
                self.step_started = self.clock()
            self.step, self.done, self.total = event.step.value, event.done, event.total
        elif isinstance(event, ApiCall):
            if self._base is None:
                self._base = event.calls - 1
            self.calls = event.calls - self._base
        elif isinstance(event, Waiting):
            self.wait_until = max(self.wait_until, self.clock() + event.seconds)
            if event.rate_limited:
                self.wait_note = "Mux answered 429"
            elif event.retry:
                self.wait_note = "retrying"
            else:
                self.wait_note = ""

    def parts(self) -> list[str]:
        """The line's parts, most important first after the title."""
        now = self.clock()
        parts = [self.title]
        if self.step:
            count = f"{self.done:,}" + (f" of {self.total:,}" if self.total is not None else "")
            parts.append(f"{self.step}: {count}" if self.done or self.total else self.step)
            if self.total and 0 < self.done < self.total:
                # The pace so far in this step (paced by Mux's rate limit, so steady).
                eta = int((now - self.step_started) / self.done * (self.total - self.done))
                parts.append(f"ETA {eta // 60}:{eta % 60:02d}")
        parts.append(f"{self.calls:,} API call{'' if self.calls == 1 else 's'}")
        # Pacing sleeps are short and frequent: hold the note half a second so it reads.
        if now < self.wait_until + 0.5:
            note = "waiting for the rate limit"
            left = self.wait_until - now
            if self.wait_note:
                note += f" ({self.wait_note}, {max(left, 0):.0f} s)"
            parts.append(note)
        elapsed = int(now - self.started)
        parts.append(f"{elapsed // 60}:{elapsed % 60:02d}")
        return parts

    def text(self, width: int = 10_000) -> str:
        """The line, within `width` columns: the time, then the title, go first."""
        parts = self.parts()
        line = " · ".join(parts)
        if cell_len(line) > width:
            parts = parts[:-1]
            line = " · ".join(parts)
        if cell_len(line) > width:
            line = " · ".join(parts[1:])
        return line

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.table import Table

        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True)
        grid.add_column(no_wrap=True, overflow="ellipsis")
        grid.add_row(self.spinner, rich_text(self.text(options.max_width - 2)))
        yield grid


def _walk_drop(_event: Event) -> None:
    pass


def _description_column(style: str) -> ProgressColumn:
    """A progress column showing each task's description as text (never markup). Built on
    first use: rich.progress is imported only when a bar is shown."""
    from rich.progress import ProgressColumn

    class DescriptionColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            return rich_text(task.description, task.fields.get("style", style))

    return DescriptionColumn()


_WRAPPING = {"Title", "Detail", "Action", "Upload", "Shared with", "Notes", "Mux"}


def _legacy(name: str) -> Col:
    return Col(name, Role.TEXT if name in _WRAPPING else Role.KEY)


def _arrange(
    cols: list[Col], rows: list[list[str]], layout: _Layout
) -> tuple[list[Col], list[list[str]]]:
    """The columns shown and their cells under `layout`."""
    cells = []
    for row in rows:
        new = []
        for col, value in zip(cols, row, strict=True):
            if layout.short and col.role is Role.ID:
                value = short_id(value)
            elif layout.short and col.role is Role.TEXT:
                value = _short_ids_in(value)
            new.append(value)
        cells.append(new)
    last = len(cols) - 1
    if not layout.fold or cols[last].role is not Role.TEXT:
        return cols, cells
    folded = [i for i, c in enumerate(cols) if i != last and c.role is Role.TEXT]
    shown = [c for i, c in enumerate(cols) if i not in folded]
    out = []
    for row in cells:
        extra = [cols[i].fold_label + row[i] for i in folded if row[i]]
        out.append([v for i, v in enumerate(row) if i not in folded and i != last])
        out[-1].append("\n".join([row[last], *extra]) if row[last] else "\n".join(extra))
    return shown, out


def _longest_line(text: str) -> int:
    return max((cell_len(line) for line in text.split("\n")), default=0)


def _plain(value: Any) -> str:
    """A `key=value` value: `-` when empty, JSON-quoted when it holds spaces or quotes, its
    control characters escaped either way."""
    if value is None or value == "":
        return "-"
    text = str(value)
    return shown(json.dumps(text) if any(c.isspace() for c in text) or '"' in text else text)


def size_text(n: float) -> str:
    """A byte count for people: "512 B", "3.2 MiB", "1.0 GiB"."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def transfer_summary(result: TransferResult) -> str:
    """One line on what an upload's transfer did: "sent 1.0 GiB in 3.2 s (320.0 MiB/s),
    4 requests, no retries"."""
    sent, seconds = result.bytes_sent, result.seconds
    speed = f" ({size_text(sent / seconds)}/s)" if seconds > 0 and sent else ""
    requests = f"{result.requests} request{'' if result.requests == 1 else 's'}"
    again = {0: "no retries", 1: "1 retry"}.get(result.retries, f"{result.retries} retries")
    return f"sent {size_text(sent)} in {seconds:.1f} s{speed}, {requests}, {again}"
