"""One recording decision: an upload's record step, a `video.asset.ready` webhook and sync's
repair decide alike whether a ready asset may be put on a row (`vidpipe.recording`).

Each case below is one where the three paths used to disagree; the safest rule now holds for
all three, and every test runs the case through each path that could take it, on SQLite and
PostgreSQL (the `platform` fixture)."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Platform
from test_webhooks import asset_data, put_video, ready

from vidpipe import journal
from vidpipe.db import UploadJournal
from vidpipe.errors import UploadFailed, VidpipeError
from vidpipe.mux import Asset
from vidpipe.pipeline import Pipeline
from vidpipe.reconcile.apply import SyncOutcome, apply
from vidpipe.reconcile.plan import Action, DriftKind, Plan, PlannedDrift
from vidpipe.targets import Kind, Target
from vidpipe.webhooks import Outcome, handle_event

LESSON_1 = Target(Kind.LESSON, 1)


def entry(platform: Platform, state: journal.State, **fields: Any) -> UploadJournal:
    """A journal entry of an upload to lesson 1."""
    return journal.create(
        platform.engine,
        LESSON_1,
        file_path=f"/videos/{fields.get('upload_id') or 'clip'}.mp4",
        file_size=1234,
        file_mtime_ns=1,
        chunk_size=256 * 1024,
        state=state,
        **fields,
    )


def sync_records(platform: Platform, asset_id: str, upload_id: str | None = None) -> SyncOutcome:
    """Sync's repair of an unrecorded ready asset for the empty lesson 1, as planned."""
    item = PlannedDrift(
        DriftKind.UNRECORDED,
        LESSON_1,
        asset_id,
        f"ready asset for {LESSON_1} is not recorded",
        Action.RECORD_ASSET,
        playback_id=f"pb-{asset_id}",
        expect_asset_id=None,
        upload_id=upload_id,
    )
    plan = Plan(drift=(item,), journal=(), checked=1, assets=1, scope="all")
    [result] = apply(platform.engine, None, plan, dry_run=False)  # type: ignore[arg-type]
    assert result.outcome is not None
    return result.outcome  # type: ignore[return-value]


def recorded(platform: Platform) -> str | None:
    row = platform.lesson(1)
    assert row is not None
    return row.mux_asset_id


def test_an_asset_whose_upload_failed_on_it_is_recorded_by_no_path(platform: Platform) -> None:
    # Mux said asset A is gone (a direct read answered 404 while waiting): the upload failed
    # on it, with no tombstone. The webhook refused to record A; the upload's record step
    # and sync used to record it anyway.
    failed = entry(platform, journal.State.FAILED, upload_id="U1", asset_id="A")
    asset = Asset.from_json(asset_data("A", upload_id="U1"))
    with pytest.raises(UploadFailed, match="deleted or errored"):
        Pipeline(platform.engine, None, None).record(failed, asset)  # type: ignore[arg-type]
    assert recorded(platform) is None
    assert sync_records(platform, "A", "U1") is SyncOutcome.UPLOAD_FAILED
    assert recorded(platform) is None
    assert handle_event(platform.engine, ready("A", upload_id="U1")).outcome is Outcome.STALE
    assert recorded(platform) is None


def test_no_path_records_a_stray_asset_while_another_upload_to_the_row_is_in_progress(
    platform: Platform,
) -> None:
    # Asset B names lesson 1 but no unfinished upload made it (an earlier upload, abandoned
    # when this one started); upload U2 to lesson 1 is still sending its bytes. The webhook
    # left the row to U2; sync used to record B, and U2 then failed with "the row changed".
    entry(platform, journal.State.UPLOADING, upload_id="U2")
    assert sync_records(platform, "B", "U-old") is SyncOutcome.UPLOADING
    assert recorded(platform) is None
    assert handle_event(platform.engine, ready("B", upload_id="U-old")).outcome is Outcome.IGNORED
    assert recorded(platform) is None


def test_no_path_puts_back_an_asset_a_finished_upload_replaced(platform: Platform) -> None:
    # A finished upload replaced asset A on lesson 1 (its own asset was later deleted and the
    # row cleared); A is still on Mux. The webhook refused to bring A back; sync used to.
    entry(platform, journal.State.DONE, upload_id="U3", asset_id="C", replace_asset_id="A")
    assert sync_records(platform, "A") is SyncOutcome.REPLACED
    assert recorded(platform) is None
    assert handle_event(platform.engine, ready("A")).outcome is Outcome.STALE
    assert recorded(platform) is None


def test_an_upload_meant_to_replace_a_video_takes_a_row_emptied_meanwhile(
    platform: Platform,
) -> None:
    # The upload was to replace asset OLD; OLD was deleted (the row cleared) while it ran.
    # A webhook and sync recorded the new asset on the empty row (it holds nobody's video);
    # the upload's own record step used to refuse ("the row changed") and leave an orphan.
    mine = entry(
        platform, journal.State.ASSET_CREATED, upload_id="U4", asset_id="N", replace_asset_id="OLD"
    )
    asset = Asset.from_json(asset_data("N", upload_id="U4"))
    pipeline = Pipeline(platform.engine, None, None)  # type: ignore[arg-type]
    assert pipeline.record(mine, asset) == ("pb-N", True)
    assert recorded(platform) == "N"


def test_an_upload_never_overwrites_a_video_put_on_the_row_meanwhile(platform: Platform) -> None:
    # All three agreed here already; kept as the boundary of the case above.
    mine = entry(
        platform, journal.State.ASSET_CREATED, upload_id="U5", asset_id="N", replace_asset_id="OLD"
    )
    put_video(platform.engine, "THEIRS")
    asset = Asset.from_json(asset_data("N", upload_id="U5"))
    with pytest.raises(VidpipeError, match="changed during the upload"):
        Pipeline(platform.engine, None, None).record(mine, asset)  # type: ignore[arg-type]
    assert handle_event(platform.engine, ready("N", upload_id="U5")).outcome is Outcome.STALE
    assert recorded(platform) == "THEIRS"
