"""The throwaway PostgreSQL server the tests use (tests/pgserver.py)."""

from __future__ import annotations

import pgserver
import pytest
import sqlalchemy as sa
from pgserver import PgServer, require_pg


@pytest.mark.postgres
def test_server_starts_and_accepts_connections(pg_server: PgServer) -> None:
    assert pg_server.running
    assert pg_server.port > 0
    assert pg_server.base_url == f"postgresql+psycopg://postgres@127.0.0.1:{pg_server.port}"
    with pg_server.admin_connect() as conn:
        row = conn.execute("SELECT current_setting('fsync')").fetchone()
    assert row == ("off",)


@pytest.mark.postgres
def test_create_database_gives_a_usable_url(pg_server: PgServer) -> None:
    url = pg_server.create_database()
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE lesson (id integer PRIMARY KEY, title text)"))
            conn.execute(sa.text("INSERT INTO lesson VALUES (1, 'intro')"))
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT title FROM lesson")).scalar_one() == "intro"
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_databases_are_independent_and_droppable(pg_server: PgServer) -> None:
    url_a = pg_server.create_database("indep_a")
    url_b = pg_server.create_database("indep_b")
    assert url_a.endswith("/indep_a") and url_b.endswith("/indep_b")
    engine_a, engine_b = sa.create_engine(url_a), sa.create_engine(url_b)
    try:
        with engine_a.begin() as conn:
            conn.execute(sa.text("CREATE TABLE only_in_a (id integer)"))
        assert sa.inspect(engine_a).get_table_names() == ["only_in_a"]
        assert sa.inspect(engine_b).get_table_names() == []
        # Drop works even while a pooled connection is still open (WITH (FORCE)).
        pg_server.drop_database("indep_a")
    finally:
        engine_a.dispose()
        engine_b.dispose()
    pg_server.drop_database("indep_b")
    with pg_server.admin_connect() as conn:
        names = {r[0] for r in conn.execute("SELECT datname FROM pg_database").fetchall()}
    assert not names & {"indep_a", "indep_b"}


def test_missing_binaries_skip_or_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """No PostgreSQL: skip by default, but fail when CI demands PostgreSQL."""
    monkeypatch.setattr(pgserver, "postgres_available", lambda: False)
    monkeypatch.setattr(pgserver, "find_pg_bindir", lambda: None)
    monkeypatch.delenv(pgserver.REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="binaries not found"):
        require_pg()
    monkeypatch.setenv(pgserver.REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="VIDPIPE_REQUIRE_POSTGRES=1"):
        require_pg()
