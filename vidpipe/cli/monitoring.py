"""`--metrics-file PATH` of verify, sync and import: the run's figures as a node_exporter
textfile (`vidpipe.textfile`), written when the command ends with exit 0 or 1 (or is
interrupted), never when it is refused (exit 2: nothing ran, so nothing is reported)."""

# No `from __future__ import annotations` in the CLI (see vidpipe.cli.base).
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from vidpipe.api import Vidpipe
    from vidpipe.ui import UI

MetricsFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--metrics-file",
        help="Write the run's figures to this file for node_exporter's textfile collector "
        "(name it *.prom; written whole on exit 0 and 1, not when the command is refused).",
        show_default=False,
        dir_okay=False,
    ),
]

MetricsPortOpt = Annotated[
    int | None,
    typer.Option(
        help="Also serve Prometheus metrics (/metrics) and health checks on this port.",
        min=1,
        max=65535,
        show_default=False,
    ),
]
MetricsHostOpt = Annotated[
    str, typer.Option(help="Address of the metrics port (keep it private: no auth).")
]


LogFormatOpt = Annotated[
    str,
    typer.Option(
        help="text (a line per request) or json (one JSON object per line).",
        metavar="text|json",
        autocompletion=lambda: ["text", "json"],
    ),
]


def check_log_format(log_format: str) -> None:
    """`--log-format` is `text` or `json` (exit 2 otherwise, before anything starts)."""
    from vidpipe.errors import UsageError

    if log_format not in ("text", "json"):
        raise UsageError(f"--log-format must be text or json, not {log_format!r}")


def raw_line(line: str) -> None:
    """A log line on stderr as it is (never wrapped or styled: a JSON line stays one line)."""
    print(line, file=sys.stderr, flush=True)


def json_message(text: str) -> None:
    """A message of the facade (e.g. the database pinned at start) as a JSON log line."""
    from vidpipe.webhooks.logs import LogRecord, json_line

    raw_line(json_line(LogRecord(text)))


class RunMetrics:
    """What the command tells the textfile: the facade (for its Mux call counts, should the
    run fail before a report) and the report, once there is one."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.vidpipe: Vidpipe | None = None
        self.figures: dict[str, Any] = {}

    def report(self, report: Any) -> None:
        """Take the figures of a verify/sync `Report` or an `ImportReport`."""
        self.figures = {"api_calls": report.api_calls, "rate_limited": report.rate_limited}
        if hasattr(report, "drift"):
            from vidpipe.reconcile.plan import DriftKind

            drift = dict.fromkeys((kind.value for kind in DriftKind), 0)
            for item in report.drift:
                kind = str(item.as_json(False)["kind"])
                drift[kind] = drift.get(kind, 0) + 1
            self.figures.update(rows_checked=report.checked, drift=drift)
        else:
            from vidpipe.importer import ItemState

            states = [s for s in ItemState if s is not ItemState.PENDING]
            self.figures.update(
                rows_checked=len(report.items),
                items={s.value: report.count(s) for s in states},
            )

    def _mux_counts(self) -> dict[str, Any]:
        stats = self.vidpipe.mux_stats() if self.vidpipe is not None else None
        if stats is None:
            return {}
        return {"api_calls": stats.calls, "rate_limited": stats.rate_limited}


def exit_code(exc: BaseException | None) -> int:
    """The exit code `vidpipe.cli.run` will give for `exc` (None: the command returned)."""
    from vidpipe.errors import UsageError, VidpipeError

    if exc is None:
        return 0
    if isinstance(exc, KeyboardInterrupt):
        return 130
    if isinstance(exc, UsageError):
        return 2
    code = getattr(exc, "exit_code", None)  # typer.Exit, click's usage errors
    if isinstance(code, int) and not isinstance(exc, VidpipeError):
        return code
    return 1


@contextmanager
def metrics_file(path: Path | None, command: str, ui: "UI") -> Iterator[RunMetrics]:
    """Around a command's work: checks `path` first (a bad one is refused, exit 2, before
    anything runs), then writes the textfile as the command ends, unless it ends with exit 2.
    A file that cannot be written is a warning: the command's own outcome stands."""
    run = RunMetrics(command)
    if path is None:  # prometheus-client is not even imported
        yield run
        return
    from vidpipe import textfile

    textfile.check_path(path)
    started = time.monotonic()
    failure: BaseException | None = None
    try:
        yield run
    except BaseException as exc:
        failure = exc
        raise
    finally:
        code = exit_code(failure)
        if code != 2:
            figures = run.figures or run._mux_counts()
            figures_run = textfile.RunFigures(
                command=command,
                success=code == 0,
                finished=time.time(),
                seconds=time.monotonic() - started,
                **figures,
            )
            try:
                textfile.write(path, figures_run)
            except Exception as exc:
                ui.warn(str(exc))
