"""Rendering of core results for the CLI: rich tables on a terminal, plain lines otherwise,
one JSON document with --json."""

from __future__ import annotations

from vidpipe.reconcile import DeleteResult, Report, StatusReport
from vidpipe.ui import UI


def render_status(ui: UI, report: StatusReport) -> None:
    if ui.json_mode:
        ui.json(report.as_json())
        return
    if not report.entries:
        ui.line("no target has a video or an unfinished upload")
        return
    rows = []
    for e in report.entries:
        upload = ""
        if e.upload:
            upload = (
                f"{e.upload['state']} {e.upload['confirmed_bytes']:,}/"
                f"{e.upload['file_size']:,} bytes"
            )
        rows.append(
            (
                str(e.target),
                e.title,
                e.db_asset_id,
                e.db_playback_id,
                e.mux_status,
                ", ".join(e.mux_playback_ids),
                ", ".join(str(t) for t in e.shared_with),
                upload,
            )
        )
    ui.table(
        "vidpipe status",
        [
            "Target",
            "Title",
            "DB asset",
            "DB playback",
            "Mux status",
            "Mux playback",
            "Shared with",
            "Upload",
        ],
        rows,
    )


def render_report(ui: UI, report: Report, *, title: str) -> None:
    if ui.json_mode:
        ui.json(report.as_json())
        return
    with_action = report.command == "sync"
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
        f"({report.api_calls} API calls): "
    )
    summary += f"{len(report.drift)} drift" if report.drift else "no drift"
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
