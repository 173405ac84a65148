"""The emulator's day-2 endpoints, driven by the real mux-python and httpx clients: Mux's rules
for generated captions, subtitle files, static renditions and PATCH, and each state change
after the delay."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from emulator_helpers import FileServer, WebhookReceiver, wait_for

from vidpipe.emulator import Emulator
from vidpipe.errors import MuxBadRequest
from vidpipe.mux import MuxGateway

DELAY = 0.4


@pytest.fixture
def slow() -> Iterator[Emulator]:
    """An emulator whose new tracks and renditions take `DELAY` seconds."""
    with Emulator(ready_after=DELAY) as emulator:
        yield emulator


@pytest.fixture
def client(slow: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=slow.base_url, auth=("id", "secret"), timeout=10) as c:
        yield c


@pytest.fixture
def gateway(slow: Emulator) -> Iterator[MuxGateway]:
    with MuxGateway(slow.base_url, "id", "secret", pace=False) as gw:
        yield gw


def tracks(client: httpx.Client, asset_id: str, kind: str) -> list[dict[str, Any]]:
    asset = client.get(f"/video/v1/assets/{asset_id}").json()["data"]
    return [t for t in asset["tracks"] if t["type"] == kind]


def error_of(resp: httpx.Response) -> tuple[int, str]:
    return resp.status_code, resp.json()["error"]["type"]


def test_generated_captions_come_from_an_audio_track_once_per_language(
    slow: Emulator, client: httpx.Client, gateway: MuxGateway
) -> None:
    asset = slow.seed_asset(passthrough="x")
    (audio,) = tracks(client, asset["id"], "audio")
    (video,) = tracks(client, asset["id"], "video")
    made = gateway.generate_subtitles(asset["id"], audio["id"], ["en", "fr"])
    assert [(t.language_code, t.name, t.status) for t in made] == [
        ("en", "English (generated)", "preparing"),
        ("fr", "French (generated)", "preparing"),
    ]
    body = {"generated_subtitles": [{"language_code": "de"}]}
    on_video = client.post(
        f"/video/v1/assets/{asset['id']}/tracks/{video['id']}/generate-subtitles", json=body
    )
    assert error_of(on_video) == (400, "invalid_parameters")
    with pytest.raises(MuxBadRequest):
        gateway.generate_subtitles(asset["id"], audio["id"], ["en"])  # twice for one language
    japanese = {"generated_subtitles": [{"language_code": "ja", "name": "Japanese"}]}
    path = f"/video/v1/assets/{asset['id']}/tracks/{audio['id']}/generate-subtitles"
    assert error_of(client.post(path, json=japanese)) == (400, "invalid_parameters")
    time.sleep(DELAY + 0.1)
    assert {t["status"] for t in tracks(client, asset["id"], "text")} == {"ready"}


def test_a_subtitle_file_is_fetched_and_errors_unless_it_is_webvtt_or_srt(
    slow: Emulator, client: httpx.Client, gateway: MuxGateway
) -> None:
    asset = slow.seed_asset(passthrough="x")
    srt = b"1\n00:00:01,000 --> 00:00:02,000\nx\n"
    served = FileServer({"/a.vtt": b"WEBVTT\n\n", "/b.srt": srt, "/c.txt": b"hello"})
    with served.running():
        ids = {
            name: gateway.create_text_track(
                asset["id"], served.url(f"/{name}"), language="en", name=name
            ).id
            for name in ("a.vtt", "b.srt", "c.txt")
        }
        dup = client.post(
            f"/video/v1/assets/{asset['id']}/tracks",
            json={"url": served.url("/a.vtt"), "type": "text", "language_code": "en",
                  "name": "a.vtt"},
        )  # fmt: skip
        assert error_of(dup) == (400, "invalid_parameters")
        ftp = client.post(
            f"/video/v1/assets/{asset['id']}/tracks",
            json={"url": "ftp://x/a.vtt", "type": "text", "language_code": "en", "name": "z"},
        )
        assert error_of(ftp) == (400, "invalid_parameters")
        deadline = time.monotonic() + 5
        while any(t["status"] == "preparing" for t in tracks(client, asset["id"], "text")):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    status = {t["id"]: t["status"] for t in tracks(client, asset["id"], "text")}
    assert [status[ids[n]] for n in ("a.vtt", "b.srt", "c.txt")] == ["ready", "ready", "errored"]
    assert gateway.delete_track(asset["id"], ids["c.txt"]) is True
    assert gateway.delete_track(asset["id"], ids["c.txt"]) is False


def test_static_renditions_prepare_then_end_ready_or_skipped_and_refuse_a_duplicate(
    slow: Emulator, client: httpx.Client, gateway: MuxGateway
) -> None:
    asset = slow.seed_asset(passthrough="x")
    highest = gateway.create_static_rendition(asset["id"], "highest")
    above = gateway.create_static_rendition(asset["id"], "2160p")
    assert (highest.status, highest.resolution, above.status) == (
        "preparing",
        "highest",
        "preparing",
    )
    with pytest.raises(MuxBadRequest):
        gateway.create_static_rendition(asset["id"], "highest")
    time.sleep(DELAY + 0.1)
    files = gateway.get_asset(asset["id"]).static_renditions
    assert {(f.resolution, f.status) for f in files} == {("highest", "ready"), ("2160p", "skipped")}


def test_patch_sets_meta_within_muxs_length_limits(
    slow: Emulator, client: httpx.Client, gateway: MuxGateway
) -> None:
    asset = slow.seed_asset(passthrough="x", meta={"title": "old", "creator_id": "cms"})
    gateway.update_meta(asset["id"], {"title": "new", "external_id": "lesson:1"})
    assert gateway.get_asset(asset["id"]).meta == {"title": "new", "external_id": "lesson:1"}
    too_long = client.patch(f"/video/v1/assets/{asset['id']}", json={"meta": {"title": "x" * 513}})
    assert error_of(too_long) == (400, "invalid_parameters")
    unknown = client.patch(f"/video/v1/assets/{asset['id']}", json={"meta": {"author": "me"}})
    assert error_of(unknown) == (400, "invalid_parameters")
    assert gateway.get_asset(asset["id"]).meta["title"] == "new"


def test_each_change_to_an_asset_is_announced_by_webhook_as_mux_does() -> None:
    with WebhookReceiver().running() as receiver:
        with Emulator(ready_after=DELAY, webhook_url=receiver.url, webhook_secret="s") as emu:
            asset = emu.seed_asset(passthrough="x")
            aid = asset["id"]
            with MuxGateway(emu.base_url, "id", "secret", pace=False) as gw:
                audio = next(t for t in gw.get_asset(aid).tracks if t.type == "audio")
                (caption,) = gw.generate_subtitles(aid, audio.id, ["en"])
                highest = gw.create_static_rendition(aid, "highest")
                above = gw.create_static_rendition(aid, "2160p")
                served = FileServer({"/bad.txt": b"not subtitles"})
                with served.running():
                    bad = gw.create_text_track(
                        aid, served.url("/bad.txt"), language="fr", name="fr"
                    )
                    wait_for(lambda: len(receiver.received) >= 8)
                dropped = gw.create_static_rendition(aid, "720p")
                # deleted before it was ready (vidpipe never deletes one: raw HTTP)
                gone = httpx.delete(
                    f"{emu.base_url}/video/v1/assets/{aid}/static-renditions/{dropped.id}",
                    auth=("id", "secret"),
                )
                assert gone.status_code == 204
                gw.delete_track(aid, caption.id)
                gw.update_meta(aid, {"title": "new"})
                time.sleep(DELAY + 0.3)  # time for an outcome the deleted rendition must not get
                assert emu.wait_webhooks()

    seen = [(e["type"], e["data"].get("id"), e["data"].get("asset_id")) for e in receiver.events()]
    assert sorted(seen[:4]) == sorted(
        [
            ("video.asset.track.created", caption.id, aid),
            ("video.asset.static_rendition.created", highest.id, aid),
            ("video.asset.static_rendition.created", above.id, aid),
            ("video.asset.track.created", bad.id, aid),
        ]
    )
    assert sorted(seen[4:8]) == sorted(
        [
            ("video.asset.track.ready", caption.id, aid),
            ("video.asset.static_rendition.ready", highest.id, aid),
            ("video.asset.static_rendition.skipped", above.id, aid),
            ("video.asset.track.errored", bad.id, aid),
        ]
    )
    assert seen[8:] == [
        ("video.asset.static_rendition.created", dropped.id, aid),
        ("video.asset.static_rendition.deleted", dropped.id, aid),
        ("video.asset.track.deleted", caption.id, aid),
        ("video.asset.updated", aid, None),
    ]
    by_type = {e["type"]: e for e in receiver.events()}
    assert by_type["video.asset.track.ready"]["data"]["status"] == "ready"
    assert by_type["video.asset.track.errored"]["data"]["error"]["type"] == "invalid_input"
    assert by_type["video.asset.track.created"]["object"]["type"] == "track"
    assert by_type["video.asset.updated"]["data"]["meta"] == {"title": "new"}
