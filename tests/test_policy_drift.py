"""Playback-policy drift: the pure rule (hand-built snapshots), then `verify` and `sync`
through the real CLI against the emulator, on SQLite and PostgreSQL: found, reported, and
repaired only with `--fix-policy` (never in a dry run)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from conftest import Platform, Result
from sqlmodel import Session

from vidpipe import Vidpipe
from vidpipe.assets import Policies
from vidpipe.db import World
from vidpipe.emulator import Emulator
from vidpipe.mux import Asset, PlaybackId
from vidpipe.reconcile.plan import Action, DriftKind, SyncOptions, plan
from vidpipe.reconcile.snapshot import Snapshot
from vidpipe.records import RowVideo
from vidpipe.targets import Kind, Target

CLI = Callable[..., Result]
L1, L2, C1 = Target(Kind.LESSON, 1), Target(Kind.LESSON, 2), Target(Kind.COURSE, 1)
SIGNED_LESSONS = Policies(lesson="signed", course="public")


# -- the rule --------------------------------------------------------------------------------


def mux_asset(asset_id: str, *pids: tuple[str, str], passthrough: str | None = None) -> Asset:
    """A ready asset made for lesson 1 (titled `t`), with these (ID, policy) playback IDs."""
    return Asset(
        id=asset_id,
        status="ready",
        playback_ids=tuple(PlaybackId(pid, policy) for pid, policy in pids),
        passthrough=passthrough if passthrough is not None else L1.passthrough,
        meta={"title": "t", "external_id": L1.external_id},
    )


def snapshot(rows: list[RowVideo], *assets: Asset) -> Snapshot:
    existing = {Kind.LESSON: frozenset({1, 2}), Kind.COURSE: frozenset({1})}
    return Snapshot(rows=rows, assets={a.id: a for a in assets}, existing=existing)


def policy_items(snap: Snapshot, *, fix: bool = False) -> list[Any]:
    options = SyncOptions(policies=SIGNED_LESSONS, fix_policy=fix)
    return [d for d in plan(snap, options).drift if d.kind is DriftKind.POLICY]


def test_a_public_id_on_a_signed_policy_row_is_policy_drift_reported_unless_fixing() -> None:
    snap = snapshot([RowVideo(L1, "t", "A", "pub")], mux_asset("A", ("pub", "public")))

    (reported,) = policy_items(snap)
    (fixing,) = policy_items(snap, fix=True)

    assert reported.action is Action.REPORT and reported.target == L1
    assert "row has public playback ID pub; lessons are signed" in reported.detail
    assert fixing.action is Action.FIX_POLICY
    assert fixing.create_playback_id and fixing.playback_id is None
    assert fixing.delete_playback_ids == ("pub",)
    assert fixing.expect_playback_id == "pub" and fixing.policy == "signed"


def test_a_signed_row_whose_asset_also_carries_a_public_id_is_a_leak() -> None:
    asset = mux_asset("A", ("sig", "signed"), ("pub", "public"))
    snap = snapshot([RowVideo(L1, "t", "A", "sig")], asset)

    (item,) = policy_items(snap, fix=True)

    assert item.detail == "asset A also carries public playback ID pub"
    assert item.playback_id == "sig" and not item.create_playback_id
    assert item.delete_playback_ids == ("pub",)


def test_rows_that_agree_with_their_policy_are_no_drift() -> None:
    lesson_asset = mux_asset("A", ("sig", "signed"))
    course_asset = mux_asset("B", ("pub", "public"), ("sig2", "signed"), passthrough="")
    rows = [RowVideo(L1, "t", "A", "sig"), RowVideo(C1, "t", "B", "pub")]

    assert policy_items(snapshot(rows, lesson_asset, course_asset), fix=True) == []


def test_a_public_id_another_row_names_is_kept_and_nothing_is_left_to_fix() -> None:
    # A lesson and a course preview share one asset: the preview needs its public ID.
    shared = mux_asset("A", ("sig", "signed"), ("pub", "public"))
    rows = [RowVideo(L1, "t", "A", "sig"), RowVideo(C1, "t", "A", "pub")]

    (item,) = policy_items(snapshot(rows, shared), fix=True)

    assert item.target == L1 and item.action is Action.REPORT
    assert "kept" in item.detail and item.delete_playback_ids == ()


def test_two_rows_fixed_together_free_the_public_id_they_both_held() -> None:
    shared = mux_asset("A", ("sig", "signed"), ("pub", "public"))
    rows = [RowVideo(L1, "t", "A", "pub"), RowVideo(L2, "t", "A", "pub")]

    items = policy_items(snapshot(rows, shared), fix=True)

    assert [(i.target, i.playback_id, i.delete_playback_ids) for i in items] == [
        (L1, "sig", ("pub",)),
        (L2, "sig", ("pub",)),
    ]


def test_an_asset_whose_passthrough_is_not_vidpipes_is_reported_never_fixed() -> None:
    foreign = mux_asset("A", ("pub", "public"), passthrough='{"user": 5}')

    (item,) = policy_items(snapshot([RowVideo(L1, "t", "A", "pub")], foreign), fix=True)

    assert item.action is Action.REPORT and "not vidpipe's" in item.detail


def test_a_playback_mismatch_writes_the_id_of_the_rows_policy() -> None:
    asset = mux_asset("A", ("pub", "public"), ("sig", "signed"))
    options = SyncOptions(policies=SIGNED_LESSONS)

    drift = plan(snapshot([RowVideo(L1, "t", "A", "gone")], asset), options).drift

    assert [(d.kind, d.playback_id) for d in drift] == [(DriftKind.MISMATCH, "sig")]


def test_an_unrecorded_asset_is_recorded_with_the_id_of_its_rows_policy() -> None:
    asset = mux_asset("A", ("pub", "public"), ("sig", "signed"))
    options = SyncOptions(policies=SIGNED_LESSONS)

    drift = plan(snapshot([], asset), options).drift

    assert [(d.kind, d.target, d.playback_id) for d in drift] == [(DriftKind.UNRECORDED, L1, "sig")]


# -- verify and sync, end to end ----------------------------------------------------------------


def run_json(cli: CLI, *args: str) -> tuple[int, dict[str, Any]]:
    result = cli(*args, "--json")
    return result.code, json.loads(result.out) if result.out else {}


def policies_of(emulator: Emulator, asset_id: str) -> dict[str, str]:
    return {p["id"]: p["policy"] for p in emulator.assets[asset_id]["playback_ids"]}


@pytest.fixture
def signed_lessons(env: Platform, monkeypatch: pytest.MonkeyPatch) -> Platform:
    monkeypatch.setenv("VIDPIPE_PLAYBACK_POLICY", "signed")
    return env


def test_a_public_lesson_under_a_signed_policy_is_found_reported_and_fixed_only_when_asked(
    signed_lessons: Platform, emulator: Emulator, cli: CLI
) -> None:
    env = signed_lessons
    seeded = emulator.seed_asset(L1.passthrough, playback_policies=["public"])
    aid, public_id = seeded["id"], seeded["playback_ids"][0]["id"]
    env.set_lesson(1, aid, public_id)

    code, verified = run_json(cli, "verify")
    assert code == 1
    assert [(d["kind"], d["target"], d["asset_id"]) for d in verified["drift"]] == [
        ("policy_mismatch", {"kind": "lesson", "id": 1}, aid)
    ]

    code, synced = run_json(cli, "sync")
    assert code == 0 and synced["ok"] is True
    assert [d["action"] for d in synced["drift"]] == ["reported"]

    code, dry = run_json(cli, "sync", "--fix-policy", "--dry-run")
    assert code == 0
    assert dry["drift"][0]["action"] == (
        f"would fix policy: create a signed playback ID and record it; delete playback ID "
        f"{public_id}"
    )
    assert emulator.writing_calls() == 0
    assert policies_of(emulator, aid) == {public_id: "public"}
    row = env.lesson(1)
    assert row is not None and row.mux_playback_id == public_id

    code, fixed = run_json(cli, "sync", "--fix-policy")
    assert code == 0 and fixed["ok"] is True
    (signed_id,) = policies_of(emulator, aid)
    assert policies_of(emulator, aid) == {signed_id: "signed"}
    row = env.lesson(1)
    assert row is not None and (row.mux_asset_id, row.mux_playback_id) == (aid, signed_id)
    assert fixed["drift"][0]["action"] == (
        f"fixed policy: created signed playback ID {signed_id}; recorded {signed_id}; "
        f"deleted {public_id}"
    )

    code, again = run_json(cli, "verify")
    assert code == 0 and again["drift"] == []


def test_a_leaked_public_id_is_deleted_and_the_signed_row_left_as_it_is(
    signed_lessons: Platform, emulator: Emulator, cli: CLI
) -> None:
    env = signed_lessons
    seeded = emulator.seed_asset(L1.passthrough, playback_policies=["signed", "public"])
    aid = seeded["id"]
    signed_id, public_id = (p["id"] for p in seeded["playback_ids"])
    env.set_lesson(1, aid, signed_id)

    code, verified = run_json(cli, "verify", "--lesson", "1")
    assert code == 1
    assert (
        verified["drift"][0]["detail"] == f"asset {aid} also carries public playback ID {public_id}"
    )

    code, fixed = run_json(cli, "sync", "--fix-policy")

    assert code == 0
    assert fixed["drift"][0]["action"] == f"fixed policy: deleted {public_id}"
    assert policies_of(emulator, aid) == {signed_id: "signed"}
    row = env.lesson(1)
    assert row is not None and row.mux_playback_id == signed_id
    assert emulator.count("POST") == 0  # nothing created: the asset had its signed ID


def test_a_public_id_a_course_preview_uses_is_kept_and_the_drift_stays_reported(
    signed_lessons: Platform, emulator: Emulator, cli: CLI
) -> None:
    env = signed_lessons
    seeded = emulator.seed_asset(L1.passthrough, playback_policies=["signed", "public"])
    aid = seeded["id"]
    signed_id, public_id = (p["id"] for p in seeded["playback_ids"])
    env.set_lesson(1, aid, signed_id)
    with Session(env.engine) as s:
        world = s.get(World, 1)
        assert world is not None
        world.mux_preview_asset_id, world.mux_preview_playback_id = aid, public_id
        s.add(world)
        s.commit()

    code, fixed = run_json(cli, "sync", "--fix-policy")

    assert code == 0
    (item,) = [d for d in fixed["drift"] if d["kind"] == "policy_mismatch"]
    assert item["action"] == "reported" and "kept" in item["detail"]
    assert emulator.writing_calls() == 0
    assert policies_of(emulator, aid) == {signed_id: "signed", public_id: "public"}


def test_a_signed_row_under_a_public_policy_gets_a_public_id_and_loses_the_signed_one(
    env: Platform, emulator: Emulator, cli: CLI
) -> None:
    seeded = emulator.seed_asset(L2.passthrough, playback_policies=["signed"])
    aid, signed_id = seeded["id"], seeded["playback_ids"][0]["id"]
    env.set_lesson(2, aid, signed_id)

    code, fixed = run_json(cli, "sync", "--fix-policy")

    assert code == 0 and fixed["drift"][0]["kind"] == "policy_mismatch"
    (public_id,) = policies_of(emulator, aid)
    assert policies_of(emulator, aid) == {public_id: "public"}
    row = env.lesson(2)
    assert row is not None and row.mux_playback_id == public_id
    assert run_json(cli, "verify")[0] == 0


def test_a_failed_playback_id_creation_fails_the_sync_and_changes_no_row(
    signed_lessons: Platform, emulator: Emulator, cli: CLI, mux_tuning: dict[str, Any]
) -> None:
    from conftest import fast_retry

    mux_tuning["retry"] = fast_retry(attempts=2)
    env = signed_lessons
    seeded = emulator.seed_asset(L1.passthrough, playback_policies=["public"])
    aid, public_id = seeded["id"], seeded["playback_ids"][0]["id"]
    env.set_lesson(1, aid, public_id)
    emulator.inject("POST", f"/video/v1/assets/{aid}/playback-ids", "status", status=500, times=5)

    code, fixed = run_json(cli, "sync", "--fix-policy")

    assert code == 1 and fixed["ok"] is False
    assert fixed["drift"][0]["action"].startswith("failed: creating a playback ID")
    assert fixed["failed"] == [
        f"fixing the playback policy of lesson 1 ({aid}): {fixed['drift'][0]['action'][8:]}"
    ]
    assert policies_of(emulator, aid) == {public_id: "public"}
    row = env.lesson(1)
    assert row is not None and row.mux_playback_id == public_id


def test_a_row_changed_after_planning_is_left_alone_and_its_old_ids_kept(
    signed_lessons: Platform, emulator: Emulator
) -> None:
    env = signed_lessons
    seeded = emulator.seed_asset(L1.passthrough, playback_policies=["public"])
    aid, public_id = seeded["id"], seeded["playback_ids"][0]["id"]
    env.set_lesson(1, aid, public_id)
    newer = emulator.seed_asset(L1.passthrough, playback_policies=["signed"])

    def upload_lands() -> None:  # a concurrent upload records its asset on the row
        env.set_lesson(1, newer["id"], newer["playback_ids"][0]["id"])

    with Vidpipe.from_env() as vp:
        report = vp.sync(fix_policy=True, before_apply=upload_lands)

    (item,) = [d for d in report.drift if d.kind is DriftKind.POLICY]
    assert item.action is not None
    assert item.action.startswith("skipped: the row changed since the snapshot")
    row = env.lesson(1)
    assert row is not None and row.mux_asset_id == newer["id"]
    assert public_id in policies_of(emulator, aid)  # not deleted: the fix stopped


def test_a_public_id_a_row_starts_naming_after_planning_is_kept(
    signed_lessons: Platform, emulator: Emulator
) -> None:
    env = signed_lessons
    seeded = emulator.seed_asset(L1.passthrough, playback_policies=["signed", "public"])
    aid = seeded["id"]
    signed_id, public_id = (p["id"] for p in seeded["playback_ids"])
    env.set_lesson(1, aid, signed_id)

    def another_row_takes_it() -> None:
        env.set_lesson(2, aid, public_id)

    with Vidpipe.from_env() as vp:
        report = vp.sync(fix_policy=True, before_apply=another_row_takes_it)

    (item,) = [d for d in report.drift if d.kind is DriftKind.POLICY]
    assert item.action == f"fixed policy: kept {public_id} (lesson 2 names it)"
    assert policies_of(emulator, aid) == {signed_id: "signed", public_id: "public"}
