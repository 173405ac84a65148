"""Rendering of core results for the CLI: rich tables on a terminal, plain lines otherwise,
one JSON document with --json."""

from __future__ import annotations

from vidpipe.delete import DeleteResult
from vidpipe.reconcile import Report
from vidpipe.status import StatusReport
from vidpipe.ui import UI


def render_status(ui: UI, report: StatusReport) -> None:
    if ui.json_mode:
        ui.json(report.as_json())
        return
    if report.environment is not None:
        ui.line(f"status: Mux environment {report.environment}")
    if not report.entries:
        ui.line("no target has a video or an unfinished upload")
        return
    if ui.rich:
        _status_table(ui, report)
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
            )
        )
    columns = ["Target", "Title", "DB asset", "DB playback", "Mux status", "Mux playback"]
    ui.table("vidpipe status", [*columns, "Shared with", "Upload"], rows)


def _status_table(ui: UI, report: StatusReport) -> None:
    """A terminal table narrow enough for two full IDs: Mux's side folds into one column."""
    rows: list[tuple[str | None, ...]] = []
    for e in report.entries:
        mux = e.mux_status or ""
        if e.mux_status == "ready":
            on_mux = _playback_on_mux(e.db_playback_id, e.mux_playback_ids)
            mux += " ✓" if on_mux == "matches" else f" (playback {on_mux or 'none'})"
        notes = []
        if e.shared_with:
            notes.append("shared with " + ", ".join(str(t) for t in e.shared_with))
        if e.upload:
            notes.append("upload " + _upload_text(e.upload))
        rows.append(
            (str(e.target), e.title, e.db_asset_id, e.db_playback_id, mux, "; ".join(notes))
        )
    columns = ["Target", "Title", "DB asset", "DB playback", "Mux", "Notes"]
    if not any(r[-1] for r in rows):
        columns, rows = columns[:-1], [r[:-1] for r in rows]
    ui.table("vidpipe status", columns, rows)


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
        return
    with_action = report.command == "sync"
    if report.environment is not None:
        ui.line(f"{title}: Mux environment {report.environment}")
    if report.drift:
        columns = ["Kind", "Target", "Asset", "Detail"] + (["Action"] if with_action else [])
        rows = [
            (d.kind, str(d.target) if d.target else "-", d.asset_id, d.detail)
            + ((d.action,) if with_action else ())
            for d in report.drift
        ]
        ui.table(f"vidpipe {title}: drift", columns, rows)
    if report.journal:
        ui.table(
            f"vidpipe {title}: unfinished uploads",
            ["Target", "Upload", "State", "Detail", "Action"],
            [(str(j.target), j.upload_id, j.state, j.detail, j.action) for j in report.journal],
        )
    for failure in report.failed:
        ui.error(failure)
    summary = (
        f"{title}: checked {report.checked} rows against {report.assets} assets "
        f"({report.api_calls} API call{'' if report.api_calls == 1 else 's'}): "
    )
    summary += f"{len(report.drift)} drift" if report.drift else "no drift"
    if report.blocked is not None:
        summary += f"; nothing applied ({report.blocked.clears} clears over the limit)"
    ui.line(summary)


def render_delete(ui: UI, result: DeleteResult) -> None:
    if ui.json_mode:
        ui.json(result.as_json())
        return
    where = ", ".join(str(t) for t in result.cleared) or "no rows"
    if result.already_gone:
        ui.line(f"asset {result.asset_id} was already gone from Mux; cleared {where}")
    else:
        ui.line(f"deleted asset {result.asset_id} from Mux; cleared {where}")
