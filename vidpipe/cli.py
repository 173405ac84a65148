"""The vidpipe command line: parse options, call the core, render results. No business logic.

Heavy libraries (mux_python, sqlmodel, httpx, rich) are imported inside the commands that need
them, so `vidpipe --help` starts as fast as any Typer app.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from vidpipe.config import Settings
    from vidpipe.mux import MuxGateway
    from vidpipe.ui import UI

app = typer.Typer(
    name="vidpipe",
    help="Manage a course platform's videos on Mux: upload, status, verify, sync, delete.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
db_app = typer.Typer(help="The platform database: create vidpipe's tables.", no_args_is_help=True)
webhook_app = typer.Typer(
    help="Mux webhooks: serve an endpoint or apply one event.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(webhook_app, name="webhook")

_state = {"debug": False}

LessonOpt = Annotated[
    int | None, typer.Option("--lesson", help="Lesson id (table lesson).", show_default=False)
]
CourseOpt = Annotated[
    int | None, typer.Option("--course", help="Course id (table world).", show_default=False)
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print exactly one JSON document on stdout.")]


def _print_version(value: bool) -> None:
    if value:
        from vidpipe import __version__

        print(f"vidpipe {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks for unexpected errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_print_version, is_eager=True
        ),
    ] = False,
) -> None:
    _state["debug"] = _state["debug"] or debug or os.environ.get("VIDPIPE_DEBUG") == "1"


# -- shared plumbing -------------------------------------------------------------------------


def _ui(json_mode: bool = False) -> UI:
    from vidpipe.ui import UI

    return UI(json_mode=json_mode)


def _settings() -> Settings:
    from vidpipe.config import load_settings

    return load_settings()


def _engine(settings: Settings, *, require: bool = True) -> Engine:
    from vidpipe.db import make_engine, require_tables

    engine = make_engine(settings.database_url.get_secret_value())
    if require:
        require_tables(engine)
    return engine


def _gateway(settings: Settings) -> MuxGateway:
    from vidpipe.mux import MuxGateway

    return MuxGateway.from_settings(settings)


@contextmanager
def _mux_and_db() -> Iterator[tuple[Engine, MuxGateway]]:
    """Settings checked (credentials, database, tables) before any Mux call, then both."""
    settings = _settings()
    settings.mux_credentials()
    engine = _engine(settings)
    with _gateway(settings) as gateway:
        yield engine, gateway


def _http_client() -> Any:
    import httpx

    # Generous read/write timeouts: a 32 MiB chunk on a slow link takes a while per request.
    return httpx.Client(
        timeout=httpx.Timeout(connect=15.0, read=120.0, write=120.0, pool=15.0),
        follow_redirects=False,
    )


# -- upload / status ---------------------------------------------------------------------------


@app.command()
def upload(
    file: Annotated[
        Path, typer.Argument(help="The video file to upload.", metavar="FILE", show_default=False)
    ],
    lesson: LessonOpt = None,
    course: CourseOpt = None,
    chunk_size: Annotated[
        str,
        typer.Option(help="Bytes per PUT: bytes or units (256KiB, 8MiB); a multiple of 256 KiB."),
    ] = "32MiB",
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace the target's current video.")
    ] = False,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Stop after the transfer; sync records it later.")
    ] = False,
    timeout: Annotated[
        str, typer.Option(help="How long to wait for the asset to be ready (e.g. 30m, 90s).")
    ] = "30m",
    json_out: JsonOpt = False,
) -> None:
    """Upload FILE to Mux for a lesson or course; resumable: re-run the same command to continue."""
    from vidpipe import targets
    from vidpipe.durations import parse_duration
    from vidpipe.pipeline import Pipeline, UploadOptions
    from vidpipe.transfer import parse_chunk_size

    ui = _ui(json_out)
    target = targets.from_options(lesson, course)
    assert target is not None
    options = UploadOptions(
        chunk_size=parse_chunk_size(chunk_size),
        replace=replace,
        wait=not no_wait,
        timeout=parse_duration(timeout, option="--timeout"),
    )
    with _mux_and_db() as (engine, gateway), _http_client() as http:
        pipeline = Pipeline(engine, gateway, http, notify=ui.message)
        prepared = pipeline.prepare(file, target, options)
        with ui.progress(f"{file.name} -> {target}", prepared.video.size) as progress:
            outcome = pipeline.upload(prepared, options, on_progress=progress)
    for warning in outcome.warnings:
        ui.warn(warning)
    if json_out:
        ui.json(outcome.as_json())
        return
    if outcome.state == "ready":
        ui.line(
            f"{target}: asset {outcome.asset_id} ready, playback ID {outcome.playback_id} recorded"
        )
        if outcome.old_asset_deleted:
            ui.line(f"replaced asset {outcome.replaced_asset_id} deleted from Mux")
    else:
        ui.line(
            f"{target}: upload {outcome.upload_id} transferred; not waiting for the asset "
            "(`vidpipe sync` or a webhook records it)"
        )


@app.command()
def status(lesson: LessonOpt = None, course: CourseOpt = None, json_out: JsonOpt = False) -> None:
    """The database and Mux side by side (all targets with a video or an unfinished upload)."""
    from vidpipe import targets
    from vidpipe.reconcile import Reconciler
    from vidpipe.render import render_status

    ui = _ui(json_out)
    target = targets.from_options(lesson, course, required=False)
    with _mux_and_db() as (engine, gateway):
        report = Reconciler(engine, gateway).status(target)
    render_status(ui, report)


# -- verify / sync / delete --------------------------------------------------------------------


@app.command()
def verify(lesson: LessonOpt = None, course: CourseOpt = None, json_out: JsonOpt = False) -> None:
    """Read-only drift report: exit 0 when the database agrees with Mux, 1 on drift."""
    from vidpipe import targets
    from vidpipe.reconcile import Reconciler
    from vidpipe.render import render_report

    ui = _ui(json_out)
    target = targets.from_options(lesson, course, required=False)
    with _mux_and_db() as (engine, gateway):
        report = Reconciler(engine, gateway).verify(target)
    render_report(ui, report, title="verify")
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def sync(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would change; change nothing.")
    ] = False,
    prune_orphans: Annotated[
        bool, typer.Option("--prune-orphans", help="Delete orphan assets (old enough) from Mux.")
    ] = False,
    orphan_min_age: Annotated[
        str, typer.Option(help="Only prune orphans older than this (e.g. 24h, 90m, 2d).")
    ] = "24h",
    max_deletes: Annotated[
        int, typer.Option(help="Delete at most this many orphans per run.", min=0)
    ] = 10,
    json_out: JsonOpt = False,
) -> None:
    """Make the database agree with Mux (for cron). One sync at a time."""
    from vidpipe.durations import parse_duration
    from vidpipe.reconcile import Reconciler, SyncOptions
    from vidpipe.render import render_report

    ui = _ui(json_out)
    options = SyncOptions(
        dry_run=dry_run,
        prune_orphans=prune_orphans,
        orphan_min_age=parse_duration(orphan_min_age, option="--orphan-min-age"),
        max_deletes=max_deletes,
    )
    with _mux_and_db() as (engine, gateway):
        report = Reconciler(engine, gateway).sync(options)
    render_report(ui, report, title="sync (dry run)" if dry_run else "sync")
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def delete(
    asset: Annotated[
        str | None, typer.Option("--asset", help="The Mux asset id.", show_default=False)
    ] = None,
    lesson: LessonOpt = None,
    course: CourseOpt = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Delete an asset from Mux and clear it from every row that names it."""
    from vidpipe import targets
    from vidpipe.errors import UsageError
    from vidpipe.reconcile import Reconciler
    from vidpipe.render import render_delete

    ui = _ui(json_out)
    named = sum(x is not None for x in (asset, lesson, course))
    if named != 1:
        raise UsageError("name exactly one of --asset ASSET_ID, --lesson ID, --course ID")
    if asset is not None and not asset.strip():
        raise UsageError("--asset needs a Mux asset id")
    target = targets.from_options(lesson, course, required=False)
    with _mux_and_db() as (engine, gateway):
        rec = Reconciler(engine, gateway)
        plan = rec.plan_delete(asset_id=asset.strip() if asset else None, target=target)
        if not yes:
            if not (sys.stdin.isatty() and sys.stderr.isatty()):
                raise UsageError("not a terminal: pass --yes to delete without confirmation")
            rows = ", ".join(str(t) for t in plan.targets) or "no rows"
            if not typer.confirm(
                f"Delete asset {plan.asset_id} from Mux and clear it from {rows}?", err=True
            ):
                ui.message("nothing deleted")
                raise typer.Exit(1)
        result = rec.delete(plan)
    render_delete(ui, result)


# -- db -----------------------------------------------------------------------------------------


@db_app.command("init")
def db_init() -> None:
    """Create the tables that are missing (never alters what exists)."""
    from vidpipe.db import init_db

    ui = _ui()
    settings = _settings()
    engine = _engine(settings, require=False)
    created = init_db(engine)
    if created:
        ui.line(f"created: {', '.join(created)}")
    else:
        ui.line("nothing to do: every table exists")


# -- webhooks -----------------------------------------------------------------------------------


@webhook_app.command("serve")
def webhook_serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
) -> None:
    """Serve Mux webhooks (POST / or /webhooks/mux), verified with MUX_WEBHOOK_SECRET."""
    from vidpipe.webhooks import serve
    from vidpipe.webhooks_server import webhook_gateway

    ui = _ui()
    settings = _settings()
    secret = settings.webhook_secret()
    engine = _engine(settings)
    # Confirm events with Mux when credentials are configured (short timeouts: Mux waits 5 s).
    gateway = webhook_gateway(settings)
    try:
        serve(engine, secret, host=host, port=port, gateway=gateway, log=ui.message)
    finally:
        if gateway is not None:
            gateway.close()


@webhook_app.command("apply")
def webhook_apply(
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
    json_out: JsonOpt = False,
) -> None:
    """Apply one webhook event (e.g. copied from the Mux dashboard) to the database."""
    from vidpipe.errors import UsageError
    from vidpipe.webhooks import apply_payload

    ui = _ui(json_out)
    if signature and no_verify:
        raise UsageError("give --signature or --no-verify, not both")
    if not signature and not no_verify:
        raise UsageError("give --signature HEADER to verify the event, or --no-verify")
    settings = _settings()
    secret = None if no_verify else settings.webhook_secret()
    engine = _engine(settings)
    if source == "-":
        body = sys.stdin.buffer.read()
    else:
        try:
            body = Path(source).read_bytes()
        except OSError as exc:
            raise UsageError(f"{source}: cannot read ({exc.strerror})") from None
    gateway = _gateway(settings) if settings.mux_token_id and settings.mux_token_secret else None
    try:
        outcome = apply_payload(
            engine,
            body,
            secret=secret,
            signature=signature,
            verify=not no_verify,
            gateway=gateway,
        )
    finally:
        if gateway is not None:
            gateway.close()
    if json_out:
        ui.json(outcome.as_json())
    else:
        ui.line(
            f"{outcome.event_type} {outcome.event_id or '-'}: {outcome.outcome}"
            + (f" ({outcome.detail})" if outcome.detail else "")
        )


# -- emulator / demo ----------------------------------------------------------------------------


@app.command()
def emulator(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=0, max=65535)] = 8765,
    ready_after: Annotated[
        float, typer.Option(help="Seconds an asset stays `preparing` before `ready`.", min=0)
    ] = 2.0,
    rate_limit: Annotated[
        bool, typer.Option("--rate-limit", help="Enforce Mux's rate limits (429s).")
    ] = False,
    checksum: Annotated[
        bool,
        typer.Option(
            "--checksum/--no-checksum",
            help="SHA-256 every uploaded byte (off: a faster upload path, for benchmarks).",
        ),
    ] = True,
    webhook_url: Annotated[
        str | None,
        typer.Option(
            help="POST signed webhooks here (secret: MUX_WEBHOOK_SECRET).", show_default=False
        ),
    ] = None,
) -> None:
    """Run a local stand-in for the Mux API (for tests, demos and rehearsals)."""
    from vidpipe.emulator import run_emulator

    ui = _ui()
    secret = None
    if webhook_url:
        secret = _settings().webhook_secret()

    def started(base_url: str) -> None:
        ui.message(f"Mux emulator listening on {base_url}")
        ui.message(f"  export MUX_BASE_URL={base_url} MUX_TOKEN_ID=dev MUX_TOKEN_SECRET=dev")

    run_emulator(
        host,
        port,
        ready_after,
        rate_limit,
        webhook_url=webhook_url,
        webhook_secret=secret,
        on_started=started,
        checksum=checksum,
    )


@app.command()
def demo(
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir", help="Work in this folder (default: a temporary one).", show_default=False
        ),
    ] = None,
) -> None:
    """Show the whole job with no Mux account: local database, emulator, upload, verify, sync."""
    from vidpipe.demo import run_demo

    run_demo(directory)


# -- entry point --------------------------------------------------------------------------------


def main() -> None:
    """Console-script entry point."""
    sys.exit(run(sys.argv[1:]))


def run(argv: list[str]) -> int:
    """Run vidpipe with `argv`; vidpipe's errors become one line on stderr and an exit code."""
    # An outer `vidpipe --debug demo` stays in debug mode for the commands the demo runs.
    outer = _state["debug"]
    _state["debug"] = outer or "--debug" in argv or os.environ.get("VIDPIPE_DEBUG") == "1"
    try:
        return _run(argv)
    finally:
        _state["debug"] = outer


def _run(argv: list[str]) -> int:
    from vidpipe.errors import VidpipeError

    try:
        code = app(args=argv, prog_name="vidpipe", standalone_mode=False)
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
        _print_error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        _print_error("interrupted; re-running the same command resumes where it stopped")
        return 130
    except Exception as exc:
        if _state["debug"]:
            raise
        _print_error(f"unexpected {type(exc).__name__}; re-run with --debug for a traceback")
        return 1
    return 0


def _print_error(text: str) -> None:
    print(f"vidpipe: error: {text}", file=sys.stderr, flush=True)


if __name__ == "__main__":  # pragma: no cover
    main()
