"""The floor for any Typer CLI: a minimal two-command app and nothing else.

`bench/run.py` times `--help` of this beside `vidpipe --help`, run by the same Python. It uses
the Typer settings vidpipe uses (plain help, no pretty exceptions) but leaves shell completion
off, which vidpipe turns on, so the comparison shows what vidpipe adds, completion included;
with BENCH_TYPER_DEFAULTS=1 it uses Typer's defaults (rich-formatted help), which is slower
and reported for scale.
"""

import os

import typer

if os.environ.get("BENCH_TYPER_DEFAULTS") == "1":
    app = typer.Typer(help="A minimal two-command Typer app.")
else:
    app = typer.Typer(
        help="A minimal two-command Typer app.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        rich_markup_mode=None,
    )


@app.command()
def hello(name: str) -> None:
    """Say hello."""
    print(f"hello {name}")


@app.command()
def goodbye(name: str) -> None:
    """Say goodbye."""
    print(f"goodbye {name}")


if __name__ == "__main__":
    app()
