"""`vidpipe doctor`: a healthy deployment passes every check; each deployment fault, set up
alone, fails its own check (and only the checks that cannot be made without it); a doctor
run changes nothing anywhere (no file, no pin, no table, no Mux write); it ends within a
bound when Mux does not answer; no secret reaches its output."""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import Platform, Result
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

import vidpipe
from vidpipe import environment, journal
from vidpipe.db import make_engine
from vidpipe.doctor import NAMES
from vidpipe.emulator import Emulator
from vidpipe.journal import State
from vidpipe.mux import Environment
from vidpipe.targets import Kind, Target

CONTRACT_NAMES = {"mux", "environment", "database", "clock", "signing_key", "webhook_secret"}
"""The check names the outside contract promises (doctor has more)."""
L1 = Target(Kind.LESSON, 1)


def doctor(**options: Any) -> vidpipe.Diagnosis:
    with vidpipe.Vidpipe.from_env() as vp:
        return vp.doctor(**options)


def failed(diagnosis: vidpipe.Diagnosis) -> set[str]:
    return {c.name for c in diagnosis.failed}


def table_names(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def pem_base64(key: Any) -> str:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return base64.b64encode(pem).decode()


# -- a healthy deployment --------------------------------------------------------------------


def test_a_healthy_deployment_passes_every_check(env: Platform) -> None:
    diagnosis = doctor(webhooks=True)

    assert diagnosis.ok, diagnosis.as_json()
    assert [c.name for c in diagnosis.checks] == list(NAMES)
    assert set(NAMES) >= CONTRACT_NAMES
    doc = diagnosis.as_json()
    assert doc["ok"] is True
    assert all(set(c) == {"name", "ok", "detail", "hint"} for c in doc["checks"])
    assert all(c["ok"] is True and c["detail"] for c in doc["checks"])


def test_a_valid_rsa_signing_key_passes(env: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    monkeypatch.setenv("MUX_SIGNING_KEY_ID", "key-1")
    monkeypatch.setenv("MUX_SIGNING_KEY", pem_base64(key))

    diagnosis = doctor()

    assert diagnosis.ok, diagnosis.as_json()
    assert "2048" in diagnosis["signing_key"].detail


# -- each fault alone ------------------------------------------------------------------------


def test_a_token_of_another_environment_fails_the_environment_check(env: Platform) -> None:
    environment.pin(env.engine, Environment("env-prod-1", "Production"), force=True)

    diagnosis = doctor()

    assert failed(diagnosis) == {"environment"}
    check = diagnosis["environment"]
    assert "env-prod-1" in check.detail and "emu-env-1" in check.detail
    assert check.hint and "db pin --force" in check.hint


def test_an_unpinned_database_passes_and_says_it_will_be_pinned(unpinned_env: Platform) -> None:
    diagnosis = doctor()

    assert diagnosis.ok, diagnosis.as_json()
    assert diagnosis["environment"].hint and "db pin" in diagnosis["environment"].hint


def test_a_database_without_vidpipes_tables_fails_the_database_check(env: Platform) -> None:
    # A platform database that never had `vidpipe db init`: lesson and world only.
    with env.engine.begin() as conn:
        for table in ("vidpipe_upload", "vidpipe_environment", "vidpipe_webhook_tombstone"):
            conn.execute(sa.text(f"DROP TABLE {table}"))

    diagnosis = doctor()

    assert failed(diagnosis) == {"database"}
    assert "vidpipe_upload" in diagnosis["database"].detail
    assert "db init" in (diagnosis["database"].hint or "")


def test_tables_of_an_older_version_fail_until_db_init_adds_them(
    env: Platform, monkeypatch: pytest.MonkeyPatch, cli: Callable[..., Result]
) -> None:
    # An older vidpipe had no environment pin and no tombstones.
    with env.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE vidpipe_environment"))
        conn.execute(sa.text("DROP TABLE vidpipe_webhook_tombstone"))

    diagnosis = doctor()

    assert failed(diagnosis) == {"database"}
    detail = diagnosis["database"].detail
    assert "an older vidpipe" in detail
    assert "vidpipe_environment" in detail and "vidpipe_webhook_tombstone" in detail

    assert cli("db", "init").code == 0
    assert doctor().ok


def test_a_vidpipe_table_lacking_a_column_fails_the_database_check(
    env: Platform, db_url: str
) -> None:
    with env.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE vidpipe_webhook_tombstone"))
        conn.execute(
            sa.text("CREATE TABLE vidpipe_webhook_tombstone (asset_id VARCHAR PRIMARY KEY)")
        )

    diagnosis = doctor()

    assert failed(diagnosis) == {"database"}
    assert "reason" in diagnosis["database"].detail
    assert "dead_at" in diagnosis["database"].detail


@pytest.mark.parametrize("kind", ["an EC key", "not base64", "a certificate-less blob"])
def test_a_signing_key_that_is_not_an_rsa_pem_fails_its_check(
    env: Platform, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    value = {
        "an EC key": pem_base64(ec.generate_private_key(ec.SECP256R1())),
        "not base64": "this is not base64 at all!",
        "a certificate-less blob": base64.b64encode(b"-----BEGIN NOTHING-----").decode(),
    }[kind]
    monkeypatch.setenv("MUX_SIGNING_KEY_ID", "key-1")
    monkeypatch.setenv("MUX_SIGNING_KEY", value)

    diagnosis = doctor()

    assert failed(diagnosis) == {"signing_key"}
    assert value not in json.dumps(diagnosis.as_json())


def test_a_signing_key_without_its_id_fails_its_check(
    env: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    monkeypatch.setenv("MUX_SIGNING_KEY", pem_base64(key))

    assert failed(doctor()) == {"signing_key"}


def test_a_missing_webhook_secret_fails_only_when_asked_for(
    env: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MUX_WEBHOOK_SECRET")

    assert doctor().ok
    assert failed(doctor(webhooks=True)) == {"webhook_secret"}


@pytest.mark.parametrize("skew", [600.0, -600.0])
def test_a_clock_ten_minutes_off_fails_the_clock_check(
    env: Platform, emulator: Emulator, skew: float
) -> None:
    emulator.set_clock_skew(skew)

    diagnosis = doctor()

    assert failed(diagnosis) == {"clock"}
    assert "10 min" in diagnosis["clock"].detail
    assert ("behind" if skew > 0 else "ahead of") in diagnosis["clock"].detail


def test_a_clock_a_few_seconds_off_passes(env: Platform, emulator: Emulator) -> None:
    emulator.set_clock_skew(20.0)

    assert doctor().ok


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("port", ["closed_port", "silent_port"])
def test_mux_not_answering_fails_the_mux_checks_within_the_bound(
    env: Platform, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, port: str
) -> None:
    monkeypatch.setenv("MUX_BASE_URL", f"http://127.0.0.1:{request.getfixturevalue(port)}")

    started = time.monotonic()
    diagnosis = doctor()
    elapsed = time.monotonic() - started

    assert elapsed < 5.0  # the promise: each probe has its own deadline
    # The environment and the clock are read from Mux's answer: without one, neither passes.
    assert failed(diagnosis) == {"mux", "environment", "clock"}
    assert "did not answer" in diagnosis["mux"].detail
    assert all("did not answer" in diagnosis[n].detail for n in ("environment", "clock"))


def test_refused_credentials_fail_the_mux_check(env: Platform, emulator: Emulator) -> None:
    emulator.inject("GET", "/system/v1/whoami", "status", status=401, times=1)

    diagnosis = doctor()

    assert {"mux", "environment", "clock"} == failed(diagnosis)
    assert "refused the token" in diagnosis["mux"].detail
    assert "access token" in (diagnosis["mux"].hint or "")


def test_an_unfinished_upload_two_days_old_fails_the_uploads_check(env: Platform) -> None:
    now = datetime.now(UTC)
    for target, age in ((L1, timedelta(days=2)), (Target(Kind.LESSON, 2), timedelta(hours=2))):
        journal.create(
            env.engine,
            target,
            file_path="/videos/x.mp4",
            file_size=1,
            file_mtime_ns=1,
            chunk_size=262144,
            state=State.UPLOADING,
            upload_id=f"up-{target.id}",
            created_at=now - age,
            updated_at=now - age,
        )

    diagnosis = doctor()

    assert failed(diagnosis) == {"uploads"}
    detail = diagnosis["uploads"].detail
    assert "lesson 1" in detail and "lesson 2" not in detail


def test_settings_that_do_not_load_fail_the_settings_check(
    env: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vidpipe.config import load_settings
    from vidpipe.doctor import diagnose_loading

    monkeypatch.setenv("MUX_BASE_URL", "ftp://mux.example")

    diagnosis = diagnose_loading(load_settings)

    assert not diagnosis["settings"].ok
    assert "MUX_BASE_URL" in diagnosis["settings"].detail
    assert [c.name for c in diagnosis.checks] == list(NAMES)


def test_settings_name_which_came_from_the_environment_and_which_from_dotenv(
    env: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    # .env sets the webhook secret (used) and the token secret (the environment wins).
    Path(".env").write_text("MUX_WEBHOOK_SECRET=from-dotenv-secret\nMUX_TOKEN_SECRET=other\n")
    monkeypatch.delenv("MUX_WEBHOOK_SECRET")

    detail = doctor()["settings"].detail

    from_env, _, rest = detail.partition("; from ./.env: ")
    assert "MUX_TOKEN_SECRET" in from_env and "MUX_WEBHOOK_SECRET" not in from_env
    assert rest.startswith("MUX_WEBHOOK_SECRET")
    assert "MUX_TOKEN_SECRET, unused" in rest
    assert "from-dotenv-secret" not in detail and "other" not in detail


# -- changes nothing -------------------------------------------------------------------------


def test_doctor_on_a_missing_sqlite_file_creates_nothing(
    env: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{folder / 'platform.db'}")

    diagnosis = doctor()

    assert "does not exist" in diagnosis["database"].detail
    assert not diagnosis["database"].ok
    assert list(folder.iterdir()) == []
    assert sorted(p.name for p in Path.cwd().iterdir()) == []


def test_doctor_pins_nothing_creates_no_table_and_writes_nothing_to_mux(
    unpinned_env: Platform, emulator: Emulator, db_url: str, tmp_path: Path
) -> None:
    with unpinned_env.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE vidpipe_webhook_tombstone"))
    tables = table_names(db_url)
    rows = unpinned_env.dump()
    files = sorted(p.name for p in tmp_path.rglob("*"))

    diagnosis = doctor(webhooks=True)

    assert failed(diagnosis) == {"database"}
    assert environment.read_pin(unpinned_env.engine) is None
    assert table_names(db_url) == tables
    assert unpinned_env.dump() == rows
    assert sorted(p.name for p in tmp_path.rglob("*")) == files
    assert emulator.writing_calls() == 0
    assert emulator.count(None, "/") == emulator.count("GET", "/system/v1/whoami") == 1
