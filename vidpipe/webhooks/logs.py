"""The log lines of `webhook serve`: one record per request, written as today's text line or
as one JSON object (`--log-format json`) for a log shipper.

Every field may come from the request (an event's type, ID and asset ID are the sender's to
choose), so each string field is escaped and cut by the same rules as the text line: control
characters written as escapes (`\\n`, `\\x1b`: no forged lines, nothing that drives a
terminal) and at most `MAX_LOG_LINE` characters.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from vidpipe.text import shown

MAX_LOG_LINE = 1000
"""Characters of one text log line, or of one JSON field, at most."""


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


@dataclass(frozen=True)
class LogRecord:
    """One thing `serve` says: a request answered (with `status` and the event's fields when
    it had them) or a message about the server itself (`status` None)."""

    message: str
    level: str = "info"
    status: int | None = None
    event_id: str | None = None
    type: str | None = None
    outcome: str | None = None
    asset: str | None = None
    duration: float | None = None


def clean(text: str) -> str:
    """`text` with its control characters escaped, cut at `MAX_LOG_LINE` characters."""
    text = shown(text)
    return text if len(text) <= MAX_LOG_LINE else text[: MAX_LOG_LINE - 1] + "…"


def text_line(record: LogRecord) -> str:
    """Today's line: the message alone (it already names status, type, ID and outcome)."""
    return clean(record.message)


def json_line(record: LogRecord, *, now: float | None = None) -> str:
    """One JSON object on one line: `time` (UTC, ISO 8601 with milliseconds), `level`,
    `message`, then `status`, `event_id`, `type`, `outcome`, `asset`, `duration` (seconds)
    where known. The object holds no raw newline, so a line is always a whole record."""
    stamp = time.time() if now is None else now
    doc: dict[str, Any] = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp))
        + f".{int(stamp % 1 * 1000):03d}Z",
        "level": record.level,
        "message": clean(record.message),
    }
    for name in ("event_id", "type", "outcome", "asset"):
        value = getattr(record, name)
        if value is not None:
            doc[name] = clean(str(value))
    if record.status is not None:
        doc["status"] = record.status
    if record.duration is not None:
        doc["duration"] = round(record.duration, 6)
    return json.dumps(doc, ensure_ascii=False)


def formatter(log_format: LogFormat | str) -> Callable[[LogRecord], str]:
    """The line writer for `log_format` (`text` or `json`)."""
    return json_line if LogFormat(log_format) is LogFormat.JSON else text_line


def level_of(status: int) -> str:
    """`info` for an answer that ends the delivery, `warning` for a refusal, `error` when
    vidpipe or its database failed (Mux retries)."""
    if status >= 500:
        return "error"
    return "warning" if status >= 400 else "info"
