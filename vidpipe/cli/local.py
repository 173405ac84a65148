"""Commands that need no Mux account: the local emulator and the demo."""

from pathlib import Path
from typing import Annotated, Any

import typer

from vidpipe.cli.base import Invocation, app, make_ui, open_vidpipe

HostOpt = Annotated[str, typer.Option(help="Address to listen on.")]
ReadyAfterOpt = Annotated[
    float, typer.Option(help="Seconds an asset stays `preparing` before `ready`.", min=0)
]
RateLimitOpt = Annotated[
    bool, typer.Option("--rate-limit", help="Enforce Mux's rate limits (429s).")
]
ChecksumOpt = Annotated[
    bool,
    typer.Option(help="SHA-256 every uploaded byte (off: a faster upload path, for benchmarks)."),
]
WebhookUrlOpt = Annotated[
    str | None, typer.Option(help="POST signed webhooks here (secret: MUX_WEBHOOK_SECRET).")
]
EnvironmentIdOpt = Annotated[
    str | None,
    typer.Option(
        help="The Mux environment ID it stands for (whoami, webhooks) [default: emu-env-1]."
    ),
]
EnvironmentNameOpt = Annotated[
    str | None, typer.Option(help="The name of that Mux environment [default: Development].")
]
ClockSkewOpt = Annotated[
    float,
    typer.Option(
        help="Seconds Mux's clock is ahead (negative: behind), in Date headers and webhook "
        "signatures."
    ),
]


@app.command()
def emulator(
    ctx: typer.Context,
    host: HostOpt = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=0, max=65535)] = 8765,
    ready_after: ReadyAfterOpt = 2.0,
    rate_limit: RateLimitOpt = False,
    checksum: ChecksumOpt = True,
    webhook_url: WebhookUrlOpt = None,
    environment_id: EnvironmentIdOpt = None,
    environment_name: EnvironmentNameOpt = None,
    clock_skew: ClockSkewOpt = 0.0,
) -> None:
    """Run a local stand-in for the Mux API (for tests, demos and rehearsals)."""
    from vidpipe.emulator import run_emulator

    ui = make_ui()
    secret = None
    if webhook_url:
        with open_vidpipe(ctx) as vp:
            secret = vp.settings.webhook_secret()

    def started(base_url: str) -> None:
        ui.message(f"Mux emulator listening on {base_url}")
        ui.message(f"  export MUX_BASE_URL={base_url} MUX_TOKEN_ID=dev MUX_TOKEN_SECRET=dev")

    named: dict[str, Any] = {}
    if environment_id is not None:
        named["environment_id"] = environment_id
    if environment_name is not None:
        named["environment_name"] = environment_name
    run_emulator(
        host,
        port,
        ready_after,
        rate_limit,
        webhook_url=webhook_url,
        webhook_secret=secret,
        on_started=started,
        checksum=checksum,
        clock_skew=clock_skew,
        **named,
    )


DirOpt = Annotated[
    Path | None, typer.Option("--dir", help="Work in this folder (default: a temporary one).")
]


@app.command()
def demo(ctx: typer.Context, directory: DirOpt = None) -> None:
    """Show the whole product with no Mux account: upload, drift and sync, import, url,
    the environment guard, webhooks, doctor."""
    from vidpipe.cli.runner import run
    from vidpipe.demo import run_demo

    invocation = ctx.find_object(Invocation) or Invocation()

    def run_step(argv: list[str], settings: dict[str, Any]) -> int:
        # Each step is the real command line, with the demo's settings and no `.env`.
        child = Invocation(debug=invocation.debug, settings=settings, read_dotenv=False)
        return run(argv, invocation=child)

    run_demo(directory, run_step)
