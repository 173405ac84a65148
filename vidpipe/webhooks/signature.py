"""The `Mux-Signature` check: HMAC-SHA256 of `t.body` under the webhook secret, with a time
tolerance, as Mux documents it.

Rejections are `WebhookRejected` subclasses whose messages never quote the secret or the
signature; how each is answered (HTTP status, exit code) is the caller's business.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from vidpipe.errors import ConfigError, WebhookRejected

TOLERANCE = 300
"""Seconds a signature's timestamp may be away from now (either way), as Mux advises."""

_MAX_SIGNATURES = 16  # a header is a few signatures; more is garbage, not worth hashing
_MAX_TIMESTAMP_DIGITS = 12  # unix seconds have 10 digits until the year 2286


class MissingSignature(WebhookRejected):
    """No signature, or a `Mux-Signature` header that cannot be parsed."""


class BadSignature(WebhookRejected):
    """A well-formed signature that does not match this body and secret."""


class StaleSignature(BadSignature):
    """An authentic signature whose timestamp is too old or too far in the future."""


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    """The `Mux-Signature` header value for `body`: `t=<unix seconds>,v1=<hex>`."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={t},v1={_mac(secret, t, body)}"


def _mac(secret: str, t: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str,
    header: str | None,
    body: bytes,
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE,
) -> None:
    """Accept `body` only if `header` carries a `v1` HMAC-SHA256 of `t.body` under `secret`.

    Any one of several `v1` values may match (Mux sends more than one while a secret is
    rolled). The MAC is checked before the time, so a "stale" rejection means the event was
    authentic but old. Raises `MissingSignature`, `BadSignature` or `StaleSignature`
    (all `WebhookRejected`), each with a one-line reason that never quotes the header;
    `ConfigError` when `secret` is empty.
    """
    if not secret:
        raise ConfigError("MUX_WEBHOOK_SECRET is empty; cannot verify webhook signatures")
    if header is None or not header.strip():
        raise MissingSignature("missing Mux-Signature header")
    timestamps: list[str] = []
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise MissingSignature("malformed Mux-Signature header (expected t=...,v1=...)")
        key, value = key.strip(), value.strip()
        if key == "t":
            timestamps.append(value)
        elif key == "v1":
            signatures.append(value)
        # Other schemes (v0, future ones) are ignored, as Mux advises.
    if len(timestamps) != 1:
        raise MissingSignature("Mux-Signature header needs exactly one t= timestamp")
    if not timestamps[0].isascii() or not timestamps[0].isdigit():
        raise MissingSignature("Mux-Signature timestamp is not a whole number of seconds")
    if len(timestamps[0]) > _MAX_TIMESTAMP_DIGITS:
        # Also keeps int() below its digit limit (a ValueError on thousands of digits).
        raise MissingSignature("Mux-Signature timestamp is not a plausible time")
    if not signatures:
        raise MissingSignature("Mux-Signature header has no v1= signature")
    if len(signatures) > _MAX_SIGNATURES:
        raise MissingSignature("Mux-Signature header has too many signatures")
    t = int(timestamps[0])
    expected = _mac(secret, t, body).encode()
    matched = False
    for candidate in signatures:
        # compare_digest on bytes: constant time, and no TypeError on non-ASCII input.
        if hmac.compare_digest(expected, candidate.lower().encode("utf-8", "replace")):
            matched = True
    if not matched:
        raise BadSignature("Mux-Signature does not match this body and secret")
    age = (time.time() if now is None else now) - t
    if age > tolerance:
        raise StaleSignature(
            f"Mux-Signature timestamp is {int(age)} s old (more than {tolerance} s)"
        )
    if -age > tolerance:
        raise StaleSignature(
            f"Mux-Signature timestamp is {int(-age)} s in the future (more than {tolerance} s)"
        )
