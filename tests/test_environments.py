"""One database, one Mux environment: two emulators stand for two environments.

The database is pinned to the first emulator's environment ("Production"); a token of the
second ("Staging") must change nothing anywhere, for every command: no row, journal entry,
tombstone or pin written, no writing call on either Mux, and no Mux call but whoami.
Also: pinning on first contact, `db pin`, webhook events of another environment, the
`--max-clears` guard of sync, and a whoami that fails.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from conftest import WEBHOOK_SECRET, Platform, Result, fast_retry

from vidpipe import environment, journal
from vidpipe.emulator import Emulator, sign
from vidpipe.emulator.webhooks import envelope
from vidpipe.journal import State
from vidpipe.mux import Environment
from vidpipe.targets import Kind, Target

PROD = {"id": "env-prod-1", "name": "Production"}
STAGING = {"id": "env-staging-2", "name": "Staging"}
L1 = Target(Kind.LESSON, 1)


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """The database's own environment (overrides conftest's: same fixture name)."""
    with Emulator(ready_after=0.0, environment_id=PROD["id"], environment_name=PROD["name"]) as e:
        yield e


@pytest.fixture
def staging() -> Iterator[Emulator]:
    """Another Mux environment, with vidpipe-looking orphans a wrong sync could delete."""
    with Emulator(
        ready_after=0.0, environment_id=STAGING["id"], environment_name=STAGING["name"]
    ) as emu:
        emu.seed_asset(json.dumps({"lesson_id": 99}), created_at=int(time.time()) - 5 * 86400)
        emu.seed_asset(json.dumps({"lesson_id": 3}), created_at=int(time.time()) - 5 * 86400)
        yield emu


@pytest.fixture(autouse=True)
def quick(mux_tuning: dict[str, Any]) -> None:
    mux_tuning["retry"] = fast_retry()
    mux_tuning["pace"] = False


@pytest.fixture
def recorded(env: Platform, emulator: Emulator) -> Platform:
    """Lessons 1 and 2 and course 1 record Production assets; lesson 1 has an unfinished
    upload; one tombstone exists."""
    for target, lesson in ((Target(Kind.LESSON, 1), 1), (Target(Kind.LESSON, 2), 2)):
        a = emulator.seed_asset(target.passthrough)
        env.set_lesson(lesson, a["id"], a["playback_ids"][0]["id"])
    journal.create(
        env.engine,
        L1,
        file_path="/x.mp4",
        file_size=1,
        file_mtime_ns=1,
        chunk_size=262144,
        state=State.UPLOADING,
        upload_id="upload-unknown-everywhere",
    )
    from vidpipe.db import transaction
    from vidpipe.records import remember_dead

    with transaction(env.engine) as conn:
        remember_dead(conn, "dead-asset", "test")
    return env


def everything(env: Platform) -> tuple[object, ...]:
    """All vidpipe and platform state in the database, for 'nothing changed' assertions."""
    with env.engine.connect() as conn:
        jrnl = conn.execute(sa.text("SELECT * FROM vidpipe_upload ORDER BY id")).all()
        pin = conn.execute(sa.text("SELECT * FROM vidpipe_environment")).all()
    return (env.dump(), env.tombstones(), [tuple(r) for r in jrnl], [tuple(r) for r in pin])


def event_file(tmp_path: Path, env_: dict[str, str] | None, data: dict[str, Any]) -> Path:
    evt = envelope("video.asset.ready", "asset", data["id"], data, env_)
    if env_ is None:
        del evt["environment"]
    path = tmp_path / f"event-{len(list(tmp_path.iterdir()))}.json"
    path.write_text(json.dumps(evt))
    return path


def assert_names_both(err: str) -> None:
    line = err.strip().splitlines()[-1]
    assert line.startswith("vidpipe: error:")
    for part in (PROD["id"], PROD["name"], STAGING["id"], STAGING["name"]):
        assert part in line, line
    assert "vidpipe db pin --force" in line


# -- every command refuses another environment's token ------------------------------------------


COMMANDS: dict[str, Callable[[Path, Path], list[Any]]] = {
    "upload": lambda video, _evt: ["upload", video, "--lesson", "3"],
    "upload --replace": lambda video, _evt: ["upload", video, "--lesson", "1", "--replace"],
    "status": lambda _v, _e: ["status"],
    "status --json": lambda _v, _e: ["status", "--json"],
    "status --lesson": lambda _v, _e: ["status", "--lesson", "1"],
    "verify --json": lambda _v, _e: ["verify", "--json"],
    "sync": lambda _v, _e: ["sync"],
    "sync --prune-orphans --json": lambda _v, _e: [
        "sync",
        "--prune-orphans",
        "--orphan-min-age",
        "0s",
        "--max-clears",
        "1000",
        "--json",
    ],
    "sync --dry-run": lambda _v, _e: ["sync", "--dry-run", "--json"],
    "delete --lesson": lambda _v, _e: ["delete", "--lesson", "1", "--yes", "--json"],
    "delete --asset": lambda _v, _e: ["delete", "--asset", "some-staging-asset", "--yes"],
    "webhook apply": lambda _v, evt: ["webhook", "apply", evt, "--no-verify", "--json"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_with_another_environments_token_changes_nothing_and_exits_2(
    recorded: Platform,
    emulator: Emulator,
    staging: Emulator,
    video: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    vp: Callable[..., Result],
    command: str,
) -> None:
    staged = next(iter(staging.assets.values()))
    evt = event_file(tmp_path, STAGING, staged)
    argv = COMMANDS[command](video(), evt)
    before, before_staging = everything(recorded), staging.assets
    monkeypatch.setenv("MUX_BASE_URL", staging.base_url)

    res = vp(*argv)

    assert res.code == 2, res
    assert res.out == ""
    assert_names_both(res.err)
    assert everything(recorded) == before
    assert staging.assets == before_staging
    assert staging.writing_calls() == 0 and emulator.writing_calls() == 0
    # whoami was the one call: nothing else was asked of either Mux
    assert staging.count(path_prefix="/") == staging.count("GET", "/system/v1/whoami") == 1
    assert emulator.count(path_prefix="/") == 0


def test_the_same_commands_with_the_right_token_do_their_work(
    recorded: Platform, emulator: Emulator, vp: Callable[..., Result]
) -> None:
    """The counterpart of the refusals above: the database and token agree, so sync works."""
    emulator.delete_asset_silently(str(recorded.lesson(2).mux_asset_id))  # type: ignore[union-attr]
    res = vp("sync", "--json")
    assert res.code == 0, res.err
    assert recorded.lesson(2).mux_asset_id is None  # type: ignore[union-attr]
    assert json.loads(res.out)["environment"] == PROD


def test_webhook_serve_with_another_environments_token_exits_2_before_listening(
    recorded: Platform, staging: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = everything(recorded)
    child = {**os.environ, "MUX_BASE_URL": staging.base_url}
    proc = subprocess.run(
        [sys.executable, "-m", "vidpipe.cli", "webhook", "serve", "--port", str(free_port())],
        env=child,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert_names_both(proc.stderr)
    assert "listening" not in proc.stderr
    assert everything(recorded) == before
    assert staging.writing_calls() == 0


# -- pinning -------------------------------------------------------------------------------------


def test_the_first_command_that_talks_to_mux_pins_the_database_and_says_so_once(
    unpinned_env: Platform, emulator: Emulator, vp: Callable[..., Result]
) -> None:
    assert environment.read_pin(unpinned_env.engine) is None
    first = vp("verify", "--json")
    assert first.code == 0, first.err
    assert "this database now belongs to Mux environment Production (env-prod-1)" in first.err
    assert json.loads(first.out)["environment"] == PROD
    assert environment.read_pin(unpinned_env.engine) == Environment(**PROD)

    again = vp("verify")
    assert again.code == 0
    assert "now belongs" not in again.err
    assert again.out.splitlines()[0] == "verify: Mux environment Production (env-prod-1)"


def test_status_and_sync_name_the_environment_in_json_and_in_their_header(
    env: Platform, emulator: Emulator, vp: Callable[..., Result]
) -> None:
    for argv in (["status"], ["sync"], ["sync", "--dry-run"]):
        res = vp(*argv, "--json")
        assert res.code == 0, res.err
        assert json.loads(res.out)["environment"] == PROD
        plain = vp(*argv)
        assert "Mux environment Production (env-prod-1)" in plain.out.splitlines()[0]


def test_a_command_refused_for_bad_input_pins_nothing(
    unpinned_env: Platform,
    emulator: Emulator,
    tmp_path: Path,
    vp: Callable[..., Result],
) -> None:
    not_video = tmp_path / "notes.txt"
    not_video.write_text("hello")
    for argv in (
        ["upload", not_video, "--lesson", "1"],
        ["upload", tmp_path / "missing.mp4", "--lesson", "1"],
        ["verify", "--lesson", "42"],
        ["status", "--course", "42"],
        ["delete", "--lesson", "1", "--yes"],  # lesson 1 has no video
        ["delete", "--lesson", "42", "--yes"],
        ["webhook", "apply", not_video, "--no-verify"],  # not JSON
    ):
        res = vp(*argv)
        assert res.code == 2, (argv, res)
        assert environment.read_pin(unpinned_env.engine) is None, argv
    assert emulator.count(path_prefix="/") == 0


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "status", "status": 503, "times": 100},
        {"kind": "status", "status": 429, "times": 100},
        {"kind": "status", "status": 401, "times": 100},
        {"kind": "reset", "times": 100},
        {"kind": "delay", "delay": 1.5, "times": 100},
    ],
    ids=["503", "429", "401", "reset", "timeout"],
)
def test_a_failing_whoami_exits_1_and_pins_and_changes_nothing(
    unpinned_env: Platform,
    emulator: Emulator,
    mux_tuning: dict[str, Any],
    vp: Callable[..., Result],
    fault: dict[str, Any],
) -> None:
    mux_tuning["retry"] = fast_retry(attempts=3)
    mux_tuning["timeout"] = (1.0, 0.5)
    unpinned_env.set_lesson(1, "gone-asset", "pb")
    before = everything(unpinned_env)
    spec = dict(fault)  # the parameter is shared by the database variants
    emulator.inject("GET", "/system/v1/whoami", spec.pop("kind"), **spec)
    res = vp("sync", "--json")
    assert res.code == 1, res
    assert res.out == ""
    assert res.err.startswith("vidpipe: error:") and "environment" in res.err
    assert environment.read_pin(unpinned_env.engine) is None
    assert everything(unpinned_env) == before
    assert emulator.count(path_prefix="/video/") == 0


# -- db pin ---------------------------------------------------------------------------------------


def test_db_pin_records_follows_a_rename_and_moves_only_when_forced(
    unpinned_env: Platform,
    emulator: Emulator,
    staging: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    vp: Callable[..., Result],
) -> None:
    engine = unpinned_env.engine
    res = vp("db", "pin")
    assert res.code == 0, res.err
    assert "Production (env-prod-1)" in res.out
    assert environment.read_pin(engine) == Environment(**PROD)

    again = vp("db", "pin")
    assert again.code == 0 and "already" in again.out

    emulator.rename_environment("Production EU")
    # Same ID: commands pass and show the new name; only `db pin` writes it.
    checked = vp("verify", "--json")
    assert checked.code == 0, checked.err
    assert json.loads(checked.out)["environment"] == {"id": PROD["id"], "name": "Production EU"}
    assert environment.read_pin(engine) == Environment(**PROD)
    renamed = vp("db", "pin")
    assert renamed.code == 0 and "Production EU" in renamed.out
    assert environment.read_pin(engine) == Environment(PROD["id"], "Production EU")

    monkeypatch.setenv("MUX_BASE_URL", staging.base_url)
    refused = vp("db", "pin")
    assert refused.code == 2 and refused.out == ""
    assert STAGING["id"] in refused.err and PROD["id"] in refused.err
    assert "--force" in refused.err
    assert environment.read_pin(engine) == Environment(PROD["id"], "Production EU")

    moved = vp("db", "pin", "--force")
    assert moved.code == 0, moved.err
    assert "Production EU (env-prod-1)" in moved.out and "Staging (env-staging-2)" in moved.out
    assert environment.read_pin(engine) == Environment(**STAGING)
    # and now Staging's token is the right one
    assert vp("status").code == 0
    assert staging.writing_calls() == 0 and emulator.writing_calls() == 0


# -- webhooks of another environment -------------------------------------------------------------


def test_webhook_apply_ignores_events_of_another_environment(
    env: Platform,
    emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    vp: Callable[..., Result],
) -> None:
    monkeypatch.delenv("MUX_TOKEN_ID")  # no token: the event is judged by its envelope alone
    monkeypatch.delenv("MUX_TOKEN_SECRET")
    data = emulator.seed_asset(Target(Kind.LESSON, 3).passthrough)
    before = everything(env)

    res = vp("webhook", "apply", event_file(tmp_path, STAGING, data), "--no-verify", "--json")
    assert res.code == 0, res.err
    out = json.loads(res.out)
    assert out["outcome"] == "ignored" and STAGING["id"] in out["detail"]
    assert everything(env) == before

    res = vp("webhook", "apply", event_file(tmp_path, PROD, data), "--no-verify", "--json")
    assert res.code == 0 and json.loads(res.out)["outcome"] == "recorded", res.out
    assert env.lesson(3).mux_asset_id == data["id"]  # type: ignore[union-attr]


def test_webhook_events_without_an_environment_are_accepted(
    env: Platform,
    emulator: Emulator,
    tmp_path: Path,
    vp: Callable[..., Result],
) -> None:
    data = emulator.seed_asset(Target(Kind.LESSON, 3).passthrough)
    res = vp("webhook", "apply", event_file(tmp_path, None, data), "--no-verify", "--json")
    assert res.code == 0 and json.loads(res.out)["outcome"] == "recorded", res.out + res.err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(env: Platform) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`vidpipe webhook serve` as a real process with the right token, on a free port."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidpipe.cli", "webhook", "serve", "--port", str(port)],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url + "/", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("webhook serve did not start: " + (proc.stderr.read() or ""))
        time.sleep(0.1)
    yield url, proc
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=20)


def test_webhook_serve_answers_2xx_to_another_environment_and_changes_nothing(
    env: Platform,
    emulator: Emulator,
    served: tuple[str, subprocess.Popen[str]],
) -> None:
    url, proc = served
    data = emulator.seed_asset(Target(Kind.LESSON, 3).passthrough)
    before = everything(env)

    def post(env_: dict[str, str]) -> httpx.Response:
        body = json.dumps(envelope("video.asset.ready", "asset", data["id"], data, env_)).encode()
        headers = {"Mux-Signature": sign(WEBHOOK_SECRET, body)}
        return httpx.post(url + "/webhooks/mux", content=body, headers=headers, timeout=10)

    other = post(STAGING)
    assert other.status_code == 200, other.text
    assert other.json()["outcome"] == "ignored" and STAGING["id"] in other.json()["detail"]
    assert everything(env) == before

    own = post(PROD)
    assert own.status_code == 200 and own.json()["outcome"] == "recorded", own.text
    assert env.lesson(3).mux_asset_id == data["id"]  # type: ignore[union-attr]

    proc.terminate()
    _out, err = proc.communicate(timeout=20)
    assert "accepting events of Mux environment Production (env-prod-1) only" in err
    assert "outcome=ignored" in err and STAGING["id"] in err


# -- sync's mass-change guard ----------------------------------------------------------------------


def test_a_sync_over_the_clear_limit_changes_nothing_and_exits_1(
    env: Platform, emulator: Emulator, vp: Callable[..., Result]
) -> None:
    for lesson in (1, 2, 3):
        env.set_lesson(lesson, f"gone-{lesson}", f"pb-{lesson}")
    entry = journal.create(
        env.engine,
        L1,
        file_path="/x.mp4",
        file_size=1,
        file_mtime_ns=1,
        chunk_size=262144,
        state=State.UPLOADING,
        upload_id="upload-mux-never-heard-of",
    )
    before = everything(env)

    for argv in (["sync", "--max-clears", "2"], ["sync", "--max-clears", "2", "--dry-run"]):
        res = vp(*argv, "--json")
        assert res.code == 1, res
        doc = json.loads(res.out)
        assert doc["ok"] is False
        assert doc["blocked"]["clears"] == 3 and doc["blocked"]["max_clears"] == 2
        assert {d["action"] for d in doc["drift"]} == {"not applied: would clear row"}
        assert [j["action"] for j in doc["journal"]] == ["not applied: would close"]
        assert "--max-clears 3" in res.err
        assert everything(env) == before
    assert emulator.writing_calls() == 0

    human = vp("sync", "--max-clears", "2")
    assert human.code == 1
    assert 'action="not applied: would clear row"' in human.out
    assert "nothing was changed" in human.err and "--max-clears 3" in human.err
    assert everything(env) == before

    allowed = vp("sync", "--max-clears", "3", "--json")
    assert allowed.code == 0, allowed.err
    assert {d["action"] for d in json.loads(allowed.out)["drift"]} == {"cleared row"}
    assert [env.lesson(i).mux_asset_id for i in (1, 2, 3)] == [None, None, None]  # type: ignore[union-attr]
    with env.engine.connect() as conn:
        state = conn.execute(
            sa.text("SELECT state FROM vidpipe_upload WHERE id = :i"), {"i": entry.id}
        ).scalar()
    assert state != State.UPLOADING.value


def test_the_default_clear_limit_is_ten(
    env: Platform, emulator: Emulator, vp: Callable[..., Result]
) -> None:
    env.add_lessons(range(4, 12))
    for lesson in range(1, 12):
        env.set_lesson(lesson, f"gone-{lesson}", "pb")
    before = env.dump()
    res = vp("sync", "--json")
    assert res.code == 1 and json.loads(res.out)["blocked"]["max_clears"] == 10
    assert env.dump() == before
    env.set_lesson(11, None, None)
    assert vp("sync").code == 0
    assert all(env.lesson(i).mux_asset_id is None for i in range(1, 12))  # type: ignore[union-attr]
