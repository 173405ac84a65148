"""`vidpipe demo`: the whole job on a fresh machine, with no Mux account and no network.

The demo sets up a throwaway world and then runs the *real* commands, in-process through
`vidpipe.cli.run`, each announced as the line a user would type:

1. a SQLite platform database (`platform.db`, created by `vidpipe db init`) holding two
   lessons and a course, the built-in Mux emulator on a free loopback port, and a generated
   sample video (`sample.mp4`, no download);
2. `upload` for lesson 1 (with its progress bar) and for course 1's preview, `status`, and a
   clean `verify`;
3. drift made behind the database's back: lesson 1's asset deleted on "Mux" with no webhook,
   and a ready asset for lesson 2 whose `video.asset.ready` webhook never arrived. `verify`
   finds both (exit 1, expected), `sync` repairs the database, `verify` is clean again, and
   lesson 1 gets its video back with one more `upload`;
4. a summary of what was shown and where to go next.

Where it works: a temporary folder, removed afterwards; or `--dir DIR`, created if missing and
kept afterwards so the database can be inspected. In a `--dir` that already holds an earlier
demo, only the files the demo itself creates are replaced (`platform.db` and its SQLite/lock
companions, `sample.mp4`); nothing else in the folder is touched, so pointing `--dir` at a
folder with other files in it is safe.

The child commands are handed their settings (`MUX_BASE_URL` of the emulator, demo token values,
`DATABASE_URL` of the demo database) by the caller's runner, read no `.env`, and leave the
process environment and working directory alone. A step whose exit code is not the expected
one stops the demo with a VidpipeError naming the step.

Output: on a terminal, rich rules, panels and the commands' own tables and progress bar;
anywhere else (a pipe, a file, CI), plain lines with no ANSI codes. `NO_COLOR` is respected.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from vidpipe.errors import UsageError, VidpipeError
from vidpipe.samples import write_sample_video
from vidpipe.text import rich_text, shown_lines

RunStep = Callable[[list[str], dict[str, Any]], int]
"""Runs one command line (`argv` after `vidpipe`) with the given settings; returns its exit
code. The CLI hands the demo its own entry point as this."""

DB_FILE = "platform.db"
VIDEO_FILE = "sample.mp4"
VIDEO_SIZE = 16 * 1024 * 1024
"""Big enough for the progress bar to be seen moving, small enough to stay well under a second
per upload on loopback."""
CHUNK_SIZE = "1MiB"
"""Small chunks so the progress bar advances in visible steps (16 PUTs per upload)."""
CHUNK_DELAY = 0.05
"""Seconds the emulator pauses before taking each upload PUT (about 1 s per upload)."""
READY_AFTER = 1.5
"""Seconds the emulator keeps an asset `preparing`: long enough that the wait is visible."""

DEMO_TOKEN_ID = "demo-token-id"
DEMO_TOKEN_SECRET = "demo-token-secret"  # the emulator accepts any non-empty pair

LESSONS = ((1, "Intro to Knots"), (2, "The Bowline, Step by Step"))
COURSE = (1, "Knots for Sailors")


@dataclass(frozen=True)
class DemoStep:
    """One real command of the demo, and the exit code it must end with."""

    argv: tuple[str, ...]
    expect: int = 0

    @property
    def shown(self) -> str:
        return "vidpipe " + " ".join(self.argv)


# -- output ------------------------------------------------------------------------------------


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

    def intro(self, workdir: Path, base_url: str) -> None:
        lines = [
            "A local platform database, the built-in Mux emulator and a generated video:",
            "no Mux account, no network. Every command below is the real vidpipe command.",
            "",
            f"folder    {workdir}",
            f"database  DATABASE_URL=sqlite:///{workdir / DB_FILE}",
            f"Mux       MUX_BASE_URL={base_url}",
            f"          (the emulator; uploads paced, assets ready {READY_AFTER:g} s after upload)",
            f"video     {VIDEO_FILE} ({VIDEO_SIZE // (1024 * 1024)} MiB MP4, generated)",
        ]
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

            self.console.print()
            self.console.print(Rule(f"[bold]{title}", style="cyan", align="left"))
            self.console.print(text, markup=False, style="dim")
        else:
            self._plain()
            self._plain(f"== {title}")
            self._plain(text)

    def command(self, step: DemoStep) -> None:
        if self.rich:
            self.console.print()
            from rich.text import Text

            # The command line holds paths (the folder given with --dir): text, not markup.
            self.console.print(Text.assemble(("$ ", "bold green"), rich_text(step.shown, "bold")))
        else:
            self._plain()
            self._plain(f"$ {step.shown}")
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


# -- set-up ------------------------------------------------------------------------------------


def _demo_files(workdir: Path) -> Iterator[Path]:
    """The files an earlier demo run may have left in `workdir` (and nothing else)."""
    yield workdir / VIDEO_FILE
    yield workdir / DB_FILE
    for suffix in ("-journal", "-wal", "-shm"):
        yield workdir / f"{DB_FILE}{suffix}"
    yield from workdir.glob(f"{DB_FILE}.vidpipe-*.lock")


def _prepare_dir(directory: Path) -> Path:
    """Create `directory` if needed and clear the demo's own files from an earlier run."""
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"--dir {directory}: exists and is not a folder")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for path in list(_demo_files(directory)):
            path.unlink(missing_ok=True)
    except OSError as exc:
        raise UsageError(f"--dir {directory}: cannot use it ({exc.strerror})") from None
    return directory.resolve()


def _add_platform_rows(database_url: str) -> None:
    """The platform's own content: what a course site would already have before vidpipe."""
    from sqlmodel import Session

    from vidpipe.db import Lesson, World, make_engine

    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            for lesson_id, title in LESSONS:
                session.add(Lesson(id=lesson_id, title=title))
            session.add(World(id=COURSE[0], title=COURSE[1]))
            session.commit()
    finally:
        engine.dispose()


def _lesson_asset(database_url: str, lesson_id: int) -> str:
    """The asset ID the database records for a lesson (the demo just uploaded it)."""
    from sqlmodel import Session

    from vidpipe.db import Lesson, make_engine

    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            row = session.get(Lesson, lesson_id)
    finally:
        engine.dispose()
    if row is None or not row.mux_asset_id:
        raise VidpipeError(f"demo: lesson {lesson_id} records no asset after its upload")
    return row.mux_asset_id


# -- the demo ----------------------------------------------------------------------------------


def run_demo(directory: Path | None, run: RunStep) -> None:
    """Run the demo in `directory` (created if missing, kept) or in a temporary folder
    (removed afterwards), each step through `run`. Raises VidpipeError if a step ends with
    an unexpected exit code."""
    if directory is not None:
        _run_in(_prepare_dir(directory), run)
        return
    with tempfile.TemporaryDirectory(prefix="vidpipe-demo-") as tmp:
        _run_in(Path(tmp).resolve(), run)


def _run_in(workdir: Path, run: RunStep) -> None:
    from vidpipe.emulator import Emulator

    started = time.monotonic()
    say = Narrator()
    database_url = f"sqlite:///{workdir / DB_FILE}"
    settings: dict[str, Any] = {
        "database_url": database_url,
        "mux_token_id": DEMO_TOKEN_ID,
        "mux_token_secret": DEMO_TOKEN_SECRET,
    }

    def do(step: DemoStep, expected_note: str = "") -> None:
        say.command(step)
        code = run(list(step.argv), settings)
        say.exit_code(code, expected_note if code == step.expect else "")
        if code != step.expect:
            raise VidpipeError(
                f"demo step `{step.shown}` exited {code}, expected {step.expect}"
                " (its error is above)"
            )

    upload_args = ("--chunk-size", CHUNK_SIZE)
    emulator = Emulator(ready_after=READY_AFTER)
    base_url = emulator.start()
    # Loopback moves 16 MiB in a blink; a short pause per chunk lets the bar be seen moving,
    # as it would on a real link. Only the emulator is slowed, never vidpipe.
    emulator.inject("PUT", "/upload/", "delay", delay=CHUNK_DELAY, times=1_000_000)
    settings["mux_base_url"] = base_url
    video = str(workdir / VIDEO_FILE)
    try:
        write_sample_video(workdir / VIDEO_FILE, VIDEO_SIZE)
        say.intro(workdir, base_url)

        say.chapter(
            "1. The platform database",
            "vidpipe works on the course platform's own tables (lesson, world). "
            "`db init` creates what is missing; the demo then adds two lessons and a course.",
        )
        do(DemoStep(("db", "init")))
        _add_platform_rows(database_url)
        say.note(
            "added "
            + ", ".join(f'lesson {i} "{t}"' for i, t in LESSONS)
            + f', course {COURSE[0]} "{COURSE[1]}"'
        )

        say.chapter(
            "2. Upload",
            "A resumable, chunked direct upload with byte-level progress; vidpipe then waits "
            "for Mux to finish processing and records the asset and playback IDs on the row.",
        )
        do(DemoStep(("upload", video, "--lesson", "1", *upload_args)))
        do(DemoStep(("upload", video, "--course", "1", *upload_args)))

        say.chapter(
            "3. Status and verify",
            "`status` shows the database and Mux side by side; `verify` compares them "
            "read-only and exits 0 when they agree (cron-friendly).",
        )
        do(DemoStep(("status",)))
        do(DemoStep(("verify",)))

        say.chapter(
            "4. Drift",
            "Real systems drift. Behind the database's back: lesson 1's asset is deleted "
            "on Mux (no webhook), and a video for lesson 2 finishes processing but its "
            "`video.asset.ready` webhook never arrives.",
        )
        lost = _lesson_asset(database_url, 1)
        emulator.delete_asset_silently(lost)
        say.note(f"deleted asset {lost} on Mux; the database still names it for lesson 1")
        # As vidpipe's upload made it (its meta from the row), a webhook short of recorded.
        meta = {"title": dict(LESSONS)[2], "external_id": "lesson:2"}
        seeded = emulator.seed_asset(passthrough=json.dumps({"lesson_id": 2}), meta=meta)
        say.note(f"asset {seeded['id']} is ready on Mux for lesson 2; the database has no idea")
        do(DemoStep(("verify",), expect=1), "expected: verify found drift")

        say.chapter(
            "5. Sync",
            "`sync` makes the database agree with Mux: it clears lesson 1's dead IDs and "
            "records lesson 2's asset. Then `verify` is clean again.",
        )
        do(DemoStep(("sync",)))
        do(DemoStep(("verify",)))

        say.chapter(
            "6. Back to full health",
            "Lesson 1 has no video now, so a plain upload (no --replace) gives it one again.",
        )
        do(DemoStep(("upload", video, "--lesson", "1", *upload_args)))
        do(DemoStep(("status",)))

        say.chapter(
            "7. Keeping existing videos in line",
            "Two years in, every lesson needs English captions and an MP4 download. With "
            "VIDPIPE_CAPTIONS=en and VIDPIPE_STATIC_RENDITIONS=highest set, `verify` names each "
            "asset that lacks them, and `sync --fix-settings` asks Mux for what is missing "
            "(additive, paced at 1 POST/s) with no re-upload.",
        )
        settings.update(vidpipe_captions="en", vidpipe_static_renditions="highest")
        do(DemoStep(("verify",), expect=1), "expected: the assets lack captions and MP4s")
        do(DemoStep(("sync", "--fix-settings", "--dry-run")))
        do(DemoStep(("sync", "--fix-settings")))
        do(DemoStep(("verify",)))
    finally:
        emulator.stop()

    say.summary(
        shown=[
            "db init on a SQLite platform database with two lessons and a course",
            "upload with progress for a lesson and a course preview, waiting until ready",
            "status and a clean verify (exit 0)",
            "drift (a deleted asset, a missed webhook) found by verify (exit 1)",
            "sync repairing it, verify clean again, and a re-upload",
            "captions and MP4 renditions added to existing videos (sync --fix-settings)",
        ],
        next_steps=[
            "Real Mux: put MUX_TOKEN_ID and MUX_TOKEN_SECRET (a Mux access token) and "
            "DATABASE_URL in a .env file, then `vidpipe db init` and `vidpipe upload`",
            "Keep it honest: run `vidpipe sync` from cron; `vidpipe verify` exits 1 on drift",
            "Rehearse without Mux: `vidpipe emulator` and MUX_BASE_URL",
            "Develop: `make test` (lint, types, tests); details in README.md",
        ],
        elapsed=time.monotonic() - started,
    )
