"""Commands that compare the database with Mux and act on what they find: status, verify,
sync, delete."""

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer import Context

from vidpipe.cli.base import app, open_vidpipe
from vidpipe.cli.monitoring import MetricsFileOpt, RunMetrics, metrics_file
from vidpipe.cli.options import Named, command, duration, suggest

if TYPE_CHECKING:
    from vidpipe.delete import DeletePlan
    from vidpipe.ui import UI

AllRowsOpt = Annotated[
    bool,
    typer.Option(
        "--all",
        help="On a terminal, list every target (default: those needing attention first, "
        "at most 20).",
    ),
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Print what would change; change nothing.")
]
PruneOpt = Annotated[
    bool, typer.Option("--prune-orphans", help="Delete orphan assets (old enough) from Mux.")
]
FixPolicyOpt = Annotated[
    bool,
    typer.Option(
        "--fix-policy",
        help="Repair policy drift: give assets a playback ID of the configured policy, "
        "record it, delete their playback IDs of the other policy that no row names.",
    ),
]
FixSettingsOpt = Annotated[
    bool,
    typer.Option(
        "--fix-settings",
        help="Bring recorded assets in line with today's settings: generate the configured "
        "captions, add the configured static renditions, set meta from the row (additive).",
    ),
]
MaxFixesOpt = Annotated[
    int,
    typer.Option(
        help="Fix the settings of at most this many assets; over it, change nothing and exit 1.",
        min=0,
    ),
]


@command(app, output="table", target=True)
def status(ctx: Context, all_rows: AllRowsOpt = False, *, target: Named, ui: "UI") -> None:
    """The database and Mux side by side (all targets with a video or an unfinished upload)."""
    from vidpipe.render import render_status

    render_status(ui, _walk(ctx, ui, "status", **target.kwargs()), show_all=all_rows)


@command(app, output="table", target=True)
def verify(ctx: Context, metrics_path: MetricsFileOpt = None, *, target: Named, ui: "UI") -> None:
    """Read-only drift report: exit 0 when the database agrees with Mux, 1 on drift."""
    from vidpipe.render import render_report

    with metrics_file(metrics_path, "verify", ui) as run:
        report = _walk(ctx, ui, "verify", run=run, **target.kwargs())
        render_report(ui, report, title="verify")
        if not report.ok:
            raise typer.Exit(1)


def _walk(
    ctx: typer.Context, ui: "UI", command: str, run: RunMetrics | None = None, **arguments: Any
) -> Any:
    """`vp.<command>(**arguments)` with the facade, while the terminal shows the walk; its
    report (and, should it fail, its Mux calls) go to `run`'s textfile."""
    with open_vidpipe(ctx, ui) as vp, ui.walk(command) as on_progress:
        if run is not None:
            run.vidpipe = vp
        report = getattr(vp, command)(on_progress=on_progress, **arguments)
    if run is not None:
        run.report(report)
    return report


@command(app, output="table")
def sync(
    ctx: Context,
    dry_run: DryRunOpt = False,
    prune_orphans: PruneOpt = False,
    orphan_min_age: Annotated[
        str,
        typer.Option(
            help="Only prune orphans older than this (e.g. 24h, 90m, 2d).",
            autocompletion=suggest("1h", "24h", "2d", "7d", "30d"),
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
    fix_policy: FixPolicyOpt = False,
    fix_settings: FixSettingsOpt = False,
    max_fixes: MaxFixesOpt = 100,
    metrics_path: MetricsFileOpt = None,
    *,
    ui: "UI",
) -> None:
    """Make the database agree with Mux (for cron). One sync at a time."""
    from vidpipe.render import render_report

    options: dict[str, Any] = {
        "orphan_min_age": duration(orphan_min_age, "--orphan-min-age"),
        "dry_run": dry_run,
        "prune_orphans": prune_orphans,
        "max_deletes": max_deletes,
        "max_clears": max_clears,
        "fix_policy": fix_policy,
        "fix_settings": fix_settings,
        "max_fixes": max_fixes,
    }
    with metrics_file(metrics_path, "sync", ui) as run:
        report = _walk(ctx, ui, "sync", run=run, **options)
        render_report(ui, report, title="sync (dry run)" if dry_run else "sync")
        if not report.ok:
            raise typer.Exit(1)


def _confirm(ui: "UI", plan: "DeletePlan") -> None:
    """Ask on the terminal before deleting; no (or no terminal to ask on) stops here."""
    from vidpipe.errors import UsageError
    from vidpipe.text import shown

    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise UsageError("not a terminal: pass --yes to delete without confirmation")
    rows = ", ".join(str(t) for t in plan.targets) or "no rows"
    # The asset ID comes from a row or from Mux: asked about as text.
    if not typer.confirm(
        f"Delete asset {shown(plan.asset_id)} from Mux and clear it from {rows}?", err=True
    ):
        ui.message("nothing deleted")
        raise typer.Exit(1)


AssetOpt = Annotated[str | None, typer.Option("--asset", help="The Mux asset id.")]
YesOpt = Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")]


@command(app, output="json", target=True)
def delete(
    ctx: Context, asset: AssetOpt = None, yes: YesOpt = False, *, target: Named, ui: "UI"
) -> None:
    """Delete an asset from Mux and clear it from every row that names it."""
    from vidpipe.render import render_delete

    with open_vidpipe(ctx, ui) as vp:
        plan = vp.plan_delete(asset_id=asset, **target.kwargs())
        if not yes:
            _confirm(ui, plan)
        with ui.walk("delete") as on_progress:
            result = vp.delete(plan, on_progress=on_progress)
    render_delete(ui, result)
