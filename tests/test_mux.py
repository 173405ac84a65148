"""The gateway against the emulator, through the real mux-python client: typed results,
error mapping, retries, pacing, pagination, and no secret in any error."""

from __future__ import annotations

import time

import pytest

from vidpipe.emulator import Emulator
from vidpipe.errors import (
    MuxBadRequest,
    MuxNetworkError,
    MuxNotFound,
    MuxRateLimited,
    MuxServerError,
    MuxUnauthorized,
)
from vidpipe.mux import Asset, MuxGateway, Pacer, RetryPolicy

SECRET = "gw-secret-never-in-errors"


def fast_retry(attempts: int = 3) -> RetryPolicy:
    return RetryPolicy(attempts=attempts, initial=0.001, maximum=0.005, jitter=0.001)


@pytest.fixture
def gw(emulator: Emulator) -> MuxGateway:
    return MuxGateway(emulator.base_url, "id", SECRET, pace=False, retry=fast_retry())


def test_create_get_upload_and_assets(gw: MuxGateway, emulator: Emulator) -> None:
    up = gw.create_upload('{"lesson_id": 1}')
    assert up.status == "waiting" and up.url and up.passthrough == '{"lesson_id": 1}'
    assert gw.get_upload(up.id).id == up.id
    seeded = emulator.seed_asset(passthrough='{"lesson_id": 1}')
    asset = gw.get_asset(seeded["id"])
    assert isinstance(asset, Asset) and asset.status == "ready"
    assert asset.public_playback_id == seeded["playback_ids"][0]["id"]
    assert isinstance(asset.created_at, int)


def test_unknown_enum_values_do_not_crash(gw: MuxGateway) -> None:
    import mux_python

    # mux-python's models raise on enum values they do not know; vidpipe parses the raw JSON
    # itself, and turns validation off only in its own configuration, never process-wide.
    assert mux_python.Configuration.get_default_copy().client_side_validation is True
    assert gw.create_upload('{"lesson_id": 1}').url
    asset = Asset.from_json(
        {
            "id": "a1",
            "status": "some_new_status",
            "created_at": "1700000000",
            "playback_ids": [{"id": "p1", "policy": "a_new_policy"}, {"id": "p2"}],
            "video_quality": "ultra",
            "new_field": {"x": 1},
        }
    )
    assert asset.status == "some_new_status" and asset.created_at == 1700000000
    assert asset.public_playback_id is None and asset.has_playback_id("p1")


def test_not_found_and_delete(gw: MuxGateway, emulator: Emulator) -> None:
    with pytest.raises(MuxNotFound):
        gw.get_asset("nope")
    assert gw.find_asset("nope") is None
    seeded = emulator.seed_asset()
    assert gw.delete_asset(seeded["id"]) is True
    assert gw.delete_asset(seeded["id"]) is False


def test_pagination_walks_every_page(gw: MuxGateway, emulator: Emulator) -> None:
    emulator.seed_assets(250)
    ids = [a.id for a in gw.iter_assets()]
    assert len(ids) == len(set(ids)) == 250
    assert emulator.count(method="GET", path_prefix="/video/v1/assets") == 3


def test_unauthorized_maps_and_hides_secret(emulator: Emulator) -> None:
    with Emulator(credentials=("right", "pair")) as strict:
        gw = MuxGateway(strict.base_url, "wrong", SECRET, pace=False, retry=fast_retry())
        with pytest.raises(MuxUnauthorized) as info:
            gw.get_asset("x")
        assert "refused the credentials" in str(info.value)
        assert SECRET not in str(info.value)
        assert strict.count(status=401) == 1  # not retried


def test_5xx_retried_then_succeeds(gw: MuxGateway, emulator: Emulator) -> None:
    seeded = emulator.seed_asset()
    emulator.inject("GET", "/video/v1/assets", "status", status=503, times=2)
    assert gw.get_asset(seeded["id"]).id == seeded["id"]
    assert gw.stats.retries == 2


def test_5xx_exhausted(gw: MuxGateway, emulator: Emulator) -> None:
    emulator.inject("GET", "/video/", "status", status=500, times=10)
    with pytest.raises(MuxServerError):
        gw.get_asset("x")
    assert emulator.count(status=500) == 3


def test_429_mux_shape_retried_and_counted(gw: MuxGateway, emulator: Emulator) -> None:
    emulator.inject("GET", "/video/", "status", status=429, times=10)
    with pytest.raises(MuxRateLimited):
        gw.get_asset("x")
    assert gw.stats.rate_limited == 3


def test_400_not_retried_with_mux_words(gw: MuxGateway, emulator: Emulator) -> None:
    with pytest.raises(MuxBadRequest) as info:
        gw.create_upload("x" * 300)  # passthrough over 255 characters
    assert "400" in str(info.value)
    assert emulator.count(method="POST") == 1


def test_network_error_when_nothing_listens() -> None:
    gw = MuxGateway("http://127.0.0.1:1", "id", SECRET, pace=False, retry=fast_retry(2))
    with pytest.raises(MuxNetworkError) as info:
        gw.get_asset("x")
    assert SECRET not in str(info.value)


def test_cut_connection_is_a_network_error_and_retried(gw: MuxGateway, emulator: Emulator) -> None:
    seeded = emulator.seed_asset()
    emulator.inject("GET", "/video/v1/assets", "reset", times=1)
    assert gw.get_asset(seeded["id"]).id == seeded["id"]
    assert gw.stats.retries == 1


def test_pacer_spaces_requests() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    pacer = Pacer(5.0, clock=lambda: now[0])
    for _ in range(6):
        pacer.wait(sleep)
    assert now[0] == pytest.approx(1.0)  # 6 requests at 5/s: the 6th at t=1.0
    assert len(slept) == 5


def test_pacer_lets_a_short_burst_through_then_keeps_the_rate() -> None:
    now = [100.0]

    def sleep(s: float) -> None:
        now[0] += s

    pacer = Pacer(5.0, clock=lambda: now[0], burst=2)
    at = []
    for _ in range(7):
        pacer.wait(sleep)
        at.append(round(now[0] - 100.0, 6))
    # Two at once, then one every 0.2 s: 7 requests in 1.0 s, never more than 5/s after.
    assert at == [0.0, 0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    now[0] += 10.0  # a pause refills the burst, and only the burst
    start = now[0]
    for _ in range(3):
        pacer.wait(sleep)
    assert now[0] - start == pytest.approx(0.2)


def test_paced_gateway_meets_rate_limit(emulator: Emulator) -> None:
    with Emulator(rate_limit=True) as limited:
        limited.seed_assets(30)
        gw = MuxGateway(limited.base_url, "id", SECRET, retry=fast_retry())
        ids = list(limited.assets)[:12]
        start = time.monotonic()
        for aid in ids:
            gw.get_asset(aid)
        assert limited.count(status=429) == 0
        # 12 GETs at 5/s with a burst of 2: the 12th goes out 10 intervals after the first.
        assert time.monotonic() - start >= 10 / 5 - 0.05
