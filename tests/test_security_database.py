"""Secrets in and around the database: a password with a raw `@` is refused before any piece
of it can show as a host, and a failing statement never shows its bound parameters.

Run on a SQLite file and on the real PostgreSQL server the test session starts.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import Result
from sqlalchemy.engine import make_url

from vidpipe.config import load_settings
from vidpipe.db import make_engine, mask_url
from vidpipe.errors import ConfigError

# The password is "S3cr3t@xpiece": unencoded, SQLAlchemy would read host "xpiece@db.internal".
PASSWORD_HEAD, PASSWORD_TAIL = "S3cr3t", "xpiece"
RAW_AT_URL = f"postgresql://app:{PASSWORD_HEAD}@{PASSWORD_TAIL}@db.internal:5432/platform"
ENCODED_URL = f"postgresql://app:{PASSWORD_HEAD}%40{PASSWORD_TAIL}@db.internal:5432/platform"

# What a signed upload URL looks like in a journal write.
SIGNED_URL = "https://storage.example/upload/abc?X-Goog-Signature=sig-never-printed-0123456789"


def leaks(text: str) -> bool:
    return PASSWORD_HEAD in text or PASSWORD_TAIL in text


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.upper().startswith(("MUX_", "VIDPIPE_", "DATABASE_URL")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    return tmp_path


# -- a raw "@" in the password ----------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        RAW_AT_URL,
        f"postgres://app:{PASSWORD_HEAD}@{PASSWORD_TAIL}@db.internal/platform",
        f"postgresql://:{PASSWORD_HEAD}@{PASSWORD_TAIL}@db.internal/platform",
        f"postgresql://app:{PASSWORD_HEAD}@{PASSWORD_TAIL}:9@db.internal/platform",
        f"postgresql://app:{PASSWORD_HEAD}@{PASSWORD_TAIL}/x@db.internal/platform",
        f"postgresql://app:{PASSWORD_HEAD}@{PASSWORD_TAIL}?x@db.internal/platform",
    ],
)
def test_a_password_with_a_raw_at_is_refused_naming_no_piece_of_it(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "DATABASE_URL" in message and "%40" in message
    assert not leaks(message), message
    assert "db.internal" not in message  # nothing of the URL is echoed
    with pytest.raises(ConfigError) as info:
        make_engine(url)
    assert not leaks(str(info.value)) and "%40" in str(info.value)


def test_a_raw_at_password_in_dotenv_is_refused_too(clean_env: Path) -> None:
    (clean_env / ".env").write_text(f"DATABASE_URL={RAW_AT_URL}\n")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "DATABASE_URL" in str(info.value) and not leaks(str(info.value))


def test_mask_url_never_shows_a_piece_of_a_raw_at_password() -> None:
    assert not leaks(mask_url(RAW_AT_URL))
    # A URL object parsed from it carries the piece as its host: still hidden.
    parsed = make_url(RAW_AT_URL)
    assert parsed.host is not None and PASSWORD_TAIL in parsed.host
    assert not leaks(mask_url(parsed))


def test_a_percent_encoded_at_in_the_password_is_accepted_and_masked(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", ENCODED_URL)
    settings = load_settings()
    engine = make_engine(settings.database_url.get_secret_value())
    assert engine.url.host == "db.internal"
    assert engine.url.password == f"{PASSWORD_HEAD}@{PASSWORD_TAIL}"
    assert not leaks(mask_url(engine.url)) and "db.internal" in mask_url(engine.url)
    assert not leaks(mask_url(ENCODED_URL))


def test_an_at_in_the_user_name_or_a_sqlite_path_is_not_refused(tmp_path: Path) -> None:
    assert make_engine("postgresql://app@corp:pw@db.internal/platform").url.host == "db.internal"
    assert make_engine("postgresql://app@db.internal/platform").url.host == "db.internal"
    path = tmp_path / "me@work.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect():
        pass
    assert path.exists()
    engine.dispose()


@pytest.mark.postgres
def test_a_raw_at_password_never_reaches_the_postgresql_driver(pg_url: str) -> None:
    """Against a real server: the encoded form connects; the raw form is refused before the
    driver could try to resolve a host made of the password's tail."""
    url = make_url(pg_url)
    encoded = url.set(password=f"{PASSWORD_HEAD}@{PASSWORD_TAIL}").render_as_string(
        hide_password=False
    )
    assert f"{PASSWORD_HEAD}%40{PASSWORD_TAIL}" in encoded
    engine = make_engine(encoded)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
    engine.dispose()

    raw = encoded.replace("%40", "@")
    with pytest.raises(ConfigError) as info:
        make_engine(raw)
    assert not leaks(str(info.value))


def test_cli_refuses_a_raw_at_password_with_exit_2_and_no_secret(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, cli: Callable[..., Result]
) -> None:
    monkeypatch.setenv("MUX_TOKEN_ID", "id")
    monkeypatch.setenv("MUX_TOKEN_SECRET", "tok-secret-do-not-print")
    monkeypatch.setenv("DATABASE_URL", RAW_AT_URL)
    for args in (("db", "init"), ("verify", "--json")):
        res = cli(*args)
        assert res.code == 2, (args, res)
        assert res.out == ""
        lines = res.err.strip().splitlines()
        assert len(lines) == 1 and "DATABASE_URL" in lines[0] and "%40" in lines[0], res.err
        assert not leaks(res.err)


# -- bound parameters stay out of error messages ----------------------------------------------


def failing_insert(engine: sa.Engine) -> sa.exc.DBAPIError:
    """Run a statement that fails with a signed URL as its bound parameter; the error."""
    with pytest.raises(sa.exc.DBAPIError) as info:
        with engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO vidpipe_no_such_table (upload_url) VALUES (:url)"),
                {"url": SIGNED_URL},
            )
    return info.value


def test_a_failing_statement_never_shows_its_bound_parameters(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        error = failing_insert(engine)
        shown = str(error) + "".join(traceback.format_exception(error))
        assert "vidpipe_no_such_table" in shown  # the statement is still named
        assert "sig-never-printed" not in shown
    finally:
        engine.dispose()

    # The same statement on an engine without the setting prints the parameter: the check
    # above can fail.
    plain = sa.create_engine(make_engine(db_url).url)
    try:
        assert "sig-never-printed" in str(failing_insert(plain))
    finally:
        plain.dispose()
