"""Text vidpipe did not write never drives the terminal: every command's human output, with
hostile values in every foreign field, on a terminal and off one.

The hostile values are what an instructor can type into a lesson title, what a file or a
manifest can be named, and what Mux hands back (asset IDs, the environment's name, error
messages): rich markup (`[link=…]…[/link]`, `[bold red]`), OSC sequences that rename the
window (`ESC ] 0`) or write the clipboard (`ESC ] 52`), and the 8-bit CSI (`\\x9b`). Each
command runs through the real entry point in-process (plain output, then rich's forced
terminal) and, where a prompt or the real process matters, on a pseudo-terminal. Asserted:
no OSC at all (so no hyperlink, `ESC ] 8`), no BEL, no C1 character, no escape sequence but
the styles and cursor moves rich itself writes; and the hostile text visible as text.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import Platform, Result, fast_retry, make_video
from sqlmodel import Session
from terminal_helpers import run_on_terminal

from vidpipe import demo
from vidpipe.db import Lesson, World
from vidpipe.emulator import Emulator
from vidpipe.text import shown

LINK = "[link=https://evil.example]click[/link]"
OSC_TITLE = "\x1b]0;pwned\x07"
OSC_CLIPBOARD = "\x1b]52;c;ZWNobyBoaQ==\x07"
C1_CSI = "\x9b6n"
REPORT = "\x1b[6n"  # asks the terminal to type its cursor position: never rich's own
STYLE = "[bold red]"
HOSTILE = f"{LINK} {OSC_TITLE}{OSC_CLIPBOARD}{C1_CSI}{REPORT} {STYLE}x"
"""For titles, Mux's fields and messages."""
HOSTILE_NAME = f"[link=evil]click{OSC_TITLE}{OSC_CLIPBOARD}{C1_CSI}{STYLE}.mp4"
"""For file names (no slash, so no closing tag)."""
HOSTILE_ID = f"A1{STYLE}{OSC_TITLE}{C1_CSI}"
"""For IDs in rows and from Mux (no slash, no space)."""
ENVIRONMENT = f"Prod {OSC_CLIPBOARD}{STYLE}"
# What rich writes itself: styles (SGR), and its live displays' cursor moves and erasures.
RICH_OWN = re.compile(r"\x1b\[(?:[0-9;]*m|\?25[hl]|2K|[0-9]*[AG])")
VIDPIPE = Path(sys.executable).parent / "vidpipe"


def assert_safe(output: str) -> None:
    """No control sequence from data: no OSC (hyperlinks, titles, clipboard), no BEL, no C1,
    no escape sequence rich does not write itself."""
    assert "\x1b]" not in output, "an OSC sequence reached the output"
    assert REPORT not in output
    rest = RICH_OWN.sub("", output)
    bad = sorted({f"U+{ord(c):04X}" for c in rest if c in "\x1b\x07" or "\x80" <= c <= "\x9f"})
    assert not bad, (bad, output)


def assert_visible(output: str, *fragments: str) -> None:
    """Each fragment (raw text, control characters and all) shows as text, styles aside:
    with its control characters written as Python escapes (`\\x1b`), or, inside a quoted
    plain `key=value` value, as JSON escapes (`\\u001b`)."""
    text = RICH_OWN.sub("", output)
    for fragment in fragments:
        forms = {shown(fragment), json.dumps(fragment)[1:-1]}
        assert any(form in text for form in forms), (fragment, text)


@pytest.fixture(params=["sqlite"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """What is shown does not depend on the database: SQLite only."""
    return f"sqlite:///{tmp_path / 'platform.db'}"


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """An emulator whose Mux environment has a hostile name."""
    with Emulator(ready_after=0.0, environment_name=ENVIRONMENT) as emu:
        yield emu


@pytest.fixture(autouse=True)
def fast(mux_tuning: dict[str, object]) -> None:
    mux_tuning["retry"] = fast_retry()
    mux_tuning["pace"] = False


@pytest.fixture(params=["plain", "terminal"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Off a terminal (plain lines), or on one (rich's forced terminal, colours on)."""
    if request.param == "terminal":
        monkeypatch.setenv("FORCE_COLOR", "1")
        monkeypatch.delenv("NO_COLOR", raising=False)
        monkeypatch.setenv("COLUMNS", "250")
    else:
        monkeypatch.delenv("FORCE_COLOR", raising=False)
    return str(request.param)


@pytest.fixture
def hostile(env: Platform, emulator: Emulator) -> dict[str, str]:
    """Every row's title hostile; lesson 1 healthy on Mux but its row's playback ID hostile,
    lesson 2's row naming a hostile asset ID Mux does not have, lesson 3's asset errored with
    a hostile message from Mux, an orphan whose Mux ID is hostile, and lessons 4 and 5 free
    for uploads."""
    env.add_lessons([4, 5])
    with Session(env.engine) as s:
        for n in (1, 2, 3, 4, 5):
            row = s.get(Lesson, n)
            assert row is not None
            row.title = f"{HOSTILE} {n}"
            s.add(row)
        course = s.get(World, 1)
        assert course is not None
        course.title = HOSTILE
        s.add(course)
        s.commit()
    healthy = emulator.seed_asset(passthrough=json.dumps({"lesson_id": 1}))
    env.set_lesson(1, healthy["id"], HOSTILE_ID)
    env.set_lesson(2, HOSTILE_ID, HOSTILE_ID)
    failure = {"type": "invalid_input", "messages": [HOSTILE]}
    errored = emulator.seed_asset(
        passthrough=json.dumps({"lesson_id": 3}), status="errored", errors=failure
    )
    env.set_lesson(3, errored["id"], None)
    emulator.seed_asset(passthrough=json.dumps({"lesson_id": 99}), asset_id="orphan" + HOSTILE_ID)
    return {"healthy": healthy["id"]}


def run(vp: Callable[..., Result], *args: str, code: int | None = None) -> str:
    res = vp(*args)
    if code is not None:
        assert res.code == code, res.out + res.err
    assert_safe(res.out)
    assert_safe(res.err)
    return res.out + res.err


# -- the commands, one by one ------------------------------------------------------------------


def test_status_shows_hostile_titles_and_ids_as_text(
    hostile: dict[str, str], mode: str, vp: Callable[..., Result]
) -> None:
    shown = run(vp, "status", "--wide", code=0)
    # The title wraps at its spaces: each of its words shows whole.
    assert_visible(shown, LINK, OSC_TITLE + OSC_CLIPBOARD + C1_CSI + REPORT, STYLE)
    assert_visible(shown, HOSTILE_ID, ENVIRONMENT)
    shown = run(vp, "status", "--lesson", "2", code=0)
    assert_visible(shown, f"{HOSTILE} 2")


def test_verify_and_sync_show_hostile_ids_and_details_as_text(
    hostile: dict[str, str], mode: str, vp: Callable[..., Result]
) -> None:
    shown = run(vp, "verify", "--wide", code=1)
    assert_visible(shown, HOSTILE_ID, "orphan" + HOSTILE_ID)
    # Mux's error message, in the asset_errored item's detail (it wraps at its spaces).
    assert_visible(shown, "errored: [link=https://evil.example]click[/link]")
    assert_visible(shown, OSC_TITLE + OSC_CLIPBOARD + C1_CSI + REPORT)
    run(vp, "verify", "--lesson", "2", code=1)
    shown = run(vp, "sync", "--dry-run", "--wide", code=0)
    assert_visible(shown, "orphan" + HOSTILE_ID)
    run(vp, "sync", "--wide", code=0)


def test_json_keeps_the_exact_values(
    hostile: dict[str, str], mode: str, vp: Callable[..., Result]
) -> None:
    res = vp("status", "--json")
    doc = json.loads(res.out)
    titles = {e["title"] for e in doc["targets"]}
    assert f"{HOSTILE} 1" in titles
    assert_safe(res.out)  # JSON writes control characters as \\u escapes
    res = vp("verify", "--json")
    drift = json.loads(res.out)["drift"]
    assert "orphan" + HOSTILE_ID in {d["asset_id"] for d in drift}
    assert any(d["detail"].endswith(f"errored: {HOSTILE}") for d in drift)


def test_upload_shows_a_hostile_file_name_and_title_as_text(
    hostile: dict[str, str], mode: str, tmp_path: Path, vp: Callable[..., Result]
) -> None:
    clip = make_video(tmp_path / HOSTILE_NAME, 600_000)
    shown = run(vp, "upload", str(clip), "--lesson", "4", code=0)
    assert_visible(shown, "lesson 4: asset")
    missing = tmp_path / ("missing" + HOSTILE_NAME)
    shown = run(vp, "upload", str(missing), "--lesson", "5", code=2)
    assert_visible(shown, "missing" + HOSTILE_NAME, "no such file")


def test_import_shows_hostile_sources_and_bad_lines_as_text(
    hostile: dict[str, str], mode: str, tmp_path: Path, vp: Callable[..., Result]
) -> None:
    make_video(tmp_path / HOSTILE_NAME, 400_000)
    manifest = tmp_path / "course.jsonl"
    manifest.write_text(json.dumps({"source": HOSTILE_NAME, "lesson": 4}) + "\n")
    shown = run(vp, "import", str(manifest), "--dry-run", code=0)
    assert_visible(shown, HOSTILE_NAME)
    shown = run(vp, "import", str(manifest), code=0)
    assert_visible(shown, "done")
    bad = tmp_path / "bad.jsonl"
    lines = [{"source": "gone" + HOSTILE_NAME, "lesson": 5}, {"source": "x.mp4", HOSTILE: 1}]
    bad.write_text("".join(json.dumps(line) + "\n" for line in lines))
    shown = run(vp, "import", str(bad), code=2)
    assert_visible(shown, "line 1:", "line 2:", "gone" + HOSTILE_NAME, HOSTILE)


def test_url_db_pin_and_webhook_apply_show_muxs_fields_as_text(
    hostile: dict[str, str], mode: str, tmp_path: Path, vp: Callable[..., Result]
) -> None:
    healthy = hostile["healthy"]
    run(vp, "url", "--lesson", "1", code=1)  # its row's playback ID is not the asset's
    shown = run(vp, "db", "pin", code=0)
    assert_visible(shown, ENVIRONMENT)
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"type": HOSTILE, "id": HOSTILE_ID, "data": {"id": healthy}}))
    shown = run(vp, "webhook", "apply", str(event), "--no-verify", code=0)
    assert_visible(shown, HOSTILE, HOSTILE_ID)
    errored = {
        "type": "video.upload.errored",
        "id": "evt-1",
        "data": {"id": "up-" + HOSTILE_ID, "error": {"type": "invalid", "message": HOSTILE}},
    }
    event.write_text(json.dumps(errored))
    shown = run(vp, "webhook", "apply", str(event), "--no-verify", code=0)
    assert_visible(shown, HOSTILE)


def test_usage_errors_show_the_values_given_as_text(
    hostile: dict[str, str], mode: str, vp: Callable[..., Result]
) -> None:
    run(vp, "status", "--lesson", HOSTILE_ID, code=2)
    shown = run(vp, "delete", "--asset", HOSTILE_ID, code=2)  # not a terminal: needs --yes
    assert_visible(shown, "--yes")


# -- the real process on a terminal ------------------------------------------------------------


@pytest.fixture
def process_env(hostile: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR")}


@pytest.mark.parametrize(
    "args",
    [["status"], ["verify"], ["sync", "--dry-run"], ["db", "pin"]],
    ids=["status", "verify", "sync --dry-run", "db pin"],
)
def test_on_a_real_terminal_nothing_from_data_drives_it(
    process_env: dict[str, str], args: list[str]
) -> None:
    code, shown, _ = run_on_terminal([str(VIDPIPE), *args], process_env, columns=200)
    text = shown.decode("utf-8", errors="replace")
    assert code in (0, 1), text
    assert_safe(text)
    assert b"\x1b]" not in shown and b"\x9b" not in shown.replace(b"\xc2\x9b", b"")


def test_deletes_question_shows_the_rows_hostile_asset_id_as_text(
    process_env: dict[str, str],
) -> None:
    code, shown, _ = run_on_terminal(
        [str(VIDPIPE), "delete", "--lesson", "2"],
        process_env,
        columns=200,
        answer=(b"[y/N]", b"n\n"),
    )
    text = shown.decode("utf-8", errors="replace")
    assert code == 1, text
    assert_safe(text)
    assert_visible(text, f"Delete asset {HOSTILE_ID} from Mux", "nothing deleted")


def test_the_demo_in_a_hostile_folder_shows_its_path_as_text(
    mode: str, cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The folder given with --dir is in the demo's intro and in every command line it shows."""
    monkeypatch.setattr(demo, "VIDEO_SIZE", 3 * 256 * 1024 + 100)
    monkeypatch.setattr(demo, "CHUNK_SIZE", "256KiB")
    monkeypatch.setattr(demo, "CHUNK_DELAY", 0.0)
    monkeypatch.setattr(demo, "READY_AFTER", 0.0)
    folder = HOSTILE_NAME.removesuffix(".mp4")
    res = cli("demo", "--dir", tmp_path / folder)
    assert res.code == 0, res.err
    assert_safe(res.out)
    assert_safe(res.err)
    assert_visible(res.out, f"{folder}/sample.mp4 --lesson 1")
