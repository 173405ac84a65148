"""The vidpipe command line: parse options -> call `vidpipe.Vidpipe` -> render (through
`vidpipe.render`). No business logic lives here.

This package is the one place that knows about exit codes and option names: `run` maps
exception types to exit codes (bad input 2, everything else 1) and `_hint` adds option hints
("pass --replace") to the core's messages. Heavy libraries are imported inside the commands,
so `vidpipe --help` starts as fast as any Typer app.

Layout:
- `base`: the Typer apps (`app`, `db_app`, `webhook_app`), the invocation passed down the
  click context, `make_ui` and `open_vidpipe` (the facade with this run's settings);
- `options`: options shared by commands, each defined once with its help and completion,
  and `command`, which registers a command with the option groups it asks for;
- one module per family of commands: `uploads` (upload, import, url), `originals`
  (download, export), `reports` (status,
  verify, sync, delete), `database` (db ...), `webhook` (webhook ...), `local` (emulator,
  demo), `doctor`.

To add a command: write it in a new module (or the module of its family), registered with
`@command(app)` (or `@command(db_app, "name")`, or on a new `typer.Typer` added to `app`
there). Its own options go in its signature (an `Annotated` alias each); shared ones come as
groups, each asked for by a keyword-only parameter: `output="json"` (or `"table"`) gives
`ui: UI` for `--json` (and `--wide`), `target=True` gives `target: Named` for `--lesson` /
`--course`, `upload=True` gives `choices: UploadChoices`. Call the facade inside `with
open_vidpipe(ctx, ui) as vp:` and hand the result to a `render_*` function in
`vidpipe.render`. Then import the module below (one line; the order of these lines is the
order of `--help`). A new core exception that needs an option hint gets its line in `_hint`.
"""

import os
import sys

import typer

from vidpipe.cli.base import Invocation, app
from vidpipe.cli.options import ASSET_OPTIONS, asset_options

# Command modules register their commands on import; this order is the order of `--help`.
# isort: off
from vidpipe.cli import uploads  # noqa: F401  (upload, import, url)
from vidpipe.cli import originals  # noqa: F401  (download, export)
from vidpipe.cli import reports  # noqa: F401  (status, verify, sync, delete)
from vidpipe.cli import captions  # noqa: F401  (captions add, list, remove)
from vidpipe.cli import local  # noqa: F401  (emulator, demo)
from vidpipe.cli import database  # noqa: F401  (db init, db pin)
from vidpipe.cli import webhook  # noqa: F401  (webhook serve, webhook apply)
from vidpipe.cli import doctor  # noqa: F401  (doctor)
# isort: on

__all__ = ["Invocation", "app", "asset_options", "main", "run"]


def main() -> None:
    """Console-script entry point."""
    sys.exit(run(sys.argv[1:]))


def run(argv: list[str], *, invocation: Invocation | None = None) -> int:
    """Run vidpipe with `argv`; errors become one line on stderr and an exit code:
    0 success, 1 failure (or drift, for verify), 2 bad usage or input, 130 interrupted."""
    from vidpipe.errors import UsageError, VidpipeError

    if invocation is None:
        invocation = Invocation(debug=os.environ.get("VIDPIPE_DEBUG") == "1")
    try:
        code = app(args=argv, prog_name="vidpipe", standalone_mode=False, obj=invocation)
        return code if isinstance(code, int) else 0
    except typer.TyperException as exc:  # Typer's (vendored click's) usage errors
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()  # type: ignore[attr-defined]
            return 2
        # Click prints usage errors as four lines; a user gets one, plus where to look.
        ctx = getattr(exc, "ctx", None)
        where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        _print_error(exc.format_message() + where)
        return exc.exit_code
    except typer.Abort:
        _print_error("aborted")
        return 1
    except VidpipeError as exc:
        _print_error(_hint(exc))
        return 2 if isinstance(exc, UsageError) else 1
    except KeyboardInterrupt:
        _print_error("interrupted; re-running the same command resumes where it stopped")
        return 130
    except Exception as exc:
        if invocation.debug:
            raise
        _print_error(f"unexpected {type(exc).__name__}; re-run with --debug for a traceback")
        return 1


def _hint(exc: Exception) -> str:
    """The core's message, plus what to type next where an option is the way forward."""
    from vidpipe.assets import InvalidAssetSetting
    from vidpipe.delete import DeleteChoiceError
    from vidpipe.errors import EnvironmentMismatch, TargetHasVideo, WaitTimeout
    from vidpipe.manifest import ManifestError
    from vidpipe.playback import TokenLifetimeError
    from vidpipe.targets import TargetChoiceError
    from vidpipe.webhooks import MissingSignature, StaleSignature

    if isinstance(exc, TargetChoiceError):
        return {
            "both": "give either --lesson or --course, not both",
            "none": "name a target: --lesson ID or --course ID",
        }.get(exc.problem, f"{exc}: --lesson / --course take a positive integer id")
    if isinstance(exc, DeleteChoiceError):
        if exc.problem == "empty":
            return "--asset needs a Mux asset id"
        return "name exactly one of --asset ASSET_ID, --lesson ID, --course ID"
    if isinstance(exc, TokenLifetimeError):
        return "--expires must be more than 0 and at most 366d"
    if isinstance(exc, EnvironmentMismatch):
        return (
            f"{exc}. Use a token of Mux environment {exc.pinned}, or, if the database really "
            f"moved to {exc.current}, run `vidpipe db pin --force`"
        )
    if isinstance(exc, InvalidAssetSetting) and exc.setting in ASSET_OPTIONS:
        return f"{ASSET_OPTIONS[exc.setting]}: {exc.reason}"
    if isinstance(exc, TargetHasVideo):
        return f"{exc}; pass --replace to replace it"
    if isinstance(exc, ManifestError) and exc.has_video:
        return f"{exc}\n(pass --replace to replace the videos those rows record)"
    if isinstance(exc, WaitTimeout):
        return f"{exc}; re-run the same command to keep waiting"
    if isinstance(exc, StaleSignature):
        return f"{exc}; to replay an old event, use --no-verify"
    if isinstance(exc, MissingSignature):
        return f"{exc}: pass --signature with the event's Mux-Signature header, or --no-verify"
    return str(exc)


def _print_error(text: str) -> None:
    """One error on stderr. Messages may quote text vidpipe did not write (file names, Mux's
    words): printed as text, control characters escaped."""
    from vidpipe.text import shown_lines

    print(f"vidpipe: error: {shown_lines(text)}", file=sys.stderr, flush=True)
