"""The facade keeps per-call choices per call: an import's patience with 429s and a walk's
progress listener go to that call's requests only, never onto the gateway a `Vidpipe` shares
between its calls (and its threads)."""

from __future__ import annotations

import threading
from pathlib import Path

from conftest import Platform

from vidpipe.api import Vidpipe
from vidpipe.emulator import Emulator
from vidpipe.progress import ApiCall, Event


def test_an_import_leaves_the_shared_gateways_retry_policy_as_it_was(
    env: Platform, emulator: Emulator, tmp_path: Path
) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("source,lesson\nhttps://example.com/a.mp4,1\n")
    with Vidpipe.from_env() as lib:
        before = lib.gateway.retry
        report = lib.import_manifest(manifest, wait=False)
        assert report.ok
        assert lib.gateway.retry == before
        assert lib.gateway.retry.rate_limit_patience == 0.0


def test_two_threads_walking_at_once_each_hear_only_their_own_requests(
    env: Platform, emulator: Emulator
) -> None:
    for lesson in (1, 2):
        asset = emulator.seed_asset(passthrough=f'{{"lesson_id": {lesson}}}')
        env.set_lesson(lesson, str(asset["id"]), str(asset["playback_ids"][0]["id"]))
    heard: dict[str, list[str]] = {"status": [], "verify": []}
    verify_walking = threading.Event()
    status_went_on = threading.Event()

    def listener(walk: str) -> object:
        def hear(event: Event) -> None:
            if not isinstance(event, ApiCall):
                return
            heard[walk].append(threading.current_thread().name)
            if walk == "status" and len(heard["status"]) == 1:
                # The status walk's first request waits until verify walks too ...
                verify_walking.wait(10)
            elif walk == "status":
                status_went_on.set()
            elif len(heard["verify"]) == 1:
                # ... and verify's first request waits until status made more requests.
                verify_walking.set()
                status_went_on.wait(10)

        return hear

    with Vidpipe.from_env() as lib:
        lib.check_environment()  # the engine, the gateway and the pin, made once up front
        threads = [
            threading.Thread(
                target=lambda: lib.status(on_progress=listener("status")),  # type: ignore[arg-type]
                name="status",
            ),
            threading.Thread(
                target=lambda: lib.verify(on_progress=listener("verify")),  # type: ignore[arg-type]
                name="verify",
            ),
        ]
        threads[0].start()
        threads[1].start()
        for thread in threads:
            thread.join(30)
    assert heard["status"] and set(heard["status"]) == {"status"}
    assert heard["verify"] and set(heard["verify"]) == {"verify"}
    assert status_went_on.is_set(), "the walks did not overlap: test invalid"


def test_threads_sharing_a_fresh_vidpipe_make_one_engine_one_gateway_and_one_whoami(
    env: Platform, emulator: Emulator
) -> None:
    # A slow whoami widens the window in which each thread would otherwise make its own.
    emulator.inject("GET", "/system/v1/whoami", "delay", delay=0.3, times=100)
    start = threading.Barrier(6)
    seen: list[tuple[object, object, object]] = []

    def first_call(lib: Vidpipe) -> None:
        start.wait(10)
        environment = lib.check_environment()
        seen.append((lib.engine, lib.gateway, environment))

    with Vidpipe.from_env() as lib:
        threads = [threading.Thread(target=first_call, args=(lib,)) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert len(seen) == 6
    assert len({id(engine) for engine, _, _ in seen}) == 1
    assert len({id(gateway) for _, gateway, _ in seen}) == 1
    assert emulator.count(method="GET", path_prefix="/system/v1/whoami") == 1
