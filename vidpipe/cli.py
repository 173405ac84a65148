"""The vidpipe command line: parse options -> call `vidpipe.Vidpipe` -> render. No business
logic lives here.

This is the one place that knows about exit codes and option names: `_run` maps exception
types to exit codes (bad input 2, everything else 1) and `_hint` adds option hints ("pass
--replace") to the core's messages. Heavy libraries are imported inside the commands, so
`vidpipe --help` starts as fast as any Typer app.
"""

# No `from __future__ import annotations` here: Typer reads every command's annotations to
# build the CLI, and evaluating them as strings (typing.get_type_hints) was a fifth of
# `vidpipe --help`'s own time. Names imported only for type checking are quoted instead.
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
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


LessonOpt = Annotated[
    int | None, typer.Option("--lesson", help="Lesson id (table lesson).", show_default=False)
]
CourseOpt = Annotated[
    int | None, typer.Option("--course", help="Course id (table world).", show_default=False)
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print exactly one JSON document on stdout.")]

# Asset-setting options: each overrides its VIDPIPE_* setting for the assets one command
# creates. Commands that create assets take all of them and pass them through
# `asset_options(...)`, which checks them before anything is created.
PlaybackPolicyOpt = Annotated[
    str | None,
    typer.Option(
        "--playback-policy",
        help="public or signed (default: VIDPIPE_PLAYBACK_POLICY, or "
        "VIDPIPE_PREVIEW_PLAYBACK_POLICY for a course).",
        show_default=False,
    ),
]
VideoQualityOpt = Annotated[
    str | None,
    typer.Option(
        "--video-quality",
        help="basic, plus or premium (default: VIDPIPE_VIDEO_QUALITY, else Mux's).",
        show_default=False,
    ),
]
MaxResolutionOpt = Annotated[
    str | None,
    typer.Option(
        "--max-resolution",
        help="1080p, 1440p or 2160p (default: VIDPIPE_MAX_RESOLUTION, else Mux's).",
        show_default=False,
    ),
]
CaptionsOpt = Annotated[
    str | None,
    typer.Option(
        "--captions",
        help="Languages for Mux-generated captions, e.g. en or en,fr; none for no captions "
        "(default: VIDPIPE_CAPTIONS).",
        metavar="LANG[,LANG]",
        show_default=False,
    ),
]
StaticRenditionOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--static-rendition",
        help="An MP4 rendition (highest, audio-only, 2160p ... 270p); repeatable; none for no "
        "MP4s (default: VIDPIPE_STATIC_RENDITIONS).",
        metavar="R",
        show_default=False,
    ),
]
NormalizeAudioOpt = Annotated[
    bool | None,
    typer.Option(
        "--normalize-audio/--no-normalize-audio",
        help="Normalize the audio loudness (default: VIDPIPE_NORMALIZE_AUDIO).",
        show_default=False,
    ),
]
TestAssetOpt = Annotated[
    bool,
    typer.Option("--test", help="Create Mux test assets (watermarked, 10 s, deleted after 24 h)."),
]

_ASSET_OPTION_NAMES = {
    "playback_policy": "--playback-policy",
    "video_quality": "--video-quality",
    "max_resolution": "--max-resolution",
    "captions": "--captions",
    "static_renditions": "--static-rendition",
}


def asset_options(
    playback_policy: str | None = None,
    video_quality: str | None = None,
    max_resolution: str | None = None,
    captions: str | None = None,
    static_rendition: list[str] | None = None,
    normalize_audio: bool | None = None,
    test: bool = False,
) -> dict[str, Any]:
    """The asset-setting options given, checked, as keyword overrides for
    `Vidpipe.upload` / `Vidpipe.asset_settings` (options not given are left out, so the
    settings apply). A bad value raises before anything is created: exit 2, naming the
    option and the allowed values."""
    from vidpipe.assets import AssetSettings

    given: dict[str, Any] = {
        "playback_policy": playback_policy,
        "video_quality": video_quality,
        "max_resolution": max_resolution,
        "captions": captions,
        "static_renditions": static_rendition or None,
        "normalize_audio": normalize_audio,
        "test": test or None,
    }
    given = {name: value for name, value in given.items() if value is not None}
    # The core's own check (`AssetSettings.override`), so the CLI and the library agree.
    checked = AssetSettings().override(**given)
    return {name: getattr(checked, name) for name in given}


def _suggest(*values: str) -> Any:
    """Shell completion for an option: the `values` that start with what was typed. Cheap
    (no imports), so completing never loads the core."""

    def complete(incomplete: str) -> list[str]:
        return [v for v in values if v.startswith(incomplete)]

    return complete


WideOpt = Annotated[
    bool, typer.Option("--wide", help="Full IDs in terminal tables (never shortened with …).")
]


def _print_version(value: bool) -> None:
    if value:
        from vidpipe import __version__

        print(f"vidpipe {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    ctx: typer.Context,
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
    invocation = ctx.ensure_object(Invocation)
    invocation.debug = invocation.debug or debug


# -- shared plumbing -------------------------------------------------------------------------


def _ui(json_mode: bool = False, *, wide: bool = False) -> "UI":
    from vidpipe.ui import UI

    return UI(json_mode=json_mode, wide=wide)


def _vidpipe(ctx: typer.Context, ui: "UI | None" = None) -> "Vidpipe":
    """The facade, with this invocation's settings (read once, checked here)."""
    from vidpipe.api import Vidpipe
    from vidpipe.config import dotenv_warning, load_settings

    invocation = ctx.find_object(Invocation) or Invocation()
    settings = load_settings(read_dotenv=invocation.read_dotenv, **invocation.settings)
    note = dotenv_warning(settings)
    if note:
        (ui or _ui()).warn(note)
    return Vidpipe(settings, notify=ui.message if ui else None)


def _chunk_size(text: str) -> int:
    from vidpipe.units import parse_chunk_size

    return parse_chunk_size(text)


def _duration(text: str, option: str) -> float:
    from vidpipe.units import parse_duration

    return parse_duration(text, label=option)


# -- upload / status ---------------------------------------------------------------------------


@app.command()
def upload(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Argument(
            help="The video file to upload, or an http(s):// URL for Mux to fetch.",
            metavar="FILE|URL",
            show_default=False,
        ),
    ],
    lesson: LessonOpt = None,
    course: CourseOpt = None,
    chunk_size: Annotated[
        str,
        typer.Option(
            help="Bytes per PUT: auto (adaptive), or bytes or units (256KiB, 8MiB), "
            "a multiple of 256 KiB.",
            autocompletion=_suggest("auto", "256KiB", "1MiB", "8MiB", "32MiB", "64MiB", "128MiB"),
        ),
    ] = "auto",
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace the target's current video.")
    ] = False,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Stop after the transfer; sync records it later.")
    ] = False,
    timeout: Annotated[
        str,
        typer.Option(
            help="How long to wait for the asset to be ready (e.g. 30m, 90s).",
            autocompletion=_suggest("90s", "10m", "30m", "1h", "2h"),
        ),
    ] = "30m",
    json_out: JsonOpt = False,
    playback_policy: PlaybackPolicyOpt = None,
    video_quality: VideoQualityOpt = None,
    max_resolution: MaxResolutionOpt = None,
    captions: CaptionsOpt = None,
    static_rendition: StaticRenditionOpt = None,
    normalize_audio: NormalizeAudioOpt = None,
    test: TestAssetOpt = False,
) -> None:
    """Upload FILE (or have Mux fetch URL) for a lesson or course; resumable: re-run the same
    command to continue."""
    from vidpipe.media import display_source, is_url

    ui = _ui(json_out)
    size = _chunk_size(chunk_size)
    wait_for = _duration(timeout, "--timeout")
    settings = asset_options(
        playback_policy,
        video_quality,
        max_resolution,
        captions,
        static_rendition,
        normalize_audio,
        test,
    )
    shown = display_source(source) if is_url(source) else Path(source).name
    with _vidpipe(ctx, ui) as vp, ui.progress(f"{shown} -> {_label(lesson, course)}") as bar:
        outcome = vp.upload(
            source,
            lesson=lesson,
            course=course,
            chunk_size=size,
            replace=replace,
            wait=not no_wait,
            timeout=wait_for,
            on_progress=bar,
            **settings,
        )
    for warning in outcome.warnings:
        ui.warn(warning)
    if json_out:
        ui.json(outcome.as_json())
        return
    if outcome.transfer is not None:
        from vidpipe.ui import transfer_summary

        ui.message(transfer_summary(outcome.transfer))
    target = outcome.target
    if outcome.state == "ready":
        ui.line(
            f"{target}: asset {outcome.asset_id} ready, playback ID {outcome.playback_id} recorded"
        )
        if outcome.old_asset_deleted:
            ui.line(f"replaced asset {outcome.replaced_asset_id} deleted from Mux")
    else:
        what = f"upload {outcome.upload_id} transferred" if outcome.upload_id else "ingest started"
        if outcome.asset_id and not outcome.upload_id:
            what += f" (asset {outcome.asset_id})"
        ui.line(
            f"{target}: {what}; not waiting for the asset (`vidpipe sync` or a webhook records it)"
        )


@app.command("import")
def import_(
    ctx: typer.Context,
    manifest: Annotated[
        Path,
        typer.Argument(
            help="CSV with a header (or JSON Lines): source, and lesson or course.",
            metavar="MANIFEST",
            show_default=False,
        ),
    ],
    jobs: Annotated[
        int, typer.Option("--jobs", help="Transfers at a time (1..16).", min=1, max=16)
    ] = 4,
    replace: Annotated[
        bool,
        typer.Option("--replace", help="Replace videos the rows record from outside the manifest."),
    ] = False,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Stop after the transfers; sync records them later.")
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Check the manifest and show the plan; change nothing."),
    ] = False,
    chunk_size: Annotated[
        str,
        typer.Option(
            help="Bytes per PUT: auto (adaptive), or bytes or units (256KiB, 8MiB), "
            "a multiple of 256 KiB."
        ),
    ] = "auto",
    timeout: Annotated[
        str, typer.Option(help="How long to wait for each asset to be ready (e.g. 30m, 90s).")
    ] = "30m",
    json_out: JsonOpt = False,
    playback_policy: PlaybackPolicyOpt = None,
    video_quality: VideoQualityOpt = None,
    max_resolution: MaxResolutionOpt = None,
    captions: CaptionsOpt = None,
    static_rendition: StaticRenditionOpt = None,
    normalize_audio: NormalizeAudioOpt = None,
    test: TestAssetOpt = False,
) -> None:
    """Upload every video a manifest names; re-run the same command to resume. Exit 1 when
    an item failed, 2 when a line is bad (nothing is changed then)."""
    from vidpipe.render import import_progress, render_import

    ui = _ui(json_out)
    size = _chunk_size(chunk_size)
    wait_for = _duration(timeout, "--timeout")
    settings = asset_options(
        playback_policy,
        video_quality,
        max_resolution,
        captions,
        static_rendition,
        normalize_audio,
        test,
    )
    with _vidpipe(ctx, ui) as vp, import_progress(ui) as observer:
        report = vp.import_manifest(
            manifest,
            jobs=jobs,
            replace=replace,
            wait=not no_wait,
            dry_run=dry_run,
            timeout=wait_for,
            chunk_size=size,
            observer=observer,
            **settings,
        )
    render_import(ui, report)
    if not report.ok:
        raise typer.Exit(1)


def _label(lesson: int | None, course: int | None) -> str:
    return f"lesson {lesson}" if lesson is not None else f"course {course}"


URL_MAX_EXPIRY = 366 * 86400.0


@app.command()
def url(
    ctx: typer.Context,
    lesson: LessonOpt = None,
    course: CourseOpt = None,
    expires: Annotated[
        str, typer.Option(help="How long a signed URL's token stays valid (e.g. 6h, 2d, 90m).")
    ] = "6h",
    json_out: JsonOpt = False,
) -> None:
    """The stream and thumbnail URLs of a lesson's or course's video (signed when its
    playback ID is signed: needs MUX_SIGNING_KEY_ID and MUX_SIGNING_KEY)."""
    from vidpipe.errors import UsageError

    ui = _ui(json_out)
    lifetime = _duration(expires, "--expires")
    if not 0 < lifetime <= URL_MAX_EXPIRY:
        raise UsageError("--expires must be more than 0 and at most 366d")
    with _vidpipe(ctx, ui) as vp:
        result = vp.url(lesson=lesson, course=course, expires=lifetime)
    for warning in result.warnings:
        ui.warn(warning)
    if json_out:
        ui.json(result.as_json())
        return
    if result.expires_at is not None:
        from datetime import UTC, datetime

        until = datetime.fromtimestamp(result.expires_at, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        ui.message(f"{result.target}: signed playback ID {result.playback_id}, valid until {until}")
    else:
        ui.message(f"{result.target}: public playback ID {result.playback_id}")
    ui.line(result.stream_url)
    ui.line(result.thumbnail_url)


@app.command()
def status(
    ctx: typer.Context,
    lesson: LessonOpt = None,
    course: CourseOpt = None,
    all_rows: Annotated[
        bool,
        typer.Option(
            "--all",
            help="On a terminal, list every target (default: those needing attention first, "
            "at most 20).",
        ),
    ] = False,
    wide: WideOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """The database and Mux side by side (all targets with a video or an unfinished upload)."""
    from vidpipe.render import render_status

    ui = _ui(json_out, wide=wide)
    with _vidpipe(ctx, ui) as vp, ui.walk("status") as on_progress:
        report = vp.status(lesson=lesson, course=course, on_progress=on_progress)
    render_status(ui, report, show_all=all_rows)


# -- verify / sync / delete --------------------------------------------------------------------


@app.command()
def verify(
    ctx: typer.Context,
    lesson: LessonOpt = None,
    course: CourseOpt = None,
    wide: WideOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Read-only drift report: exit 0 when the database agrees with Mux, 1 on drift."""
    from vidpipe.render import render_report

    ui = _ui(json_out, wide=wide)
    with _vidpipe(ctx, ui) as vp, ui.walk("verify") as on_progress:
        report = vp.verify(lesson=lesson, course=course, on_progress=on_progress)
    render_report(ui, report, title="verify")
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def sync(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would change; change nothing.")
    ] = False,
    prune_orphans: Annotated[
        bool, typer.Option("--prune-orphans", help="Delete orphan assets (old enough) from Mux.")
    ] = False,
    orphan_min_age: Annotated[
        str,
        typer.Option(
            help="Only prune orphans older than this (e.g. 24h, 90m, 2d).",
            autocompletion=_suggest("1h", "24h", "2d", "7d", "30d"),
        ),
    ] = "24h",
    max_deletes: Annotated[
        int, typer.Option(help="Delete at most this many orphans per run.", min=0)
    ] = 10,
    max_clears: Annotated[
        int,
        typer.Option(
            help="Clear at most this many rows (missing or errored assets); over it, change "
            "nothing and exit 1.",
            min=0,
        ),
    ] = 10,
    fix_policy: Annotated[
        bool,
        typer.Option(
            "--fix-policy",
            help="Repair policy drift: give assets a playback ID of the configured policy, "
            "record it, delete their playback IDs of the other policy that no row names.",
        ),
    ] = False,
    wide: WideOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Make the database agree with Mux (for cron). One sync at a time."""
    from vidpipe.render import render_report

    ui = _ui(json_out, wide=wide)
    min_age = _duration(orphan_min_age, "--orphan-min-age")
    with _vidpipe(ctx, ui) as vp, ui.walk("sync") as on_progress:
        report = vp.sync(
            dry_run=dry_run,
            prune_orphans=prune_orphans,
            orphan_min_age=min_age,
            max_deletes=max_deletes,
            max_clears=max_clears,
            fix_policy=fix_policy,
            on_progress=on_progress,
        )
    render_report(ui, report, title="sync (dry run)" if dry_run else "sync")
    if report.blocked is not None:
        ui.error(
            f"{report.blocked.reason}; if these rows really lost their videos, run again with "
            f"--max-clears {report.blocked.clears}"
        )
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def delete(
    ctx: typer.Context,
    asset: Annotated[
        str | None, typer.Option("--asset", help="The Mux asset id.", show_default=False)
    ] = None,
    lesson: LessonOpt = None,
    course: CourseOpt = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Delete an asset from Mux and clear it from every row that names it."""
    from vidpipe.errors import UsageError
    from vidpipe.render import render_delete

    ui = _ui(json_out)
    if sum(x is not None for x in (asset, lesson, course)) != 1:
        raise UsageError("name exactly one of --asset ASSET_ID, --lesson ID, --course ID")
    if asset is not None and not asset.strip():
        raise UsageError("--asset needs a Mux asset id")
    with _vidpipe(ctx, ui) as vp:
        plan = vp.plan_delete(asset_id=asset, lesson=lesson, course=course)
        if not yes:
            if not (sys.stdin.isatty() and sys.stderr.isatty()):
                raise UsageError("not a terminal: pass --yes to delete without confirmation")
            rows = ", ".join(str(t) for t in plan.targets) or "no rows"
            if not typer.confirm(
                f"Delete asset {plan.asset_id} from Mux and clear it from {rows}?", err=True
            ):
                ui.message("nothing deleted")
                raise typer.Exit(1)
        with ui.walk("delete") as on_progress:
            result = vp.delete(plan, on_progress=on_progress)
    render_delete(ui, result)


# -- download / export -------------------------------------------------------------------

TimeoutOpt = Annotated[
    str,
    typer.Option(
        help="How long to wait for Mux to prepare an original (e.g. 30m, 90s).",
        autocompletion=_suggest("90s", "10m", "30m", "1h", "2h"),
    ),
]


@app.command()
def download(
    ctx: typer.Context,
    lesson: LessonOpt = None,
    course: CourseOpt = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="Where to write the file [default: lesson-ID.mp4 / course-ID.mp4 here].",
            metavar="PATH",
            show_default=False,
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace PATH if it exists.")] = False,
    timeout: TimeoutOpt = "30m",
    json_out: JsonOpt = False,
) -> None:
    """Download the original of a lesson's or course's video (resumable: re-run the same
    command to continue). Master access is temporary while it runs, then off."""
    from vidpipe.render_originals import download_progress, render_download

    ui = _ui(json_out)
    wait_for = _duration(timeout, "--timeout")
    label = f"lesson {lesson}" if lesson is not None else f"course {course}"
    with _vidpipe(ctx, ui) as vp, download_progress(ui, label) as observer:
        result = vp.download(
            lesson=lesson,
            course=course,
            path=output,
            force=force,
            timeout=wait_for,
            observer=observer,
        )
    render_download(ui, result)


@app.command()
def export(
    ctx: typer.Context,
    directory: Annotated[
        Path,
        typer.Argument(
            help="The folder to fill (created if missing).", metavar="DIR", show_default=False
        ),
    ],
    lesson: LessonOpt = None,
    course: CourseOpt = None,
    jobs: Annotated[
        int, typer.Option("--jobs", help="Downloads at a time (1..16).", min=1, max=16)
    ] = 4,
    timeout: TimeoutOpt = "30m",
    json_out: JsonOpt = False,
) -> None:
    """Download every row's original (or the one named) into DIR, with DIR/manifest.csv for
    `vidpipe import`. Re-running skips complete files and continues partial ones; exit 1
    when an item failed."""
    from vidpipe.render_originals import export_progress, render_export

    ui = _ui(json_out)
    wait_for = _duration(timeout, "--timeout")
    with _vidpipe(ctx, ui) as vp, export_progress(ui) as observer:
        report = vp.export(
            directory,
            lesson=lesson,
            course=course,
            jobs=jobs,
            timeout=wait_for,
            observer=observer,
        )
    render_export(ui, report)
    if not report.ok:
        raise typer.Exit(1)


# -- db -----------------------------------------------------------------------------------------


@db_app.command("init")
def db_init(ctx: typer.Context) -> None:
    """Create the tables that are missing (never alters what exists)."""
    ui = _ui()
    with _vidpipe(ctx, ui) as vp:
        created = vp.init_db()
    if created:
        ui.line(f"created: {', '.join(created)}")
    else:
        ui.line("nothing to do: every table exists")


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
    from vidpipe.environment import Change

    ui = _ui()
    with _vidpipe(ctx, ui) as vp:
        pinning = vp.pin_environment(force=force)
    env, before = pinning.environment, pinning.previous
    ui.line(
        {
            Change.PINNED: f"this database now belongs to Mux environment {env}",
            Change.UNCHANGED: f"this database already belongs to Mux environment {env}",
            Change.RENAMED: f"Mux environment {env.id} renamed: {before and before.name} -> "
            f"{env.name}",
            Change.MOVED: f"this database moved from Mux environment {before} to {env}",
        }[pinning.change]
    )


# -- webhooks -----------------------------------------------------------------------------------


@webhook_app.command("serve")
def webhook_serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
) -> None:
    """Serve Mux webhooks (POST / or /webhooks/mux), verified with MUX_WEBHOOK_SECRET."""
    ui = _ui()
    with _vidpipe(ctx, ui) as vp:
        vp.serve_webhooks(host=host, port=port, log=ui.message)


@webhook_app.command("apply")
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
    json_out: JsonOpt = False,
) -> None:
    """Apply one webhook event (e.g. copied from the Mux dashboard) to the database."""
    from vidpipe.errors import UsageError

    ui = _ui(json_out)
    if signature and no_verify:
        raise UsageError("give --signature or --no-verify, not both")
    if not signature and not no_verify:
        raise UsageError("give --signature HEADER to verify the event, or --no-verify")
    with _vidpipe(ctx, ui) as vp:
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
    ctx: typer.Context,
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
    environment_id: Annotated[
        str | None,
        typer.Option(
            help="The Mux environment ID it stands for (whoami, webhooks) [default: emu-env-1].",
            show_default=False,
        ),
    ] = None,
    environment_name: Annotated[
        str | None,
        typer.Option(
            help="The name of that Mux environment [default: Development].", show_default=False
        ),
    ] = None,
) -> None:
    """Run a local stand-in for the Mux API (for tests, demos and rehearsals)."""
    from vidpipe.emulator import run_emulator

    ui = _ui()
    secret = None
    if webhook_url:
        with _vidpipe(ctx) as vp:
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
        **named,
    )


@app.command()
def demo(
    ctx: typer.Context,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir", help="Work in this folder (default: a temporary one).", show_default=False
        ),
    ] = None,
) -> None:
    """Show the whole job with no Mux account: local database, emulator, upload, verify, sync."""
    from vidpipe.demo import run_demo

    invocation = ctx.find_object(Invocation) or Invocation()

    def run_step(argv: list[str], settings: dict[str, Any]) -> int:
        # Each step is the real command line, with the demo's settings and no `.env`.
        child = Invocation(debug=invocation.debug, settings=settings, read_dotenv=False)
        return run(argv, invocation=child)

    run_demo(directory, run_step)


# -- entry point --------------------------------------------------------------------------------


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
    from vidpipe.errors import EnvironmentMismatch, TargetHasVideo, WaitTimeout
    from vidpipe.manifest import ManifestError
    from vidpipe.targets import TargetChoiceError
    from vidpipe.webhooks import MissingSignature, StaleSignature

    if isinstance(exc, TargetChoiceError):
        return {
            "both": "give either --lesson or --course, not both",
            "none": "name a target: --lesson ID or --course ID",
        }.get(exc.problem, f"{exc}: --lesson / --course take a positive integer id")
    if isinstance(exc, EnvironmentMismatch):
        return (
            f"{exc}. Use a token of Mux environment {exc.pinned}, or, if the database really "
            f"moved to {exc.current}, run `vidpipe db pin --force`"
        )
    if isinstance(exc, InvalidAssetSetting) and exc.setting in _ASSET_OPTION_NAMES:
        return f"{_ASSET_OPTION_NAMES[exc.setting]}: {exc.reason}"
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
    print(f"vidpipe: error: {text}", file=sys.stderr, flush=True)


if __name__ == "__main__":  # pragma: no cover
    main()
