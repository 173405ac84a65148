"""Human units on the command line: durations (`90s`, `30m`, `24h`, `2d`, `1h30m`, or plain
seconds). Input parsing for the CLI; the library takes plain numbers."""

from __future__ import annotations

import re

from vidpipe.errors import UsageError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(text: str, *, label: str = "duration") -> float:
    """Seconds for `text`; UsageError naming `label` when it is not a duration."""
    raw = text.strip().lower()
    try:
        value = float(raw)
    except ValueError:
        pos, total = 0, 0.0
        for match in _PART.finditer(raw):
            if match.start() != pos:
                break
            total += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if pos != len(raw) or not raw:
            raise UsageError(
                f"{label}: {text!r} is not a duration (e.g. 90s, 30m, 24h, 2d)"
            ) from None
        value = total
    if value < 0:
        raise UsageError(f"{label} must not be negative")
    return value
