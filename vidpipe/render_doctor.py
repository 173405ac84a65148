"""How `vidpipe doctor` shows its findings.

On a terminal: one row per check, `✓` or `✗`, its name, what it found, and under a finding
with something to do, `→` and what. Off a terminal: the same as plain lines (`ok` / `FAIL`
instead of the marks, `what to do:` instead of the arrow), no colour. `--json`: the
diagnosis's document. A closing line counts the failures.
"""

from __future__ import annotations

import re

from vidpipe.doctor import Check, Diagnosis
from vidpipe.ui import UI

_NAME_WIDTH = max(len("webhook_secret"), len("environment"))
# C0 and C1 control characters (ESC included): Mux's environment names and database errors
# are not vidpipe's text, so they are shown, never sent to the terminal as they are.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def render_diagnosis(ui: UI, diagnosis: Diagnosis) -> None:
    if ui.json_mode:
        ui.json(diagnosis.as_json())
        return
    if ui.rich:
        _rich(ui, diagnosis)
    else:
        for check in diagnosis.checks:
            _plain(ui, check)
    failed = len(diagnosis.failed)
    total = len(diagnosis.checks)
    ui.line(
        f"doctor: all {total} checks passed"
        if not failed
        else f"doctor: {failed} of {total} checks failed"
    )


def _rich(ui: UI, diagnosis: Diagnosis) -> None:
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 1))
    grid.add_column(width=1, no_wrap=True)
    grid.add_column(width=_NAME_WIDTH, no_wrap=True)
    grid.add_column(ratio=1)
    for check in diagnosis.checks:
        mark = Text("✓", style="green") if check.ok else Text("✗", style="bold red")
        body = Text(_shown(check.detail))
        if check.hint:
            body.append("\n→ ", style="yellow")
            body.append(_shown(check.hint))
        grid.add_row(mark, Text(check.name, style="bold" if not check.ok else ""), body)
    ui.out.print(grid)


def _plain(ui: UI, check: Check) -> None:
    mark = "ok" if check.ok else "FAIL"
    ui.line(f"{mark:<4}  {check.name:<{_NAME_WIDTH}}  {_shown(check.detail)}")
    if check.hint:
        ui.line(f"{'':<4}  {'':<{_NAME_WIDTH}}  what to do: {_shown(check.hint)}")


def _shown(text: str) -> str:
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
