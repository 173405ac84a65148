"""Shared fixtures: a real emulator on a free port, real databases (SQLite files and a
PostgreSQL server the session starts itself), sample videos, and a CLI runner."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator_helpers import PlatformEmulator
from pgserver import PgServer, require_pg
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlmodel import Session, select

from vidpipe import environment
from vidpipe.api import Vidpipe
from vidpipe.db import Lesson, WebhookTombstone, World, init_db, make_engine
from vidpipe.emulator import Emulator
from vidpipe.mux import Environment, RetryPolicy
from vidpipe.samples import write_sample_video

TOKEN_ID = "test-token-id"
TOKEN_SECRET = "s3cr3t-token-value-never-printed"
WEBHOOK_SECRET = "whsec-never-printed-either"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One throwaway PostgreSQL server for the run (fails when VIDPIPE_REQUIRE_POSTGRES=1
    and PostgreSQL cannot be started; skips otherwise)."""
    server = require_pg()
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """A fresh, empty PostgreSQL database per test; dropped afterwards."""
    url = pg_server.create_database()
    yield url
    pg_server.drop_database(make_url(url).database or "")


@pytest.fixture
def mux_tuning(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Tune every gateway the facade builds (keyword arguments of MuxGateway): e.g. fast retries
    (`mux_tuning["retry"] = fast_retry()`) or no client-side pacing (`["pace"] = False`)."""
    options: dict[str, Any] = {}
    monkeypatch.setattr(Vidpipe, "gateway_defaults", options)
    return options


def fast_retry(attempts: int = 6) -> RetryPolicy:
    """The gateway's retry policy with tiny waits."""
    return RetryPolicy(attempts=attempts, initial=0.001, maximum=0.005, jitter=0.0)


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """The emulator for end-to-end tests: its seeded assets carry the meta vidpipe gives."""
    with PlatformEmulator(ready_after=0.0) as emu:
        yield emu


@pytest.fixture
def emu() -> Iterator[Emulator]:
    """An emulator with its default settings, for the emulator's own tests."""
    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def http(emu: Emulator) -> Iterator[httpx.Client]:
    """An httpx client for `emu`'s API (any token pair is accepted)."""
    with httpx.Client(base_url=emu.base_url, auth=("id", "secret"), timeout=10) as client:
        yield client


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty platform database URL: a SQLite file, and a real PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'platform.db'}"
    return str(request.getfixturevalue("pg_url"))


@dataclass
class Platform:
    """A platform database with lessons 1-3 and courses 1-2, and helpers to read it."""

    url: str
    engine: Engine

    def lesson(self, lesson_id: int) -> Lesson | None:
        with Session(self.engine) as s:
            return s.get(Lesson, lesson_id)

    def world(self, world_id: int) -> World | None:
        with Session(self.engine) as s:
            return s.get(World, world_id)

    def set_lesson(self, lesson_id: int, asset: str | None, playback: str | None) -> None:
        with Session(self.engine) as s:
            row = s.get(Lesson, lesson_id)
            assert row is not None
            row.mux_asset_id, row.mux_playback_id = asset, playback
            s.add(row)
            s.commit()

    def tombstones(self) -> list[str]:
        """Asset IDs in `vidpipe_webhook_tombstone`, sorted."""
        with Session(self.engine) as s:
            return sorted(t.asset_id for t in s.exec(select(WebhookTombstone)))

    def add_lessons(self, ids: range | list[int]) -> None:
        with Session(self.engine) as s:
            for i in ids:
                s.add(Lesson(id=i, title=f"Lesson {i}"))
            s.commit()

    def dump(self) -> list[tuple[object, ...]]:
        """Every platform row's video columns, for 'nothing changed' assertions."""
        with Session(self.engine) as s:
            lessons = [
                ("lesson", r.id, r.mux_asset_id, r.mux_playback_id) for r in s.exec(select(Lesson))
            ]
            worlds = [
                ("course", r.id, r.mux_preview_asset_id, r.mux_preview_playback_id)
                for r in s.exec(select(World))
            ]
        return sorted(lessons + worlds, key=str)


def seed_platform(engine: Engine) -> None:
    """vidpipe's tables and the platform's rows: lessons 1-3 and courses 1-2, no videos."""
    init_db(engine)
    with Session(engine) as s:
        for i in (1, 2, 3):
            s.add(Lesson(id=i, title=f"Lesson {i}"))
        for i in (1, 2):
            s.add(World(id=i, title=f"Course {i}"))
        s.commit()


@pytest.fixture
def platform(db_url: str) -> Iterator[Platform]:
    engine = make_engine(db_url)
    seed_platform(engine)
    yield Platform(db_url, engine)
    engine.dispose()


@pytest.fixture
def env(unpinned_env: Platform, emulator: Emulator) -> Platform:
    """The environment a user would set, pointing at the emulator and the platform DB, in
    steady state: the database already belongs to the emulator's Mux environment (as after
    a deployment's first run). The working directory is a temp dir so no stray .env is read."""
    environment.pin(unpinned_env.engine, Environment(**emulator.environment))
    return unpinned_env


@pytest.fixture
def workdir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, emulator: Emulator) -> Path:
    """A fresh working directory (no stray .env is read) and the environment a user would
    set for the emulator: its URL, a token, a webhook secret; no DATABASE_URL (the default,
    `sqlite:///vidpipe.db`, is a file in this directory)."""
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    for name in list(os.environ):
        if name.startswith(("MUX_", "DATABASE_URL", "VIDPIPE_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MUX_BASE_URL", emulator.base_url)
    monkeypatch.setenv("MUX_TOKEN_ID", TOKEN_ID)
    monkeypatch.setenv("MUX_TOKEN_SECRET", TOKEN_SECRET)
    monkeypatch.setenv("MUX_WEBHOOK_SECRET", WEBHOOK_SECRET)
    return workdir


@pytest.fixture
def unpinned_env(monkeypatch: pytest.MonkeyPatch, workdir: Path, platform: Platform) -> Platform:
    """As `env`, but the database belongs to no Mux environment yet (its first contact)."""
    monkeypatch.setenv("DATABASE_URL", platform.url)
    monkeypatch.setenv("NO_COLOR", "1")
    return platform


def make_video(path: Path, size: int, *, seed: int = 0) -> Path:
    """A sample MP4 of exactly `size` bytes (the one sample writer vidpipe has)."""
    return write_sample_video(path, size, seed)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@pytest.fixture
def video(tmp_path: Path) -> Callable[..., Path]:
    def _make(size: int = 3 * 256 * 1024 + 1000, name: str = "clip.mp4", seed: int = 0) -> Path:
        return make_video(tmp_path / name, size, seed=seed)

    return _make


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run `vidpipe ARGS...` in-process through the real entry point; capture output."""
    from vidpipe.cli import run

    def _run(*args: str) -> Result:
        capsys.readouterr()
        code = run([str(a) for a in args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return _run


@pytest.fixture
def vp(cli: Callable[..., Result]) -> Callable[..., Result]:
    """`cli`, checking on every run that no secret and no traceback reaches stdout or stderr."""

    def _run(*args: Any) -> Result:
        res = cli(*args)
        for secret in (TOKEN_SECRET, WEBHOOK_SECRET):
            assert secret not in res.out + res.err
        assert "Traceback" not in res.err
        return res

    return _run
