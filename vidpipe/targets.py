"""A target is a lesson or a course. This is the one place that knows where their Mux IDs live:
lesson -> lesson.mux_asset_id / mux_playback_id, course -> world.mux_preview_asset_id /
mux_preview_playback_id. Passthrough text is made and parsed here too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Column, Table

from vidpipe.db import Lesson, World
from vidpipe.errors import UsageError


class Kind(StrEnum):
    LESSON = "lesson"
    COURSE = "course"


@dataclass(frozen=True)
class Columns:
    table: Table
    asset: Column[str]
    playback: Column[str]


_LESSON_T: Table = Lesson.__table__  # type: ignore[attr-defined]
_WORLD_T: Table = World.__table__  # type: ignore[attr-defined]

COLUMNS: dict[Kind, Columns] = {
    Kind.LESSON: Columns(_LESSON_T, _LESSON_T.c.mux_asset_id, _LESSON_T.c.mux_playback_id),
    Kind.COURSE: Columns(
        _WORLD_T, _WORLD_T.c.mux_preview_asset_id, _WORLD_T.c.mux_preview_playback_id
    ),
}

_PASSTHROUGH_KEY = {Kind.LESSON: "lesson_id", Kind.COURSE: "course_id"}
_KEY_KIND = {v: k for k, v in _PASSTHROUGH_KEY.items()}


@dataclass(frozen=True, order=True)
class Target:
    kind: Kind
    id: int

    @property
    def columns(self) -> Columns:
        return COLUMNS[self.kind]

    @property
    def passthrough(self) -> str:
        """The passthrough vidpipe sets on its uploads, e.g. `{"lesson_id": 42}`."""
        return json.dumps({_PASSTHROUGH_KEY[self.kind]: self.id})

    @property
    def external_id(self) -> str:
        """The `meta.external_id` of its assets, e.g. `lesson:42` (shown in Mux's dashboard)."""
        return f"{self.kind.value}:{self.id}"

    def as_json(self) -> dict[str, object]:
        return {"kind": self.kind.value, "id": self.id}

    def __str__(self) -> str:
        return f"{self.kind.value} {self.id}"


def from_passthrough(text: str | None) -> Target | None:
    """The target a passthrough names, or None when the passthrough is not vidpipe's."""
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or len(data) != 1:
        return None
    ((key, value),) = data.items()
    kind = _KEY_KIND.get(key)
    if kind is None or not isinstance(value, int) or isinstance(value, bool) or value < 1:
        return None
    return Target(kind, value)


class TargetChoiceError(UsageError):
    """The caller named both a lesson and a course, neither, or a non-positive ID.

    `problem` is `"both"`, `"none"` or `"id"`; the CLI words it with its option names."""

    def __init__(self, problem: str, message: str) -> None:
        super().__init__(message)
        self.problem = problem


def choose(lesson: int | None, course: int | None, *, required: bool = True) -> Target | None:
    """The target named by exactly one of `lesson` / `course` (or None, when not required)."""
    if lesson is not None and course is not None:
        raise TargetChoiceError("both", "name a lesson or a course, not both")
    if lesson is None and course is None:
        if required:
            raise TargetChoiceError("none", "name a target: a lesson or a course")
        return None
    kind, value = (Kind.LESSON, lesson) if lesson is not None else (Kind.COURSE, course)
    assert value is not None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TargetChoiceError("id", f"a {kind.value} id must be a positive integer")
    return Target(kind, value)
