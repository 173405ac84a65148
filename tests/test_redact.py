"""Bearer links kept out of httpx's log records, in the form httpx writes them."""

from __future__ import annotations

import logging
import threading

import httpx
import pytest

from vidpipe.redact import redacted

# Upper-case host, default port, an unescaped space: httpx logs all three rewritten.
LINK = "https://Storage.Example.com:443/upload/video?upload_id=SECRET-ID&note=a b"


def _get(url: str) -> None:
    with httpx.Client(transport=httpx.MockTransport(lambda _r: httpx.Response(200))) as client:
        client.get(url)


def _messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "httpx"]


def test_a_link_in_use_shows_as_its_placeholder_as_httpx_writes_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    with redacted(LINK, "<upload URL>"):
        _get(LINK)
    (line,) = _messages(caplog)
    assert "<upload URL>" in line
    assert "SECRET-ID" not in line and "storage.example.com" not in line


def test_other_requests_and_the_link_after_use_are_logged_as_they_are(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    with redacted(LINK, "<upload URL>"):
        _get("https://example.org/public")
    _get(LINK)
    public, after = _messages(caplog)
    assert "https://example.org/public" in public
    assert "SECRET-ID" in after  # no longer in use: the filter keeps nothing behind


def test_a_link_two_threads_use_stays_hidden_until_both_are_done(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    first_in, second_done = threading.Event(), threading.Event()

    def second() -> None:
        first_in.wait(5)
        with redacted(LINK, "<upload URL>"):
            pass
        second_done.set()

    thread = threading.Thread(target=second)
    thread.start()
    with redacted(LINK, "<upload URL>"):
        first_in.set()
        second_done.wait(5)
        _get(LINK)  # the other user has left; this one has not
    thread.join(5)
    (line,) = _messages(caplog)
    assert "SECRET-ID" not in line
