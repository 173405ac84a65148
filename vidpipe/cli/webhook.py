"""`vidpipe webhook`: serve Mux webhooks, or apply one event."""

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from vidpipe.cli.base import make_ui, open_vidpipe, webhook_app
from vidpipe.cli.monitoring import (
    LogFormatOpt,
    MetricsHostOpt,
    MetricsPortOpt,
    check_log_format,
    json_message,
    raw_line,
)
from vidpipe.cli.options import command

if TYPE_CHECKING:
    from vidpipe.ui import UI


@webhook_app.command("serve")
def webhook_serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    metrics_port: MetricsPortOpt = None,
    metrics_host: MetricsHostOpt = "127.0.0.1",
    log_format: LogFormatOpt = "text",
) -> None:
    """Serve Mux webhooks (POST / or /webhooks/mux), verified with MUX_WEBHOOK_SECRET."""
    check_log_format(log_format)
    ui = make_ui()
    with open_vidpipe(ctx, ui) as vp:
        if log_format == "json":
            vp.notify = json_message
        vp.serve_webhooks(
            host=host,
            port=port,
            log=ui.message if log_format == "text" else raw_line,
            metrics_host=metrics_host,
            metrics_port=metrics_port,
            log_format=log_format,
        )


@command(webhook_app, "apply", output="json")
def webhook_apply(
    ctx: typer.Context,
    source: Annotated[
        str, typer.Argument(help="A file holding one event, or - for stdin.", metavar="FILE|-")
    ],
    signature: Annotated[
        str | None,
        typer.Option("--signature", help="The Mux-Signature header value.", show_default=False),
    ] = None,
    no_verify: Annotated[
        bool, typer.Option("--no-verify", help="Apply without checking a signature.")
    ] = False,
    *,
    ui: "UI",
) -> None:
    """Apply one webhook event (e.g. copied from the Mux dashboard) to the database."""
    from vidpipe.errors import UsageError
    from vidpipe.render import render_event

    if signature and no_verify:
        raise UsageError("give --signature or --no-verify, not both")
    if not signature and not no_verify:
        raise UsageError("give --signature HEADER to verify the event, or --no-verify")
    with open_vidpipe(ctx, ui) as vp:
        # Configuration and tables are checked before reading a possibly endless stdin.
        if not no_verify:
            vp.settings.webhook_secret()
        _ = vp.engine
        if source == "-":
            body = sys.stdin.buffer.read()
        else:
            try:
                body = Path(source).read_bytes()
            except OSError as exc:
                raise UsageError(f"{source}: cannot read ({exc.strerror})") from None
        outcome = vp.apply_webhook(body, signature=signature, verify=not no_verify)
    render_event(ui, outcome)
