"""An import manifest: read it, and check every line before anything is created.

A manifest is CSV with a header row, or JSON Lines (one object a line), naming for each video
a `source` (a file path, relative to the manifest's folder, or an `http(s)://` URL) and
exactly one of `lesson` / `course`, and optionally `captions`: subtitle files Mux is to fetch
once the item's asset is ready (a CSV cell of `LANG=URL` pairs separated by spaces, or a JSON
object `{"LANG": "URL"}`). `load` returns the checked items or raises
`ManifestError` naming every bad line; it reads files and the database and changes nothing.

Line numbers count the file's physical lines, header included (a CSV's first item is line
2); blank lines are skipped but counted. A CSV record whose quoted field spans lines is
numbered by the line it starts on.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from vidpipe import journal
from vidpipe.asset_parts import check_language, check_subtitle_url
from vidpipe.db import UploadJournal, transaction
from vidpipe.errors import UsageError
from vidpipe.media import FileSource, Source, check_source, display_source
from vidpipe.records import read_row
from vidpipe.targets import Kind, Target
from vidpipe.text import shown

MANIFEST_COLUMNS = ("source", "lesson", "course", "captions")
MAX_PROBLEMS_SHOWN = 50


@dataclass(frozen=True)
class Item:
    """One checked manifest line."""

    line: int
    source: str  # as the manifest wrote it
    target: Target
    media: Source  # the source, checked
    current_asset_id: str | None  # what the row records now
    current_playback_id: str | None
    done_earlier: bool  # the row records the video an earlier run made from this source
    captions: tuple[tuple[str, str], ...] = ()
    """Subtitle files to add once the asset is ready: (language, URL) pairs."""

    @property
    def key(self) -> str:
        """The source as the journal keeps it."""
        return self.media.key

    @property
    def shown(self) -> str:
        """The source as output shows it (a URL without its query, which may hold a key)."""
        return display_source(self.source)

    @property
    def size(self) -> int:
        return self.media.size

    def same_source(self, entry: UploadJournal) -> bool:
        """Whether a journal entry uploaded this item's source: the same URL or path, or a
        file of the same name and size (the folder may be mounted elsewhere on another
        machine sharing the database)."""
        if entry.file_path == self.key:
            return True
        if not isinstance(self.media, FileSource) or journal.is_url_source(entry):
            return False
        return Path(entry.file_path).name == self.media.shown and (
            entry.file_size == self.media.size
        )


class ManifestError(UsageError):
    """The manifest cannot be used: `problems` is every bad line as (line, text)."""

    def __init__(self, path: Path, problems: list[tuple[int, str]], *, has_video: bool = False):
        self.problems = problems
        self.has_video = has_video
        """Some lines name a row that records a video from outside this manifest."""
        # One line per problem: a value from the manifest (a CSV field may hold a line
        # break) cannot start a line of its own.
        lines = [f"line {n}: {shown(text)}" for n, text in problems[:MAX_PROBLEMS_SHOWN]]
        if len(problems) > MAX_PROBLEMS_SHOWN:
            lines.append(f"... and {len(problems) - MAX_PROBLEMS_SHOWN} more")
        count = len({n for n, _ in problems})
        head = f"{shown(path)}: {count} bad line{'s' if count != 1 else ''}; nothing was changed"
        super().__init__("\n".join([head, *lines]))


@dataclass
class _Raw:
    line: int
    source: Any
    lesson: Any
    course: Any
    captions: Any = None


def load(path: Path, engine: Engine, *, replace: bool) -> list[Item]:
    """Read and check the manifest at `path` against the files and the database."""
    raws, problems = _read(path)
    base = path.resolve().parent
    items: list[Item] = []
    by_target: dict[Target, int] = {}
    has_video = False
    checked: list[tuple[_Raw, Target, Source, Any]] = []
    for raw in raws:
        target, why = _target(raw)
        found: list[str] = [why] if why else []
        media: Source | None = None
        try:
            media = _source(raw.source, base)
        except UsageError as exc:
            found.append(str(exc))
        subtitles = _captions(raw.captions, found)
        if target is not None:
            earlier = by_target.get(target)
            if earlier is not None:
                found.append(f"{target} is already the target of line {earlier}")
            else:
                by_target[target] = raw.line
        if found:
            problems += [(raw.line, text) for text in found]
        elif target is not None and media is not None:
            checked.append((raw, target, media, subtitles))
    with transaction(engine) as conn:
        for raw, target, media, subtitles in checked:
            row = read_row(conn, target)
            if row is None:
                problems.append((raw.line, f"{target} does not exist in the database"))
                continue
            item = Item(
                line=raw.line,
                source=str(raw.source).strip(),
                target=target,
                media=media,
                current_asset_id=row.asset_id,
                current_playback_id=row.playback_id,
                done_earlier=False,
                captions=subtitles,
            )
            if row.asset_id:
                done = any(
                    item.same_source(e) for e in journal.done_with(conn, target, row.asset_id)
                )
                if done:
                    item = Item(**{**item.__dict__, "done_earlier": True})
                elif not replace:
                    has_video = True
                    problems.append(
                        (
                            raw.line,
                            f"{target} already has a video (asset {row.asset_id}) "
                            "from outside this manifest",
                        )
                    )
                    continue
            items.append(item)
    if problems:
        raise ManifestError(path, sorted(problems, key=lambda p: p[0]), has_video=has_video)
    if not items:
        raise UsageError(f"{path}: no items (a CSV needs a header row, then a line per video)")
    return items


# -- reading ----------------------------------------------------------------------------------


def _read(path: Path) -> tuple[list[_Raw], list[tuple[int, str]]]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not a manifest") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ManifestError(path, [(line, "not UTF-8 text")]) from None
    if _is_json_lines(path, text):
        return _read_json_lines(text)
    return _read_csv(text)


def _is_json_lines(path: Path, text: str) -> bool:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return True
    if suffix == ".csv":
        return False
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first.startswith("{")


def _read_json_lines(text: str) -> tuple[list[_Raw], list[tuple[int, str]]]:
    raws: list[_Raw] = []
    problems: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append((number, f"not a JSON object ({exc.msg})"))
            continue
        if not isinstance(obj, dict):
            problems.append((number, "not a JSON object"))
            continue
        unknown = sorted(set(obj) - set(MANIFEST_COLUMNS))
        if unknown:
            problems.append((number, f"unknown key(s) {', '.join(unknown)}"))
            continue
        raws.append(
            _Raw(
                number,
                obj.get("source"),
                obj.get("lesson"),
                obj.get("course"),
                obj.get("captions"),
            )
        )
    return raws, problems


def _read_csv(text: str) -> tuple[list[_Raw], list[tuple[int, str]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    raws: list[_Raw] = []
    problems: list[tuple[int, str]] = []
    header: list[str] | None = None
    end = 0  # the physical line the previous record ended on
    try:
        for record in reader:
            start, end = end + 1, reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            if header is None:
                header = [cell.strip().lower() for cell in record]
                trouble = _check_header(header)
                if trouble:
                    return [], [(start, trouble)]
                continue
            if len(record) > len(header):
                problems.append(
                    (start, f"{len(record)} fields, but the header names {len(header)}")
                )
                continue
            cells = dict(zip(header, (c.strip() for c in record), strict=False))
            raws.append(
                _Raw(
                    start,
                    cells.get("source", ""),
                    cells.get("lesson") or None,
                    cells.get("course") or None,
                    cells.get("captions") or None,
                )
            )
    except csv.Error as exc:
        problems.append((reader.line_num, f"not valid CSV ({exc})"))
    return raws, problems


def _check_header(header: list[str]) -> str | None:
    unknown = [c for c in header if c not in MANIFEST_COLUMNS]
    if unknown:
        return (
            f"the header names unknown column(s) {', '.join(repr(c) for c in unknown)}; "
            "it takes source, lesson, course, captions"
        )
    if len(set(header)) != len(header):
        return "the header names a column twice"
    if "source" not in header:
        return "the header has no source column"
    if "lesson" not in header and "course" not in header:
        return "the header has neither a lesson nor a course column"
    return None


# -- checking one line --------------------------------------------------------------------------


def _target(raw: _Raw) -> tuple[Target | None, str | None]:
    given = [
        (kind, value) for kind, value in ((Kind.LESSON, raw.lesson), (Kind.COURSE, raw.course))
    ]
    present = [(kind, value) for kind, value in given if value is not None and value != ""]
    if len(present) == 2:
        return None, "names both a lesson and a course; name exactly one"
    if not present:
        return None, "names neither a lesson nor a course; name exactly one"
    ((kind, value),) = present
    number = _positive_int(value)
    if number is None:
        return None, f"{kind.value} {value!r} is not a positive integer id"
    return Target(kind, number), None


def _positive_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 1 else None
    if isinstance(value, str) and value.strip().isdigit() and value.strip().isascii():
        number = int(value.strip())
        return number if number >= 1 else None
    return None


def _captions(value: Any, problems: list[str]) -> tuple[tuple[str, str], ...]:
    """`LANG=URL LANG=URL` (CSV) or `{"LANG": "URL"}` (JSON) as checked pairs; each problem
    is added to `problems`."""
    if value is None or value == "":
        return ()
    pairs: list[tuple[Any, Any]] = []
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, str):
        for word in value.split():
            lang, sep, url = word.partition("=")
            if not sep:
                problems.append(f"captions {word!r} is not LANG=URL")
                continue
            pairs.append((lang, url))
    else:
        problems.append('captions must be LANG=URL pairs (CSV) or {"LANG": "URL"} (JSON)')
        return ()
    out: list[tuple[str, str]] = []
    for lang, url in pairs:
        try:
            if not isinstance(lang, str) or not isinstance(url, str):
                raise UsageError("captions must map language codes to URLs")
            code = check_language(lang)
            if any(code.lower() == seen.lower() for seen, _ in out):
                raise UsageError(f"captions name language {code} twice")
            out.append((code, check_subtitle_url(url)))
        except UsageError as exc:
            problems.append(f"captions: {exc}")
    return tuple(out)


def _source(value: Any, base: Path) -> Source:
    if not isinstance(value, str) or not value.strip():
        raise UsageError("no source (a file path or an http(s):// URL)")
    return check_source(value.strip(), base=base)
