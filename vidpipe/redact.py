"""Bearer links kept out of httpx's log records.

httpx logs every request at INFO (`HTTP Request: PUT https://... "HTTP/1.1 308"`). An upload
URL or a master link is a bearer link: whoever holds it may write the upload or read the
video. A program that uses vidpipe as a library and logs at INFO would write them to its
logs; while vidpipe talks to such a link, the link is shown as a placeholder instead.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any


class _Redactor(logging.Filter):
    """Rewrites the arguments of httpx's log records that contain a link in use."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: dict[str, tuple[str, int]] = {}
        """link -> (its placeholder, how many callers are using it)"""
        self.lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets and record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            record.args = tuple(self._scrub(a) for a in args)
        return True

    def _scrub(self, value: Any) -> Any:
        text = str(value)
        for secret, (shown, _users) in list(self.secrets.items()):
            if secret in text:
                return shown
        return value


_REDACTOR = _Redactor()
logging.getLogger("httpx").addFilter(_REDACTOR)


@contextlib.contextmanager
def redacted(url: str, shown: str) -> Iterator[None]:
    """While inside (in any thread), log records of httpx show `shown` in place of `url`
    (as given, and as httpx writes it: host lower-cased, default port dropped, escapes)."""
    forms = _forms(url)
    with _REDACTOR.lock:
        for form in forms:
            _, users = _REDACTOR.secrets.get(form, (shown, 0))
            _REDACTOR.secrets[form] = (shown, users + 1)
    try:
        yield
    finally:
        with _REDACTOR.lock:
            for form in forms:
                _, users = _REDACTOR.secrets.pop(form, (shown, 1))
                if users > 1:
                    _REDACTOR.secrets[form] = (shown, users - 1)


def _forms(url: str) -> set[str]:
    import httpx

    try:
        return {url, str(httpx.URL(url))}
    except (httpx.InvalidURL, TypeError, ValueError):
        return {url}  # not a URL httpx could request: nothing else to hide
