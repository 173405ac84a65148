"""`--metrics-file` of verify, sync and import: a node_exporter textfile, written whole, on
exit 0 and 1, never on a refused run (exit 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Platform, Result, fast_retry, make_video
from prometheus_client.parser import text_string_to_metric_families

from vidpipe import textfile
from vidpipe.emulator import Emulator
from vidpipe.reconcile.plan import DriftKind

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(path: Path) -> Samples:
    """The file as Prometheus reads it (prometheus-client's own parser)."""
    out: Samples = {}
    for family in text_string_to_metric_families(path.read_text()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def get(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def only_the_file(path: Path) -> None:
    """No temporary file is left beside the textfile."""
    assert sorted(os.listdir(path.parent)) == [path.name]


@pytest.fixture
def prom(tmp_path: Path) -> Path:
    folder = tmp_path / "textfile"
    folder.mkdir()
    return folder / "vidpipe.prom"


def test_verify_writes_a_textfile_that_prometheus_parses(
    env: Platform, emulator: Emulator, vp: Callable[..., Result], prom: Path
) -> None:
    asset = emulator.seed_asset(passthrough='{"lesson_id": 1}')
    env.set_lesson(1, asset["id"], asset["playback_ids"][0]["id"])
    before = time.time()
    res = vp("verify", "--json", "--metrics-file", prom)
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    only_the_file(prom)
    m = parse(prom)
    assert get(m, "vidpipe_last_run_success", command="verify") == 1
    finished = get(m, "vidpipe_last_run_timestamp_seconds", command="verify")
    assert finished is not None and before <= finished <= time.time()
    assert get(m, "vidpipe_last_success_timestamp_seconds", command="verify") == get(
        m, "vidpipe_last_run_timestamp_seconds", command="verify"
    )
    assert get(m, "vidpipe_rows_checked", command="verify") == 1
    assert get(m, "vidpipe_api_calls", command="verify") == doc["api_calls"] > 0
    assert get(m, "vidpipe_rate_limited", command="verify") == doc["rate_limited"] == 0
    assert get(m, "vidpipe_run_seconds", command="verify") > 0  # type: ignore[operator]
    for kind in DriftKind:
        assert get(m, "vidpipe_drift_items", command="verify", kind=kind.value) == 0


def test_drift_writes_success_zero_and_keeps_the_last_success(
    env: Platform, emulator: Emulator, vp: Callable[..., Result], prom: Path
) -> None:
    assert vp("verify", "--metrics-file", prom).code == 0
    succeeded = get(parse(prom), "vidpipe_last_success_timestamp_seconds", command="verify")
    env.set_lesson(1, "gone-1", "pb-gone-1")
    env.set_lesson(2, "gone-2", "pb-gone-2")
    res = vp("verify", "--metrics-file", prom)
    assert res.code == 1
    only_the_file(prom)
    m = parse(prom)
    assert get(m, "vidpipe_last_run_success", command="verify") == 0
    assert get(m, "vidpipe_drift_items", command="verify", kind="missing_asset") == 2
    assert get(m, "vidpipe_drift_items", command="verify", kind="orphan") == 0
    assert get(m, "vidpipe_rows_checked", command="verify") == 2
    assert get(m, "vidpipe_last_success_timestamp_seconds", command="verify") == succeeded


def test_sync_writes_what_it_found(
    env: Platform, emulator: Emulator, vp: Callable[..., Result], prom: Path
) -> None:
    env.set_lesson(1, "gone-1", "pb-gone-1")
    res = vp("sync", "--metrics-file", prom)
    assert res.code == 0, res.err
    only_the_file(prom)
    m = parse(prom)
    assert get(m, "vidpipe_last_run_success", command="sync") == 1
    assert get(m, "vidpipe_drift_items", command="sync", kind="missing_asset") == 1


def test_a_run_that_fails_writes_success_zero(
    env: Platform,
    emulator: Emulator,
    vp: Callable[..., Result],
    prom: Path,
    mux_tuning: dict[str, Any],
) -> None:
    mux_tuning["retry"] = fast_retry(attempts=2)
    emulator.inject("GET", "/video/v1/assets", "status", status=503, times=10)
    res = vp("sync", "--metrics-file", prom)
    assert res.code == 1, res.err
    only_the_file(prom)
    m = parse(prom)
    assert get(m, "vidpipe_last_run_success", command="sync") == 0
    assert get(m, "vidpipe_last_success_timestamp_seconds", command="sync") is None
    assert get(m, "vidpipe_api_calls", command="sync") >= 3  # type: ignore[operator]
    assert get(m, "vidpipe_rows_checked", command="sync") is None  # never reached


def test_a_refused_run_writes_nothing(env: Platform, vp: Callable[..., Result], prom: Path) -> None:
    assert vp("verify", "--lesson", "999", "--metrics-file", prom).code == 2
    assert not prom.exists()
    assert vp("verify", "--metrics-file", prom).code == 0
    written = prom.read_bytes()
    assert vp("verify", "--lesson", "999", "--metrics-file", prom).code == 2
    assert vp("sync", "--max-clears", "-1", "--metrics-file", prom).code == 2
    assert prom.read_bytes() == written  # the last real run's file stands
    only_the_file(prom)


LOADED_AFTER_VERIFY = """
import sys
from vidpipe.cli import run
code = run(sys.argv[1:])
print(code, "prometheus_client" in sys.modules)
"""


def test_without_a_metrics_file_prometheus_client_is_not_even_imported(
    env: Platform, prom: Path
) -> None:
    # verify and sync run from cron every few minutes: they pay no import they do not use.
    def loaded(*args: str) -> str:
        argv = [sys.executable, "-c", LOADED_AFTER_VERIFY, *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
        return done.stdout.strip().splitlines()[-1]

    assert loaded("verify") == "0 False"
    assert loaded("verify", "--metrics-file", str(prom)) == "0 True"


def test_a_metrics_file_in_a_missing_folder_is_refused_before_anything(
    env: Platform, vp: Callable[..., Result], tmp_path: Path
) -> None:
    res = vp("sync", "--metrics-file", tmp_path / "no-such-folder" / "x.prom")
    assert res.code == 2
    assert "no-such-folder" in res.err and res.out == ""


def test_import_writes_its_items_by_state(
    env: Platform, vp: Callable[..., Result], prom: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "course"
    folder.mkdir()
    make_video(folder / "a.mp4", 300_000)
    make_video(folder / "b.mp4", 300_000, seed=1)
    manifest = folder / "course.csv"
    manifest.write_text("source,lesson\na.mp4,1\nb.mp4,2\n")
    res = vp("import", manifest, "--json", "--metrics-file", prom)
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    only_the_file(prom)
    m = parse(prom)
    assert get(m, "vidpipe_last_run_success", command="import") == 1
    assert get(m, "vidpipe_import_items", command="import", state="done") == 2
    assert get(m, "vidpipe_import_items", command="import", state="failed") == 0
    assert get(m, "vidpipe_rows_checked", command="import") == 2
    assert get(m, "vidpipe_api_calls", command="import") == doc["api_calls"] > 0


def test_a_scrape_during_a_write_sees_a_whole_file(prom: Path) -> None:
    """The collector reads the folder at any moment: every read is one whole file."""
    stop = threading.Event()
    seen: list[str] = []

    def read() -> None:
        while not stop.is_set():
            try:
                seen.append(prom.read_text())
            except FileNotFoundError:
                pass

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(300):
            drift = {k.value: i for k in DriftKind}
            run = textfile.RunFigures("sync", i % 2 == 0, time.time(), 1.5, 10, 0, i, drift)
            textfile.write(prom, run)
    finally:
        stop.set()
        reader.join()
    assert seen
    for text in seen:
        families = list(text_string_to_metric_families(text))
        assert len([f for f in families if f.name.startswith("vidpipe_")]) == 8
    only_the_file(prom)
