"""One sync at a time, and concurrent writers, on SQLite and on a real PostgreSQL server.

The lock is contended from a real second process (`python -m vidpipe.cli ...`): a refused run
exits 1 within seconds, says another run holds the lock, and makes no request to Mux and no
change to the database. A SIGKILLed holder leaves no lock behind.

The race "an upload records a row while a sync runs" is built deterministically from the
reconciler's own steps (snapshot -> plan -> concurrent write -> apply), and once more with a
real `vidpipe sync` process held mid-run by a slow Mux answer.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
from conftest import TOKEN_ID, TOKEN_SECRET, Platform, Result
from emulator_helpers import wait_for

from vidpipe.db import transaction
from vidpipe.emulator import Emulator
from vidpipe.errors import LockHeld
from vidpipe.locks import run_lock
from vidpipe.mux import MuxGateway
from vidpipe.reconcile import DriftKind
from vidpipe.reconcile.apply import apply
from vidpipe.reconcile.plan import Plan, PlannedDrift, plan
from vidpipe.reconcile.snapshot import take_snapshot
from vidpipe.records import clear_video, read_row, set_video
from vidpipe.targets import Kind, Target

PROMPT = 3.0  # seconds a refused command may take (it never waits for the lock)
STARTUP_LIMIT = 20.0  # seconds a busy machine may need to start Python and import vidpipe
RELEASE_LIMIT = 5.0  # seconds a SIGKILLed holder's lock may outlive it
LESSON1 = Target(Kind.LESSON, 1)
LESSON2 = Target(Kind.LESSON, 2)

# Holds the sync lock on DATABASE_URL, says so, then sleeps until killed.
HOLDER = """
import os, time
from vidpipe.db import make_engine
from vidpipe.locks import run_lock
with run_lock(make_engine(os.environ["DATABASE_URL"]), "sync"):
    print("LOCKED", flush=True)
    time.sleep(300)
"""


def vidpipe_process(*args: str) -> subprocess.Popen[str]:
    """`vidpipe ARGS` as a separate process, with this test's environment and directory."""
    return subprocess.Popen(
        [sys.executable, "-m", "vidpipe.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
        cwd=os.getcwd(),
    )


# The real entry point (`vidpipe.cli.run`) in a separate process, timed from inside: the
# modules a command imports lazily are loaded first, so the time reported is what the command
# itself took (interpreter start-up on a loaded CI machine says nothing about the lock).
TIMED_RUN = """
import sys, time
import vidpipe.cli, vidpipe.config, vidpipe.mux, vidpipe.reconcile, vidpipe.render, vidpipe.ui
start = time.monotonic()
code = vidpipe.cli.run(sys.argv[1:])
print(f"{time.monotonic() - start:.6f}", file=sys.stderr)
sys.exit(code)
"""


def run_vidpipe_many(*commands: tuple[str, ...]) -> list[tuple[int, str, str, float]]:
    """Run `vidpipe ARGS` for each command, all at once, each in its own process: per command
    (exit code, stdout, stderr, seconds the command itself took). Fails if a process takes
    more than STARTUP_LIMIT + PROMPT seconds in all."""
    start = time.monotonic()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", TIMED_RUN, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
            cwd=os.getcwd(),
        )
        for args in commands
    ]
    results = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=STARTUP_LIMIT + PROMPT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
        *lines, took = err.rstrip("\n").split("\n")
        results.append((proc.returncode, out, "".join(line + "\n" for line in lines), float(took)))
    wall = time.monotonic() - start
    assert wall < STARTUP_LIMIT + PROMPT, f"the runs took {wall:.2f}s in all"
    return results


def run_vidpipe(*args: str) -> tuple[int, str, str, float]:
    (result,) = run_vidpipe_many(args)
    return result


def assert_refused(code: int, out: str, err: str, seconds: float) -> None:
    assert code == 1, (code, out, err)
    assert seconds < PROMPT, f"a refused run took {seconds:.2f}s"
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "another vidpipe sync holds the lock" in lines[0]
    assert TOKEN_SECRET not in out + err


def gone_asset(emulator: Emulator, passthrough: str = '{"lesson_id": 1}') -> str:
    """The ID of an asset Mux answers 404 for."""
    asset = emulator.seed_asset(passthrough=passthrough)
    emulator.delete_asset_silently(asset["id"])
    return str(asset["id"])


def playback(asset: dict[str, object]) -> str:
    ids = asset["playback_ids"]
    assert isinstance(ids, list)
    return str(ids[0]["id"])


def start_holder() -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
        cwd=os.getcwd(),
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "LOCKED":
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"holder did not take the lock: {line!r} {err}")
    return proc


# -- one sync at a time -----------------------------------------------------------------------


def test_second_sync_exits_1_promptly_and_changes_nothing(
    env: Platform, emulator: Emulator, cli: Callable[..., Result]
) -> None:
    env.set_lesson(1, gone_asset(emulator), "pb-1")  # drift a sync would repair
    before = env.dump()
    with run_lock(env.engine, "sync"):
        code, out, err, seconds = run_vidpipe("sync", "--json")
        assert_refused(code, out, err, seconds)
        assert out == ""
        code, out, err, seconds = run_vidpipe("sync")
        assert_refused(code, out, err, seconds)
        # --dry-run changes nothing, so it does not need (or wait for) the lock
        code, out, err, _ = run_vidpipe("sync", "--dry-run", "--json")
        assert code == 0, err
        assert json.loads(out)["drift"][0]["action"] == "would clear row"
    assert env.dump() == before
    assert emulator.count(method="DELETE") == 0
    # the lock is free again: the next sync runs and repairs
    res = cli("sync", "--json")
    assert res.code == 0, res.err
    assert env.lesson(1).mux_asset_id is None  # type: ignore[union-attr]


def test_delete_refused_while_a_sync_holds_the_lock(
    env: Platform, emulator: Emulator, cli: Callable[..., Result]
) -> None:
    asset = emulator.seed_asset(passthrough='{"lesson_id": 1}')
    env.set_lesson(1, asset["id"], playback(asset))
    before = env.dump()
    with run_lock(env.engine, "sync"):
        code, out, err, seconds = run_vidpipe("delete", "--lesson", "1", "--yes", "--json")
        assert_refused(code, out, err, seconds)
    assert env.dump() == before
    assert asset["id"] in emulator.assets
    assert emulator.count(method="DELETE") == 0
    res = cli("delete", "--lesson", "1", "--yes")
    assert res.code == 0, res.err
    assert asset["id"] not in emulator.assets
    assert env.lesson(1).mux_asset_id is None  # type: ignore[union-attr]


def test_delete_and_sync_race_between_real_processes(env: Platform, emulator: Emulator) -> None:
    """A real `vidpipe sync`, held mid-run by a Mux listing held back, against a real
    `delete` and a second `sync`."""
    asset = emulator.seed_asset(passthrough='{"lesson_id": 1}')
    env.set_lesson(1, asset["id"], playback(asset))
    emulator.inject("GET", "/video/v1/assets", "hold")
    sync = vidpipe_process("sync", "--json")
    try:
        # The listing is the sync's first Mux call, made with the lock already held; it is
        # held back until both racers were refused, however slowly they start.
        wait_for(lambda: emulator.pending_faults == 0, timeout=STARTUP_LIMIT)
        refused = run_vidpipe_many(("delete", "--lesson", "1", "--yes"), ("sync",))
        assert sync.poll() is None, "the sync was still held while the others ran"
        emulator.release_held()
        for code, out, err, seconds in refused:
            assert_refused(code, out, err, seconds)
        sync_out, sync_err = sync.communicate(timeout=30)
    finally:
        emulator.release_held()
        if sync.poll() is None:
            sync.kill()
            sync.wait()
    assert sync.returncode == 0, sync_err
    assert json.loads(sync_out)["ok"] is True
    assert asset["id"] in emulator.assets
    assert emulator.count(method="DELETE") == 0
    assert env.lesson(1).mux_asset_id == asset["id"]  # type: ignore[union-attr]


def test_killed_holder_leaves_no_lock(
    env: Platform, emulator: Emulator, cli: Callable[..., Result]
) -> None:
    env.set_lesson(1, gone_asset(emulator), "pb-1")
    holder = start_holder()
    try:
        code, out, err, seconds = run_vidpipe("sync")
        assert_refused(code, out, err, seconds)
        killed_at = time.monotonic()
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        # The OS (flock) or the PostgreSQL server (the session ends) drops the lock.
        while True:
            try:
                with run_lock(env.engine, "sync"):
                    break
            except LockHeld:
                if time.monotonic() - killed_at > RELEASE_LIMIT:
                    raise
                time.sleep(0.01)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        for stream in (holder.stdout, holder.stderr):
            if stream is not None:
                stream.close()
    res = cli("sync", "--json")
    assert res.code == 0, res.err
    assert env.lesson(1).mux_asset_id is None  # type: ignore[union-attr]


# -- concurrent writers: a sync never undoes an upload ---------------------------------------


def record_as_upload(env: Platform, target: Target, asset: dict[str, object]) -> None:
    """What `vidpipe upload` does when its asset is ready: CAS on what it saw, one transaction."""
    with transaction(env.engine) as conn:
        row = read_row(conn, target, for_update=True)
        assert row is not None
        assert set_video(
            conn, target, str(asset["id"]), playback(asset), expect_asset_id=row.asset_id
        )


@pytest.fixture
def gateway(emulator: Emulator) -> Iterator[MuxGateway]:
    with MuxGateway(emulator.base_url, TOKEN_ID, TOKEN_SECRET, pace=False) as gw:
        yield gw


def plan_now(env: Platform, gateway: MuxGateway) -> Plan:
    """A sync's first two steps: the snapshot, then the plan."""
    return plan(take_snapshot(env.engine, gateway))


def apply_only(env: Platform, gateway: MuxGateway, planned: Plan, item: PlannedDrift) -> str:
    """A sync's last step, for one item of its plan: the action it reports."""
    (result,) = apply(
        env.engine, gateway, replace(planned, drift=(item,), journal=()), dry_run=False
    )
    assert result.action is not None
    return result.action


def only(planned: Plan, kind: DriftKind, target: Target) -> PlannedDrift:
    (item,) = [d for d in planned.drift if d.kind == kind and d.target == target]
    return item


@pytest.mark.parametrize("kind", [DriftKind.MISSING, DriftKind.ERRORED, DriftKind.MISMATCH])
@pytest.mark.parametrize("concurrent_upload", [True, False], ids=["upload", "no-upload"])
def test_sync_plan_on_a_row_does_not_undo_a_concurrent_upload(
    env: Platform, emulator: Emulator, gateway: MuxGateway, kind: DriftKind, concurrent_upload: bool
) -> None:
    if kind == DriftKind.MISSING:
        old_id, old_pb = gone_asset(emulator), "pb-old"
    elif kind == DriftKind.ERRORED:
        old = emulator.seed_asset(passthrough='{"lesson_id": 1}', status="errored")
        old_id, old_pb = str(old["id"]), "pb-old"
    else:
        old = emulator.seed_asset(passthrough='{"lesson_id": 1}')
        old_id, old_pb = str(old["id"]), "not-its-playback-id"
    env.set_lesson(1, old_id, old_pb)

    planned = plan_now(env, gateway)
    item = only(planned, kind, LESSON1)
    new = emulator.seed_asset(passthrough='{"lesson_id": 1}')
    if concurrent_upload:
        record_as_upload(env, LESSON1, new)  # lands between the snapshot and the apply

    action = apply_only(env, gateway, planned, item)
    row = env.lesson(1)
    assert row is not None
    if concurrent_upload:
        assert action == "skipped: the row changed since the snapshot"
        assert (row.mux_asset_id, row.mux_playback_id) == (new["id"], playback(new))
    elif kind == DriftKind.MISMATCH:
        assert action.startswith("wrote playback ID")
        assert (row.mux_asset_id, row.mux_playback_id) == (old_id, playback(old))
    else:
        assert action == "cleared row"
        assert (row.mux_asset_id, row.mux_playback_id) == (None, None)


def test_playback_fix_skips_a_row_whose_playback_changed(
    env: Platform, emulator: Emulator, gateway: MuxGateway
) -> None:
    """A webhook fixing the playback ID after the plan: the plan's CAS on playback fails."""
    asset = emulator.seed_asset(passthrough='{"lesson_id": 1}')
    env.set_lesson(1, asset["id"], "stale-playback")
    planned = plan_now(env, gateway)
    item = only(planned, DriftKind.MISMATCH, LESSON1)
    with transaction(env.engine) as conn:
        assert set_video(
            conn, LESSON1, str(asset["id"]), "webhook-wrote-this", expect_asset_id=str(asset["id"])
        )
    action = apply_only(env, gateway, planned, item)
    assert action == "skipped: the row changed since the snapshot"
    assert env.lesson(1).mux_playback_id == "webhook-wrote-this"  # type: ignore[union-attr]


@pytest.mark.parametrize("concurrent_upload", [True, False], ids=["upload", "no-upload"])
def test_unrecorded_asset_plan_does_not_overwrite_a_concurrent_upload(
    env: Platform, emulator: Emulator, gateway: MuxGateway, concurrent_upload: bool
) -> None:
    unrecorded = emulator.seed_asset(passthrough='{"lesson_id": 2}')
    planned = plan_now(env, gateway)
    item = only(planned, DriftKind.UNRECORDED, LESSON2)
    assert item.asset_id == unrecorded["id"] and item.expect_asset_id is None
    uploaded = emulator.seed_asset(passthrough='{"lesson_id": 2}')
    if concurrent_upload:
        record_as_upload(env, LESSON2, uploaded)
    action = apply_only(env, gateway, planned, item)
    row = env.lesson(2)
    assert row is not None
    if concurrent_upload:
        assert action == "skipped: the row changed since the snapshot"
        assert (row.mux_asset_id, row.mux_playback_id) == (uploaded["id"], playback(uploaded))
    else:
        assert action == "recorded asset"
        assert row.mux_asset_id == unrecorded["id"]


def test_upload_recorded_while_a_real_sync_process_runs_survives(
    env: Platform, emulator: Emulator
) -> None:
    """A `vidpipe sync` process snapshots lesson 1 (asset gone on Mux), then waits on a slow
    Mux answer; meanwhile an upload records a new asset on lesson 1. The sync must skip."""
    gone = gone_asset(emulator)
    env.set_lesson(1, gone, "pb-gone")
    new = emulator.seed_asset(passthrough='{"lesson_id": 1}')
    emulator.inject("GET", f"/video/v1/assets/{gone}", "delay", delay=2.0)
    sync = vidpipe_process("sync", "--json")
    try:
        # The listing is answered after the database snapshot; the GET of the gone asset,
        # which decides "missing", is held for 2 s: write inside that window.
        wait_for(lambda: ("GET", "/video/v1/assets", 200) in emulator.request_log, timeout=20)
        record_as_upload(env, LESSON1, new)
        decided = ("GET", f"/video/v1/assets/{gone}", 404)
        assert decided not in emulator.request_log, "wrote too late to race the sync: invalid"
        out, err = sync.communicate(timeout=30)
    finally:
        if sync.poll() is None:
            sync.kill()
            sync.wait()
    assert sync.returncode == 0, err
    doc = json.loads(out)
    missing = [d for d in doc["drift"] if d["kind"] == DriftKind.MISSING]
    assert [(d["asset_id"], d["action"]) for d in missing] == [
        (gone, "skipped: the row changed since the snapshot")
    ]
    row = env.lesson(1)
    assert row is not None
    assert (row.mux_asset_id, row.mux_playback_id) == (new["id"], playback(new))


def test_compare_and_set_has_one_winner_under_contention(env: Platform) -> None:
    """Many writers (threads, own connections) race for one empty row: exactly one wins,
    nobody fails with "database is locked"; then many race to clear it: again one wins."""
    n = 8
    barrier = threading.Barrier(n)
    results: dict[int, bool] = {}
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            with transaction(env.engine) as conn:
                results[i] = set_video(
                    conn, Target(Kind.LESSON, 3), f"a-{i}", f"p-{i}", expect_asset_id=None
                )
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    winners = [i for i, won in results.items() if won]
    assert len(results) == n and len(winners) == 1
    row = env.lesson(3)
    assert row is not None
    assert (row.mux_asset_id, row.mux_playback_id) == (f"a-{winners[0]}", f"p-{winners[0]}")

    cleared: list[bool] = []

    def clearer() -> None:
        try:
            barrier.wait(timeout=10)
            with transaction(env.engine) as conn:
                cleared.append(
                    clear_video(conn, Target(Kind.LESSON, 3), expect_asset_id=f"a-{winners[0]}")
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=clearer) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert sorted(cleared) == [False] * (n - 1) + [True]
    assert env.lesson(3).mux_asset_id is None  # type: ignore[union-attr]
