"""A throwaway PostgreSQL server for the test session.

`PgServer` runs `initdb` into a fresh temporary directory, starts `postgres` on a free port of
127.0.0.1 with durability switched off (the data is thrown away, so fsync buys nothing but
seconds), hands out one fresh database per test with `create_database`, and deletes
everything on `stop`.

PostgreSQL refuses to run as root, so when the tests run as root the server binaries run as
the `postgres` system user (`subprocess` switches user in the child); otherwise they run as
the current user.

`require_pg()` is the pytest entry point: it skips when no PostgreSQL binaries are installed,
unless `VIDPIPE_REQUIRE_POSTGRES=1` (CI sets it), where a missing server is a failure rather
than a silent skip.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

REQUIRE_ENV = "VIDPIPE_REQUIRE_POSTGRES"
SERVER_USER = "postgres"  # the system account server binaries run as when we are root
SUPERUSER = "postgres"  # the database superuser initdb creates (trust auth, no password)
START_TIMEOUT = 30.0


def _version_key(path: str) -> tuple[int, ...]:
    # /usr/lib/postgresql/15/bin -> (15,); a non-numeric version sorts first.
    match = re.search(r"/postgresql/([0-9.]+)/bin$", path)
    if not match:
        return (-1,)
    return tuple(int(part) for part in match.group(1).split(".") if part)


def find_pg_bindir() -> Path | None:
    """The directory holding `initdb` and `postgres`: the newest Debian-style install first,
    then `pg_config --bindir`, then whatever `initdb` is on PATH. None when there is none."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if out:
                candidates.append(out)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).parent))
    for candidate in candidates:
        bindir = Path(candidate)
        if all(os.access(bindir / exe, os.X_OK) for exe in ("initdb", "postgres")):
            return bindir
    return None


def _server_account() -> pwd.struct_passwd | None:
    """The account to run the server as when we are root; None when no switch is needed."""
    if os.geteuid() != 0:
        return None
    return pwd.getpwnam(SERVER_USER)


def postgres_available() -> bool:
    """Whether a server can be started here: binaries exist, and as root a `postgres` user."""
    if find_pg_bindir() is None:
        return False
    try:
        _server_account()
    except KeyError:
        return False
    return True


def _free_port() -> int:
    # The port can be taken between here and the server's bind; `start` retries on that.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _parent_death_signal(sig: int) -> Callable[[], None] | None:
    """A preexec_fn asking the kernel to send `sig` to the child when the test process dies.

    Without it a test run killed with SIGKILL would leave an orphaned postmaster behind.
    libc is resolved here, in the parent, so the child only makes one system call after fork.
    """
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return None
    try:
        prctl = ctypes.CDLL(libc_name, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, sig, 0, 0, 0)

    return preexec


class PgServer:
    """One PostgreSQL server in a temporary directory, for the life of a test session."""

    def __init__(self, bindir: Path | None = None) -> None:
        found = bindir or find_pg_bindir()
        if found is None:
            raise RuntimeError("no PostgreSQL server binaries (initdb, postgres) found")
        self.bindir: Path = found
        self.host = "127.0.0.1"
        self.port: int = 0
        self.root: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._account = _server_account()

    # -- paths and URLs -------------------------------------------------------------------

    @property
    def datadir(self) -> Path:
        assert self.root is not None, "server not started"
        return self.root / "data"

    @property
    def sockdir(self) -> Path:
        assert self.root is not None, "server not started"
        return self.root / "sock"

    @property
    def logfile(self) -> Path:
        assert self.root is not None, "server not started"
        return self.root / "postgres.log"

    @property
    def base_url(self) -> str:
        """SQLAlchemy URL of the server without a database name."""
        return f"postgresql+psycopg://{SUPERUSER}@{self.host}:{self.port}"

    def url(self, dbname: str) -> str:
        return f"{self.base_url}/{dbname}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle ------------------------------------------------------------------------

    def _as_server_user(self) -> dict[str, Any]:
        """Popen keyword arguments that run a server binary as the server account when we are
        root (with its own groups and home, not root's); none otherwise."""
        if self._account is None:
            return {}
        env = dict(os.environ, HOME=self._account.pw_dir, USER=SERVER_USER, LOGNAME=SERVER_USER)
        return {
            "user": self._account.pw_uid,
            "group": self._account.pw_gid,
            "extra_groups": [],
            "env": env,
            "cwd": str(self.root),
        }

    def _chown(self, path: Path) -> None:
        if self._account is not None:
            os.chown(path, self._account.pw_uid, self._account.pw_gid)

    def _make_root(self) -> Path:
        root = Path(tempfile.mkdtemp(prefix="vidpipe-pg-"))
        # mkdtemp makes 0700 directories owned by us; the server account must own its own.
        self._chown(root)
        if self._account is not None:
            # Every parent must be searchable by the server account (a TMPDIR under /root
            # would not be): fall back to /tmp when it is not.
            for parent in root.parents:
                mode = parent.stat().st_mode
                if not mode & 0o001 and parent.stat().st_uid != self._account.pw_uid:
                    shutil.rmtree(root, ignore_errors=True)
                    root = Path(tempfile.mkdtemp(prefix="vidpipe-pg-", dir="/tmp"))
                    self._chown(root)
                    break
        for sub in ("data", "sock"):
            (root / sub).mkdir(mode=0o700)
            self._chown(root / sub)
        return root

    def start(self) -> None:
        """initdb, then start the server and wait until it accepts connections."""
        if self.running:
            return
        self.root = self._make_root()
        try:
            self._initdb()
            last_error = ""
            # A free port can be grabbed by someone else before the server binds it: retry.
            for _attempt in range(3):
                self.port = _free_port()
                last_error = self._launch()
                if not last_error:
                    return
            raise RuntimeError(f"PostgreSQL did not start: {last_error}")
        except BaseException:
            self.stop()
            raise

    def _initdb(self) -> None:
        cmd = [
            str(self.bindir / "initdb"),
            "-D",
            str(self.datadir),
            "-A",
            "trust",
            "-U",
            SUPERUSER,
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]
        result = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            **self._as_server_user(),
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"initdb failed ({result.returncode}): {result.stderr.strip() or result.stdout}"
            )

    def _launch(self) -> str:
        """Start postgres on self.port; '' when it accepts connections, else why not."""
        cmd = [
            str(self.bindir / "postgres"),
            "-D",
            str(self.datadir),
            "-p",
            str(self.port),
            "-k",
            str(self.sockdir),
            "-c",
            f"listen_addresses={self.host}",
            # Throwaway data: durability only costs time.
            "-c",
            "fsync=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "max_connections=200",
        ]
        log = open(self.logfile, "ab")  # noqa: SIM115 - the child keeps its copy of the fd
        try:
            # SIGQUIT to the postmaster is an immediate shutdown: if the test process is
            # killed, the server goes with it instead of lingering.
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_parent_death_signal(signal.SIGQUIT),
                **self._as_server_user(),
            )
        finally:
            log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._proc = None
                return f"postgres exited early; log:\n{self._log_tail()}"
            try:
                with psycopg.connect(self._conninfo("postgres"), connect_timeout=2):
                    return ""
            except psycopg.OperationalError:
                time.sleep(0.05)
        self._kill()
        return f"postgres did not accept connections within {START_TIMEOUT:.0f}s; log:\n" + (
            self._log_tail()
        )

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        # SIGQUIT: immediate shutdown, the postmaster takes its backends down with it.
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def stop(self) -> None:
        """Stop the server (immediately: the data is thrown away) and delete its directory."""
        self._kill()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> PgServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- databases ------------------------------------------------------------------------

    def _conninfo(self, dbname: str) -> str:
        return f"host={self.host} port={self.port} user={SUPERUSER} dbname={dbname}"

    def admin_connect(self) -> psycopg.Connection[tuple[object, ...]]:
        """An autocommit psycopg connection to the `postgres` maintenance database."""
        return psycopg.connect(self._conninfo("postgres"), autocommit=True)

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (a random name unless given); return its SQLAlchemy URL."""
        name = name or f"t_{uuid.uuid4().hex[:16]}"
        with self.admin_connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting whoever is still connected to it (PostgreSQL 13+)."""
        with self.admin_connect() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def require_pg() -> PgServer:
    """A started PgServer, for a pytest fixture.

    No PostgreSQL here: skip the test, or fail it when VIDPIPE_REQUIRE_POSTGRES=1 (so CI
    cannot pass by silently skipping every PostgreSQL test). Binaries that are present but
    will not start are always a failure.
    """
    import pytest

    if not postgres_available():
        why = (
            "PostgreSQL server binaries not found (looked in /usr/lib/postgresql/*/bin, "
            "pg_config --bindir, PATH)"
        )
        if os.geteuid() == 0 and find_pg_bindir() is not None:
            why = f"running as root and there is no {SERVER_USER!r} system user to run PostgreSQL"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but {why}", pytrace=False)
        pytest.skip(why)
    server = PgServer()
    try:
        server.start()
    except Exception as exc:
        pytest.fail(f"could not start a PostgreSQL test server: {exc}", pytrace=False)
    return server
