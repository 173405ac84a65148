"""Options shared by commands are defined once (same flags, same completion wherever they
appear), and the checks behind two of them live in the library: the token lifetime of `url`
and the "exactly one of an asset, a lesson or a course" of `delete`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Platform, Result

from vidpipe.api import Vidpipe
from vidpipe.delete import DeleteChoiceError
from vidpipe.emulator import Emulator
from vidpipe.errors import UsageError
from vidpipe.playback import MAX_TOKEN_LIFETIME, TokenLifetimeError

VIDPIPE = Path(sys.executable).parent / "vidpipe"


def complete(words: str) -> list[str]:
    env = {**os.environ, "_VIDPIPE_COMPLETE": "complete_bash", "COMP_WORDS": words}
    env["COMP_CWORD"] = str(len(words.split()) - (0 if words.endswith(" ") else 1))
    out = subprocess.run([str(VIDPIPE)], env=env, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


@pytest.mark.parametrize(
    ("option", "typed", "offered"),
    [
        ("--chunk-size", "", {"auto", "256KiB", "32MiB"}),
        ("--timeout", "", {"90s", "30m", "1h"}),
        ("--playback-policy", "s", {"signed"}),
        ("--video-quality", "p", {"plus", "premium"}),
        ("--max-resolution", "2", {"2160p"}),
    ],
)
def test_upload_and_import_offer_the_same_values_for_their_shared_options(
    option: str, typed: str, offered: set[str]
) -> None:
    for command in ("upload clip.mp4", "import manifest.csv"):
        assert set(complete(f"vidpipe {command} {option} {typed}")) >= offered, command


def test_upload_and_import_take_the_same_upload_options() -> None:
    def options(command: str) -> set[str]:
        out = subprocess.run(
            [str(VIDPIPE), command, "--help"], capture_output=True, text=True, check=True
        ).stdout
        return {word.rstrip(",") for word in out.split() if word.startswith("--")}

    shared = {
        "--chunk-size",
        "--replace",
        "--no-wait",
        "--timeout",
        "--playback-policy",
        "--video-quality",
        "--max-resolution",
        "--captions",
        "--static-rendition",
        "--normalize-audio",
        "--test",
        "--json",
    }
    assert shared <= options("upload")
    assert shared <= options("import")


def test_a_bad_asset_option_is_refused_by_import_as_by_upload(
    env: Platform, emulator: Emulator, vp: Callable[..., Result], tmp_path: Path
) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("source,lesson\nhttps://example.com/a.mp4,1\n")
    for args in (("upload", "https://example.com/a.mp4", "--lesson", "1"), ("import", manifest)):
        res = vp(*args, "--video-quality", "ultra")
        assert res.code == 2
        assert res.err.startswith("vidpipe: error: --video-quality: ")
    assert emulator.assets == {}


@pytest.mark.parametrize("expires", [0.0, -1.0, MAX_TOKEN_LIFETIME + 1])
def test_the_library_refuses_a_token_lifetime_out_of_range_naming_no_option(
    env: Platform, emulator: Emulator, expires: float
) -> None:
    asked = len(emulator.request_log)
    with Vidpipe.from_env() as lib, pytest.raises(TokenLifetimeError) as refused:
        lib.url(lesson=1, expires=expires)
    assert isinstance(refused.value, UsageError)
    assert "--" not in str(refused.value)
    assert len(emulator.request_log) == asked  # refused before asking Mux anything


def test_the_cli_words_the_lifetime_bound_with_its_option(
    env: Platform, vp: Callable[..., Result]
) -> None:
    res = vp("url", "--lesson", "1", "--expires", "367d")
    assert (res.code, res.err) == (
        2,
        "vidpipe: error: --expires must be more than 0 and at most 366d\n",
    )


@pytest.mark.parametrize(
    ("named", "problem"),
    [
        ({"asset_id": "a", "lesson": 1}, "count"),
        ({"lesson": 1, "course": 1}, "count"),
        ({}, "count"),
        ({"asset_id": "  "}, "empty"),
    ],
)
def test_the_library_checks_delete_names_exactly_one_thing(
    env: Platform, emulator: Emulator, named: dict[str, object], problem: str
) -> None:
    asked = len(emulator.request_log)
    with Vidpipe.from_env() as lib, pytest.raises(DeleteChoiceError) as refused:
        lib.plan_delete(**named)  # type: ignore[arg-type]
    assert refused.value.problem == problem
    assert "--" not in str(refused.value)
    assert len(emulator.request_log) == asked
