"""Commands that bring originals back from Mux: download (one row) and export (a folder, and
a manifest `vidpipe import` takes back)."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from typer import Context

from vidpipe.cli.base import app, open_vidpipe
from vidpipe.cli.options import CourseOpt, LessonOpt, Named, command, duration, suggest

if TYPE_CHECKING:
    from vidpipe.ui import UI

MasterTimeoutOpt = Annotated[
    str,
    typer.Option(
        "--timeout",
        help="How long to wait for Mux to prepare an original (e.g. 30m, 90s).",
        autocompletion=suggest("90s", "10m", "30m", "1h", "2h"),
    ),
]
OutputOpt = Annotated[
    Path | None,
    typer.Option(
        "-o",
        "--output",
        help="Where to write the file [default: lesson-ID.mp4 / course-ID.mp4 here].",
        metavar="PATH",
        show_default=False,
    ),
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace PATH if it exists.")]
DirArg = Annotated[
    Path, typer.Argument(help="The folder to fill (created if missing).", metavar="DIR")
]
ExportJobsOpt = Annotated[
    int, typer.Option("--jobs", help="Downloads at a time (1..16).", min=1, max=16)
]


@command(app, output="json", target=True)
def download(
    ctx: Context,
    output: OutputOpt = None,
    force: ForceOpt = False,
    timeout: MasterTimeoutOpt = "30m",
    *,
    target: Named,
    ui: "UI",
) -> None:
    """Download the original of a lesson's or course's video (resumable: re-run the same
    command to continue). Master access is temporary while it runs, then off."""
    from vidpipe.render_originals import download_progress, render_download

    wait_for = duration(timeout, "--timeout")
    with open_vidpipe(ctx, ui) as vp, download_progress(ui, target.label) as observer:
        result = vp.download(
            path=output, force=force, timeout=wait_for, observer=observer, **target.kwargs()
        )
    render_download(ui, result)


@command(app, output="table")
def export(
    ctx: Context,
    directory: DirArg,
    lesson: LessonOpt = None,
    course: CourseOpt = None,
    jobs: ExportJobsOpt = 4,
    timeout: MasterTimeoutOpt = "30m",
    *,
    ui: "UI",
) -> None:
    """Download every row's original (or the one named) into DIR, with DIR/manifest.csv for
    `vidpipe import`. Re-running skips complete files and continues partial ones; exit 1
    when an item failed."""
    from vidpipe.render_originals import export_progress, render_export

    wait_for = duration(timeout, "--timeout")
    with open_vidpipe(ctx, ui) as vp, export_progress(ui) as observer:
        report = vp.export(
            directory, lesson=lesson, course=course, jobs=jobs, timeout=wait_for, observer=observer
        )
    render_export(ui, report)
    if not report.ok:
        raise typer.Exit(1)
