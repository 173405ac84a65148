"""Where the Mux token may go: plain http only to a loopback host."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Result

from vidpipe.config import load_settings
from vidpipe.errors import ConfigError

TOKEN_SECRET = "tok-secret-do-not-print"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.upper().startswith(("MUX_", "VIDPIPE_", "DATABASE_URL")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    return tmp_path


@pytest.fixture
def token_in_env(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MUX_TOKEN_ID", "env-id")
    monkeypatch.setenv("MUX_TOKEN_SECRET", TOKEN_SECRET)
    return clean_env


# -- MUX_BASE_URL: plain http only to loopback ------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://api.mux.com",
        "http://10.0.0.5:8765",
        "http://128.0.0.1",
        "http://localhost.attacker.example",
        "http://[::ffff:7f00:1]:8765",
        "http://[2001:db8::1]",
        "http://localhost@attacker.example",
        "http://attacker.example\\@127.0.0.1",
        "https://user:pw@api.mux.com",
    ],
)
def test_mux_base_url_that_could_send_the_token_elsewhere_is_refused(
    token_in_env: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("MUX_BASE_URL", url)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "MUX_BASE_URL" in str(info.value)
    assert TOKEN_SECRET not in str(info.value)


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("http://127.0.0.1:8765/", "http://127.0.0.1:8765"),
        ("http://127.3.2.1:8765", "http://127.3.2.1:8765"),
        ("http://localhost:8765", "http://localhost:8765"),
        ("http://LOCALHOST:8765", "http://LOCALHOST:8765"),
        ("http://[::1]:8765", "http://[::1]:8765"),
        ("https://api.mux.com", "https://api.mux.com"),
        ("https://mux.internal.example:8443/", "https://mux.internal.example:8443"),
    ],
)
def test_mux_base_url_over_https_or_to_loopback_is_accepted(
    token_in_env: Path, monkeypatch: pytest.MonkeyPatch, url: str, kept: str
) -> None:
    monkeypatch.setenv("MUX_BASE_URL", url)
    assert load_settings().mux_base_url == kept


def test_a_dotenv_that_points_the_token_at_plain_http_is_refused(token_in_env: Path) -> None:
    (token_in_env / ".env").write_text("MUX_BASE_URL=http://collector.attacker.example\n")
    with pytest.raises(ConfigError, match="MUX_BASE_URL"):
        load_settings()


def test_cli_refuses_plain_http_to_another_host_with_exit_2(
    token_in_env: Path, monkeypatch: pytest.MonkeyPatch, cli: Callable[..., Result]
) -> None:
    monkeypatch.setenv("MUX_BASE_URL", "http://mux.example.invalid")
    res = cli("verify", "--json")
    assert res.code == 2, res
    assert res.out == ""
    assert "MUX_BASE_URL" in res.err and len(res.err.strip().splitlines()) == 1
    assert TOKEN_SECRET not in res.err
