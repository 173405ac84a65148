"""Running the command line: `run` maps exception types to exit codes (bad input 2,
everything else 1, interrupted 130) and `_hint` adds option hints ("pass --replace") to the
core's messages. The commands are registered on `app` by `vidpipe.cli` (the package), which
has been imported before this module is, whichever way it is reached.
"""

from __future__ import annotations

import os
import sys

import typer

from vidpipe.cli.base import Invocation, app
from vidpipe.cli.options import ASSET_OPTIONS


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
