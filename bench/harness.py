"""What every benchmark script shares: paths, running a measured command, fixtures, the table.

bench/ is a directory of scripts, not a package: each script puts bench/ on `sys.path` (Python
does so for the script run) and imports this module; this module imports no script, so there
is no import cycle and no script is loaded twice.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from vidpipe.samples import write_sample_video

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
PY = sys.executable
VIDPIPE_SCRIPT = Path(PY).parent / "vidpipe"
VIDPIPE = [str(VIDPIPE_SCRIPT)] if VIDPIPE_SCRIPT.exists() else [PY, "-m", "vidpipe"]
CURL = shutil.which("curl") or "/usr/bin/curl"

GiB = 1024**3
MiB = 1024**2
TOKEN = ("bench", "bench-secret")
LESSON_TITLE = "bench lesson"  # every bench row's title, and the meta title of seeded assets


# -- running one command ---------------------------------------------------------------------


@dataclass
class Run:
    wall: float
    maxrss: int  # bytes
    rc: int
    out: str
    err: str


def run(cmd: Sequence[str], env: dict[str, str], cwd: Path, check: bool = True) -> Run:
    """Run `cmd` as a child of bench/measure.py: its wall time and its own peak RSS."""
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile(suffix=".json") as res,
    ):
        subprocess.run(
            [PY, "-S", str(BENCH / "measure.py"), res.name, *cmd],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=env,
            cwd=cwd,
            check=True,
        )
        measured = json.loads(Path(res.name).read_text())
        out.seek(0)
        err.seek(0)
        result = Run(
            float(measured["wall"]),
            int(measured["maxrss_kib"]) * 1024,
            int(measured["rc"]),
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )
    if check and result.rc != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} exited {result.rc}\n{result.out[-2000:]}\n{result.err[-2000:]}"
        )
    return result


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


# -- fixtures: files, database, emulators ----------------------------------------------------


def make_video(path: Path, size: int) -> Path:
    """A sample MP4 of `size` bytes (vidpipe's one sample writer), synced to disk before any
    timing starts: write-back of a fresh GiB would slow every fsync."""
    if path.exists() and path.stat().st_size == size:
        return path
    write_sample_video(path, size)
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(
    port: int, proc: subprocess.Popen[Any], timeout: float = 30.0, what: str = "emulator"
) -> None:
    """Wait until `proc` (`what`, for errors) accepts connections on 127.0.0.1:`port`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} not listening on {port} after {timeout:.0f} s")


def spawn(cmd: Sequence[str], log: Path, env: dict[str, str], cwd: Path) -> subprocess.Popen[Any]:
    """Start a background process (a server) with stdout and stderr going to `log`."""
    with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd
        )


def stop(proc: subprocess.Popen[Any], timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL if it is still running after `timeout` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Bench:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.procs: list[subprocess.Popen[Any]] = []
        self.base_env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("MUX_", "DATABASE_URL", "VIDPIPE_"))
            # An installed tool runs from compiled bytecode (pip writes it at install time):
            # with this set, an editable checkout recompiles vidpipe's modules on every run
            # (+35 ms of each command's start), which no user's install does.
            and k != "PYTHONDONTWRITEBYTECODE"
        }
        self.base_env.update(NO_COLOR="1", MUX_TOKEN_ID=TOKEN[0], MUX_TOKEN_SECRET=TOKEN[1])

    def env(self, base_url: str, db: Path) -> dict[str, str]:
        return {**self.base_env, "MUX_BASE_URL": base_url, "DATABASE_URL": f"sqlite:///{db}"}

    def close(self) -> None:
        for proc in reversed(self.procs):
            stop(proc)

    # database

    def init_db(self, db: Path) -> None:
        db.unlink(missing_ok=True)
        run([*VIDPIPE, "db", "init"], self.env("http://127.0.0.1:9", db), self.work)

    @staticmethod
    def add_lessons(db: Path, rows: Iterable[tuple[int, str | None, str | None]]) -> None:
        """Lesson rows titled LESSON_TITLE (the title a catalogue emulator's meta carries)."""
        with sqlite3.connect(db) as conn:
            conn.executemany(
                "INSERT INTO lesson (id, title, mux_asset_id, mux_playback_id) VALUES (?, ?, ?, ?)",
                ((lesson, LESSON_TITLE, asset, playback) for lesson, asset, playback in rows),
            )

    # emulators

    def upload_emulator(self) -> str:
        """`vidpipe emulator` in its own process, no rate limit (the upload rows)."""
        port = free_port()
        cmd = [*VIDPIPE, "emulator", "--port", str(port), "--ready-after", "0", "--no-checksum"]
        proc = spawn(cmd, self.work / "emulator-upload.log", self.base_env, self.work)
        self.procs.append(proc)
        wait_listening(port, proc)
        return f"http://127.0.0.1:{port}"

    def catalogue_emulator(self, name: str, assets: int, *extra: str) -> SeededEmulator:
        """A rate-limited emulator process seeded with `assets` assets (`extra`: more of
        bench/emulator_proc.py's flags, e.g. `--no-checksum`). Asset i carries the meta
        vidpipe's upload gives lesson i (titled LESSON_TITLE, as `add_lessons` makes the rows),
        so a catalogue is in line with the settings unless a bench says otherwise."""
        out = self.work / name
        out.mkdir(exist_ok=True)
        cmd = [PY, str(BENCH / "emulator_proc.py"), "--out", str(out), "--assets", str(assets)]
        if "--vidpipe-meta" not in extra:
            cmd += ["--vidpipe-meta", LESSON_TITLE]
        proc = spawn([*cmd, "--rate-limit", *extra], out / "emulator.log", self.base_env, self.work)
        self.procs.append(proc)
        catalogue = out / "catalogue.json"
        deadline = time.monotonic() + 60
        while not catalogue.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"bench/emulator_proc.py failed; see {out / 'emulator.log'}")
            time.sleep(0.05)
        doc = json.loads(catalogue.read_text())
        return SeededEmulator(proc, out, doc["base_url"], [tuple(a) for a in doc["assets"]])


@dataclass
class SeededEmulator:
    proc: subprocess.Popen[Any]
    out: Path
    base_url: str
    assets: list[tuple[int, str, str]]  # (lesson id, asset id, playback id)
    seq: int = 0

    def counts(self) -> dict[str, Any]:
        """The emulator's request counts now (it writes them on SIGUSR1)."""
        path = self.out / "counts.json"
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if path.exists():
                doc: dict[str, Any] = json.loads(path.read_text())
                if doc["seq"] > self.seq:
                    self.seq = doc["seq"]
                    return doc
            time.sleep(0.02)
        raise RuntimeError("bench/emulator_proc.py did not report its counts")


def new_upload_url(base_url: str) -> str:
    """POST /video/v1/uploads (basic auth) and return the fresh upload URL."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    auth = base64.b64encode(f"{TOKEN[0]}:{TOKEN[1]}".encode()).decode()
    body = json.dumps({"new_asset_settings": {"playback_policies": ["public"]}})
    conn.request(
        "POST",
        "/video/v1/uploads",
        body=body,
        headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"},
    )
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    if resp.status != 201:
        raise RuntimeError(f"creating an upload: HTTP {resp.status} {data[:200]!r}")
    return str(json.loads(data)["data"]["url"])


# -- the table -------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    what: str
    vidpipe: str
    baseline: str
    figure: str
    target: str
    ok: bool | None  # None: reported, no target
    notes: list[str] = field(default_factory=list)


def fmt_s(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 2 else f"{seconds:.2f} s"


def fmt_mb(nbytes: float) -> str:
    return f"{nbytes / 1e6:.1f} MB"


def table_lines(rows: list[Row]) -> list[str]:
    headers = ("row", "vidpipe (median)", "baseline (median)", "figure", "target", "result")
    cells = [
        (
            f"{r.name}: {r.what}",
            r.vidpipe,
            r.baseline,
            r.figure,
            r.target,
            "report" if r.ok is None else ("PASS" if r.ok else "FAIL"),
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for c in cells:
        lines.append("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)).rstrip())
    for r in rows:
        lines += [f"  [{r.name}] {note}" for note in r.notes]
    return lines


def environment() -> list[str]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    curl_version = subprocess.run(
        [CURL, "--version"], capture_output=True, text=True, check=False
    ).stdout.split("\n", 1)[0]
    versions = []
    for mod in ("typer", "httpx", "httpcore", "h11"):
        try:
            from importlib.metadata import version

            versions.append(f"{mod} {version(mod)}")
        except Exception:  # a missing package only drops a line of the report
            pass
    return [
        f"python {platform.python_version()} ({PY})",
        f"{platform.system()} {platform.release()} {platform.machine()}; "
        f"{usable} usable cores of {os.cpu_count()}; {cpu}",
        ", ".join(versions),
        curl_version,
    ]


def write_report(name: str, lines: list[str]) -> None:
    """Print a report and keep it in bench/out/`name` (the latest run of each script)."""
    print("\n".join(lines))
    OUT.mkdir(exist_ok=True)
    (OUT / name).write_text("\n".join(lines) + "\n")
