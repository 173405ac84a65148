"""Ingest from a URL: `POST /video/v1/assets` with `inputs[0].url`; the emulator fetches the
URL itself (here from a tiny HTTP server on loopback) and the asset turns ready or errored."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import mux_python
import pytest
from emulator_helpers import (
    FileServer,
    WebhookReceiver,
    mux_api,
    refused_url,
    video_bytes,
    wait_for,
)

from vidpipe.emulator import Emulator

AUTH = ("id", "secret")
VIDEO = video_bytes(3 * 1024 * 1024 + 17)
NOT_A_VIDEO = {"type": "invalid_input", "messages": ["The input file could not be processed"]}
FILES = {"/lesson.mp4": VIDEO, "/notes.txt": b"just some notes, not a video\n" * 50}


@pytest.fixture
def files() -> Iterator[FileServer]:
    with FileServer(FILES).running() as server:
        yield server


def ingest(http: httpx.Client, url: str, **settings: Any) -> dict[str, Any]:
    response = http.post("/video/v1/assets", json={"inputs": [{"url": url}], **settings})
    assert response.status_code == 201, response.text
    return dict(response.json()["data"])


def settled(http: httpx.Client, asset_id: str) -> dict[str, Any]:
    """The asset once it is no longer preparing."""
    wait_for(
        lambda: http.get(f"/video/v1/assets/{asset_id}").json()["data"]["status"] != "preparing"
    )
    return dict(http.get(f"/video/v1/assets/{asset_id}").json()["data"])


def test_a_video_url_becomes_a_ready_asset_with_its_settings(
    files: FileServer, http: httpx.Client
) -> None:
    created = ingest(
        http,
        files.url("/lesson.mp4"),
        playback_policies=["public"],
        passthrough='{"lesson_id": 3}',
        meta={"title": "Lesson 3", "external_id": "lesson:3"},
        video_quality="basic",
    )

    asset = settled(http, created["id"])

    assert created["status"] == "preparing"
    assert asset["status"] == "ready"
    assert files.requests == ["/lesson.mp4"]
    assert asset["passthrough"] == '{"lesson_id": 3}'
    assert asset["meta"] == {"title": "Lesson 3", "external_id": "lesson:3"}
    assert asset["video_quality"] == "basic"
    assert [p["policy"] for p in asset["playback_ids"]] == ["public"]
    assert asset["duration"] == pytest.approx(len(VIDEO) / 250_000, abs=0.01)
    assert asset["ingest_type"] == "on_demand_url"
    assert "upload_id" not in asset


def test_mux_python_creates_an_asset_from_a_url(
    emu: Emulator, files: FileServer, http: httpx.Client
) -> None:
    api = mux_api(mux_python.AssetsApi, emu.base_url)
    request = mux_python.CreateAssetRequest(
        inputs=[
            mux_python.InputSettings(
                url=files.url("/lesson.mp4"),
                generated_subtitles=[mux_python.AssetGeneratedSubtitleSettings(language_code="es")],
            )
        ],
        playback_policies=[mux_python.PlaybackPolicy.SIGNED],
        static_renditions=[mux_python.CreateStaticRenditionRequest(resolution="highest")],
    )

    created = api.create_asset(request).data
    asset = settled(http, created.id)

    assert created.status == "preparing" and created.upload_id is None
    assert asset["status"] == "ready"
    assert [p["policy"] for p in asset["playback_ids"]] == ["signed"]
    assert [t["language_code"] for t in asset["tracks"] if t["type"] == "text"] == ["es"]
    assert asset["static_renditions"]["files"][0]["status"] == "ready"


def test_an_unreachable_url_makes_an_errored_asset(http: httpx.Client) -> None:
    asset = settled(http, ingest(http, refused_url())["id"])

    assert asset["status"] == "errored"
    assert asset["errors"]["type"] == "invalid_input"
    [message] = asset["errors"]["messages"]
    assert message and message != NOT_A_VIDEO["messages"][0]  # it says the fetch failed
    assert asset["progress"]["state"] == "errored"


def test_a_url_answering_404_makes_an_errored_asset(files: FileServer, http: httpx.Client) -> None:
    asset = settled(http, ingest(http, files.url("/gone.mp4"))["id"])

    assert asset["status"] == "errored"
    assert asset["errors"]["type"] == "invalid_input"
    assert "404" in asset["errors"]["messages"][0]
    assert files.requests == ["/gone.mp4"]


def test_a_url_that_is_not_a_video_makes_an_errored_asset(
    files: FileServer, http: httpx.Client
) -> None:
    asset = settled(http, ingest(http, files.url("/notes.txt"))["id"])

    assert asset["status"] == "errored"
    assert asset["errors"] == NOT_A_VIDEO


def test_fail_next_assets_applies_to_url_ingest_too(
    emu: Emulator, files: FileServer, http: httpx.Client
) -> None:
    emu.fail_next_assets(1)

    statuses = [
        settled(http, ingest(http, files.url("/lesson.mp4"))["id"])["status"] for _ in range(2)
    ]

    assert statuses == ["errored", "ready"]


def test_an_ingested_asset_is_preparing_until_ready_after(files: FileServer) -> None:
    with Emulator(ready_after=0.6) as emu:
        with httpx.Client(base_url=emu.base_url, auth=AUTH, timeout=10) as http:
            started = time.monotonic()
            asset_id = ingest(http, files.url("/lesson.mp4"))["id"]
            wait_for(lambda: files.requests == ["/lesson.mp4"])
            early = http.get(f"/video/v1/assets/{asset_id}").json()["data"]["status"]
            ready = settled(http, asset_id)

    assert early == "preparing"
    assert ready["status"] == "ready"
    assert time.monotonic() - started >= 0.59


def test_an_ingested_asset_has_no_upload_and_the_upload_filter_skips_it(
    emu: Emulator, files: FileServer, http: httpx.Client
) -> None:
    from_url = ingest(http, files.url("/lesson.mp4"))
    upload = http.post("/video/v1/uploads", json={}).json()["data"]
    httpx.put(upload["url"], content=video_bytes(1000))

    by_upload = http.get("/video/v1/assets", params={"upload_id": upload["id"]}).json()["data"]
    every = [a["id"] for a in http.get("/video/v1/assets").json()["data"]]

    assert [a["upload_id"] for a in by_upload] == [upload["id"]]
    assert from_url["id"] in every and from_url["id"] not in [a["id"] for a in by_upload]
    assert "upload_id" not in emu.assets[from_url["id"]]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"inputs": []},
        {"inputs": [{}]},
        {"inputs": [{"url": "ftp://127.0.0.1/v.mp4"}]},
        {"inputs": [{"url": "/local/file.mp4"}]},
        {"inputs": [{"url": 42}]},
        {"inputs": [{"url": "http://h/v.mp4"}, {"generated_subtitles": []}]},
    ],
)
def test_a_body_without_a_usable_input_url_is_400_and_fetches_nothing(
    emu: Emulator, http: httpx.Client, body: dict[str, Any]
) -> None:
    response = http.post("/video/v1/assets", json=body)

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_parameters"
    assert emu.assets == {}


def test_the_deprecated_input_field_is_taken_as_the_url(
    files: FileServer, http: httpx.Client
) -> None:
    response = http.post("/video/v1/assets", json={"input": files.url("/lesson.mp4")})

    assert response.status_code == 201
    assert settled(http, response.json()["data"]["id"])["status"] == "ready"


def test_url_ingest_sends_created_then_ready_webhooks(files: FileServer) -> None:
    with WebhookReceiver().running() as receiver:
        with Emulator(ready_after=0.1, webhook_url=receiver.url, webhook_secret="s") as emu:
            httpx.post(
                f"{emu.base_url}/video/v1/assets",
                auth=AUTH,
                json={"inputs": [{"url": files.url("/lesson.mp4")}], "passthrough": "p"},
            )
            httpx.post(
                f"{emu.base_url}/video/v1/assets",
                auth=AUTH,
                json={"inputs": [{"url": files.url("/notes.txt")}]},
            )
            # nobody polls: the emulator's clock must send the outcomes
            wait_for(lambda: len(receiver.received) == 4)
            assert emu.wait_webhooks()

    events = receiver.events()
    assert sorted(e["type"] for e in events) == [
        "video.asset.created",
        "video.asset.created",
        "video.asset.errored",
        "video.asset.ready",
    ]
    ready = next(e for e in events if e["type"] == "video.asset.ready")
    assert ready["data"]["passthrough"] == "p"
    assert "upload_id" not in ready["data"]


def test_url_ingest_counts_against_the_post_rate_limit(files: FileServer) -> None:
    with Emulator(rate_limit=True) as emu:
        with httpx.Client(base_url=emu.base_url, auth=AUTH, timeout=10) as http:
            upload = http.post("/video/v1/uploads", json={})
            body = {"inputs": [{"url": files.url("/lesson.mp4")}]}
            assets = [http.post("/video/v1/assets", json=body) for _ in range(2)]
            wait_for(lambda: len(files.requests) == 1)
            time.sleep(0.1)  # a refused create must not fetch anything either

    assert upload.status_code == 201
    assert [r.status_code for r in assets] == [201, 429]
    assert assets[1].json() == {"errors": ["Too many requests, retry later."]}
    assert len(emu.assets) == 1 and files.requests == ["/lesson.mp4"]


def test_deleting_an_asset_while_its_url_is_fetched_is_harmless(
    emu: Emulator, http: httpx.Client
) -> None:
    asset = ingest(http, refused_url())
    assert http.delete(f"/video/v1/assets/{asset['id']}").status_code == 204

    time.sleep(0.2)

    assert emu.assets == {}
