"""export: every row's original (or one row's) into a folder, with a manifest `import` takes.

- One file per row, `lesson-ID.mp4` / `course-ID.mp4`. Rows naming the same asset share one
  download: the first row's file is downloaded, the others are hard links to it (a copy where
  the file system has no links).
- A file already there is complete (it only gets its name once every byte is there): it is
  skipped with no Mux call, unless `DIR/.vidpipe-export.json` (which asset each file came
  from) says it came from another asset than the row names now (the row's video was
  replaced since): then it is downloaded again. A `.part` is continued.
- `jobs` downloads at a time, through one `Downloader` (one gateway, so one pacer for the
  master-access calls and polls of every worker). One failing item does not stop the others.
- `DIR/manifest.csv` (`source,lesson,course`, paths relative to DIR) is rewritten whole
  (temporary file, then rename) at the end, listing every row whose file is complete: the
  rows of this run, and those an earlier run of another selection listed whose files are
  still there.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from sqlalchemy import Engine

from vidpipe.db import transaction
from vidpipe.download import Downloader, DownloadObserver, Planned, check_folder, default_path
from vidpipe.errors import TargetNotFound, UsageError, VidpipeError
from vidpipe.records import RowVideo, read_row, rows_with_video
from vidpipe.targets import Kind, Target

MAX_EXPORT_JOBS = 16
MANIFEST = "manifest.csv"
STATE = ".vidpipe-export.json"
"""Which asset each file of DIR came from (file name -> asset ID)."""


class ExportState(StrEnum):
    DOWNLOADED = "downloaded"
    SKIPPED = "skipped"  # the complete file was there already
    FAILED = "failed"


@dataclass
class ExportItem:
    target: Target
    asset_id: str
    path: Path
    state: ExportState
    bytes: int = 0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "target": self.target.as_json(),
            "asset_id": self.asset_id,
            "path": str(self.path),
            "bytes": self.bytes,
            "state": self.state.value,
            "error": self.error,
        }


@dataclass
class ExportReport:
    dir: Path
    manifest: Path
    items: list[ExportItem]
    seconds: float = 0.0
    api_calls: int = 0

    @property
    def ok(self) -> bool:
        return not any(i.state is ExportState.FAILED for i in self.items)

    def count(self, state: ExportState) -> int:
        return sum(1 for i in self.items if i.state is state)

    def as_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "dir": str(self.dir),
            "manifest": str(self.manifest),
            "items": [i.as_json() for i in self.items],
            "summary": {
                "total": len(self.items),
                **{s.value: self.count(s) for s in ExportState},
                "bytes": sum(i.bytes for i in self.items if i.state is ExportState.DOWNLOADED),
            },
            "seconds": round(self.seconds, 3),
            "api_calls": self.api_calls,
        }


class ExportObserver(DownloadObserver):
    """A `DownloadObserver` that also hears each item begin and end. Called from worker
    threads: implementations must be thread-safe."""

    def planned(self, total: int, skipped: int) -> None:
        """The run has `total` items, `skipped` of them complete already; before any starts."""

    def started(self, item: ExportItem) -> None:
        """A worker took the item: its master is about to be asked for."""

    def finished(self, item: ExportItem) -> None:
        """The item ended (any state)."""


@dataclass(frozen=True)
class _Group:
    """The rows naming one asset: the first one's file is downloaded, the rest linked."""

    asset_id: str
    items: list[ExportItem]


def check(engine: Engine, target: Target | None, folder: Path) -> list[RowVideo]:
    """The rows to export (every row with a video, or the one named), after checking the
    input: no such row, a named row with no video, or DIR a file raise `UsageError`; a DIR
    (or the folder it would be made in) that cannot be written raises `DownloadError`. No
    Mux call, no write."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder} is not a folder")
    existing = next(p for p in (folder, *folder.absolute().parents) if p.exists())
    if existing.is_dir():
        check_folder(existing)
    with transaction(engine) as conn:
        if target is not None and read_row(conn, target) is None:
            raise TargetNotFound(target)
        found = rows_with_video(conn, target)
    if target is not None and not found:
        raise UsageError(f"{target} has no video to export")
    return found


def _make_dir(folder: Path) -> None:
    """DIR, created if missing (with its parents)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VidpipeError(f"cannot create the folder {folder}: {exc.strerror}") from None


class Exporter:
    """Runs one export: `jobs` workers over one `Downloader`."""

    def __init__(
        self,
        downloader: Downloader,
        *,
        jobs: int,
        observer: ExportObserver | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.downloader = downloader
        self.jobs = jobs
        self.observer = observer or ExportObserver()
        self.clock = clock
        self.origins: dict[str, str] = {}

    def run(self, folder: Path, found: list[RowVideo]) -> ExportReport:
        """Export the `found` rows (from `check`) into `folder`, created if missing."""
        started = self.clock()
        _make_dir(folder)
        calls_before = self.downloader.gateway.stats.calls
        self.origins = _read_state(folder)
        groups: dict[str, _Group] = {}
        items: list[ExportItem] = []
        for row in found:
            assert row.asset_id is not None
            path = folder / default_path(row.target)
            item = ExportItem(row.target, row.asset_id, path, ExportState.SKIPPED)
            if self._complete(item):
                item.bytes = path.stat().st_size
            groups.setdefault(row.asset_id, _Group(row.asset_id, [])).items.append(item)
            items.append(item)
        todo = [g for g in groups.values() if any(not self._complete(i) for i in g.items)]
        self.observer.planned(len(items), sum(1 for i in items if self._complete(i)))
        if todo:
            with ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="export") as pool:
                for _ in pool.map(self._group, todo):
                    pass
        manifest = folder / MANIFEST
        for item in items:
            if item.state is not ExportState.FAILED and item.path.is_file():
                self.origins[item.path.name] = item.asset_id
        _write_whole(folder / STATE, json.dumps({"files": self.origins}, indent=1) + "\n")
        write_manifest(folder, manifest, items)
        return ExportReport(
            dir=folder,
            manifest=manifest,
            items=items,
            seconds=self.clock() - started,
            api_calls=self.downloader.gateway.stats.calls - calls_before,
        )

    def _complete(self, item: ExportItem) -> bool:
        """The item's file is there, from the asset its row names (as far as is known)."""
        origin = self.origins.get(item.path.name, item.asset_id)
        return origin == item.asset_id and item.path.is_file()

    def _group(self, group: _Group) -> None:
        """Download the asset once (unless a row's file already has it), then give every
        other row of the group its file."""
        source = next((i for i in group.items if self._complete(i)), None)
        if source is None:
            first = group.items[0]
            self.observer.started(first)
            try:
                result = self.downloader.download(
                    Planned(first.target, group.asset_id, first.path), self.observer
                )
            except VidpipeError as exc:
                for item in group.items:
                    item.state, item.error = ExportState.FAILED, str(exc)
                    self.observer.finished(item)
                return
            first.state, first.bytes = ExportState.DOWNLOADED, result.bytes
            first.warnings.extend(result.warnings or [])
            self.observer.finished(first)
            source = first
        for item in group.items:
            if item is source or self._complete(item):
                continue
            try:
                _link(source.path, item.path)
            except OSError as exc:
                item.state, item.error = ExportState.FAILED, f"cannot write {item.path}: {exc}"
            else:
                item.state, item.bytes = ExportState.DOWNLOADED, item.path.stat().st_size
            self.observer.finished(item)


def _link(source: Path, path: Path) -> None:
    """`path` (replaced if there) with the bytes of `source`: a hard link, or a copy."""
    part = path.with_name(path.name + ".part")
    part.unlink(missing_ok=True)
    try:
        os.link(source, part)
    except OSError:
        shutil.copyfile(source, part)
    os.replace(part, path)


def write_manifest(folder: Path, manifest: Path, items: list[ExportItem]) -> None:
    """`source,lesson,course` for every complete file: this run's rows, plus the rows an
    earlier manifest in `folder` lists whose files are still there."""
    entries: dict[Target, str] = dict(_earlier_entries(folder, manifest))
    for item in items:
        if item.path.is_file():
            entries[item.target] = item.path.name
        else:
            entries.pop(item.target, None)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["source", "lesson", "course"])
    # Lessons first, then courses, each by ID: the order rows are listed everywhere else.
    for target in sorted(entries, key=lambda t: (t.kind is not Kind.LESSON, t.id)):
        lesson = target.id if target.kind is Kind.LESSON else ""
        course = target.id if target.kind is Kind.COURSE else ""
        writer.writerow([entries[target], lesson, course])
    _write_whole(manifest, buffer.getvalue())


def _write_whole(path: Path, text: str) -> None:
    """`text` as the content of `path`: a temporary file, then a rename."""
    temporary = path.with_name(path.name + ".tmp")
    try:
        temporary.write_text(text, "utf-8")
        os.replace(temporary, path)
    except OSError as exc:
        raise VidpipeError(f"cannot write {path}: {exc.strerror}") from None


def _read_state(folder: Path) -> dict[str, str]:
    try:
        files = json.loads((folder / STATE).read_text("utf-8")).get("files")
    except (OSError, ValueError, AttributeError):
        return {}
    if not isinstance(files, dict):
        return {}
    return {str(k): str(v) for k, v in files.items()}


def _earlier_entries(folder: Path, manifest: Path) -> Iterator[tuple[Target, str]]:
    try:
        text = manifest.read_text("utf-8")
    except OSError:
        return
    for record in csv.DictReader(io.StringIO(text)):
        source = (record.get("source") or "").strip()
        lesson, course = (record.get("lesson") or "").strip(), (record.get("course") or "").strip()
        if not source or "/" in source or not (folder / source).is_file():
            continue
        try:
            if lesson and not course:
                yield Target(Kind.LESSON, int(lesson)), source
            elif course and not lesson:
                yield Target(Kind.COURSE, int(course)), source
        except ValueError:
            continue
