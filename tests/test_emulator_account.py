"""What the emulator shows about its Mux environment and account: whoami, environments in
webhooks, request counts and rate-limit headers. Driven over real sockets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import mux_python
import pytest
from emulator_helpers import BLOCK, WebhookReceiver, mux_api, video_bytes, wait_for
from mux_python.exceptions import NotFoundException

from vidpipe.emulator import Emulator

AUTH = ("id", "secret")
WHOAMI = "/system/v1/whoami"


# ----- whoami and environments ----------------------------------------------------------


def test_whoami_names_the_environment_the_token_belongs_to() -> None:
    with Emulator(environment_id="env-prod-7", environment_name="Production") as emu:
        response = httpx.get(f"{emu.base_url}{WHOAMI}", auth=AUTH)

    assert response.status_code == 200
    data = response.json()["data"]
    assert data["environment_id"] == "env-prod-7"
    assert data["environment_name"] == "Production"
    assert set(data) == {
        "access_token_name",
        "environment_id",
        "environment_name",
        "environment_type",
        "organization_id",
        "organization_name",
        "permissions",
    }
    assert isinstance(data["permissions"], list) and "video:write" in data["permissions"]
    assert all(isinstance(data[k], str) and data[k] for k in set(data) - {"permissions"})


def test_a_default_emulator_is_one_named_environment(emu: Emulator, http: httpx.Client) -> None:
    data = http.get(WHOAMI).json()["data"]

    assert emu.environment == {"id": "emu-env-1", "name": "Development"}
    assert (data["environment_id"], data["environment_name"]) == ("emu-env-1", "Development")


def test_whoami_needs_valid_credentials_like_every_endpoint() -> None:
    with Emulator(credentials=("right", "pair")) as emu:
        missing = httpx.get(f"{emu.base_url}{WHOAMI}")
        wrong = httpx.get(f"{emu.base_url}{WHOAMI}", auth=("right", "wrong"))
        right = httpx.get(f"{emu.base_url}{WHOAMI}", auth=("right", "pair"))

    expected = {"error": {"type": "unauthorized", "messages": ["Unauthorized request"]}}
    assert (missing.status_code, missing.json()) == (401, expected)
    assert (wrong.status_code, wrong.json()) == (401, expected)
    assert right.status_code == 200


def test_whoami_only_answers_get(http: httpx.Client) -> None:
    assert http.post(WHOAMI, json={}).status_code == 404


def test_two_emulators_are_two_environments_that_share_no_assets() -> None:
    with (
        Emulator(environment_id="env-a", environment_name="Staging") as first,
        Emulator(environment_id="env-b", environment_name="Production") as second,
    ):
        asset = first.seed_asset(passthrough="x")
        in_first = mux_api(mux_python.AssetsApi, first.base_url).get_asset(asset["id"]).data
        with pytest.raises(NotFoundException):
            mux_api(mux_python.AssetsApi, second.base_url).get_asset(asset["id"])
        ids = [
            httpx.get(f"{emu.base_url}{WHOAMI}", auth=AUTH).json()["data"]["environment_id"]
            for emu in (first, second)
        ]

    assert in_first.id == asset["id"]
    assert ids == ["env-a", "env-b"]
    assert first.environment != second.environment


def test_renaming_the_environment_keeps_its_id(emu: Emulator, http: httpx.Client) -> None:
    emu.rename_environment("Dev (renamed)")

    data = http.get(WHOAMI).json()["data"]

    assert (data["environment_id"], data["environment_name"]) == ("emu-env-1", "Dev (renamed)")
    assert emu.environment == {"id": "emu-env-1", "name": "Dev (renamed)"}


def test_webhook_envelopes_carry_the_emulators_environment() -> None:
    with WebhookReceiver().running() as receiver:
        with Emulator(
            environment_id="env-42",
            environment_name="Course platform",
            webhook_url=receiver.url,
            webhook_secret="whsec",
        ) as emu:
            httpx.post(f"{emu.base_url}/video/v1/uploads", auth=AUTH, json={})
            emu.rename_environment("Renamed")
            httpx.post(f"{emu.base_url}/video/v1/uploads", auth=AUTH, json={})
            assert emu.wait_webhooks()

    environments = [event["environment"] for event in receiver.events()]
    assert environments == [
        {"name": "Course platform", "id": "env-42"},
        {"name": "Renamed", "id": "env-42"},
    ]


def test_run_emulator_takes_the_environment() -> None:
    code = (
        "from vidpipe.emulator import run_emulator\n"
        "run_emulator('127.0.0.1', 0, 0.0, False, environment_id='cli-env',"
        " environment_name='Rehearsal', on_started=lambda url: print(url, flush=True))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        data = httpx.get(f"{base_url}{WHOAMI}", auth=AUTH).json()["data"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()

    assert (data["environment_id"], data["environment_name"]) == ("cli-env", "Rehearsal")


# ----- request counts ------------------------------------------------------------------


def test_writing_calls_count_every_post_put_delete_and_patch_under_video(
    emu: Emulator, http: httpx.Client
) -> None:
    asset = emu.seed_asset()
    upload = http.post("/video/v1/uploads", json={}).json()["data"]
    http.get("/video/v1/assets")
    http.get(f"/video/v1/assets/{asset['id']}")
    http.get(WHOAMI)
    http.put(f"/video/v1/uploads/{upload['id']}/cancel")
    http.delete(f"/video/v1/assets/{asset['id']}")
    http.delete(f"/video/v1/assets/{asset['id']}")  # a 404 was still a writing call
    http.patch(f"/video/v1/assets/{asset['id']}", json={})
    httpx.post(f"{emu.base_url}/video/v1/uploads", json={})  # refused (401), still counted

    assert emu.writing_calls() == 6
    assert emu.method_counts() == {"POST": 2, "GET": 2, "PUT": 1, "DELETE": 2, "PATCH": 1}
    assert emu.method_counts("/system/") == {"GET": 1}


def test_a_read_only_session_makes_no_writing_calls(emu: Emulator, http: httpx.Client) -> None:
    emu.seed_assets(3)
    http.get(WHOAMI)
    http.get("/video/v1/assets")

    assert emu.writing_calls() == 0
    assert emu.method_counts() == {"GET": 1}


def test_upload_url_puts_are_not_writing_calls_of_the_api(
    emu: Emulator, http: httpx.Client
) -> None:
    upload = http.post("/video/v1/uploads", json={}).json()["data"]
    assert httpx.put(upload["url"], content=video_bytes(BLOCK)).status_code == 200

    assert emu.writing_calls() == 1
    assert emu.writing_calls("/upload/") == 1


# ----- rate limits -----------------------------------------------------------------------


def test_rate_limited_answers_carry_x_ratelimit_headers_counting_down() -> None:
    with Emulator(rate_limit=True) as emu:
        with httpx.Client(base_url=emu.base_url, auth=AUTH) as client:
            before = time.time()
            gets = [client.get("/video/v1/assets") for _ in range(6)]
            posts = [client.post("/video/v1/uploads", json={}) for _ in range(3)]
        other = httpx.get(f"{emu.base_url}/video/v1/assets/nope", auth=("other", "pair"))

    assert [r.status_code for r in gets] == [200] * 5 + [429]
    assert [r.headers["X-RateLimit-Limit"] for r in gets] == ["5"] * 6
    assert [r.headers["X-RateLimit-Remaining"] for r in gets] == ["4", "3", "2", "1", "0", "0"]
    assert [r.status_code for r in posts] == [201, 201, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in posts] == ["1", "0", "0"]
    assert all(r.headers["X-RateLimit-Limit"] == "2" for r in posts)
    for response in gets + posts:
        reset = int(response.headers["X-RateLimit-Reset"])
        assert before <= reset <= time.time() + 3
        assert "retry-after" not in response.headers
    assert gets[-1].json() == {"errors": ["Too many requests, retry later."]}
    # an error answer carries them too; every credential pair has its own buckets
    assert (other.status_code, other.headers["X-RateLimit-Remaining"]) == (404, "4")


def test_without_rate_limits_no_ratelimit_headers_are_sent(http: httpx.Client) -> None:
    response = http.get("/video/v1/assets")

    assert response.status_code == 200
    assert not [name for name in response.headers if name.lower().startswith("x-ratelimit")]


def test_the_upload_url_carries_no_ratelimit_headers() -> None:
    with Emulator(rate_limit=True) as emu:
        upload = httpx.post(f"{emu.base_url}/video/v1/uploads", auth=AUTH, json={}).json()
        response = httpx.put(upload["data"]["url"], content=video_bytes(BLOCK))
        wait_for(lambda: bool(emu.assets))

    assert response.status_code == 200
    assert "x-ratelimit-limit" not in response.headers
