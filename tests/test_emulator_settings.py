"""Asset settings as Mux takes and shows them, and the playback-ID endpoints, driven by the
real mux-python client and httpx over real sockets."""

from __future__ import annotations

from typing import Any

import httpx
import mux_python
import pytest
from emulator_helpers import BLOCK, mux_api, video_bytes
from mux_python.exceptions import ApiException, NotFoundException

from vidpipe.emulator import Emulator

AUTH = ("id", "secret")
LANGUAGES = [
    "en", "es", "it", "pt", "de", "fr", "pl", "ru", "nl", "ca", "tr",
    "sv", "uk", "no", "fi", "sk", "el", "cs", "hr", "da", "ro", "bg",
]  # fmt: skip
RESOLUTIONS = ["highest", "audio-only", "2160p", "1440p", "1080p"]
RESOLUTIONS += ["720p", "540p", "480p", "360p", "270p"]

EVERY_SETTING: dict[str, Any] = {
    "playback_policies": ["signed"],
    "passthrough": '{"lesson_id": 7}',
    "video_quality": "premium",
    "max_resolution_tier": "2160p",
    "normalize_audio": True,
    "test": True,
    "meta": {"title": "Lesson 7", "creator_id": "teacher-3", "external_id": "lesson:7"},
    "inputs": [{"generated_subtitles": [{"language_code": "en", "name": "English (auto)"}]}],
    "static_renditions": [{"resolution": "highest"}, {"resolution": "audio-only"}],
}


@pytest.fixture
def assets_api(emu: Emulator) -> Any:
    return mux_api(mux_python.AssetsApi, emu.base_url)


def upload_video(http: httpx.Client, settings: dict[str, Any], **body: Any) -> dict[str, Any]:
    """Create a direct upload with `settings`, PUT a video, return the asset's JSON."""
    response = http.post("/video/v1/uploads", json={"new_asset_settings": settings, **body})
    assert response.status_code == 201, response.text
    upload = response.json()["data"]
    assert httpx.put(upload["url"], content=video_bytes(BLOCK)).status_code == 200
    asset_id = http.get(f"/video/v1/uploads/{upload['id']}").json()["data"]["asset_id"]
    return dict(http.get(f"/video/v1/assets/{asset_id}").json()["data"])


# ----- settings accepted and shown --------------------------------------------------------


def test_an_upload_with_every_setting_makes_an_asset_showing_them(http: httpx.Client) -> None:
    asset = upload_video(http, EVERY_SETTING)

    assert asset["status"] == "ready"
    assert [p["policy"] for p in asset["playback_ids"]] == ["signed"]
    assert asset["passthrough"] == '{"lesson_id": 7}'
    assert asset["video_quality"] == "premium"
    assert asset["max_resolution_tier"] == "2160p"
    assert asset["normalize_audio"] is True
    assert asset["test"] is True
    assert asset["meta"] == EVERY_SETTING["meta"]
    text = [t for t in asset["tracks"] if t["type"] == "text"]
    assert [(t["text_source"], t["language_code"], t["name"]) for t in text] == [
        ("generated_vod", "en", "English (auto)")
    ]
    assert text[0]["status"] == "preparing"  # still preparing when the asset is ready
    files = asset["static_renditions"]["files"]
    assert [(f["resolution"], f["name"], f["ext"]) for f in files] == [
        ("highest", "highest.mp4", "mp4"),
        ("audio-only", "audio.m4a", "m4a"),
    ]
    assert all(f["type"] == "standard" and f["status"] == "ready" and f["id"] for f in files)


def test_mux_python_reads_every_setting_back(http: httpx.Client, assets_api: Any) -> None:
    created = upload_video(http, EVERY_SETTING)

    asset = assets_api.get_asset(created["id"]).data

    assert asset.video_quality == "premium"
    assert asset.max_resolution_tier == "2160p"
    assert asset.normalize_audio is True
    assert asset.meta.external_id == "lesson:7"
    assert asset.tracks[-1].text_source == "generated_vod"
    assert asset.tracks[-1].language_code == "en"
    assert [f.name for f in asset.static_renditions.files] == ["highest.mp4", "audio.m4a"]


def test_mux_python_creates_an_upload_with_its_own_settings_models(
    emu: Emulator, http: httpx.Client
) -> None:
    uploads = mux_api(mux_python.DirectUploadsApi, emu.base_url)
    request = mux_python.CreateUploadRequest(
        new_asset_settings=mux_python.CreateAssetRequest(
            playback_policies=[mux_python.PlaybackPolicy.SIGNED],
            video_quality="basic",
            max_resolution_tier="1440p",
            normalize_audio=True,
            meta=mux_python.AssetMetadata(title="T", external_id="course:2"),
            inputs=[
                mux_python.InputSettings(
                    generated_subtitles=[
                        mux_python.AssetGeneratedSubtitleSettings(language_code="de", name="DE")
                    ]
                )
            ],
            static_renditions=[mux_python.CreateStaticRenditionRequest(resolution="720p")],
        ),
        cors_origin="*",
        test=True,
    )
    upload = uploads.create_direct_upload(request).data
    assert httpx.put(upload.url, content=video_bytes(BLOCK)).status_code == 200

    asset = mux_api(mux_python.AssetsApi, emu.base_url).get_asset(
        uploads.get_direct_upload(upload.id).data.asset_id
    )
    data = asset.data
    assert [p.policy for p in data.playback_ids] == ["signed"]
    assert (data.video_quality, data.max_resolution_tier) == ("basic", "1440p")
    assert data.test is True and data.meta.title == "T"
    assert [(t.language_code, t.name) for t in data.tracks if t.type == "text"] == [("de", "DE")]
    assert [f.resolution for f in data.static_renditions.files] == ["720p"]


def test_an_asset_requested_without_a_playback_policy_has_no_playback_id(
    http: httpx.Client,
) -> None:
    asset = upload_video(http, {"passthrough": "p"})

    assert asset["playback_ids"] == []


def test_one_playback_id_per_requested_policy_the_deprecated_name_included(
    http: httpx.Client,
) -> None:
    both = upload_video(http, {"playback_policies": ["public", "signed", "public"]})
    legacy = upload_video(http, {"playback_policy": "signed"})

    assert [p["policy"] for p in both["playback_ids"]] == ["public", "signed"]
    assert len({p["id"] for p in both["playback_ids"]}) == 2
    assert [p["policy"] for p in legacy["playback_ids"]] == ["signed"]


def test_defaults_when_no_settings_are_given(http: httpx.Client) -> None:
    asset = upload_video(http, {})

    assert asset["video_quality"] == "plus"
    assert asset["max_resolution_tier"] == "1080p"
    assert asset["normalize_audio"] is False
    assert "test" not in asset and "meta" not in asset and "static_renditions" not in asset
    assert [t["type"] for t in asset["tracks"]] == ["video", "audio"]


def test_the_upload_level_test_flag_makes_a_test_asset_of_at_most_ten_seconds(
    http: httpx.Client,
) -> None:
    asset = upload_video(http, {}, test=True)

    assert asset["test"] is True
    assert 0 < asset["duration"] <= 10


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_language_mux_generates_captions_for_is_accepted(
    http: httpx.Client, language: str
) -> None:
    settings = {"inputs": [{"generated_subtitles": [{"language_code": language}]}]}
    response = http.post("/video/v1/uploads", json={"new_asset_settings": settings})

    assert response.status_code == 201


def test_every_static_rendition_resolution_is_accepted_and_taller_than_the_source_is_skipped(
    http: httpx.Client,
) -> None:
    settings = {"static_renditions": [{"resolution": r} for r in RESOLUTIONS]}
    asset = upload_video(http, settings)

    files = {f["resolution"]: f for f in asset["static_renditions"]["files"]}
    assert list(files) == RESOLUTIONS
    assert files["2160p"]["status"] == files["1440p"]["status"] == "skipped"
    assert {files[r]["status"] for r in RESOLUTIONS[:2] + RESOLUTIONS[4:]} == {"ready"}


def test_tracks_and_renditions_are_preparing_while_the_asset_is() -> None:
    with Emulator(ready_after=30) as emu:
        with httpx.Client(base_url=emu.base_url, auth=AUTH, timeout=10) as http:
            asset = upload_video(http, EVERY_SETTING)

    assert asset["status"] == "preparing"
    assert [(t["type"], t["status"]) for t in asset["tracks"]] == [("text", "preparing")]
    assert [f["status"] for f in asset["static_renditions"]["files"]] == ["preparing"] * 2


def test_an_errored_asset_errors_its_subtitle_tracks(http: httpx.Client) -> None:
    response = http.post("/video/v1/uploads", json={"new_asset_settings": EVERY_SETTING})
    upload = response.json()["data"]
    httpx.put(upload["url"], content=b"plain text, no video")
    asset_id = http.get(f"/video/v1/uploads/{upload['id']}").json()["data"]["asset_id"]

    asset = http.get(f"/video/v1/assets/{asset_id}").json()["data"]

    assert asset["status"] == "errored"
    assert [(t["type"], t["status"]) for t in asset["tracks"]] == [("text", "errored")]


def test_a_generated_track_can_be_made_ready_by_a_test(emu: Emulator, http: httpx.Client) -> None:
    asset = upload_video(http, EVERY_SETTING)

    emu.set_track_status(asset["id"], "en", "ready")

    tracks = http.get(f"/video/v1/assets/{asset['id']}").json()["data"]["tracks"]
    assert [t["status"] for t in tracks if t["type"] == "text"] == ["ready"]
    with pytest.raises(KeyError):
        emu.set_track_status(asset["id"], "fr", "ready")


# ----- invalid settings ---------------------------------------------------------------------


BAD_SETTINGS = [
    {"playback_policies": ["private"]},
    {"playback_policies": "signed,public"},
    {"playback_policy": ["nope"]},
    {"video_quality": "ultra"},
    {"encoding_tier": "fancy"},
    {"max_resolution_tier": "720p"},
    {"max_resolution_tier": "4k"},
    {"normalize_audio": "yes"},
    {"test": 1},
    {"meta": {"title": "t" * 513}},
    {"meta": {"creator_id": "c" * 129}},
    {"meta": {"external_id": "e" * 129}},
    {"meta": {"external-id": "typo"}},
    {"meta": "title"},
    {"passthrough": "x" * 256},
    {"passthrough": 7},
    {"inputs": {"generated_subtitles": []}},
    {"inputs": [{"generated_subtitles": [{"language_code": "xx"}]}]},
    {"inputs": [{"generated_subtitles": [{"language_code": "en-US"}]}]},
    {"inputs": [{"generated_subtitles": [{"language_code": "en", "name": ""}]}]},
    {"inputs": [{"generated_subtitles": "en"}]},
    {"inputs": [{"url": "https://example.com/v.mp4"}]},
    {"static_renditions": [{"resolution": "4k"}]},
    {"static_renditions": ["highest"]},
    {"static_renditions": [{"resolution": "720p"}, {"resolution": "720p"}]},
    {"static_renditions": [{"resolution": "highest"}], "mp4_support": "standard"},
    {"mp4_support": "everything"},
]


@pytest.mark.parametrize("settings", BAD_SETTINGS)
def test_an_upload_with_an_invalid_setting_is_400_and_creates_nothing(
    emu: Emulator, http: httpx.Client, settings: dict[str, Any]
) -> None:
    response = http.post("/video/v1/uploads", json={"new_asset_settings": settings})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_parameters"
    assert len(error["messages"]) == 1 and error["messages"][0]
    assert emu.uploads == {}


@pytest.mark.parametrize("settings", [s for s in BAD_SETTINGS if "inputs" not in s])
def test_an_asset_from_a_url_with_an_invalid_setting_is_400_and_creates_nothing(
    emu: Emulator, http: httpx.Client, settings: dict[str, Any]
) -> None:
    body = {"inputs": [{"url": "http://127.0.0.1:9/v.mp4"}], **settings}
    response = http.post("/video/v1/assets", json=body)

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_parameters"
    assert emu.assets == {}


def test_every_problem_of_a_body_is_named_in_one_400(http: httpx.Client) -> None:
    settings = {"video_quality": "ultra", "max_resolution_tier": "4k", "test": "no"}
    response = http.post("/video/v1/uploads", json={"new_asset_settings": settings})

    assert response.status_code == 400
    assert len(response.json()["error"]["messages"]) == 3


def test_combining_static_renditions_with_mp4_support_is_an_api_exception_in_mux_python(
    emu: Emulator,
) -> None:
    uploads = mux_api(mux_python.DirectUploadsApi, emu.base_url)
    request = mux_python.CreateUploadRequest(
        new_asset_settings=mux_python.CreateAssetRequest(
            mp4_support="capped-1080p",
            static_renditions=[mux_python.CreateStaticRenditionRequest(resolution="highest")],
        )
    )

    with pytest.raises(ApiException) as caught:
        uploads.create_direct_upload(request)
    assert caught.value.status == 400


def test_mp4_support_alone_is_accepted_and_shown(http: httpx.Client) -> None:
    asset = upload_video(http, {"mp4_support": "capped-1080p"})

    assert asset["mp4_support"] == "capped-1080p"


def test_the_older_encoding_tier_name_sets_the_video_quality(http: httpx.Client) -> None:
    asset = upload_video(http, {"encoding_tier": "baseline"})

    assert (asset["video_quality"], asset["encoding_tier"]) == ("basic", "baseline")


def test_settings_at_their_limits_are_accepted(http: httpx.Client) -> None:
    meta = {"title": "t" * 512, "creator_id": "c" * 128, "external_id": "e" * 128}
    asset = upload_video(http, {"meta": meta, "passthrough": "p" * 255})

    assert asset["meta"] == meta and len(asset["passthrough"]) == 255


# ----- seeding ------------------------------------------------------------------------------


def test_seeded_assets_have_a_public_playback_id_unless_told_otherwise(emu: Emulator) -> None:
    default = emu.seed_asset()
    signed = emu.seed_asset(playback_policies=["signed"])
    none = emu.seed_asset(playback_policies=())

    assert [p["policy"] for p in default["playback_ids"]] == ["public"]
    assert [p["policy"] for p in signed["playback_ids"]] == ["signed"]
    assert none["playback_ids"] == []


def test_seeded_assets_take_every_setting(emu: Emulator, assets_api: Any) -> None:
    seeded = emu.seed_asset(
        passthrough="p",
        meta={"title": "Seeded", "external_id": "lesson:1"},
        video_quality="basic",
        max_resolution_tier="1440p",
        normalize_audio=True,
        test=True,
        generated_subtitles=["en", {"language_code": "fr", "name": "Français"}],
        static_renditions=["highest", {"resolution": "480p"}],
    )

    asset = assets_api.get_asset(seeded["id"]).data
    assert asset.meta.title == "Seeded"
    assert (asset.video_quality, asset.max_resolution_tier) == ("basic", "1440p")
    assert asset.normalize_audio is True and asset.test is True
    assert [(t.language_code, t.name) for t in asset.tracks if t.type == "text"] == [
        ("en", "English (generated)"),
        ("fr", "Français"),
    ]
    assert [f.resolution for f in asset.static_renditions.files] == ["highest", "480p"]


def test_seeding_with_a_setting_mux_would_refuse_is_a_value_error(emu: Emulator) -> None:
    with pytest.raises(ValueError, match="video_quality"):
        emu.seed_asset(video_quality="ultra")
    with pytest.raises(ValueError, match="language_code"):
        emu.seed_asset(generated_subtitles=["xx"])
    assert emu.assets == {}


# ----- playback IDs -------------------------------------------------------------------------


def test_mux_python_creates_gets_and_deletes_a_playback_id(emu: Emulator, assets_api: Any) -> None:
    asset = emu.seed_asset(playback_policies=["public"])
    request = mux_python.CreatePlaybackIDRequest(policy=mux_python.PlaybackPolicy.SIGNED)

    created = assets_api.create_asset_playback_id(asset["id"], request).data
    fetched = assets_api.get_asset_playback_id(asset["id"], created.id).data
    policies = [p.policy for p in assets_api.get_asset(asset["id"]).data.playback_ids]
    public_id = asset["playback_ids"][0]["id"]
    deleted = assets_api.delete_asset_playback_id(asset["id"], public_id)

    assert created.policy == "signed" and created.id
    assert (fetched.id, fetched.policy) == (created.id, "signed")
    assert policies == ["public", "signed"]
    assert deleted is None
    assert [(p["id"], p["policy"]) for p in emu.assets[asset["id"]]["playback_ids"]] == [
        (created.id, "signed")
    ]
    with pytest.raises(NotFoundException):
        assets_api.get_asset_playback_id(asset["id"], public_id)
    with pytest.raises(NotFoundException):
        assets_api.delete_asset_playback_id(asset["id"], public_id)


def test_playback_id_endpoints_answer_mux_status_codes(emu: Emulator, http: httpx.Client) -> None:
    asset = emu.seed_asset(playback_policies=())
    base = f"/video/v1/assets/{asset['id']}/playback-ids"

    created = http.post(base, json={"policy": "drm"})
    pid = created.json()["data"]["id"]
    got = http.get(f"{base}/{pid}")
    deleted = http.delete(f"{base}/{pid}")

    assert (created.status_code, created.json()["data"]["policy"]) == (201, "drm")
    assert (got.status_code, got.json()) == (200, {"data": {"id": pid, "policy": "drm"}})
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert http.get(f"{base}/{pid}").status_code == 404
    assert http.delete(f"{base}/{pid}").status_code == 404


def test_a_playback_id_for_a_missing_asset_is_404(http: httpx.Client) -> None:
    response = http.post("/video/v1/assets/nope/playback-ids", json={"policy": "public"})

    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"
    assert http.get("/video/v1/assets/nope/playback-ids/x").status_code == 404


@pytest.mark.parametrize("body", [{}, {"policy": "private"}, {"policy": ["signed"]}, []])
def test_a_playback_id_with_a_bad_policy_is_400(
    emu: Emulator, http: httpx.Client, body: Any
) -> None:
    asset = emu.seed_asset()

    response = http.post(f"/video/v1/assets/{asset['id']}/playback-ids", json=body)

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_parameters"
    assert len(emu.assets[asset["id"]]["playback_ids"]) == 1


def test_a_playback_id_is_looked_up_to_its_asset(emu: Emulator) -> None:
    asset = emu.seed_asset(playback_policies=["signed"])
    pid = asset["playback_ids"][0]["id"]
    api = mux_api(mux_python.PlaybackIDApi, emu.base_url)

    found = api.get_asset_or_livestream_id(pid).data

    assert (found.id, found.policy) == (pid, "signed")
    assert (found.object.type, found.object.id) == ("asset", asset["id"])
    with pytest.raises(NotFoundException):
        api.get_asset_or_livestream_id("nope")
