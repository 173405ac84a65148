"""The planner's `settings_mismatch` rules, table by table: what counts as present, what the
item carries, and what a fix would ask of Mux. Pure: hand-built snapshots in, plans out."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from vidpipe.asset_parts import StaticRendition, Track
from vidpipe.assets import asset_meta
from vidpipe.mux import Asset, PlaybackId
from vidpipe.reconcile.plan import Action, DriftKind, PlannedDrift, SyncOptions, plan
from vidpipe.reconcile.settings_plan import NO_AUDIO, Wanted
from vidpipe.reconcile.snapshot import Snapshot
from vidpipe.records import RowVideo
from vidpipe.targets import Kind, Target

L1, L2 = Target(Kind.LESSON, 1), Target(Kind.LESSON, 2)
C1 = Target(Kind.COURSE, 1)
VIDEO = Track("v1", "video")
AUDIO = Track("a1", "audio", primary=True)
EN = Wanted(captions=("en",))
HIGHEST = Wanted(renditions=("highest",))
FIX = {"fix_settings": True}


def text(lang: str, status: str = "ready", source: str = "generated_vod") -> Track:
    return Track(
        f"t-{lang}-{status}", "text", language_code=lang, text_source=source, status=status
    )


def rendition(resolution: str, status: str = "ready") -> StaticRendition:
    return StaticRendition(f"r-{resolution}", resolution, status)


def asset(
    target: Target | None = L1,
    *,
    tracks: Iterable[Track] = (VIDEO, AUDIO),
    renditions: Iterable[StaticRendition] = (),
    meta: dict[str, str] | None = None,
    passthrough: str | None = None,
    status: str = "ready",
    mp4_support: str | None = None,
) -> Asset:
    """An asset recorded on `target`'s row, made by vidpipe (its meta in line) unless told."""
    if meta is None:
        meta = asset_meta(f"title of {target}", target.external_id) if target else {}
    return Asset(
        id="a",
        status=status,
        playback_ids=(PlaybackId("pb", "public"),),
        passthrough=target.passthrough if target is not None else passthrough,
        tracks=tuple(tracks),
        static_renditions=tuple(renditions),
        mp4_support=mp4_support,
        meta=meta,
    )


def row(target: Target = L1, title: str | None = None) -> RowVideo:
    return RowVideo(target, f"title of {target}" if title is None else title or None, "a", "pb")


def settings_items(
    rows: Iterable[RowVideo], a: Asset, wanted: Wanted, **options: Any
) -> list[PlannedDrift]:
    snapshot = Snapshot(
        rows=list(rows), assets={a.id: a}, existing={Kind.LESSON: frozenset({1, 2})}
    )
    p = plan(snapshot, SyncOptions(wanted=wanted, **options))
    return [d for d in p.drift if d.kind is DriftKind.SETTINGS]


def missing(a: Asset, wanted: Wanted, r: RowVideo | None = None) -> dict[str, Any] | None:
    items = settings_items([r or row()], a, wanted)
    assert len(items) <= 1
    return items[0].settings.as_json() if items and items[0].settings else None


@pytest.mark.parametrize(
    ("tracks", "lacks"),
    [
        pytest.param([VIDEO, AUDIO], ["en"], id="no text track"),
        pytest.param([VIDEO, AUDIO, text("en")], [], id="generated and ready"),
        pytest.param([VIDEO, AUDIO, text("en", "preparing")], [], id="generated and preparing"),
        pytest.param([VIDEO, AUDIO, text("en", source="uploaded")], [], id="uploaded"),
        pytest.param([VIDEO, AUDIO, text("en", "errored")], ["en"], id="errored does not count"),
        pytest.param([VIDEO, AUDIO, text("fr")], ["en"], id="another language"),
        pytest.param([VIDEO], ["en"], id="no audio track"),
    ],
)
def test_a_caption_language_counts_when_a_text_track_of_it_is_preparing_or_ready(
    tracks: list[Track], lacks: list[str]
) -> None:
    found = missing(asset(tracks=tracks), EN)
    assert (found["captions"] if found else []) == lacks


@pytest.mark.parametrize(
    ("files", "lacks"),
    [
        pytest.param([], ["highest"], id="none"),
        pytest.param([rendition("highest")], [], id="ready"),
        pytest.param([rendition("highest", "preparing")], [], id="preparing"),
        pytest.param([rendition("highest", "errored")], ["highest"], id="errored"),
        pytest.param([rendition("highest", "skipped")], ["highest"], id="skipped"),
        pytest.param([rendition("720p")], ["highest"], id="another resolution"),
    ],
)
def test_a_rendition_counts_when_its_file_is_preparing_or_ready(
    files: list[StaticRendition], lacks: list[str]
) -> None:
    found = missing(asset(renditions=files), HIGHEST)
    assert (found["renditions"] if found else []) == lacks


def test_an_asset_with_legacy_mp4_support_is_not_judged_on_renditions() -> None:
    assert missing(asset(mp4_support="standard"), HIGHEST) is None
    assert missing(asset(mp4_support=None), HIGHEST) == {
        "captions": [],
        "renditions": ["highest"],
        "meta": {},
    }


def test_meta_must_be_the_rows_title_cut_to_512_characters_and_its_external_id() -> None:
    long = "x" * 600
    found = missing(
        asset(meta={"title": "old", "external_id": "lesson:1"}), Wanted(), row(L1, long)
    )
    assert found == {
        "captions": [],
        "renditions": [],
        "meta": {"title": {"row": "x" * 512, "mux": "old"}},
    }
    in_line = {"title": "x" * 512, "external_id": "lesson:1"}
    assert missing(asset(meta=in_line), Wanted(), row(L1, long)) is None


def test_a_row_with_no_title_is_judged_on_its_external_id_only() -> None:
    assert missing(asset(meta={"external_id": "lesson:1"}), Wanted(), row(L1, "")) is None
    found = missing(asset(meta={"title": "anything"}), Wanted(), row(L1, ""))
    assert found == {
        "captions": [],
        "renditions": [],
        "meta": {"external_id": {"row": "lesson:1", "mux": None}},
    }


def test_a_course_preview_is_held_to_course_external_id() -> None:
    found = missing(asset(C1, meta={"title": f"title of {C1}"}), Wanted(), row(C1))
    assert found is not None
    assert found["meta"] == {"external_id": {"row": "course:1", "mux": None}}


def test_assets_not_ready_are_not_judged() -> None:
    for status in ("preparing", "errored"):
        assert missing(asset(status=status, tracks=()), EN) is None


def test_an_asset_shared_by_two_rows_is_judged_on_captions_but_not_meta() -> None:
    items = settings_items([row(L1), row(L2)], asset(L1), EN, **FIX)
    assert [i.settings.as_json()["meta"] for i in items if i.settings] == [{}, {}]
    assert [i.target for i in items] == [L1, L2]
    # Captions are asked for once per asset, not once per row.
    fixes = [i.fix.captions for i in items if i.fix]
    assert fixes == [("en",), ()]


def test_the_fix_asks_for_every_missing_language_on_the_primary_audio_track_at_once() -> None:
    second = Track("a2", "audio", primary=False)
    tracks = [VIDEO, second, Track("a1", "audio", primary=True), text("de")]
    wanted = Wanted(captions=("en", "de", "fr"), renditions=("highest", "720p"))
    (item,) = settings_items(
        [row()], asset(tracks=tracks, renditions=[rendition("720p")]), wanted, **FIX
    )
    assert item.action is Action.FIX_SETTINGS
    assert item.fix is not None
    assert (item.fix.audio_track_id, item.fix.captions) == ("a1", ("en", "fr"))
    assert item.fix.renditions == ("highest",)
    assert item.fix.meta is None
    assert item.fix.steps() == [
        "generate captions en, fr on audio track a1",
        "add static rendition highest",
    ]


def test_the_meta_fix_keeps_the_assets_other_meta_fields() -> None:
    meta = {"title": "old", "external_id": "lesson:1", "creator_id": "cms"}
    (item,) = settings_items([row()], asset(meta=meta), Wanted(), **FIX)
    assert item.fix is not None
    assert item.fix.meta == {
        "title": "title of lesson 1",
        "external_id": "lesson:1",
        "creator_id": "cms",
    }


def test_an_asset_with_no_audio_track_is_reported_with_its_captions_skipped() -> None:
    (item,) = settings_items([row()], asset(tracks=[VIDEO]), EN, **FIX)
    assert item.settings is not None and item.settings.captions == ("en",)
    assert item.action is Action.REPORT
    assert NO_AUDIO in item.detail
    # Something else to fix: that is fixed, the captions still skipped.
    (item,) = settings_items([row()], asset(tracks=[VIDEO]), Wanted(("en",), ("highest",)), **FIX)
    assert item.action is Action.FIX_SETTINGS
    assert item.fix is not None
    assert (item.fix.captions, item.fix.renditions, item.fix.skipped) == (
        (),
        ("highest",),
        (NO_AUDIO,),
    )


def test_an_asset_whose_passthrough_is_not_vidpipes_is_reported_never_fixed() -> None:
    foreign = asset(None, passthrough="cms-7", meta={})
    (item,) = settings_items([row()], foreign, EN)
    assert item.action is Action.REPORT
    (item,) = settings_items([row()], foreign, EN, **FIX)
    assert item.action is Action.REPORT
    assert item.fix is None
    assert "not vidpipe's" in item.detail


def test_without_fix_settings_items_are_only_reported() -> None:
    (item,) = settings_items([row()], asset(), EN)
    assert (item.action, item.fix) == (Action.REPORT, None)


def _assets_lacking(n: int) -> Snapshot:
    """`n` recorded assets, each in line but for English captions."""
    targets = [Target(Kind.LESSON, i) for i in range(1, n + 1)]
    rows = [RowVideo(t, None, f"a{t.id}", "pb") for t in targets]
    assets = {
        f"a{t.id}": Asset(
            f"a{t.id}",
            "ready",
            playback_ids=(PlaybackId("pb", "public"),),
            tracks=(AUDIO,),
            passthrough=t.passthrough,
            meta={"external_id": t.external_id},
        )
        for t in targets
    }
    return Snapshot(rows=rows, assets=assets, existing={Kind.LESSON: frozenset(range(1, n + 1))})


def test_more_assets_to_fix_than_max_fixes_blocks_the_whole_plan() -> None:
    over = plan(_assets_lacking(4), SyncOptions(wanted=EN, fix_settings=True, max_fixes=3))
    assert over.blocked is not None
    assert (over.blocked.fixes, over.blocked.max_fixes) == (4, 3)
    at = plan(_assets_lacking(3), SyncOptions(wanted=EN, fix_settings=True, max_fixes=3))
    assert at.blocked is None
    assert sum(d.action is Action.FIX_SETTINGS for d in at.drift) == 3
    # Only a fix counts against the limit: a report-only run is never blocked.
    assert plan(_assets_lacking(4), SyncOptions(wanted=EN, max_fixes=3)).blocked is None
