"""`vidpipe doctor` on the command line: exit 0 when every check passes and 1 when any fails
(bad settings included: a diagnosis, not a refusal), one JSON document with `--json`, a
line per check off a terminal and `✓`/`✗` rows on one, and never a secret."""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import TOKEN_SECRET, Platform, Result
from rich.console import Console

from vidpipe.doctor import NAMES, Check, Diagnosis
from vidpipe.render import render_diagnosis
from vidpipe.ui import UI

SGR = re.compile(r"\x1b\[[0-9;]*m")  # colour and weight: the only escapes vidpipe writes


def test_doctor_exits_0_on_a_healthy_deployment(env: Platform, vp: Callable[..., Result]) -> None:
    result = vp("doctor", "--webhooks")

    assert result.code == 0, result.out + result.err
    lines = result.out.splitlines()
    assert [line.split()[1] for line in lines[: len(NAMES)]] == list(NAMES)
    assert all(line.startswith("ok ") for line in lines[: len(NAMES)])


def test_doctor_json_is_one_document_with_every_check(
    env: Platform, vp: Callable[..., Result]
) -> None:
    result = vp("doctor", "--json")

    doc = json.loads(result.out)
    assert result.code == 0
    assert doc["ok"] is True
    assert [c["name"] for c in doc["checks"]] == list(NAMES)


def test_doctor_exits_1_when_a_check_fails(
    env: Platform, vp: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MUX_WEBHOOK_SECRET")

    result = vp("doctor", "--webhooks", "--json")

    doc = json.loads(result.out)
    assert result.code == 1
    assert doc["ok"] is False
    assert [c["name"] for c in doc["checks"] if not c["ok"]] == ["webhook_secret"]


def test_settings_that_do_not_load_are_a_failed_check_not_a_refusal(
    env: Platform, vp: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIDPIPE_PLAYBACK_POLICY", "drm-please")

    result = vp("doctor", "--json")

    doc = json.loads(result.out)
    assert result.code == 1
    settings = doc["checks"][0]
    assert settings["name"] == "settings" and settings["ok"] is False
    assert "VIDPIPE_PLAYBACK_POLICY" in settings["detail"]
    assert "drm-please" not in result.out + result.err


def test_no_secret_reaches_the_output_whatever_fails(
    env: Platform, vp: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A database password, a broken signing key and the token secret, all in play; the
    # database does not answer (a closed port), so its failure is reported too.
    password = "pg-password-never-shown"
    key = "bm90LWEta2V5LWJ1dC1zZWNyZXQtYWxsLXRoZS1zYW1l"
    monkeypatch.setenv("DATABASE_URL", f"postgresql://vidpipe:{password}@127.0.0.1:9/platform")
    monkeypatch.setenv("MUX_SIGNING_KEY_ID", "key-1")
    monkeypatch.setenv("MUX_SIGNING_KEY", key)

    started = time.monotonic()
    plain = vp("doctor", "--webhooks")
    as_json = vp("doctor", "--webhooks", "--json")

    assert time.monotonic() - started < 10.0  # two runs, each within its 5 s bound
    assert plain.code == as_json.code == 1
    for result in (plain, as_json):
        text = result.out + result.err
        assert password not in text and key not in text and TOKEN_SECRET not in text
    failed = [c["name"] for c in json.loads(as_json.out)["checks"] if not c["ok"]]
    assert failed == ["environment", "database", "uploads", "signing_key"]


def test_a_doctor_run_leaves_no_file_behind(
    env: Platform, vp: Callable[..., Result], tmp_path: Path
) -> None:
    before = sorted(str(p) for p in tmp_path.rglob("*"))

    vp("doctor")
    vp("doctor", "--json")

    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def _terminal_ui() -> tuple[UI, io.StringIO]:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=80, no_color=True)
    return UI(out=console, err=console), buffer


def test_on_a_terminal_each_check_is_a_mark_a_finding_and_what_to_do() -> None:
    ui, buffer = _terminal_ui()
    diagnosis = Diagnosis(
        (
            Check("mux", True, "Mux accepted the token"),
            Check("clock", False, "the clock is 10 min behind Mux's", "turn on NTP"),
            Check("database", False, "evil \x1b]0;title\x07 name", None),
        )
    )

    render_diagnosis(ui, diagnosis)

    shown = SGR.sub("", buffer.getvalue())
    lines = shown.splitlines()
    assert lines[0].startswith("✓ mux")
    assert lines[1].startswith("✗ clock") and lines[2].strip() == "→ turn on NTP"
    assert "\x1b]" not in shown and "\x07" not in shown and "\\x1b]0;title\\x07" in lines[3]
    assert lines[-1] == "doctor: 2 of 3 checks failed"
    assert all(len(line) <= 80 for line in lines)
