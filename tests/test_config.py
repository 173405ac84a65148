"""Settings: environment and .env, the environment winning; bad settings exit 2 in one line,
naming the variable and never a secret's value."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Result

from vidpipe.config import load_settings
from vidpipe.errors import ConfigError

SECRET = "tok-secret-do-not-print"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty working directory and no vidpipe setting in the environment (settings added
    later included: every MUX_*, VIDPIPE_* and DATABASE_URL variable is removed)."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.upper().startswith(("MUX_", "VIDPIPE_", "DATABASE_URL")):
            monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_defaults(clean_env: Path) -> None:
    s = load_settings()
    assert s.mux_base_url == "https://api.mux.com"
    assert s.database_url.get_secret_value() == "sqlite:///vidpipe.db"
    assert s.mux_token_id is None and s.mux_token_secret is None


def test_dotenv_read_and_environment_wins(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean_env / ".env").write_text(
        "MUX_TOKEN_ID=from-file\nMUX_TOKEN_SECRET=file-secret\n"
        "MUX_BASE_URL=http://127.0.0.1:9/\nDATABASE_URL=sqlite:///file.db\n"
    )
    s = load_settings()
    assert s.mux_token_id == "from-file"
    assert s.mux_base_url == "http://127.0.0.1:9"  # trailing slash dropped for mux-python
    monkeypatch.setenv("MUX_TOKEN_ID", "from-env")
    monkeypatch.setenv("DATABASE_URL", "sqlite:///env.db")
    s = load_settings()
    assert s.mux_token_id == "from-env"
    assert s.database_url.get_secret_value() == "sqlite:///env.db"
    assert s.mux_credentials() == ("from-env", "file-secret")


def test_missing_credentials_name_the_variable(clean_env: Path) -> None:
    with pytest.raises(ConfigError, match="MUX_TOKEN_ID and MUX_TOKEN_SECRET are not set"):
        load_settings().mux_credentials()


@pytest.mark.parametrize(
    ("name", "value", "needle"),
    [
        ("MUX_BASE_URL", "ftp://example", "MUX_BASE_URL"),
        ("MUX_BASE_URL", "not a url", "MUX_BASE_URL"),
        ("MUX_BASE_URL", "http://host:notaport", "MUX_BASE_URL"),
        ("DATABASE_URL", "just-a-path.db", "DATABASE_URL"),
    ],
)
def test_malformed_settings_exit_2_one_line(
    clean_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    cli: Callable[..., Result],
    name: str,
    value: str,
    needle: str,
) -> None:
    monkeypatch.setenv("MUX_TOKEN_ID", "id")
    monkeypatch.setenv("MUX_TOKEN_SECRET", SECRET)
    monkeypatch.setenv(name, value)
    res = cli("verify")
    assert res.code == 2
    assert needle in res.err
    assert len(res.err.strip().splitlines()) == 1
    assert SECRET not in res.err + res.out


def test_missing_token_exit_2(clean_env: Path, cli: Callable[..., Result]) -> None:
    # A database first: a missing one is named before the token (it is bad input too).
    assert cli("db", "init").code == 0
    res = cli("verify")
    assert res.code == 2
    assert "MUX_TOKEN_ID" in res.err and len(res.err.strip().splitlines()) == 1


def test_database_password_never_printed(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, cli: Callable[..., Result]
) -> None:
    monkeypatch.setenv("MUX_TOKEN_ID", "id")
    monkeypatch.setenv("MUX_TOKEN_SECRET", SECRET)
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:hunter2@127.0.0.1:1/platform")
    res = cli("verify")
    assert res.code == 1
    assert "hunter2" not in res.err + res.out
    assert "cannot open the database" in res.err
    assert len(res.err.strip().splitlines()) == 1


def test_missing_tables_say_db_init(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, cli: Callable[..., Result]
) -> None:
    monkeypatch.setenv("MUX_TOKEN_ID", "id")
    monkeypatch.setenv("MUX_TOKEN_SECRET", SECRET)
    res = cli("status")
    assert res.code == 2
    assert "vidpipe db init" in res.err
    res = cli("db", "init")
    assert res.code == 0 and "lesson" in res.out
    res = cli("db", "init")
    assert res.code == 0 and "nothing to do" in res.out


def test_webhook_secret_required(clean_env: Path, cli: Callable[..., Result]) -> None:
    assert cli("db", "init").code == 0
    res = cli("webhook", "apply", "-", "--signature", "t=1,v1=00")
    assert res.code == 2 and "MUX_WEBHOOK_SECRET" in res.err
