"""Human units on the command line: durations (`90s`, `30m`, `24h`, `2d`, `1h30m`, or plain
seconds) and chunk sizes (`auto`, `256KiB`, `8MiB`). Input parsing for the CLI; the library
takes plain numbers."""

from __future__ import annotations

import re

from vidpipe.errors import UsageError

CHUNK_QUANTUM = 256 * 1024
"""The upload URL (a GCS resumable session) takes every request but the last in whole
multiples of this many bytes."""

AUTO_CHUNK = 0
"""A chunk size meaning "adaptive": the transfer sizes each request itself (`parse_chunk_size`
gives it for "auto"). An int, so it is stored wherever a chunk size is (the journal)."""

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
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
            total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
            pos = match.end()
        if pos != len(raw) or not raw:
            raise UsageError(
                f"{label}: {text!r} is not a duration (e.g. 90s, 30m, 24h, 2d)"
            ) from None
        value = total
    if value < 0:
        raise UsageError(f"{label} must not be negative")
    return value


_SIZE_RE = re.compile(r"\s*(\d+)\s*([A-Za-z]*)\s*")
_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gib": 1024**3,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
}


def parse_chunk_size(text: str) -> int:
    """Parse a chunk size such as "256KiB", "8MiB", "1GiB", "8M" or "262144" into bytes;
    "auto" gives `AUTO_CHUNK` (0).

    Binary units (KiB/MiB/GiB, or K/M/G) are powers of 1024. Decimal units (KB/MB/GB) are
    powers of 1000 and accepted, but such sizes are almost never a multiple of 256 KiB and
    are then rejected like any other. Raises `UsageError` on garbage, zero, or a size that
    is not a multiple of 256 KiB.
    """
    if text.strip().lower() == "auto":
        return AUTO_CHUNK
    match = _SIZE_RE.fullmatch(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise UsageError(
            f"invalid chunk size {text!r}: expected a number of bytes or a size like 8MiB"
        )
    size = int(match.group(1)) * _UNITS[unit]
    if size <= 0:
        raise UsageError(f"invalid chunk size {text!r}: must be positive")
    if size % CHUNK_QUANTUM:
        hint = " (decimal units such as MB are powers of 1000; use MiB)" if "b" in unit else ""
        raise UsageError(
            f"invalid chunk size {text!r} = {size:,} bytes: must be a multiple of "
            f"256 KiB (262,144 bytes){hint}"
        )
    return size
