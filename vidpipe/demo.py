"""`vidpipe demo`: the whole product on a fresh machine, with no Mux account and no network.

The demo sets up a throwaway world and then runs the *real* commands, in-process through
`vidpipe.cli.run` (and one `vidpipe webhook serve` as a real background process), each
announced as the line a user would type, with its output and exit code:

1. a SQLite platform database (`platform.db`, created by `vidpipe db init`) holding six
   lessons and a course, the built-in Mux emulator on a free loopback port standing for the
   Mux environment "Production", and a generated sample video (`sample.mp4`, no download);
   lessons are paid content (signed playback), the course preview is public;
2. `upload` for lesson 1 (with its progress bar) and for course 1's preview, `status`, and a
   clean `verify`;
3. drift made behind the database's back (lesson 1's asset deleted on "Mux" with no
   webhook; a ready asset for lesson 2 whose webhook never arrived): `verify` finds it
   (exit 1), `sync` repairs the database, `verify` is clean again, lesson 1 is uploaded again;
4. `import` of a three-item manifest (`course.csv` and three generated videos), then
   captions asked for by a new setting: `verify` finds the assets lacking them and
   `sync --fix-settings` adds them;
5. `url` of a signed lesson (a signing key generated for the demo);
6. the wrong-environment guard: `sync` with a token of another Mux environment ("Staging",
   a second emulator) is refused (exit 2) and changes nothing;
7. webhooks: `webhook serve` in the background, the emulator's webhooks pointed at it, an
   `upload --no-wait` that the `video.asset.ready` webhook records;
8. `download` of lesson 1: its original back from Mux (the emulator serves the uploaded
   bytes), checked against `sample.mp4` byte for byte, master access off again;
9. `doctor` on the demo's own deployment;
10. a summary of what was shown and where to go next.

Each part is a `Chapter`: a title, what it shows, and one small function that plays it on
the `DemoStage` (`vidpipe.demo_stage`); adding a part is one function and one entry in
`CHAPTERS`.

Where it works: a temporary folder, removed afterwards; or `--dir DIR`, created if missing and
kept afterwards so the database can be inspected. In a `--dir` that already holds an earlier
demo, only the files the demo itself creates are replaced (`FILES`, `platform.db` and its
SQLite/lock companions); nothing else in the folder is touched, so pointing `--dir` at a
folder with other files in it is safe.

The child commands are handed their settings (`MUX_BASE_URL` of the emulator, demo token values,
`DATABASE_URL` of the demo database, the demo's signing key and webhook secret) by the caller's
runner, read no `.env`, and leave the process environment and working directory alone. A step
whose exit code is not the expected one stops the demo with a VidpipeError naming the step.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidpipe.demo_stage import (
    DB_FILE,
    DemoStage,
    DemoStep,
    Narrator,
    RunStep,
    add_platform_rows,
    prepare_dir,
)
from vidpipe.errors import VidpipeError
from vidpipe.samples import write_sample_video

__all__ = ["DB_FILE", "FILES", "RunStep", "run_demo"]

VIDEO_FILE = "sample.mp4"
VIDEO_SIZE = 16 * 1024 * 1024
"""Big enough for the progress bar to be seen moving, small enough to stay well under a second
per upload on loopback."""
IMPORT_SIZE = 4 * 1024 * 1024
"""Each of the manifest's three videos."""
CHUNK_SIZE = "1MiB"
"""Small chunks so the progress bar advances in visible steps (16 PUTs per upload)."""
CHUNK_DELAY = 0.05
"""Seconds the emulator pauses before taking each upload PUT (about 1 s per upload)."""
READY_AFTER = 1.5
"""Seconds the emulator keeps an asset `preparing`: long enough that the wait is visible."""
WEBHOOK_WAIT = 30.0
"""Seconds the demo waits for `webhook serve` to start, and then to record the upload."""

DEMO_TOKEN_ID = "demo-token-id"
DEMO_TOKEN_SECRET = "demo-token-secret"  # the emulator accepts any non-empty pair
DEMO_WEBHOOK_SECRET = "demo-webhook-secret"
DEMO_SIGNING_KEY_ID = "demo-signing-key"
PRODUCTION = ("demo-prod-1", "Production")
"""The Mux environment (ID, name) the demo's emulator stands for, and the other one."""
STAGING = ("demo-staging-2", "Staging")

LESSONS = (
    (1, "Intro to Knots"),
    (2, "The Bowline, Step by Step"),
    (3, "The Clove Hitch"),
    (4, "The Reef Knot"),
    (5, "The Figure Eight"),
    (6, "Coiling a Line"),
)
COURSE = (1, "Knots for Sailors")
IMPORTED = (3, 4, 5)
DEMO_MANIFEST = "course.csv"
SERVE_LOG = "webhook-serve.log"
DOWNLOADED = "lesson-1.mp4"
"""Where the demo's `download` writes lesson 1's original."""
FILES = (
    VIDEO_FILE,
    DEMO_MANIFEST,
    SERVE_LOG,
    *(f"knots-{lesson}.mp4" for lesson in IMPORTED),
    DOWNLOADED,
)
"""The files the demo writes in its folder besides the database."""
LEFTOVERS = (f"{DOWNLOADED}.part", f"{DOWNLOADED}.part.json")
"""What an interrupted earlier run may have left besides `FILES` (a download's partial)."""


@dataclass(frozen=True)
class Chapter:
    """One part of the story: its title, what it shows, the line it adds to the summary,
    and the function that plays it."""

    title: str
    text: str
    shown: str
    play: Callable[[DemoStage], None]


# -- the chapters ------------------------------------------------------------------------------


def _platform(stage: DemoStage) -> None:
    stage.do("db", "init")
    add_platform_rows(stage.database_url, LESSONS, COURSE)
    stage.note(
        f'added lessons 1-{len(LESSONS)} ("{LESSONS[0][1]}", ...) and course {COURSE[0]} '
        f'"{COURSE[1]}"'
    )


def _upload_args() -> tuple[str, ...]:
    return ("--chunk-size", CHUNK_SIZE)


def _upload(stage: DemoStage) -> None:
    video = stage.path(VIDEO_FILE)
    stage.do("upload", video, "--lesson", "1", *_upload_args())
    stage.do("upload", video, "--course", "1", *_upload_args())


def _status_verify(stage: DemoStage) -> None:
    stage.do("status")
    stage.do("verify")


def _drift(stage: DemoStage) -> None:
    lost, _ = stage.recorded("lesson", 1)
    assert lost is not None
    stage.emulator.delete_asset_silently(lost)
    stage.note(f"deleted asset {lost} on Mux; the database still names it for lesson 1")
    # As vidpipe's upload made it (signed, its meta from the row), a webhook short of recorded.
    meta = {"title": dict(LESSONS)[2], "external_id": "lesson:2"}
    seeded = stage.emulator.seed_asset(
        passthrough=json.dumps({"lesson_id": 2}), playback_policies=("signed",), meta=meta
    )
    stage.note(f"asset {seeded['id']} is ready on Mux for lesson 2; the database has no idea")
    stage.do("verify", expect=1, note="expected: verify found drift")


def _sync(stage: DemoStage) -> None:
    stage.do("sync")
    stage.do("verify")


def _reupload(stage: DemoStage) -> None:
    stage.do("upload", stage.path(VIDEO_FILE), "--lesson", "1", *_upload_args())


def _import(stage: DemoStage) -> None:
    lines = ["source,lesson"]
    for seed, lesson in enumerate(IMPORTED, start=1):
        write_sample_video(stage.workdir / f"knots-{lesson}.mp4", IMPORT_SIZE, seed)
        lines.append(f"knots-{lesson}.mp4,{lesson}")
    (stage.workdir / DEMO_MANIFEST).write_text("\n".join(lines) + "\n")
    stage.note(f"{DEMO_MANIFEST}: " + "; ".join(lines[1:]))
    stage.do("import", stage.path(DEMO_MANIFEST))


def _captions(stage: DemoStage) -> None:
    # From here on the deployment asks for English captions and an MP4 download, as a
    # changed .env would.
    stage.settings.update(vidpipe_captions="en", vidpipe_static_renditions="highest")
    shown = "VIDPIPE_CAPTIONS=en VIDPIPE_STATIC_RENDITIONS=highest"
    stage.do("verify", expect=1, note="expected: assets lack captions and MP4s", prefix=shown)
    stage.do("sync", "--fix-settings", "--dry-run", prefix=shown)
    stage.do("sync", "--fix-settings", prefix=shown)
    stage.do("verify", prefix=shown)


def _signed_url(stage: DemoStage) -> None:
    stage.do("url", "--lesson", "1", "--expires", "1h")


def _wrong_environment(stage: DemoStage) -> None:
    from vidpipe.emulator import Emulator

    staging = Emulator(environment_id=STAGING[0], environment_name=STAGING[1])
    staging_url = staging.start()
    stage.cleanups.callback(staging.stop)
    before = stage.rows()
    token = {"mux_base_url": staging_url, "mux_token_id": "staging-token-id"}
    stage.do(
        "sync",
        expect=2,
        note="expected: refused",
        settings={**stage.settings, **token},
        prefix="MUX_TOKEN_ID=staging-token-id",
    )
    asked = staging.count(None, "/")
    if stage.rows() != before or asked != staging.count("GET", "/system/v1/whoami"):
        raise VidpipeError("demo: the refused sync changed something")
    stage.note(
        f"nothing changed: the database records the same {sum(1 for r in before if r[2])} "
        "videos, and Staging was asked only which environment the token belongs to"
    )


def _webhooks(stage: DemoStage) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stage.say.command(DemoStep(("webhook", "serve", "--port", str(port))), background=True)
    log = _serve(stage, port)
    stage.emulator.send_webhooks_to(f"http://127.0.0.1:{port}/webhooks/mux", DEMO_WEBHOOK_SECRET)
    stage.note(f"Mux's webhook now points at http://127.0.0.1:{port}/webhooks/mux")
    stage.do("upload", stage.path(VIDEO_FILE), "--lesson", "6", "--no-wait", *_upload_args())
    deadline = time.monotonic() + WEBHOOK_WAIT
    while stage.recorded("lesson", 6)[0] is None:
        if time.monotonic() > deadline:
            raise VidpipeError("demo: webhook serve did not record lesson 6's video")
        time.sleep(0.1)
    stage.emulator.wait_webhooks(WEBHOOK_WAIT)
    stage.say.quote(log.read_text(errors="replace").splitlines(), "serve")
    stage.do("status", "--lesson", "6")


def _serve(stage: DemoStage, port: int) -> Path:
    """`vidpipe webhook serve` as a real process with the demo's settings; stopped (SIGTERM)
    when the demo ends. Returns its log file."""
    import httpx

    from vidpipe.config import env_name

    env = {k: v for k, v in os.environ.items() if not k.startswith(("MUX_", "VIDPIPE_"))}
    env.pop("DATABASE_URL", None)
    env.update({env_name(k): str(v) for k, v in stage.settings.items()})
    log = stage.workdir / SERVE_LOG
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vidpipe", "webhook", "serve", "--port", str(port)],
            env=env,
            cwd=stage.workdir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    stage.cleanups.callback(stop)
    deadline = time.monotonic() + WEBHOOK_WAIT
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                return log
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise VidpipeError(
                f"demo: webhook serve did not start; its log: {log.read_text(errors='replace')}"
            )
        time.sleep(0.1)


def _download(stage: DemoStage) -> None:
    asset, _ = stage.recorded("lesson", 1)
    assert asset is not None
    target = stage.workdir / DOWNLOADED
    stage.do("download", "--lesson", "1", "-o", str(target))
    # The demo's own proof: the same bytes as the file uploaded, nothing partial left, and
    # master access off again on Mux.
    sample = _sha256(stage.workdir / VIDEO_FILE)
    if not target.is_file() or _sha256(target) != sample:
        raise VidpipeError(f"demo: {DOWNLOADED} is not the bytes of {VIDEO_FILE}")
    if any((stage.workdir / name).exists() for name in LEFTOVERS):
        raise VidpipeError(f"demo: the download left {DOWNLOADED}.part behind")
    if stage.emulator.master_access.fields(asset)["master_access"] != "none":
        raise VidpipeError(f"demo: master access of asset {asset} was left on")
    stage.note(f"{DOWNLOADED}: same bytes as {VIDEO_FILE} (SHA-256 {sample[:16]}...)")
    stage.note("master access of the asset is none again; no .part left behind")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def _doctor(stage: DemoStage) -> None:
    stage.do("doctor", "--webhooks")


CHAPTERS = (
    Chapter(
        "The platform database",
        "vidpipe works on the course platform's own tables (lesson, world). `db init` creates "
        "what is missing; the demo then adds six lessons and a course.",
        "db init on a SQLite platform database with six lessons and a course",
        _platform,
    ),
    Chapter(
        "Upload",
        "A resumable, chunked direct upload with byte-level progress; vidpipe then waits for "
        "Mux to finish processing and records the asset and playback IDs on the row. Lessons "
        "are paid content (signed playback); the course preview is public.",
        "upload with progress for a lesson and a course preview, waiting until ready",
        _upload,
    ),
    Chapter(
        "Status and verify",
        "`status` shows the database and Mux side by side; `verify` compares them read-only "
        "and exits 0 when they agree (cron-friendly).",
        "status and a clean verify (exit 0)",
        _status_verify,
    ),
    Chapter(
        "Drift",
        "Real systems drift. Behind the database's back: lesson 1's asset is deleted on Mux "
        "(no webhook), and a video for lesson 2 finishes processing but its "
        "`video.asset.ready` webhook never arrives.",
        "drift (a deleted asset, a missed webhook) found by verify (exit 1)",
        _drift,
    ),
    Chapter(
        "Sync",
        "`sync` makes the database agree with Mux: it clears lesson 1's dead IDs and records "
        "lesson 2's asset. Then `verify` is clean again.",
        "sync repairing it, and verify clean again",
        _sync,
    ),
    Chapter(
        "Back to full health",
        "Lesson 1 has no video now, so a plain upload (no --replace) gives it one again.",
        "a re-upload",
        _reupload,
    ),
    Chapter(
        "Import a course",
        "A manifest names many videos at once: every line is checked first, then the items "
        "upload side by side, paced at Mux's 1 POST/s, with one progress display.",
        "import of a three-item manifest",
        _import,
    ),
    Chapter(
        "Keeping existing videos in line",
        "Settings change: every lesson now needs English captions and an MP4 download. "
        "`verify` names each asset that lacks them; `sync --fix-settings` asks Mux for what "
        "is missing (additive, paced at 1 POST/s, no re-upload); `verify` is clean again.",
        "captions and MP4 renditions added to existing videos (sync --fix-settings)",
        _captions,
    ),
    Chapter(
        "A signed link",
        "Lesson 1's playback ID is signed: `url` gives stream and thumbnail links with a "
        "token made from the signing key (generated for the demo).",
        "url of a signed lesson",
        _signed_url,
    ),
    Chapter(
        "The wrong token",
        "A database belongs to one Mux environment. The same `sync`, run with a token of "
        "another environment (Staging), would see every video as deleted: it is refused "
        "before anything is asked or changed.",
        "sync with a token of another environment refused (exit 2), nothing changed",
        _wrong_environment,
    ),
    Chapter(
        "Webhooks",
        "`webhook serve` receives Mux's signed webhooks. An upload that does not wait "
        "(--no-wait) is recorded when Mux says the asset is ready.",
        "an upload --no-wait recorded by webhook serve from Mux's webhook",
        _webhooks,
    ),
    Chapter(
        "Getting the original back",
        "Mux keeps every upload's original. `download` turns the asset's master access on "
        "for the length of the download, brings the file back byte-exact (resumable: re-run "
        "after an interruption) and switches master access off again.",
        "download of a lesson's original, byte-exact, master access off again",
        _download,
    ),
    Chapter(
        "Doctor",
        "`doctor` checks a deployment (settings, token, environment, database, uploads, "
        "clock, keys) and says what to fix. Here: the demo's own.",
        "doctor on the demo's deployment (exit 0)",
        _doctor,
    ),
)

NEXT_STEPS = (
    "Real Mux: put MUX_TOKEN_ID and MUX_TOKEN_SECRET (a Mux access token) and DATABASE_URL "
    "in a .env file, then `vidpipe db init`, `vidpipe doctor` and `vidpipe upload`",
    "Keep it honest: run `vidpipe sync` from cron; `vidpipe verify` exits 1 on drift",
    "When something is wrong: `vidpipe doctor` says what and what to do",
    "Rehearse without Mux: `vidpipe emulator` and MUX_BASE_URL",
    "Develop: `make test` (lint, types, tests); details in README.md",
)


# -- the run -----------------------------------------------------------------------------------


def run_demo(directory: Path | None, run: RunStep) -> None:
    """Run the demo in `directory` (created if missing, kept) or in a temporary folder
    (removed afterwards), each step through `run`. Raises VidpipeError if a step ends with
    an unexpected exit code."""
    if directory is not None:
        _run_in(prepare_dir(directory, FILES + LEFTOVERS), run)
        return
    with tempfile.TemporaryDirectory(prefix="vidpipe-demo-") as tmp:
        _run_in(Path(tmp).resolve(), run)


def _signing_key() -> str:
    """A fresh RSA key, base64-encoded PEM as Mux's dashboard gives it (the demo's only)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return base64.b64encode(pem).decode()


def _run_in(workdir: Path, run: RunStep) -> None:
    from vidpipe.emulator import Emulator

    started = time.monotonic()
    say = Narrator()
    settings: dict[str, Any] = {
        "database_url": f"sqlite:///{workdir / DB_FILE}",
        "mux_token_id": DEMO_TOKEN_ID,
        "mux_token_secret": DEMO_TOKEN_SECRET,
        "mux_webhook_secret": DEMO_WEBHOOK_SECRET,
        "mux_signing_key_id": DEMO_SIGNING_KEY_ID,
        "mux_signing_key": _signing_key(),
        "vidpipe_playback_policy": "signed",
    }
    # "Mux" keeps every upload's bytes (outside the demo's folder: they are Mux's, not the
    # platform's), so a master download serves the very file that was uploaded.
    kept = tempfile.TemporaryDirectory(prefix="vidpipe-demo-mux-")
    emulator = Emulator(
        ready_after=READY_AFTER,
        environment_id=PRODUCTION[0],
        environment_name=PRODUCTION[1],
        store_dir=kept.name,
    )
    try:
        base_url = emulator.start()
    except BaseException:
        kept.cleanup()
        raise
    # Loopback moves 16 MiB in a blink; a short pause per chunk lets the bar be seen moving,
    # as it would on a real link. Only the emulator is slowed, never vidpipe.
    emulator.inject("PUT", "/upload/", "delay", delay=CHUNK_DELAY, times=1_000_000)
    settings["mux_base_url"] = base_url
    stage = DemoStage(workdir, run, say, emulator, settings)
    with stage.cleanups:
        stage.cleanups.callback(kept.cleanup)
        stage.cleanups.callback(emulator.stop)
        write_sample_video(workdir / VIDEO_FILE, VIDEO_SIZE)
        say.intro(
            [
                "A local platform database, the built-in Mux emulator and a generated video:",
                "no Mux account, no network. Every command below is the real vidpipe command.",
                "",
                f"folder    {workdir}",
                f"database  DATABASE_URL=sqlite:///{workdir / DB_FILE}",
                f"Mux       MUX_BASE_URL={base_url}",
                f"          (the emulator, Mux environment {PRODUCTION[1]};",
                f"          uploads paced, assets ready {READY_AFTER:g} s after upload)",
                f"video     {VIDEO_FILE} ({VIDEO_SIZE // (1024 * 1024)} MiB MP4, generated)",
            ]
        )
        for chapter in CHAPTERS:
            stage.chapter(chapter.title, chapter.text)
            chapter.play(stage)
    say.summary(
        shown=[chapter.shown for chapter in CHAPTERS],
        next_steps=NEXT_STEPS,
        elapsed=time.monotonic() - started,
    )
