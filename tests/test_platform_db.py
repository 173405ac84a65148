"""The platform owns its tables: vidpipe against a real-world schema it did not create.

The schema here is written by the test in raw DDL, on SQLite and on a real PostgreSQL server:
foreign keys, NOT NULL columns with defaults, text bodies, a CHECK, a composite UNIQUE, an
index, a view and a trigger. `vidpipe db init` must create only `vidpipe_*` tables and alter
nothing; every command must change only vidpipe's four video columns. Also: `db init` on
vidpipe's default schema and on an empty database, and the forms DATABASE_URL may take.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import TOKEN_ID, TOKEN_SECRET, Platform, Result
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from vidpipe.db import make_engine, mask_url, normalize_url
from vidpipe.emulator import Emulator

VIDEO_COLUMNS = {
    "lesson": ("mux_asset_id", "mux_playback_id"),
    "world": ("mux_preview_asset_id", "mux_preview_playback_id"),
}

SQLITE_DDL = [
    """CREATE TABLE "user" (
        id INTEGER PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL DEFAULT ''
    )""",
    """CREATE TABLE world (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL,
        slug TEXT NOT NULL UNIQUE,
        owner_id INTEGER NOT NULL REFERENCES "user"(id),
        published BOOLEAN NOT NULL DEFAULT 0,
        body TEXT,
        mux_preview_asset_id VARCHAR(255),
        mux_preview_playback_id VARCHAR(255),
        created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
    )""",
    """CREATE TABLE lesson (
        id INTEGER PRIMARY KEY,
        world_id INTEGER NOT NULL REFERENCES world(id) ON DELETE CASCADE,
        title TEXT NOT NULL,
        position INTEGER NOT NULL DEFAULT 0 CHECK (position >= 0),
        body TEXT,
        duration_s REAL,
        mux_asset_id VARCHAR(255),
        mux_playback_id VARCHAR(255),
        created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
        UNIQUE (world_id, position)
    )""",
    "CREATE INDEX ix_lesson_mux_asset_id ON lesson (mux_asset_id)",
    """CREATE TABLE lesson_video_audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        lesson_id INTEGER NOT NULL,
        old_asset TEXT,
        new_asset TEXT
    )""",
    """CREATE TRIGGER lesson_video_audit_trg AFTER UPDATE OF mux_asset_id ON lesson
    BEGIN
        INSERT INTO lesson_video_audit (lesson_id, old_asset, new_asset)
        VALUES (NEW.id, OLD.mux_asset_id, NEW.mux_asset_id);
    END""",
    """CREATE VIEW published_lesson AS
        SELECT l.id, l.title, l.mux_playback_id, w.slug
        FROM lesson l JOIN world w ON w.id = l.world_id WHERE w.published""",
]

PG_DDL = [
    """CREATE TABLE "user" (
        id serial PRIMARY KEY,
        email text NOT NULL UNIQUE,
        name text NOT NULL DEFAULT ''
    )""",
    """CREATE TABLE world (
        id serial PRIMARY KEY,
        title text NOT NULL,
        slug text NOT NULL UNIQUE,
        owner_id int NOT NULL REFERENCES "user"(id),
        published boolean NOT NULL DEFAULT false,
        body text,
        mux_preview_asset_id varchar(255),
        mux_preview_playback_id varchar(255),
        created_at timestamptz NOT NULL DEFAULT now()
    )""",
    """CREATE TABLE lesson (
        id serial PRIMARY KEY,
        world_id int NOT NULL REFERENCES world(id) ON DELETE CASCADE,
        title text NOT NULL,
        position int NOT NULL DEFAULT 0 CHECK (position >= 0),
        body text,
        duration_s double precision,
        mux_asset_id varchar(255),
        mux_playback_id varchar(255),
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (world_id, position)
    )""",
    "CREATE INDEX ix_lesson_mux_asset_id ON lesson (mux_asset_id)",
    """CREATE TABLE lesson_video_audit (
        id serial PRIMARY KEY,
        lesson_id int NOT NULL,
        old_asset text,
        new_asset text
    )""",
    """CREATE FUNCTION lesson_video_audit_fn() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO lesson_video_audit (lesson_id, old_asset, new_asset)
        VALUES (NEW.id, OLD.mux_asset_id, NEW.mux_asset_id);
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER lesson_video_audit_trg AFTER UPDATE OF mux_asset_id ON lesson
        FOR EACH ROW EXECUTE FUNCTION lesson_video_audit_fn()""",
    """CREATE VIEW published_lesson AS
        SELECT l.id, l.title, l.mux_playback_id, w.slug
        FROM lesson l JOIN world w ON w.id = l.world_id WHERE w.published""",
]

SEED = [
    """INSERT INTO "user" (id, email, name) VALUES (1, 'ada@example.com', 'Ada')""",
    """INSERT INTO world (id, title, slug, owner_id, published, body)
       VALUES (1, 'Course 1', 'course-1', 1, TRUE, 'A long course description.'),
              (2, 'Course 2', 'course-2', 1, FALSE, NULL)""",
    """INSERT INTO lesson (id, world_id, title, position, body, duration_s)
       VALUES (1, 1, 'Lesson 1', 0, 'Body of lesson 1, with ''quotes''.', 61.5),
              (2, 1, 'Lesson 2', 1, NULL, NULL),
              (3, 2, 'Lesson 3', 0, 'x', 3.0)""",
]


def build_rich_schema(engine: Engine) -> None:
    ddl = PG_DDL if engine.dialect.name == "postgresql" else SQLITE_DDL
    with engine.begin() as conn:
        for statement in ddl + SEED:
            conn.exec_driver_sql(statement)


def schema_of(engine: Engine) -> dict[str, Any]:
    """Everything about the schema except vidpipe's own tables, as comparable text."""
    insp = sa.inspect(engine)
    out: dict[str, Any] = {}
    for table in sorted(insp.get_table_names()):
        if table.startswith("vidpipe_"):
            continue
        out[table] = repr(
            {
                "columns": [
                    (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                    for c in insp.get_columns(table)
                ],
                "pk": insp.get_pk_constraint(table),
                "fks": insp.get_foreign_keys(table),
                "unique": sorted(insp.get_unique_constraints(table), key=repr),
                "indexes": sorted(insp.get_indexes(table), key=repr),
                "checks": sorted(insp.get_check_constraints(table), key=repr),
            }
        )
    out["views"] = {v: insp.get_view_definition(v) for v in sorted(insp.get_view_names())}
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            rows = conn.exec_driver_sql(
                "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger "
                "WHERE NOT tgisinternal ORDER BY tgname"
            )
        else:
            rows = conn.exec_driver_sql(
                "SELECT type, name, sql FROM sqlite_master "
                "WHERE tbl_name NOT LIKE 'vidpipe_%' ORDER BY type, name"
            )
        out["raw"] = [tuple(r) for r in rows]
    return out


def data_of(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row of every platform table (vidpipe's own tables left out)."""
    out: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        for table in ("user", "world", "lesson", "lesson_video_audit"):
            rows = conn.execute(sa.text(f'SELECT * FROM "{table}" ORDER BY id')).mappings()
            out[table] = [dict(r) for r in rows]
    return out


def without_video(data: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """The data with vidpipe's video columns (and the trigger's audit log) left out."""
    return {
        table: [
            {k: v for k, v in row.items() if k not in VIDEO_COLUMNS.get(table, ())} for row in rows
        ]
        for table, rows in data.items()
        if table != "lesson_video_audit"
    }


def video_of(engine: Engine, table: str, row_id: int) -> tuple[str | None, str | None]:
    a, p = VIDEO_COLUMNS[table]
    with engine.connect() as conn:
        row = conn.execute(sa.text(f"SELECT {a}, {p} FROM {table} WHERE id = :id"), {"id": row_id})
        found = row.one()
    return found[0], found[1]


def audit_of(engine: Engine) -> list[tuple[int, str | None, str | None]]:
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT lesson_id, old_asset, new_asset FROM lesson_video_audit ORDER BY id"
        )
        return [(r[0], r[1], r[2]) for r in rows]


@dataclass
class Rich:
    url: str
    engine: Engine


@pytest.fixture
def rich(db_url: str) -> Any:
    engine = make_engine(db_url)
    build_rich_schema(engine)
    yield Rich(db_url, engine)
    engine.dispose()


def _set_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, base_url: str, db: str) -> None:
    workdir = tmp_path / "cwd"
    workdir.mkdir(exist_ok=True)
    monkeypatch.chdir(workdir)
    for name in list(os.environ):
        if name.startswith(("MUX_", "DATABASE_URL", "VIDPIPE_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MUX_BASE_URL", base_url)
    monkeypatch.setenv("MUX_TOKEN_ID", TOKEN_ID)
    monkeypatch.setenv("MUX_TOKEN_SECRET", TOKEN_SECRET)
    monkeypatch.setenv("DATABASE_URL", db)
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture
def rich_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, emulator: Emulator, rich: Rich
) -> Rich:
    _set_env(monkeypatch, tmp_path, emulator.base_url, rich.url)
    return rich


# -- db init on the platform's schema ---------------------------------------------------------


def test_db_init_creates_only_vidpipe_tables_and_alters_nothing(
    rich_env: Rich, cli: Callable[..., Result]
) -> None:
    engine = rich_env.engine
    tables_before = set(sa.inspect(engine).get_table_names())
    schema_before, data_before = schema_of(engine), data_of(engine)

    res = cli("db", "init")
    assert res.code == 0, res.err
    assert (
        res.out.strip() == "created: vidpipe_environment, vidpipe_upload, vidpipe_webhook_tombstone"
    )
    tables_after = set(sa.inspect(engine).get_table_names())
    assert tables_after - tables_before == {
        "vidpipe_environment",
        "vidpipe_upload",
        "vidpipe_webhook_tombstone",
    }
    assert schema_of(engine) == schema_before
    assert data_of(engine) == data_before

    again = cli("db", "init")
    assert again.code == 0, again.err
    assert "nothing to do" in again.out
    assert set(sa.inspect(engine).get_table_names()) == tables_after
    assert schema_of(engine) == schema_before
    assert data_of(engine) == data_before


def test_commands_need_db_init_on_platform_schema(
    rich_env: Rich, cli: Callable[..., Result]
) -> None:
    before = data_of(rich_env.engine)
    res = cli("status", "--json")
    assert res.code == 2
    assert "vidpipe db init" in res.err and res.out == ""
    assert len(res.err.strip().splitlines()) == 1
    assert data_of(rich_env.engine) == before


def test_end_to_end_on_platform_schema_touches_only_video_columns(
    rich_env: Rich,
    emulator: Emulator,
    video: Callable[..., Path],
    cli: Callable[..., Result],
) -> None:
    engine = rich_env.engine
    assert cli("db", "init").code == 0
    schema0 = schema_of(engine)
    other0 = without_video(data_of(engine))

    def unchanged_elsewhere() -> None:
        assert without_video(data_of(engine)) == other0
        assert schema_of(engine) == schema0

    # upload to a lesson and to a course
    res = cli("upload", video(), "--lesson", "1", "--json")
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    asset1 = doc["asset_id"]
    assert video_of(engine, "lesson", 1) == (asset1, doc["playback_id"])
    unchanged_elsewhere()

    res = cli("upload", video(name="c.mp4", seed=2), "--course", "1", "--json")
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    course_asset = doc["asset_id"]
    assert video_of(engine, "world", 1) == (course_asset, doc["playback_id"])
    unchanged_elsewhere()

    # the view sees what vidpipe wrote
    with engine.connect() as conn:
        seen = conn.exec_driver_sql("SELECT id, mux_playback_id FROM published_lesson WHERE id = 1")
        assert seen.one()[1] == video_of(engine, "lesson", 1)[1]

    # status and verify read only
    snapshot = data_of(engine)
    res = cli("status", "--json")
    assert res.code == 0, res.err
    targets = {(t["target"]["kind"], t["target"]["id"]) for t in json.loads(res.out)["targets"]}
    assert targets == {("lesson", 1), ("course", 1)}
    res = cli("verify", "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["ok"] is True
    assert data_of(engine) == snapshot

    # drift: lesson 1's asset vanishes; an unrecorded asset names lesson 2
    emulator.delete_asset_silently(asset1)
    seeded = emulator.seed_asset(passthrough='{"lesson_id": 2}')
    res = cli("verify", "--json")
    assert res.code == 1
    assert data_of(engine) == snapshot
    res = cli("sync", "--json")
    assert res.code == 0, res.err
    actions = {(d["kind"], d["target"]["id"]): d["action"] for d in json.loads(res.out)["drift"]}
    assert actions == {("missing_asset", 1): "cleared row", ("unrecorded", 2): "recorded asset"}
    assert video_of(engine, "lesson", 1) == (None, None)
    assert video_of(engine, "lesson", 2) == (seeded["id"], seeded["playback_ids"][0]["id"])
    unchanged_elsewhere()

    # delete the course's video
    res = cli("delete", "--course", "1", "--yes", "--json")
    assert res.code == 0, res.err
    assert course_asset not in emulator.assets
    assert video_of(engine, "world", 1) == (None, None)
    unchanged_elsewhere()

    # the platform's own trigger saw exactly vidpipe's changes to lesson video columns
    assert audit_of(engine) == [(1, None, asset1), (1, asset1, None), (2, None, seeded["id"])]
    assert video_of(engine, "lesson", 3) == (None, None)
    assert video_of(engine, "world", 2) == (None, None)


# -- db init on vidpipe's default schema, and on an empty database ----------------------------


def test_db_init_changes_nothing_that_exists(env: Platform, cli: Callable[..., Result]) -> None:
    env.set_lesson(1, "asset-kept", "playback-kept")
    with env.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO vidpipe_upload (target_kind, target_id, file_path, file_size, "
            "file_mtime_ns, chunk_size, state, confirmed_bytes, created_at, updated_at) "
            "VALUES ('lesson', 2, '/x.mp4', 10, 1, 262144, 'uploading', 0, "
            "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
        )
    schema0 = schema_of(env.engine)
    dump0 = env.dump()
    with env.engine.connect() as conn:
        journal0 = conn.exec_driver_sql("SELECT * FROM vidpipe_upload").all()

    res = cli("db", "init")
    assert res.code == 0, res.err
    assert "nothing to do" in res.out
    assert env.dump() == dump0
    assert schema_of(env.engine) == schema0
    with env.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT * FROM vidpipe_upload").all() == journal0

    # A database from an older vidpipe lacks a newer table: commands refuse, naming it,
    # before changing anything; `db init` adds it and the platform's rows stay as they were.
    with env.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE vidpipe_webhook_tombstone")
    for args in (["sync"], ["verify"], ["delete", "--lesson", "1", "--yes"]):
        res = cli(*args)
        assert res.code == 2, (args, res.out, res.err)
        assert res.err.strip().splitlines() == [
            "vidpipe: error: the database lacks table(s) vidpipe_webhook_tombstone: "
            "run `vidpipe db init` first"
        ]
    assert env.dump() == dump0
    res = cli("db", "init")
    assert res.code == 0, res.err
    assert res.out.strip() == "created: vidpipe_webhook_tombstone"
    assert env.dump() == dump0
    assert schema_of(env.engine) == schema0


def test_db_init_on_empty_database(
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    emulator: Emulator,
    cli: Callable[..., Result],
) -> None:
    _set_env(monkeypatch, tmp_path, emulator.base_url, db_url)
    res = cli("db", "init")
    assert res.code == 0, res.err
    created = res.out.strip().removeprefix("created: ").split(", ")
    assert set(created) == {
        "lesson",
        "world",
        "vidpipe_environment",
        "vidpipe_upload",
        "vidpipe_webhook_tombstone",
    }
    engine = make_engine(db_url)
    try:
        assert {"lesson", "world", "vidpipe_upload"} <= set(sa.inspect(engine).get_table_names())
        again = cli("db", "init")
        assert again.code == 0 and "nothing to do" in again.out
        # and the commands run on it
        res = cli("status", "--json")
        assert res.code == 0, res.err
        assert json.loads(res.out) == {
            "ok": True,
            "environment": emulator.environment,
            "targets": [],
        }
    finally:
        engine.dispose()


# -- DATABASE_URL forms -----------------------------------------------------------------------


def test_normalize_url() -> None:
    assert normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"
    assert make_engine("postgresql://u:pw@h/db").url.drivername == "postgresql+psycopg"


@pytest.mark.postgres
@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_plain_postgresql_url_works(
    scheme: str,
    pg_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    emulator: Emulator,
    cli: Callable[..., Result],
) -> None:
    url = make_url(pg_url)
    assert url.drivername == "postgresql+psycopg"
    plain = url.set(drivername=scheme).render_as_string(hide_password=False)
    assert plain.startswith(f"{scheme}://")
    _set_env(monkeypatch, tmp_path, emulator.base_url, plain)
    res = cli("db", "init")
    assert res.code == 0, res.err
    assert "vidpipe_upload" in res.out
    res = cli("sync", "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["ok"] is True


@pytest.mark.parametrize(
    "bad",
    [
        "not a url",
        "sqlite+nosuchdriver:///x.db",
        "nosuchdb://user:hunter2@host/db",
        "postgresql://user:hunter2@host:notaport/db",
    ],
)
def test_bad_database_url_exit_2_one_line(
    bad: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    emulator: Emulator,
    cli: Callable[..., Result],
) -> None:
    _set_env(monkeypatch, tmp_path, emulator.base_url, bad)
    for args in (("db", "init"), ("status",), ("sync", "--json")):
        res = cli(*args)
        assert res.code == 2, (args, res)
        assert res.out == ""
        lines = res.err.strip().splitlines()
        assert len(lines) == 1, res.err
        assert "DATABASE_URL" in lines[0]
        assert "hunter2" not in res.err
    assert emulator.count(path_prefix="/") == 0


def test_unreachable_postgresql_exit_1_password_masked(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    emulator: Emulator,
    cli: Callable[..., Result],
) -> None:
    _set_env(monkeypatch, tmp_path, emulator.base_url, "postgresql://user:hunter2@127.0.0.1:1/db")
    for args in (("db", "init"), ("status", "--json"), ("sync", "--json"), ("verify",)):
        res = cli(*args)
        assert res.code == 1, (args, res)
        assert res.out == ""
        lines = res.err.strip().splitlines()
        assert len(lines) == 1, res.err
        assert "hunter2" not in res.err
        assert "127.0.0.1" in lines[0]
    assert emulator.count(path_prefix="/") == 0


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://user:hunter2@127.0.0.1:1/db",
        "postgresql://user@127.0.0.1:1/db?password=hunter2",
        "postgresql://user@127.0.0.1:1/db?sslmode=disable&password=hunter2",
    ],
)
def test_password_never_printed_wherever_the_url_carries_it(
    url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    emulator: Emulator,
    cli: Callable[..., Result],
) -> None:
    assert "hunter2" not in mask_url(url)
    assert "hunter2" not in mask_url(make_engine(url).url)
    _set_env(monkeypatch, tmp_path, emulator.base_url, url)
    res = cli("db", "init")
    assert res.code == 1
    assert "hunter2" not in res.err + res.out
    assert "***" in res.err
