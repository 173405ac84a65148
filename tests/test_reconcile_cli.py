"""End to end: `vidpipe verify`, `sync`, `delete` and `status` through the real CLI entry point,
against the emulator over real sockets, on SQLite and PostgreSQL; plus a few direct engine
tests where the CLI cannot reach precisely enough.

The `catalogue` fixture seeds every drift kind at once next to assets vidpipe must leave alone
(foreign passthroughs, shared assets, assets still preparing, young orphans).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import TOKEN_SECRET, Platform, Result, fast_retry
from sqlalchemy import update
from sqlmodel import Session, col, select

from vidpipe import delete as delete_mod
from vidpipe import journal, reconcile
from vidpipe import status as status_mod
from vidpipe.db import TOMBSTONE_TTL, Lesson, UploadJournal, WebhookTombstone, World, transaction
from vidpipe.emulator import Emulator
from vidpipe.emulator.webhooks import envelope
from vidpipe.errors import TargetNotFound
from vidpipe.journal import State
from vidpipe.locks import run_lock
from vidpipe.mux import MuxGateway
from vidpipe.reconcile import SyncOptions
from vidpipe.targets import Kind, Target

QUANTUM = 256 * 1024
DAY = 86400
OLD = int(time.time()) - 3 * DAY
YOUNG = int(time.time()) - 600
FOREIGN_PASSTHROUGHS = [
    None,
    "hello",
    '{"user": 5}',
    '{"lesson_id": "6"}',
    '{"lesson_id": 6, "x": 1}',
]

Triple = tuple[str, dict[str, Any] | None, str | None]
YOUNG_KEPT = "kept: younger than the minimum orphan age"


def lesson(n: int) -> dict[str, Any]:
    return {"kind": "lesson", "id": n}


def course(n: int) -> dict[str, Any]:
    return {"kind": "course", "id": n}


def set_course(platform: Platform, course_id: int, asset: str | None, playback: str | None) -> None:
    with Session(platform.engine) as s:
        row = s.get(World, course_id)
        assert row is not None
        row.mux_preview_asset_id, row.mux_preview_playback_id = asset, playback
        s.add(row)
        s.commit()


def journal_rows(platform: Platform) -> list[UploadJournal]:
    with Session(platform.engine) as s:
        return list(s.exec(select(UploadJournal).order_by(col(UploadJournal.id))))


def playback(asset: dict[str, Any]) -> str:
    return str(asset["playback_ids"][0]["id"])


def triples(doc: dict[str, Any]) -> set[Triple]:
    return {(d["kind"], _freeze(d["target"]), d["asset_id"]) for d in doc["drift"]}


def _freeze(target: dict[str, Any] | None) -> Any:
    return None if target is None else (target["kind"], target["id"])


def t(kind: str, target: dict[str, Any] | None, asset_id: str | None) -> Any:
    return (kind, _freeze(target), asset_id)


def mux_writes(emulator: Emulator) -> int:
    """Requests that could change anything on Mux (everything but GET)."""
    return sum(1 for m, p, _ in emulator.request_log if m != "GET" and p.startswith("/video/"))


def list_calls(emulator: Emulator) -> int:
    return sum(1 for m, p, _ in emulator.request_log if m == "GET" and p == "/video/v1/assets")


def get_asset_calls(emulator: Emulator) -> int:
    return sum(
        1 for m, p, _ in emulator.request_log if m == "GET" and p.startswith("/video/v1/assets/")
    )


@pytest.fixture(autouse=True)
def fast_retries(mux_tuning: dict[str, Any]) -> None:
    """The gateway's retry policy with tiny waits (same number of attempts)."""
    mux_tuning["retry"] = fast_retry()


@pytest.fixture(autouse=True)
def unpaced(mux_tuning: dict[str, Any]) -> None:
    """No client-side pacing (waits of 0.2 s a request add up); the pacing test puts it back."""
    mux_tuning["pace"] = False


@dataclass
class Catalogue:
    """What `catalogue` seeded; see its docstring for who names what."""

    shared: dict[str, Any]
    gone: str
    errored: dict[str, Any]
    mismatch: dict[str, Any]
    unrecorded: dict[str, Any]
    preparing: dict[str, Any]
    healthy8: dict[str, Any]
    orphan_other: dict[str, Any]
    orphan_ghost: dict[str, Any]
    orphan_young: dict[str, Any]
    course1: dict[str, Any]
    foreign: list[dict[str, Any]]

    @property
    def repairs(self) -> set[Triple]:
        return {
            t("missing_asset", lesson(3), self.gone),
            t("asset_errored", lesson(4), self.errored["id"]),
            t("playback_mismatch", lesson(5), self.mismatch["id"]),
            t("unrecorded", lesson(6), self.unrecorded["id"]),
        }

    @property
    def orphans(self) -> set[Triple]:
        """The orphans of a first run (lesson 4 still records its errored asset: that asset
        is lesson 4's `asset_errored` item, not also an orphan)."""
        return {
            t("orphan", lesson(8), self.orphan_other["id"]),
            t("orphan", lesson(99), self.orphan_ghost["id"]),
            t("orphan", course(77), self.orphan_young["id"]),
        }

    @property
    def later_orphans(self) -> set[Triple]:
        """The orphans once a sync has cleared lesson 4: no row names its errored asset."""
        return self.orphans | {t("orphan", lesson(4), self.errored["id"])}

    @property
    def old_orphan_ids(self) -> set[str]:
        return {self.orphan_other["id"], self.orphan_ghost["id"]}

    @property
    def foreign_ids(self) -> set[str]:
        return {a["id"] for a in self.foreign}


@pytest.fixture
def catalogue(env: Platform, emulator: Emulator) -> Catalogue:
    """Every drift kind at once, and what is not drift.

    lesson 1 + lesson 2   share one healthy asset (not drift)
    lesson 3              names an asset Mux 404s                 -> missing_asset
    lesson 4              names an errored asset                  -> asset_errored
    lesson 5              has a playback ID its asset lacks       -> playback_mismatch
    lesson 6              no video; a ready asset names it        -> unrecorded
    lesson 7              no video; its asset is still preparing  (not drift)
    lesson 8              healthy; an older asset also names it   -> orphan (old)
    lesson 99, course 77  do not exist; assets name them          -> orphans (old, young)
    course 1              healthy
    foreign passthroughs  never reported, never touched (old, some errored)
    """
    env.add_lessons([4, 5, 6, 7, 8])
    seed = emulator.seed_asset
    shared = seed(passthrough='{"lesson_id": 1}', created_at=OLD)
    env.set_lesson(1, shared["id"], playback(shared))
    env.set_lesson(2, shared["id"], playback(shared))
    gone = seed(passthrough='{"lesson_id": 3}', created_at=OLD)
    env.set_lesson(3, gone["id"], playback(gone))
    emulator.delete_asset_silently(gone["id"])
    errored = seed(passthrough='{"lesson_id": 4}', status="errored", created_at=OLD)
    env.set_lesson(4, errored["id"], "pb-of-an-errored-asset")
    mismatch = seed(passthrough='{"lesson_id": 5}', created_at=OLD)
    env.set_lesson(5, mismatch["id"], "not-this-assets-playback-id")
    unrecorded = seed(passthrough='{"lesson_id": 6}', created_at=OLD)
    preparing = seed(passthrough='{"lesson_id": 7}', status="preparing", created_at=OLD)
    orphan_other = seed(passthrough='{"lesson_id": 8}', created_at=OLD)
    healthy8 = seed(passthrough='{"lesson_id": 8}', created_at=OLD + 10)
    env.set_lesson(8, healthy8["id"], playback(healthy8))
    orphan_ghost = seed(passthrough='{"lesson_id": 99}', created_at=OLD)
    orphan_young = seed(passthrough='{"course_id": 77}', created_at=YOUNG)
    course1 = seed(passthrough='{"course_id": 1}', created_at=OLD)
    set_course(env, 1, course1["id"], playback(course1))
    foreign = [seed(passthrough=p, created_at=OLD) for p in FOREIGN_PASSTHROUGHS]
    foreign.append(seed(passthrough=None, status="errored", created_at=OLD))
    foreign.append(seed(passthrough="not json {", status="preparing", created_at=OLD))
    return Catalogue(
        shared=shared,
        gone=gone["id"],
        errored=errored,
        mismatch=mismatch,
        unrecorded=unrecorded,
        preparing=preparing,
        healthy8=healthy8,
        orphan_other=orphan_other,
        orphan_ghost=orphan_ghost,
        orphan_young=orphan_young,
        course1=course1,
        foreign=foreign,
    )


# -- verify ---------------------------------------------------------------------------------------


def test_verify_reports_every_drift_kind_read_only(
    env: Platform, emulator: Emulator, catalogue: Catalogue, vp: Callable[..., Result]
) -> None:
    before_rows, before_assets = env.dump(), emulator.assets
    res = vp("verify", "--json")
    assert res.code == 1, res.err
    doc = json.loads(res.out)
    assert doc["ok"] is False
    assert triples(doc) == catalogue.repairs | catalogue.orphans
    assert len(doc["drift"]) == len(catalogue.repairs | catalogue.orphans)  # no duplicates
    assert all(isinstance(d["detail"], str) and d["detail"] for d in doc["drift"])
    assert all("action" not in d for d in doc["drift"])
    assert doc["checked"] == 7  # lessons 1-5 and 8, course 1
    for aid in catalogue.foreign_ids | {catalogue.preparing["id"], catalogue.shared["id"]}:
        assert aid not in res.out
    # read-only, on both sides
    assert env.dump() == before_rows and env.tombstones() == []
    assert emulator.assets == before_assets
    assert mux_writes(emulator) == 0


def test_verify_human_output_plain_lines(
    env: Platform, catalogue: Catalogue, vp: Callable[..., Result]
) -> None:
    res = vp("verify")
    assert res.code == 1
    assert "\x1b[" not in res.out
    for kind in ("missing_asset", "asset_errored", "playback_mismatch", "unrecorded", "orphan"):
        assert f"kind={kind}" in res.out
    assert "7 drift" in res.out.splitlines()[-1]


def test_verify_clean_catalogue_exit_0(
    env: Platform, emulator: Emulator, vp: Callable[..., Result]
) -> None:
    shared = emulator.seed_asset(passthrough='{"lesson_id": 1}', created_at=OLD)
    env.set_lesson(1, shared["id"], playback(shared))
    env.set_lesson(2, shared["id"], playback(shared))
    emulator.seed_asset(passthrough='{"lesson_id": 3}', status="preparing")
    for p in FOREIGN_PASSTHROUGHS:
        emulator.seed_asset(passthrough=p, created_at=OLD)
    res = vp("verify", "--json")
    assert res.code == 0, res.out + res.err
    doc = json.loads(res.out)
    assert doc["ok"] is True and doc["drift"] == [] and doc["checked"] == 2
    plain = vp("verify")
    assert plain.code == 0 and "no drift" in plain.out


def test_verify_one_target_costs_no_listing(
    env: Platform, emulator: Emulator, catalogue: Catalogue, vp: Callable[..., Result]
) -> None:
    res = vp("verify", "--lesson", "3", "--json")
    assert res.code == 1
    assert triples(json.loads(res.out)) == {t("missing_asset", lesson(3), catalogue.gone)}
    res = vp("verify", "--lesson", "1", "--json")
    assert res.code == 0, res.out
    res = vp("verify", "--course", "1", "--json")
    assert res.code == 0, res.out
    assert list_calls(emulator) == 0
    assert get_asset_calls(emulator) == 3
    res = vp("verify", "--lesson", "42")
    assert res.code == 2 and "lesson 42" in res.err


# -- sync -----------------------------------------------------------------------------------------


def test_sync_dry_run_changes_nothing(
    env: Platform, emulator: Emulator, catalogue: Catalogue, vp: Callable[..., Result]
) -> None:
    before_rows, before_assets = env.dump(), emulator.assets
    res = vp("sync", "--dry-run", "--prune-orphans", "--json")
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert doc["dry_run"] is True
    assert triples(doc) == catalogue.repairs | catalogue.orphans
    actions = {d["asset_id"] + d["kind"]: d["action"] for d in doc["drift"]}
    assert actions[catalogue.gone + "missing_asset"] == "would clear row"
    assert actions[catalogue.unrecorded["id"] + "unrecorded"] == "would record asset"
    assert actions[catalogue.orphan_ghost["id"] + "orphan"] == "would delete from Mux"
    assert actions[catalogue.orphan_young["id"] + "orphan"] == YOUNG_KEPT
    # The errored asset lesson 4 records: the row is cleared, nothing deleted from Mux.
    assert [d["action"] for d in doc["drift"] if d["asset_id"] == catalogue.errored["id"]] == [
        "would clear row"
    ]
    assert env.dump() == before_rows and env.tombstones() == []
    assert emulator.assets == before_assets
    assert mux_writes(emulator) == 0


def test_sync_repairs_reports_orphans_and_is_idempotent(
    env: Platform, emulator: Emulator, catalogue: Catalogue, vp: Callable[..., Result]
) -> None:
    before_assets = emulator.assets
    res = vp("sync", "--json")
    assert res.code == 0, res.out + res.err
    doc = json.loads(res.out)
    assert doc["ok"] is True and doc["dry_run"] is False and doc["failed"] == []
    assert triples(doc) == catalogue.repairs | catalogue.orphans
    for item in doc["drift"]:
        if item["kind"] == "orphan":
            assert item["action"] == "reported"
        else:
            assert not item["action"].startswith(("skipped", "failed")), item
    # repaired rows
    for n in (3, 4):
        row = env.lesson(n)
        assert row is not None and (row.mux_asset_id, row.mux_playback_id) == (None, None)
    row5 = env.lesson(5)
    assert row5 is not None
    assert (row5.mux_asset_id, row5.mux_playback_id) == (
        catalogue.mismatch["id"],
        playback(catalogue.mismatch),
    )
    row6 = env.lesson(6)
    assert row6 is not None
    assert (row6.mux_asset_id, row6.mux_playback_id) == (
        catalogue.unrecorded["id"],
        playback(catalogue.unrecorded),
    )
    # untouched rows
    for n in (1, 2):
        row = env.lesson(n)
        assert row is not None and row.mux_asset_id == catalogue.shared["id"]
    row7, row8, world1 = env.lesson(7), env.lesson(8), env.world(1)
    assert row7 is not None and row7.mux_asset_id is None
    assert row8 is not None and row8.mux_asset_id == catalogue.healthy8["id"]
    assert world1 is not None and world1.mux_preview_asset_id == catalogue.course1["id"]
    # nothing deleted or changed on Mux without --prune-orphans
    assert emulator.assets == before_assets
    assert mux_writes(emulator) == 0
    # the assets Mux said are gone are remembered, so a late webhook cannot restore them
    assert env.tombstones() == sorted([catalogue.gone, catalogue.errored["id"]])

    # Second run: nothing left to do but the same orphans to report.
    rows_after = env.dump()
    again = vp("sync", "--json")
    assert again.code == 0, again.err
    doc2 = json.loads(again.out)
    assert {x for x in triples(doc2) if x[0] != "orphan"} == set()
    assert triples(doc2) == catalogue.later_orphans
    assert all(d["action"] == "reported" for d in doc2["drift"])
    assert env.dump() == rows_after
    assert emulator.assets == before_assets


def test_sync_human_output_lists_actions(
    env: Platform, catalogue: Catalogue, vp: Callable[..., Result]
) -> None:
    res = vp("sync")
    assert res.code == 0, res.err
    assert "action=reported" in res.out
    assert 'action="cleared row"' in res.out
    assert 'action="recorded asset"' in res.out
    assert "\x1b[" not in res.out


def test_prune_orphans_deletes_only_old_ones_and_never_foreign(
    env: Platform, emulator: Emulator, catalogue: Catalogue, vp: Callable[..., Result]
) -> None:
    res = vp("sync", "--prune-orphans", "--json")
    assert res.code == 0, res.out + res.err
    doc = json.loads(res.out)
    actions = {(d["kind"], d["asset_id"]): d["action"] for d in doc["drift"]}
    for aid in catalogue.old_orphan_ids:
        assert actions[("orphan", aid)] == "deleted from Mux"
    assert actions[("orphan", catalogue.orphan_young["id"])] == YOUNG_KEPT
    left = set(emulator.assets)
    assert not (left & catalogue.old_orphan_ids)
    assert catalogue.orphan_young["id"] in left
    assert catalogue.foreign_ids <= left
    assert {catalogue.shared["id"], catalogue.preparing["id"], catalogue.healthy8["id"]} <= left
    assert emulator.count(method="DELETE") == len(catalogue.old_orphan_ids)
    assert catalogue.old_orphan_ids <= set(env.tombstones())
    # The errored asset lesson 4 recorded was only cleared from its row in that run; now
    # that no row names it, it is an orphan, and old enough to go.
    errored = catalogue.errored["id"]
    again = vp("sync", "--prune-orphans", "--json")
    assert again.code == 0
    actions = {(d["kind"], d["asset_id"]): d["action"] for d in json.loads(again.out)["drift"]}
    assert actions == {
        ("orphan", errored): "deleted from Mux",
        ("orphan", catalogue.orphan_young["id"]): YOUNG_KEPT,
    }
    assert errored not in emulator.assets
    # Idempotent: the young orphan is still reported, nothing else happens.
    before_rows, before_assets = env.dump(), emulator.assets
    again = vp("sync", "--prune-orphans", "--json")
    assert again.code == 0
    assert triples(json.loads(again.out)) == {t("orphan", course(77), catalogue.orphan_young["id"])}
    assert env.dump() == before_rows and emulator.assets == before_assets
    # A shorter minimum age lets it go.
    res = vp("sync", "--prune-orphans", "--orphan-min-age", "5m", "--json")
    assert res.code == 0
    assert catalogue.orphan_young["id"] not in emulator.assets
    assert catalogue.foreign_ids <= set(emulator.assets)


def test_prune_orphans_at_most_max_deletes(
    env: Platform, emulator: Emulator, vp: Callable[..., Result]
) -> None:
    ghosts = [
        emulator.seed_asset(passthrough=f'{{"lesson_id": {50 + i}}}', created_at=OLD)
        for i in range(4)
    ]
    for p in FOREIGN_PASSTHROUGHS:
        emulator.seed_asset(passthrough=p, created_at=OLD)
    res = vp("sync", "--prune-orphans", "--max-deletes", "1", "--json")
    assert res.code == 0, res.err
    actions = sorted(d["action"] for d in json.loads(res.out)["drift"])
    assert actions == ["deleted from Mux"] + ["kept: the per-run deletion limit is reached"] * 3
    assert len(emulator.assets) == len(ghosts) - 1 + len(FOREIGN_PASSTHROUGHS)
    res = vp("sync", "--prune-orphans", "--max-deletes", "0", "--json")
    assert res.code == 0
    assert len(emulator.assets) == len(ghosts) - 1 + len(FOREIGN_PASSTHROUGHS)
    res = vp("sync", "--prune-orphans", "--json")
    assert res.code == 0
    assert len(emulator.assets) == len(FOREIGN_PASSTHROUGHS)
    res = vp("sync", "--prune-orphans", "--orphan-min-age", "soon")
    assert res.code == 2


def test_prune_failure_exits_1_rest_of_sync_done(
    env: Platform, emulator: Emulator, catalogue: Catalogue, vp: Callable[..., Result]
) -> None:
    emulator.inject("DELETE", "/video/v1/assets/", "status", status=503, times=100)
    res = vp("sync", "--prune-orphans", "--json")
    assert res.code == 1
    doc = json.loads(res.out)
    assert doc["ok"] is False and len(doc["failed"]) == len(catalogue.old_orphan_ids)
    assert catalogue.old_orphan_ids <= set(emulator.assets)


def test_sync_lock_held_exits_1_promptly(
    env: Platform, catalogue: Catalogue, vp: Callable[..., Result]
) -> None:
    before = env.dump()
    with run_lock(env.engine, "sync"):
        started = time.monotonic()
        res = vp("sync")
        assert time.monotonic() - started < 5
    assert res.code == 1 and "sync" in res.err
    assert env.dump() == before


# -- faults ---------------------------------------------------------------------------------------

FAULTS = {
    "503-past-retries": dict(kind="status", status=503, times=100),
    "429-past-retries": dict(kind="status", status=429, times=100),
    "401": dict(kind="status", status=401, times=100),
    "cut-connection": dict(kind="cut", times=100),
    "reset-connection": dict(kind="reset", times=100),
}


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("command", [("verify",), ("sync", "--prune-orphans")])
def test_fault_on_listing_changes_nothing(
    env: Platform,
    emulator: Emulator,
    catalogue: Catalogue,
    vp: Callable[..., Result],
    fault: str,
    command: tuple[str, ...],
) -> None:
    before_rows, before_assets = env.dump(), emulator.assets
    spec = dict(FAULTS[fault])
    emulator.inject("GET", "/video/v1/assets", str(spec.pop("kind")), **spec)  # type: ignore[arg-type]
    res = vp(*command, "--json")
    assert res.code == 1
    assert res.out == ""  # no half-made report
    assert res.err.startswith("vidpipe: error:") and len(res.err.strip().splitlines()) == 1
    assert env.dump() == before_rows
    assert emulator.assets == before_assets
    assert mux_writes(emulator) == 0


def test_fault_confirming_a_missing_asset_changes_nothing(
    env: Platform, emulator: Emulator, catalogue: Catalogue, vp: Callable[..., Result]
) -> None:
    """Only a definite 404 makes an asset missing: a 503 on the confirming GET stops the run."""
    before_rows, before_assets = env.dump(), emulator.assets
    emulator.inject("GET", f"/video/v1/assets/{catalogue.gone}", "status", status=503, times=100)
    res = vp("sync", "--prune-orphans")
    assert res.code == 1 and "503" in res.err
    assert env.dump() == before_rows and emulator.assets == before_assets
    assert mux_writes(emulator) == 0


def test_transient_faults_are_retried(
    env: Platform, emulator: Emulator, catalogue: Catalogue, vp: Callable[..., Result]
) -> None:
    emulator.inject("GET", "/video/v1/assets", "status", status=503, times=2)
    emulator.inject("GET", "/video/v1/assets", "status", status=429, times=2)
    emulator.inject("GET", "/video/v1/assets", "cut", times=1)
    res = vp("verify", "--json")
    assert res.code == 1
    doc = json.loads(res.out)
    assert triples(doc) == catalogue.repairs | catalogue.orphans
    assert doc["rate_limited"] == 2


# -- scale: pagination, cost, pacing --------------------------------------------------------------


def _bulk_rows(platform: Platform, recorded: dict[int, tuple[str, str]]) -> None:
    with Session(platform.engine) as s:
        for lesson_id, (aid, pid) in recorded.items():
            s.exec(
                update(Lesson)
                .where(col(Lesson.id) == lesson_id)
                .values(mux_asset_id=aid, mux_playback_id=pid)
            )
        s.commit()


def test_pagination_and_cost_of_a_full_verify(
    env: Platform, emulator: Emulator, vp: Callable[..., Result]
) -> None:
    """260 assets over 3 pages: every one is seen, at ceil(M/100) list calls plus one GET per
    row whose asset the listing lacks, never one call per row."""
    n_assets, unrecorded = 260, {17, 130, 201, 259, 260}
    env.add_lessons(range(4, n_assets + 3))
    assets = emulator.seed_assets(
        n_assets, passthrough_fn=lambda i: f'{{"lesson_id": {i + 1}}}', created_at=OLD
    )
    recorded = {
        i + 1: (a["id"], playback(a)) for i, a in enumerate(assets) if i + 1 not in unrecorded
    }
    recorded[n_assets + 1] = ("gone-asset-1", "pb")
    recorded[n_assets + 2] = ("gone-asset-2", "pb")
    _bulk_rows(env, recorded)
    res = vp("verify", "--json")
    assert res.code == 1
    doc = json.loads(res.out)
    assert doc["checked"] == len(recorded)
    assert triples(doc) == {t("unrecorded", lesson(n), assets[n - 1]["id"]) for n in unrecorded} | {
        t("missing_asset", lesson(n_assets + 1), "gone-asset-1"),
        t("missing_asset", lesson(n_assets + 2), "gone-asset-2"),
    }
    assert list_calls(emulator) == math.ceil(n_assets / 100) == 3
    assert get_asset_calls(emulator) == 2
    assert doc["api_calls"] == 5
    # sync repairs it all; a second verify is clean
    assert vp("sync").code == 0
    again = vp("verify", "--json")
    assert again.code == 0, again.out


@pytest.fixture
def limited(
    monkeypatch: pytest.MonkeyPatch, env: Platform, mux_tuning: dict[str, Any]
) -> Iterator[Emulator]:
    """An emulator enforcing Mux's rate limits; the environment points at it; the gateway
    paces itself as it does in production."""
    mux_tuning["pace"] = True
    with Emulator(ready_after=0.0, rate_limit=True) as emu:
        monkeypatch.setenv("MUX_BASE_URL", emu.base_url)
        yield emu


def test_pacing_meets_zero_429s_under_the_rate_limit(
    env: Platform, limited: Emulator, vp: Callable[..., Result]
) -> None:
    env.add_lessons(range(4, 12))
    assets = limited.seed_assets(
        300, passthrough_fn=lambda i: f'{{"lesson_id": {i % 3 + 1}}}', created_at=OLD
    )
    for n in range(1, 4):  # rows 1-3 name the newest asset of theirs; the rest are orphans
        a = assets[-4 + n]
        env.set_lesson(n, a["id"], playback(a))
    for n in range(4, 12):  # each costs one confirming GET
        env.set_lesson(n, f"gone-{n}", "pb")
    res = vp("verify", "--json")
    assert res.code == 1
    doc = json.loads(res.out)
    assert sum(d["kind"] == "missing_asset" for d in doc["drift"]) == 8
    assert sum(d["kind"] == "orphan" for d in doc["drift"]) == 297
    assert limited.count(status=429) == 0
    assert doc["rate_limited"] == 0
    assert list_calls(limited) == 3 and get_asset_calls(limited) == 8


# -- delete ---------------------------------------------------------------------------------------


def test_delete_refuses_without_yes_off_a_terminal(
    env: Platform, emulator: Emulator, catalogue: Catalogue, vp: Callable[..., Result]
) -> None:
    before_rows, before_assets = env.dump(), emulator.assets
    for args in (("--asset", catalogue.shared["id"]), ("--lesson", "1"), ("--course", "1")):
        res = vp("delete", *args)
        assert res.code == 2 and "--yes" in res.err
    assert env.dump() == before_rows and emulator.assets == before_assets
    assert mux_writes(emulator) == 0


def test_delete_shared_asset_clears_every_row(
    env: Platform, emulator: Emulator, catalogue: Catalogue, vp: Callable[..., Result]
) -> None:
    aid = catalogue.shared["id"]
    res = vp("delete", "--asset", aid, "--yes", "--json")
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert doc == {
        "ok": True,
        "asset_id": aid,
        "deleted_on_mux": True,
        "already_gone": False,
        "cleared": [lesson(1), lesson(2)],
    }
    assert aid not in emulator.assets
    for n in (1, 2):
        row = env.lesson(n)
        assert row is not None and (row.mux_asset_id, row.mux_playback_id) == (None, None)
    # deleted, then confirmed gone with a GET that answered 404
    log = [(m, p, s) for m, p, s in emulator.request_log if p == f"/video/v1/assets/{aid}"]
    assert log == [
        ("DELETE", f"/video/v1/assets/{aid}", 204),
        ("GET", f"/video/v1/assets/{aid}", 404),
    ]
    assert env.tombstones() == [aid]


def test_sync_prunes_expired_tombstones_only(env: Platform, vp: Callable[..., Result]) -> None:
    now = int(time.time())
    with Session(env.engine) as s:
        s.add(WebhookTombstone(asset_id="EXPIRED", reason="t", dead_at=now - TOMBSTONE_TTL - 60))
        s.add(WebhookTombstone(asset_id="RECENT", reason="t", dead_at=now - TOMBSTONE_TTL + 3600))
        s.commit()
    assert vp("verify").code == 0
    assert vp("sync", "--dry-run").code == 0
    assert env.tombstones() == ["EXPIRED", "RECENT"]  # read-only runs prune nothing
    assert vp("sync").code == 0
    assert env.tombstones() == ["RECENT"]


def test_late_ready_webhook_after_delete_is_not_recorded(
    env: Platform,
    catalogue: Catalogue,
    vp: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Mux retries deliveries for a day, in no order: a `ready` for an asset `vidpipe delete`
    removed must not put it back, even in a webhook process with no Mux token to ask."""
    aid = catalogue.shared["id"]
    assert vp("delete", "--asset", aid, "--yes").code == 0
    late = tmp_path / "late-ready.json"
    late.write_text(json.dumps(envelope("video.asset.ready", "asset", aid, catalogue.shared)))
    monkeypatch.delenv("MUX_TOKEN_ID")
    monkeypatch.delenv("MUX_TOKEN_SECRET")
    res = vp("webhook", "apply", str(late), "--no-verify", "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["outcome"] == "stale"
    for n in (1, 2):
        row = env.lesson(n)
        assert row is not None and row.mux_asset_id is None


def test_delete_by_lesson_and_course(
    env: Platform, emulator: Emulator, catalogue: Catalogue, vp: Callable[..., Result]
) -> None:
    res = vp("delete", "--lesson", "2", "--yes")
    assert res.code == 0, res.err
    assert catalogue.shared["id"] in res.out and "lesson 1" in res.out and "lesson 2" in res.out
    assert catalogue.shared["id"] not in emulator.assets
    res = vp("delete", "--course", "1", "--yes", "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["cleared"] == [course(1)]
    world = env.world(1)
    assert world is not None and world.mux_preview_asset_id is None
    assert catalogue.course1["id"] not in emulator.assets
    assert catalogue.foreign_ids <= set(emulator.assets)


def test_delete_asset_already_gone_clears_rows(
    env: Platform, emulator: Emulator, catalogue: Catalogue, vp: Callable[..., Result]
) -> None:
    res = vp("delete", "--lesson", "3", "--yes", "--json")
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert doc["already_gone"] is True and doc["deleted_on_mux"] is False
    assert doc["cleared"] == [lesson(3)]
    row = env.lesson(3)
    assert row is not None and row.mux_asset_id is None


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--lesson", "42"), "lesson 42"),
        (("--course", "9"), "course 9"),
        (("--lesson", "7"), "no video"),
        (("--lesson", "1", "--course", "1"), "exactly one"),
        ((), "exactly one"),
        (("--asset", " "), "asset"),
        (("--asset", "never-existed"), "never-existed"),
    ],
)
def test_delete_bad_target_exit_2_nothing_changed(
    env: Platform,
    emulator: Emulator,
    catalogue: Catalogue,
    vp: Callable[..., Result],
    args: tuple[str, ...],
    needle: str,
) -> None:
    before_rows, before_assets = env.dump(), emulator.assets
    res = vp("delete", *args, "--yes")
    assert res.code == 2, res.out + res.err
    assert needle in res.err
    assert env.dump() == before_rows and emulator.assets == before_assets
    assert mux_writes(emulator) == 0


def test_delete_refuses_a_foreign_asset_no_row_names(
    env: Platform, emulator: Emulator, catalogue: Catalogue, vp: Callable[..., Result]
) -> None:
    foreign = catalogue.foreign[0]["id"]
    res = vp("delete", "--asset", foreign, "--yes")
    assert res.code == 2 and "not vidpipe's" in res.err
    assert foreign in emulator.assets


def test_delete_mux_failure_leaves_rows(
    env: Platform, emulator: Emulator, catalogue: Catalogue, vp: Callable[..., Result]
) -> None:
    before = env.dump()
    emulator.inject("DELETE", "/video/v1/assets/", "status", status=503, times=100)
    res = vp("delete", "--lesson", "1", "--yes")
    assert res.code == 1
    assert env.dump() == before and env.tombstones() == []
    assert catalogue.shared["id"] in emulator.assets


# -- unfinished uploads ---------------------------------------------------------------------------


def test_sync_finishes_a_no_wait_upload_and_closes_an_expired_one(
    env: Platform,
    emulator: Emulator,
    video: Callable[..., Path],
    vp: Callable[..., Result],
) -> None:
    res = vp("upload", video(QUANTUM), "--lesson", "1", "--no-wait", "--json")
    assert res.code == 0, res.err
    finished = json.loads(res.out)
    # A second upload dies mid-transfer, and its Mux upload then times out.
    emulator.inject("PUT", "/upload/", "status", status=400, times=1)
    res = vp("upload", video(2 * QUANTUM, name="b.mp4", seed=3), "--lesson", "2")
    assert res.code == 1
    (expired,) = [u for u in emulator.uploads if u != finished["upload_id"]]
    emulator.expire_upload(expired)
    assert all(journal.is_unfinished(e) for e in journal_rows(env))

    status = vp("status", "--json")
    assert status.code == 0, status.err
    uploads = {e["target"]["id"]: e["upload"] for e in json.loads(status.out)["targets"]}
    assert set(uploads) == {1, 2} and all(uploads.values())

    before = env.dump()
    dry = vp("sync", "--dry-run", "--json")
    assert dry.code == 0, dry.err
    doc = json.loads(dry.out)
    assert {d["kind"] for d in doc["drift"]} == {"unrecorded"}
    assert [j["action"] for j in doc["journal"]] == ["would close"]
    assert env.dump() == before

    res = vp("sync", "--json")
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    asset_id = emulator.uploads[finished["upload_id"]]["asset_id"]
    assert triples(doc) == {t("unrecorded", lesson(1), asset_id)}
    assert [(j["target"], j["action"]) for j in doc["journal"]] == [(lesson(2), "closed")]
    row = env.lesson(1)
    assert row is not None and row.mux_asset_id == asset_id and row.mux_playback_id
    assert [e.state for e in journal_rows(env)] == ["done", "abandoned"]

    again = vp("sync", "--json")
    doc = json.loads(again.out)
    assert again.code == 0 and doc["drift"] == [] and doc["journal"] == []
    assert vp("verify").code == 0


def test_sync_finishes_an_upload_a_webhook_already_recorded(
    env: Platform, emulator: Emulator, video: Callable[..., Path], vp: Callable[..., Result]
) -> None:
    """Recorded by someone else (a webhook): the journal entry is done, not abandoned."""
    res = vp("upload", video(QUANTUM), "--lesson", "1", "--no-wait", "--json")
    assert res.code == 0, res.err
    asset = emulator.assets[emulator.uploads[json.loads(res.out)["upload_id"]]["asset_id"]]
    env.set_lesson(1, asset["id"], playback(asset))
    dry = vp("sync", "--dry-run", "--json")
    assert [j["action"] for j in json.loads(dry.out)["journal"]] == ["would finish"]
    assert [e.state for e in journal_rows(env)] == ["transferred"]
    res = vp("sync", "--json")
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert doc["drift"] == [] and [j["action"] for j in doc["journal"]] == ["finished"]
    (entry,) = journal_rows(env)
    assert (entry.state, entry.asset_id, entry.playback_id) == (
        "done",
        asset["id"],
        playback(asset),
    )


def test_sync_closes_an_upload_whose_row_took_another_video(
    env: Platform, emulator: Emulator, video: Callable[..., Path], vp: Callable[..., Result]
) -> None:
    """The row got another video while a --no-wait upload was in flight: that upload can
    never finish. Its asset is an orphan (reported, pruned by policy) and its entry closed."""
    res = vp("upload", video(QUANTUM), "--lesson", "1", "--no-wait", "--json")
    assert res.code == 0, res.err
    mine = emulator.uploads[json.loads(res.out)["upload_id"]]["asset_id"]
    theirs = emulator.seed_asset(passthrough='{"lesson_id": 1}')
    env.set_lesson(1, theirs["id"], playback(theirs))
    before = env.dump()

    dry = vp("sync", "--dry-run", "--json")
    assert [j["action"] for j in json.loads(dry.out)["journal"]] == ["would close"]
    assert [e.state for e in journal_rows(env)] == ["transferred"]

    res = vp("sync", "--json")
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert triples(doc) == {t("orphan", lesson(1), mine)}
    assert [(j["target"], j["action"]) for j in doc["journal"]] == [(lesson(1), "closed")]
    (entry,) = journal_rows(env)
    assert entry.state == "abandoned"
    assert entry.last_error is not None and theirs["id"] in entry.last_error
    assert env.dump() == before  # their video stays
    assert mine in emulator.assets  # deleting it is --prune-orphans' call

    again = vp("sync", "--json")
    doc = json.loads(again.out)
    assert again.code == 0 and doc["journal"] == []
    assert triples(doc) == {t("orphan", lesson(1), mine)}


def test_sync_closes_an_upload_whose_asset_is_gone(
    env: Platform, emulator: Emulator, video: Callable[..., Path], vp: Callable[..., Result]
) -> None:
    res = vp("upload", video(QUANTUM), "--lesson", "1", "--no-wait", "--json")
    assert res.code == 0, res.err
    upload_id = json.loads(res.out)["upload_id"]
    with Session(env.engine) as s:  # the pipeline saw the asset being created
        (entry,) = s.exec(select(UploadJournal))
        entry.state, entry.asset_id = "asset_created", emulator.uploads[upload_id]["asset_id"]
        s.add(entry)
        s.commit()
    emulator.delete_asset_silently(emulator.uploads[upload_id]["asset_id"])
    res = vp("sync", "--json")
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert doc["drift"] == []
    assert [(j["action"], "404" in j["detail"]) for j in doc["journal"]] == [("closed", True)]
    assert [e.state for e in journal_rows(env)] == ["abandoned"]
    again = vp("status", "--json")
    assert json.loads(again.out)["targets"] == []


# -- status ---------------------------------------------------------------------------------------


def test_status_all_and_one_target(
    env: Platform, emulator: Emulator, catalogue: Catalogue, vp: Callable[..., Result]
) -> None:
    res = vp("status", "--json")
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    by = {(e["target"]["kind"], e["target"]["id"]): e for e in doc["targets"]}
    assert set(by) == {("lesson", n) for n in (1, 2, 3, 4, 5, 8)} | {("course", 1)}
    assert by[("lesson", 1)]["shared_with"] == [lesson(2)]
    assert by[("lesson", 2)]["shared_with"] == [lesson(1)]
    assert by[("lesson", 3)]["mux"]["status"] == "missing"
    assert by[("lesson", 4)]["mux"]["status"] == "errored"
    assert by[("lesson", 5)]["mux"]["playback_ids"] == [playback(catalogue.mismatch)]
    assert by[("course", 1)]["mux"]["status"] == "ready"
    assert mux_writes(emulator) == 0

    one = vp("status", "--lesson", "8", "--json")
    assert one.code == 0
    (entry,) = json.loads(one.out)["targets"]
    assert entry["db"]["asset_id"] == catalogue.healthy8["id"]
    assert entry["mux"]["status"] == "ready"
    empty = vp("status", "--lesson", "7", "--json")
    assert empty.code == 0
    (entry,) = json.loads(empty.out)["targets"]
    assert entry["db"] == {"asset_id": None, "playback_id": None}
    plain = vp("status")
    assert plain.code == 0 and "\x1b[" not in plain.out and catalogue.shared["id"] in plain.out
    assert vp("status", "--course", "5").code == 2


# -- the engine, directly -------------------------------------------------------------------------


@pytest.fixture
def gateway(env: Platform, emulator: Emulator) -> Iterator[MuxGateway]:
    with MuxGateway(emulator.base_url, "id", TOKEN_SECRET, pace=False) as gw:
        yield gw


def test_missing_row_with_a_ready_replacement_is_fixed_in_one_run(
    env: Platform, emulator: Emulator, gateway: MuxGateway
) -> None:
    """The row's asset is gone but another ready asset names the row: one sync clears and
    records it, so a second sync has nothing to do (it used to find `unrecorded` then)."""
    newer = emulator.seed_asset(passthrough='{"lesson_id": 1}', created_at=OLD)
    env.set_lesson(1, "gone-for-good", "pb")
    first = reconcile.sync(env.engine, gateway, SyncOptions())
    assert {(d.kind, d.asset_id) for d in first.drift} == {
        ("missing_asset", "gone-for-good"),
        ("unrecorded", newer["id"]),
    }
    row = env.lesson(1)
    assert row is not None and (row.mux_asset_id, row.mux_playback_id) == (
        newer["id"],
        playback(newer),
    )
    second = reconcile.sync(env.engine, gateway, SyncOptions(prune_orphans=True))
    assert second.drift == [] and second.ok


def test_a_row_changed_after_the_snapshot_is_left_alone(
    env: Platform, emulator: Emulator, gateway: MuxGateway
) -> None:
    """Compare-and-set: a concurrent upload that records a video between the snapshot and the
    write wins; sync skips the row instead of undoing it."""
    env.add_lessons([4])
    unrec = emulator.seed_asset(passthrough='{"lesson_id": 4}', created_at=OLD)
    env.set_lesson(3, "gone", "pb")

    def racing() -> None:  # lands after the plan, before the first write
        env.set_lesson(3, "fresh-upload", "fresh-pb")
        env.set_lesson(4, "another-fresh", "pb2")

    report = reconcile.sync(env.engine, gateway, SyncOptions(), before_apply=racing)
    assert {(d.kind, d.action) for d in report.drift} == {
        ("missing_asset", "skipped: the row changed since the snapshot"),
        ("unrecorded", "skipped: the row changed since the snapshot"),
    }
    assert unrec["id"] in emulator.assets
    row3, row4 = env.lesson(3), env.lesson(4)
    assert row3 is not None and row3.mux_asset_id == "fresh-upload"
    assert row4 is not None and row4.mux_asset_id == "another-fresh"


def test_newest_of_several_unrecorded_assets_wins(
    env: Platform, emulator: Emulator, gateway: MuxGateway
) -> None:
    old = emulator.seed_asset(passthrough='{"course_id": 2}', created_at=OLD)
    new = emulator.seed_asset(passthrough='{"course_id": 2}', created_at=OLD + 60)
    report = reconcile.sync(env.engine, gateway, SyncOptions())
    assert {(d.kind, d.asset_id) for d in report.drift} == {
        ("unrecorded", new["id"]),
        ("orphan", old["id"]),
    }
    world = env.world(2)
    assert world is not None and world.mux_preview_asset_id == new["id"]
    assert reconcile.sync(env.engine, gateway, SyncOptions()).drift[0].kind == "orphan"
    assert Target(Kind.COURSE, 2) == reconcile.verify(env.engine, gateway).drift[0].target


def test_closing_a_journal_entry_is_compare_and_set(env: Platform) -> None:
    """An upload that finishes between sync's snapshot and its apply keeps its `done`."""
    entry = uploading_entry(env)
    assert entry.id is not None
    journal.update(env.engine, entry, state=State.DONE)  # the upload finished meanwhile
    with transaction(env.engine) as conn:
        assert journal.close_if(conn, entry.id, State.UPLOADING, "expired") is False
    with Session(env.engine) as s:
        row = s.get(UploadJournal, entry.id)
        assert row is not None and row.state == "done"
    with transaction(env.engine) as conn:
        assert journal.close_if(conn, entry.id, State.DONE, "test") is True


def uploading_entry(env: Platform, upload_id: str = "u1") -> UploadJournal:
    """A journal entry for lesson 1 mid-transfer, as the upload pipeline writes it."""
    return journal.create(
        env.engine,
        Target(Kind.LESSON, 1),
        file_path="/x.mp4",
        file_size=1,
        file_mtime_ns=1,
        chunk_size=262144,
        state=State.UPLOADING,
        upload_id=upload_id,
    )


def test_sync_keeps_an_upload_that_finished_between_its_plan_and_its_apply(
    env: Platform, emulator: Emulator, gateway: MuxGateway
) -> None:
    """Mux has no such upload: the plan closes the entry; the upload finishes first."""
    entry = uploading_entry(env, "not-on-mux")
    verified = reconcile.verify(env.engine, gateway).as_json()["journal"]
    assert [(j["action"], j["detail"]) for j in verified] == [("close", "Mux has no such upload")]
    dry = reconcile.sync(env.engine, gateway, SyncOptions(dry_run=True))
    assert [j.action for j in dry.journal] == ["would close"]

    def upload_finishes() -> None:
        journal.update(env.engine, entry, state=State.DONE)

    report = reconcile.sync(env.engine, gateway, SyncOptions(), before_apply=upload_finishes)
    assert [j.action for j in report.journal] == ["skipped: the upload moved on"]
    assert report.ok
    with Session(env.engine) as s:
        row = s.get(UploadJournal, entry.id)
        assert row is not None and row.state == "done"


def test_verify_and_sync_json_keep_their_keys_in_order(
    env: Platform, emulator: Emulator, gateway: MuxGateway
) -> None:
    env.set_lesson(1, "gone", "pb")
    uploading_entry(env, "not-on-mux")
    common = [
        "ok",
        "environment",
        "checked",
        "drift",
        "assets",
        "scope",
        "journal",
        "api_calls",
        "rate_limited",
    ]
    verified = reconcile.verify(env.engine, gateway).as_json()
    assert list(verified) == common
    assert list(verified["drift"][0]) == ["kind", "target", "asset_id", "detail"]
    synced = reconcile.sync(env.engine, gateway, SyncOptions()).as_json()
    assert list(synced) == [*common, "dry_run", "failed", "blocked"]
    assert list(synced["drift"][0]) == ["kind", "target", "asset_id", "detail", "action"]
    assert synced["drift"][0]["action"] == "cleared row"
    assert list(synced["journal"][0]) == [
        "journal_id",
        "target",
        "upload_id",
        "state",
        "detail",
        "action",
    ]
    assert synced["journal"][0]["state"] == "uploading"


def test_a_target_that_does_not_exist_is_refused_before_mux_is_asked(
    env: Platform, emulator: Emulator, gateway: MuxGateway
) -> None:
    ghost = Target(Kind.LESSON, 42)
    with pytest.raises(TargetNotFound):
        reconcile.verify(env.engine, gateway, ghost)
    with pytest.raises(TargetNotFound):
        status_mod.status(env.engine, gateway, ghost)
    with pytest.raises(TargetNotFound):
        delete_mod.plan_delete(env.engine, gateway, target=ghost)
    assert not [p for _, p, _ in emulator.request_log if p.startswith("/video/")]


def test_status_and_delete_through_the_library(
    env: Platform, emulator: Emulator, gateway: MuxGateway
) -> None:
    shared = emulator.seed_asset(passthrough='{"lesson_id": 1}', created_at=OLD)
    env.set_lesson(1, shared["id"], playback(shared))
    env.set_lesson(2, shared["id"], playback(shared))
    env.set_lesson(3, "gone", "pb")
    doc = status_mod.status(env.engine, gateway).as_json()
    by = {e["target"]["id"]: e for e in doc["targets"]}
    assert by[1]["shared_with"] == [lesson(2)] and by[1]["mux"]["status"] == "ready"
    assert by[3]["mux"] == {
        "status": "missing",
        "playback_ids": [],
        "captions": [],
        "renditions": [],
    }
    planned = delete_mod.plan_delete(env.engine, gateway, asset_id=shared["id"])
    assert planned.targets == [Target(Kind.LESSON, 1), Target(Kind.LESSON, 2)]
    result = delete_mod.delete(env.engine, gateway, planned)
    assert result.as_json()["cleared"] == [lesson(1), lesson(2)]
    assert shared["id"] not in emulator.assets
    assert env.tombstones() == [shared["id"]]
