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
