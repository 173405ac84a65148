"""Options more than one command takes, each defined once: its flag, help, parsing and shell
completion.

Single options are `Annotated` aliases (`LessonOpt`, `JsonOpt` ...) a command names as a
parameter's type. The upload options (chunk size, replace, no-wait, timeout and the seven
asset settings) come as one group: decorate a command with `@upload_options` and give it a
parameter `choices: UploadChoices`; the group's options stand where that parameter stands,
and the command receives them parsed and checked (bad values exit 2 before anything is
created), ready for `Vidpipe.upload` / `Vidpipe.import_manifest` as `**choices.kwargs()`.
"""

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

import typer

LessonOpt = Annotated[
    int | None, typer.Option("--lesson", help="Lesson id (table lesson).", show_default=False)
]
CourseOpt = Annotated[
    int | None, typer.Option("--course", help="Course id (table world).", show_default=False)
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print exactly one JSON document on stdout.")]
WideOpt = Annotated[
    bool, typer.Option("--wide", help="Full IDs in terminal tables (never shortened with …).")
]


def suggest(*values: str) -> Any:
    """Shell completion for an option: the `values` that start with what was typed. Cheap
    (no imports), so completing never loads the core."""

    def complete(incomplete: str) -> list[str]:
        return [v for v in values if v.startswith(incomplete)]

    return complete


def duration(text: str, option: str) -> float:
    """`text` (90s, 30m, 2d ...) in seconds; a bad one is a usage error naming `option`."""
    from vidpipe.units import parse_duration

    return parse_duration(text, label=option)


# -- the upload group ----------------------------------------------------------------------------

ASSET_OPTIONS: dict[str, str] = {
    "playback_policy": "--playback-policy",
    "video_quality": "--video-quality",
    "max_resolution": "--max-resolution",
    "captions": "--captions",
    "static_renditions": "--static-rendition",
    "normalize_audio": "--normalize-audio",
    "test": "--test",
}
"""Each asset setting (`AssetSettings` field) and the option that overrides it."""


def _choice(flag: str, values: tuple[str, ...], default: str) -> Any:
    """An option taking one of `values` (offered as completions); `default` says what applies
    when it is not given."""
    listed = ", ".join(values[:-1]) + f" or {values[-1]}"
    return Annotated[
        str | None,
        typer.Option(flag, help=f"{listed} (default: {default}).", autocompletion=suggest(*values)),
    ]


# Values offered as completions are written here, not imported from `vidpipe.assets`:
# completing (and --help) must not load the core. `AssetSettings.override` checks them.
_CHOICES = {
    "playback_policy": (
        "--playback-policy",
        ("public", "signed"),
        "VIDPIPE_PLAYBACK_POLICY, or VIDPIPE_PREVIEW_PLAYBACK_POLICY for a course",
    ),
    "video_quality": (
        "--video-quality",
        ("basic", "plus", "premium"),
        "VIDPIPE_VIDEO_QUALITY, else Mux's",
    ),
    "max_resolution": (
        "--max-resolution",
        ("1080p", "1440p", "2160p"),
        "VIDPIPE_MAX_RESOLUTION, else Mux's",
    ),
}
_CHUNK_HELP = (
    "Bytes per PUT: auto (adaptive), or bytes or units (256KiB, 8MiB), a multiple of 256 KiB."
)
_CAPTIONS_HELP = (
    "Languages for Mux-generated captions, e.g. en or en,fr; none for no captions "
    "(default: VIDPIPE_CAPTIONS)."
)
_RENDITION_HELP = (
    "An MP4 rendition (highest, audio-only, 2160p ... 270p); repeatable; none for no MP4s "
    "(default: VIDPIPE_STATIC_RENDITIONS)."
)
_UPLOAD_GROUP: list[tuple[str, Any, Any]] = [
    (
        "chunk_size",
        Annotated[
            str,
            typer.Option(
                help=_CHUNK_HELP,
                autocompletion=suggest(
                    "auto", "256KiB", "1MiB", "8MiB", "32MiB", "64MiB", "128MiB"
                ),
            ),
        ],
        "auto",
    ),
    (
        "replace",
        Annotated[
            bool,
            typer.Option(
                "--replace",
                help="Replace the video a lesson or course records already (for import: one "
                "the manifest did not upload).",
            ),
        ],
        False,
    ),
    (
        "no_wait",
        Annotated[
            bool,
            typer.Option(
                "--no-wait", help="Stop after the transfer; sync or a webhook records it."
            ),
        ],
        False,
    ),
    (
        "timeout",
        Annotated[
            str,
            typer.Option(
                help="How long to wait for each asset to be ready (e.g. 30m, 90s).",
                autocompletion=suggest("90s", "10m", "30m", "1h", "2h"),
            ),
        ],
        "30m",
    ),
    *((name, _choice(*choice), None) for name, choice in _CHOICES.items()),
    (
        "captions",
        Annotated[
            str | None, typer.Option("--captions", help=_CAPTIONS_HELP, metavar="LANG[,LANG]")
        ],
        None,
    ),
    (
        "static_rendition",
        Annotated[
            list[str] | None,
            typer.Option("--static-rendition", help=_RENDITION_HELP, metavar="R"),
        ],
        None,
    ),
    (
        "normalize_audio",
        Annotated[
            bool | None,
            typer.Option(
                "--normalize-audio/--no-normalize-audio",
                help="Normalize the audio loudness (default: VIDPIPE_NORMALIZE_AUDIO).",
            ),
        ],
        None,
    ),
    (
        "test",
        Annotated[
            bool,
            typer.Option(
                "--test", help="Create Mux test assets (watermarked, 10 s, deleted after 24 h)."
            ),
        ],
        False,
    ),
]


@dataclass(frozen=True)
class UploadChoices:
    """The upload group's options, parsed and checked."""

    chunk_size: int
    replace: bool
    wait: bool
    timeout: float
    assets: dict[str, Any] = field(default_factory=dict)
    """The asset settings given (`AssetSettings.override` keywords); those not given are left
    out, so the configured settings apply."""

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `Vidpipe.upload` / `Vidpipe.import_manifest`."""
        return {
            "chunk_size": self.chunk_size,
            "replace": self.replace,
            "wait": self.wait,
            "timeout": self.timeout,
            **self.assets,
        }


def asset_options(
    playback_policy: str | None = None,
    video_quality: str | None = None,
    max_resolution: str | None = None,
    captions: str | None = None,
    static_rendition: list[str] | None = None,
    normalize_audio: bool | None = None,
    test: bool = False,
) -> dict[str, Any]:
    """The asset-setting options given, checked, as keyword overrides for
    `Vidpipe.upload` / `Vidpipe.asset_settings` (options not given are left out, so the
    settings apply). A bad value raises before anything is created: exit 2, naming the
    option and the allowed values."""
    from vidpipe.assets import AssetSettings

    given: dict[str, Any] = {
        "playback_policy": playback_policy,
        "video_quality": video_quality,
        "max_resolution": max_resolution,
        "captions": captions,
        "static_renditions": static_rendition or None,
        "normalize_audio": normalize_audio,
        "test": test or None,
    }
    given = {name: value for name, value in given.items() if value is not None}
    # The core's own check (`AssetSettings.override`), so the CLI and the library agree.
    checked = AssetSettings().override(**given)
    return {name: getattr(checked, name) for name in given}


def _upload_choices(given: dict[str, Any]) -> UploadChoices:
    from vidpipe.units import parse_chunk_size

    chunk_size = parse_chunk_size(given.pop("chunk_size"))
    timeout = duration(given.pop("timeout"), "--timeout")
    replace, no_wait = given.pop("replace"), given.pop("no_wait")
    return UploadChoices(chunk_size, replace, not no_wait, timeout, asset_options(**given))


Command = TypeVar("Command", bound=Callable[..., Any])


def option_group(
    place: str, options: list[tuple[str, Any, Any]], build: Callable[[dict[str, Any]], Any]
) -> Callable[[Command], Command]:
    """A decorator giving a command the `options` (`(parameter, Annotated type, default)`)
    where its keyword-only parameter `place` stands; the command is called with
    `place=build(values)` instead (`values`: those options by parameter name)."""

    def decorate(command: Command) -> Command:
        signature = inspect.signature(command)
        group = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=kind, default=value)
            for name, kind, value in options
        ]
        params: list[inspect.Parameter] = []
        for param in signature.parameters.values():
            params.extend(group if param.name == place else [param])

        @functools.wraps(command)
        def with_group(*args: Any, **kwargs: Any) -> Any:
            values = {name: kwargs.pop(name) for name, _kind, _value in options}
            return command(*args, **{place: build(values)}, **kwargs)

        # What Typer reads: the group's options instead of `place`.
        with_group.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        with_group.__annotations__ = {p.name: p.annotation for p in params}
        return with_group  # type: ignore[return-value]

    return decorate


upload_options = option_group("choices", _UPLOAD_GROUP, _upload_choices)
"""The upload group: a command's keyword-only `choices: UploadChoices` parameter becomes
chunk size, replace, no-wait, timeout and the seven asset options."""


@dataclass(frozen=True)
class Named:
    """The target the options name: `--lesson ID` or `--course ID` (checked by the core)."""

    lesson: int | None
    course: int | None

    def kwargs(self) -> dict[str, Any]:
        """`lesson=..., course=...` for the facade."""
        return {"lesson": self.lesson, "course": self.course}

    @property
    def label(self) -> str:
        return f"lesson {self.lesson}" if self.lesson is not None else f"course {self.course}"


target_options = option_group(
    "target",
    [("lesson", LessonOpt, None), ("course", CourseOpt, None)],
    lambda values: Named(values["lesson"], values["course"]),
)
"""`--lesson` and `--course`: a command's keyword-only `target: Named` parameter."""


def _ui(values: dict[str, Any]) -> Any:
    from vidpipe.cli.base import make_ui

    return make_ui(values["json_out"], wide=values.get("wide", False))


json_output = option_group("ui", [("json_out", JsonOpt, False)], _ui)
"""`--json`: a command's keyword-only `ui: UI` parameter becomes the option, and the
command gets the UI it asks for (one JSON document on stdout with --json)."""

table_output = option_group("ui", [("wide", WideOpt, False), ("json_out", JsonOpt, False)], _ui)
"""`--wide` and `--json`, for commands that print tables: as `json_output`."""


def command(
    group: typer.Typer,
    name: str | None = None,
    *,
    output: str | None = None,
    target: bool = False,
    upload: bool = False,
) -> Callable[[Command], Command]:
    """Register a command on `group` (`app`, `db_app` ...), with the option groups it asks
    for, each standing where its keyword-only parameter stands in the signature:
    `output="json"` (`--json`) or `"table"` (`--wide`, `--json`) for `ui: UI`; `target` for
    `target: Named`; `upload` for `choices: UploadChoices`."""

    def register(function: Command) -> Command:
        if output is not None:
            function = {"json": json_output, "table": table_output}[output](function)
        if target:
            function = target_options(function)
        if upload:
            function = upload_options(function)
        group.command(name)(function)
        return function

    return register
