"""The CLI surface: every command listed, one-line usage errors with exit 2, tracebacks only
with --debug."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import Result


def test_help_lists_every_contract_command(cli: Callable[..., Result]) -> None:
    res = cli("--help")
    assert res.code == 0
    for name in (
        "upload",
        "status",
        "verify",
        "sync",
        "delete",
        "db",
        "emulator",
        "demo",
        "webhook",
    ):
        assert f"  {name}" in res.out
    assert "init" in cli("db", "--help").out
    sub = cli("webhook", "--help").out
    assert "serve" in sub and "apply" in sub


def test_version(cli: Callable[..., Result]) -> None:
    res = cli("--version")
    assert res.code == 0 and res.out.startswith("vidpipe ")


@pytest.mark.parametrize(
    "args",
    [
        ["nope"],
        ["upload"],
        ["sync", "--max-deletes", "-1"],
        ["status", "--lesson", "x"],
        ["emulator", "--port", "99999"],
    ],
)
def test_usage_errors_are_one_line_exit_2(cli: Callable[..., Result], args: list[str]) -> None:
    res = cli(*args)
    assert res.code == 2
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vidpipe: error: ")


def test_unexpected_error_hidden_unless_debug(
    cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(**_overrides: object) -> None:
        raise RuntimeError("internal detail")

    monkeypatch.setattr("vidpipe.config.load_settings", boom)
    res = cli("verify")
    assert res.code == 1
    assert "RuntimeError" in res.err and "--debug" in res.err
    assert "Traceback" not in res.err and "internal detail" not in res.err
    with pytest.raises(RuntimeError):
        cli("--debug", "verify")
    # The debug flag does not leak into the next run.
    assert cli("verify").code == 1
