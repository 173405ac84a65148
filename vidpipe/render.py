"""Rendering of core results for the CLI: rich tables on a terminal, plain lines otherwise,
one JSON document with --json. An import's live display and table: `render_import`;
download and export: `render_originals`.

Text vidpipe did not write (titles, file names, IDs and messages from Mux) goes into a line
only through `vidpipe.text.shown`; table cells are the UI's (it escapes each one), JSON
keeps the exact values."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from vidpipe.text import shown, shown_lines
from vidpipe.ui import UI, Col, Role

# The results are only read here: their modules load with the commands that make them, so
# a command imports no other command's core (an upload loads no sync, import or delete).
if TYPE_CHECKING:
    from vidpipe.captions import CaptionsReport
    from vidpipe.delete import DeleteResult
    from vidpipe.doctor import Check, Diagnosis
    from vidpipe.environment import Pinning
    from vidpipe.pipeline import UploadOutcome
    from vidpipe.playback import PlaybackUrls
    from vidpipe.reconcile import Report
    from vidpipe.status import StatusEntry, StatusReport
    from vidpipe.webhooks import EventOutcome

STATUS_ROWS = 20
"""On a terminal, `status` lists at most this many targets unless asked for all."""


def render_status(ui: UI, report: StatusReport, *, show_all: bool = False) -> None:
    """JSON and plain output: every target. On a terminal: the targets that need attention
    first, and past `STATUS_ROWS` targets only those, with a count of the rest."""
    if ui.json_mode:
        ui.json(report.as_json())
        return
    if report.environment is not None:
        ui.line(f"status: Mux environment {shown(report.environment)}")
    if not report.entries:
        ui.line("no target has a video or an unfinished upload")
        return
    if ui.rich:
        _status_table(ui, report, show_all=show_all)
        return
    rows = []
    for e in report.entries:
        rows.append(
            (
                str(e.target),
                e.title,
                e.db_asset_id,
                e.db_playback_id,
                e.mux_status,
                _playback_on_mux(e.db_playback_id, e.mux_playback_ids),
                ", ".join(str(t) for t in e.shared_with),
                _upload_text(e.upload),
                _captions_text(e),
                _renditions_text(e),
            )
        )
    columns = ["Target", "Title", "DB asset", "DB playback", "Mux status", "Mux playback"]
    extra = ["Shared with", "Upload", "Captions", "Renditions"]
    ui.table("vidpipe status", [*columns, *extra], rows)


def _captions_text(entry: StatusEntry) -> str:
    """`en ready, fr preparing`: each text track's language and state."""
    return ", ".join(f"{c['language'] or '?'} {c['status'] or ''}".strip() for c in entry.captions)


def _renditions_text(entry: StatusEntry) -> str:
    return ", ".join(f"{r['resolution'] or '?'} {r['status']}" for r in entry.renditions)


def needs_attention(entry: StatusEntry) -> bool:
    """Anything but a ready asset whose playback ID the row records, with no upload pending:
    missing, errored, still preparing, a playback ID Mux does not have, an unfinished upload."""
    if entry.upload or entry.mux_status != "ready":
        return True
    return _playback_on_mux(entry.db_playback_id, entry.mux_playback_ids) != "matches"


def _status_table(ui: UI, report: StatusReport, *, show_all: bool) -> None:
    """A terminal table: Mux's side folds into a status word and notes; the title wraps."""
    attention = [e for e in report.entries if needs_attention(e)]
    fine = [e for e in report.entries if not needs_attention(e)]
    shown = attention + fine
    if not show_all and len(shown) > STATUS_ROWS:
        shown = attention[:STATUS_ROWS]
    rows: list[tuple[str | None, ...]] = []
    for e in shown:
        notes = []
        mux = e.mux_status or ""
        if e.mux_status == "ready":
            on_mux = _playback_on_mux(e.db_playback_id, e.mux_playback_ids)
            if on_mux == "matches":
                mux += " ✓"
            else:
                notes.append(f"playback ID not on the asset (Mux has {on_mux or 'none'})")
        if e.shared_with:
            notes.append("shared with " + ", ".join(str(t) for t in e.shared_with))
        if e.upload:
            notes.append("upload " + _upload_text(e.upload))
        if e.captions:
            notes.append("captions " + _captions_text(e))
        if e.renditions:
            notes.append("MP4 " + _renditions_text(e))
        notes_text = "; ".join(notes)
        rows.append((str(e.target), mux, e.db_asset_id, e.db_playback_id, notes_text, e.title))
    columns = [
        Col("Target"),
        Col("Mux"),
        Col("DB asset", Role.ID),
        Col("DB playback", Role.ID),
        Col("Notes", Role.TEXT, label=""),
        Col("Title", Role.TEXT),
    ]
    if rows:
        ui.table("vidpipe status", columns, rows)
    hidden_attention = len(attention) - min(len(attention), len(shown))
    hidden_fine = len(report.entries) - len(shown) - hidden_attention
    if hidden_attention or hidden_fine:
        told = f"{len(report.entries):,} targets: {len(attention):,} need attention"
        if hidden_attention:
            told += f" ({len(shown):,} shown)"
        if hidden_fine:
            told += f", {hidden_fine:,} ready (not shown)"
        ui.line(told + "; --all lists them all")


def _upload_text(upload: dict[str, object] | None) -> str:
    if not upload:
        return ""
    return f"{upload['state']} {upload['confirmed_bytes']:,}/{upload['file_size']:,} bytes"


def _playback_on_mux(db_playback: str | None, on_mux: list[str]) -> str:
    """`matches` when the row's playback ID is one of the asset's, else what Mux has."""
    if db_playback and db_playback in on_mux:
        return "matches"
    return ", ".join(on_mux)


def render_report(ui: UI, report: Report, *, title: str) -> None:
    if ui.json_mode:
        ui.json(report.as_json())
        _blocked(ui, report)
        return
    with_action = report.command == "sync"
    if report.environment is not None:
        ui.line(f"{title}: Mux environment {shown(report.environment)}")
    if report.drift:
        columns = [Col("Kind"), Col("Target"), Col("Asset", Role.ID), Col("Detail", Role.TEXT)]
        rows = [
            (d.kind, str(d.target) if d.target else "-", d.asset_id, d.detail)
            + ((d.action,) if with_action else ())
            for d in report.drift
        ]
        if with_action:
            columns.append(Col("Action", Role.TEXT, label="→ "))
        ui.table(f"vidpipe {title}: drift", *_prose_last(ui, columns, rows))
    if report.journal:
        columns = [
            Col("Target"),
            Col("Upload", Role.ID),
            Col("State"),
            Col("Detail", Role.TEXT),
            Col("Action", Role.TEXT, label="→ "),
        ]
        rows = [(str(j.target), j.upload_id, j.state, j.detail, j.action) for j in report.journal]
        ui.table(f"vidpipe {title}: unfinished uploads", *_prose_last(ui, columns, rows))
    for failure in report.failed:
        ui.error(shown(failure))
    summary = (
        f"{title}: checked {report.checked} rows against {report.assets} assets "
        f"({report.api_calls} API call{'' if report.api_calls == 1 else 's'}): "
    )
    summary += f"{len(report.drift)} drift" if report.drift else "no drift"
    if report.blocked is not None:
        over = []
        if report.blocked.over_clears:
            over.append(f"{report.blocked.clears} clears")
        if report.blocked.over_fixes:
            over.append(f"{report.blocked.fixes} fixes")
        summary += f"; nothing applied ({' and '.join(over)} over the limit)"
    ui.line(summary)
    _blocked(ui, report)


def _blocked(ui: UI, report: Report) -> None:
    """A sync that would clear more rows than allowed says so on stderr (with --json too)."""
    blocked = report.blocked
    if blocked is not None:
        hints = []
        if blocked.over_clears:
            hints.append(
                f"if these rows really lost their videos, run again with "
                f"--max-clears {blocked.clears}"
            )
        if blocked.over_fixes:
            hints.append(f"to fix them all, run again with --max-fixes {blocked.fixes}")
        ui.error(f"{blocked.reason}; {'; '.join(hints)}")


def _prose_last(
    ui: UI, columns: list[Col], rows: Sequence[tuple[object, ...]]
) -> tuple[list[Col], Sequence[tuple[object, ...]]]:
    """On a terminal the Detail column goes last (the one that wraps); plain lines keep
    their order."""
    if not ui.rich or columns[-1].name == "Detail":
        return columns, rows
    at = next(i for i, c in enumerate(columns) if c.name == "Detail")
    order = [i for i in range(len(columns)) if i != at] + [at]
    return [columns[i] for i in order], [tuple(r[i] for i in order) for r in rows]


def render_delete(ui: UI, result: DeleteResult) -> None:
    if ui.json_mode:
        ui.json(result.as_json())
        return
    where = ", ".join(str(t) for t in result.cleared) or "no rows"
    asset = shown(result.asset_id)
    if result.already_gone:
        ui.line(f"asset {asset} was already gone from Mux; cleared {where}")
    else:
        ui.line(f"deleted asset {asset} from Mux; cleared {where}")


# -- upload, url, db, webhook apply ------------------------------------------------------------


def _json_done(ui: UI, result: UploadOutcome | PlaybackUrls) -> bool:
    """Warnings (stderr) first; with --json the one document, and True: nothing more."""
    for warning in result.warnings:
        ui.warn(shown(warning))
    if ui.json_mode:
        ui.json(result.as_json())
    return ui.json_mode


def render_upload(ui: UI, outcome: UploadOutcome) -> None:
    if _json_done(ui, outcome):
        return
    if outcome.transfer is not None:
        from vidpipe.ui import transfer_summary

        ui.message(transfer_summary(outcome.transfer))
    target, asset = outcome.target, shown(outcome.asset_id)
    if outcome.state == "ready":
        ui.line(f"{target}: asset {asset} ready, playback ID {shown(outcome.playback_id)} recorded")
        if outcome.old_asset_deleted:
            ui.line(f"replaced asset {shown(outcome.replaced_asset_id)} deleted from Mux")
    else:
        upload = shown(outcome.upload_id)
        what = f"upload {upload} transferred" if outcome.upload_id else "ingest started"
        if outcome.asset_id and not outcome.upload_id:
            what += f" (asset {asset})"
        ui.line(
            f"{target}: {what}; not waiting for the asset (`vidpipe sync` or a webhook records it)"
        )


def render_url(ui: UI, result: PlaybackUrls) -> None:
    if _json_done(ui, result):
        return
    if result.expires_at is not None:
        from datetime import UTC, datetime

        until = datetime.fromtimestamp(result.expires_at, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        playback = shown(result.playback_id)
        ui.message(f"{result.target}: signed playback ID {playback}, valid until {until}")
    else:
        ui.message(f"{result.target}: public playback ID {shown(result.playback_id)}")
    ui.line(shown(result.stream_url))
    ui.line(shown(result.thumbnail_url))


def render_init(ui: UI, created: list[str]) -> None:
    if created:
        ui.line(f"created: {', '.join(created)}")
    else:
        ui.line("nothing to do: every table exists")


def render_pin(ui: UI, pinning: Pinning) -> None:
    from vidpipe.environment import Change

    env, before = shown(pinning.environment), shown(pinning.previous)
    current = pinning.environment
    ui.line(
        {
            Change.PINNED: f"this database now belongs to Mux environment {env}",
            Change.UNCHANGED: f"this database already belongs to Mux environment {env}",
            Change.RENAMED: f"Mux environment {shown(current.id)} renamed: "
            f"{shown(pinning.previous and pinning.previous.name)} -> {shown(current.name)}",
            Change.MOVED: f"this database moved from Mux environment {before} to {env}",
        }[pinning.change]
    )


def render_event(ui: UI, outcome: EventOutcome) -> None:
    if ui.json_mode:
        ui.json(outcome.as_json())
        return
    ui.line(
        f"{shown(outcome.event_type)} {shown(outcome.event_id) or '-'}: {outcome.outcome}"
        + (f" ({shown(outcome.detail)})" if outcome.detail else "")
    )


# -- import -------------------------------------------------------------------------------------


def render_captions(ui: UI, report: CaptionsReport, done: str) -> None:
    """`captions add | list | remove`: the tracks concerned (`done`: `added`, `list`,
    `removed`)."""
    if ui.json_mode:
        ui.json(report.as_json())
        return
    rows = [
        (
            t.id,
            t.language_code or "",
            t.name or "",
            t.source,
            t.status or "",
            _cc(t.closed_captions),
        )
        for t in report.tracks
    ]
    if done == "list" and not rows:
        ui.line(f"{report.target} (asset {shown(report.asset_id)}) has no text tracks")
        return
    if done == "list":
        columns = [
            Col("Track", Role.ID),
            Col("Language"),
            Col("Name", Role.TEXT),
            Col("Source"),
            Col("Status"),
            Col("CC"),
        ]
        title = f"text tracks of {report.target} (asset {shown(report.asset_id)})"
        ui.table(title, columns, rows)
        return
    for t in report.tracks:
        ui.line(
            f"{done} track {shown(t.id)} ({shown(t.language_code)}, {shown(repr(t.name))}) on "
            f"{report.target}: {'deleted' if done == 'removed' else shown(t.status)}"
        )


def _cc(closed_captions: bool) -> str:
    return "yes" if closed_captions else ""


# -- doctor ----------------------------------------------------------------------------------

_CHECK_WIDTH = max(len("webhook_secret"), len("environment"))


def render_diagnosis(ui: UI, diagnosis: Diagnosis) -> None:
    """`doctor`: on a terminal a row per check (`✓`/`✗`, its name, what it found, and under
    a finding with something to do, `→` and what); off one the same as plain lines (`ok` /
    `FAIL`, `what to do:`); `--json` the diagnosis's document. A last line counts failures."""
    if ui.json_mode:
        ui.json(diagnosis.as_json())
        return
    if ui.rich:
        _diagnosis_rich(ui, diagnosis)
    else:
        for check in diagnosis.checks:
            _check_plain(ui, check)
    failed = len(diagnosis.failed)
    total = len(diagnosis.checks)
    ui.line(
        f"doctor: all {total} checks passed"
        if not failed
        else f"doctor: {failed} of {total} checks failed"
    )


def _diagnosis_rich(ui: UI, diagnosis: Diagnosis) -> None:
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 1))
    grid.add_column(width=1, no_wrap=True)
    grid.add_column(width=_CHECK_WIDTH, no_wrap=True)
    grid.add_column(ratio=1)
    for check in diagnosis.checks:
        mark = Text("✓", style="green") if check.ok else Text("✗", style="bold red")
        body = Text(shown_lines(check.detail))
        if check.hint:
            body.append("\n→ ", style="yellow")
            body.append(shown_lines(check.hint))
        grid.add_row(mark, Text(check.name, style="bold" if not check.ok else ""), body)
    ui.out.print(grid)


def _check_plain(ui: UI, check: Check) -> None:
    mark = "ok" if check.ok else "FAIL"
    ui.line(f"{mark:<4}  {check.name:<{_CHECK_WIDTH}}  {shown_lines(check.detail)}")
    if check.hint:
        ui.line(f"{'':<4}  {'':<{_CHECK_WIDTH}}  what to do: {shown_lines(check.hint)}")
