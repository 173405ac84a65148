"""The in-process control API of the emulator: `Emulator` and `run_emulator`.

`Emulator` wires the store, the webhook sender, the URL fetcher, faults and rate limits to
the HTTP server (server.py) and offers tests their hooks: seed assets, force states, inject
faults, read the request log. `run_emulator` is the blocking entry point of
`vidpipe emulator`.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from vidpipe.emulator.faults import Fault, FaultPlan, RateLimiter
from vidpipe.emulator.ingest import Ingestor
from vidpipe.emulator.masters import MasterAccess, MasterHost, kept_uploads
from vidpipe.emulator.routes import ROUTES
from vidpipe.emulator.routing import Router, Services
from vidpipe.emulator.server import Server, Wiring
from vidpipe.emulator.state_hooks import StateHooks
from vidpipe.emulator.store import Store
from vidpipe.emulator.webhooks import DEFAULT_ENVIRONMENT, WebhookSender, envelope

WRITING_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})
ORGANIZATION = {"organization_id": "emu-org-1", "organization_name": "Emulator Organization"}
TOKEN_NAME = "vidpipe emulator token"
PERMISSIONS = ("video:read", "video:write", "system:read", "system:write", "data:read")


class Emulator(StateHooks):
    """The Mux emulator: a real HTTP server on loopback plus hooks for tests.

    One emulator is one Mux environment (`environment_id`, `environment_name`,
    `environment_type`, as `GET /system/v1/whoami` reports them and webhooks carry them):
    two emulators with different IDs stand for two environments.
    `ready_after`: seconds from an asset's creation until it is ready (or errored); an asset
    ingested from a URL is ready no sooner than its URL has been fetched.
    `rate_limit`: apply Mux's per-credential limits (429 without Retry-After) and send
    `X-RateLimit-Limit`/`-Remaining`/`-Reset` on every answer of the API.
    `credentials`: require exactly this (id, secret); None accepts any non-empty pair.
    `webhook_url`/`webhook_secret`: POST signed events there from a background thread.
    `store_dir`: keep each upload's committed bytes in `<store_dir>/<upload_id>.bin`.
    `checksum`: SHA-256 every committed byte (for `received()`); off, the upload path costs
    no hashing (benchmarks), and `received()` gives the size with an empty digest.
    `clock_skew`: seconds Mux's clock is ahead of this machine's (negative: behind), as the
    `Date` of every answer and the time in webhook signatures show it (`set_clock_skew`).
    """

    def __init__(
        self,
        ready_after: float = 0.0,
        rate_limit: bool = False,
        credentials: tuple[str, str] | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        store_dir: str | Path | None = None,
        checksum: bool = True,
        environment_id: str = DEFAULT_ENVIRONMENT["id"],
        environment_name: str = DEFAULT_ENVIRONMENT["name"],
        environment_type: str = "development",
        clock_skew: float = 0.0,
    ) -> None:
        self.clock_skew = clock_skew
        self._environment = {"name": environment_name, "id": environment_id}
        self._environment_type = environment_type
        self._credentials = credentials
        self._limiter = RateLimiter() if rate_limit else None
        self._faults = FaultPlan()
        self._store_dir = Path(store_dir) if store_dir is not None else None
        self._webhooks = (
            WebhookSender(webhook_url, webhook_secret, clock=self.now)
            if webhook_url and webhook_secret
            else None
        )
        self._store = Store(
            ready_after=ready_after, emit=self._emit, store_dir=self._store_dir, checksum=checksum
        )
        self._ingestor = Ingestor(self._store.finish_ingest)
        self.masters = MasterHost()
        """The host of master download links: its `faults` and request `log` (tests)."""
        self.master_access = MasterAccess(self.masters, kept_uploads(self._store, self._store_dir))
        """Master access per asset, and the hooks of tests (its ready delay, sizes, bytes)."""
        self._log_lock = threading.Lock()
        self.request_log: list[tuple[str, str, int]] = []
        self._server: Server | None = None
        self._threads: list[threading.Thread] = []
        self._base_url = ""

    # ----- lifecycle -----------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on host:port (0 = a free port) in background threads; returns the base URL."""
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        if self._store_dir is not None:
            self._store_dir.mkdir(parents=True, exist_ok=True)
        self._server = server = Server((host, port), self._wiring())
        shown = "127.0.0.1" if host in ("", "0.0.0.0") else host
        if ":" in shown:
            shown = f"[{shown}]"
        self._base_url = f"http://{shown}:{self._server.server_address[1]}"
        self.masters.start(shown)
        if self._webhooks is not None:
            self._webhooks.start()
        targets: list[tuple[str, Callable[[], None]]] = [
            ("emulator-http", lambda: server.serve_forever(poll_interval=0.05)),
            ("emulator-clock", self._store.run_clock),
        ]
        for name, target in targets:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self._base_url

    def stop(self) -> None:
        """Stop serving, close every connection and join the emulator's threads."""
        server, self._server = self._server, None
        if server is None:
            return
        self._faults.release()  # no request stays held past the end
        server.shutdown()
        server.close_clients()
        server.server_close()
        self._ingestor.wait_idle(timeout=2)
        self.masters.stop()
        self._store.close()
        if self._webhooks is not None:
            self._webhooks.stop()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """`http://HOST:PORT` once started."""
        return self._base_url

    @property
    def port(self) -> int:
        """The listening port once started."""
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        return int(self._server.server_address[1])

    # ----- the clock and the webhook target ------------------------------------------

    def now(self) -> float:
        """The emulated Mux's clock: this machine's plus `clock_skew`."""
        return time.time() + self.clock_skew

    def set_clock_skew(self, seconds: float) -> None:
        """Pretend Mux's clock is `seconds` ahead of this machine's (negative: behind)."""
        self.clock_skew = seconds

    def send_webhooks_to(self, url: str, secret: str) -> None:
        """From now on, POST events signed with `secret` to `url` (as changing a webhook's URL
        in the dashboard does); events not yet delivered to an earlier URL are dropped."""
        previous = self._webhooks
        self._webhooks = WebhookSender(url, secret, clock=self.now)
        if previous is not None:
            previous.stop()
        if self._server is not None:
            self._webhooks.start()

    # ----- the environment -----------------------------------------------------------

    @property
    def environment(self) -> dict[str, str]:
        """This emulator's Mux environment: `{"id", "name"}` (as webhooks carry it)."""
        return dict(self._environment)

    def rename_environment(self, name: str) -> None:
        """Give the environment a new name (its ID stays), as a rename in the dashboard does."""
        self._environment = {"name": name, "id": self._environment["id"]}

    def whoami(self) -> dict[str, Any]:
        """What `GET /system/v1/whoami` answers in `data`."""
        environment = self._environment
        return {
            "access_token_name": TOKEN_NAME,
            "environment_id": environment["id"],
            "environment_name": environment["name"],
            "environment_type": self._environment_type,
            **ORGANIZATION,
            "permissions": list(PERMISSIONS),
        }

    # ----- state for tests -----------------------------------------------------------

    @property
    def assets(self) -> dict[str, dict[str, Any]]:
        """A copy of every asset's JSON (as GET would return it), by ID."""
        with_master = self.master_access.with_fields
        return {k: with_master(v) for k, v in self._store.snapshot_assets().items()}

    @property
    def uploads(self) -> dict[str, dict[str, Any]]:
        """A copy of every upload's JSON, by ID."""
        return self._store.snapshot_uploads()

    @property
    def webhook_log(self) -> list[tuple[str, int | str]]:
        """Every webhook delivery attempt: (event type, HTTP status or error text)."""
        return list(self._webhooks.log) if self._webhooks else []

    @property
    def webhook_events(self) -> list[dict[str, Any]]:
        """The events delivered with a 2xx answer, in order."""
        return list(self._webhooks.sent) if self._webhooks else []

    def wait_webhooks(self, timeout: float = 5.0) -> bool:
        """Wait until queued webhooks are delivered (or given up); False on timeout."""
        return self._webhooks.wait_idle(timeout) if self._webhooks else True

    def count(
        self, method: str | None = None, path_prefix: str = "/video/", status: int | None = None
    ) -> int:
        """How many logged requests match the method, path prefix and status."""
        with self._log_lock:
            return sum(
                1
                for m, p, s in self.request_log
                if (method is None or m == method.upper())
                and p.startswith(path_prefix)
                and (status is None or s == status)
            )

    def method_counts(self, path_prefix: str = "/video/") -> dict[str, int]:
        """How many logged requests under `path_prefix` each HTTP method made (any status)."""
        with self._log_lock:
            counts: dict[str, int] = {}
            for method, path, _ in self.request_log:
                if path.startswith(path_prefix):
                    counts[method] = counts.get(method, 0) + 1
            return counts

    def writing_calls(self, path_prefix: str = "/video/") -> int:
        """How many POST/PUT/DELETE/PATCH requests reached the API under `path_prefix`.

        Every request counts, whatever its answer (401, 429, a dropped connection
        included): a read-only command must show 0. Upload-URL PUTs are not under /video/.
        """
        return sum(n for m, n in self.method_counts(path_prefix).items() if m in WRITING_METHODS)

    def received(self, upload_id: str) -> tuple[int, str]:
        """(bytes committed, hex SHA-256 of them) at an upload's URL."""
        return self._store.received(upload_id)

    def upload_bytes(self, upload_id: str) -> bytes:
        """The committed bytes of an upload; needs `store_dir`."""
        return self._store.upload_bytes(upload_id)

    # ----- hooks for tests -----------------------------------------------------------

    def inject(
        self,
        method: str | None,
        path_prefix: str,
        kind: str,
        *,
        status: int = 503,
        times: int = 1,
        delay: float = 0.0,
        after_bytes: int = 0,
        rate: float = 0.0,
    ) -> None:
        """Add a fault for the next `times` requests matching method (None = any) and path.

        kind "status": answer `status` (Mux's error shape; the 429 shape for 429).
        kind "delay": sleep `delay` seconds, then answer normally.
        kind "hold": wait until `release_held()` (or `clear_faults()`), at most `delay`
        seconds (0: a minute), then answer normally: a request held as long as a test needs.
        kind "cut": an upload PUT reads `after_bytes` of its body, keeps whole 256 KiB
        blocks of them, then the connection closes with no answer; other requests close
        with no answer and are not processed.
        kind "reset": the connection is reset (RST) before anything is read or processed.
        kind "slow": an upload PUT's body is read at `rate` bytes per second (what the
        session holds grows as it arrives), then answered as usual; other requests are not
        affected. With `times` large, every request of an upload crosses a slow link.
        Rules are checked in the order they were added.
        """
        self._faults.add(
            Fault(
                method,
                path_prefix,
                kind,
                status,
                times,
                delay=delay,
                after_bytes=after_bytes,
                rate=rate,
            )
        )

    def clear_faults(self) -> None:
        """Forget every injected fault not yet used; release every held request."""
        self._faults.clear()

    def release_held(self) -> None:
        """Let the requests held by "hold" faults go on (and those still to come)."""
        self._faults.release()

    @property
    def pending_faults(self) -> int:
        """How many injected faults are not used up yet (0 once every one has fired)."""
        return self._faults.pending()

    def _wiring(self) -> Wiring:
        services = Services(
            store=self._store,
            whoami=self.whoami,
            ingest=self._ingestor.start,
            masters=self.master_access,
        )
        return Wiring(
            services=services,
            router=Router(ROUTES),
            faults=self._faults,
            limiter=self._limiter,
            credentials=self._credentials,
            record=self._record,
            base_url=lambda: self._base_url,
            clock=self.now,
        )

    def _record(self, method: str, path: str, status: int) -> None:
        with self._log_lock:
            self.request_log.append((method, path, status))

    def _emit(
        self, event_type: str, object_type: str, object_id: str, data: dict[str, Any]
    ) -> None:
        if self._webhooks is not None:
            event = envelope(event_type, object_type, object_id, data, self._environment)
            self._webhooks.enqueue(event)


def run_emulator(
    host: str,
    port: int,
    ready_after: float = 0.0,
    rate_limit: bool = False,
    *,
    on_started: Callable[[str], None] | None = None,
    **options: Any,
) -> None:
    """Serve until KeyboardInterrupt or SIGTERM, then stop cleanly.

    `on_started(base_url)` is called once the port is listening. `options` are the other
    arguments of `Emulator` (credentials, webhooks, checksum, the environment).
    """
    emulator = Emulator(ready_after=ready_after, rate_limit=rate_limit, **options)
    base_url = emulator.start(host, port)
    previous: Any = None
    in_main = threading.current_thread() is threading.main_thread()

    def _terminate(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    if in_main:
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        if on_started is not None:
            on_started(base_url)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
        if in_main:
            signal.signal(signal.SIGTERM, previous)
