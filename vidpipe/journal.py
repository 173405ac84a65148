"""The upload journal (`vidpipe_upload`): the one module that reads and writes it.

Each step of an upload is written here before it is taken, so re-running the same command
resumes the same Mux upload. The pipeline, reconcile and the webhooks all go through these
functions; nothing else inserts, updates or closes a journal row.

Two kinds of function:
- engine-level (`create`, `update`, `unfinished_for`, `all_unfinished`): each opens its own
  transaction; the pipeline uses them step by step;
- connection-level (`finish`, `close_if`, `fail_for_asset`, `fail_matching`, ...): they run in
  the caller's transaction, beside the row writers of `records`, so that "row recorded" and
  "upload done" commit together. Every one of them is a compare-and-set on the entry's state.

The journal never keeps a direct-upload URL: it is a bearer credential (anyone holding it can
finish the upload with other bytes), and Mux gives it again while the upload waits. The
`upload_url` column stays for databases made by older versions, always NULL: every write
here clears what such a version left (`forget_upload_urls`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, func, or_, select
from sqlalchemy import update as sql_update
from sqlalchemy.engine import Connection

from vidpipe.db import UploadJournal, transaction, utcnow
from vidpipe.media import URL_SCHEMES
from vidpipe.targets import Kind, Target


class State(StrEnum):
    """Where an upload stands. The first five are unfinished; the last three are final."""

    CREATED = "created"  # journaled, no Mux upload yet
    CREATING = "creating"  # a create request was (maybe) sent; its answer is not journaled
    UPLOADING = "uploading"  # Mux upload created, bytes moving
    TRANSFERRED = "transferred"  # every byte confirmed, no asset known yet
    ASSET_CREATED = "asset_created"  # Mux made the asset, not recorded yet
    DONE = "done"  # the asset is recorded on the row
    FAILED = "failed"  # Mux said no (errored, cancelled, deleted, timed out)
    ABANDONED = "abandoned"  # given up by vidpipe (superseded, closed by sync)


UNFINISHED: frozenset[State] = frozenset(
    {State.CREATED, State.CREATING, State.UPLOADING, State.TRANSFERRED, State.ASSET_CREATED}
)

_UNFINISHED_VALUES = sorted(s.value for s in UNFINISHED)

_T = UploadJournal.__table__  # type: ignore[attr-defined]


def target_of(entry: UploadJournal) -> Target:
    """The lesson or course an entry uploads to."""
    return Target(Kind(entry.target_kind), int(entry.target_id))


def is_unfinished(entry: UploadJournal) -> bool:
    return entry.state in _UNFINISHED_VALUES


def is_url_source(entry: UploadJournal) -> bool:
    """The entry ingests from a URL (Mux fetches it): `file_path` holds the URL, and there
    is no direct upload and no byte count."""
    return entry.file_path.startswith(tuple(f"{scheme}://" for scheme in URL_SCHEMES))


def _entries(conn: Connection, stmt: Any) -> list[UploadJournal]:
    return [UploadJournal(**dict(row._mapping)) for row in conn.execute(stmt)]


def _unfinished_stmt(target: Target | None) -> Any:
    stmt = select(_T).where(_T.c.state.in_(_UNFINISHED_VALUES))
    if target is not None:
        stmt = stmt.where(_T.c.target_kind == target.kind.value).where(_T.c.target_id == target.id)
    return stmt


# -- engine-level: one transaction each ------------------------------------------------------


def unfinished_for(engine: Engine, target: Target) -> list[UploadJournal]:
    """Unfinished entries for a target, newest first."""
    with transaction(engine) as conn:
        return _entries(conn, _unfinished_stmt(target).order_by(_T.c.id.desc()))


def all_unfinished(engine: Engine, target: Target | None = None) -> list[UploadJournal]:
    """Every unfinished entry (or a target's), oldest first."""
    with transaction(engine) as conn:
        return _entries(conn, _unfinished_stmt(target).order_by(_T.c.id))


def create(engine: Engine, target: Target, **fields: Any) -> UploadJournal:
    """Insert a new entry for `target` (state `created` unless given) and return it."""
    _refuse_url(fields)
    values = {"target_kind": target.kind.value, "target_id": target.id, **fields}
    values.setdefault("state", State.CREATED.value)
    values.setdefault("confirmed_bytes", 0)
    values = {k: (v.value if isinstance(v, State) else v) for k, v in values.items()}
    now = utcnow()
    values.setdefault("created_at", now)
    values.setdefault("updated_at", now)
    with transaction(engine) as conn:
        _forget_urls(conn)
        key = conn.execute(_T.insert().values(**values)).inserted_primary_key
        assert key is not None
        new_id = key[0]
        row = conn.execute(select(_T).where(_T.c.id == new_id)).one()
    return UploadJournal(**dict(row._mapping))


def update(engine: Engine, entry: UploadJournal, **fields: Any) -> UploadJournal:
    """Write `fields` to the entry (one transaction) and mirror them on the object."""
    _refuse_url(fields)
    values = {k: (v.value if isinstance(v, State) else v) for k, v in fields.items()}
    values["updated_at"] = utcnow()
    with transaction(engine) as conn:
        _forget_urls(conn)
        conn.execute(update_stmt(entry.id).values(**values))
    for key, value in values.items():
        setattr(entry, key, value)
    return entry


def update_stmt(journal_id: int | None) -> Any:
    return sql_update(_T).where(_T.c.id == journal_id)


def forget_upload_urls(engine: Engine) -> int:
    """Clear every upload URL an older vidpipe stored (one statement); return how many."""
    with transaction(engine) as conn:
        return _forget_urls(conn)


def _forget_urls(conn: Connection) -> int:
    # Matches nothing once cleared: a cheap statement on every engine-level write.
    stmt = sql_update(_T).where(_T.c.upload_url.is_not(None)).values(upload_url=None)
    return int(conn.execute(stmt).rowcount or 0)


def _refuse_url(fields: dict[str, Any]) -> None:
    if fields.get("upload_url") is not None:
        raise ValueError("the journal does not keep upload URLs (bearer credentials)")


# -- connection-level: inside the caller's transaction ---------------------------------------


def unfinished_in(conn: Connection, target: Target) -> list[UploadJournal]:
    """Unfinished entries for a target, newest first, read in the caller's transaction."""
    return _entries(conn, _unfinished_stmt(target).order_by(_T.c.id.desc()))


def latest_for_upload(conn: Connection, upload_id: str) -> UploadJournal | None:
    """The newest entry for a Mux upload ID."""
    stmt = select(_T).where(_T.c.upload_id == upload_id).order_by(_T.c.id.desc()).limit(1)
    found = _entries(conn, stmt)
    return found[0] if found else None


def finish(
    conn: Connection,
    journal_id: int,
    asset_id: str,
    playback_id: str | None,
    *,
    file_size: int | None = None,
) -> bool:
    """Mark an unfinished entry `done` with the recorded IDs. Returns whether it changed."""
    values: dict[str, Any] = {
        "state": State.DONE.value,
        "asset_id": asset_id,
        "playback_id": playback_id,
        "last_error": None,
        "updated_at": utcnow(),
    }
    if file_size is not None:
        values["confirmed_bytes"] = file_size
    stmt = update_stmt(journal_id).where(_T.c.state.in_(_UNFINISHED_VALUES)).values(values)
    return bool(conn.execute(stmt).rowcount == 1)


def mark_asset_created(conn: Connection, journal_id: int, asset_id: str) -> bool:
    """Mux made the entry's asset (still unfinished). Returns whether it changed."""
    stmt = (
        update_stmt(journal_id)
        .where(_T.c.state.in_(_UNFINISHED_VALUES))
        .values(asset_id=asset_id, state=State.ASSET_CREATED.value, updated_at=utcnow())
    )
    return bool(conn.execute(stmt).rowcount == 1)


def close_if(conn: Connection, journal_id: int, seen_state: str, why: str) -> bool:
    """Abandon an entry only if it is still in the state the caller saw (compare-and-set):
    an upload that finished meanwhile keeps its `done`."""
    stmt = (
        update_stmt(journal_id)
        .where(_T.c.state == str(seen_state))
        .values(state=State.ABANDONED.value, last_error=why, updated_at=utcnow())
    )
    return bool(conn.execute(stmt).rowcount == 1)


def fail_matching(
    conn: Connection,
    reason: str,
    *,
    asset_id: str | None = None,
    upload_id: str | None = None,
) -> list[Target]:
    """Mark `failed` every unfinished entry naming `asset_id` or `upload_id`; return their
    targets. An entry found by its upload that had no asset yet remembers `asset_id`, so a
    late `ready` for that dead asset is refused."""
    clauses = []
    if asset_id is not None:
        clauses.append(_T.c.asset_id == asset_id)
    if upload_id is not None:
        clauses.append(_T.c.upload_id == upload_id)
    if not clauses:
        return []
    found = _entries(
        conn, select(_T).where(or_(*clauses)).where(_T.c.state.in_(_UNFINISHED_VALUES))
    )
    for entry in found:
        values: dict[str, Any] = {
            "state": State.FAILED.value,
            "last_error": reason,
            "updated_at": utcnow(),
        }
        if asset_id is not None and entry.asset_id is None:
            values["asset_id"] = asset_id
        conn.execute(update_stmt(entry.id).where(_T.c.state.in_(_UNFINISHED_VALUES)).values(values))
    return sorted({target_of(e) for e in found})


def known_failed(conn: Connection, asset_id: str) -> bool:
    """An entry failed because of this asset (Mux said it errored or was deleted)."""
    stmt = select(_T.c.id).where(_T.c.asset_id == asset_id).where(_T.c.state == State.FAILED.value)
    return conn.execute(stmt.limit(1)).first() is not None


def was_replaced(conn: Connection, target: Target, asset_id: str) -> bool:
    """A finished vidpipe upload put another video on this row in place of `asset_id`."""
    stmt = (
        select(_T.c.id)
        .where(_T.c.target_kind == target.kind.value)
        .where(_T.c.target_id == target.id)
        .where(_T.c.replace_asset_id == asset_id)
        .where(_T.c.state == State.DONE.value)
    )
    return conn.execute(stmt.limit(1)).first() is not None


def last_id(engine: Engine) -> int:
    """The highest entry ID so far (0 for none): entries above it are newer than this call."""
    with transaction(engine) as conn:
        found = conn.execute(select(func.max(_T.c.id))).scalar()
    return int(found or 0)


def done_with(conn: Connection, target: Target, asset_id: str) -> list[UploadJournal]:
    """The `done` entries that recorded `asset_id` on `target`, newest first."""
    stmt = (
        select(_T)
        .where(_T.c.target_kind == target.kind.value)
        .where(_T.c.target_id == target.id)
        .where(_T.c.asset_id == asset_id)
        .where(_T.c.state == State.DONE.value)
        .order_by(_T.c.id.desc())
    )
    return _entries(conn, stmt)


def newest_for(conn: Connection, target: Target, after_id: int = 0) -> list[UploadJournal]:
    """A target's entries with an ID above `after_id`, newest first."""
    stmt = (
        select(_T)
        .where(_T.c.target_kind == target.kind.value)
        .where(_T.c.target_id == target.id)
        .where(_T.c.id > after_id)
        .order_by(_T.c.id.desc())
    )
    return _entries(conn, stmt)


def known_mux_ids(engine: Engine, target: Target) -> tuple[set[str], set[str]]:
    """Every Mux upload ID and asset ID any entry of `target` has journaled: what a lookup
    for a create whose answer was lost must not mistake for the one it looks for."""
    stmt = (
        select(_T.c.upload_id, _T.c.asset_id, _T.c.replace_asset_id)
        .where(_T.c.target_kind == target.kind.value)
        .where(_T.c.target_id == target.id)
    )
    uploads: set[str] = set()
    assets: set[str] = set()
    with transaction(engine) as conn:
        for upload_id, asset_id, replaced in conn.execute(stmt):
            if upload_id:
                uploads.add(upload_id)
            assets.update(a for a in (asset_id, replaced) if a)
    return uploads, assets
