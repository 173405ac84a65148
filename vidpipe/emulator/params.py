"""Checks of what a client sends (query parameters, create bodies), as Mux checks them.

Each raises `ApiError(400, "invalid_parameters", ...)` listing every problem found.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from vidpipe.emulator.objects import ApiError, UploadBody
from vidpipe.emulator.settings import PLAYBACK_POLICIES, AssetSettings, parse_asset_settings

TIMEOUT_MIN, TIMEOUT_MAX, TIMEOUT_DEFAULT = 60, 604800, 3600
LIMIT_DEFAULT, LIMIT_MAX = 25, 100


def parse_limit(raw: str | None) -> int:
    """`limit` query parameter: default 25, 1..100, else a 400."""
    limit = _query_int(raw, "limit", low=1, high=LIMIT_MAX)
    return LIMIT_DEFAULT if limit is None else limit


def parse_page(raw: str | None) -> int | None:
    """`page` query parameter (1-based), or None when absent."""
    return _query_int(raw, "page", low=1)


def _query_int(raw: str | None, name: str, *, low: int, high: int | None = None) -> int | None:
    """An integer query parameter in low..high (None when absent), else Mux's 400."""
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "invalid_parameters", f"{name} must be an integer") from None
    if high is not None and not low <= value <= high:
        raise ApiError(400, "invalid_parameters", f"{name} must be between {low} and {high}")
    if value < low:
        raise ApiError(400, "invalid_parameters", f"{name} must be at least {low}")
    return value


def validate_upload_body(body: Any) -> UploadBody:
    """Check a create-upload body the way Mux does (ApiError(400) otherwise)."""
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_parameters", "Request body must be a JSON object")
    problems: list[str] = []
    timeout = body.get("timeout", TIMEOUT_DEFAULT)
    if isinstance(timeout, bool) or not isinstance(timeout, int):
        problems.append("timeout must be an integer")
    elif not TIMEOUT_MIN <= timeout <= TIMEOUT_MAX:
        problems.append(f"timeout must be between {TIMEOUT_MIN} and {TIMEOUT_MAX}")
    cors_origin = body.get("cors_origin")
    if cors_origin is not None and not isinstance(cors_origin, str):
        problems.append("cors_origin must be a string")
    test = body.get("test", False)
    if not isinstance(test, bool):
        problems.append("test must be a boolean")
    raw = body.get("new_asset_settings") or {}
    if not isinstance(raw, dict):
        problems.append("new_asset_settings must be an object")
        raw = {}
    settings = parse_asset_settings(raw, problems, direct_upload=True)
    if problems:
        raise ApiError(400, "invalid_parameters", *problems)
    if test:
        settings = dataclasses.replace(settings, test=True)
    return UploadBody(timeout, cors_origin, test, raw, settings)


def validate_asset_body(body: Any) -> AssetSettings:
    """Check a create-asset (ingest from a URL) body the way Mux does."""
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_parameters", "Request body must be a JSON object")
    problems: list[str] = []
    settings = parse_asset_settings(body, problems, direct_upload=False)
    if problems:
        raise ApiError(400, "invalid_parameters", *problems)
    return settings


def validate_policy(body: Any) -> str:
    """The `policy` of a create-playback-ID body, or ApiError(400)."""
    policy = body.get("policy") if isinstance(body, dict) else None
    if policy not in PLAYBACK_POLICIES:
        raise ApiError(400, "invalid_parameters", "policy must be one of public, signed, drm")
    return str(policy)
