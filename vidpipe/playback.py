"""Playback URLs for a row: "give me a link that plays lesson 42".

The stream URL is `https://stream.mux.com/PLAYBACK_ID.m3u8` and the thumbnail
`https://image.mux.com/PLAYBACK_ID/thumbnail.jpg`. Whether they need a token is what Mux says
of the recorded playback ID (one GET of the asset), not what the settings say: a signed ID
gets an RS256 JWT per URL (header `kid`; claims `sub` = the playback ID, `aud` = `v` for the
video or `t` for the thumbnail, `exp`), made with PyJWT from the configured signing key.
The key is never part of a message or of the result.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from vidpipe.assets import PUBLIC, SIGNED
from vidpipe.config import Settings
from vidpipe.db import transaction
from vidpipe.errors import ConfigError, TargetNotFound, UsageError, VidpipeError
from vidpipe.mux import MuxGateway
from vidpipe.records import read_row
from vidpipe.targets import Target

STREAM_BASE = "https://stream.mux.com"
IMAGE_BASE = "https://image.mux.com"
VIDEO_AUDIENCE = "v"
THUMBNAIL_AUDIENCE = "t"
MAX_TOKEN_LIFETIME = 366 * 86400.0
"""The longest a signed URL's token may stay valid (seconds)."""


class TokenLifetimeError(UsageError):
    """A token lifetime that is not more than 0 and at most `MAX_TOKEN_LIFETIME`."""


def check_lifetime(seconds: float) -> float:
    """`seconds`, when it is a lifetime a signed URL may have; else `TokenLifetimeError`."""
    if not 0 < seconds <= MAX_TOKEN_LIFETIME:
        raise TokenLifetimeError("the token lifetime must be more than 0 and at most 366 days")
    return seconds


@dataclass(frozen=True)
class PlaybackUrls:
    """A row's playback URLs; `expires_at` (Unix seconds) is None for a public ID."""

    target: Target
    asset_id: str
    playback_id: str
    policy: str
    stream_url: str
    thumbnail_url: str
    expires_at: int | None = None
    asset_status: str = "ready"
    warnings: list[str] = field(default_factory=list)

    @property
    def signed(self) -> bool:
        return self.expires_at is not None

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": True,
            "target": self.target.as_json(),
            "asset_id": self.asset_id,
            "playback_id": self.playback_id,
            "policy": self.policy,
            "signed": self.signed,
            "stream_url": self.stream_url,
            "thumbnail_url": self.thumbnail_url,
            "expires_at": self.expires_at,
            "asset_status": self.asset_status,
            "warnings": self.warnings,
        }


@dataclass(frozen=True)
class SigningKey:
    """A Mux signing key: its ID and the RSA private key (a `cryptography` key object)."""

    key_id: str
    private_key: Any = field(repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> SigningKey:
        """The configured key, or ConfigError naming the variables (never their values)."""
        key_id, encoded = settings.signing_key()
        return cls(key_id, load_private_key(encoded))

    def token(self, playback_id: str, audience: str, expires_at: int) -> str:
        import jwt  # PyJWT: imported here, so commands that sign nothing never load it

        claims = {"sub": playback_id, "aud": audience, "exp": expires_at}
        return jwt.encode(claims, self.private_key, algorithm="RS256", headers={"kid": self.key_id})


def load_private_key(text: str) -> Any:
    """An RSA private key from a base64-encoded PEM (as Mux's dashboard gives it) or from the
    PEM itself. ConfigError when it is neither; the message never shows the key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    bad = ConfigError("MUX_SIGNING_KEY is not a base64-encoded PEM RSA private key")
    text = text.strip()
    if text.startswith("-----BEGIN"):
        pem = text.encode()
    else:
        try:
            pem = base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            raise bad from None
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise bad from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise bad
    return key


def playback_urls(
    engine: Engine,
    gateway: MuxGateway,
    target: Target,
    settings: Settings,
    *,
    expires: float,
    clock: Callable[[], float] = time.time,
) -> PlaybackUrls:
    """The stream and thumbnail URLs of `target`'s recorded playback ID, with tokens valid
    for `expires` seconds when Mux reports that ID as signed.

    Raises `TargetNotFound` / `UsageError` (no such row, or it records no video) and
    `ConfigError` (a signed ID without a usable signing key) before anything else, and a
    `VidpipeError` when Mux no longer has the asset or the ID is not one of its own.
    """
    with transaction(engine) as conn:
        row = read_row(conn, target)
    if row is None:
        raise TargetNotFound(target)
    if not row.asset_id or not row.playback_id:
        raise UsageError(f"{target} records no video")
    # A configured key is checked before Mux is asked, so a broken one fails first.
    key = SigningKey.from_settings(settings) if _key_configured(settings) else None
    asset = gateway.find_asset(row.asset_id)
    if asset is None:
        raise VidpipeError(
            f"Mux has no asset {row.asset_id} (404), which {target} records; a sync clears it"
        )
    policy = asset.policy_of(row.playback_id)
    if policy is None:
        raise VidpipeError(
            f"{target} records playback ID {row.playback_id}, which is not one of asset "
            f"{asset.id}'s; a sync repairs it"
        )
    if policy not in (PUBLIC, SIGNED):
        raise VidpipeError(f"playback ID {row.playback_id} is {policy}: vidpipe makes no URL")
    pid = row.playback_id
    stream = f"{STREAM_BASE}/{pid}.m3u8"
    thumbnail = f"{IMAGE_BASE}/{pid}/thumbnail.jpg"
    warnings = []
    if asset.status != "ready":
        warnings.append(f"asset {asset.id} is {asset.status}, not ready: the URLs play nothing yet")
    expires_at = None
    if policy == SIGNED:
        if key is None:
            key = SigningKey.from_settings(settings)  # raises: the key is not configured
        expires_at = int(clock() + expires)
        stream += "?token=" + key.token(pid, VIDEO_AUDIENCE, expires_at)
        thumbnail += "?token=" + key.token(pid, THUMBNAIL_AUDIENCE, expires_at)
    return PlaybackUrls(
        target=target,
        asset_id=asset.id,
        playback_id=pid,
        policy=policy,
        stream_url=stream,
        thumbnail_url=thumbnail,
        expires_at=expires_at,
        asset_status=asset.status,
        warnings=warnings,
    )


def _key_configured(settings: Settings) -> bool:
    return bool(settings.mux_signing_key_id or settings.mux_signing_key)
