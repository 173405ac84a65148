"""Mux webhooks: the signature check, and each event applied through the same writers as sync.

`handle_event` is the core: it takes a parsed event and changes the platform's rows and
vidpipe's journal with the compare-and-set writers of `records.py`, one transaction per
change, so duplicates and out-of-order deliveries (Mux delivers at least once, in no
promised order) are harmless. `apply_payload` adds the signature check and JSON parsing for
one raw body (`vidpipe webhook apply`); `vidpipe.webhooks_server` serves it over HTTP.

Messages never contain the webhook secret or the signature.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, and_, or_, select, update
from sqlalchemy.engine import Connection

from vidpipe.db import UNFINISHED_STATES, UploadJournal, transaction, utcnow
from vidpipe.errors import ConfigError, VidpipeError, WebhookRejected
from vidpipe.mux import Asset, MuxGateway
from vidpipe.records import (
    clear_asset_everywhere,
    is_tombstoned,
    read_row,
    remember_dead,
    set_video,
)
from vidpipe.targets import Kind, Target, from_passthrough

if TYPE_CHECKING:
    from starlette.applications import Starlette

TOLERANCE = 300
"""Seconds a signature's timestamp may be away from now (either way), as Mux advises."""

_MAX_SIGNATURES = 16  # a header is a few signatures; more is garbage, not worth hashing
_CAS_ATTEMPTS = 3  # a row that changes under us this often means "let Mux retry later"

_JOURNAL = UploadJournal.__table__  # type: ignore[attr-defined]


# -- rejections --------------------------------------------------------------------------


class MissingSignature(WebhookRejected):
    """No `Mux-Signature` header, or one that cannot be parsed (HTTP 400)."""

    http_status = 400


class BadSignature(WebhookRejected):
    """A well-formed signature that does not match, or whose timestamp is out of tolerance
    (HTTP 401)."""

    http_status = 401


class StaleSignature(BadSignature):
    """An authentic signature whose timestamp is too old or too far in the future."""


class MalformedEvent(WebhookRejected):
    """A body that is not a JSON Mux event (HTTP 400; exit 2 for `apply`: bad input)."""

    http_status = 400
    exit_code = 2


# -- signatures --------------------------------------------------------------------------


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
    (all `WebhookRejected`), each with a one-line reason that never quotes the header.
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


# -- outcomes ----------------------------------------------------------------------------


@dataclass
class EventOutcome:
    """What handling one event did.

    `outcome` is one of: `recorded` (a row now names the asset), `cleared` (rows naming the
    asset were cleared), `journal-updated` (only vidpipe's journal changed), `duplicate`
    (nothing left to do: already applied), `stale` (an out-of-date event; nothing changed),
    `ignored` (not vidpipe's business: another passthrough, an unhandled type, no row).
    """

    event_type: str
    event_id: str | None
    outcome: str
    detail: str
    targets: list[Target] = field(default_factory=list)
    asset_id: str | None = None
    replaced_asset_id: str | None = None
    """An asset a journaled upload replaced: left on Mux here (sync reports orphans)."""

    @property
    def changed(self) -> bool:
        return self.outcome in ("recorded", "cleared", "journal-updated")

    def as_json(self) -> dict[str, Any]:
        return {
            "type": self.event_type,
            "id": self.event_id,
            "outcome": self.outcome,
            "detail": self.detail,
            "targets": [t.as_json() for t in self.targets],
            "asset_id": self.asset_id,
            "replaced_asset_id": self.replaced_asset_id,
        }

    def log_line(self) -> str:
        """One line for a log: type, id, outcome, detail."""
        return f"{self.event_type} id={self.event_id or '-'} outcome={self.outcome}: {self.detail}"


# -- events ------------------------------------------------------------------------------

_ASSET_GONE = ("video.asset.deleted", "video.asset.errored")
_UPLOAD_FAILED = ("video.upload.errored", "video.upload.cancelled")


def handle_event(
    engine: Engine,
    event: dict[str, Any],
    *,
    gateway: MuxGateway | None = None,
) -> EventOutcome:
    """Apply one parsed Mux event to the database through the writers; return what it did.

    With a `gateway`, a `video.asset.ready` is confirmed with Mux first (a 404 or a status
    other than ready records nothing); without one the signed event is trusted. Raises
    `MalformedEvent` for a body that is not a Mux event, `VidpipeError` (database) or
    `MuxError` (confirmation) when it could not finish: nothing is half-written, and the
    sender should retry later.
    """
    if not isinstance(event, dict):
        raise MalformedEvent("webhook body is not a JSON object")
    event_type = event.get("type")
    if not isinstance(event_type, str) or not event_type:
        raise MalformedEvent("webhook event has no type")
    raw_id = event.get("id")
    event_id = str(raw_id) if isinstance(raw_id, str | int) and raw_id != "" else None

    def outcome(kind: str, detail: str, **kw: Any) -> EventOutcome:
        return EventOutcome(event_type, event_id, kind, detail, **kw)

    if event_type == "video.asset.ready":
        return _asset_ready(engine, _data(event), outcome, gateway)
    if event_type in _ASSET_GONE:
        return _asset_gone(engine, event_type, _data(event), outcome)
    if event_type == "video.upload.asset_created":
        return _upload_asset_created(engine, _data(event), outcome)
    if event_type in _UPLOAD_FAILED:
        return _upload_failed(engine, event_type, _data(event), outcome)
    return outcome("ignored", f"vidpipe does not act on {event_type} events")


def _data(event: dict[str, Any]) -> dict[str, Any]:
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
        raise MalformedEvent(f"{event.get('type')} event has no data.id")
    return data


class _Raced(Exception):
    """A compare-and-set lost to a concurrent writer: roll back and look again."""


def _asset_ready(
    engine: Engine,
    data: dict[str, Any],
    outcome: Any,
    gateway: MuxGateway | None,
) -> EventOutcome:
    try:
        asset = Asset.from_json(data)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise MalformedEvent("video.asset.ready event data is not an asset") from None
    if from_passthrough(asset.passthrough) is None:
        return outcome(
            "ignored", f"asset {asset.id}: passthrough is not vidpipe's", asset_id=asset.id
        )
    if gateway is not None:
        # The network call stays outside any transaction; MuxError propagates (retry later).
        live = gateway.find_asset(asset.id)
        if live is None:
            with transaction(engine) as conn:
                remember_dead(conn, asset.id, f"Mux answered 404 for asset {asset.id}")
            return outcome("stale", f"Mux no longer has asset {asset.id}", asset_id=asset.id)
        if live.status != "ready":
            return outcome(
                "stale", f"Mux says asset {asset.id} is {live.status}, not ready", asset_id=asset.id
            )
        asset = live
    target = from_passthrough(asset.passthrough)
    if target is None:  # the live asset's passthrough was changed since the event
        return outcome(
            "ignored", f"asset {asset.id}: passthrough is not vidpipe's", asset_id=asset.id
        )
    playback_id = asset.public_playback_id
    if playback_id is None:
        return outcome(
            "ignored",
            f"asset {asset.id} has no public playback ID; {target} is unchanged",
            targets=[target],
            asset_id=asset.id,
        )
    for _ in range(_CAS_ATTEMPTS):
        try:
            with transaction(engine) as conn:
                return _record_ready(
                    conn,
                    target,
                    asset,
                    playback_id,
                    live=gateway is not None,
                    outcome=outcome,
                )
        except _Raced:
            continue
    raise VidpipeError(f"{target} kept changing while recording asset {asset.id}; retry later")


def _record_ready(
    conn: Connection,
    target: Target,
    asset: Asset,
    playback_id: str,
    *,
    live: bool,
    outcome: Any,
) -> EventOutcome:
    """Decide and write, inside one transaction. In order: no row -> ignored; the row already
    names the asset -> duplicate (closing its journal entry); the asset is known dead ->
    stale; an unfinished journal entry expects it -> recorded (unless the row changed under
    the upload); the row names another asset -> stale; another upload to the row is in
    progress -> ignored; a finished upload replaced it -> stale; else -> recorded."""
    kw: dict[str, Any] = {"targets": [target], "asset_id": asset.id}
    row = read_row(conn, target, for_update=True)
    if row is None:
        return outcome(
            "ignored", f"{target} does not exist; `vidpipe sync` reports the orphan", **kw
        )
    entries = _unfinished_for(conn, target)
    matching = [e for e in entries if _entry_matches(e, asset.id, asset.upload_id)]

    if row.asset_id == asset.id:
        changed = False
        # A replayed event carries the playback IDs of its day; only Mux's live answer may
        # change a playback ID the row already holds (sync may have corrected it since).
        if row.playback_id != playback_id and (live or row.playback_id is None):
            same = {"expect_asset_id": asset.id, "expect_playback_id": row.playback_id}
            if not set_video(conn, target, asset.id, playback_id, **same):
                raise _Raced
            changed = True
        for entry in matching:
            _close_done(conn, entry, asset.id, playback_id)
        if changed:
            return outcome("recorded", f"{target}: playback ID of {asset.id} updated", **kw)
        if matching:
            return outcome("journal-updated", f"{target} already records {asset.id}", **kw)
        return outcome("duplicate", f"{target} already records {asset.id}", **kw)

    if _known_dead(conn, asset.id):
        return outcome("stale", f"asset {asset.id} was deleted or errored; not recording it", **kw)

    if matching:
        entry = matching[0]
        if row.asset_id is not None and row.asset_id != entry["replace_asset_id"]:
            # Someone else put a video on the row during the upload: theirs is newer.
            return outcome(
                "stale",
                f"{target} changed during the upload (it records {row.asset_id}); "
                f"not overwriting it with {asset.id}",
                **kw,
            )
        if not set_video(conn, target, asset.id, playback_id, expect_asset_id=row.asset_id):
            raise _Raced
        for e in matching:
            _close_done(conn, e, asset.id, playback_id)
        replaced = entry["replace_asset_id"] if entry["replace_asset_id"] != asset.id else None
        detail = f"{target} records asset {asset.id} (upload journal #{entry['id']} done)"
        if replaced:
            # Deleting it is sync's job (guarded, reviewed); a webhook must not delete.
            detail += f"; the replaced asset {replaced} stays on Mux until `vidpipe sync` prunes it"
        return outcome("recorded", detail, replaced_asset_id=replaced, **kw)

    if row.asset_id is not None:
        return outcome(
            "stale", f"{target} records another asset ({row.asset_id}); not replacing it", **kw
        )
    if entries:
        # vidpipe is uploading another file to this row; recording this one would make that
        # upload fail at the end with "the row changed".
        return outcome(
            "ignored",
            f"an upload to {target} is in progress (journal #{entries[0]['id']}); "
            f"not recording {asset.id}",
            **kw,
        )
    if _was_replaced(conn, target, asset.id):
        return outcome(
            "stale", f"asset {asset.id} was replaced on {target}; not recording it", **kw
        )
    if not set_video(conn, target, asset.id, playback_id, expect_asset_id=None):
        raise _Raced
    return outcome("recorded", f"{target} records asset {asset.id}", **kw)


def _asset_gone(
    engine: Engine,
    event_type: str,
    data: dict[str, Any],
    outcome: Any,
) -> EventOutcome:
    asset_id: str = data["id"]
    upload_id = data.get("upload_id") if isinstance(data.get("upload_id"), str) else None
    if event_type == "video.asset.deleted":
        reason = f"asset {asset_id} was deleted on Mux"
    else:
        try:
            error = Asset.from_json(data).error
        except (KeyError, TypeError, ValueError, AttributeError):
            error = None
        reason = f"Mux could not process the video (asset {asset_id} errored"
        reason += f": {error})" if error else ")"
    with transaction(engine) as conn:
        remember_dead(conn, asset_id, reason)
        cleared = clear_asset_everywhere(conn, asset_id)
        failed = _fail_entries(
            conn,
            or_(_JOURNAL.c.asset_id == asset_id, _upload_clause(upload_id)),
            reason,
            asset_id=asset_id,
        )
    targets = sorted(set(cleared) | set(failed))
    if cleared:
        names = ", ".join(str(t) for t in cleared)
        return outcome("cleared", f"{reason}; cleared {names}", targets=targets, asset_id=asset_id)
    if failed:
        return outcome(
            "journal-updated", f"{reason}; upload marked failed", targets=targets, asset_id=asset_id
        )
    return outcome("duplicate", f"{reason}; no row or upload names it", asset_id=asset_id)


def _upload_asset_created(engine: Engine, data: dict[str, Any], outcome: Any) -> EventOutcome:
    upload_id: str = data["id"]
    asset_id = data.get("asset_id")
    if not isinstance(asset_id, str) or not asset_id:
        raise MalformedEvent("video.upload.asset_created event has no data.asset_id")
    with transaction(engine) as conn:
        entry = _latest_for_upload(conn, upload_id)
        if entry is None:
            return outcome(
                "ignored", f"upload {upload_id} is not in vidpipe's journal", asset_id=asset_id
            )
        target = _entry_target(entry)
        kw: dict[str, Any] = {"targets": [target], "asset_id": asset_id}
        if entry["state"] not in UNFINISHED_STATES:
            # A ready/deleted that overtook this event already finished the entry.
            return outcome("duplicate", f"upload {upload_id} is already {entry['state']}", **kw)
        if entry["asset_id"] == asset_id and entry["state"] == "asset_created":
            return outcome("duplicate", f"upload {upload_id} already has asset {asset_id}", **kw)
        conn.execute(
            update(_JOURNAL)
            .where(_JOURNAL.c.id == entry["id"])
            .where(_JOURNAL.c.state.in_(UNFINISHED_STATES))
            .values(asset_id=asset_id, state="asset_created", updated_at=utcnow())
        )
    return outcome(
        "journal-updated", f"upload {upload_id} for {target} created asset {asset_id}", **kw
    )


def _upload_failed(
    engine: Engine, event_type: str, data: dict[str, Any], outcome: Any
) -> EventOutcome:
    upload_id: str = data["id"]
    if event_type == "video.upload.cancelled":
        reason = f"Mux says upload {upload_id} cancelled"
    else:
        err = data.get("error") if isinstance(data.get("error"), dict) else {}
        message = err.get("message") or err.get("type") if err else None
        reason = f"Mux says upload {upload_id} errored" + (f": {message}" if message else "")
    with transaction(engine) as conn:
        failed = _fail_entries(conn, _JOURNAL.c.upload_id == upload_id, reason)
    if failed:
        return outcome("journal-updated", f"{reason}; upload marked failed", targets=failed)
    return outcome("ignored", f"{reason}; no unfinished upload in vidpipe's journal")


# -- journal helpers (inside the caller's transaction) -----------------------------------


def _entry_target(entry: Any) -> Target:
    return Target(Kind(entry["target_kind"]), int(entry["target_id"]))


def _unfinished_for(conn: Connection, target: Target) -> list[Any]:
    stmt = (
        select(_JOURNAL)
        .where(_JOURNAL.c.target_kind == target.kind.value)
        .where(_JOURNAL.c.target_id == target.id)
        .where(_JOURNAL.c.state.in_(UNFINISHED_STATES))
        .order_by(_JOURNAL.c.id.desc())
    )
    return [row._mapping for row in conn.execute(stmt)]


def _entry_matches(entry: Any, asset_id: str, upload_id: str | None) -> bool:
    return entry["asset_id"] == asset_id or (
        upload_id is not None and entry["upload_id"] == upload_id
    )


def _upload_clause(upload_id: str | None) -> Any:
    # `false()`-like when there is no upload id: never match entries whose upload_id is NULL.
    return _JOURNAL.c.upload_id == upload_id if upload_id else _JOURNAL.c.id.is_(None)


def _known_dead(conn: Connection, asset_id: str) -> bool:
    """Mux said this asset is gone: a tombstone, or a journal entry failed because of it."""
    if is_tombstoned(conn, asset_id):
        return True
    failed = select(_JOURNAL.c.id).where(
        and_(_JOURNAL.c.asset_id == asset_id, _JOURNAL.c.state == "failed")
    )
    return conn.execute(failed.limit(1)).first() is not None


def _was_replaced(conn: Connection, target: Target, asset_id: str) -> bool:
    """A finished vidpipe upload put another video on this row in place of `asset_id`."""
    stmt = (
        select(_JOURNAL.c.id)
        .where(_JOURNAL.c.target_kind == target.kind.value)
        .where(_JOURNAL.c.target_id == target.id)
        .where(_JOURNAL.c.replace_asset_id == asset_id)
        .where(_JOURNAL.c.state == "done")
    )
    return conn.execute(stmt.limit(1)).first() is not None


def _latest_for_upload(conn: Connection, upload_id: str) -> Any:
    stmt = select(_JOURNAL).where(_JOURNAL.c.upload_id == upload_id).order_by(_JOURNAL.c.id.desc())
    row = conn.execute(stmt.limit(1)).first()
    return row._mapping if row is not None else None


def _close_done(conn: Connection, entry: Any, asset_id: str, playback_id: str) -> None:
    conn.execute(
        update(_JOURNAL)
        .where(_JOURNAL.c.id == entry["id"])
        .where(_JOURNAL.c.state.in_(UNFINISHED_STATES))
        .values(
            state="done",
            asset_id=asset_id,
            playback_id=playback_id,
            confirmed_bytes=entry["file_size"],
            last_error=None,
            updated_at=utcnow(),
        )
    )


def _fail_entries(
    conn: Connection, where: Any, reason: str, *, asset_id: str | None = None
) -> list[Target]:
    """Mark the unfinished entries matching `where` failed; return their targets."""
    stmt = select(_JOURNAL).where(where).where(_JOURNAL.c.state.in_(UNFINISHED_STATES))
    entries = [row._mapping for row in conn.execute(stmt)]
    for entry in entries:
        values: dict[str, Any] = {"state": "failed", "last_error": reason, "updated_at": utcnow()}
        if asset_id is not None and entry["asset_id"] is None:
            # Remember the dead asset on the entry so a late `ready` for it is refused.
            values["asset_id"] = asset_id
        conn.execute(
            update(_JOURNAL)
            .where(_JOURNAL.c.id == entry["id"])
            .where(_JOURNAL.c.state.in_(UNFINISHED_STATES))
            .values(values)
        )
    return sorted({_entry_target(e) for e in entries})


# -- one raw payload ---------------------------------------------------------------------


def parse_event(body: bytes) -> dict[str, Any]:
    """The JSON object in `body`, or `MalformedEvent`."""
    try:
        event = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise MalformedEvent("webhook body is not valid JSON") from None
    if not isinstance(event, dict):
        raise MalformedEvent("webhook body is not a JSON object")
    return event


def apply_payload(
    engine: Engine,
    body: bytes,
    *,
    secret: str | None,
    signature: str | None,
    verify: bool,
    gateway: MuxGateway | None = None,
    now: float | None = None,
) -> EventOutcome:
    """Verify (when `verify`), parse and handle one raw event body, as `webhook apply` does.

    The 300 s tolerance applies here too: a signature proves freshness only with it, and a
    replay of an old event is an explicit `--no-verify`. Nothing is changed on rejection.
    """
    if verify:
        if not secret:
            raise ConfigError("MUX_WEBHOOK_SECRET is not set (environment or .env)")
        if not signature:
            raise MissingSignature(
                "no signature given: pass --signature with the event's Mux-Signature header, "
                "or --no-verify to apply it unverified"
            )
        try:
            verify_signature(secret, signature, body, now=now)
        except StaleSignature as exc:
            raise StaleSignature(
                f"{exc.message}; to replay an old event, use --no-verify"
            ) from None
    return handle_event(engine, parse_event(body), gateway=gateway)


# -- the server (lives in `vidpipe.webhooks_server`; starlette/uvicorn imported only here) ---


def create_app(
    engine: Engine | Callable[[], Engine],
    secret: str,
    *,
    gateway_factory: Callable[[], MuxGateway | None] | None = None,
    max_body: int = 1 << 20,
    log: Callable[[str], None] | None = None,
) -> Starlette:
    """The starlette app that serves webhooks; see `vidpipe.webhooks_server.create_app`."""
    from vidpipe import webhooks_server

    return webhooks_server.create_app(
        engine, secret, gateway_factory=gateway_factory, max_body=max_body, log=log
    )


def serve(
    engine: Engine,
    secret: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    gateway: MuxGateway | None = None,
    log: Callable[[str], None] = print,
) -> None:
    """Serve webhooks until SIGTERM/SIGINT; see `vidpipe.webhooks_server.serve`."""
    from vidpipe import webhooks_server

    webhooks_server.serve(engine, secret, host=host, port=port, gateway=gateway, log=log)
