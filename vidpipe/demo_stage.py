"""The stage `vidpipe demo` plays on: its folder, settings, the emulator, and its narrator.

`DemoStage.do` runs one real command line (through the runner the CLI hands the demo), shows it
as a user would type it with its exit code, and stops the demo with a VidpipeError naming
the step when the exit code is not the expected one. The `Narrator` speaks rich on a
terminal and plain lines anywhere else (a pipe, a file, CI), with no ANSI codes there;
`NO_COLOR` is respected. Text the demo did not write (commands' paths, a server's log) is
shown as text, never as markup.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from vidpipe.errors import UsageError, VidpipeError
from vidpipe.text import rich_text, shown_lines

if TYPE_CHECKING:
    from vidpipe.emulator import Emulator

RunStep = Callable[[list[str], dict[str, Any]], int]
"""Runs one command line (`argv` after `vidpipe`) with the given settings; returns its exit
code. The CLI hands the demo its own entry point as this."""

DB_FILE = "platform.db"


@dataclass(frozen=True)
class DemoStep:
    """One real command of the demo, the exit code it must end with, and what is shown
    before `vidpipe` (settings given on the command line, e.g. another token)."""

    argv: tuple[str, ...]
    expect: int = 0
    prefix: str = ""

    @property
    def shown(self) -> str:
        return f"{self.prefix + ' ' if self.prefix else ''}vidpipe {' '.join(self.argv)}"


class Narrator:
    """The demo's own words: rich rules and panels on a terminal, plain lines elsewhere.

    Goes to stdout, like the commands' results; the commands' messages and progress go to
    stderr as usual. Everything is flushed at once so the two interleave correctly in a log.
    """

    def __init__(self) -> None:
        self.console = Console(
            file=sys.stdout, highlight=False, soft_wrap=False, no_color="NO_COLOR" in os.environ
        )
        self.rich = self.console.is_terminal

    def _plain(self, text: str = "") -> None:
        print(shown_lines(text), flush=True)

    def intro(self, lines: Sequence[str]) -> None:
        if self.rich:
            from rich.panel import Panel

            self.console.print(
                Panel(rich_text("\n".join(lines)), title="[bold]vidpipe demo", border_style="cyan")
            )
        else:
            self._plain("vidpipe demo")
            self._plain("============")
            for line in lines:
                self._plain(line)

    def chapter(self, title: str, text: str) -> None:
        """A new part of the story: what is about to happen and why it matters."""
        if self.rich:
            from rich.rule import Rule
            from rich.text import Text

            self.console.print()
            self.console.print(Rule(Text(title, style="bold"), style="cyan", align="left"))
            self.console.print(text, markup=False, style="dim")
        else:
            self._plain()
            self._plain(f"== {title}")
            self._plain(text)

    def command(self, step: DemoStep, *, background: bool = False) -> None:
        shown = step.shown + (" &" if background else "")
        if self.rich:
            from rich.text import Text

            self.console.print()
            # The command line holds paths (the folder given with --dir): text, not markup.
            self.console.print(Text.assemble(("$ ", "bold green"), rich_text(shown, "bold")))
        else:
            self._plain()
            self._plain(f"$ {shown}")
        sys.stderr.flush()

    def exit_code(self, code: int, expected_note: str) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        text = f"exit {code}" + (f" ({expected_note})" if expected_note else "")
        if self.rich:
            self.console.print(text, style="yellow" if code else "dim", markup=False)
        else:
            self._plain(text)

    def note(self, text: str) -> None:
        if self.rich:
            from rich.text import Text

            self.console.print(Text.assemble((">", "magenta"), " ", rich_text(text)))
        else:
            self._plain(f"> {text}")

    def quote(self, lines: Iterable[str], source: str) -> None:
        """Lines another process wrote (a server's log), marked as such."""
        for line in lines:
            if self.rich:
                from rich.text import Text

                self.console.print(Text.assemble((f"{source}| ", "dim"), rich_text(line)))
            else:
                self._plain(f"{source}| {line}")

    def summary(self, shown: Sequence[str], next_steps: Sequence[str], elapsed: float) -> None:
        title = f"Done in {elapsed:.1f} s"
        if self.rich:
            from rich.console import Group, RenderableType
            from rich.panel import Panel
            from rich.table import Table
            from rich.text import Text

            parts: list[RenderableType] = []
            for heading, items in (("What you saw", shown), ("Next", next_steps)):
                # A grid gives wrapped bullet text a hanging indent.
                grid = Table.grid(padding=(0, 1))
                grid.add_column(width=3, justify="right")
                grid.add_column(ratio=1)
                for item in items:
                    grid.add_row("•", Text(item))
                parts += [Text(heading, style="bold"), grid, Text("")]
            body = Group(*parts[:-1])
            self.console.print()
            self.console.print(Panel(body, title=f"[bold]{title}", border_style="green"))
        else:
            self._plain()
            self._plain(f"== {title}")
            self._plain("What you saw:")
            for item in shown:
                self._plain(f"  - {item}")
            self._plain("Next:")
            for item in next_steps:
                self._plain(f"  - {item}")


@dataclass
class DemoStage:
    """One run of the demo: where it works, the settings its commands get, the emulator
    (one Mux environment), and what to stop when it ends (`cleanups`)."""

    workdir: Path
    run: RunStep
    say: Narrator
    emulator: Emulator
    settings: dict[str, Any]
    cleanups: ExitStack = field(default_factory=ExitStack)
    chapters: int = 0

    @property
    def database_url(self) -> str:
        return str(self.settings["database_url"])

    def path(self, name: str) -> str:
        return str(self.workdir / name)

    def chapter(self, title: str, text: str) -> None:
        self.chapters += 1
        self.say.chapter(f"{self.chapters}. {title}", text)

    def note(self, text: str) -> None:
        self.say.note(text)

    def do(
        self,
        *argv: str,
        expect: int = 0,
        note: str = "",
        settings: dict[str, Any] | None = None,
        prefix: str = "",
    ) -> None:
        """Run `vidpipe ARGV...` as shown; a code other than `expect` stops the demo."""
        step = DemoStep(tuple(argv), expect, prefix)
        self.say.command(step)
        code = self.run(list(step.argv), self.settings if settings is None else settings)
        self.say.exit_code(code, note if code == step.expect else "")
        if code != step.expect:
            raise VidpipeError(
                f"demo step `{step.shown}` exited {code}, expected {step.expect}"
                " (its error is above)"
            )

    def rows(self) -> list[tuple[object, ...]]:
        """Every platform row's video columns: what "nothing changed" is checked on."""
        from sqlalchemy import select

        from vidpipe.db import Lesson, World, make_engine, transaction

        engine = make_engine(self.database_url)
        try:
            with transaction(engine) as conn:
                lessons = conn.execute(
                    select(Lesson.id, Lesson.mux_asset_id, Lesson.mux_playback_id)  # type: ignore[call-overload]
                ).all()
                courses = conn.execute(
                    select(World.id, World.mux_preview_asset_id, World.mux_preview_playback_id)  # type: ignore[call-overload]
                ).all()
        finally:
            engine.dispose()
        return sorted([("lesson", *r) for r in lessons] + [("course", *r) for r in courses])

    def recorded(self, kind: str, row_id: int) -> tuple[str | None, str | None]:
        """(asset ID, playback ID) a row records."""
        for row in self.rows():
            if row[0] == kind and row[1] == row_id:
                return row[2], row[3]  # type: ignore[return-value]
        raise VidpipeError(f"demo: no {kind} {row_id}")


def demo_files(workdir: Path, names: Iterable[str]) -> Iterator[Path]:
    """The files an earlier demo run may have left in `workdir` (and nothing else): `names`,
    and the database's SQLite and lock companions."""
    for name in names:
        yield workdir / name
    yield workdir / DB_FILE
    for suffix in ("-journal", "-wal", "-shm"):
        yield workdir / f"{DB_FILE}{suffix}"
    yield from workdir.glob(f"{DB_FILE}.vidpipe-*.lock")


def prepare_dir(directory: Path, names: Iterable[str]) -> Path:
    """Create `directory` if needed and clear the demo's own files from an earlier run."""
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"--dir {directory}: exists and is not a folder")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for path in list(demo_files(directory, names)):
            path.unlink(missing_ok=True)
    except OSError as exc:
        raise UsageError(f"--dir {directory}: cannot use it ({exc.strerror})") from None
    return directory.resolve()


def add_platform_rows(
    database_url: str, lessons: Iterable[tuple[int, str]], course: tuple[int, str]
) -> None:
    """The platform's own content: what a course site would already have before vidpipe."""
    from sqlmodel import Session

    from vidpipe.db import Lesson, World, make_engine

    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            for lesson_id, title in lessons:
                session.add(Lesson(id=lesson_id, title=title))
            session.add(World(id=course[0], title=course[1]))
            session.commit()
    finally:
        engine.dispose()
