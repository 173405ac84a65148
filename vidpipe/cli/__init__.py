"""The vidpipe command line: parse options -> call `vidpipe.Vidpipe` -> render (through
`vidpipe.render`). No business logic lives here.

This package is the one place that knows about exit codes and option names: `run` (in
`runner`) maps exception types to exit codes (bad input 2, everything else 1) and `_hint`
adds option hints ("pass --replace") to the core's messages. Heavy libraries are imported
inside the commands, so `vidpipe --help` starts as fast as any Typer app.

Layout:
- `runner`: `run` and `main`, the exit codes and the hints;
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
order of `--help`). A new core exception that needs an option hint gets its line in
`runner._hint`.
"""

from vidpipe.cli.base import Invocation, app
from vidpipe.cli.options import asset_options
from vidpipe.cli.runner import main, run

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
