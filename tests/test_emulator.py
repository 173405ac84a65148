"""The Mux emulator, driven over real sockets by mux-python, httpx and raw sockets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import httpx
import mux_python
import pytest
from emulator_helpers import (
    BLOCK,
    WebhookReceiver,
    mux_config,
    raw_request,
    sha256,
    video_bytes,
    wait_for,
)
from mux_python.exceptions import (
    ApiException,
    ForbiddenException,
    NotFoundException,
    ServiceException,
    UnauthorizedException,
)

from vidpipe.emulator import Emulator

AUTH = ("id", "secret")
MUX_ERROR_404 = {
    "error": {"type": "not_found", "messages": ["The requested resource does not exist"]}
}
TOO_MANY = b'{"errors": ["Too many requests, retry later."]}'


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[Emulator]:
    with Emulator(store_dir=tmp_path / "store") as emulator:
        yield emulator


@pytest.fixture
def uploads_api(emu: Emulator) -> Any:
    return mux_python.DirectUploadsApi(mux_python.ApiClient(mux_config(emu.base_url)))


@pytest.fixture
def assets_api(emu: Emulator) -> Any:
    return mux_python.AssetsApi(mux_python.ApiClient(mux_config(emu.base_url)))


def create_upload(uploads_api: Any, passthrough: str = '{"lesson_id": 1}', **kw: Any) -> Any:
    request = mux_python.CreateUploadRequest(
        new_asset_settings=mux_python.CreateAssetRequest(
            playback_policies=[mux_python.PlaybackPolicy.PUBLIC], passthrough=passthrough
        ),
        cors_origin="*",
        **kw,
    )
    return uploads_api.create_direct_upload(request).data


def put_chunk(url: str, data: bytes, start: int, total: int | str) -> httpx.Response:
    end = start + len(data) - 1
    headers = {"Content-Range": f"bytes {start}-{end}/{total}"}
    return httpx.put(url, content=data, headers=headers, timeout=10)


def offset_query(url: str, total: int | str) -> httpx.Response:
    return httpx.put(url, content=b"", headers={"Content-Range": f"bytes */{total}"}, timeout=10)


# ----- direct uploads ---------------------------------------------------------------


def test_create_upload_answers_201_with_the_mux_upload_object(
    emu: Emulator, uploads_api: Any
) -> None:
    upload = create_upload(uploads_api)

    assert emu.count("POST", "/video/v1/uploads", 201) == 1
    assert upload.status == "waiting"
    assert upload.timeout == 3600
    assert upload.cors_origin == "*"
    assert upload.url == f"{emu.base_url}/upload/{upload.id}"
    assert len(upload.id) == 40 and upload.id.isalnum()
    assert upload.new_asset_settings.passthrough == '{"lesson_id": 1}'
    assert upload.new_asset_settings.playback_policies == ["public"]
    assert upload.asset_id is None


@pytest.mark.parametrize(
    "body",
    [
        {"new_asset_settings": {"passthrough": "x" * 256}},
        {"timeout": 59},
        {"timeout": 604801},
        {"new_asset_settings": {"playback_policies": ["private"]}},
        {"new_asset_settings": {"playback_policy": "nope"}},
        {"new_asset_settings": {"video_quality": "ultra"}},
        {"new_asset_settings": {"meta": {"title": "t" * 513}}},
        {"new_asset_settings": {"meta": {"external_id": "e" * 129}}},
    ],
)
def test_create_upload_rejects_invalid_parameters(http: httpx.Client, body: dict) -> None:
    response = http.post("/video/v1/uploads", json=body)

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_parameters"
    assert response.json()["error"]["messages"]


def test_limits_at_the_edge_are_accepted(http: httpx.Client) -> None:
    body = {"timeout": 60, "new_asset_settings": {"passthrough": "x" * 255}}
    assert http.post("/video/v1/uploads", json=body).status_code == 201


def test_bad_json_is_400(http: httpx.Client) -> None:
    response = http.post(
        "/video/v1/uploads", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_parameters"


def test_too_long_passthrough_is_an_api_exception_in_mux_python(uploads_api: Any) -> None:
    with pytest.raises(ApiException) as caught:
        create_upload(uploads_api, passthrough="x" * 256)
    assert caught.value.status == 400


def test_get_and_list_uploads(emu: Emulator, uploads_api: Any, http: httpx.Client) -> None:
    ids = [create_upload(uploads_api).id for _ in range(3)]

    assert uploads_api.get_direct_upload(ids[1]).data.id == ids[1]
    pages = [http.get("/video/v1/uploads", params={"limit": 2, "page": p}) for p in (1, 2, 3)]
    assert [[u["id"] for u in page.json()["data"]] for page in pages] == [ids[:2], ids[2:], []]
    with pytest.raises(NotFoundException):
        uploads_api.get_direct_upload("nope")


def test_cancel_then_403_and_url_refuses_bytes(emu: Emulator, uploads_api: Any) -> None:
    upload = create_upload(uploads_api)

    cancelled = uploads_api.cancel_direct_upload(upload.id).data
    assert cancelled.status == "cancelled"
    assert cancelled.url is None
    with pytest.raises(ForbiddenException) as caught:
        uploads_api.cancel_direct_upload(upload.id)
    assert json.loads(caught.value.body) == {
        "error": {"type": "forbidden", "messages": ["Cancellation no longer possible"]}
    }
    assert httpx.put(upload.url, content=video_bytes(1000)).status_code == 404


def test_cancel_after_completion_is_403(uploads_api: Any) -> None:
    upload = create_upload(uploads_api)
    assert httpx.put(upload.url, content=video_bytes(BLOCK)).status_code == 200

    with pytest.raises(ForbiddenException):
        uploads_api.cancel_direct_upload(upload.id)


def test_expired_upload_times_out_and_its_url_answers_404(emu: Emulator, uploads_api: Any) -> None:
    upload = create_upload(uploads_api, timeout=60)

    emu.expire_upload(upload.id)

    current = uploads_api.get_direct_upload(upload.id).data
    assert current.status == "timed_out"
    assert current.url is None
    response = httpx.put(upload.url, content=video_bytes(BLOCK))
    assert response.status_code == 404
    assert response.text == "Not Found"
    assert offset_query(upload.url, BLOCK).status_code == 404


# ----- the upload URL ---------------------------------------------------------------


def test_whole_file_put_creates_a_ready_asset(
    emu: Emulator, uploads_api: Any, assets_api: Any
) -> None:
    data = video_bytes(3 * 1024 * 1024 + 123)
    upload = create_upload(uploads_api)

    response = httpx.put(upload.url, content=data)

    assert response.status_code == 200
    assert response.json()["size"] == str(len(data))
    assert emu.received(upload.id) == (len(data), sha256(data))
    assert emu.upload_bytes(upload.id) == data
    done = uploads_api.get_direct_upload(upload.id).data
    assert done.status == "asset_created"
    assert done.url is None
    asset = assets_api.get_asset(done.asset_id).data
    assert asset.status == "ready"
    assert asset.upload_id == upload.id
    assert asset.passthrough == '{"lesson_id": 1}'
    assert [p.policy for p in asset.playback_ids] == ["public"]
    assert isinstance(asset.created_at, str) and asset.created_at.isdigit()
    assert isinstance(asset.duration, float) and asset.duration > 0
    assert asset.progress.state == "completed"
    assert asset.mp4_support == "none" and asset.master_access == "none"
    assert [t.type for t in asset.tracks] == ["video", "audio"]


def test_chunked_upload_answers_308_with_the_range_held(emu: Emulator, uploads_api: Any) -> None:
    data = video_bytes(5 * BLOCK + 1000)
    upload = create_upload(uploads_api)

    first = put_chunk(upload.url, data[: 2 * BLOCK], 0, len(data))
    second = put_chunk(upload.url, data[2 * BLOCK : 4 * BLOCK], 2 * BLOCK, len(data))
    last = put_chunk(upload.url, data[4 * BLOCK :], 4 * BLOCK, len(data))

    assert (first.status_code, first.headers["Range"]) == (308, f"bytes=0-{2 * BLOCK - 1}")
    assert first.content == b""
    assert (second.status_code, second.headers["Range"]) == (308, f"bytes=0-{4 * BLOCK - 1}")
    assert last.status_code == 200
    assert emu.received(upload.id) == (len(data), sha256(data))
    assert emu.upload_bytes(upload.id) == data
    assert offset_query(upload.url, len(data)).status_code == 200


def test_offset_query_with_nothing_held_is_308_without_range(uploads_api: Any) -> None:
    upload = create_upload(uploads_api)

    response = offset_query(upload.url, 10 * BLOCK)

    assert response.status_code == 308
    assert "Range" not in response.headers


def test_chunks_with_unknown_total_then_the_final_size(emu: Emulator, uploads_api: Any) -> None:
    data = video_bytes(BLOCK + 10)
    upload = create_upload(uploads_api)

    first = put_chunk(upload.url, data[:BLOCK], 0, "*")
    query = offset_query(upload.url, "*")
    last = put_chunk(upload.url, data[BLOCK:], BLOCK, len(data))

    assert (first.status_code, first.headers["Range"]) == (308, f"bytes=0-{BLOCK - 1}")
    assert (query.status_code, query.headers["Range"]) == (308, f"bytes=0-{BLOCK - 1}")
    assert last.status_code == 200
    assert emu.received(upload.id) == (len(data), sha256(data))


def test_a_non_final_chunk_not_a_multiple_of_256_kib_is_400(
    emu: Emulator, uploads_api: Any
) -> None:
    data = video_bytes(3 * BLOCK)
    upload = create_upload(uploads_api)

    response = put_chunk(upload.url, data[: BLOCK + 1], 0, len(data))

    assert response.status_code == 400
    assert emu.received(upload.id)[0] == 0


def test_a_chunk_starting_beyond_the_held_offset_is_400(emu: Emulator, uploads_api: Any) -> None:
    data = video_bytes(3 * BLOCK)
    upload = create_upload(uploads_api)

    response = put_chunk(upload.url, data[BLOCK : 2 * BLOCK], BLOCK, len(data))

    assert response.status_code == 400
    assert "exceeds already uploaded size of 0" in response.text


def test_bytes_already_held_are_skipped_when_a_chunk_overlaps(
    emu: Emulator, uploads_api: Any
) -> None:
    data = video_bytes(3 * BLOCK + 7)
    upload = create_upload(uploads_api)
    put_chunk(upload.url, data[:BLOCK], 0, len(data))

    again = put_chunk(upload.url, data[: 2 * BLOCK], 0, len(data))
    last = httpx.put(upload.url, content=data)  # a whole-file PUT resumes too

    assert again.headers["Range"] == f"bytes=0-{2 * BLOCK - 1}"
    assert last.status_code == 200
    assert emu.received(upload.id) == (len(data), sha256(data))


def test_a_declared_total_that_changes_is_400(uploads_api: Any) -> None:
    data = video_bytes(2 * BLOCK)
    upload = create_upload(uploads_api)
    put_chunk(upload.url, data[:BLOCK], 0, len(data))

    assert put_chunk(upload.url, data[BLOCK:], BLOCK, len(data) + 1).status_code == 400


def test_a_cut_connection_keeps_only_whole_256_kib_blocks(emu: Emulator, uploads_api: Any) -> None:
    data = video_bytes(6 * BLOCK + 99)
    upload = create_upload(uploads_api)
    headers = {"Content-Range": f"bytes 0-{4 * BLOCK - 1}/{len(data)}"}
    headers["Content-Length"] = str(4 * BLOCK)

    raw_request(upload.url, "PUT", headers, data[: 4 * BLOCK], send_only=2 * BLOCK + 5000)
    wait_for(lambda: emu.count("PUT", "/upload/", status=0) == 1)

    held = offset_query(upload.url, len(data))
    assert (held.status_code, held.headers["Range"]) == (308, f"bytes=0-{2 * BLOCK - 1}")
    rest = put_chunk(upload.url, data[2 * BLOCK :], 2 * BLOCK, len(data))
    assert rest.status_code == 200
    assert emu.received(upload.id) == (len(data), sha256(data))


def test_a_cut_final_chunk_keeps_only_whole_blocks_too(emu: Emulator, uploads_api: Any) -> None:
    data = video_bytes(2 * BLOCK + 500)
    upload = create_upload(uploads_api)
    headers = {"Content-Length": str(len(data))}

    raw_request(upload.url, "PUT", headers, data, send_only=BLOCK + 400)
    wait_for(lambda: emu.count("PUT", "/upload/", status=0) == 1)

    held = offset_query(upload.url, len(data))
    assert held.headers["Range"] == f"bytes=0-{BLOCK - 1}"
    assert uploads_api.get_direct_upload(upload.id).data.status == "waiting"


def test_a_slow_fault_reads_an_upload_body_at_its_rate(emu: Emulator, uploads_api: Any) -> None:
    data = video_bytes(8 * BLOCK + 321)  # 2 MiB and a bit
    upload = create_upload(uploads_api)
    emu.inject("PUT", "/upload/", "slow", rate=4 * 1024 * 1024)  # about half a second
    seen_mid_request: list[int] = []

    def body() -> Iterator[bytes]:
        for i in range(0, len(data), BLOCK):
            if i == 6 * BLOCK:
                # Three quarters sent: the server holds whole blocks of what it has read.
                time.sleep(0.1)
                seen_mid_request.append(emu.received(upload.id)[0])
            yield data[i : i + BLOCK]

    started = time.monotonic()
    response = httpx.put(upload.url, content=body(), headers={"Content-Length": str(len(data))})
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert emu.received(upload.id) == (len(data), sha256(data))
    assert elapsed >= len(data) / (4 * 1024 * 1024) * 0.9  # never faster than its rate
    (mid,) = seen_mid_request
    assert 0 < mid < len(data) and mid % BLOCK == 0
    assert emu.pending_faults == 0


def test_a_slow_fault_needs_a_rate(emu: Emulator) -> None:
    with pytest.raises(ValueError, match="rate"):
        emu.inject("PUT", "/upload/", "slow")


def test_chunked_transfer_encoding_is_accepted(emu: Emulator, uploads_api: Any) -> None:
    data = video_bytes(BLOCK * 3 + 17)
    upload = create_upload(uploads_api)

    def pieces() -> Iterator[bytes]:
        for i in range(0, len(data), 100_000):
            yield data[i : i + 100_000]

    response = httpx.put(upload.url, content=pieces())

    assert response.status_code == 200
    assert emu.received(upload.id) == (len(data), sha256(data))


def test_unknown_upload_url_is_404(emu: Emulator) -> None:
    assert httpx.put(f"{emu.base_url}/upload/nope", content=b"x").status_code == 404


def test_bytes_are_only_kept_with_a_store_dir() -> None:
    with Emulator() as emulator:
        created = httpx.post(f"{emulator.base_url}/video/v1/uploads", auth=AUTH, json={})
        upload = created.json()["data"]
        data = video_bytes(BLOCK + 1)
        httpx.put(upload["url"], content=data)

        assert emulator.received(upload["id"]) == (len(data), sha256(data))
        with pytest.raises(RuntimeError):
            emulator.upload_bytes(upload["id"])


# ----- assets -----------------------------------------------------------------------


def test_an_asset_is_preparing_until_ready_after() -> None:
    with Emulator(ready_after=0.6) as emulator:
        api = mux_python.DirectUploadsApi(mux_python.ApiClient(mux_config(emulator.base_url)))
        assets = mux_python.AssetsApi(mux_python.ApiClient(mux_config(emulator.base_url)))
        upload = create_upload(api)
        started = time.monotonic()
        httpx.put(upload.url, content=video_bytes(BLOCK))
        asset_id = api.get_direct_upload(upload.id).data.asset_id

        early = assets.get_asset(asset_id).data
        assert early.status == "preparing"
        assert early.progress.state == "ingesting"
        wait_for(lambda: assets.get_asset(asset_id).data.status == "ready")
        assert time.monotonic() - started >= 0.59


def test_a_file_that_is_not_a_video_makes_an_errored_asset(
    uploads_api: Any, assets_api: Any
) -> None:
    upload = create_upload(uploads_api)

    assert httpx.put(upload.url, content=b"hello, I am a text file\n" * 100).status_code == 200

    done = uploads_api.get_direct_upload(upload.id).data
    assert done.status == "asset_created"
    asset = assets_api.get_asset(done.asset_id).data
    assert asset.status == "errored"
    assert asset.errors.type == "invalid_input"
    assert asset.errors.messages == ["The input file could not be processed"]
    assert asset.progress.state == "errored"


@pytest.mark.parametrize(
    "head",
    [
        b"\x1a\x45\xdf\xa3" + b"\x00" * 60,
        b"RIFF\x00\x00\x00\x00AVI " + b"\x00" * 52,
        b"\x47" + b"\x00" * 63,
        b"\x00\x00\x01\xba" + b"\x00" * 60,
        b"FLV\x01" + b"\x00" * 60,
    ],
)
def test_other_containers_are_videos(uploads_api: Any, assets_api: Any, head: bytes) -> None:
    upload = create_upload(uploads_api)
    httpx.put(upload.url, content=head + b"\x00" * 1000)

    asset_id = uploads_api.get_direct_upload(upload.id).data.asset_id
    assert assets_api.get_asset(asset_id).data.status == "ready"


def test_fail_next_assets_forces_errored_assets(
    emu: Emulator, uploads_api: Any, assets_api: Any
) -> None:
    emu.fail_next_assets(1)
    statuses = []
    for _ in range(2):
        upload = create_upload(uploads_api)
        httpx.put(upload.url, content=video_bytes(BLOCK))
        asset_id = uploads_api.get_direct_upload(upload.id).data.asset_id
        statuses.append(assets_api.get_asset(asset_id).data.status)

    assert statuses == ["errored", "ready"]


def test_delete_asset_answers_204_then_404(
    emu: Emulator, assets_api: Any, http: httpx.Client
) -> None:
    asset = emu.seed_asset(passthrough="p")

    response = http.delete(f"/video/v1/assets/{asset['id']}")

    assert response.status_code == 204
    assert response.content == b""
    with pytest.raises(NotFoundException) as caught:
        assets_api.get_asset(asset["id"])
    assert json.loads(caught.value.body) == MUX_ERROR_404
    with pytest.raises(NotFoundException):
        assets_api.delete_asset(asset["id"])


def test_list_assets_walks_every_asset_once_with_next_cursor(
    emu: Emulator, assets_api: Any
) -> None:
    seeded = emu.seed_assets(250, lambda i: json.dumps({"lesson_id": i}))

    seen, cursor, pages = [], None, 0
    while True:
        page = assets_api.list_assets(limit=100, cursor=cursor)
        seen += [a.id for a in page.data]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break

    assert pages == 3
    assert seen == [a["id"] for a in seeded]


def test_the_cursor_survives_deletes_between_pages(emu: Emulator, assets_api: Any) -> None:
    seeded = [a["id"] for a in emu.seed_assets(300)]
    first = assets_api.list_assets(limit=100)
    # delete from the page just read and from the next one
    for asset_id in seeded[50:60] + seeded[100:110]:
        assets_api.delete_asset(asset_id)

    seen = [a.id for a in first.data]
    cursor = first.next_cursor
    while cursor is not None:
        page = assets_api.list_assets(limit=100, cursor=cursor)
        seen += [a.id for a in page.data]
        cursor = page.next_cursor

    assert seen == seeded[:100] + seeded[110:]


def test_list_assets_limits_pages_and_filters(emu: Emulator, http: httpx.Client) -> None:
    emu.seed_assets(30)
    tagged = emu.seed_asset(upload_id="up-1")

    default = http.get("/video/v1/assets").json()
    page_two = http.get("/video/v1/assets", params={"limit": 10, "page": 2}).json()
    filtered = http.get("/video/v1/assets", params={"upload_id": "up-1"}).json()

    assert len(default["data"]) == 25 and default["next_cursor"]
    assert [a["id"] for a in page_two["data"]] == [
        a["id"] for a in http.get("/video/v1/assets", params={"limit": 30}).json()["data"][10:20]
    ]
    assert filtered == {"data": [tagged], "next_cursor": None}
    for limit in (0, 101, "x"):
        bad = http.get("/video/v1/assets", params={"limit": limit})
        assert bad.status_code == 400
        assert bad.json()["error"]["type"] == "invalid_parameters"
    assert http.get("/video/v1/assets", params={"cursor": "garbage!"}).status_code == 400


def test_limit_over_100_is_an_api_exception_in_mux_python(assets_api: Any) -> None:
    with pytest.raises(ApiException) as caught:
        assets_api.list_assets(limit=101)
    assert caught.value.status == 400


def test_seed_hooks(emu: Emulator) -> None:
    emu.seed_assets(5000, lambda i: f"p{i}", status="ready")
    assert len(emu.assets) == 5000 and all(a["status"] == "ready" for a in emu.assets.values())

    one = emu.seed_asset(
        passthrough="x",
        status="preparing",
        created_at=1_600_000_000,
        playback_policies=("public", "signed"),
        asset_id="fixed-id",
    )
    assert one["id"] == "fixed-id"
    assert one["created_at"] == "1600000000"
    assert [p["policy"] for p in one["playback_ids"]] == ["public", "signed"]
    emu.set_asset_status("fixed-id", "errored")
    assert emu.assets["fixed-id"]["status"] == "errored"
    emu.delete_asset_silently("fixed-id")
    assert "fixed-id" not in emu.assets
    assert len(emu.assets) == 5000


# ----- auth, routes, rate limits ----------------------------------------------------


def test_requests_without_valid_basic_auth_are_401(emu: Emulator) -> None:
    expected = {"error": {"type": "unauthorized", "messages": ["Unauthorized request"]}}
    url = f"{emu.base_url}/video/v1/assets"
    for headers in ({}, {"Authorization": "Basic !!!"}, {"Authorization": "Bearer x"}):
        response = httpx.get(url, headers=headers)
        assert (response.status_code, response.json()) == (401, expected)
    assert httpx.get(url, auth=("id", "")).status_code == 401


def test_only_the_configured_credentials_are_accepted() -> None:
    with Emulator(credentials=("right", "pair")) as emulator:
        wrong = mux_python.AssetsApi(mux_python.ApiClient(mux_config(emulator.base_url)))
        with pytest.raises(UnauthorizedException):
            wrong.list_assets()
        right = mux_python.AssetsApi(
            mux_python.ApiClient(mux_config(emulator.base_url, "right", "pair"))
        )
        assert right.list_assets().data == []


def test_unknown_routes_are_404_in_mux_shape(http: httpx.Client) -> None:
    for path in ("/video/v1/nothing", "/elsewhere", "/video/v1/assets/a/b"):
        response = http.get(path)
        assert (response.status_code, response.json()) == (404, MUX_ERROR_404)


def test_rate_limits_answer_429_without_retry_after() -> None:
    with Emulator(rate_limit=True) as emulator:
        with httpx.Client(base_url=emulator.base_url, auth=AUTH) as client:
            posts = [client.post("/video/v1/uploads", json={}) for _ in range(4)]
            gets = [client.get("/video/v1/assets") for _ in range(12)]
            other = httpx.get(f"{emulator.base_url}/video/v1/assets", auth=("other", "pair"))
            upload_url = posts[0].json()["data"]["url"]
            puts = [offset_query(upload_url, BLOCK) for _ in range(10)]

        limited = [r for r in posts + gets if r.status_code == 429]
        assert [r.status_code for r in posts[:2]] == [201, 201]
        assert posts[3].status_code == 429
        assert gets[-1].status_code == 429
        assert all(r.content == TOO_MANY for r in limited)
        assert all("retry-after" not in r.headers for r in limited)
        assert other.status_code == 200  # buckets are per credential pair
        assert all(r.status_code == 308 for r in puts)  # the GCS URL is not limited
        assert emulator.count(status=429) == len(limited)


def test_rate_limit_refills_over_time() -> None:
    with Emulator(rate_limit=True) as emulator:
        with httpx.Client(base_url=emulator.base_url, auth=AUTH) as client:
            while client.post("/video/v1/uploads", json={}).status_code != 429:
                pass
            time.sleep(1.05)
            assert client.post("/video/v1/uploads", json={}).status_code == 201


# ----- fault injection --------------------------------------------------------------


def test_injected_status_uses_the_mux_shapes(emu: Emulator, assets_api: Any) -> None:
    emu.inject("GET", "/video/v1/assets", "status", status=503)
    emu.inject("GET", "/video/v1/assets", "status", status=429)

    with pytest.raises(ServiceException):
        assets_api.list_assets()
    with pytest.raises(ApiException) as caught:
        assets_api.list_assets()
    assert caught.value.status == 429
    assert caught.value.body.encode() == TOO_MANY
    assert assets_api.list_assets().data == []
    assert emu.count("GET", "/video/v1/assets") == 3


def test_injected_faults_apply_times_then_stop(emu: Emulator, http: httpx.Client) -> None:
    emu.inject(None, "/video/v1/assets", "status", status=500, times=2)

    codes = [http.get("/video/v1/assets").status_code for _ in range(3)]

    assert codes == [500, 500, 200]


def test_injected_delay(emu: Emulator, http: httpx.Client) -> None:
    emu.inject("GET", "/video/", "delay", delay=0.3)

    started = time.monotonic()
    response = http.get("/video/v1/assets")

    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize("let_go", ["release_held", "clear_faults"])
def test_a_held_request_is_answered_only_once_released(
    emu: Emulator, http: httpx.Client, let_go: str
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    emu.inject("GET", "/video/v1/assets", "hold")
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(http.get, "/video/v1/assets")
        wait_until = time.monotonic() + 5
        while emu.pending_faults and time.monotonic() < wait_until:
            time.sleep(0.01)
        assert emu.pending_faults == 0  # the request arrived and is held
        time.sleep(0.3)
        assert not answer.done()
        assert http.get("/video/v1/uploads").status_code == 200  # others are served meanwhile
        getattr(emu, let_go)()
        assert answer.result(timeout=5).status_code == 200


def test_injected_reset_and_cut_drop_the_connection(emu: Emulator) -> None:
    emu.inject("GET", "/video/", "reset")
    emu.inject("POST", "/video/v1/uploads", "cut")

    with pytest.raises(httpx.TransportError):
        httpx.get(f"{emu.base_url}/video/v1/assets", auth=AUTH)
    with pytest.raises(httpx.TransportError):
        httpx.post(f"{emu.base_url}/video/v1/uploads", auth=AUTH, json={})

    assert emu.uploads == {}
    assert emu.count(status=0) == 2


def test_injected_cut_during_an_upload_put(emu: Emulator, uploads_api: Any) -> None:
    data = video_bytes(4 * BLOCK + 3)
    upload = create_upload(uploads_api)
    emu.inject("PUT", "/upload/", "cut", after_bytes=3 * BLOCK - 1)

    with pytest.raises(httpx.TransportError):
        httpx.put(upload.url, content=data, timeout=10)

    held = offset_query(upload.url, len(data))
    assert held.headers["Range"] == f"bytes=0-{2 * BLOCK - 1}"
    assert put_chunk(upload.url, data[2 * BLOCK :], 2 * BLOCK, len(data)).status_code == 200
    assert emu.received(upload.id) == (len(data), sha256(data))


def test_clear_faults(emu: Emulator, http: httpx.Client) -> None:
    emu.inject(None, "/", "status", status=500, times=5)
    emu.inject("GET", "/video/v1/assets", "status", status=503, times=1)
    assert emu.pending_faults == 2
    emu.clear_faults()
    assert emu.pending_faults == 0
    assert http.get("/video/v1/assets").status_code == 200


def test_pending_faults_counts_down_as_faults_fire(emu: Emulator, http: httpx.Client) -> None:
    emu.inject("GET", "/video/v1/assets", "status", status=503, times=2)
    assert emu.pending_faults == 1
    assert http.get("/video/v1/assets").status_code == 503
    assert emu.pending_faults == 1
    assert http.get("/video/v1/assets").status_code == 503
    assert emu.pending_faults == 0
    assert http.get("/video/v1/assets").status_code == 200


# ----- webhooks ---------------------------------------------------------------------


def check_signature(secret: str, header: str, body: bytes) -> bool:
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256)
    return abs(time.time() - int(fields["t"])) < 300 and hmac.compare_digest(
        expected.hexdigest(), fields["v1"]
    )


def test_webhooks_are_signed_and_follow_the_upload() -> None:
    with WebhookReceiver().running() as receiver:
        with Emulator(ready_after=0.2, webhook_url=receiver.url, webhook_secret="whsec") as emu:
            api = mux_python.DirectUploadsApi(mux_python.ApiClient(mux_config(emu.base_url)))
            upload = create_upload(api)
            httpx.put(upload.url, content=video_bytes(BLOCK))
            # nobody polls the asset: the ready event must come from the emulator's clock
            wait_for(lambda: len(receiver.received) == 4)
            assert emu.wait_webhooks()

    events = receiver.events()
    assert [e["type"] for e in events] == [
        "video.upload.created",
        "video.asset.created",
        "video.upload.asset_created",
        "video.asset.ready",
    ]
    for headers, body in receiver.received:
        assert headers["Content-Type"] == "application/json"
        assert check_signature("whsec", headers["Mux-Signature"], body)
    ready = events[-1]
    assert ready["object"] == {"type": "asset", "id": ready["data"]["id"]}
    assert ready["environment"] == {"name": "Development", "id": "emu-env-1"}
    assert ready["data"]["passthrough"] == '{"lesson_id": 1}'
    assert ready["data"]["status"] == "ready"
    assert isinstance(ready["data"]["created_at"], int)
    assert "T" in ready["created_at"]
    assert ready["attempts"] == []


def test_webhooks_for_cancel_delete_and_errors_with_retries() -> None:
    with WebhookReceiver(statuses=[500]).running() as receiver:
        with Emulator(webhook_url=receiver.url, webhook_secret="s") as emu:
            api = mux_python.DirectUploadsApi(mux_python.ApiClient(mux_config(emu.base_url)))
            assets = mux_python.AssetsApi(mux_python.ApiClient(mux_config(emu.base_url)))
            api.cancel_direct_upload(create_upload(api).id)
            bad = create_upload(api)
            httpx.put(bad.url, content=b"not a video")
            assets.delete_asset(api.get_direct_upload(bad.id).data.asset_id)
            assert emu.wait_webhooks()
            log = emu.webhook_log

    types = [e["type"] for e in receiver.events()]
    assert types == [
        "video.upload.created",
        "video.upload.cancelled",
        "video.upload.created",
        "video.asset.created",
        "video.upload.asset_created",
        "video.asset.errored",
        "video.asset.deleted",
    ]
    assert log[:2] == [("video.upload.created", 500), ("video.upload.created", 200)]


def test_no_webhook_for_silent_deletes_and_unreachable_receivers_are_logged() -> None:
    with Emulator(webhook_url="http://127.0.0.1:9/none", webhook_secret="s") as emu:
        asset = emu.seed_asset()
        emu.delete_asset_silently(asset["id"])
        httpx.post(f"{emu.base_url}/video/v1/uploads", auth=AUTH, json={})
        assert emu.wait_webhooks(timeout=10)
        log = emu.webhook_log

    assert [t for t, _ in log] == ["video.upload.created"] * 4
    assert all(isinstance(outcome, str) for _, outcome in log)


# ----- lifecycle --------------------------------------------------------------------


def test_stop_closes_idle_keep_alive_connections_promptly() -> None:
    emulator = Emulator()
    base_url = emulator.start()
    client = httpx.Client(auth=AUTH)
    assert client.get(f"{base_url}/video/v1/assets").status_code == 200

    started = time.monotonic()
    emulator.stop()

    assert time.monotonic() - started < 2
    with pytest.raises(httpx.TransportError):
        client.get(f"{base_url}/video/v1/assets")
    client.close()


def test_keep_alive_reuses_one_connection(emu: Emulator) -> None:
    conn = HTTPConnection("127.0.0.1", emu.port, timeout=5)
    token = base64.b64encode(b"id:secret").decode()
    sockets, codes = [], []
    for _ in range(3):
        conn.request("GET", "/video/v1/assets", headers={"Authorization": f"Basic {token}"})
        response = conn.getresponse()
        response.read()
        codes.append(response.status)
        sockets.append(conn.sock)
    conn.close()

    assert codes == [200] * 3
    assert sockets[0] is not None and sockets.count(sockets[0]) == 3


def test_run_emulator_serves_until_sigterm() -> None:
    code = (
        "from vidpipe.emulator import run_emulator\n"
        "run_emulator('127.0.0.1', 0, 0.0, False,"
        " on_started=lambda url: print(url, flush=True))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert httpx.get(f"{base_url}/video/v1/assets", auth=AUTH).json() == {
            "data": [],
            "next_cursor": None,
        }
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
