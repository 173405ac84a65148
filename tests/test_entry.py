"""The console script's entry point (`vidpipe/__main__.py`): the CLI with the collector tuned
for a short-lived process. Each case runs in a child interpreter, so the test process's own
collector is never touched."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_console_script_is_the_tuned_entry_point() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["vidpipe"] == "vidpipe.__main__:main"


def test_collector_is_off_while_starting_then_on_with_startup_objects_frozen() -> None:
    proc = _python(
        """
        import gc, time
        from vidpipe.__main__ import tune_gc
        assert gc.isenabled() and gc.get_freeze_count() == 0
        timer = tune_gc(0.2)
        assert timer is not None and timer.daemon
        print("starting", gc.isenabled(), gc.get_freeze_count() == 0)
        timer.join(10)
        print("settled", gc.isenabled(), gc.get_freeze_count() > 1000)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["starting False True", "settled True True"]


def test_a_collector_someone_turned_off_stays_off() -> None:
    proc = _python(
        """
        import gc, time
        from vidpipe.__main__ import tune_gc
        gc.disable()
        print(tune_gc(0.05) is None)
        time.sleep(0.3)
        print(gc.isenabled())
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "False"]


def test_everything_is_frozen_before_the_interpreter_shuts_down() -> None:
    # atexit handlers run last-registered first: the probe, registered before tune_gc,
    # runs after tune_gc's freeze, and sees the objects made after startup frozen too.
    proc = _python(
        """
        import atexit, gc
        def probe():
            print("frozen at exit:", gc.get_freeze_count() >= len(gc.get_objects()) // 2)
            print("tracked outside the frozen set:", len(gc.get_objects()) < 1000)
        atexit.register(probe)
        from vidpipe.__main__ import tune_gc
        tune_gc(0.05).join(10)
        made_later = [[i] for i in range(5000)]  # tracked containers, made after startup
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "frozen at exit: True",
        "tracked outside the frozen set: True",
    ]


def test_python_dash_m_vidpipe_runs_the_cli() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "vidpipe", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "upload" in proc.stdout and "verify" in proc.stdout


def test_a_command_exits_with_its_code_through_the_entry_point(tmp_path: Path) -> None:
    # A bad option value: exit 2 and one line, as through `vidpipe.cli` itself.
    proc = subprocess.run(
        [sys.executable, "-m", "vidpipe", "upload", str(tmp_path / "nope.mp4"), "--lesson", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"},
    )
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_rendering_an_upload_loads_no_other_commands_core() -> None:
    # The fixed cost of a short command (see README "Performance"): render.py only reads the
    # other commands' results, so importing it must not import their modules.
    code = (
        "import sys, vidpipe.render; "
        "print(sorted(m for m in sys.modules if m.split('.')[:2] in "
        "[['vidpipe', n] for n in ('importer', 'reconcile', 'delete', 'status', 'captions')]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
