"""Commands that put videos on Mux and hand out their links: upload, import, url."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from typer import Context

from vidpipe.cli.base import app, open_vidpipe
from vidpipe.cli.monitoring import MetricsFileOpt, metrics_file
from vidpipe.cli.options import Named, UploadChoices, command, duration, suggest

if TYPE_CHECKING:
    from vidpipe.ui import UI

SourceArg = Annotated[
    str,
    typer.Argument(
        help="The video file to upload, or an http(s):// URL for Mux to fetch.", metavar="FILE|URL"
    ),
]


@command(app, output="json", target=True, upload=True)
def upload(
    ctx: Context, source: SourceArg, *, target: Named, choices: UploadChoices, ui: "UI"
) -> None:
    """Upload FILE (or have Mux fetch URL) for a lesson or course; resumable: re-run the same
    command to continue."""
    from vidpipe.media import display_source, is_url
    from vidpipe.render import render_upload
    from vidpipe.text import shown

    name = shown(display_source(source) if is_url(source) else Path(source).name)
    with open_vidpipe(ctx, ui) as vp, ui.progress(f"{name} -> {target.label}") as bar:
        outcome = vp.upload(source, on_progress=bar, **target.kwargs(), **choices.kwargs())
    render_upload(ui, outcome)


ManifestArg = Annotated[
    Path,
    typer.Argument(
        help="CSV with a header (or JSON Lines): source, and lesson or course.", metavar="MANIFEST"
    ),
]
JobsOpt = Annotated[int, typer.Option("--jobs", help="Transfers at a time (1..16).", min=1, max=16)]
PlanOnlyOpt = Annotated[
    bool, typer.Option("--dry-run", help="Check the manifest and show the plan; change nothing.")
]


@command(app, "import", output="table", upload=True)
def import_(
    ctx: Context,
    manifest: ManifestArg,
    jobs: JobsOpt = 4,
    dry_run: PlanOnlyOpt = False,
    metrics_path: MetricsFileOpt = None,
    *,
    choices: UploadChoices,
    ui: "UI",
) -> None:
    """Upload every video a manifest names; re-run the same command to resume. Exit 1 when
    an item failed, 2 when a line is bad (nothing is changed then)."""
    from vidpipe.render_import import import_progress, render_import

    with metrics_file(metrics_path, "import", ui) as run:
        with open_vidpipe(ctx, ui) as vp, import_progress(ui) as observer:
            run.vidpipe = vp
            report = vp.import_manifest(
                manifest, jobs=jobs, dry_run=dry_run, observer=observer, **choices.kwargs()
            )
        run.report(report)
        render_import(ui, report)
        if not report.ok:
            raise typer.Exit(1)


ExpiresOpt = Annotated[
    str,
    typer.Option(
        help="How long a signed URL's token stays valid (e.g. 6h, 2d, 90m).",
        autocompletion=suggest("1h", "6h", "1d", "7d", "30d"),
    ),
]


@command(app, output="json", target=True)
def url(ctx: Context, expires: ExpiresOpt = "6h", *, target: Named, ui: "UI") -> None:
    """The stream and thumbnail URLs of a lesson's or course's video (signed when its
    playback ID is signed: needs MUX_SIGNING_KEY_ID and MUX_SIGNING_KEY)."""
    from vidpipe.render import render_url

    lifetime = duration(expires, "--expires")
    with open_vidpipe(ctx, ui) as vp:
        result = vp.url(expires=lifetime, **target.kwargs())
    render_url(ui, result)
