"""Where the Mux token may go: plain http only to a loopback host; a `.env` read only when it is
a regular file; and which settings came from `.env` while the credentials came from the
environment, for the CLI to say on stderr. Also: settings added to `Settings` later are read,
reported and refused by the same rules, with no list to update.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Result

from vidpipe.config import dotenv_warning, load_settings
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


# -- .env: a regular file only ----------------------------------------------------------------


@pytest.mark.timeout(10)
def test_a_fifo_named_dotenv_is_ignored_with_a_note_and_never_waited_on(
    token_in_env: Path,
) -> None:
    os.mkfifo(token_in_env / ".env")  # no writer: opening it for reading would block
    settings = load_settings()
    assert settings.mux_credentials() == ("env-id", TOKEN_SECRET)
    assert settings.from_dotenv == frozenset()
    note = dotenv_warning(settings)
    assert note is not None and "./.env" in note and "FIFO" in note


def test_a_directory_named_dotenv_is_ignored_silently(token_in_env: Path) -> None:
    (token_in_env / ".env").mkdir()  # e.g. a virtualenv called .env
    settings = load_settings()
    assert settings.mux_credentials() == ("env-id", TOKEN_SECRET)
    assert settings.from_dotenv == frozenset()
    assert dotenv_warning(settings) is None


def test_a_symlink_to_a_regular_file_is_read(clean_env: Path) -> None:
    real = clean_env / "settings.env"
    real.write_text("MUX_TOKEN_ID=file-id\nMUX_TOKEN_SECRET=file-secret\n")
    (clean_env / ".env").symlink_to(real)
    assert load_settings().mux_credentials() == ("file-id", "file-secret")


def test_a_dotenv_that_is_not_utf8_is_refused_naming_the_file(clean_env: Path) -> None:
    (clean_env / ".env").write_bytes(b"MUX_TOKEN_SECRET=\xff\xfe-latin1\n")
    with pytest.raises(ConfigError, match=r"\./\.env"):
        load_settings()


# -- which settings came from .env ------------------------------------------------------------


def test_dotenv_setting_only_the_base_url_is_named_while_the_token_came_from_the_environment(
    token_in_env: Path,
) -> None:
    (token_in_env / ".env").write_text("MUX_BASE_URL=https://collector.attacker.example\n")
    settings = load_settings()
    assert settings.from_dotenv == frozenset({"MUX_BASE_URL"})
    line = dotenv_warning(settings)
    assert line == (
        "MUX_BASE_URL came from ./.env while the Mux credentials came from the environment"
    )
    assert "attacker" not in line


def test_several_dotenv_settings_are_named_in_field_order_never_with_values(
    token_in_env: Path,
) -> None:
    (token_in_env / ".env").write_text(
        "mux_webhook_secret=whsec-from-file\n"
        "DATABASE_URL=sqlite:///other.db\n"
        "MUX_BASE_URL=https://collector.attacker.example\n"
        "UNRELATED=1\n"
    )
    settings = load_settings()
    assert settings.from_dotenv == {"MUX_BASE_URL", "DATABASE_URL", "MUX_WEBHOOK_SECRET"}
    line = dotenv_warning(settings)
    assert line == (
        "MUX_BASE_URL, DATABASE_URL and MUX_WEBHOOK_SECRET came from ./.env "
        "while the Mux credentials came from the environment"
    )
    for value in ("whsec-from-file", "other.db", "attacker", "UNRELATED"):
        assert value not in line


def test_a_dotenv_value_the_environment_overrides_did_not_come_from_dotenv(
    token_in_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (token_in_env / ".env").write_text("MUX_BASE_URL=https://collector.attacker.example\n")
    monkeypatch.setenv("MUX_BASE_URL", "https://api.mux.com")
    settings = load_settings()
    assert settings.mux_base_url == "https://api.mux.com"
    assert settings.from_dotenv == frozenset()
    assert dotenv_warning(settings) is None


def test_an_override_beats_dotenv_and_is_not_reported_as_from_it(token_in_env: Path) -> None:
    (token_in_env / ".env").write_text("MUX_BASE_URL=https://collector.attacker.example\n")
    settings = load_settings(mux_base_url="https://api.mux.com")
    assert settings.mux_base_url == "https://api.mux.com"
    assert settings.from_dotenv == frozenset()


def test_no_line_when_the_token_itself_came_from_dotenv(clean_env: Path) -> None:
    (clean_env / ".env").write_text(
        "MUX_TOKEN_ID=file-id\nMUX_TOKEN_SECRET=file-secret\nMUX_BASE_URL=https://api.mux.com\n"
    )
    settings = load_settings()
    assert settings.from_dotenv == {"MUX_TOKEN_ID", "MUX_TOKEN_SECRET", "MUX_BASE_URL"}
    assert dotenv_warning(settings) is None


def test_a_token_split_between_environment_and_dotenv_is_named(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean_env / ".env").write_text("MUX_TOKEN_ID=file-id\n")
    monkeypatch.setenv("MUX_TOKEN_SECRET", TOKEN_SECRET)
    line = dotenv_warning(load_settings())
    assert line == "MUX_TOKEN_ID came from ./.env while MUX_TOKEN_SECRET came from the environment"


def test_no_line_without_a_dotenv(token_in_env: Path) -> None:
    settings = load_settings()
    assert settings.from_dotenv == frozenset()
    assert dotenv_warning(settings) is None


# -- asset settings ---------------------------------------------------------------------------


def test_asset_settings_are_read_overridden_and_reported(token_in_env: Path) -> None:
    (token_in_env / ".env").write_text("VIDPIPE_PLAYBACK_POLICY=signed\nVIDPIPE_CAPTIONS=en, fr\n")
    settings = load_settings()
    assert settings.vidpipe_playback_policy == "signed"
    assert settings.asset_settings().captions == ("en", "fr")
    assert settings.from_dotenv == {"VIDPIPE_PLAYBACK_POLICY", "VIDPIPE_CAPTIONS"}
    assert dotenv_warning(settings) == (
        "VIDPIPE_PLAYBACK_POLICY and VIDPIPE_CAPTIONS came from ./.env "
        "while the Mux credentials came from the environment"
    )
    overridden = load_settings(vidpipe_playback_policy="public")
    assert overridden.vidpipe_playback_policy == "public"
    assert overridden.from_dotenv == {"VIDPIPE_CAPTIONS"}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("VIDPIPE_PLAYBACK_POLICY", "secret-ish-value"),
        ("VIDPIPE_PREVIEW_PLAYBACK_POLICY", "secret-ish-value"),
        ("VIDPIPE_VIDEO_QUALITY", "secret-ish-value"),
        ("VIDPIPE_MAX_RESOLUTION", "secret-ish-value"),
        ("VIDPIPE_CAPTIONS", "secret-ish-value,fr"),
        ("VIDPIPE_STATIC_RENDITIONS", "highest,secret-ish-value"),
        ("VIDPIPE_NORMALIZE_AUDIO", "secret-ish-value"),
    ],
)
def test_a_malformed_asset_setting_is_a_config_error_naming_only_the_variable(
    token_in_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    value: str,
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert name in str(info.value)
    assert "secret-ish-value" not in str(info.value)


def test_the_signing_key_is_never_shown(
    token_in_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MUX_SIGNING_KEY_ID", "key-id")
    monkeypatch.setenv("MUX_SIGNING_KEY", "c2VjcmV0LWtleS1ieXRlcw==")
    settings = load_settings()
    assert "c2VjcmV0" not in repr(settings) and "c2VjcmV0" not in str(settings.model_dump())
    assert settings.signing_key() == ("key-id", "c2VjcmV0LWtleS1ieXRlcw==")


def test_an_unknown_override_is_refused_rather_than_ignored(clean_env: Path) -> None:
    with pytest.raises(TypeError, match="database_ulr"):
        load_settings(database_ulr="sqlite:///typo.db")
