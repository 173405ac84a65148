"""The facade's commands on a recorded asset's parts: its playback URLs, its original (one
download, or an export of many) and its subtitle tracks. A part of `vidpipe.Vidpipe` (which
mixes it in): each method checks its input, runs the session's one preflight, then hands over
to its core module (`playback`, `download`, `export`, `captions`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from vidpipe.errors import UsageError
from vidpipe.readiness import DEFAULT_WAIT_TIMEOUT
from vidpipe.session import Session

if TYPE_CHECKING:
    from vidpipe.asset_parts import Track
    from vidpipe.captions import CaptionsReport
    from vidpipe.download import Downloader, DownloadObserver, DownloadResult
    from vidpipe.export import ExportObserver, ExportReport
    from vidpipe.mux import MuxGateway
    from vidpipe.playback import PlaybackUrls

DEFAULT_URL_EXPIRY = 6 * 3600.0


class AssetCommands(Session):
    """`url`, `download`, `export` and `captions_*` of `vidpipe.Vidpipe`."""

    download_defaults: ClassVar[dict[str, Any]] = {}
    """Keyword arguments for every `Downloader` (e.g. `retry`, the download's back-off): a
    public switch for tests and benchmarks, as `gateway_defaults` is for the gateway."""

    def url(
        self,
        *,
        lesson: int | None = None,
        course: int | None = None,
        expires: float = DEFAULT_URL_EXPIRY,
    ) -> PlaybackUrls:
        """The row's stream and thumbnail URLs; signed (a token valid for `expires` seconds)
        when Mux reports the recorded playback ID as signed."""
        from vidpipe.playback import check_lifetime, playback_urls

        check_lifetime(expires)
        target = self._target(lesson, course)
        engine, gateway, _ = self._preflight(target)
        return playback_urls(engine, gateway, target, self.settings, expires=expires)

    def download(
        self,
        *,
        lesson: int | None = None,
        course: int | None = None,
        path: str | Path | None = None,
        force: bool = False,
        timeout: float = DEFAULT_WAIT_TIMEOUT,
        observer: DownloadObserver | None = None,
    ) -> DownloadResult:
        """The row's original (the asset's master) to `path` (default `lesson-ID.mp4` /
        `course-ID.mp4` in the working directory), through `path.part`: calling again after
        an interruption continues it. Master access is `temporary` for the download and
        `none` after it. An existing `path` needs `force`; no row, a row with no video, or
        an existing `path` raise `UsageError` before Mux is asked anything."""
        from vidpipe import download

        target = self._target(lesson, course)
        if timeout < 0:
            raise UsageError("the wait timeout must not be negative")
        given = Path(path) if path else None
        _engine, gateway, planned = self._preflight(
            check=lambda engine: download.check(engine, target, given, force=force)
        )
        assert planned is not None
        return self._downloader(gateway, timeout).download(planned, observer)

    def export(
        self,
        directory: str | Path,
        *,
        lesson: int | None = None,
        course: int | None = None,
        jobs: int = 4,
        timeout: float = DEFAULT_WAIT_TIMEOUT,
        observer: ExportObserver | None = None,
    ) -> ExportReport:
        """Every row with a video (or the one named) downloaded into `directory` as
        `lesson-ID.mp4` / `course-ID.mp4`, `jobs` at a time, and `directory/manifest.csv`
        that `import_manifest` takes back. Files already complete are skipped (no Mux call);
        partial ones are continued. The report's `ok` is False when an item failed."""
        from vidpipe import export

        target = self._maybe_target(lesson, course)
        if not 1 <= jobs <= export.MAX_EXPORT_JOBS:
            raise UsageError(f"the number of parallel jobs must be 1..{export.MAX_EXPORT_JOBS}")
        if timeout < 0:
            raise UsageError("the wait timeout must not be negative")
        folder = Path(directory)
        _engine, gateway, found = self._preflight(
            check=lambda engine: export.check(engine, target, folder)  # no Mux call, no write
        )
        assert found is not None
        runner = export.Exporter(self._downloader(gateway, timeout), jobs=jobs, observer=observer)
        return runner.run(folder, found)

    def _downloader(self, gateway: MuxGateway, timeout: float) -> Downloader:
        from vidpipe.download import Downloader

        return Downloader(gateway, self.http, timeout=timeout, **self.download_defaults)

    def captions_add(
        self,
        url: str,
        *,
        language: str,
        lesson: int | None = None,
        course: int | None = None,
        name: str | None = None,
        closed_captions: bool = False,
        wait: bool = True,
    ) -> CaptionsReport:
        """Have Mux fetch the WebVTT or SRT file at `url` as a subtitle track of the target's
        asset; with `wait`, until it is ready (`vidpipe.captions.CaptionFailed` when Mux
        cannot read it). A local path or a non-http(s) URL, a bad language code, a target
        with no row or no video, or a track name already taken: `UsageError`, nothing made."""
        from vidpipe import captions
        from vidpipe.records import recorded_asset

        target = self._target(lesson, course)
        captions.check_subtitle_url(url)
        captions.check_language(language)
        engine, gateway, _ = self._preflight(
            target, check=lambda engine: recorded_asset(engine, target)
        )
        return captions.add_track(
            engine,
            gateway,
            target,
            url,
            language=language,
            name=name,
            closed_captions=closed_captions,
            wait=wait,
        )

    def captions_list(
        self, *, lesson: int | None = None, course: int | None = None
    ) -> CaptionsReport:
        """The text tracks of the target's asset."""
        from vidpipe import captions
        from vidpipe.records import recorded_asset

        target = self._target(lesson, course)
        engine, gateway, _ = self._preflight(
            target, check=lambda engine: recorded_asset(engine, target)
        )
        return captions.list_tracks(engine, gateway, target)

    def captions_remove(
        self,
        *,
        lesson: int | None = None,
        course: int | None = None,
        language: str | None = None,
        track: str | None = None,
        confirm: Callable[[list[Track]], bool] | None = None,
    ) -> CaptionsReport:
        """Delete the target's text tracks of `language`, or the text track `track`;
        `confirm(tracks)` may decline. None matching: `UsageError`."""
        from vidpipe import captions
        from vidpipe.records import recorded_asset

        target = self._target(lesson, course)
        if (language is None) == (track is None):
            raise UsageError("name either a language or a track to remove")
        engine, gateway, _ = self._preflight(
            target, check=lambda engine: recorded_asset(engine, target)
        )
        return captions.remove_tracks(
            engine, gateway, target, language=language, track_id=track, confirm=confirm
        )
