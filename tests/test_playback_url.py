"""`vidpipe url`: the stream and thumbnail URLs of a row, signed when Mux reports the recorded
playback ID as signed; the token verifies with the signing key's public half."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from conftest import Platform, Result
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from vidpipe.emulator import Emulator

CLI = Callable[..., Result]
KEY_ID = "signing-key-id-1"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def signing_key(monkeypatch: pytest.MonkeyPatch, env: Platform, rsa_key: rsa.RSAPrivateKey) -> str:
    """MUX_SIGNING_KEY_ID / MUX_SIGNING_KEY as the Mux dashboard gives them (base64 PEM)."""
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    encoded = base64.b64encode(pem).decode()
    monkeypatch.setenv("MUX_SIGNING_KEY_ID", KEY_ID)
    monkeypatch.setenv("MUX_SIGNING_KEY", encoded)
    return encoded


def seed_lesson(env: Platform, emulator: Emulator, policy: str, lesson: int = 1) -> str:
    seeded = emulator.seed_asset(f'{{"lesson_id": {lesson}}}', playback_policies=[policy])
    pid = str(seeded["playback_ids"][0]["id"])
    env.set_lesson(lesson, seeded["id"], pid)
    return pid


def token_of(url: str) -> str:
    _, _, query = url.partition("?token=")
    assert query, url
    return query


def claims(token: str, key: rsa.RSAPrivateKey, audience: str) -> dict[str, Any]:
    return dict(jwt.decode(token, key.public_key(), algorithms=["RS256"], audience=audience))


def test_a_signed_lesson_gets_urls_whose_tokens_verify_with_the_public_key(
    env: Platform,
    emulator: Emulator,
    cli: CLI,
    signing_key: str,
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    pid = seed_lesson(env, emulator, "signed")
    before = int(time.time())

    result = cli("url", "--lesson", "1", "--expires", "2h", "--json")

    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["policy"] == "signed" and doc["signed"] is True
    assert doc["stream_url"].startswith(f"https://stream.mux.com/{pid}.m3u8?token=")
    assert doc["thumbnail_url"].startswith(f"https://image.mux.com/{pid}/thumbnail.jpg?token=")
    stream = token_of(doc["stream_url"])
    thumb = token_of(doc["thumbnail_url"])
    assert jwt.get_unverified_header(stream) == {"alg": "RS256", "kid": KEY_ID, "typ": "JWT"}
    video_claims = claims(stream, rsa_key, "v")
    assert video_claims["sub"] == pid and video_claims["aud"] == "v"
    assert before + 7200 <= video_claims["exp"] <= int(time.time()) + 7200
    assert video_claims["exp"] == doc["expires_at"]
    assert claims(thumb, rsa_key, "t")["sub"] == pid
    with pytest.raises(jwt.InvalidAudienceError):
        claims(thumb, rsa_key, "v")
    assert signing_key not in result.out + result.err
    assert emulator.writing_calls() == 0


def test_a_public_lesson_gets_plain_urls_and_needs_no_key(
    env: Platform, emulator: Emulator, cli: CLI
) -> None:
    pid = seed_lesson(env, emulator, "public")

    result = cli("url", "--lesson", "1")

    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        f"https://stream.mux.com/{pid}.m3u8",
        f"https://image.mux.com/{pid}/thumbnail.jpg",
    ]


def test_signing_follows_what_mux_says_not_the_settings(
    env: Platform,
    emulator: Emulator,
    cli: CLI,
    signing_key: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VIDPIPE_PLAYBACK_POLICY", "public")
    seed_lesson(env, emulator, "signed")

    doc = json.loads(cli("url", "--lesson", "1", "--json").out)

    assert doc["signed"] is True and "?token=" in doc["stream_url"]


@pytest.mark.parametrize("present", [None, "MUX_SIGNING_KEY_ID", "MUX_SIGNING_KEY"])
def test_a_signed_id_without_both_key_variables_exits_2_naming_both(
    env: Platform,
    emulator: Emulator,
    cli: CLI,
    monkeypatch: pytest.MonkeyPatch,
    present: str | None,
) -> None:
    seed_lesson(env, emulator, "signed")
    if present:
        monkeypatch.setenv(present, "c29tZXRoaW5n")

    result = cli("url", "--lesson", "1", "--json")

    assert result.code == 2
    assert "MUX_SIGNING_KEY_ID" in result.err and "MUX_SIGNING_KEY " in result.err
    assert result.out == ""
    assert "c29tZXRoaW5n" not in result.err


def test_a_key_that_is_not_a_pem_exits_2_without_showing_it(
    env: Platform, emulator: Emulator, cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_lesson(env, emulator, "signed")
    monkeypatch.setenv("MUX_SIGNING_KEY_ID", KEY_ID)
    monkeypatch.setenv("MUX_SIGNING_KEY", "bm90LWEta2V5LWF0LWFsbA==")

    result = cli("url", "--lesson", "1")

    assert result.code == 2
    assert "MUX_SIGNING_KEY is not a base64-encoded PEM" in result.err
    assert "bm90LWEta2V5" not in result.err
    assert emulator.count("GET", "/video/v1/assets") == 0  # refused before asking Mux


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (["--lesson", "2"], "lesson 2 records no video"),
        (["--lesson", "99"], "lesson 99 does not exist"),
        (["--lesson", "1", "--expires", "0"], "--expires must be more than 0"),
        (["--lesson", "1", "--expires", "soon"], "--expires: 'soon' is not a duration"),
        (["--lesson", "1", "--course", "1"], "not both"),
    ],
)
def test_bad_url_requests_exit_2(
    env: Platform, emulator: Emulator, cli: CLI, args: list[str], shown: str
) -> None:
    seed_lesson(env, emulator, "public")

    result = cli("url", *args, "--json")

    assert result.code == 2 and shown in result.err
    assert result.out == ""


def test_a_deleted_asset_is_a_failure_not_a_url(
    env: Platform, emulator: Emulator, cli: CLI
) -> None:
    seed_lesson(env, emulator, "public")
    row = env.lesson(1)
    assert row is not None and row.mux_asset_id is not None
    emulator.delete_asset_silently(row.mux_asset_id)

    result = cli("url", "--lesson", "1")

    assert result.code == 1 and "a sync clears it" in result.err
    assert result.out == ""
