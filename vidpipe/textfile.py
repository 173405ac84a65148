"""A run's figures as a node_exporter textfile (`--metrics-file` of verify, sync and import).

node_exporter's textfile collector reads every `*.prom` file of its folder at each scrape, so
the file is written whole: into a temporary file beside it, then renamed over it (a scrape
sees the old file or the new one, never half of one). Every series carries `command`, so the
files of several cron jobs can share the collector's folder without clashing.

Written with prometheus-client, in a registry of the run's own (never the global one).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile
from prometheus_client.parser import text_string_to_metric_families

from vidpipe.errors import UsageError, VidpipeError

LAST_SUCCESS = "vidpipe_last_success_timestamp_seconds"


@dataclass
class RunFigures:
    """What one run of `command` did. Figures a failed run never reached (no report) stay
    None and are left out of the file rather than written as zeros."""

    command: str
    success: bool
    finished: float
    """Unix time the run ended."""
    seconds: float
    api_calls: int | None = None
    rate_limited: int | None = None
    rows_checked: int | None = None
    drift: Mapping[str, int] | None = None
    """Drift items by kind, every kind present (zeros included)."""
    items: Mapping[str, int] = field(default_factory=dict)
    """import: items by state."""


def check_path(path: Path) -> None:
    """Refuse (`UsageError`) a textfile path that cannot be written: its folder must exist
    and be writable (the temporary file goes there), and the path must not be a folder."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UsageError(f"metrics file {path} is a folder")
    if not folder.is_dir():
        raise UsageError(f"metrics file folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"metrics file folder {folder} is not writable")


def write(path: Path, run: RunFigures) -> None:
    """Write `run` to `path` whole (temporary file in the same folder, then rename).

    `vidpipe_last_success_timestamp_seconds` is the run's end when it succeeded, else carried
    over from the file being replaced (absent until a first success), so "no success for a
    day" is one comparison with `time()`. Raises `VidpipeError` when the file cannot be
    written (no temporary file is left behind)."""
    registry = CollectorRegistry()
    labels = {"command": run.command}

    def gauge(name: str, text: str, value: float | None) -> None:
        if value is not None:
            Gauge(name, text, ["command"], registry=registry).labels(**labels).set(value)

    gauge("vidpipe_last_run_timestamp_seconds", "Unix time the last run ended.", run.finished)
    gauge(
        "vidpipe_last_run_success",
        "1 when the last run exited 0, else 0 (verify: drift found counts as 0).",
        1 if run.success else 0,
    )
    success_at = run.finished if run.success else _previous_success(path, run.command)
    gauge(LAST_SUCCESS, "Unix time of the last run that exited 0.", success_at)
    gauge("vidpipe_run_seconds", "Duration of the last run.", run.seconds)
    gauge("vidpipe_api_calls", "Mux API requests of the last run.", run.api_calls)
    gauge("vidpipe_rate_limited", "429 answers from Mux in the last run.", run.rate_limited)
    gauge("vidpipe_rows_checked", "Rows (or items) the last run checked.", run.rows_checked)

    def by(name: str, text: str, label: str, counts: Mapping[str, int] | None) -> None:
        if counts:
            series = Gauge(name, text, ["command", label], registry=registry)
            for value, count in sorted(counts.items()):
                series.labels(run.command, value).set(count)

    by("vidpipe_drift_items", "Drift items the last run found, by kind.", "kind", run.drift)
    by("vidpipe_import_items", "Manifest items of the last import, by state.", "state", run.items)
    try:
        write_to_textfile(str(path), registry)
    except OSError as exc:
        raise VidpipeError(
            f"could not write the metrics file {path}: {exc.strerror or exc}"
        ) from None


def _previous_success(path: Path, command: str) -> float | None:
    """The last success recorded in the file being replaced, if it holds one for `command`."""
    try:
        text = path.read_text(encoding="utf-8")
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == LAST_SUCCESS and sample.labels.get("command") == command:
                    return float(sample.value)
    except (OSError, ValueError, UnicodeDecodeError):
        return None  # no file yet, or not one of ours: no success to carry over
    return None
