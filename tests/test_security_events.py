"""Destructive and journal-changing events are confirmed with Mux when vidpipe has credentials:
a signed `deleted` or `errored` clears nothing unless Mux answers 404 or `errored`, and an
upload takes only the asset Mux says that upload made for its target, in the webhook and in
the upload's own record step."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import WEBHOOK_SECRET, Platform, Result
from sqlalchemy import Engine
from sqlmodel import Session
from test_webhooks import (
    SECRET,
    FakeGateway,
    Served,
    add_entry,
    asset_data,
    entry,
    event,
    post,
    put_video,
    row,
    tombstones,
    upload_data,
)

from vidpipe import journal
from vidpipe.db import Lesson, World, init_db, make_engine
from vidpipe.emulator import Emulator
from vidpipe.errors import MuxServerError
from vidpipe.mux import Asset, MuxGateway
from vidpipe.targets import Kind, Target
from vidpipe.webhooks import handle_event
from vidpipe.webhooks.serve import create_app

LESSON = Target(Kind.LESSON, 1)
OTHER = Target(Kind.LESSON, 2)
GONE = ("video.asset.deleted", "video.asset.errored")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = make_engine(f"sqlite:///{tmp_path / 'platform.db'}")
    init_db(eng)
    with Session(eng) as session:
        session.add_all([Lesson(id=i, title=f"Lesson {i}") for i in (1, 2, 3)])
        session.add(World(id=1, title="Course 1"))
        session.commit()
    yield eng
    eng.dispose()


def live(asset_id: str, **kw: object) -> Asset:
    return Asset.from_json(asset_data(asset_id, **kw))  # type: ignore[arg-type]


# -- video.asset.deleted / errored -----------------------------------------------------------


@pytest.mark.parametrize("kind", GONE)
def test_a_forged_destructive_event_for_a_live_asset_changes_nothing(
    engine: Engine, kind: str
) -> None:
    put_video(engine, "A")
    pending = add_entry(engine, OTHER, upload_id="up-2", state="uploading")
    gateway = FakeGateway({"A": live("A")})
    data = asset_data("A", status="errored", upload_id="up-2")
    out = handle_event(engine, event(kind, data), gateway=gateway)  # type: ignore[arg-type]
    assert out.outcome == "stale" and "ready" in out.detail
    assert gateway.calls == ["A"]
    assert row(engine) == ("A", "pb-A")
    assert tombstones(engine) == []
    assert entry(engine, pending.id).state == "uploading"


@pytest.mark.parametrize("kind", GONE)
def test_a_404_from_mux_confirms_and_clears(engine: Engine, kind: str) -> None:
    put_video(engine, "A")
    out = handle_event(engine, event(kind, asset_data("A")), gateway=FakeGateway({}))  # type: ignore[arg-type]
    assert out.outcome == "cleared" and "deleted" in out.detail
    assert row(engine) == (None, None) and tombstones(engine) == ["A"]


@pytest.mark.parametrize("kind", GONE)
def test_errored_on_mux_confirms_and_clears_with_muxs_reason(engine: Engine, kind: str) -> None:
    put_video(engine, "A")
    errored = Asset.from_json(
        {**asset_data("A", status="errored"), "errors": {"messages": ["not a video"]}}
    )
    out = handle_event(engine, event(kind, asset_data("A")), gateway=FakeGateway({"A": errored}))  # type: ignore[arg-type]
    assert out.outcome == "cleared" and "not a video" in out.detail
    assert row(engine) == (None, None) and tombstones(engine) == ["A"]


def test_a_confirmed_deletion_fails_only_the_upload_mux_names(engine: Engine) -> None:
    """The event's upload ID is the sender's word: with Mux answering 404 there is no upload
    to go by, so another upload the event names keeps going."""
    victim = add_entry(engine, OTHER, upload_id="up-victim", state="uploading")
    data = asset_data("A", upload_id="up-victim")
    handle_event(engine, event("video.asset.deleted", data), gateway=FakeGateway({}))  # type: ignore[arg-type]
    assert entry(engine, victim.id).state == "uploading"


def test_no_answer_from_mux_changes_nothing(engine: Engine) -> None:
    put_video(engine, "A")
    with pytest.raises(MuxServerError):
        handle_event(
            engine,
            event("video.asset.deleted", asset_data("A")),
            gateway=FakeGateway(fail=True),  # type: ignore[arg-type]
        )
    assert row(engine) == ("A", "pb-A") and tombstones(engine) == []


def test_without_credentials_a_signed_deletion_is_trusted(engine: Engine) -> None:
    put_video(engine, "A")
    out = handle_event(engine, event("video.asset.deleted", asset_data("A")))
    assert out.outcome == "cleared" and row(engine) == (None, None)


def test_served_with_a_real_gateway_a_forged_deletion_is_stale_and_a_real_one_clears(
    engine: Engine, emulator: Emulator
) -> None:
    asset = emulator.seed_asset(passthrough=json.dumps({"lesson_id": 1}))
    put_video(engine, asset["id"])
    recorded = row(engine)
    gateway = MuxGateway(emulator.base_url, "id", "secret", pace=False)
    with Served(create_app(engine, SECRET, gateway_factory=lambda: gateway)) as s:
        forged = post(s.url, event("video.asset.deleted", {"id": asset["id"]}))
        assert forged.status_code == 200 and forged.json()["outcome"] == "stale"
        assert row(engine) == recorded and tombstones(engine) == []
        gateway.delete_asset(asset["id"])
        real = post(s.url, event("video.asset.deleted", {"id": asset["id"]}, event_id="e2"))
        assert real.status_code == 200 and real.json()["outcome"] == "cleared"
    assert row(engine) == (None, None) and tombstones(engine) == [asset["id"]]


# -- video.upload.asset_created --------------------------------------------------------------


@pytest.mark.parametrize(
    ("mux_has", "why"),
    [
        ({}, "no asset"),
        ({"B": live("B", upload_id="up-other", passthrough='{"lesson_id": 2}')}, "not made by"),
        ({"B": live("B", passthrough='{"lesson_id": 1}')}, "not made by"),
        ({"B": live("B", upload_id="up-1", passthrough='{"lesson_id": 2}')}, "passthrough"),
    ],
    ids=["unknown to Mux", "another upload's", "no upload", "another target's"],
)
def test_a_forged_asset_created_naming_another_asset_is_refused(
    engine: Engine, mux_has: dict[str, Asset], why: str
) -> None:
    pending = add_entry(engine, LESSON, upload_id="up-1", state="uploading")
    gateway = FakeGateway(mux_has)
    out = handle_event(
        engine,
        event("video.upload.asset_created", upload_data("up-1", "B")),
        gateway=gateway,  # type: ignore[arg-type]
    )
    assert out.outcome == "stale" and why in out.detail
    after = entry(engine, pending.id)
    assert (after.state, after.asset_id) == ("uploading", None)


def test_the_uploads_own_asset_is_taken(engine: Engine) -> None:
    pending = add_entry(engine, LESSON, upload_id="up-1", state="uploading")
    gateway = FakeGateway({"A": live("A", upload_id="up-1")})
    out = handle_event(
        engine,
        event("video.upload.asset_created", upload_data("up-1", "A")),
        gateway=gateway,  # type: ignore[arg-type]
    )
    assert out.outcome == "journal-updated"
    after = entry(engine, pending.id)
    assert (after.state, after.asset_id) == ("asset_created", "A")


# -- the upload's record step ----------------------------------------------------------------


def test_resume_refuses_an_asset_a_trusted_forged_event_put_in_the_journal(
    env: Platform, emulator: Emulator, video: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    """Without credentials a signed event is trusted; the upload's own record step still
    checks the asset with Mux, refuses it, and a sync then records the right one."""
    assert cli("upload", video(name="two.mp4", seed=2), "--lesson", "2").code == 0
    theirs = env.lesson(2)
    assert theirs is not None and theirs.mux_asset_id
    clip = video(name="one.mp4", seed=1)
    assert cli("upload", clip, "--lesson", "1", "--no-wait").code == 0
    (pending,) = journal.unfinished_for(env.engine, LESSON)
    forged = event(
        "video.upload.asset_created", upload_data(pending.upload_id, theirs.mux_asset_id)
    )
    assert handle_event(env.engine, forged).outcome == "journal-updated"  # trusted: no gateway

    res = cli("upload", clip, "--lesson", "1")
    assert res.code == 1
    assert f"asset {theirs.mux_asset_id} was not made by upload {pending.upload_id}" in res.err
    mine = env.lesson(1)
    assert mine is not None and mine.mux_asset_id is None
    assert env.lesson(2) == theirs
    failed = entry(env.engine, pending.id)
    assert failed.state == "failed" and failed.asset_id is None
    assert failed.last_error and "not made by" in failed.last_error

    assert cli("sync").code == 0
    own = emulator.uploads[pending.upload_id]["asset_id"]
    mine = env.lesson(1)
    assert mine is not None and mine.mux_asset_id == own
    assert env.lesson(2) == theirs


def test_webhook_apply_with_credentials_refuses_a_forged_asset_created(
    env: Platform, video: Callable[..., Path], cli: Callable[..., Result], tmp_path: Path
) -> None:
    assert cli("upload", video(name="two.mp4", seed=2), "--lesson", "2").code == 0
    theirs = env.lesson(2)
    assert theirs is not None
    assert cli("upload", video(name="one.mp4", seed=1), "--lesson", "1", "--no-wait").code == 0
    (pending,) = journal.unfinished_for(env.engine, LESSON)
    path = tmp_path / "forged.json"
    forged = event(
        "video.upload.asset_created", upload_data(pending.upload_id, theirs.mux_asset_id)
    )
    path.write_text(json.dumps(forged))
    from vidpipe.webhooks import sign

    res = cli("webhook", "apply", path, "--signature", sign(WEBHOOK_SECRET, path.read_bytes()))
    assert res.code == 0, res.err
    assert "stale" in res.out + res.err
    assert entry(env.engine, pending.id).asset_id is None
