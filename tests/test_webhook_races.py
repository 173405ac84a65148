"""Writers of one asset racing: no interleaving of ready, deleted, errored and duplicate
deliveries (nor sync, delete or an upload's record step) leaves a row naming a dead asset.

The deterministic races step two real handlers on their own connections: the first one holds
its transaction open in `before_commit` (its locks taken, its writes done) while the second
is started; the second must wait for the first, and the end state must be right. The stress
test fires racing pairs over HTTP at a real uvicorn server. Both run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from conftest import Platform
from sqlalchemy import insert
from test_webhooks import SECRET, Served, asset_data, event, post, ready

from vidpipe import journal
from vidpipe.db import TOMBSTONE_TTL, WebhookTombstone, transaction
from vidpipe.errors import UploadFailed
from vidpipe.mux import Asset
from vidpipe.pipeline import Pipeline
from vidpipe.reconcile.apply import SyncOutcome, apply
from vidpipe.reconcile.plan import Action, DriftKind, Plan, PlannedDrift
from vidpipe.records import remember_dead
from vidpipe.targets import Kind, Target
from vidpipe.webhooks import EventOutcome, Outcome, handle_event
from vidpipe.webhooks.serve import create_app

LESSON_1 = Target(Kind.LESSON, 1)
HELD = 0.5  # seconds the first handler keeps its transaction open for the second to arrive


def deleted(asset_id: str, **kw: Any) -> dict[str, Any]:
    return event("video.asset.deleted", asset_data(asset_id, status="deleted", **kw))


def errored(asset_id: str, **kw: Any) -> dict[str, Any]:
    return event("video.asset.errored", asset_data(asset_id, status="errored", **kw))


class Second:
    """The second handler, run on its own thread (and so its own connection)."""

    def __init__(self, platform: Platform, evt: dict[str, Any]) -> None:
        self.outcome: EventOutcome | None = None
        self.error: BaseException | None = None
        self.waited = False
        self.thread = threading.Thread(target=self._run, args=(platform, evt))

    def _run(self, platform: Platform, evt: dict[str, Any]) -> None:
        try:
            self.outcome = handle_event(platform.engine, evt)
        except BaseException as exc:  # reported by the test
            self.error = exc

    def start_and_hold(self, _first: EventOutcome) -> None:
        """`before_commit` of the first handler: start the second, give it time to reach
        its lock, and note whether it is still waiting when the first commits."""
        self.thread.start()
        self.thread.join(HELD)
        self.waited = self.thread.is_alive()

    def finish(self) -> EventOutcome:
        self.thread.join(30)
        assert not self.thread.is_alive(), "the second handler never finished (deadlock?)"
        assert self.error is None, repr(self.error)
        assert self.outcome is not None
        return self.outcome


def lesson_asset(platform: Platform, lesson_id: int = 1) -> str | None:
    row = platform.lesson(lesson_id)
    assert row is not None
    return row.mux_asset_id


# -- two handlers, stepped -------------------------------------------------------------------


@pytest.mark.parametrize("gone", [deleted, errored], ids=["deleted", "errored"])
def test_a_deleted_arriving_while_a_ready_is_recorded_clears_the_row(
    platform: Platform, gone: Any
) -> None:
    second = Second(platform, gone("A"))
    first = handle_event(platform.engine, ready("A"), before_commit=second.start_and_hold)
    other = second.finish()
    assert first.outcome is Outcome.RECORDED
    assert second.waited, "the gone event did not wait for the ready holding the asset"
    assert other.outcome is Outcome.CLEARED and other.targets == [LESSON_1]
    assert lesson_asset(platform) is None
    assert platform.tombstones() == ["A"]


@pytest.mark.parametrize("gone", [deleted, errored], ids=["deleted", "errored"])
def test_a_ready_arriving_while_a_deleted_is_applied_records_nothing(
    platform: Platform, gone: Any
) -> None:
    second = Second(platform, ready("A"))
    first = handle_event(platform.engine, gone("A"), before_commit=second.start_and_hold)
    other = second.finish()
    assert first.outcome is Outcome.DUPLICATE  # no row named it yet
    assert second.waited, "the ready did not wait for the gone event holding the asset"
    assert other.outcome is Outcome.STALE
    assert lesson_asset(platform) is None


def test_a_duplicate_ready_racing_a_deleted_leaves_no_dead_asset(platform: Platform) -> None:
    handle_event(platform.engine, ready("A"))
    second = Second(platform, deleted("A"))
    first = handle_event(platform.engine, ready("A"), before_commit=second.start_and_hold)
    other = second.finish()
    assert first.outcome is Outcome.DUPLICATE
    assert other.outcome is Outcome.CLEARED
    assert lesson_asset(platform) is None


# -- orders and tombstones first -------------------------------------------------------------


def test_ready_after_deleted_records_nothing(platform: Platform) -> None:
    assert handle_event(platform.engine, deleted("A")).outcome is Outcome.DUPLICATE
    assert handle_event(platform.engine, ready("A")).outcome is Outcome.STALE
    assert lesson_asset(platform) is None


def test_deleted_after_ready_clears_the_row(platform: Platform) -> None:
    assert handle_event(platform.engine, ready("A")).outcome is Outcome.RECORDED
    assert handle_event(platform.engine, deleted("A")).outcome is Outcome.CLEARED
    assert handle_event(platform.engine, deleted("A")).outcome is Outcome.DUPLICATE
    assert handle_event(platform.engine, ready("A")).outcome is Outcome.STALE
    assert lesson_asset(platform) is None


def test_errored_after_ready_clears_the_row(platform: Platform) -> None:
    handle_event(platform.engine, ready("A"))
    assert handle_event(platform.engine, errored("A")).outcome is Outcome.CLEARED
    assert lesson_asset(platform) is None


def tombstone_behind_the_row(platform: Platform, asset_id: str = "A") -> None:
    """A row naming an asset that has a tombstone (as the unserialized race left it)."""
    platform.set_lesson(1, asset_id, f"pb-{asset_id}")
    with transaction(platform.engine) as conn:
        remember_dead(conn, asset_id, "deleted on Mux")


def test_a_ready_for_a_dead_asset_the_row_names_clears_it(platform: Platform) -> None:
    tombstone_behind_the_row(platform)
    result = handle_event(platform.engine, ready("A"))
    assert result.outcome is Outcome.CLEARED and result.targets == [LESSON_1]
    assert lesson_asset(platform) is None


@pytest.mark.parametrize(
    "evt",
    [
        event("video.asset.updated", asset_data("A")),
        event("video.asset.static_renditions.ready", asset_data("A")),
        event("video.asset.track.ready", {"id": "T1", "asset_id": "A", "type": "text"}),
        ready("A", passthrough="not vidpipe's"),
        ready("A", policy="signed"),
        event("video.upload.asset_created", {"id": "U1", "asset_id": "A"}),
    ],
    ids=[
        "updated",
        "renditions",
        "track",
        "foreign-passthrough",
        "signed-only",
        "asset-created",
    ],
)
def test_any_event_for_a_dead_asset_clears_the_row_naming_it(
    platform: Platform, evt: dict[str, Any]
) -> None:
    tombstone_behind_the_row(platform)
    assert handle_event(platform.engine, evt).outcome is Outcome.CLEARED
    assert lesson_asset(platform) is None


def test_events_for_a_live_asset_leave_the_row_alone(platform: Platform) -> None:
    platform.set_lesson(1, "A", "pb-A")
    with transaction(platform.engine) as conn:
        remember_dead(conn, "B", "deleted on Mux")
    result = handle_event(platform.engine, event("video.asset.updated", asset_data("A")))
    assert result.outcome is Outcome.IGNORED
    assert handle_event(platform.engine, ready("A")).outcome is Outcome.DUPLICATE
    assert lesson_asset(platform) == "A"


# -- the other writers of an asset -----------------------------------------------------------


def test_sync_does_not_record_an_asset_that_died_after_its_snapshot(platform: Platform) -> None:
    handle_event(platform.engine, deleted("A"))  # after the snapshot saw A ready
    item = PlannedDrift(
        DriftKind.UNRECORDED,
        LESSON_1,
        "A",
        "a ready asset names lesson 1",
        Action.RECORD_ASSET,
        playback_id="pb-A",
        expect_asset_id=None,
    )
    plan = Plan(drift=(item,), journal=(), checked=1, assets=1, scope="all")
    [result] = apply(platform.engine, None, plan, dry_run=False)  # type: ignore[arg-type]
    assert result.outcome is SyncOutcome.ASSET_GONE
    assert lesson_asset(platform) is None


def test_an_upload_does_not_record_an_asset_deleted_since_it_was_ready(
    platform: Platform,
) -> None:
    entry = journal.create(
        platform.engine,
        LESSON_1,
        file_path="/videos/intro.mp4",
        file_size=1234,
        file_mtime_ns=1,
        chunk_size=256 * 1024,
        state=journal.State.ASSET_CREATED,
        upload_id="U1",
        asset_id="A",
    )
    handle_event(platform.engine, deleted("A"))
    # The upload's own asset (its upload ID, its target's passthrough), as Mux last showed it.
    asset = Asset.from_json(asset_data("A", upload_id="U1"))
    pipeline = Pipeline(platform.engine, None, None)  # type: ignore[arg-type]
    with pytest.raises(UploadFailed, match="deleted or errored"):
        pipeline.record(entry, asset)
    assert lesson_asset(platform) is None


# -- many racing pairs over HTTP ------------------------------------------------------------


PAIRS = 120


def test_racing_pairs_over_http_leave_no_row_naming_a_deleted_asset(platform: Platform) -> None:
    platform.add_lessons(range(4, PAIRS + 1))
    rng = random.Random(7)
    bodies: list[dict[str, Any]] = []
    for i in range(1, PAIRS + 1):
        asset = f"D{i}"
        passthrough = json.dumps({"lesson_id": i})
        gone = errored if i % 5 == 0 else deleted
        pair = [ready(asset, passthrough=passthrough), gone(asset)]
        rng.shuffle(pair)
        bodies += pair
        if i % 3 == 0:  # Mux redelivers: a duplicate overlapping the pair
            bodies.append(rng.choice(pair))
    app = create_app(platform.engine, SECRET)
    with Served(app) as served, ThreadPoolExecutor(max_workers=32) as pool:
        statuses = list(pool.map(lambda e: post(served.url, e).status_code, bodies))
    assert statuses == [200] * len(bodies)
    named = [row for row in platform.dump() if row[0] == "lesson" and row[2] is not None]
    assert named == [], f"{len(named)} rows name a deleted asset"
    assert len(platform.tombstones()) == PAIRS


# -- pruning in the server -------------------------------------------------------------------


def add_old_tombstone(platform: Platform, asset_id: str) -> None:
    old = int(time.time()) - TOMBSTONE_TTL - 60
    with transaction(platform.engine) as conn:
        conn.execute(
            insert(WebhookTombstone.__table__),  # type: ignore[attr-defined]
            {"asset_id": asset_id, "reason": "deleted long ago", "dead_at": old},
        )


def test_the_server_prunes_old_tombstones_at_most_once_an_interval(platform: Platform) -> None:
    add_old_tombstone(platform, "OLD1")
    lines: list[str] = []
    app = create_app(platform.engine, SECRET, log=lines.append)
    with Served(app) as served:
        assert post(served.url, deleted("NEW1")).status_code == 200
        assert platform.tombstones() == ["NEW1"]  # the old one went with the first event
        add_old_tombstone(platform, "OLD2")
        assert post(served.url, deleted("NEW2")).status_code == 200
    assert platform.tombstones() == ["NEW1", "NEW2", "OLD2"]  # not again within the hour
    assert any("pruned 1 tombstone" in line for line in lines)


def test_the_server_prunes_again_once_the_interval_has_passed(platform: Platform) -> None:
    app = create_app(platform.engine, SECRET, prune_every=0)
    with Served(app) as served:
        assert post(served.url, deleted("NEW1")).status_code == 200
        add_old_tombstone(platform, "OLD1")
        assert post(served.url, deleted("NEW2")).status_code == 200
    assert platform.tombstones() == ["NEW1", "NEW2"]
