"""The direct-upload URL is a bearer credential: the journal never keeps it (a resumed upload
asks Mux for it again), values an older version stored are cleared, and no transfer error
carries it, not even in a chained traceback."""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from conftest import Platform, Result, sha256_file

from vidpipe import journal
from vidpipe.emulator import Emulator
from vidpipe.errors import TransferError
from vidpipe.mux import Upload
from vidpipe.targets import Kind, Target
from vidpipe.transfer import TransferRetry, query_offset, transfer

KiB = 1024
QUANTUM = 256 * KiB
URL = "https://storage.example.com/upload/video?upload_id=SESSION-ID-x1&sig=TOPSECRET-SIG"


def stored_urls(platform: Platform) -> list[str | None]:
    with platform.engine.connect() as conn:
        return [r[0] for r in conn.execute(sa.text("SELECT upload_url FROM vidpipe_upload"))]


def test_an_interrupted_upload_keeps_no_url_and_resumes_with_the_one_mux_gives(
    env: Platform, emulator: Emulator, video: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    clip = video(8 * QUANTUM + 77)
    # The first chunk is cut after two blocks (kept); the offset query after it is refused:
    # the run stops with the upload half done, as a crash would leave it.
    emulator.inject("PUT", "/upload/", "cut", after_bytes=2 * QUANTUM + 10)
    emulator.inject("PUT", "/upload/", "status", status=400)
    first = cli("upload", clip, "--lesson", "1", "--chunk-size", "1MiB")
    assert first.code == 1, first.err
    (upload_id,) = emulator.uploads
    assert stored_urls(env) == [None]
    assert emulator.uploads[upload_id]["url"] not in first.err

    emulator.clear_faults()
    second = cli("upload", clip, "--lesson", "1", "--chunk-size", "1MiB", "--json")
    assert second.code == 0, second.err
    doc = json.loads(second.out)
    assert doc["upload_id"] == upload_id and doc["resumed"] is True
    assert doc["resumed_from"] == 2 * QUANTUM
    assert emulator.received(upload_id) == (clip.stat().st_size, sha256_file(clip))
    assert stored_urls(env) == [None]
    assert emulator.count(method="GET", path_prefix=f"/video/v1/uploads/{upload_id}") >= 1


def seed_stale_urls(platform: Platform) -> None:
    """Journal rows as an older vidpipe wrote them: with their upload URLs."""
    entries = [
        journal.create(
            platform.engine,
            Target(Kind.LESSON, n),
            file_path=f"/v/{n}.mp4",
            file_size=10,
            file_mtime_ns=1,
            chunk_size=QUANTUM,
            state=journal.State.DONE,
        )
        for n in (1, 2)
    ]
    with platform.engine.begin() as conn:
        for n, entry in enumerate(entries, 1):
            conn.execute(
                sa.text("UPDATE vidpipe_upload SET upload_url = :u WHERE id = :i"),
                {"u": f"{URL}-{n}", "i": entry.id},
            )
    assert stored_urls(platform) == [f"{URL}-1", f"{URL}-2"]


def test_db_init_clears_upload_urls_an_older_version_stored(
    env: Platform, cli: Callable[..., Result]
) -> None:
    seed_stale_urls(env)
    res = cli("db", "init")
    assert res.code == 0, res.err
    assert stored_urls(env) == [None, None]
    with env.engine.connect() as conn:  # the column stays: vidpipe never alters a table
        assert "upload_url" in {c["name"] for c in sa.inspect(conn).get_columns("vidpipe_upload")}


def test_the_next_journal_write_clears_stored_upload_urls(
    env: Platform, video: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    seed_stale_urls(env)
    assert cli("upload", video(), "--lesson", "3").code == 0
    assert stored_urls(env) == [None, None, None]


def test_the_journal_refuses_to_store_an_upload_url(platform: Platform) -> None:
    fields = {"file_path": "/v.mp4", "file_size": 1, "file_mtime_ns": 1, "chunk_size": QUANTUM}
    with pytest.raises(ValueError, match="bearer"):
        journal.create(platform.engine, Target(Kind.LESSON, 1), upload_url=URL, **fields)
    entry = journal.create(platform.engine, Target(Kind.LESSON, 1), **fields)
    with pytest.raises(ValueError, match="bearer"):
        journal.update(platform.engine, entry, upload_url=URL)
    assert stored_urls(platform) == [None]


def test_an_upload_object_does_not_show_its_url() -> None:
    upload = Upload.from_json({"id": "up-1", "status": "waiting", "url": URL})
    assert upload.url == URL and "TOPSECRET" not in repr(upload)


# -- transfer errors ------------------------------------------------------------------------


def _raises(exc: Exception) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return httpx.MockTransport(handler)


def _answers(status: int) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(status))


FAILURES: dict[str, httpx.MockTransport] = {
    "a dropped connection": _raises(httpx.ReadError(f"connection to {URL} dropped")),
    "a refused connection": _raises(httpx.ConnectError(f"cannot connect to {URL}")),
    "a timeout": _raises(httpx.ReadTimeout(f"timed out reading {URL}")),
    "a protocol error": _raises(httpx.RemoteProtocolError(f"garbage from {URL}")),
    "an undecodable answer": _raises(httpx.DecodingError(f"cannot decode {URL}")),
    "an unsupported scheme": _raises(httpx.UnsupportedProtocol(f"no scheme in {URL}")),
    "an invalid URL": _raises(httpx.InvalidURL(f"bad URL {URL}")),
    "a 403": _answers(403),
    "a 410": _answers(410),
    "a 503 every time": _answers(503),
}


def _shown(exc: BaseException) -> str:
    """Everything a user could see of the error: its message and a full traceback."""
    return str(exc) + "".join(traceback.format_exception(exc))


@pytest.mark.parametrize("case", sorted(FAILURES))
def test_no_transfer_error_shows_the_upload_url(tmp_path: Path, case: str) -> None:
    path = tmp_path / "clip.bin"
    path.write_bytes(b"x" * (QUANTUM + 5))
    retry = TransferRetry(attempts=2, initial=0.0, maximum=0.0, jitter=0.0)
    with httpx.Client(transport=FAILURES[case]) as client:
        with pytest.raises(TransferError) as sent:
            transfer(client, URL, path, chunk_size=QUANTUM, retry=retry, sleep=lambda _s: None)
        with pytest.raises(TransferError) as asked:
            query_offset(client, URL, QUANTUM + 5)
    for info in (sent, asked):
        shown = _shown(info.value)
        for piece in ("TOPSECRET", "SESSION-ID", "storage.example.com"):
            assert piece not in shown, f"{case}: {piece} in {shown}"


def test_a_library_logging_at_debug_never_sees_the_upload_url(
    env: Platform,
    emulator: Emulator,
    video: Callable[..., Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # httpx logs each request's URL at INFO: a program that logs at INFO or below would keep
    # the bearer link in its logs. The transfer, the resume and the offset query all show.
    import logging

    from vidpipe.api import Vidpipe

    caplog.set_level(logging.DEBUG)
    clip = video(4 * QUANTUM + 5)
    emulator.inject("PUT", "/upload/", "cut", after_bytes=QUANTUM + 10)
    with Vidpipe.from_env() as lib:
        lib.upload(clip, lesson=1, chunk_size=2 * QUANTUM, wait=False)
    (upload_id,) = emulator.uploads
    url = f"{emulator.base_url}/upload/{upload_id}"
    puts = [r.getMessage() for r in caplog.records if r.name == "httpx" and "PUT" in r.getMessage()]
    assert len(puts) >= 3, "httpx logged the chunks, the cut one and the offset query"
    assert all("<upload URL>" in line for line in puts)
    assert not any(upload_id in r.getMessage() or url in r.getMessage() for r in caplog.records)
