"""An import's subtitle files: added once each item's asset is ready and recorded.

After the import's items have ended, each item that carries `captions` and ended with its
asset recorded (done now, or skipped as done earlier) gets a text track per language, named
as `captions add` names it (the language's English name), unless its asset already has a
text track of that name (a re-run, or a run that was interrupted here, asks for nothing
twice). Then every track asked for is waited for: one that errors fails its item only (the
video stays recorded; the error says which file Mux could not read). An item not waited for
(`--no-wait`) gets its captions when the import is run again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from vidpipe.asset_parts import default_name
from vidpipe.captions import POLL_SECONDS, WAIT_SECONDS
from vidpipe.errors import MuxError
from vidpipe.mux import MuxGateway


@dataclass
class _Asked:
    line: int
    asset_id: str
    track_id: str
    language: str


def add_captions(
    gateway: MuxGateway,
    work: Iterable[tuple[int, str, Sequence[tuple[str, str]]]],
    *,
    sleep: Callable[[float], None] = time.sleep,
    wait_seconds: float = WAIT_SECONDS,
) -> dict[int, str]:
    """For each (manifest line, recorded asset ID, (language, URL) pairs): add the subtitle
    files the asset lacks and wait for them. Returns the error of each line that failed."""
    failed: dict[int, str] = {}
    asked: list[_Asked] = []
    for line, asset_id, captions in work:
        try:
            asset = gateway.get_asset(asset_id)
            by_name = {t.name: t for t in asset.tracks if t.type == "text"}
            for language, url in captions:
                name = default_name(language)
                track = by_name.get(name)
                if track is None:
                    track = gateway.create_text_track(asset_id, url, language=language, name=name)
                asked.append(_Asked(line, asset_id, track.id, language))
        except MuxError as exc:
            failed.setdefault(line, f"adding captions: {exc}")
    _wait(gateway, asked, failed, sleep=sleep, seconds=wait_seconds)
    return failed


def _wait(
    gateway: MuxGateway,
    asked: list[_Asked],
    failed: dict[int, str],
    *,
    sleep: Callable[[float], None],
    seconds: float,
) -> None:
    """Poll each asset with tracks in the making (one GET per asset a round) until every
    track is ready or errored."""
    deadline = time.monotonic() + seconds
    while asked:
        left: list[_Asked] = []
        for asset_id in sorted({a.asset_id for a in asked}):
            mine = [a for a in asked if a.asset_id == asset_id]
            try:
                asset = gateway.get_asset(asset_id)
            except MuxError as exc:
                for a in mine:
                    failed.setdefault(a.line, f"waiting for captions {a.language}: {exc}")
                continue
            tracks = {t.id: t for t in asset.tracks}
            for a in mine:
                track = tracks.get(a.track_id)
                if track is None or track.status == "errored":
                    why = (track.error if track else None) or "the track is gone"
                    failed.setdefault(a.line, f"Mux could not make captions {a.language}: {why}")
                elif track.status != "ready":
                    left.append(a)
        asked = left
        if not asked:
            return
        if time.monotonic() >= deadline:
            for a in asked:
                failed.setdefault(a.line, f"captions {a.language} are still being prepared")
            return
        sleep(POLL_SECONDS)
