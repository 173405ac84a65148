"""The planner, table by table: hand-built snapshots in, typed plans out.

No emulator, no database, no clock: `plan` is pure, so each rule of drift, of unfinished
uploads and of orphan pruning is one small snapshot and one assertion on the plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pytest

from vidpipe.assets import asset_meta
from vidpipe.journal import State
from vidpipe.mux import Asset, PlaybackId
from vidpipe.reconcile.plan import Action, DriftKind, Plan, PlannedDrift, SyncOptions, plan
from vidpipe.reconcile.snapshot import PendingUpload, Snapshot
from vidpipe.records import RowVideo
from vidpipe.targets import Kind, Target

NOW = 1_700_000_000.0
DAY = 86400
OLD = int(NOW) - 3 * DAY
YOUNG = int(NOW) - 600
L1, L2, L3 = Target(Kind.LESSON, 1), Target(Kind.LESSON, 2), Target(Kind.LESSON, 3)
L99 = Target(Kind.LESSON, 99)
C1 = Target(Kind.COURSE, 1)
PRUNE = SyncOptions(prune_orphans=True)


def asset(
    asset_id: str,
    target: Target | None = None,
    *,
    status: str = "ready",
    created_at: int | None = OLD,
    upload_id: str | None = None,
    passthrough: str | None = None,
    playback_ids: Iterable[str] | None = None,
    error: str | None = None,
) -> Asset:
    """A Mux asset; its passthrough names `target`, its public playback ID is `pb-ID`, its
    meta is what an upload for `target` sets."""
    pids = [f"pb-{asset_id}"] if playback_ids is None else list(playback_ids)
    meta = asset_meta(f"title of {target}", target.external_id) if target is not None else {}
    return Asset(
        id=asset_id,
        status=status,
        playback_ids=tuple(PlaybackId(p, "public") for p in pids),
        passthrough=target.passthrough if target is not None else passthrough,
        created_at=created_at,
        upload_id=upload_id,
        error=error,
        meta=meta,
    )


def row(target: Target, asset_id: str, playback_id: str | None = None) -> RowVideo:
    """A platform row that records `asset_id` (and its `pb-ID` unless told otherwise)."""
    pid = f"pb-{asset_id}" if playback_id is None else playback_id
    return RowVideo(target, f"title of {target}", asset_id, pid or None)


def pending(
    journal_id: int,
    target: Target,
    *,
    state: State = State.TRANSFERRED,
    upload_id: str | None = None,
    asset_id: str | None = None,
    replace_asset_id: str | None = None,
) -> PendingUpload:
    return PendingUpload(
        journal_id, target, state, upload_id or f"up-{journal_id}", asset_id, replace_asset_id
    )


def snap(
    rows: Iterable[RowVideo] = (),
    assets: Iterable[Asset] = (),
    *,
    pending_uploads: Iterable[PendingUpload] = (),
    uploads: Mapping[str, str | None] | None = None,
    target: Target | None = None,
) -> Snapshot:
    """A snapshot of a platform with lessons 1-3 and course 1."""
    return Snapshot(
        rows=list(rows),
        assets={a.id: a for a in assets},
        existing={Kind.LESSON: frozenset({1, 2, 3}), Kind.COURSE: frozenset({1})},
        pending=list(pending_uploads),
        uploads=dict(uploads or {}),
        target=target,
    )


def drift(p: Plan) -> set[tuple[DriftKind, Target | None, str | None, Action]]:
    return {(d.kind, d.target, d.asset_id, d.action) for d in p.drift}


def only(p: Plan, kind: DriftKind) -> PlannedDrift:
    (item,) = [d for d in p.drift if d.kind is kind]
    return item


def entries(p: Plan) -> list[tuple[int, Action, str]]:
    return [(e.journal_id, e.action, e.detail) for e in p.journal]


# -- drift ----------------------------------------------------------------------------------------


def test_a_row_naming_an_asset_mux_lacks_is_missing_and_its_row_is_cleared() -> None:
    p = plan(snap([row(L1, "gone")]))
    item = only(p, DriftKind.MISSING)
    assert (item.target, item.asset_id, item.action) == (L1, "gone", Action.CLEAR_ROW)
    assert item.expect_asset_id == "gone"
    assert item.detail == "Mux has no asset gone (404)"
    assert len(p.drift) == 1


ERRORED_BAD = asset("bad", L1, status="errored", error="not a video")


@pytest.mark.parametrize(
    ("rows", "options", "expected"),
    [
        pytest.param(
            [row(L1, "bad")],
            SyncOptions(),
            {(DriftKind.ERRORED, L1, "bad", Action.CLEAR_ROW)},
            id="its row records it: one item, the row cleared",
        ),
        pytest.param(
            [row(L1, "bad")],
            SyncOptions(prune_orphans=True, dry_run=True),
            {(DriftKind.ERRORED, L1, "bad", Action.CLEAR_ROW)},
            id="pruning asked: still only the row cleared",
        ),
        pytest.param(
            [row(L1, "bad"), row(L2, "bad")],
            PRUNE,
            {
                (DriftKind.ERRORED, L1, "bad", Action.CLEAR_ROW),
                (DriftKind.ERRORED, L2, "bad", Action.CLEAR_ROW),
            },
            id="two rows record it: each cleared, nothing deleted",
        ),
        pytest.param(
            [row(L2, "bad")],
            PRUNE,
            {(DriftKind.ERRORED, L2, "bad", Action.CLEAR_ROW)},
            id="another row than its passthrough's records it",
        ),
        pytest.param(
            [],
            SyncOptions(),
            {(DriftKind.ORPHAN, L1, "bad", Action.REPORT)},
            id="a later run, no row names it: an orphan, reported",
        ),
        pytest.param(
            [],
            PRUNE,
            {(DriftKind.ORPHAN, L1, "bad", Action.PRUNE)},
            id="a later run with pruning: deleted (old enough)",
        ),
    ],
)
def test_an_errored_asset_a_row_records_is_one_item_and_an_orphan_only_once_unrecorded(
    rows: list[RowVideo],
    options: SyncOptions,
    expected: set[tuple[DriftKind, Target | None, str | None, Action]],
) -> None:
    p = plan(snap(rows, [ERRORED_BAD]), options, now=NOW)
    assert drift(p) == expected
    assert len(p.drift) == len(expected)
    for item in p.drift:
        if item.kind is DriftKind.ERRORED:
            assert item.detail == "asset bad errored: not a video"
            assert item.expect_asset_id == "bad"


@pytest.mark.parametrize("recorded", ["stale-playback", ""], ids=["a stale ID", "no ID at all"])
def test_a_row_without_one_of_its_ready_assets_playback_ids_gets_the_public_one(
    recorded: str,
) -> None:
    p = plan(snap([row(L1, "a1", recorded)], [asset("a1", L1)]))
    item = only(p, DriftKind.MISMATCH)
    assert (item.target, item.asset_id, item.action) == (L1, "a1", Action.WRITE_PLAYBACK)
    assert item.playback_id == "pb-a1"
    assert (item.expect_asset_id, item.expect_playback_id) == ("a1", recorded or None)
    assert len(p.drift) == 1


def test_a_ready_asset_naming_an_empty_row_is_unrecorded_and_gets_recorded() -> None:
    p = plan(snap([], [asset("a2", L2)]))
    item = only(p, DriftKind.UNRECORDED)
    assert (item.target, item.asset_id, item.action) == (L2, "a2", Action.RECORD_ASSET)
    assert (item.playback_id, item.expect_asset_id, item.journal_id) == ("pb-a2", None, None)
    assert item.detail == "ready asset for lesson 2 is not recorded"


@pytest.mark.parametrize(
    ("rows", "assets", "orphan", "why"),
    [
        pytest.param([], [asset("x", L99)], "x", "lesson 99 does not exist", id="row missing"),
        pytest.param(
            [row(L1, "mine")],
            [asset("mine", L1), asset("other", L1, created_at=OLD - 60)],
            "other",
            "lesson 1 records another asset (mine)",
            id="row records another asset",
        ),
        pytest.param(
            [],
            [asset("bad", L1, status="errored")],
            "bad",
            "errored and recorded nowhere (no reason)",
            id="errored and recorded nowhere",
        ),
        pytest.param(
            [],
            [asset("new", C1, created_at=OLD + 60), asset("old", C1)],
            "old",
            "course 1 gets a newer asset of its own",
            id="a newer asset claims the row",
        ),
    ],
)
def test_an_asset_no_row_can_take_is_an_orphan_and_only_reported(
    rows: list[RowVideo], assets: list[Asset], orphan: str, why: str
) -> None:
    item = only(plan(snap(rows, assets)), DriftKind.ORPHAN)
    assert (item.asset_id, item.action) == (orphan, Action.REPORT)
    assert item.detail == f"asset {orphan}: {why}"


@pytest.mark.parametrize(
    "passthrough",
    [None, "hello", "not json {", '{"user": 5}', '{"lesson_id": "2"}', '{"lesson_id": 2, "x": 1}'],
)
@pytest.mark.parametrize("status", ["ready", "errored"])
def test_assets_whose_passthrough_is_not_vidpipes_are_never_drift(
    passthrough: str | None, status: str
) -> None:
    p = plan(snap([], [asset("foreign", passthrough=passthrough, status=status)]), PRUNE, now=NOW)
    assert p.drift == () and p.journal == ()


def test_preparing_assets_are_not_drift_named_or_not() -> None:
    p = plan(
        snap(
            [row(L1, "busy", "not-yet")],
            [
                asset("busy", L1, status="preparing"),
                asset("p2", L2, status="preparing"),
                asset("p99", L99, status="preparing"),
            ],
        )
    )
    assert p.drift == ()


def test_a_healthy_asset_shared_by_two_rows_is_not_drift() -> None:
    p = plan(snap([row(L1, "shared"), row(L2, "shared")], [asset("shared", L1)]))
    assert p.drift == ()
    assert (p.checked, p.assets, p.scope) == (2, 1, "all")


def test_the_newest_of_several_ready_assets_wins_an_empty_row() -> None:
    p = plan(
        snap(
            [],
            [
                asset("older", L2, created_at=OLD),
                asset("newest", L2, created_at=OLD + 120),
                asset("middle", L2, created_at=OLD + 60),
            ],
        )
    )
    assert drift(p) == {
        (DriftKind.UNRECORDED, L2, "newest", Action.RECORD_ASSET),
        (DriftKind.ORPHAN, L2, "middle", Action.REPORT),
        (DriftKind.ORPHAN, L2, "older", Action.REPORT),
    }


def test_an_asset_naming_a_row_being_cleared_is_recorded_on_it_in_the_same_plan() -> None:
    p = plan(snap([row(L1, "gone")], [asset("newer", L1)]))
    assert drift(p) == {
        (DriftKind.MISSING, L1, "gone", Action.CLEAR_ROW),
        (DriftKind.UNRECORDED, L1, "newer", Action.RECORD_ASSET),
    }
    item = only(p, DriftKind.UNRECORDED)
    # Recorded on the row as the clearing leaves it: empty.
    assert item.expect_asset_id is None
    assert item.detail.endswith("(it replaces gone, which is being cleared)")
    assert [d.kind for d in p.drift] == [DriftKind.MISSING, DriftKind.UNRECORDED]


def test_a_snapshot_of_one_target_judges_only_the_assets_its_uploads_expect() -> None:
    stray = asset("stray", L1, created_at=OLD - 60)
    p = plan(snap([row(L1, "a1")], [asset("a1", L1), stray], target=L1))
    assert p.drift == ()
    assert p.scope == "lesson 1"
    expected = asset("mine", L1, upload_id="up-4", created_at=OLD + 60)
    p = plan(
        snap(
            [row(L1, "a1")],
            [asset("a1", L1), stray, expected],
            pending_uploads=[pending(4, L1)],
            target=L1,
        )
    )
    assert drift(p) == {(DriftKind.ORPHAN, L1, "mine", Action.REPORT)}


# -- unfinished uploads ---------------------------------------------------------------------------


def test_an_upload_whose_asset_its_row_already_records_is_finished() -> None:
    p = plan(
        snap(
            [row(L1, "a1", "pb-recorded")],
            [asset("a1", L1, upload_id="up-7", playback_ids=["pb-recorded"])],
            pending_uploads=[pending(7, L1)],
        )
    )
    (entry,) = p.journal
    assert (entry.journal_id, entry.action, entry.state) == (
        7,
        Action.FINISH_ENTRY,
        State.TRANSFERRED,
    )
    assert (entry.asset_id, entry.playback_id) == ("a1", "pb-recorded")
    assert entry.detail == "asset a1 is already recorded on lesson 1"
    assert p.drift == ()


def test_an_upload_whose_errored_asset_its_row_records_is_closed_not_finished() -> None:
    p = plan(
        snap(
            [row(L1, "bad")],
            [asset("bad", L1, status="errored", upload_id="up-7")],
            pending_uploads=[pending(7, L1, asset_id="bad")],
        )
    )
    assert entries(p) == [(7, Action.CLOSE_ENTRY, "asset bad is already recorded")]
    assert only(p, DriftKind.ERRORED).action is Action.CLEAR_ROW


def test_an_upload_whose_asset_another_row_records_is_closed() -> None:
    p = plan(
        snap(
            [row(L2, "a1")],
            [asset("a1", L1, upload_id="up-3")],
            pending_uploads=[pending(3, L1)],
        )
    )
    assert entries(p) == [(3, Action.CLOSE_ENTRY, "asset a1 is already recorded")]


def test_an_upload_whose_asset_mux_answered_404_for_is_closed() -> None:
    p = plan(
        snap([], [], pending_uploads=[pending(4, L1, state=State.ASSET_CREATED, asset_id="gone")])
    )
    assert entries(p) == [(4, Action.CLOSE_ENTRY, "asset gone is gone from Mux (404)")]
    assert p.drift == ()


def test_an_upload_whose_asset_errored_is_closed_once() -> None:
    p = plan(
        snap(
            [],
            [asset("bad", L1, status="errored")],
            pending_uploads=[pending(5, L1, asset_id="bad")],
        )
    )
    assert entries(p) == [(5, Action.CLOSE_ENTRY, "asset bad errored")]
    assert drift(p) == {(DriftKind.ORPHAN, L1, "bad", Action.REPORT)}


@pytest.mark.parametrize(
    ("upload_status", "action", "detail"),
    [
        pytest.param(None, Action.CLOSE_ENTRY, "Mux has no such upload", id="Mux answered 404"),
        pytest.param("timed_out", Action.CLOSE_ENTRY, "Mux upload is timed_out", id="timed out"),
        pytest.param("cancelled", Action.CLOSE_ENTRY, "Mux upload is cancelled", id="cancelled"),
        pytest.param("errored", Action.CLOSE_ENTRY, "Mux upload is errored", id="errored"),
        pytest.param(
            "waiting",
            Action.NONE,
            "upload still waiting for bytes (re-run the upload to resume)",
            id="still waiting",
        ),
        pytest.param(
            "asset_created",
            Action.NONE,
            "upload is asset_created; asset not ready yet",
            id="asset on its way",
        ),
    ],
)
def test_an_upload_with_no_asset_is_judged_by_what_mux_says_of_the_upload(
    upload_status: str | None, action: Action, detail: str
) -> None:
    p = plan(snap(pending_uploads=[pending(6, L2)], uploads={"up-6": upload_status}))
    assert entries(p) == [(6, action, detail)]
    assert p.drift == ()


def test_an_upload_mux_was_not_asked_about_is_left_alone() -> None:
    p = plan(snap(pending_uploads=[pending(6, L2)]))
    assert entries(p) == [(6, Action.NONE, "")]


def test_an_upload_whose_ready_asset_is_unrecorded_is_finished_by_recording_it() -> None:
    p = plan(snap([], [asset("a2", L2, upload_id="up-8")], pending_uploads=[pending(8, L2)]))
    item = only(p, DriftKind.UNRECORDED)
    assert (item.asset_id, item.action, item.journal_id) == ("a2", Action.RECORD_ASSET, 8)
    assert p.journal == ()


def test_an_upload_of_one_target_finds_its_asset_by_upload_in_a_targeted_snapshot() -> None:
    p = plan(
        snap([], [asset("a2", L2, upload_id="up-8")], pending_uploads=[pending(8, L2)], target=L2)
    )
    assert drift(p) == {(DriftKind.UNRECORDED, L2, "a2", Action.RECORD_ASSET)}
    assert only(p, DriftKind.UNRECORDED).journal_id == 8


def test_an_upload_replacing_the_rows_video_records_its_asset_over_the_old_one() -> None:
    p = plan(
        snap(
            [row(L1, "old")],
            [asset("old", L1), asset("new", L1, upload_id="up-9", created_at=OLD + 60)],
            pending_uploads=[pending(9, L1, replace_asset_id="old")],
        )
    )
    item = only(p, DriftKind.UNRECORDED)
    assert (item.asset_id, item.expect_asset_id, item.journal_id) == ("new", "old", 9)
    assert item.detail == "ready asset for lesson 1 is not recorded (it replaces old)"
    assert len(p.drift) == 1 and p.journal == ()


def test_an_upload_whose_asset_became_an_orphan_is_closed_with_the_orphans_detail() -> None:
    p = plan(
        snap(
            [row(L1, "theirs")],
            [asset("theirs", L1), asset("mine", L1, upload_id="up-2")],
            pending_uploads=[pending(2, L1)],
        )
    )
    orphan = only(p, DriftKind.ORPHAN)
    assert orphan.asset_id == "mine"
    assert entries(p) == [(2, Action.CLOSE_ENTRY, orphan.detail)]
    assert "theirs" in orphan.detail


def test_an_upload_whose_asset_is_still_preparing_is_left_alone() -> None:
    p = plan(
        snap(
            [],
            [asset("mine", L1, upload_id="up-2", status="preparing")],
            pending_uploads=[pending(2, L1)],
        )
    )
    assert p.drift == () and p.journal == ()


# -- orphan pruning -------------------------------------------------------------------------------


def orphans(*created: int | None) -> Snapshot:
    """Orphans (their lessons do not exist) o0, o1, ... created at the given times."""
    return snap(
        [],
        [asset(f"o{i}", Target(Kind.LESSON, 50 + i), created_at=c) for i, c in enumerate(created)],
    )


def actions(p: Plan) -> dict[str | None, Action]:
    return {d.asset_id: d.action for d in p.drift}


def test_orphans_are_only_reported_unless_pruning_is_asked() -> None:
    assert actions(plan(orphans(OLD, OLD), now=NOW)) == {"o0": Action.REPORT, "o1": Action.REPORT}


def test_pruning_keeps_orphans_younger_than_the_minimum_age() -> None:
    p = plan(orphans(OLD, YOUNG, None), PRUNE, now=NOW)
    # An asset Mux gave no creation time counts as brand new.
    assert actions(p) == {
        "o0": Action.PRUNE,
        "o1": Action.KEEP_TOO_YOUNG,
        "o2": Action.KEEP_TOO_YOUNG,
    }
    shorter = SyncOptions(prune_orphans=True, orphan_min_age=300)
    assert actions(plan(orphans(OLD, YOUNG), shorter, now=NOW)) == {
        "o0": Action.PRUNE,
        "o1": Action.PRUNE,
    }


@pytest.mark.parametrize(("limit", "pruned"), [(0, 0), (1, 1), (3, 3), (10, 4)])
def test_pruning_stops_at_the_per_run_deletion_limit(limit: int, pruned: int) -> None:
    options = SyncOptions(prune_orphans=True, max_deletes=limit)
    p = plan(orphans(OLD, OLD + 1, OLD + 2, OLD + 3, YOUNG), options, now=NOW)
    got = sorted(d.action.name for d in p.drift)
    assert got == sorted(["PRUNE"] * pruned + ["KEEP_LIMIT"] * (4 - pruned) + ["KEEP_TOO_YOUNG"])
    # The newest old orphans come first.
    assert [d.asset_id for d in p.drift if d.action is Action.PRUNE] == ["o3", "o2", "o1", "o0"][
        :pruned
    ]


def test_a_dry_run_plans_the_same_deletions_as_a_real_run() -> None:
    snapshot = orphans(OLD, OLD + 1, YOUNG)
    dry = SyncOptions(dry_run=True, prune_orphans=True, max_deletes=1)
    real = SyncOptions(dry_run=False, prune_orphans=True, max_deletes=1)
    assert plan(snapshot, dry, now=NOW) == plan(snapshot, real, now=NOW)
    assert sorted(a.name for a in actions(plan(snapshot, dry, now=NOW)).values()) == [
        "KEEP_LIMIT",
        "KEEP_TOO_YOUNG",
        "PRUNE",
    ]


def test_pruning_leaves_the_repairs_as_they_are() -> None:
    snapshot = snap([row(L1, "gone")], [asset("a2", L2), asset("ghost", L99)])
    reported, pruned = plan(snapshot), plan(snapshot, PRUNE, now=NOW)
    assert [d for d in reported.drift if d.kind is not DriftKind.ORPHAN] == [
        d for d in pruned.drift if d.kind is not DriftKind.ORPHAN
    ]
    assert actions(pruned)["ghost"] is Action.PRUNE


def test_pruning_without_the_current_time_is_refused() -> None:
    with pytest.raises(ValueError, match="current time"):
        plan(orphans(OLD), PRUNE)


# -- the mass-change guard --------------------------------------------------------------------


def test_a_plan_clearing_more_rows_than_the_limit_is_blocked_whole() -> None:
    rows = [row(L1, "gone-1"), row(L2, "gone-2"), row(L3, "bad")]
    p = plan(
        snap(rows, [asset("bad", L3, status="errored")], pending_uploads=[pending(7, L1)]),
        SyncOptions(max_clears=2),
    )
    assert p.blocked is not None
    assert (p.blocked.clears, p.blocked.max_clears) == (3, 2)
    assert "--" not in p.blocked.reason  # the core names no option
    # The plan still says what it would do: the report shows it.
    assert {d.action for d in p.drift if d.kind is not DriftKind.ORPHAN} == {Action.CLEAR_ROW}


def test_a_plan_clearing_exactly_the_limit_is_not_blocked() -> None:
    rows = [row(L1, "gone-1"), row(L2, "gone-2")]
    assert plan(snap(rows), SyncOptions(max_clears=2)).blocked is None
    assert plan(snap(rows), SyncOptions(max_clears=1)).blocked is not None


def test_repairs_other_than_clears_do_not_count_towards_the_limit() -> None:
    rows = [row(L1, "A", playback_id="pb-wrong")]
    p = plan(snap(rows, [asset("A", L1), asset("B", L2)]), SyncOptions(max_clears=0))
    assert p.blocked is None
    assert {d.action for d in p.drift} == {Action.WRITE_PLAYBACK, Action.RECORD_ASSET}


def test_no_limit_never_blocks() -> None:
    rows = [row(L1, "gone-1"), row(L2, "gone-2"), row(L3, "gone-3")]
    assert plan(snap(rows), SyncOptions(max_clears=None)).blocked is None
