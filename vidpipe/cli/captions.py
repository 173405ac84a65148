"""`vidpipe captions add | list | remove`: subtitle files on a target's asset."""

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer import Context

from vidpipe.cli.base import app, open_vidpipe
from vidpipe.cli.options import Named, command, suggest

if TYPE_CHECKING:
    from vidpipe.ui import UI

captions_app = typer.Typer(
    help="Subtitle files on a target's asset: add one from a URL, list, remove.",
    no_args_is_help=True,
)
app.add_typer(captions_app, name="captions")

LanguageOpt = Annotated[
    str,
    typer.Option(
        "--language",
        help="The subtitles' language, a BCP 47 code (en, fr, pt-BR).",
        autocompletion=suggest("en", "es", "fr", "de", "it", "pt"),
        show_default=False,
    ),
]


@command(captions_app, "add", output="json", target=True)
def add(
    ctx: Context,
    url: Annotated[
        str, typer.Argument(help="An http(s) URL of a WebVTT or SRT file Mux can fetch.")
    ],
    language: LanguageOpt,
    name: Annotated[
        str | None,
        typer.Option(
            help="The track's name (default: the language's, e.g. French).", show_default=False
        ),
    ] = None,
    closed_captions: Annotated[
        bool, typer.Option("--closed-captions", help="Mark the track as closed captions.")
    ] = False,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Return once Mux has the request; do not wait.")
    ] = False,
    *,
    target: Named,
    ui: "UI",
) -> None:
    """Have Mux fetch a subtitle file (WebVTT or SRT) onto the target's asset; wait until ready."""
    from vidpipe.render import render_captions

    with open_vidpipe(ctx, ui) as vp:
        report = vp.captions_add(
            url,
            language=language,
            name=name,
            closed_captions=closed_captions,
            wait=not no_wait,
            **target.kwargs(),
        )
    render_captions(ui, report, "added")


@command(captions_app, "list", output="table", target=True)
def list_(ctx: Context, *, target: Named, ui: "UI") -> None:
    """The text tracks of the target's asset: language, name, source, status."""
    from vidpipe.render import render_captions

    with open_vidpipe(ctx, ui) as vp:
        report = vp.captions_list(**target.kwargs())
    render_captions(ui, report, "list")


@command(captions_app, "remove", output="json", target=True)
def remove(
    ctx: Context,
    language: Annotated[
        str | None, typer.Option("--language", help="Remove every text track of this language.")
    ] = None,
    track: Annotated[
        str | None, typer.Option("--track", help="Remove this one text track (its ID).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    *,
    target: Named,
    ui: "UI",
) -> None:
    """Delete text tracks of the target's asset (by language, or one by ID)."""
    from vidpipe.errors import UsageError
    from vidpipe.render import render_captions

    if not yes and not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise UsageError("not a terminal: pass --yes to remove without confirmation")

    def confirm(tracks: list[Any]) -> bool:
        if yes:
            return True
        names = ", ".join(f"{t.name or t.id} ({t.language_code})" for t in tracks)
        return typer.confirm(f"Remove {names}?", err=True)

    with open_vidpipe(ctx, ui) as vp:
        report = vp.captions_remove(
            language=language, track=track, confirm=confirm, **target.kwargs()
        )
    if not report.ok:
        ui.message("nothing removed")
        raise typer.Exit(1)
    render_captions(ui, report, "removed")
