"""Mux webhooks: signatures, every event type through the writers, and the served endpoint."""

from __future__ import annotations

import json
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlmodel
import uvicorn
from conftest import WEBHOOK_SECRET, Platform, Result
from serve_helpers import ServeProcess
from sqlalchemy import Engine
from sqlmodel import Session

from vidpipe import journal
from vidpipe.assets import Policies
from vidpipe.db import (
    Lesson,
    UploadJournal,
    WebhookTombstone,
    World,
    init_db,
    make_engine,
)
from vidpipe.emulator.webhooks import DEFAULT_ENVIRONMENT
from vidpipe.errors import MuxServerError, UsageError, VidpipeError, WebhookRejected
from vidpipe.mux import Asset
from vidpipe.targets import Kind, Target
from vidpipe.webhooks import (
    BadSignature,
    EventOutcome,
    MalformedEvent,
    MissingSignature,
    StaleSignature,
    apply_payload,
    handle_event,
    sign,
    verify_signature,
)
from vidpipe.webhooks.serve import bind, create_app, http_status, server_config

SECRET = "whsec-test-0123456789abcdef"
LESSON = Target(Kind.LESSON, 1)
COURSE = Target(Kind.COURSE, 1)
N_LESSONS = 24


# -- fixtures and helpers ------------------------------------------------------------------


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = make_engine(f"sqlite:///{tmp_path / 'platform.db'}")
    init_db(eng)
    with Session(eng) as session:
        for i in range(1, N_LESSONS + 1):
            session.add(Lesson(id=i, title=f"Lesson {i}"))
        session.add(World(id=1, title="Course 1"))
        session.commit()
    yield eng
    eng.dispose()


def asset_data(
    asset_id: str,
    *,
    passthrough: str | None = '{"lesson_id": 1}',
    status: str = "ready",
    playback: str | None = None,
    upload_id: str | None = None,
    policy: str = "public",
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": asset_id,
        "status": status,
        "created_at": 1700000000,  # webhook data carries integers here
        "playback_ids": [{"id": playback or f"pb-{asset_id}", "policy": policy}],
    }
    if passthrough is not None:
        data["passthrough"] = passthrough
    if upload_id is not None:
        data["upload_id"] = upload_id
    return data


def event(event_type: str, data: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    kind = "upload" if event_type.startswith("video.upload.") else "asset"
    return {
        "type": event_type,
        "id": event_id or f"evt-{event_type}-{data['id']}",
        "created_at": "2024-01-01T00:00:00.000Z",
        "object": {"type": kind, "id": data["id"]},
        # the environment the `env` fixture pins its database to (the emulator's default)
        "environment": dict(DEFAULT_ENVIRONMENT),
        "data": data,
    }


def ready(asset_id: str, **kw: Any) -> dict[str, Any]:
    return event("video.asset.ready", asset_data(asset_id, **kw))


def row(engine: Engine, target: Target = LESSON) -> tuple[str | None, str | None]:
    with Session(engine) as session:
        if target.kind is Kind.LESSON:
            lesson = session.get(Lesson, target.id)
            assert lesson is not None
            return lesson.mux_asset_id, lesson.mux_playback_id
        world = session.get(World, target.id)
        assert world is not None
        return world.mux_preview_asset_id, world.mux_preview_playback_id


def put_video(engine: Engine, asset_id: str, target: Target = LESSON) -> None:
    with Session(engine) as session:
        if target.kind is Kind.LESSON:
            obj: Any = session.get(Lesson, target.id)
            obj.mux_asset_id, obj.mux_playback_id = asset_id, f"pb-{asset_id}"
        else:
            obj = session.get(World, target.id)
            obj.mux_preview_asset_id, obj.mux_preview_playback_id = asset_id, f"pb-{asset_id}"
        session.add(obj)
        session.commit()


def add_entry(engine: Engine, target: Target = LESSON, **fields: Any) -> UploadJournal:
    base: dict[str, Any] = {
        "file_path": "/videos/intro.mp4",
        "file_size": 1234,
        "file_mtime_ns": 1,
        "chunk_size": 256 * 1024,
        "state": "transferred",
        "upload_id": "up-1",
    }
    base.update(fields)
    return journal.create(engine, target, **base)


def entry(engine: Engine, entry_id: int | None) -> UploadJournal:
    with Session(engine) as session:
        found = session.get(UploadJournal, entry_id)
        assert found is not None
        return found


class FakeGateway:
    """The slice of MuxGateway that webhooks use; deleting is a test failure."""

    def __init__(self, assets: dict[str, Asset] | None = None, fail: bool = False) -> None:
        self.assets = assets or {}
        self.fail = fail
        self.calls: list[str] = []

    def find_asset(self, asset_id: str) -> Asset | None:
        self.calls.append(asset_id)
        if self.fail:
            raise MuxServerError("Mux failed (502) to get asset", status=502)
        return self.assets.get(asset_id)

    def delete_asset(self, asset_id: str) -> bool:  # pragma: no cover - must not be called
        raise AssertionError("webhooks must never delete assets")


def tombstones(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return sorted(t.asset_id for t in session.exec(sqlmodel.select(WebhookTombstone)))


def handle(engine: Engine, evt: dict[str, Any], **kw: Any) -> EventOutcome:
    return handle_event(engine, evt, **kw)


# -- signatures ----------------------------------------------------------------------------

BODY = b'{"type":"video.asset.ready","id":"e1","data":{"id":"a1"}}'
NOW = 1_700_000_000


class TestSignature:
    def test_sign_then_verify(self) -> None:
        verify_signature(SECRET, sign(SECRET, BODY, timestamp=NOW), BODY, now=NOW)

    def test_sign_defaults_to_now(self) -> None:
        header = sign(SECRET, BODY)
        t = int(header.split(",")[0].removeprefix("t="))
        assert abs(t - time.time()) < 5
        verify_signature(SECRET, header, BODY)

    def test_any_of_several_v1_may_match(self) -> None:
        good = sign(SECRET, BODY, timestamp=NOW).split("v1=")[1]
        header = f"t={NOW},v1={'0' * 64},v0=abc,v1={good},v1=zz"
        verify_signature(SECRET, header, BODY, now=NOW)

    def test_whitespace_around_parts_is_tolerated(self) -> None:
        good = sign(SECRET, BODY, timestamp=NOW).split("v1=")[1]
        verify_signature(SECRET, f" t={NOW} , v1={good} ", BODY, now=NOW)

    @pytest.mark.parametrize(
        "header",
        [
            pytest.param(sign("another-secret", BODY, timestamp=NOW), id="wrong-secret"),
            pytest.param(f"t={NOW},v1={'ab' * 32}", id="forged"),
            pytest.param(f"t={NOW + 1},v1=" + sign(SECRET, BODY, timestamp=NOW)[13:], id="t-moved"),
            pytest.param(f"t={NOW},v1=ünïcødé", id="non-ascii-v1"),
        ],
    )
    def test_forged_is_401(self, header: str) -> None:
        with pytest.raises(WebhookRejected) as info:
            verify_signature(SECRET, header, BODY, now=NOW)
        assert http_status(info.value) == 401
        assert not isinstance(info.value, StaleSignature)

    def test_other_body_fails(self) -> None:
        with pytest.raises(WebhookRejected):
            verify_signature(SECRET, sign(SECRET, BODY, timestamp=NOW), BODY + b" ", now=NOW)

    @pytest.mark.parametrize(
        ("offset", "word"), [(-301, "old"), (301, "future"), (-3600, "old"), (86400, "future")]
    )
    def test_out_of_tolerance(self, offset: int, word: str) -> None:
        header = sign(SECRET, BODY, timestamp=NOW + offset)
        with pytest.raises(StaleSignature, match=word) as info:
            verify_signature(SECRET, header, BODY, now=NOW)
        assert http_status(info.value) == 401

    @pytest.mark.parametrize("offset", [-300, 300, 0])
    def test_tolerance_edges_accepted(self, offset: int) -> None:
        verify_signature(SECRET, sign(SECRET, BODY, timestamp=NOW + offset), BODY, now=NOW)

    @pytest.mark.parametrize(
        "header",
        [
            pytest.param(None, id="none"),
            pytest.param("", id="empty"),
            pytest.param("   ", id="blank"),
            pytest.param("v1=" + "ab" * 32, id="missing-t"),
            pytest.param(f"t={NOW}", id="missing-v1"),
            pytest.param(f"t={NOW},v0=abc", id="only-v0"),
            pytest.param("garbage", id="garbage"),
            pytest.param("t=yesterday,v1=ab", id="t-not-a-number"),
            pytest.param("t=-5,v1=ab", id="t-negative"),
            pytest.param(f"t={NOW},t={NOW},v1=ab", id="two-t"),
            pytest.param(f"t={NOW}," + ",".join(["v1=ab"] * 40), id="too-many-v1"),
        ],
    )
    def test_unsigned_or_garbled_is_400(self, header: str | None) -> None:
        with pytest.raises(WebhookRejected) as info:
            verify_signature(SECRET, header, BODY, now=NOW)
        assert http_status(info.value) == 400

    def test_messages_never_contain_secret_or_signature(self) -> None:
        header = sign("wrong", BODY, timestamp=NOW - 1000)
        for h in (header, sign(SECRET, BODY, timestamp=NOW - 1000), "t=1,v1=" + SECRET):
            with pytest.raises(WebhookRejected) as info:
                verify_signature(SECRET, h, BODY, now=NOW)
            text = str(info.value)
            assert SECRET not in text and h.split("v1=")[1] not in text
            assert "\n" not in text


# -- video.asset.ready ---------------------------------------------------------------------


class TestAssetReady:
    def test_records_on_an_empty_row(self, engine: Engine) -> None:
        out = handle(engine, ready("A"))
        assert out.outcome == "recorded" and out.targets == [LESSON]
        assert row(engine) == ("A", "pb-A")
        assert out.as_json()["targets"] == [{"kind": "lesson", "id": 1}]

    def test_records_a_course_preview(self, engine: Engine) -> None:
        out = handle(engine, ready("C", passthrough='{"course_id": 1}'))
        assert out.outcome == "recorded"
        assert row(engine, COURSE) == ("C", "pb-C")

    def test_duplicate_is_harmless(self, engine: Engine) -> None:
        handle(engine, ready("A"))
        out = handle(engine, ready("A"))
        assert out.outcome == "duplicate"
        assert row(engine) == ("A", "pb-A")

    def test_public_playback_id_is_the_one_recorded(self, engine: Engine) -> None:
        data = asset_data("A")
        data["playback_ids"] = [
            {"id": "signed-1", "policy": "signed"},
            {"id": "public-1", "policy": "public"},
        ]
        handle(engine, event("video.asset.ready", data))
        assert row(engine) == ("A", "public-1")

    def test_the_signed_playback_id_is_recorded_when_lessons_are_signed(
        self, engine: Engine
    ) -> None:
        data = asset_data("A")
        data["playback_ids"] = [
            {"id": "public-1", "policy": "public"},
            {"id": "signed-1", "policy": "signed"},
        ]
        handle(engine, event("video.asset.ready", data), policies=Policies(lesson="signed"))
        assert row(engine) == ("A", "signed-1")

    def test_only_a_live_answer_changes_a_recorded_playback_id(self, engine: Engine) -> None:
        handle(engine, ready("A"))
        assert handle(engine, ready("A", playback="pb-old")).outcome == "duplicate"
        assert row(engine) == ("A", "pb-A")
        gateway = FakeGateway({"A": Asset.from_json(asset_data("A", playback="pb-live"))})
        out = handle(engine, ready("A"), gateway=gateway)
        assert out.outcome == "recorded"
        assert row(engine) == ("A", "pb-live")

    @pytest.mark.parametrize(
        "passthrough",
        [None, "", "not json", '{"user": 7}', '{"lesson_id": "1"}', '{"lesson_id": 1, "x": 2}'],
    )
    def test_foreign_passthrough_is_ignored(self, engine: Engine, passthrough: str | None) -> None:
        out = handle(engine, ready("A", passthrough=passthrough))
        assert out.outcome == "ignored"
        assert row(engine) == (None, None)

    def test_missing_row_is_ignored(self, engine: Engine) -> None:
        out = handle(engine, ready("A", passthrough='{"lesson_id": 999}'))
        assert out.outcome == "ignored"

    def test_an_asset_without_the_configured_policy_gets_its_other_id_recorded(
        self, engine: Engine
    ) -> None:
        # An upload made signed by exception on a public platform: recorded, and `verify`
        # reports the policy mismatch, rather than the row staying empty.
        out = handle(engine, ready("A", policy="signed"))
        assert out.outcome == "recorded"
        assert row(engine) == ("A", "pb-A")

    def test_an_asset_with_no_playback_id_is_ignored(self, engine: Engine) -> None:
        data = asset_data("A")
        data["playback_ids"] = []
        out = handle(engine, event("video.asset.ready", data))
        assert out.outcome == "ignored" and "no playback ID" in out.detail
        assert row(engine) == (None, None)

    def test_older_assets_late_ready_does_not_replace_newer_video(self, engine: Engine) -> None:
        handle(engine, ready("NEW"))
        out = handle(engine, ready("OLD"))
        assert out.outcome == "stale"
        assert row(engine) == ("NEW", "pb-NEW")

    @pytest.mark.parametrize("kind", ["video.asset.deleted", "video.asset.errored"])
    def test_ready_after_gone_is_stale(self, engine: Engine, kind: str) -> None:
        # Nothing is shared between the two calls but the database: as after a restart, or
        # with the events delivered to two different `webhook serve` processes.
        gone = handle(engine, event(kind, asset_data("A", status="errored")))
        assert gone.outcome == "duplicate"  # nothing named it yet
        assert tombstones(engine) == ["A"]
        out = handle(engine, ready("A"))
        assert out.outcome == "stale" and "deleted or errored" in out.detail
        assert row(engine) == (None, None)
        # Another asset for the same row is still recorded.
        assert handle(engine, ready("B")).outcome == "recorded"
        assert row(engine) == ("B", "pb-B")

    def test_ready_after_deleted_of_a_journaled_upload_is_stale(self, engine: Engine) -> None:
        add_entry(engine, upload_id="up-1")
        deleted = event("video.asset.deleted", asset_data("A", upload_id="up-1"))
        assert handle(engine, deleted).outcome == "journal-updated"
        # A fresh process (no memory): the journal alone remembers the asset is dead.
        out = handle(engine, ready("A", upload_id="up-1"))
        assert out.outcome == "stale"
        assert row(engine) == (None, None)

    def test_replaced_asset_is_not_brought_back(self, engine: Engine) -> None:
        add_entry(engine, state="done", asset_id="NEW", replace_asset_id="OLD")
        out = handle(engine, ready("OLD"))
        assert out.outcome == "stale"
        assert row(engine) == (None, None)

    def test_upload_in_progress_is_not_preempted(self, engine: Engine) -> None:
        add_entry(engine, upload_id="up-mine", state="uploading")
        out = handle(engine, ready("STRAY", upload_id="up-other"))
        assert out.outcome == "ignored" and "in progress" in out.detail
        assert row(engine) == (None, None)


class TestJournalMatching:
    def test_ready_for_the_journaled_upload_replaces_and_reports_old(self, engine: Engine) -> None:
        put_video(engine, "OLD")
        e = add_entry(engine, upload_id="up-1", replace_asset_id="OLD")
        gateway = FakeGateway({"NEW": Asset.from_json(asset_data("NEW", upload_id="up-1"))})
        out = handle(engine, ready("NEW", upload_id="up-1"), gateway=gateway)  # type: ignore[arg-type]
        assert out.outcome == "recorded"
        assert out.replaced_asset_id == "OLD" and "OLD" in out.detail
        assert row(engine) == ("NEW", "pb-NEW")
        done = entry(engine, e.id)
        assert (done.state, done.asset_id, done.playback_id) == ("done", "NEW", "pb-NEW")
        assert done.confirmed_bytes == done.file_size

    def test_match_by_asset_id(self, engine: Engine) -> None:
        e = add_entry(engine, upload_id="up-x", asset_id="A", state="asset_created")
        assert handle(engine, ready("A")).outcome == "recorded"
        assert entry(engine, e.id).state == "done"

    def test_duplicate_ready_closes_an_entry_left_open(self, engine: Engine) -> None:
        put_video(engine, "A")
        e = add_entry(engine, asset_id="A", state="asset_created")
        out = handle(engine, ready("A"))
        assert out.outcome == "journal-updated"
        assert entry(engine, e.id).state == "done"

    def test_entry_for_another_target_does_not_match(self, engine: Engine) -> None:
        put_video(engine, "OLD")
        add_entry(engine, Target(Kind.LESSON, 2), asset_id="A", replace_asset_id="OLD")
        out = handle(engine, ready("A"))
        assert out.outcome == "stale"
        assert row(engine) == ("OLD", "pb-OLD")

    def test_row_changed_during_the_upload_is_kept(self, engine: Engine) -> None:
        put_video(engine, "SOMEONE-ELSES")
        e = add_entry(engine, upload_id="up-1", replace_asset_id=None)
        out = handle(engine, ready("A", upload_id="up-1"))
        assert out.outcome == "stale"
        assert row(engine) == ("SOMEONE-ELSES", "pb-SOMEONE-ELSES")
        assert entry(engine, e.id).state == "transferred"

    def test_finished_entry_does_not_count(self, engine: Engine) -> None:
        put_video(engine, "CURRENT")
        add_entry(engine, upload_id="up-1", state="abandoned", replace_asset_id="CURRENT")
        assert handle(engine, ready("A", upload_id="up-1")).outcome == "stale"
        assert row(engine)[0] == "CURRENT"


class TestConfirmWithMux:
    def test_404_is_not_recorded(self, engine: Engine) -> None:
        gateway = FakeGateway({})
        out = handle(engine, ready("A"), gateway=gateway)
        assert out.outcome == "stale" and gateway.calls == ["A"]
        assert row(engine) == (None, None)
        # Mux's 404 is remembered: a re-delivery handled without credentials is refused too.
        assert tombstones(engine) == ["A"]
        assert handle(engine, ready("A")).outcome == "stale"
        assert row(engine) == (None, None)

    def test_failure_to_confirm_writes_no_tombstone(self, engine: Engine) -> None:
        with pytest.raises(MuxServerError):
            handle(engine, ready("A"), gateway=FakeGateway(fail=True))
        assert tombstones(engine) == []

    def test_not_ready_is_not_recorded(self, engine: Engine) -> None:
        gateway = FakeGateway({"A": Asset.from_json(asset_data("A", status="errored"))})
        assert handle(engine, ready("A"), gateway=gateway).outcome == "stale"
        assert row(engine) == (None, None)

    def test_live_asset_wins(self, engine: Engine) -> None:
        gateway = FakeGateway({"A": Asset.from_json(asset_data("A", playback="pb-live"))})
        assert handle(engine, ready("A"), gateway=gateway).outcome == "recorded"
        assert row(engine) == ("A", "pb-live")

    def test_mux_failure_raises_and_changes_nothing(self, engine: Engine) -> None:
        with pytest.raises(MuxServerError):
            handle(engine, ready("A"), gateway=FakeGateway(fail=True))
        assert row(engine) == (None, None)

    def test_foreign_passthrough_is_not_even_looked_up(self, engine: Engine) -> None:
        gateway = FakeGateway({})
        assert handle(engine, ready("A", passthrough="x"), gateway=gateway).outcome == "ignored"
        assert gateway.calls == []


# -- video.asset.deleted / errored ---------------------------------------------------------


class TestAssetGone:
    @pytest.mark.parametrize("kind", ["video.asset.deleted", "video.asset.errored"])
    def test_clears_every_row_naming_it(self, engine: Engine, kind: str) -> None:
        put_video(engine, "A")
        put_video(engine, "A", COURSE)
        put_video(engine, "B", Target(Kind.LESSON, 2))
        out = handle(engine, event(kind, asset_data("A", status="errored")))
        assert out.outcome == "cleared"
        assert set(out.targets) == {LESSON, COURSE}
        assert row(engine) == (None, None) and row(engine, COURSE) == (None, None)
        assert row(engine, Target(Kind.LESSON, 2)) == ("B", "pb-B")
        again = handle(engine, event(kind, asset_data("A")))
        assert again.outcome == "duplicate"

    def test_errored_marks_the_journal_failed_with_mux_reason(self, engine: Engine) -> None:
        e = add_entry(engine, asset_id="A", state="asset_created")
        data = asset_data("A", status="errored")
        data["errors"] = {"type": "invalid_input", "messages": ["The input file is not a video"]}
        out = handle(engine, event("video.asset.errored", data))
        assert out.outcome == "journal-updated" and out.targets == [LESSON]
        failed = entry(engine, e.id)
        assert failed.state == "failed"
        assert failed.last_error is not None and "not a video" in failed.last_error

    def test_finished_entries_are_left_alone(self, engine: Engine) -> None:
        e = add_entry(engine, asset_id="A", state="done")
        handle(engine, event("video.asset.deleted", asset_data("A")))
        assert entry(engine, e.id).state == "done"

    def test_a_tombstone_is_written_once(self, engine: Engine) -> None:
        handle(engine, event("video.asset.deleted", asset_data("A")))
        handle(engine, event("video.asset.deleted", asset_data("A"), event_id="redelivered"))
        handle(engine, event("video.asset.errored", asset_data("A", status="errored")))
        assert tombstones(engine) == ["A"]


# -- video.upload.* -----------------------------------------------------------------------


def upload_data(upload_id: str = "up-1", asset_id: str | None = "A", **extra: Any) -> dict:
    data: dict[str, Any] = {"id": upload_id, "status": "asset_created", **extra}
    if asset_id is not None:
        data["asset_id"] = asset_id
    return data


class TestUploadEvents:
    def test_asset_created_sets_the_journal(self, engine: Engine) -> None:
        e = add_entry(engine, state="uploading")
        out = handle(engine, event("video.upload.asset_created", upload_data()))
        assert out.outcome == "journal-updated" and out.targets == [LESSON]
        updated = entry(engine, e.id)
        assert (updated.state, updated.asset_id) == ("asset_created", "A")
        assert handle(engine, event("video.upload.asset_created", upload_data())).outcome == (
            "duplicate"
        )

    def test_asset_created_after_ready_does_not_reopen(self, engine: Engine) -> None:
        e = add_entry(engine, state="uploading")
        assert handle(engine, ready("A", upload_id="up-1")).outcome == "recorded"
        out = handle(engine, event("video.upload.asset_created", upload_data()))
        assert out.outcome == "duplicate"
        assert entry(engine, e.id).state == "done"

    def test_asset_created_for_an_unknown_upload_is_ignored(self, engine: Engine) -> None:
        out = handle(engine, event("video.upload.asset_created", upload_data("up-unknown")))
        assert out.outcome == "ignored"

    @pytest.mark.parametrize(
        ("kind", "extra", "word"),
        [
            ("video.upload.errored", {"error": {"type": "x", "message": "file too big"}}, "big"),
            ("video.upload.cancelled", {}, "cancelled"),
        ],
    )
    def test_failed_uploads(self, engine: Engine, kind: str, extra: dict, word: str) -> None:
        e = add_entry(engine, state="uploading")
        out = handle(engine, event(kind, upload_data(asset_id=None, **extra)))
        assert out.outcome == "journal-updated"
        failed = entry(engine, e.id)
        assert failed.state == "failed" and word in (failed.last_error or "")
        assert handle(engine, event(kind, upload_data(asset_id=None))).outcome == "ignored"


class TestEnvelope:
    @pytest.mark.parametrize(
        "kind", ["video.asset.created", "video.asset.updated", "video.upload.created", "x.y"]
    )
    def test_other_types_are_ignored(self, engine: Engine, kind: str) -> None:
        assert handle(engine, event(kind, asset_data("A"))).outcome == "ignored"
        assert row(engine) == (None, None)

    @pytest.mark.parametrize(
        "bad",
        [
            [],
            {},
            {"type": 5},
            {"type": "video.asset.ready"},
            {"type": "video.asset.ready", "data": {"status": "ready"}},
            {"type": "video.asset.deleted", "data": "A"},
            {"type": "video.upload.asset_created", "data": {"id": "up-1"}},
        ],
    )
    def test_malformed(self, engine: Engine, bad: Any) -> None:
        with pytest.raises(MalformedEvent):
            handle(engine, bad)

    def test_database_failure_is_a_vidpipe_error(self, tmp_path: Path) -> None:
        empty = make_engine(f"sqlite:///{tmp_path / 'no-tables.db'}")
        with pytest.raises(VidpipeError, match="database error"):
            handle(empty, ready("A"))


# -- apply (one payload, as `webhook apply` does) ----------------------------------------


class TestApplyPayload:
    def body(self, evt: dict[str, Any]) -> bytes:
        return json.dumps(evt).encode()

    def test_signed_payload_is_applied(self, engine: Engine) -> None:
        body = self.body(ready("A"))
        out = apply_payload(engine, body, secret=SECRET, signature=sign(SECRET, body), verify=True)
        assert out.outcome == "recorded" and row(engine)[0] == "A"

    def test_bad_signature_changes_nothing(self, engine: Engine) -> None:
        body = self.body(ready("A"))
        with pytest.raises(BadSignature) as info:
            apply_payload(engine, body, secret=SECRET, signature=sign("x", body), verify=True)
        assert not isinstance(info.value, UsageError)  # a failure (exit 1), not bad usage
        assert row(engine) == (None, None)

    def test_old_event_is_refused_unless_unverified(self, engine: Engine) -> None:
        body = self.body(ready("A"))
        old = sign(SECRET, body, timestamp=int(time.time()) - 3600)
        with pytest.raises(StaleSignature, match="old"):
            apply_payload(engine, body, secret=SECRET, signature=old, verify=True)
        assert row(engine) == (None, None)
        out = apply_payload(engine, body, secret=None, signature=None, verify=False)
        assert out.outcome == "recorded"

    def test_verify_needs_a_signature(self, engine: Engine) -> None:
        with pytest.raises(MissingSignature, match="no signature"):
            apply_payload(engine, b"{}", secret=SECRET, signature=None, verify=True)

    def test_bad_json_is_bad_input(self, engine: Engine) -> None:
        with pytest.raises(MalformedEvent) as info:
            apply_payload(engine, b"{nope", secret=None, signature=None, verify=False)
        assert isinstance(info.value, UsageError)

    def test_messages_name_no_command_line_option(self, engine: Engine) -> None:
        body = self.body(ready("A"))
        old = sign(SECRET, body, timestamp=int(time.time()) - 3600)
        cases = [(body, None, True), (body, old, True), (body, "t=1,v1=ab", True)]
        for payload, signature, verify in [*cases, (b"{nope", None, False)]:
            with pytest.raises(VidpipeError) as info:
                apply_payload(engine, payload, secret=SECRET, signature=signature, verify=verify)
            assert "--" not in str(info.value)
        assert row(engine) == (None, None)


class TestApplyCommand:
    """`vidpipe webhook apply`: the CLI maps rejections to exit codes and adds the hints."""

    def event_file(self, tmp_path: Path, evt: dict[str, Any]) -> tuple[Path, bytes]:
        body = json.dumps(evt).encode()
        path = tmp_path / "event.json"
        path.write_bytes(body)
        return path, body

    def test_old_event_names_no_verify(
        self,
        env: Platform,
        cli: Callable[..., Result],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        # No Mux token: the signed event is trusted, not looked up on the emulator.
        monkeypatch.delenv("MUX_TOKEN_ID")
        monkeypatch.delenv("MUX_TOKEN_SECRET")
        path, body = self.event_file(tmp_path, ready("A"))
        before = env.dump()
        old = sign(WEBHOOK_SECRET, body, timestamp=int(time.time()) - 3600)
        res = cli("webhook", "apply", path, "--signature", old)
        assert res.code == 1 and "--no-verify" in res.err and res.out == ""
        assert env.dump() == before
        res = cli("webhook", "apply", path, "--no-verify", "--json")
        assert res.code == 0, res.err
        assert json.loads(res.out)["outcome"] == "recorded"
        lesson = env.lesson(1)
        assert lesson is not None and lesson.mux_asset_id == "A"

    def test_verify_needs_a_signature(
        self, env: Platform, cli: Callable[..., Result], tmp_path: Path
    ) -> None:
        path, _ = self.event_file(tmp_path, ready("A"))
        before = env.dump()
        res = cli("webhook", "apply", path)
        assert res.code == 2 and "--signature" in res.err and res.out == ""
        assert env.dump() == before

    def test_forged_signature_fails_with_exit_1(
        self, env: Platform, cli: Callable[..., Result], tmp_path: Path
    ) -> None:
        path, body = self.event_file(tmp_path, ready("A"))
        before = env.dump()
        res = cli("webhook", "apply", path, "--signature", sign("forged", body))
        assert res.code == 1 and res.out == ""
        assert WEBHOOK_SECRET not in res.err
        assert env.dump() == before

    def test_body_that_is_not_json_is_bad_input(
        self, env: Platform, cli: Callable[..., Result], tmp_path: Path
    ) -> None:
        path = tmp_path / "event.json"
        path.write_bytes(b"{nope")
        before = env.dump()
        res = cli("webhook", "apply", path, "--no-verify")
        assert res.code == 2 and res.out == ""
        assert env.dump() == before


# -- the served endpoint -------------------------------------------------------------------


class Served:
    """A real uvicorn server on a free loopback port, in a background thread, with the
    production config (`limits` override its keyword arguments, e.g. `header_timeout`)."""

    def __init__(self, app: Any, *, graceful: int = 2, **limits: Any) -> None:
        self.sock = bind("127.0.0.1", 0)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = server_config(app, port=self.port, graceful=graceful, **limits)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@pytest.fixture
def logs() -> list[str]:
    return []


@pytest.fixture
def served(engine: Engine, logs: list[str]) -> Iterator[Served]:
    app = create_app(engine, SECRET, max_body=64 * 1024, log=logs.append)
    with Served(app) as s:
        yield s


def post(
    url: str, evt: Any, *, secret: str = SECRET, header: str | None = "sign"
) -> httpx.Response:
    body = evt if isinstance(evt, bytes) else json.dumps(evt).encode()
    headers = {"Content-Type": "application/json"}
    if header == "sign":
        headers["Mux-Signature"] = sign(secret, body)
    elif header is not None:
        headers["Mux-Signature"] = header
    return httpx.post(url, content=body, headers=headers, timeout=10)


def raw_exchange(port: int, head: bytes, chunks: list[bytes], pause: float = 0.0) -> bytes:
    """Send `head` then `chunks` on a raw socket, stopping as soon as the server answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        answer = b""
        for chunk in chunks:
            readable, _, _ = select.select([sock], [], [], pause)
            if readable:
                break
            try:
                sock.sendall(chunk)
            except OSError:  # the server closed after answering
                break
        sock.settimeout(10)
        try:
            while b"\r\n\r\n" not in answer:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        except ConnectionResetError:
            pass
        return answer


class TestServer:
    def test_health(self, served: Served) -> None:
        response = httpx.get(served.url + "/")
        assert response.status_code == 200 and response.json()["ok"] is True

    @pytest.mark.parametrize("path", ["/", "/webhooks/mux"])
    def test_records(self, served: Served, engine: Engine, path: str) -> None:
        response = post(served.url + path, ready("A"))
        assert response.status_code == 200
        assert response.json()["outcome"] == "recorded"
        assert row(engine) == ("A", "pb-A")

    def test_duplicate_and_unhandled_are_2xx(self, served: Served) -> None:
        assert post(served.url, ready("A")).status_code == 200
        again = post(served.url, ready("A"))
        assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
        other = post(served.url, event("video.asset.created", asset_data("A")))
        assert other.status_code == 200 and other.json()["outcome"] == "ignored"
        foreign = post(served.url, ready("B", passthrough="someone else's"))
        assert foreign.status_code == 200 and foreign.json()["outcome"] == "ignored"

    def test_rejections(self, served: Served, engine: Engine) -> None:
        evt = ready("A")
        assert post(served.url, evt, header=None).status_code in (400, 401)
        assert post(served.url, evt, header="garbage").status_code == 400
        assert post(served.url, evt, secret="forged").status_code in (401, 403)
        body = json.dumps(evt).encode()
        # Well clear of the 300 s edge: the server reads its own clock a moment later, and
        # int() drops up to a second. The exact edge is tested with an injected clock above.
        stale = sign(SECRET, body, timestamp=int(time.time()) - 360)
        assert post(served.url, body, header=stale).status_code == 401
        future = sign(SECRET, body, timestamp=int(time.time()) + 360)
        assert post(served.url, body, header=future).status_code == 401
        assert post(served.url, b"{not json").status_code == 400
        assert post(served.url, b"[1, 2]").status_code == 400
        assert post(served.url, {"type": "video.asset.ready"}).status_code == 400
        assert row(engine) == (None, None)
        assert httpx.get(served.url + "/webhooks/mux").status_code == 405

    def test_content_length_over_cap_is_refused_unread(self, served: Served) -> None:
        head = (
            b"POST /webhooks/mux HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 10000000\r\n\r\n"
        )
        # Nothing of the body is sent: an answer at all proves the server did not wait for it.
        answer = raw_exchange(served.port, head, [])
        assert answer.startswith(b"HTTP/1.1 413")
        assert post(served.url, ready("A")).status_code == 200

    def test_chunked_body_over_cap_is_cut_off(self, served: Served) -> None:
        head = (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        piece = b"x" * 16384
        chunk = b"%x\r\n" % len(piece) + piece + b"\r\n"
        # 64 chunks = 1 MiB, far past the 64 KiB cap; the server answers after ~5.
        answer = raw_exchange(served.port, head, [chunk] * 64, pause=0.02)
        assert answer.startswith(b"HTTP/1.1 413")
        assert post(served.url, ready("A")).status_code == 200

    def test_database_failure_is_503_and_server_keeps_going(self, tmp_path: Path) -> None:
        broken = make_engine(f"sqlite:///{tmp_path / 'no-tables.db'}")
        with Served(create_app(lambda: broken, SECRET)) as s:
            response = post(s.url, ready("A"))
            assert response.status_code == 503
            assert "database error" in response.json()["error"]
            assert httpx.get(s.url).status_code == 200

    def test_mux_failure_is_503(self, engine: Engine) -> None:
        app = create_app(engine, SECRET, gateway_factory=lambda: FakeGateway(fail=True))  # type: ignore[arg-type,return-value]
        with Served(app) as s:
            assert post(s.url, ready("A")).status_code == 503
        assert row(engine) == (None, None)

    def test_concurrent_requests(self, served: Served, engine: Engine) -> None:
        events = [
            ready(f"A{i}", passthrough=json.dumps({"lesson_id": i}))
            for i in range(1, N_LESSONS + 1)
        ]
        events += events[:8]  # duplicates racing their originals
        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = list(pool.map(lambda e: post(served.url, e).status_code, events))
        assert statuses == [200] * len(events)
        for i in range(1, N_LESSONS + 1):
            assert row(engine, Target(Kind.LESSON, i)) == (f"A{i}", f"pb-A{i}")

    def test_one_log_line_per_event_without_secrets(self, served: Served, logs: list[str]) -> None:
        evt = ready("A")
        body = json.dumps(evt).encode()
        header = sign(SECRET, body)
        post(served.url, body, header=header)
        post(served.url, body, header=sign("forged", body))
        assert len(logs) == 2
        assert "video.asset.ready" in logs[0] and evt["id"] in logs[0] and "recorded" in logs[0]
        assert "401" in logs[1]
        for line in logs:
            assert SECRET not in line and header.split("v1=")[1] not in line

    def test_busy_port_is_one_clear_error(self) -> None:
        sock = bind("127.0.0.1", 0)
        try:
            with pytest.raises(VidpipeError, match="cannot listen"):
                bind("127.0.0.1", sock.getsockname()[1])
        finally:
            sock.close()


def test_importing_the_package_loads_no_http_server() -> None:
    code = (
        "import sys, vidpipe.webhooks; print(sorted({'starlette', 'uvicorn'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_serve_stops_cleanly_on_sigterm(engine: Engine) -> None:
    server = ServeProcess(str(engine.url), SECRET)
    try:
        assert server.url.startswith("http://127.0.0.1:")
        assert post(server.url, ready("A")).status_code == 200
    finally:
        code, err = server.stop()
    out = "\n".join(server.drain(settle=0))
    assert code == 0, err
    assert "outcome=recorded" in out and "stopped (SIGTERM)" in out
    assert SECRET not in out + err
    assert row(engine) == ("A", "pb-A")


# -- emulator -> serve, end to end ---------------------------------------------------------


def test_emulator_webhooks_record_an_upload(engine: Engine, logs: list[str]) -> None:
    emulator = pytest.importorskip("vidpipe.emulator")
    with Served(create_app(engine, SECRET, log=logs.append)) as s:
        emu = emulator.Emulator(
            ready_after=0.0, webhook_url=s.url + "/webhooks/mux", webhook_secret=SECRET
        )
        base = emu.start()
        try:
            auth = ("emulator-id", "emulator-secret")
            created = httpx.post(
                f"{base}/video/v1/uploads",
                auth=auth,
                json={
                    "new_asset_settings": {
                        "playback_policies": ["public"],
                        "passthrough": json.dumps({"lesson_id": 1}),
                    },
                    "cors_origin": "*",
                },
                timeout=10,
            )
            assert created.status_code == 201, created.text
            video = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 4096
            put = httpx.put(created.json()["data"]["url"], content=video, timeout=10)
            assert put.status_code in (200, 201), put.text
            deadline = time.monotonic() + 10
            while row(engine) == (None, None):
                assert time.monotonic() < deadline, f"no webhook recorded the asset: {logs}"
                time.sleep(0.05)
        finally:
            emu.stop()
    asset_id, playback_id = row(engine)
    assert asset_id and playback_id
    assert any("video.asset.ready" in line and "recorded" in line for line in logs)
