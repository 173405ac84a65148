"""The terminal at a glance: tables that fit 80 to 200 columns, a live count during long walks
(and nothing added to plain or JSON output), and shell completion.

Tables are rendered from real results (the facade against the emulator) into rich consoles of
a given width; the live count is checked through the facade's events, through the UI with a
forced terminal, and through a real pseudo-terminal running the real `vidpipe` process.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import string
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Platform, Result, fast_retry, make_video
from rich.cells import cell_len
from rich.console import Console
from sqlmodel import Session
from terminal_helpers import run_on_terminal

from vidpipe.api import Vidpipe
from vidpipe.db import Lesson, World
from vidpipe.emulator import Emulator
from vidpipe.progress import ApiCall, Event, Step, StepProgress, Waiting
from vidpipe.reconcile import Report
from vidpipe.render import STATUS_ROWS, render_report, render_status
from vidpipe.render_import import render_import
from vidpipe.status import StatusEntry, StatusReport
from vidpipe.targets import Kind, Target
from vidpipe.ui import UI

WIDTHS = (80, 100, 120, 200)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
VIDPIPE = Path(sys.executable).parent / "vidpipe"
TITLES = {
    1: "Knots and Hitches: the Bowline",
    2: "Reefing the Mainsail in a Rising Wind",
    3: "Tides",
}


@pytest.fixture(params=["sqlite"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Rendering does not depend on the database: SQLite only."""
    return f"sqlite:///{tmp_path / 'platform.db'}"


@pytest.fixture(autouse=True)
def fast(mux_tuning: dict[str, Any]) -> None:
    mux_tuning["retry"] = fast_retry()
    mux_tuning["pace"] = False


def mux_like_id() -> str:
    """An ID as long as Mux's (44 letters and digits)."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(44))


def set_titles(platform: Platform) -> None:
    with Session(platform.engine) as s:
        for n, title in TITLES.items():
            row = s.get(Lesson, n)
            assert row is not None
            row.title = title
            s.add(row)
        course = s.get(World, 1)
        assert course is not None
        course.title = "Course preview: Sailing Basics"
        s.add(course)
        s.commit()


def terminal_ui(width: int, **kwargs: Any) -> tuple[UI, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    ui = UI(
        out=Console(width=width, file=out, force_terminal=True, highlight=False, soft_wrap=True),
        err=Console(width=width, file=err, force_terminal=True, highlight=False, soft_wrap=True),
        **kwargs,
    )
    return ui, out, err


def lines_of(buf: io.StringIO) -> list[str]:
    return [ANSI.sub("", line) for line in buf.getvalue().splitlines()]


def assert_fits(lines: list[str], width: int) -> None:
    too_wide = [line for line in lines if cell_len(line.rstrip()) > width]
    assert not too_wide, too_wide


def assert_whole(lines: list[str], words: list[str]) -> None:
    """Every word appears unbroken on some line (a word split across lines would not)."""
    missing = [w for w in words if not any(w in line for line in lines)]
    assert not missing, (missing, lines)


# -- real results --------------------------------------------------------------------------


@pytest.fixture
def three_missing(env: Platform) -> list[str]:
    """Lessons 1-3 name assets Mux has never had: three `missing_asset` items."""
    set_titles(env)
    ids = [mux_like_id() for _ in range(3)]
    for n, aid in enumerate(ids, start=1):
        env.set_lesson(n, aid, mux_like_id())
    return ids


@pytest.fixture
def verify_report(three_missing: list[str]) -> Report:
    with Vidpipe.from_env() as vp:
        return vp.verify()


@pytest.fixture
def few_rows(env: Platform, emulator: Emulator) -> dict[str, Any]:
    """Lessons 1 and 2 ready (course 1 shares lesson 1's asset), lesson 3 missing on Mux."""
    set_titles(env)
    a = emulator.seed_asset(passthrough=json.dumps({"lesson_id": 1}))
    b = emulator.seed_asset(passthrough=json.dumps({"lesson_id": 2}))
    pa, pb = a["playback_ids"][0]["id"], b["playback_ids"][0]["id"]
    env.set_lesson(1, a["id"], pa)
    env.set_lesson(2, b["id"], pb)
    env.set_lesson(3, mux_like_id(), mux_like_id())
    with Session(env.engine) as s:
        course = s.get(World, 1)
        assert course is not None
        course.mux_preview_asset_id, course.mux_preview_playback_id = a["id"], pa
        s.add(course)
        s.commit()
    return {"assets": [a["id"], b["id"]], "playback": [pa, pb]}


@pytest.fixture
def sync_report(env: Platform, emulator: Emulator, three_missing: list[str]) -> Report:
    """Three rows cleared and one unrecorded asset recorded, for real."""
    emulator.seed_asset(passthrough=json.dumps({"course_id": 2}))
    with Vidpipe.from_env() as vp:
        return vp.sync()


# -- tables that fit -----------------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_three_missing_assets_take_a_few_lines_at_any_width(
    verify_report: Report, three_missing: list[str], width: int
) -> None:
    ui, out, _ = terminal_ui(width)
    render_report(ui, verify_report, title="verify")
    lines = lines_of(out)
    assert_fits(lines, width)
    assert len(lines) <= 8  # 7, plus the line naming the Mux environment
    assert_whole(lines, ["missing_asset", "lesson 1", "lesson 2", "lesson 3", "(404)"])
    assert_whole(lines, [aid[:12] for aid in three_missing])
    if width >= 200:  # room enough: nothing is shortened
        assert_whole(lines, three_missing)


@pytest.mark.parametrize("width", WIDTHS)
def test_status_reads_titles_and_statuses_whole(
    env: Platform, few_rows: dict[str, Any], width: int
) -> None:
    with Vidpipe.from_env() as vp:
        report = vp.status()
    ui, out, _ = terminal_ui(width)
    render_status(ui, report)
    lines = lines_of(out)
    assert_fits(lines, width)
    title_words = " ".join([*TITLES.values(), "Course preview: Sailing Basics"]).split()
    assert_whole(lines, ["ready", "missing", "lesson 1", "course 1", *title_words])
    assert_whole(lines, [aid[:12] for aid in few_rows["assets"]])
    # the row needing attention comes first
    body = [line for line in lines if line.startswith(("lesson", "course"))]
    assert body[0].startswith("lesson 3") and "missing" in body[0]
    assert len(lines) <= (13 if width < 120 else 8)  # with the Mux environment's line
    if width >= 120:  # every title on one line
        for title in TITLES.values():
            assert any(title in line for line in lines), title


@pytest.mark.parametrize("width", WIDTHS)
def test_sync_table_fits_with_its_actions(
    sync_report: Report, three_missing: list[str], width: int
) -> None:
    assert [d.action for d in sync_report.drift].count("cleared row") == 3
    ui, out, _ = terminal_ui(width)
    render_report(ui, sync_report, title="sync")
    lines = lines_of(out)
    assert_fits(lines, width)
    assert_whole(lines, ["missing_asset", "unrecorded", "course 2", "cleared row", "recorded"])
    assert len(lines) <= (17 if width < 100 else 10)  # with the Mux environment's line


def test_wide_keeps_every_id_whole_even_at_80_columns(
    verify_report: Report, three_missing: list[str]
) -> None:
    ui, out, _ = terminal_ui(80, wide=True)
    render_report(ui, verify_report, title="verify")
    lines = lines_of(out)
    assert_fits(lines, 80)
    assert_whole(lines, [*three_missing, "missing_asset", "lesson 3"])
    assert "…" not in "".join(lines)


@pytest.fixture
def import_report(env: Platform, tmp_path: Path) -> Any:
    """A real import of two files, done."""
    for n in (1, 2):
        make_video(tmp_path / f"clip-{n}.mp4", 256 * 1024, seed=n)
    manifest = tmp_path / "course.csv"
    manifest.write_text("source,lesson\nclip-1.mp4,1\nclip-2.mp4,2\n")
    with Vidpipe.from_env() as vp:
        report = vp.import_manifest(manifest)
    assert [i.state.value for i in report.items] == ["done", "done"]
    return report


@pytest.mark.parametrize("width", WIDTHS)
def test_an_import_table_keeps_one_line_per_item_at_any_width(
    import_report: Any, width: int
) -> None:
    ui, out, _ = terminal_ui(width)
    render_import(ui, import_report)
    lines = lines_of(out)
    assert_fits(lines, width)
    ids = [x for i in import_report.items for x in (i.asset_id, i.playback_id)]
    assert_whole(lines, [x[:12] for x in ids])
    for item in import_report.items:  # one line each: line, target, file, state and both IDs
        (row,) = [line for line in lines if f"clip-{item.target.id}.mp4" in line]
        assert row.split()[:3] == [str(item.line), *str(item.target).split()]
        assert row.split()[4] == "done"
        assert item.asset_id[:12] in row and item.playback_id[:12] in row
    if width >= 200:
        assert_whole(lines, ids)


def test_an_import_table_with_wide_keeps_every_id_whole(import_report: Any) -> None:
    ui, out, _ = terminal_ui(80, wide=True)
    render_import(ui, import_report)
    lines = lines_of(out)
    assert_fits(lines, 80)
    assert_whole(lines, [x for i in import_report.items for x in (i.asset_id, i.playback_id)])
    assert "…" not in "".join(lines)


def test_a_terminal_too_narrow_for_a_table_gets_a_list(
    verify_report: Report, three_missing: list[str]
) -> None:
    ui, out, _ = terminal_ui(40)
    render_report(ui, verify_report, title="verify")
    lines = lines_of(out)
    assert_fits(lines, 40)
    assert_whole(lines, ["missing_asset  lesson 1", "missing_asset  lesson 3", "(404)"])


def test_plain_and_json_output_keep_full_ids(
    three_missing: list[str], cli: Callable[..., Result]
) -> None:
    plain = cli("verify")
    assert plain.code == 1
    rows = [line for line in plain.out.splitlines() if line.startswith("kind=")]
    assert len(rows) == 3
    for aid, line in zip(three_missing, rows, strict=True):
        assert f"asset={aid} " in line and "…" not in line
    doc = json.loads(cli("verify", "--json").out)
    assert [d["asset_id"] for d in doc["drift"]] == three_missing


# -- large catalogues in status ------------------------------------------------------------


def catalogue(n: int, attention: dict[int, str]) -> StatusReport:
    """`n` lessons, ready with their playback ID, except those in `attention` (id -> status)."""
    entries = []
    for i in range(1, n + 1):
        status = attention.get(i, "ready")
        entries.append(
            StatusEntry(
                Target(Kind.LESSON, i),
                f"Lesson {i}",
                f"asset{i:040d}",
                f"play{i:040d}",
                status,
                [f"play{i:040d}"] if status == "ready" else [],
            )
        )
    return StatusReport(entries)


def test_a_large_status_shows_what_needs_attention_and_counts_the_rest() -> None:
    report = catalogue(5000, {17: "missing", 4000: "errored", 4999: "preparing"})
    ui, out, _ = terminal_ui(100)
    render_status(ui, report)
    lines = lines_of(out)
    body = [line.split()[:3] for line in lines if line.startswith("lesson")]
    assert body == [
        ["lesson", "17", "missing"],
        ["lesson", "4000", "errored"],
        ["lesson", "4999", "preparing"],
    ]
    assert lines[-1] == (
        "5,000 targets: 3 need attention, 4,997 ready (not shown); --all lists them all"
    )
    assert len(lines) <= 8


def test_status_all_and_plain_output_list_every_row() -> None:
    report = catalogue(300, {5: "missing"})
    ui, out, _ = terminal_ui(120)
    render_status(ui, report, show_all=True)
    assert sum(line.startswith("lesson") for line in lines_of(out)) == 300
    plain_out = io.StringIO()
    plain = UI(out=Console(file=plain_out, force_terminal=False))
    render_status(plain, report)
    assert len(plain_out.getvalue().splitlines()) == 300


def test_more_rows_needing_attention_than_fit_are_capped_and_counted() -> None:
    report = catalogue(100, {i: "missing" for i in range(1, 51)})
    ui, out, _ = terminal_ui(120)
    render_status(ui, report)
    lines = lines_of(out)
    assert sum(line.startswith("lesson") for line in lines) == STATUS_ROWS
    assert f"50 need attention ({STATUS_ROWS} shown), 50 ready (not shown)" in lines[-1]


# -- progress --------------------------------------------------------------------------------


@pytest.fixture
def many_assets(env: Platform, emulator: Emulator) -> int:
    """250 ready assets (3 list pages), each recorded on its lesson, and 2 rows whose asset
    is gone (one direct GET each)."""
    n = 250
    env.add_lessons(range(4, n + 3))
    seeded = emulator.seed_assets(n, passthrough_fn=lambda i: json.dumps({"lesson_id": i + 1}))
    with Session(env.engine) as s:
        for i, a in enumerate(seeded[: n - 2]):
            row = s.get(Lesson, i + 1)
            assert row is not None
            row.mux_asset_id, row.mux_playback_id = a["id"], a["playback_ids"][0]["id"]
            s.add(row)
        for lesson_id in (n + 1, n + 2):
            row = s.get(Lesson, lesson_id)
            assert row is not None
            row.mux_asset_id, row.mux_playback_id = mux_like_id(), "pb"
            s.add(row)
        s.commit()
    return n


def test_verify_reports_assets_listed_rows_checked_calls_and_waits(
    many_assets: int, mux_tuning: dict[str, Any]
) -> None:
    mux_tuning["pace"] = True  # the production pacing: it waits, and says so
    events: list[Event] = []
    with Vidpipe.from_env() as vp:
        report = vp.verify(on_progress=events.append)
        assert vp.gateway.on_progress is not events.append  # detached after the walk
    steps = [e for e in events if isinstance(e, StepProgress)]
    assert steps[0].step is Step.DATABASE
    listed = [e.done for e in steps if e.step is Step.LISTING]
    assert listed[0] == 0 and listed[-1] == many_assets and listed == sorted(listed)
    checks = [(e.done, e.total) for e in steps if e.step is Step.CHECKING]
    assert checks == [(0, 2), (1, 2), (2, 2)]
    calls = [e.calls for e in events if isinstance(e, ApiCall)]
    assert len(calls) == report.api_calls == 5
    waits = [e for e in events if isinstance(e, Waiting)]
    assert waits and all(not w.retry and w.seconds > 0 for w in waits)


def test_sync_reports_each_change_applied(many_assets: int) -> None:
    events: list[Event] = []
    with Vidpipe.from_env() as vp:
        report = vp.sync(on_progress=events.append)
    applied = [
        (e.done, e.total) for e in events if isinstance(e, StepProgress) and e.step is Step.APPLYING
    ]
    assert len(report.drift) + len(report.journal) == 4  # two rows cleared, two recorded
    assert applied == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]


def test_status_and_delete_report_their_walks(many_assets: int) -> None:
    events: list[Event] = []
    with Vidpipe.from_env() as vp:
        vp.status(on_progress=events.append)
        listed = [e.done for e in events if isinstance(e, StepProgress) and e.step is Step.LISTING]
        assert listed[-1] == many_assets
        events.clear()
        vp.delete(asset_id=vp.status(lesson=1).entries[0].db_asset_id, on_progress=events.append)
    deleting = [(e.done, e.total) for e in events if isinstance(e, StepProgress)]
    assert deleting == [(0, 1), (1, 1)]
    assert sum(isinstance(e, ApiCall) for e in events) == 2  # DELETE, then the confirming GET


def test_a_retry_after_429_is_reported_as_waiting_for_the_rate_limit(
    env: Platform, emulator: Emulator
) -> None:
    emulator.inject("GET", "/video/v1/assets", "status", status=429)
    events: list[Event] = []
    with Vidpipe.from_env() as vp:
        vp.verify(on_progress=events.append)
    retries = [e for e in events if isinstance(e, Waiting) and e.retry]
    assert len(retries) == 1 and retries[0].rate_limited


def test_the_live_line_shows_the_count_and_clears_when_the_walk_ends() -> None:
    ui, out, err = terminal_ui(80)
    with ui.walk("verify") as update:
        update(StepProgress(Step.LISTING, 0))
        for n in range(1, 12_301):
            update(StepProgress(Step.LISTING, n))
        update(ApiCall(124))
        update(Waiting(0.2))
        time.sleep(0.3)  # a refresh or two
    shown = ANSI.sub("", err.getvalue())
    assert "verify · listing assets: 12,300 · 1 API call · waiting for the rate limit" in shown
    assert out.getvalue() == ""
    # transient: the last thing written erases the line it drew (cursor up, erase line)
    assert err.getvalue().endswith("\x1b[1A\x1b[2K")


def test_off_a_terminal_the_walk_prints_nothing() -> None:
    err = io.StringIO()
    ui = UI(out=Console(file=io.StringIO()), err=Console(file=err))
    with ui.walk("verify") as update:
        update(StepProgress(Step.LISTING, 5))
        update(Waiting(1.0, retry=True, rate_limited=True))
    assert err.getvalue() == ""


# -- the real process in a real terminal -------------------------------------------------------


def run_in_pty(
    args: list[str], env: dict[str, str], *, columns: int = 80, stdout_pipe: bool = False
) -> tuple[int, str, str]:
    """Run `vidpipe ARGS` with stderr (and stdout unless `stdout_pipe`) on a pseudo-terminal
    `columns` wide; return the exit code, what the terminal showed, and the piped stdout."""
    code, shown, piped = run_on_terminal(
        [str(VIDPIPE), *args], env, columns=columns, stdout_pipe=stdout_pipe
    )
    return code, ANSI.sub("", shown.decode(errors="replace")), piped


@pytest.fixture
def process_env(env: Platform) -> Iterator[dict[str, str]]:
    yield {k: v for k, v in os.environ.items() if k != "FORCE_COLOR"}


def test_verify_in_a_real_terminal_shows_its_walk_then_a_table_that_fits(
    many_assets: int, process_env: dict[str, str]
) -> None:
    code, shown, _ = run_in_pty(["verify"], process_env)
    assert code == 1
    assert "listing assets" in shown and "API calls" in shown
    assert "waiting for the rate limit" in shown  # the real process paces itself
    table = shown[shown.index("vidpipe verify: drift") :].splitlines()
    assert_fits(table, 80)
    assert_whole(table, ["missing_asset", f"lesson {many_assets + 1}"])
    assert table[-1].startswith("verify: checked 250 rows")


def test_json_on_a_terminal_still_prints_one_document(
    many_assets: int, process_env: dict[str, str]
) -> None:
    code, shown, piped = run_in_pty(["verify", "--json"], process_env, stdout_pipe=True)
    assert code == 1
    doc = json.loads(piped)  # exactly one document, nothing else on stdout
    assert doc["checked"] == 250 and len(doc["drift"]) == 4
    assert "listing assets" in shown  # the live line went to the terminal (stderr)


# -- completion --------------------------------------------------------------------------------


def complete(words: str) -> list[str]:
    env = {**os.environ, "_VIDPIPE_COMPLETE": "complete_bash", "COMP_WORDS": words}
    env["COMP_CWORD"] = str(len(words.split()) - (0 if words.endswith(" ") else 1))
    out = subprocess.run([str(VIDPIPE)], env=env, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_completion_offers_commands_options_and_values() -> None:
    assert complete("vidpipe sta") == ["status"]
    assert set(complete("vidpipe status --")) >= {"--all", "--wide", "--json", "--lesson"}
    assert complete("vidpipe sync --orphan-min-age 2") == ["24h", "2d"]
    assert {"auto", "32MiB"} <= set(complete("vidpipe upload clip.mp4 --chunk-size "))


def test_show_completion_prints_a_script_for_the_shell() -> None:
    # The shell named, not detected: Typer detects it from the parent processes, and a test
    # run need not have a shell among them (Typer's own switch for its tests turns that off).
    env = {**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    out = subprocess.run(
        [str(VIDPIPE), "--show-completion", "bash"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "_VIDPIPE_COMPLETE=complete_bash" in out.stdout
