"""The one owner of `vidpipe_environment`: which Mux environment the database belongs to.

A token is scoped to one Mux environment, and an asset ID of one environment is a 404 in
every other: a command run with another environment's token would see every recorded video
as deleted. So the database records its environment (ID and name, as whoami names them) the
first time a command talks to Mux (`check`), and from then on every command that talks to
Mux compares the token's environment with it first. `pin` is the deliberate form (`db pin`):
it records an unpinned database, follows a rename, and with `force` moves the database.
Each change is one transaction; two processes pinning at once end with one pin, and the one
that lost sees the winner's environment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from vidpipe.db import EnvironmentPin, transaction, utcnow
from vidpipe.errors import EnvironmentMismatch, VidpipeError
from vidpipe.mux import Environment

_TABLE = EnvironmentPin.__table__  # type: ignore[attr-defined]
_ROW = 1  # the table holds at most this one row


class Change(StrEnum):
    """What checking or pinning did to the database's pin."""

    PINNED = "pinned"  # the database was unpinned: it now belongs to the environment
    UNCHANGED = "unchanged"  # already pinned to it (a renamed environment included, in `check`)
    RENAMED = "renamed"  # same environment ID, new name: the name was updated
    MOVED = "moved"  # pinned to another environment before; moved (forced)


@dataclass(frozen=True)
class Pinning:
    """The environment the database belongs to now, and what the call changed."""

    environment: Environment
    change: Change
    previous: Environment | None = None
    """RENAMED / MOVED: the pin before; UNCHANGED: the recorded pin when its name is stale."""


def read_pin(engine: Engine) -> Environment | None:
    """The environment the database is pinned to, or None."""
    with transaction(engine) as conn:
        return _read(conn)


def check(engine: Engine, current: Environment) -> Pinning:
    """The gate before a command talks to Mux: pins an unpinned database to `current` (the
    token's environment); raises `EnvironmentMismatch` when it is pinned to another one.
    A renamed environment (same ID) passes and is not written: only `pin` writes a name."""
    return _with_retry(engine, lambda conn: _check(conn, current))


def pin(engine: Engine, current: Environment, *, force: bool = False) -> Pinning:
    """Pin the database to `current`: records an unpinned database, updates the name of a
    renamed environment, and moves a database pinned elsewhere only with `force` (else
    `EnvironmentMismatch`)."""
    return _with_retry(engine, lambda conn: _pin(conn, current, force))


def _check(conn: Connection, current: Environment) -> Pinning:
    pinned = _read(conn, for_update=True)
    if pinned is None:
        _insert(conn, current)
        return Pinning(current, Change.PINNED)
    if pinned.id != current.id:
        raise EnvironmentMismatch(pinned, current)
    stale = pinned if pinned.name != current.name else None
    return Pinning(current, Change.UNCHANGED, stale)


def _pin(conn: Connection, current: Environment, force: bool) -> Pinning:
    pinned = _read(conn, for_update=True)
    if pinned is None:
        _insert(conn, current)
        return Pinning(current, Change.PINNED)
    if pinned == current:
        return Pinning(current, Change.UNCHANGED)
    if pinned.id != current.id and not force:
        raise EnvironmentMismatch(pinned, current)
    conn.execute(
        update(_TABLE)
        .where(_TABLE.c.id == _ROW)
        .values(environment_id=current.id, environment_name=current.name, updated_at=utcnow())
    )
    change = Change.RENAMED if pinned.id == current.id else Change.MOVED
    return Pinning(current, change, pinned)


def _with_retry(engine: Engine, step: Callable[[Connection], Pinning]) -> Pinning:
    # Two first contacts at once both find no pin; the second insert fails on the primary
    # key: look again, and find the winner's pin.
    for _ in range(3):
        try:
            with transaction(engine) as conn:
                return step(conn)
        except IntegrityError:
            continue
    raise VidpipeError("the database's Mux environment kept changing; try again")


def _read(conn: Connection, *, for_update: bool = False) -> Environment | None:
    stmt = select(_TABLE.c.environment_id, _TABLE.c.environment_name).where(_TABLE.c.id == _ROW)
    if for_update and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    return Environment(row[0], row[1]) if row is not None else None


def _insert(conn: Connection, env: Environment) -> None:
    now = utcnow()
    conn.execute(
        insert(_TABLE).values(
            id=_ROW,
            environment_id=env.id,
            environment_name=env.name,
            pinned_at=now,
            updated_at=now,
        )
    )
