"""`vidpipe db`: create vidpipe's tables, pin the database's Mux environment."""

from typing import Annotated

import typer

from vidpipe.cli.base import db_app, make_ui, open_vidpipe


@db_app.command("init")
def db_init(ctx: typer.Context) -> None:
    """Create the tables that are missing (never alters what exists)."""
    from vidpipe.render import render_init

    ui = make_ui()
    with open_vidpipe(ctx, ui) as vp:
        created = vp.init_db()
    render_init(ui, created)


@db_app.command("pin")
def db_pin(
    ctx: typer.Context,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Move a database pinned to another Mux environment to the token's."
        ),
    ] = False,
) -> None:
    """Record the token's Mux environment as the database's (see README: Environments)."""
    from vidpipe.render import render_pin

    ui = make_ui()
    with open_vidpipe(ctx, ui) as vp:
        pinning = vp.pin_environment(force=force)
    render_pin(ui, pinning)
