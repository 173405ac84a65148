"""Many uploads in one run: the checked items of a manifest, `jobs` at a time.

How it stays fast without upsetting Mux:
- every worker thread uses the one gateway of the run, so its pacers (POST 1/s, others 5/s,
  held back further when `X-RateLimit-Remaining` says 0) are shared: the creates come one a
  second while earlier items' bytes move in parallel;
- readiness is learned from asset list pages (100 assets a call) by one waiter thread for
  the whole batch, not by one GET per asset.

How it stays correct with several processes on one manifest (the batch lives in the
database: the upload journal, plus the platform rows):
- an item is worked on under its target's claim (`Pipeline.claim`: a PostgreSQL advisory
  lock or an OS file lock, dropped when the holder dies); an item another process holds is
  put back and tried again a little later, never failed;
- under the claim, the item is checked again: recorded by an earlier or concurrent run of
  the same source -> skipped; failed by another process during this run -> failed (with its
  reason), not tried twice;
- the claim covers create + transfer, the steps that could make a second upload. Waiting and
  recording are safe to repeat: the row and journal writers are compare-and-set.

Re-running after a crash or kill -9 finds the journal entries in flight and resumes them (a
transfer from the offset the server holds; a create whose answer was lost is looked for
before it is repeated).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import NoReturn

from sqlalchemy import Engine

from vidpipe import journal, readiness
from vidpipe.creation import prepare
from vidpipe.db import UploadJournal, transaction
from vidpipe.errors import LockHeld, MuxError, TargetHasVideo, VidpipeError
from vidpipe.journal import State
from vidpipe.manifest import Item
from vidpipe.media import FileSource
from vidpipe.mux import Asset, MuxGateway
from vidpipe.pipeline import Pipeline, UploadOptions, UploadOutcome
from vidpipe.readiness import Backoff, Stage
from vidpipe.records import read_row
from vidpipe.targets import Kind, Target

MAX_JOBS = 16
HELD_RETRY = 2.0
"""Seconds before an item another process holds is tried again."""
WAIT_PAGES = 5
"""Asset list pages (100 each) one readiness poll reads at most; assets not on them are
asked for one by one."""
MISSES_BEFORE_GET = 3
"""Polls an item may go unseen on the list pages before it is asked for directly (an
upload that failed has no asset to list)."""
RATE_LIMIT_PATIENCE = 30 * 60.0
"""How long one call keeps retrying 429s during an import (other processes share the
budget: a 429 is a reason to wait, not to fail an item)."""


class ItemState(StrEnum):
    DONE = "done"  # uploaded and recorded by this run
    SKIPPED = "skipped"  # recorded earlier (or by another process) from the same source
    TRANSFERRED = "transferred"  # bytes at Mux, not waited for
    FAILED = "failed"
    PENDING = "pending"  # a dry run: would be uploaded


@dataclass
class ItemResult:
    line: int
    source: str  # as output shows it
    target: Target
    state: ItemState
    size: int = 0
    asset_id: str | None = None
    playback_id: str | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "line": self.line,
            "source": self.source,
            "target": self.target.as_json(),
            "state": self.state.value,
            "asset_id": self.asset_id,
            "playback_id": self.playback_id,
            "error": self.error,
        }


@dataclass
class ImportReport:
    manifest: str
    items: list[ItemResult]
    dry_run: bool = False
    jobs: int = 0
    seconds: float = 0.0
    api_calls: int = 0
    rate_limited: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(i.state == ItemState.FAILED for i in self.items)

    def count(self, state: ItemState) -> int:
        return sum(1 for i in self.items if i.state == state)

    def as_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "manifest": self.manifest,
            "dry_run": self.dry_run,
            "items": [i.as_json() for i in sorted(self.items, key=lambda i: i.line)],
            "summary": {
                "total": len(self.items),
                **{s.value: self.count(s) for s in ItemState if s != ItemState.PENDING},
                **({"pending": self.count(ItemState.PENDING)} if self.dry_run else {}),
            },
            "seconds": round(self.seconds, 3),
            "api_calls": self.api_calls,
            "rate_limited": self.rate_limited,
            "warnings": self.warnings,
        }


class Observer:
    """What a run reports as it goes (the CLI draws progress from it). Called from worker
    threads: implementations must be thread-safe. The default does nothing."""

    def planned(self, items: list[Item]) -> None:
        """The items this run will work on (skipped ones excluded), before the first starts."""

    def started(self, item: Item) -> None:
        """A worker took the item (its transfer or ingest is about to start)."""

    def progress(self, item: Item, done: int, total: int) -> None:
        """Bytes of the item's file confirmed so far."""

    def held(self, item: Item) -> None:
        """Another process holds the item; it will be tried again."""

    def waiting(self, item: Item) -> None:
        """The item's bytes are at Mux; waiting for its asset."""

    def finished(self, result: ItemResult) -> None:
        """The item ended (any state)."""


def plan(manifest: Path, items: list[Item]) -> ImportReport:
    """What a dry run reports: skipped (done earlier) or pending, for every item."""
    return ImportReport(manifest=str(manifest), items=[_planned(i) for i in items], dry_run=True)


def _planned(item: Item) -> ItemResult:
    if item.done_earlier:
        return _skipped(item, item.current_asset_id, item.current_playback_id)
    return ItemResult(item.line, item.shown, item.target, ItemState.PENDING, size=item.size)


def _skipped(item: Item, asset_id: str | None, playback_id: str | None) -> ItemResult:
    return ItemResult(
        item.line,
        item.shown,
        item.target,
        ItemState.SKIPPED,
        size=item.size,
        asset_id=asset_id,
        playback_id=playback_id,
    )


# -- the run ------------------------------------------------------------------------------------


class Importer:
    """Runs the items of one manifest with `jobs` workers over one pipeline (one gateway)."""

    def __init__(
        self,
        engine: Engine,
        gateway: MuxGateway,
        pipeline: Pipeline,
        options: Mapping[Kind, UploadOptions],
        *,
        jobs: int,
        observer: Observer | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.mux = gateway
        self.pipeline = pipeline
        self.options = options
        """The options of each kind of row's uploads (asset settings differ by kind)."""
        first = next(iter(options.values()))
        self.wait, self.timeout = first.wait, first.timeout
        self.jobs = jobs
        self.observer = observer or Observer()
        self.clock = clock
        self._results: dict[int, ItemResult] = {}
        self._results_lock = threading.Lock()
        self._queue = _Queue(clock)
        self._waiter: _Waiter | None = None
        self._start_id = 0

    def run(self, manifest: Path, items: list[Item]) -> ImportReport:
        started = self.clock()
        calls_before = self.mux.stats.calls
        limited_before = self.mux.stats.rate_limited
        # Entries above this ID were made during this run (by us or by another process).
        self._start_id = journal.last_id(self.engine)
        todo: list[Item] = []
        for item in items:
            if item.done_earlier:
                self._finish(_skipped(item, item.current_asset_id, item.current_playback_id))
            else:
                todo.append(item)
        self.observer.planned(todo)
        if self.wait:
            self._waiter = _Waiter(self)
            self._waiter.start()
        self._queue.fill(todo)
        workers = [
            threading.Thread(target=self._work, name=f"vidpipe-import-{n}", daemon=True)
            for n in range(min(self.jobs, len(todo)))
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            while worker.is_alive():  # a timed join lets Ctrl-C through
                worker.join(0.2)
        if self._waiter is not None:
            self._waiter.close()
            while self._waiter.is_alive():
                self._waiter.join(0.2)
        for item in items:  # a safety net: every line gets a result
            if item.line not in self._results:
                self._finish(self._failed(item, "not finished (an internal error stopped it)"))
        self._add_captions(items)
        return ImportReport(
            manifest=str(manifest),
            items=sorted(self._results.values(), key=lambda r: r.line),
            jobs=self.jobs,
            seconds=self.clock() - started,
            api_calls=self.mux.stats.calls - calls_before,
            rate_limited=self.mux.stats.rate_limited - limited_before,
        )

    def _add_captions(self, items: list[Item]) -> None:
        """Subtitle files of the items whose asset is recorded (`vidpipe.import_captions`); a
        track Mux cannot make fails its item only."""
        from vidpipe.import_captions import add_captions

        work = []
        for item in items:
            result = self._results[item.line]
            if not item.captions:
                continue
            if result.state is ItemState.TRANSFERRED:
                result.warnings.append("captions are added once the asset is ready: import again")
            elif result.state in (ItemState.DONE, ItemState.SKIPPED) and result.asset_id:
                work.append((item.line, result.asset_id, item.captions))
        for line, error in add_captions(self.mux, work).items():
            self._results[line].state = ItemState.FAILED
            self._results[line].error = error

    # -- workers ---------------------------------------------------------------------------------

    def _work(self) -> None:
        while (item := self._queue.take()) is not None:
            try:
                self._one(item)
            finally:
                self._queue.done()

    def _one(self, item: Item) -> None:
        pipeline = self.pipeline
        options = self.options[item.target.kind]
        try:
            with pipeline.claim(item.target):
                settled = self._settled(item)
                if settled is not None:
                    self._finish(settled)
                    return
                # A file is checked again: it may have changed since the manifest was read.
                media = item.key if isinstance(item.media, FileSource) else item.media
                try:
                    prepared = prepare(self.engine, media, item.target, replace=options.replace)
                except TargetHasVideo:
                    # Recorded between the check and here, by another process?
                    settled = self._settled(item)
                    if settled is None:
                        raise
                    self._finish(settled)
                    return
                self.observer.started(item)

                def progress(done: int, total: int) -> None:
                    self.observer.progress(item, done, total)

                entry, outcome = pipeline.send(prepared, options, progress)
        except LockHeld:
            self.observer.held(item)
            self._queue.put_back(item, HELD_RETRY)
            return
        except VidpipeError as exc:
            self._finish(self._failed(item, str(exc)))
            return
        except Exception as exc:  # one item's surprise must not stop the others
            self._finish(self._failed(item, f"unexpected {type(exc).__name__}: {exc}"))
            return
        if self._waiter is None:
            self._finish(
                ItemResult(
                    item.line,
                    item.shown,
                    item.target,
                    ItemState.TRANSFERRED,
                    size=item.size,
                    asset_id=entry.asset_id,
                )
            )
            return
        self.observer.waiting(item)
        self._waiter.add(item, entry, outcome, options, self.clock() + self.timeout)

    def _settled(self, item: Item) -> ItemResult | None:
        """Under the claim: is the item finished already (by an earlier run or another
        process), or did another process fail it during this run?"""
        with transaction(self.engine) as conn:
            row = read_row(conn, item.target)
            if row is not None and row.asset_id:
                done = journal.done_with(conn, item.target, row.asset_id)
                if any(item.same_source(e) for e in done):
                    return _skipped(item, row.asset_id, row.playback_id)
            newer = [e for e in journal.newest_for(conn, item.target, self._start_id)]
        mine = [e for e in newer if item.same_source(e)]
        if mine and mine[0].state == State.FAILED.value:
            reason = mine[0].last_error or "failed"
            return self._failed(item, f"failed in another vidpipe process: {reason}")
        return None

    def _failed(self, item: Item, error: str) -> ItemResult:
        return ItemResult(
            item.line, item.shown, item.target, ItemState.FAILED, size=item.size, error=error
        )

    def _finish(self, result: ItemResult) -> None:
        with self._results_lock:
            self._results[result.line] = result
        self.observer.finished(result)


class _Queue:
    """Items to take, items put back for later (held by another process), and how many
    are being worked on: a worker stops only when nothing can come back."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._cond = threading.Condition()
        self._ready: deque[Item] = deque()
        self._later: list[tuple[float, Item]] = []
        self._busy = 0
        self._clock = clock

    def fill(self, items: list[Item]) -> None:
        with self._cond:
            self._ready.extend(items)
            self._cond.notify_all()

    def take(self) -> Item | None:
        with self._cond:
            while True:
                now = self._clock()
                due = [entry for entry in self._later if entry[0] <= now]
                if due:
                    self._later.remove(due[0])
                    self._ready.append(due[0][1])
                if self._ready:
                    self._busy += 1
                    return self._ready.popleft()
                if not self._later and not self._busy:
                    self._cond.notify_all()
                    return None
                timeout = min((at for at, _ in self._later), default=now + 1.0) - now
                self._cond.wait(max(0.01, timeout))

    def put_back(self, item: Item, delay: float) -> None:
        with self._cond:
            self._later.append((self._clock() + delay, item))
            self._cond.notify_all()

    def done(self) -> None:
        with self._cond:
            self._busy -= 1
            self._cond.notify_all()


@dataclass(eq=False)
class _Waiting:
    item: Item
    entry: UploadJournal
    outcome: UploadOutcome
    options: UploadOptions
    deadline: float
    misses: int = 0


class _Waiter(threading.Thread):
    """One thread learns the states of every item's asset from list pages, and records the
    ready ones."""

    def __init__(self, importer: Importer) -> None:
        super().__init__(name="vidpipe-import-waiter", daemon=True)
        self.importer = importer
        self.mux = importer.mux
        self._cond = threading.Condition()
        self._waiting: list[_Waiting] = []
        self._closed = False
        self._backoff = Backoff()

    def add(
        self,
        item: Item,
        entry: UploadJournal,
        outcome: UploadOutcome,
        options: UploadOptions,
        deadline: float,
    ) -> None:
        with self._cond:
            self._waiting.append(_Waiting(item, entry, outcome, options, deadline))
            self._backoff.reset()
            self._cond.notify_all()

    def close(self) -> None:
        """No more items will come: finish the ones waiting, then stop."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def run(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._closed:
                    self._cond.wait()
                if not self._waiting and self._closed:
                    return
                self._cond.wait(self._backoff.delay)
                batch = list(self._waiting)
            changed = self._poll(batch)
            with self._cond:
                if changed:
                    self._backoff.reset()
                else:
                    self._backoff.next()

    def _poll(self, batch: list[_Waiting]) -> bool:
        """One round: list pages, then direct reads for items long unseen. Returns whether
        any item moved on."""
        last_error: str | None = None
        try:
            seen = self._list(batch)
        except MuxError as exc:
            # A failing list is no reason to fail items: they wait for the next round,
            # up to their deadline.
            seen = {}
            last_error = str(exc)
        changed = False
        for waiting in batch:
            try:
                changed = self._advance(waiting, seen.get(id(waiting)), last_error) or changed
            except Exception as exc:  # one item's surprise must not stop the others
                if isinstance(exc, VidpipeError):
                    why = str(exc)
                else:
                    why = f"unexpected {type(exc).__name__}: {exc}"
                self._end(waiting, self.importer._failed(waiting.item, why))
                changed = True
        return changed

    def _advance(self, waiting: _Waiting, asset: Asset | None, last_error: str | None) -> bool:
        """Move one item on; True when it ended."""
        if asset is None:
            waiting.misses += 1
            if waiting.misses >= MISSES_BEFORE_GET:
                waiting.misses = 0
                try:
                    asset = self._direct(waiting)
                except _Settled:
                    return True
                except MuxError as exc:
                    last_error = str(exc)
        if asset is not None and self._settle(waiting, asset):
            return True
        if self.importer.clock() > waiting.deadline:
            why = "the asset is not ready yet; re-running the import keeps waiting"
            if last_error:
                why += f" (last error: {last_error})"
            self._end(waiting, self.importer._failed(waiting.item, why))
            return True
        return False

    def _list(self, batch: list[_Waiting]) -> dict[int, Asset]:
        by_asset = {w.entry.asset_id: w for w in batch if w.entry.asset_id}
        by_upload = {
            w.entry.upload_id: w for w in batch if not w.entry.asset_id and w.entry.upload_id
        }
        seen: dict[int, Asset] = {}
        cursor: str | None = None
        for _page in range(WAIT_PAGES):
            assets, cursor = self.mux.list_assets_page(cursor)
            for asset in assets:
                waiting = by_asset.get(asset.id) or by_upload.get(asset.upload_id or "")
                if waiting is not None:
                    seen[id(waiting)] = asset
            if cursor is None or len(seen) == len(batch):
                break
        return seen

    def _direct(self, waiting: _Waiting) -> Asset | None:
        entry = waiting.entry
        if entry.asset_id is None and entry.upload_id is not None:
            made = readiness.of_upload(self.mux.get_upload(entry.upload_id))
            if made.stage is Stage.FAILED:
                self._fail(waiting, made.reason)
            if not made.asset_id:
                return None
            self._asset_created(entry, made.asset_id)
        assert entry.asset_id is not None
        asset = self.mux.find_asset(entry.asset_id)
        if asset is None:  # deleted: no asset for the list pages to show
            self._fail(waiting, readiness.of_asset(None, entry.asset_id).reason)
        return asset

    def _fail(self, waiting: _Waiting, reason: str | None) -> NoReturn:
        """Mux ended the item's upload or asset: journal it failed and end the item."""
        error = self.importer.pipeline.fail(waiting.entry, reason or "failed")
        self._end(waiting, self.importer._failed(waiting.item, str(error)))
        raise _Settled

    def _settle(self, waiting: _Waiting, asset: Asset) -> bool:
        """Act on the asset's status; True when the item ended."""
        entry = waiting.entry
        pipeline = self.importer.pipeline
        if entry.asset_id is None:
            self._asset_created(entry, asset.id)
        ready = readiness.of_asset(asset, asset.id)
        if ready.stage is Stage.FAILED:
            try:
                with pipeline.claim(waiting.item.target):  # as for recording, below
                    error = pipeline.fail(entry, ready.reason or "failed")
            except LockHeld:
                return False
            self._end(waiting, self.importer._failed(waiting.item, str(error)))
            return True
        if ready.stage is Stage.PENDING:
            return False
        item = waiting.item
        try:
            # Recording takes the claim too: an item is checked and sent under it, so another
            # process that holds it now never sees it unrecorded and then finds its entry
            # closed (it would start a second upload).
            with pipeline.claim(item.target):
                outcome = pipeline.complete(entry, asset, waiting.outcome, waiting.options)
        except LockHeld:
            return False  # someone is on this item right now: next round
        except VidpipeError as exc:
            self._end(waiting, self.importer._failed(item, str(exc)))
            return True
        result = ItemResult(
            item.line,
            item.shown,
            item.target,
            ItemState.SKIPPED if outcome.recorded_elsewhere else ItemState.DONE,
            size=item.size,
            asset_id=outcome.asset_id,
            playback_id=outcome.playback_id,
            warnings=list(outcome.warnings),
        )
        self._end(waiting, result)
        return True

    def _asset_created(self, entry: UploadJournal, asset_id: str) -> None:
        # Compare-and-set: another process may have recorded it meanwhile (`done` stays).
        assert entry.id is not None
        with transaction(self.importer.engine) as conn:
            journal.mark_asset_created(conn, entry.id, asset_id)
        entry.asset_id = asset_id

    def _end(self, waiting: _Waiting, result: ItemResult) -> None:
        with self._cond:
            if waiting in self._waiting:
                self._waiting.remove(waiting)
        self.importer._finish(result)


class _Settled(Exception):
    """The direct read ended the item (failed); nothing more to do with it this round."""
