"""Webhooks about an asset's tracks and static renditions: acknowledged, logged, no row changed."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine
from test_webhooks import engine, event, logs, post, put_video, row, served  # noqa: F401

from vidpipe.webhooks import handle_event

TRACK_EVENTS = [f"video.asset.track.{s}" for s in ("created", "ready", "errored", "deleted")]
RENDITION_EVENTS = [
    f"video.asset.static_rendition.{s}"
    for s in ("created", "ready", "errored", "deleted", "skipped")
]


def part(event_type: str) -> dict[str, Any]:
    """The event's data: a text track or a static rendition of asset A (not the asset)."""
    if ".track." in event_type:
        return {
            "id": "trk-1",
            "asset_id": "A",
            "type": "text",
            "text_source": "generated_vod",
            "language_code": "en",
            "status": event_type.rsplit(".", 1)[1].replace("created", "preparing"),
        }
    return {"id": "rend-1", "asset_id": "A", "resolution": "highest", "status": "ready"}


@pytest.mark.parametrize("event_type", TRACK_EVENTS + RENDITION_EVENTS)
def test_track_and_rendition_events_are_acknowledged_and_change_no_row(
    engine: Engine,  # noqa: F811
    served: Any,  # noqa: F811
    logs: list[str],  # noqa: F811
    event_type: str,
) -> None:
    put_video(engine, "A")
    before = row(engine)
    resp = post(served.url + "/", event(event_type, part(event_type)))
    assert 200 <= resp.status_code < 300
    assert row(engine) == before == ("A", "pb-A")
    assert any(event_type in line for line in logs)
    outcome = handle_event(engine, event(event_type, part(event_type)))
    assert outcome.as_json()["outcome"] == "ignored"
    assert row(engine) == before
