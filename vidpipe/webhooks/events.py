"""Mux events applied to the database through the same writers as sync.

`handle_event` takes a parsed event and changes the platform's rows (`vidpipe.records`) and
vidpipe's upload journal (`vidpipe.journal`), one transaction per change, each write a
compare-and-set, so duplicates and out-of-order deliveries (Mux delivers at least once, in
no promised order) are harmless. Events for one asset are serialized with each other and with
every other writer of that asset (`vidpipe.records`: its docstring gives the lock order), and
tombstones come first: any event for an asset Mux said is gone clears the rows naming it,
whatever the event would otherwise do. `apply_payload` adds the signature check and JSON parsing
for one raw body. Messages never contain the webhook secret or the signature.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from vidpipe import journal, recording
from vidpipe.assets import Policies
from vidpipe.db import transaction
from vidpipe.errors import (
    ConfigError,
    UsageError,
    VidpipeError,
    WebhookRejected,
)
from vidpipe.mux import Asset, Environment, MuxGateway
from vidpipe.readiness import asset_failure, upload_failure
from vidpipe.recording import Verdict
from vidpipe.records import clear_asset_everywhere, is_tombstoned, lock_asset, remember_dead
from vidpipe.targets import Target, from_passthrough
from vidpipe.text import shown
from vidpipe.webhooks.signature import MissingSignature, verify_signature

_MAX_ID = 255  # Mux's IDs are a few dozen characters
_CAS_ATTEMPTS = 3  # a row that changes under us this often means "let Mux retry later"


class MalformedEvent(WebhookRejected, UsageError):
    """A body that is not a JSON Mux event: bad input, which retrying will not fix."""


class Outcome(StrEnum):
    """What handling one event did."""

    RECORDED = "recorded"  # a row now names the asset
    CLEARED = "cleared"  # rows naming the asset were cleared
    JOURNAL_UPDATED = "journal-updated"  # only vidpipe's journal changed
    DUPLICATE = "duplicate"  # nothing left to do: already applied
    STALE = "stale"  # an out-of-date event; nothing changed
    IGNORED = "ignored"  # not vidpipe's business: another passthrough, a type, no row,
    # another Mux environment


@dataclass
class EventOutcome:
    """What handling one event did, to which targets, with a one-line `detail`."""

    event_type: str
    event_id: str | None
    outcome: Outcome
    detail: str
    targets: list[Target] = field(default_factory=list)
    asset_id: str | None = None
    replaced_asset_id: str | None = None
    """An asset a journaled upload replaced: left on Mux here (sync reports orphans)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "type": self.event_type,
            "id": self.event_id,
            "outcome": self.outcome.value,
            "detail": self.detail,
            "targets": [t.as_json() for t in self.targets],
            "asset_id": self.asset_id,
            "replaced_asset_id": self.replaced_asset_id,
        }

    def log_line(self) -> str:
        """One line for a log: type, id, outcome, detail (control characters escaped: the
        fields come from the event)."""
        return shown(
            f"{self.event_type} id={self.event_id or '-'} "
            f"outcome={self.outcome.value}: {self.detail}"
        )


_Make = Callable[..., EventOutcome]
"""Builds the outcome of the event being handled: `(Outcome, detail, **fields)`."""

BeforeCommit = Callable[[EventOutcome], None]
"""See `handle_event`'s `before_commit`."""

_ASSET_GONE = ("video.asset.deleted", "video.asset.errored")
_UPLOAD_FAILED = ("video.upload.errored", "video.upload.cancelled")


# -- one raw payload ---------------------------------------------------------------------


def parse_event(body: bytes) -> dict[str, Any]:
    """The JSON object in `body`, or `MalformedEvent` (also for nesting too deep to parse and
    for NaN/Infinity, which are not JSON)."""
    try:
        event = json.loads(body, parse_constant=_not_json)
    except (ValueError, UnicodeDecodeError):
        raise MalformedEvent("webhook body is not valid JSON") from None
    except RecursionError:
        raise MalformedEvent("webhook body is nested too deeply") from None
    if not isinstance(event, dict):
        raise MalformedEvent("webhook body is not a JSON object")
    return event


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def read_event(
    body: bytes,
    *,
    secret: str | None,
    signature: str | None,
    verify: bool,
    now: float | None = None,
) -> dict[str, Any]:
    """Verify (when `verify`) and parse one raw event body; nothing is handled yet.

    The signature's time tolerance applies here too: a signature proves freshness only with
    it, so replaying an old event takes `verify=False`. Raises `ConfigError` (verifying
    without a secret), `MissingSignature` (verifying without a signature), `BadSignature` /
    `StaleSignature`, or `MalformedEvent`.
    """
    if verify:
        if not secret:
            raise ConfigError("MUX_WEBHOOK_SECRET is not set (environment or .env)")
        if not signature:
            raise MissingSignature("no signature given")
        verify_signature(secret, signature, body, now=now)
    return parse_event(body)


def apply_payload(
    engine: Engine,
    body: bytes,
    *,
    secret: str | None,
    signature: str | None,
    verify: bool,
    gateway: MuxGateway | None = None,
    environment: Environment | None = None,
    now: float | None = None,
    policies: Policies | None = None,
    before_commit: BeforeCommit | None = None,
) -> EventOutcome:
    """Verify (when `verify`), parse and handle one raw event body: `read_event`, then
    `handle_event`. Nothing is changed on rejection."""
    event = read_event(body, secret=secret, signature=signature, verify=verify, now=now)
    return handle_event(
        engine,
        event,
        gateway=gateway,
        environment=environment,
        policies=policies,
        before_commit=before_commit,
    )


# -- events ------------------------------------------------------------------------------


def handle_event(
    engine: Engine,
    event: dict[str, Any],
    *,
    gateway: MuxGateway | None = None,
    environment: Environment | None = None,
    policies: Policies | None = None,
    before_commit: BeforeCommit | None = None,
) -> EventOutcome:
    """Apply one parsed Mux event to the database through the writers; return what it did.

    `environment` is the one the database is pinned to: an event from another Mux
    environment (its `environment.id`) changes nothing and is `ignored`. An event without an
    `environment` (older payloads, hand-written ones) is handled.

    With a `gateway`, every event that changes rows is confirmed with Mux first: a
    `video.asset.ready` records nothing on a 404 or a status other than ready; a
    `video.asset.deleted` or `errored` clears nothing unless Mux answers 404 or `errored`;
    a `video.upload.asset_created` is taken only if the asset names this upload and its
    target. Without one the signed event is trusted. The playback ID recorded is the
    asset's of its row's configured policy (`policies`; public for both kinds when None),
    or its other one when it has none of that policy (which `verify` reports as a policy
    mismatch). An event for an asset that has a tombstone clears every row naming it,
    whatever its type.

    `before_commit` (a seam for tests and instrumentation) is called inside the transaction
    of a `video.asset.ready`, `deleted` or `errored` event, with the outcome it is about to
    return, after its writes and while it still holds its locks; an exception from it rolls
    the transaction back. Raises
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

    def outcome(kind: Outcome, detail: str, **kw: Any) -> EventOutcome:
        return EventOutcome(event_type, event_id, kind, detail, **kw)

    sender = _environment_of(event)
    if environment is not None and sender is not None and sender.id != environment.id:
        return outcome(
            Outcome.IGNORED,
            f"the event is from Mux environment {sender}; this database belongs to "
            f"{environment}: nothing changed",
        )

    if event_type == "video.asset.ready":
        return _asset_ready(
            engine, _data(event), outcome, gateway, policies or Policies(), before_commit
        )
    if event_type in _ASSET_GONE:
        return _asset_gone(engine, event_type, _data(event), outcome, gateway, before_commit)
    if event_type == "video.upload.asset_created":
        return _upload_asset_created(engine, _data(event), outcome, gateway)
    if event_type in _UPLOAD_FAILED:
        return _upload_failed(engine, event_type, _data(event), outcome)
    ignored = outcome(Outcome.IGNORED, f"vidpipe does not act on {event_type} events")
    data = event.get("data")
    if event_type.startswith("video.asset.") and isinstance(data, dict):
        # A track's or a static rendition's event data is the track or the rendition (added,
        # ready, errored: nothing a row records); it names its asset in `asset_id`.
        part = event_type.startswith(("video.asset.track.", "video.asset.static_rendition."))
        asset_id = data.get("asset_id" if part else "id")
        if isinstance(asset_id, str) and asset_id:
            return _unless_dead(engine, asset_id, ignored, outcome)
    return ignored


def _unless_dead(
    engine: Engine, asset_id: str, otherwise: EventOutcome, outcome: _Make
) -> EventOutcome:
    """Tombstones first, for events that would change nothing: when `asset_id` has a tombstone,
    clear the rows naming it; otherwise answer `otherwise`."""
    with transaction(engine) as conn:
        dead = is_tombstoned(conn, asset_id)
    if not dead:  # a tombstone is never taken back (only pruned long after): safe to skip
        return otherwise
    with transaction(engine, immediate=True) as conn:
        lock_asset(conn, asset_id)
        cleared = clear_asset_everywhere(conn, asset_id)
    if not cleared:
        return otherwise
    return _cleared_dead(outcome, asset_id, cleared)


def _cleared_dead(outcome: _Make, asset_id: str, cleared: list[Target]) -> EventOutcome:
    names = ", ".join(str(t) for t in cleared)
    return outcome(
        Outcome.CLEARED,
        f"asset {asset_id} was deleted or errored on Mux; cleared {names}",
        targets=cleared,
        asset_id=asset_id,
    )


def _environment_of(event: dict[str, Any]) -> Environment | None:
    """The environment an event names (`{"name", "id"}`), or None when it names none."""
    raw = event.get("environment")
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not raw["id"]:
        raise MalformedEvent(f"{event.get('type')} event has a malformed environment")
    name = raw.get("name")
    return Environment(raw["id"], name if isinstance(name, str) and name else raw["id"])


def _data(event: dict[str, Any]) -> dict[str, Any]:
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
        raise MalformedEvent(f"{event.get('type')} event has no data.id")
    if len(data["id"]) > _MAX_ID:
        raise MalformedEvent(f"{event.get('type')} event's data.id is too long to be Mux's")
    return data


class _Raced(Exception):
    """A compare-and-set lost to a concurrent writer: roll back and look again."""


def _asset_ready(
    engine: Engine,
    data: dict[str, Any],
    outcome: _Make,
    gateway: MuxGateway | None,
    policies: Policies,
    before_commit: BeforeCommit | None,
) -> EventOutcome:
    try:
        asset = Asset.from_json(data)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
        raise MalformedEvent("video.asset.ready event data is not an asset") from None
    if from_passthrough(asset.passthrough) is None:
        foreign = outcome(
            Outcome.IGNORED, f"asset {asset.id}: passthrough is not vidpipe's", asset_id=asset.id
        )
        return _unless_dead(engine, asset.id, foreign, outcome)
    if gateway is not None:
        # The network call stays outside any transaction; MuxError propagates (retry later).
        live = gateway.find_asset(asset.id)
        if live is None:
            with transaction(engine, immediate=True) as conn:
                remember_dead(conn, asset.id, f"Mux answered 404 for asset {asset.id}")
                lock_asset(conn, asset.id)
                cleared = clear_asset_everywhere(conn, asset.id)
            if cleared:
                return _cleared_dead(outcome, asset.id, cleared)
            return outcome(Outcome.STALE, f"Mux no longer has asset {asset.id}", asset_id=asset.id)
        if live.status != "ready":
            not_ready = outcome(
                Outcome.STALE,
                f"Mux says asset {asset.id} is {live.status}, not ready",
                asset_id=asset.id,
            )
            return _unless_dead(engine, asset.id, not_ready, outcome)
        asset = live
    target = from_passthrough(asset.passthrough)
    if target is None:  # the live asset's passthrough was changed since the event
        foreign = outcome(
            Outcome.IGNORED, f"asset {asset.id}: passthrough is not vidpipe's", asset_id=asset.id
        )
        return _unless_dead(engine, asset.id, foreign, outcome)
    playback_id = asset.playback_id_for(policies.of(target.kind), fallback=True)
    if playback_id is None:
        no_playback = outcome(
            Outcome.IGNORED,
            f"asset {asset.id} has no playback ID; {target} is unchanged",
            targets=[target],
            asset_id=asset.id,
        )
        return _unless_dead(engine, asset.id, no_playback, outcome)
    for _ in range(_CAS_ATTEMPTS):
        try:
            with transaction(engine, immediate=True) as conn:
                lock_asset(conn, asset.id)
                result = _record_ready(
                    conn,
                    target,
                    asset,
                    playback_id,
                    live=gateway is not None,
                    outcome=outcome,
                )
                if before_commit is not None:
                    before_commit(result)
                return result
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
    outcome: _Make,
) -> EventOutcome:
    """Decide (`vidpipe.recording`, the decision the upload and sync make too) and write,
    inside one transaction holding the asset's lock; say what it did as this event's
    outcome. An asset with a tombstone also clears every row naming it: a row left naming a
    dead asset (by a writer that raced before writers were serialized, or by hand) is
    repaired by the next event for it, not only by the next sync."""
    kw: dict[str, Any] = {"targets": [target], "asset_id": asset.id}
    decision = recording.decide(
        conn, target, asset.id, playback_id, upload_id=asset.upload_id, live=live
    )
    if decision.verdict is Verdict.GONE:
        cleared = clear_asset_everywhere(conn, asset.id)
        if cleared:
            return _cleared_dead(outcome, asset.id, cleared)
    if not decision.recordable:
        kind, detail = _not_recorded(decision)
        return outcome(kind, detail, **kw)
    if not recording.write(conn, decision):
        raise _Raced
    return _recorded(decision, outcome, kw)


def _not_recorded(decision: recording.Decision) -> tuple[Outcome, str]:
    """Why a ready event records nothing: its outcome and detail."""
    target, asset_id, row_asset = decision.target, decision.asset_id, decision.row_asset_id
    uploading = decision.in_progress.id if decision.in_progress else None
    gone = (Outcome.STALE, f"asset {asset_id} was deleted or errored; not recording it")
    return {
        Verdict.GONE: gone,
        Verdict.FAILED: gone,
        Verdict.NO_ROW: (
            Outcome.IGNORED,
            f"{target} does not exist; `vidpipe sync` reports the orphan",
        ),
        # Someone else put a video on the row during the upload: theirs is newer.
        Verdict.ROW_CHANGED: (
            Outcome.STALE,
            f"{target} changed during the upload (it records {row_asset}); "
            f"not overwriting it with {asset_id}",
        ),
        Verdict.OTHER_ASSET: (
            Outcome.STALE,
            f"{target} records another asset ({row_asset}); not replacing it",
        ),
        # vidpipe is uploading another file to this row; recording this one would make that
        # upload fail at the end with "the row changed".
        Verdict.UPLOADING: (
            Outcome.IGNORED,
            f"an upload to {target} is in progress (journal #{uploading}); "
            f"not recording {asset_id}",
        ),
        Verdict.REPLACED: (
            Outcome.STALE,
            f"asset {asset_id} was replaced on {target}; not recording it",
        ),
    }[decision.verdict]


def _recorded(decision: recording.Decision, outcome: _Make, kw: dict[str, Any]) -> EventOutcome:
    """The outcome of a recordable decision, written."""
    target, asset_id = decision.target, decision.asset_id
    if decision.verdict is Verdict.PLAYBACK:
        return outcome(Outcome.RECORDED, f"{target}: playback ID of {asset_id} updated", **kw)
    if decision.verdict is Verdict.ALREADY:
        kind = Outcome.JOURNAL_UPDATED if decision.makers else Outcome.DUPLICATE
        return outcome(kind, f"{target} already records {asset_id}", **kw)
    if not decision.makers:
        return outcome(Outcome.RECORDED, f"{target} records asset {asset_id}", **kw)
    detail = f"{target} records asset {asset_id} (upload journal #{decision.makers[0].id} done)"
    replaced = decision.replaced_asset_id
    if replaced:
        # Deleting it is sync's job (guarded, reviewed); a webhook must not delete.
        detail += f"; the replaced asset {replaced} stays on Mux until `vidpipe sync` prunes it"
    return outcome(Outcome.RECORDED, detail, replaced_asset_id=replaced, **kw)


def _asset_gone(
    engine: Engine,
    event_type: str,
    data: dict[str, Any],
    outcome: _Make,
    gateway: MuxGateway | None,
    before_commit: BeforeCommit | None,
) -> EventOutcome:
    asset_id: str = data["id"]
    upload_id = data.get("upload_id") if isinstance(data.get("upload_id"), str) else None
    if gateway is not None:
        # Destructive: only Mux's own answer (404, or errored) clears rows. The network call
        # stays outside any transaction; MuxError propagates (retry later).
        live = gateway.find_asset(asset_id)
        if live is not None and live.status != "errored":
            return outcome(
                Outcome.STALE,
                f"Mux says asset {asset_id} is {live.status}; not clearing anything",
                asset_id=asset_id,
            )
        deleted, error = live is None, (live.error if live is not None else None)
        # The event's upload ID is the sender's word: only Mux's may fail an upload by it.
        upload_id = live.upload_id if live is not None else None
    else:
        deleted, error = event_type == "video.asset.deleted", None
        if not deleted:
            try:
                error = Asset.from_json(data).error
            except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
                error = None
    reason = f"asset {asset_id} was deleted on Mux" if deleted else asset_failure(asset_id, error)
    with transaction(engine, immediate=True) as conn:
        # The lock order of `vidpipe.records`: tombstone, then the asset lock, then rows.
        remember_dead(conn, asset_id, reason)
        lock_asset(conn, asset_id)
        cleared = clear_asset_everywhere(conn, asset_id)
        # An empty upload ID names no upload: it must not match entries without one.
        failed = journal.fail_matching(conn, reason, asset_id=asset_id, upload_id=upload_id or None)
        targets = sorted(set(cleared) | set(failed))
        if cleared:
            names = ", ".join(str(t) for t in cleared)
            result = outcome(
                Outcome.CLEARED, f"{reason}; cleared {names}", targets=targets, asset_id=asset_id
            )
        elif failed:
            result = outcome(
                Outcome.JOURNAL_UPDATED,
                f"{reason}; upload marked failed",
                targets=targets,
                asset_id=asset_id,
            )
        else:
            result = outcome(
                Outcome.DUPLICATE, f"{reason}; no row or upload names it", asset_id=asset_id
            )
        if before_commit is not None:
            before_commit(result)
    return result


def _upload_asset_created(
    engine: Engine, data: dict[str, Any], outcome: _Make, gateway: MuxGateway | None
) -> EventOutcome:
    upload_id: str = data["id"]
    asset_id = data.get("asset_id")
    if not isinstance(asset_id, str) or not asset_id:
        raise MalformedEvent("video.upload.asset_created event has no data.asset_id")
    with transaction(engine, immediate=True) as conn:
        # Tombstones first: an asset Mux said is gone clears the rows naming it.
        lock_asset(conn, asset_id)
        if is_tombstoned(conn, asset_id):
            cleared = clear_asset_everywhere(conn, asset_id)
            if cleared:
                return _cleared_dead(outcome, asset_id, cleared)
        known = journal.latest_for_upload(conn, upload_id)
    if known is None:
        return outcome(
            Outcome.IGNORED, f"upload {upload_id} is not in vidpipe's journal", asset_id=asset_id
        )
    if gateway is not None:
        # Outside any transaction; MuxError propagates (retry later).
        refusal = _not_the_uploads_asset(
            gateway.find_asset(asset_id), asset_id, upload_id, journal.target_of(known)
        )
        if refusal:
            return outcome(
                Outcome.STALE, refusal, targets=[journal.target_of(known)], asset_id=asset_id
            )
    with transaction(engine, immediate=True) as conn:
        lock_asset(conn, asset_id)
        entry = journal.latest_for_upload(conn, upload_id)
        assert entry is not None  # journal entries are never deleted
        target = journal.target_of(entry)
        kw: dict[str, Any] = {"targets": [target], "asset_id": asset_id}
        if not journal.is_unfinished(entry):
            # A ready/deleted that overtook this event already finished the entry.
            return outcome(Outcome.DUPLICATE, f"upload {upload_id} is already {entry.state}", **kw)
        if entry.asset_id == asset_id and entry.state == journal.State.ASSET_CREATED:
            return outcome(
                Outcome.DUPLICATE, f"upload {upload_id} already has asset {asset_id}", **kw
            )
        assert entry.id is not None  # read from the table: always has one
        journal.mark_asset_created(conn, entry.id, asset_id)
    return outcome(
        Outcome.JOURNAL_UPDATED, f"upload {upload_id} for {target} created asset {asset_id}", **kw
    )


def _not_the_uploads_asset(
    asset: Asset | None, asset_id: str, upload_id: str, target: Target
) -> str | None:
    """Why Mux's `asset` is not the one `upload_id` made for `target`, or None when it is."""
    if asset is None:
        return f"Mux has no asset {asset_id}; upload {upload_id} is unchanged"
    if asset.upload_id != upload_id:
        return (
            f"asset {asset_id} was not made by upload {upload_id} "
            f"(Mux says upload {asset.upload_id or 'none'}); not taking it"
        )
    if from_passthrough(asset.passthrough) != target:
        return f"asset {asset_id}'s passthrough does not name {target}; not taking it"
    return None


def _upload_failed(
    engine: Engine, event_type: str, data: dict[str, Any], outcome: _Make
) -> EventOutcome:
    upload_id: str = data["id"]
    if event_type == "video.upload.cancelled":
        reason = upload_failure(upload_id, "cancelled")
    else:
        err = data.get("error") if isinstance(data.get("error"), dict) else {}
        message = err.get("message") or err.get("type") if err else None
        reason = upload_failure(upload_id, "errored", message)
    with transaction(engine) as conn:
        failed = journal.fail_matching(conn, reason, upload_id=upload_id)
    if failed:
        return outcome(Outcome.JOURNAL_UPDATED, f"{reason}; upload marked failed", targets=failed)
    return outcome(Outcome.IGNORED, f"{reason}; no unfinished upload in vidpipe's journal")
