"""The upload journal (`vidpipe_upload`): each pipeline step is written here before it is taken."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from vidpipe.db import UNFINISHED_STATES, UploadJournal, utcnow
from vidpipe.targets import Target


def unfinished_for(engine: Engine, target: Target) -> list[UploadJournal]:
    """Unfinished entries for a target, newest first."""
    with Session(engine) as session:
        stmt = (
            select(UploadJournal)
            .where(UploadJournal.target_kind == target.kind.value)
            .where(UploadJournal.target_id == target.id)
            .where(col(UploadJournal.state).in_(UNFINISHED_STATES))
            .order_by(col(UploadJournal.id).desc())
        )
        return list(session.exec(stmt))


def all_unfinished(engine: Engine) -> list[UploadJournal]:
    with Session(engine) as session:
        stmt = (
            select(UploadJournal)
            .where(col(UploadJournal.state).in_(UNFINISHED_STATES))
            .order_by(col(UploadJournal.id))
        )
        return list(session.exec(stmt))


def by_upload(engine: Engine, upload_id: str) -> UploadJournal | None:
    with Session(engine) as session:
        stmt = (
            select(UploadJournal)
            .where(UploadJournal.upload_id == upload_id)
            .order_by(col(UploadJournal.id).desc())
        )
        return session.exec(stmt).first()


def create(engine: Engine, **fields: Any) -> UploadJournal:
    entry = UploadJournal(**fields)
    with Session(engine) as session:
        session.add(entry)
        session.commit()
        session.refresh(entry)
    return entry


def update(engine: Engine, entry: UploadJournal, **fields: Any) -> UploadJournal:
    """Write `fields` to the entry (one transaction) and mirror them on the object."""
    fields["updated_at"] = utcnow()
    with Session(engine) as session:
        row = session.get(UploadJournal, entry.id)
        if row is None:  # pragma: no cover - the journal is vidpipe's own; rows are not deleted
            raise LookupError(f"journal entry {entry.id} vanished")
        for key, value in fields.items():
            setattr(row, key, value)
        session.add(row)
        session.commit()
    for key, value in fields.items():
        setattr(entry, key, value)
    return entry


def target_of(entry: UploadJournal) -> Target:
    from vidpipe.targets import Kind

    return Target(Kind(entry.target_kind), entry.target_id)
