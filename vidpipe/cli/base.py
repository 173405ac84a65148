"""The Typer apps and the plumbing every command shares: the invocation's context, the UI and
the facade built from this invocation's settings."""

# No `from __future__ import annotations` in the CLI: Typer reads every command's annotations
# to build the CLI, and evaluating them as strings (typing.get_type_hints) was a fifth of
# `vidpipe --help`'s own time. Names imported only for type checking are quoted instead.
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from vidpipe.api import Vidpipe
    from vidpipe.ui import UI

app = typer.Typer(
    name="vidpipe",
    help="Manage a course platform's videos on Mux: upload, status, verify, sync, delete.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
db_app = typer.Typer(
    help="The platform database: create vidpipe's tables, pin its Mux environment.",
    no_args_is_help=True,
)
webhook_app = typer.Typer(
    help="Mux webhooks: serve an endpoint or apply one event.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(webhook_app, name="webhook")


@dataclass
class Invocation:
    """What one run of the CLI was given beyond its arguments: passed down through the
    click context, never kept in a global."""

    debug: bool = False
    settings: dict[str, Any] = field(default_factory=dict)
    """Settings that win over the environment (field names); the demo passes its own."""
    read_dotenv: bool = True


def _print_version(value: bool) -> None:
    if value:
        from vidpipe import __version__

        print(f"vidpipe {__version__}")
        raise typer.Exit(0)


DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks for unexpected errors.")]
VersionOpt = Annotated[
    bool,
    typer.Option(
        "--version", help="Print the version and exit.", callback=_print_version, is_eager=True
    ),
]


@app.callback()
def _root(ctx: typer.Context, debug: DebugOpt = False, version: VersionOpt = False) -> None:
    invocation = ctx.ensure_object(Invocation)
    invocation.debug = invocation.debug or debug


def make_ui(json_mode: bool = False, *, wide: bool = False) -> "UI":
    """The command's output: rich on a terminal, plain lines otherwise, JSON with --json."""
    from vidpipe.ui import UI

    return UI(json_mode=json_mode, wide=wide)


def open_vidpipe(ctx: typer.Context, ui: "UI | None" = None) -> "Vidpipe":
    """The facade, with this invocation's settings (read once, checked here)."""
    from vidpipe.api import Vidpipe
    from vidpipe.config import dotenv_warning, load_settings

    invocation = ctx.find_object(Invocation) or Invocation()
    settings = load_settings(read_dotenv=invocation.read_dotenv, **invocation.settings)
    note = dotenv_warning(settings)
    if note:
        (ui or make_ui()).warn(note)
    return Vidpipe(settings, notify=ui.notice if ui else None)
