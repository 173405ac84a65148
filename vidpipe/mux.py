"""The Mux gateway: the only module that imports mux_python.

It builds the client from settings, turns off mux-python's client-side enum validation (it
raises on values Mux adds later), sets timeouts, paces requests under Mux's documented rate
limits (POST 1/s, everything else 5/s), retries what is worth retrying (429, 5xx, network)
with one tenacity policy, and maps every failure to vidpipe's own exceptions. Responses are
parsed from the raw JSON into small typed records, so unexpected fields or enum values never
crash vidpipe.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Self

import httpx
import mux_python
import urllib3
from mux_python import exceptions as mux_exc
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from vidpipe.asset_parts import (
    StaticRendition,
    Track,
    parse_meta,
    parse_mp4_support,
    parse_renditions,
    parse_tracks,
)
from vidpipe.assets import AssetSettings, caption_name
from vidpipe.errors import (
    MuxBadRequest,
    MuxError,
    MuxNetworkError,
    MuxNotFound,
    MuxRateLimited,
    MuxServerError,
    MuxUnauthorized,
)
from vidpipe.mux_tracks import TrackCalls
from vidpipe.progress import ApiCall, OnProgress, Waiting, ignore
from vidpipe.text import shown

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0
LIST_LIMIT = 100  # Mux's maximum page size
WHOAMI_PATH = "/system/v1/whoami"


@dataclass(frozen=True)
class Environment:
    """A Mux environment, as `GET /system/v1/whoami` names the token's one."""

    id: str
    name: str

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    def as_json(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name}


@dataclass(frozen=True)
class PlaybackId:
    id: str
    policy: str


@dataclass(frozen=True)
class Asset:
    """The parts of a Mux asset vidpipe uses."""

    id: str
    status: str
    playback_ids: tuple[PlaybackId, ...] = ()
    passthrough: str | None = None
    created_at: int | None = None
    upload_id: str | None = None
    duration: float | None = None
    error: str | None = None
    tracks: tuple[Track, ...] = ()
    static_renditions: tuple[StaticRendition, ...] = ()
    mp4_support: str | None = None
    """The legacy MP4 setting when it gives files (None: `none`)."""
    meta: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    @property
    def public_playback_id(self) -> str | None:
        return self.playback_id_for("public")

    def playback_id_for(self, policy: str, *, fallback: bool = False) -> str | None:
        """The asset's (first) playback ID of `policy`. With `fallback`, when it has none of
        that policy, its first playback ID of any policy (None only when it has none)."""
        for pid in self.playback_ids:
            if pid.policy == policy:
                return pid.id
        if fallback and self.playback_ids:
            return self.playback_ids[0].id
        return None

    def policy_of(self, playback_id: str) -> str | None:
        """The policy of one of the asset's playback IDs (None: not one of its IDs)."""
        for pid in self.playback_ids:
            if pid.id == playback_id:
                return pid.policy
        return None

    def has_playback_id(self, playback_id: str) -> bool:
        return any(p.id == playback_id for p in self.playback_ids)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Asset:
        errors = data.get("errors") or {}
        error = None
        if errors:
            msgs = errors.get("messages") or []
            error = "; ".join(str(m) for m in msgs) or str(errors.get("type") or "errored")
        created = data.get("created_at")
        try:
            created_at = int(created) if created is not None else None
        except (TypeError, ValueError, OverflowError):  # garbage, or an infinite float
            created_at = None
        return cls(
            id=str(data["id"]),
            status=str(data.get("status") or "unknown"),
            playback_ids=tuple(
                PlaybackId(str(p.get("id")), str(p.get("policy")))
                for p in data.get("playback_ids") or []
                if isinstance(p, dict) and p.get("id")
            ),
            passthrough=data.get("passthrough"),
            created_at=created_at,
            upload_id=data.get("upload_id"),
            duration=data.get("duration"),
            error=error,
            tracks=parse_tracks(data),
            static_renditions=parse_renditions(data),
            mp4_support=parse_mp4_support(data),
            meta=parse_meta(data),
        )


@dataclass(frozen=True)
class Upload:
    """The parts of a Mux direct upload vidpipe uses."""

    id: str
    status: str
    url: str | None = field(default=None, repr=False)  # a bearer credential: never shown
    asset_id: str | None = None
    error: str | None = None
    passthrough: str | None = None
    timeout: int | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Upload:
        err = data.get("error") or {}
        error = None
        if err:
            error = str(err.get("message") or err.get("type") or "errored")
        settings = data.get("new_asset_settings") or {}
        return cls(
            id=str(data["id"]),
            status=str(data.get("status") or "unknown"),
            url=data.get("url"),
            asset_id=data.get("asset_id"),
            error=error,
            passthrough=settings.get("passthrough"),
            timeout=data.get("timeout"),
        )


class Pacer:
    """Spaces requests so a run stays under a sustained rate (requests per second), letting
    up to `burst` requests through at once after a pause (Mux allows short bursts): the
    generic cell rate algorithm, so the long-run rate never exceeds `rate`.

    Thread-safe: every thread of a process that shares one gateway draws on one pacer, so
    parallel workers together stay under the rate. `hold_until` pushes the next slot back
    when the server says the budget is spent (`X-RateLimit-Remaining: 0`), which is how
    other clients of the same environment (another process, the cron sync) are accounted for.
    """

    def __init__(
        self, rate: float, clock: Callable[[], float] = time.monotonic, *, burst: int = 1
    ) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.burst = max(1, burst)
        self._tat = 0.0  # the theoretical arrival time of the next request
        self._lock = threading.Lock()
        self._clock = clock

    def wait(self, sleep: Callable[[float], None]) -> None:
        with self._lock:
            now = self._clock()
            self._tat = max(self._tat, now) + self.interval
            delay = self._tat - now - self.burst * self.interval
        if delay > 0:
            sleep(delay)

    def hold_until(self, at: float) -> None:
        """No request before the monotonic time `at` (then the sustained rate again)."""
        with self._lock:
            self._tat = max(self._tat, at + (self.burst - 1) * self.interval)


@dataclass
class RetryPolicy:
    """How the gateway retries 429, 5xx and network failures."""

    attempts: int = 6
    initial: float = 1.0
    maximum: float = 20.0
    jitter: float = 1.0
    sleep: Callable[[float], None] = time.sleep
    rate_limit_patience: float = 0.0
    """Seconds a call keeps retrying 429s beyond `attempts` (0: 429s count as attempts).
    A batch sets it: when several processes share the environment's budget, a 429 is a
    reason to wait, never to fail an item."""


@dataclass
class Stats:
    """Counters a run reports (and benchmarks read)."""

    calls: int = 0
    retries: int = 0
    rate_limited: int = 0


RequestObserver = Callable[[str, int | None], None]
"""Told of every request the gateway sent: its HTTP method and Mux's status (None when no
answer came). Monitoring hooks in here; the gateway knows nothing of how it is counted."""

_RETRYABLE = (MuxRateLimited, MuxServerError, MuxNetworkError)
RESET_CAP = 60.0  # at most this long a `X-RateLimit-Reset` holds requests back


class MuxClient:
    """The plumbing every call of the gateway goes through: mux-python's client under its
    own configuration, an httpx client for the endpoints mux-python lacks, the pacers, the
    retry policy, the counters and the progress listener. `MuxGateway` adds the typed
    endpoints."""

    def __init__(
        self,
        base_url: str,
        token_id: str,
        token_secret: str,
        *,
        pace: bool = True,
        post_rate: float = 1.0,
        other_rate: float = 5.0,
        retry: RetryPolicy | None = None,
        timeout: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT),
        http: httpx.Client | None = None,
    ) -> None:
        """`http`: an httpx client to share for the endpoints mux-python lacks (the caller
        keeps owning it); without one the gateway makes its own on first use."""
        cfg = mux_python.Configuration()
        cfg.host = base_url.rstrip("/")
        cfg.username = token_id
        cfg.password = token_secret
        # mux-python raises ValueError on enum values it does not know (Mux adds them).
        cfg.client_side_validation = False
        # Retries are ours (one policy, below); urllib3's own would hide failures and repeat POSTs.
        cfg.retries = False
        # This gateway's own configuration: nothing process-wide is changed.
        self._cfg = cfg
        self._client = mux_python.ApiClient(cfg)
        self._client.user_agent = "vidpipe (mux-python)"
        self._uploads = mux_python.DirectUploadsApi(self._client)
        self._assets = mux_python.AssetsApi(self._client)
        self._timeout = timeout
        self._auth = (token_id, token_secret)
        self._http: httpx.Client | None = http
        self._owns_http = http is None
        self.retry = retry or RetryPolicy()
        self.stats = Stats()
        self._stats_lock = threading.Lock()
        self.on_progress: OnProgress = ignore
        """Told of every request (`ApiCall`) and every wait (`Waiting`); a caller that wants
        its own listener for one walk takes a view (`using`)."""
        self.on_request: RequestObserver | None = None
        """Told of every request's method and status (e.g. a metrics counter); optional."""
        self._pacers = {
            "POST": Pacer(post_rate if pace else 0),
            # A burst of 2: the environment check and the first real request go out together.
            "OTHER": Pacer(other_rate if pace else 0, burst=2),
        }

    def using(
        self, *, retry: RetryPolicy | None = None, on_progress: OnProgress | None = None
    ) -> Self:
        """This gateway for one call of its user: the same connections, pacers and counters,
        with that call's own retry policy and progress listener. The gateway itself is left
        as it is, so threads sharing it never see each other's choices. The view is not
        closed (its gateway is)."""
        view = copy.copy(self)
        view._owns_http = False
        if retry is not None:
            view.retry = retry
        if on_progress is not None:
            view.on_progress = on_progress
        return view

    def close(self) -> None:
        try:
            self._client.close()
            if self._http is not None and self._owns_http:
                self._http.close()
                self._http = None
        except Exception:  # closing must not mask the real outcome
            pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -----------------------------------------------------------------------

    def _call(
        self,
        verb: str,
        what: str,
        fn: Callable[..., Any],
        *args: Any,
        retry_lost: bool = True,
        **kwargs: Any,
    ) -> Any:
        """Call Mux under the pacer and the retry policy. `retry_lost=False`: retry only
        429s (Mux did nothing), never a failure whose request may have been carried out."""
        return self._retrying(self._once, verb, what, fn, *args, retry_lost=retry_lost, **kwargs)

    def _retrying(
        self, attempt: Callable[..., Any], *args: Any, retry_lost: bool = True, **kwargs: Any
    ) -> Any:
        """`attempt(*args, **kwargs)` under the one retry policy (429, 5xx, network)."""
        policy = self.retry

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            retry_after = getattr(exc, "retry_after", None)
            if retry_after is not None:
                return float(retry_after)
            return wait_exponential_jitter(
                multiplier=policy.initial, max=policy.maximum, jitter=policy.jitter
            )(state)

        def before_sleep(state: RetryCallState) -> None:
            with self._stats_lock:
                self.stats.retries += 1
            exc = state.outcome.exception() if state.outcome else None
            seconds = state.next_action.sleep if state.next_action else 0.0
            limited = isinstance(exc, MuxRateLimited)
            self.on_progress(Waiting(seconds, retry=True, rate_limited=limited))

        attempts = stop_after_attempt(max(1, policy.attempts))

        def stop(state: RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, MuxRateLimited) and policy.rate_limit_patience > 0:
                return (state.seconds_since_start or 0.0) >= policy.rate_limit_patience
            return attempts(state)

        retrying = Retrying(
            stop=stop,
            wait=wait,
            retry=retry_if_exception_type(_RETRYABLE if retry_lost else (MuxRateLimited,)),
            sleep=policy.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        return retrying(attempt, *args, **kwargs)

    def _once(self, verb: str, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        pacer = self._before_request(verb)
        status: int | None = None
        try:
            resp = fn(*args, _preload_content=False, _request_timeout=self._timeout, **kwargs)
            status = resp.status
            try:
                raw = resp.data
                self._note_budget(pacer, resp.headers)
            finally:
                resp.release_conn()
        except mux_exc.ApiException as exc:
            status = int(exc.status or 0) or None
            self._note_budget(pacer, exc.headers)
            raise self._map(exc, what) from None
        except urllib3.exceptions.HTTPError as exc:
            raise MuxNetworkError(f"could not reach Mux to {what}: {type(exc).__name__}") from None
        except OSError as exc:
            raise MuxNetworkError(f"could not reach Mux to {what}: {exc.strerror or exc}") from None
        finally:
            self._after_request(verb, status)
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            raise MuxServerError(f"Mux sent a response that is not JSON to {what}") from None

    def _note_budget(self, pacer: Pacer, headers: Any) -> None:
        """`X-RateLimit-Remaining: 0` holds this kind of request back until
        `X-RateLimit-Reset` (Unix seconds) says a request is allowed again: the budget is the
        environment's, shared with every other client, so the server's count beats this
        process's own pacing. A paced gateway counts one request's token, not a full bucket."""
        if not headers:
            return
        try:
            remaining = headers.get("X-RateLimit-Remaining")
            reset = headers.get("X-RateLimit-Reset")
            limit = headers.get("X-RateLimit-Limit") or 1
        except AttributeError:
            return
        if remaining is None or reset is None:
            return
        try:
            if int(remaining) > 0:
                return
            wait = float(reset) - time.time()
            if pacer.interval > 0:
                # Reset is when the whole bucket is full again, in whole seconds rounded up:
                # one request needs one token, (limit - 1) intervals sooner, and the true time
                # may be up to a second earlier. The pacer adds its own spacing on top; holding
                # to the rounded full-bucket time would idle up to 2 s after every POST.
                wait -= (max(int(limit), 1) - 1) * pacer.interval + 1.0
            wait = min(max(wait, 0.0), RESET_CAP)
        except ValueError:
            return
        if wait > 0:
            pacer.hold_until(time.monotonic() + wait)

    def _before_request(self, verb: str) -> Pacer:
        """Every request, whichever client sends it: wait for its pacer, then count it.
        Returns the pacer, which the answer's rate-limit headers then update."""
        pacer = self._pacers["POST" if verb == "POST" else "OTHER"]
        pacer.wait(self._paced_sleep)
        with self._stats_lock:
            self.stats.calls += 1
            calls = self.stats.calls
        self.on_progress(ApiCall(calls))
        return pacer

    def _after_request(self, verb: str, status: int | None) -> None:
        if self.on_request is not None:
            self.on_request(verb, status)

    def _http_response(self, verb: str, what: str, path: str) -> httpx.Response:
        """One request with httpx, for endpoints mux-python lacks: paced and mapped as
        `_once` is; a 200 answer as it came."""
        pacer = self._before_request(verb)
        if self._http is None:
            self._http = httpx.Client(follow_redirects=False)
        connect, read = self._timeout
        try:
            resp = self._http.request(
                verb,
                self._cfg.host + path,
                auth=self._auth,
                timeout=httpx.Timeout(read, connect=connect),
                headers={"User-Agent": "vidpipe (httpx)"},
                follow_redirects=False,
            )
        except httpx.HTTPError as exc:
            self._after_request(verb, None)
            raise MuxNetworkError(f"could not reach Mux to {what}: {type(exc).__name__}") from None
        self._after_request(verb, resp.status_code)
        self._note_budget(pacer, resp.headers)
        if resp.status_code != 200:
            raise self._map_status(resp.status_code, resp.content, resp.headers, what)
        return resp

    def _paced_sleep(self, seconds: float) -> None:
        self.on_progress(Waiting(seconds))
        self.retry.sleep(seconds)

    def _map(self, exc: mux_exc.ApiException, what: str) -> MuxError:
        return self._map_status(int(exc.status or 0), exc.body, exc.headers, what)

    def _map_status(self, status: int, body: Any, headers: Any, what: str) -> MuxError:
        detail = _error_detail(body)
        suffix = f": {detail}" if detail else ""
        # A 403 from cancel means "no longer waiting", not refused credentials.
        if status == 401 or (status == 403 and what != "cancel upload"):
            return MuxUnauthorized(
                f"Mux refused the credentials ({status}) to {what}", status=status
            )
        if status == 404:
            return MuxNotFound(f"Mux has no such resource ({what}){suffix}", status=status)
        if status == 429:
            with self._stats_lock:
                self.stats.rate_limited += 1
            err = MuxRateLimited(
                f"Mux kept rate-limiting vidpipe (429) to {what}; try again later", status=status
            )
            err.retry_after = _retry_after(headers)
            return err
        if status == 408 or 500 <= status <= 599:
            return MuxServerError(f"Mux failed ({status}) to {what}{suffix}", status=status)
        if status == 0:
            return MuxNetworkError(f"could not reach Mux to {what}", status=None)
        return MuxBadRequest(
            f"Mux rejected the request ({status}) to {what}{suffix}", status=status
        )


class MuxGateway(MuxClient, TrackCalls):
    """Typed access to the parts of the Mux Video API vidpipe uses."""

    @classmethod
    def from_settings(cls, settings: Any, **kwargs: Any) -> MuxGateway:
        token_id, token_secret = settings.mux_credentials()
        return cls(settings.mux_base_url, token_id, token_secret, **kwargs)

    # -- the token's environment --------------------------------------------------------

    def whoami(self) -> Environment:
        """The Mux environment the token belongs to (`GET /system/v1/whoami`; mux-python has
        no method for it, so httpx asks). Paced, retried and mapped like every other call."""
        return self.whoami_dated()[0]

    def whoami_dated(self) -> tuple[Environment, str | None]:
        """`whoami`, and the `Date` header of Mux's answer (None when it sent none): the
        clock of Mux's side, for comparing with this machine's."""
        what = "ask which environment the token belongs to"
        resp = self._retrying(self._http_response, "GET", what, WHOAMI_PATH)
        data = _json_of(resp, what)
        body = data.get("data") if isinstance(data, dict) else None
        env_id = body.get("environment_id") if isinstance(body, dict) else None
        if not isinstance(env_id, str) or not env_id:
            raise MuxServerError(f"Mux sent no environment ID to {what}")
        name = body.get("environment_name") if isinstance(body, dict) else None
        return Environment(env_id, str(name) if name else env_id), resp.headers.get("Date")

    # -- direct uploads -----------------------------------------------------------------

    def create_upload(
        self,
        passthrough: str,
        *,
        settings: AssetSettings | None = None,
        meta: dict[str, str] | None = None,
        timeout: int = 3600,
        cors_origin: str = "*",
        test: bool = False,
    ) -> Upload:
        """A direct upload whose asset gets `settings` (public with Mux's defaults when None),
        `passthrough` and `meta` ({title, external_id, creator_id}). `settings.test` (or
        `test`) makes a Mux test asset."""
        settings = settings or AssetSettings()
        request = mux_python.CreateUploadRequest(
            new_asset_settings=self.asset_request(settings, passthrough=passthrough, meta=meta),
            cors_origin=cors_origin,
            timeout=timeout,
            test=(test or settings.test) or None,
            local_vars_configuration=self._cfg,
        )
        data = self._call("POST", "create upload", self._uploads.create_direct_upload, request)
        return Upload.from_json(data["data"])

    def list_uploads(self, page: int = 1) -> list[Upload]:
        """One page (Mux's maximum size) of direct uploads; an empty page ends the list."""
        data = self._call(
            "GET",
            "list uploads",
            self._uploads.list_direct_uploads,
            limit=LIST_LIMIT,
            page=page,
        )
        return [Upload.from_json(item) for item in data.get("data") or []]

    def get_upload(self, upload_id: str) -> Upload:
        data = self._call("GET", "get upload", self._uploads.get_direct_upload, upload_id)
        return Upload.from_json(data["data"])

    def cancel_upload(self, upload_id: str) -> None:
        self._call("PUT", "cancel upload", self._uploads.cancel_direct_upload, upload_id)

    def asset_request(
        self,
        settings: AssetSettings,
        *,
        passthrough: str,
        meta: dict[str, str] | None = None,
        url: str | None = None,
    ) -> Any:
        """`settings` as Mux's create-asset request (the `new_asset_settings` of a direct
        upload; with `url`, the body that makes Mux fetch the video from there). Unset
        settings are left out, so Mux's defaults apply."""
        cfg = self._cfg
        subtitles = [
            mux_python.AssetGeneratedSubtitleSettings(
                language_code=code, name=caption_name(code), local_vars_configuration=cfg
            )
            for code in settings.captions
        ]
        inputs = None
        if url is not None or subtitles:
            inputs = [
                mux_python.InputSettings(
                    url=url, generated_subtitles=subtitles or None, local_vars_configuration=cfg
                )
            ]
        renditions = [
            mux_python.CreateStaticRenditionRequest(resolution=r, local_vars_configuration=cfg)
            for r in settings.static_renditions
        ]
        return mux_python.CreateAssetRequest(
            inputs=inputs,
            playback_policies=[settings.playback_policy],
            passthrough=passthrough,
            video_quality=settings.video_quality,
            max_resolution_tier=settings.max_resolution,
            normalize_audio=settings.normalize_audio or None,
            static_renditions=renditions or None,
            test=settings.test or None,
            meta=mux_python.AssetMetadata(**meta, local_vars_configuration=cfg) if meta else None,
            local_vars_configuration=cfg,
        )

    # -- assets -------------------------------------------------------------------------

    def get_asset(self, asset_id: str) -> Asset:
        data = self._call("GET", "get asset", self._assets.get_asset, asset_id)
        return Asset.from_json(data["data"])

    def create_asset_from_url(
        self,
        url: str,
        passthrough: str,
        *,
        settings: AssetSettings | None = None,
        meta: dict[str, str] | None = None,
    ) -> Asset:
        """Have Mux ingest the video at `url` (it fetches it itself) with `settings`,
        `passthrough` and `meta`; returns the new asset, `preparing`.

        Never repeated after an answer that may have been lost (a timeout, a dropped
        connection, a 5xx): Mux has no idempotency key, and a second request would make a
        second asset. Only a 429 (Mux did nothing) is retried; the caller looks for the asset
        among the newest ones before it asks again (see `list_assets_page`).
        """
        request = self.asset_request(
            settings or AssetSettings(), passthrough=passthrough, meta=meta, url=url
        )
        data = self._call(
            "POST", "create asset", self._assets.create_asset, request, retry_lost=False
        )
        return Asset.from_json(data["data"])

    def list_assets_page(self, cursor: str | None = None) -> tuple[list[Asset], str | None]:
        """One page of assets (Mux's maximum size, 100) and the cursor of the next (or None).

        One call learns the state of up to 100 assets: a batch polls these pages instead of
        asking for its assets one by one.
        """
        kwargs: dict[str, Any] = {"limit": LIST_LIMIT}
        if cursor:
            kwargs["cursor"] = cursor
        data = self._call("GET", "list assets", self._assets.list_assets, **kwargs)
        page = [Asset.from_json(item) for item in data.get("data") or []]
        next_cursor = data.get("next_cursor") if page else None
        return page, next_cursor or None

    def find_asset(self, asset_id: str) -> Asset | None:
        """The asset, or None on a definite 404. Anything else short of an answer raises."""
        try:
            return self.get_asset(asset_id)
        except MuxNotFound:
            return None

    def delete_asset(self, asset_id: str) -> bool:
        """Delete; True if Mux deleted it, False if it was already gone (404)."""
        try:
            self._call("DELETE", "delete asset", self._assets.delete_asset, asset_id)
        except MuxNotFound:
            return False
        return True

    def create_playback_id(self, asset_id: str, policy: str) -> PlaybackId:
        """Give the asset a new playback ID of `policy` (a Mux write)."""
        request = mux_python.CreatePlaybackIDRequest(
            policy=policy, local_vars_configuration=self._cfg
        )
        data = self._call(
            "POST",
            "create playback ID",
            self._assets.create_asset_playback_id,
            asset_id,
            request,
        )
        item = data.get("data") or {}
        if not item.get("id"):
            raise MuxServerError("Mux created a playback ID but did not say which")
        return PlaybackId(str(item["id"]), str(item.get("policy") or policy))

    def delete_playback_id(self, asset_id: str, playback_id: str) -> bool:
        """Delete one of the asset's playback IDs; False when it was already gone (404)."""
        try:
            self._call(
                "DELETE",
                "delete playback ID",
                self._assets.delete_asset_playback_id,
                asset_id,
                playback_id,
            )
        except MuxNotFound:
            return False
        return True

    def iter_assets(self, *, upload_id: str | None = None) -> Iterator[Asset]:
        """Every asset, walking `next_cursor` at Mux's maximum page size until it is null."""
        cursor: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": LIST_LIMIT}
            if cursor:
                kwargs["cursor"] = cursor
            if upload_id:
                kwargs["upload_id"] = upload_id
            data = self._call("GET", "list assets", self._assets.list_assets, **kwargs)
            page = data.get("data") or []
            for item in page:
                yield Asset.from_json(item)
            cursor = data.get("next_cursor")
            if not cursor or not page:
                return


def _json_of(resp: httpx.Response, what: str) -> Any:
    try:
        return resp.json()
    except ValueError:
        raise MuxServerError(f"Mux sent a response that is not JSON to {what}") from None


def _error_detail(body: Any) -> str:
    """Mux's own words from an error body (either of its two shapes), on one line."""
    if not body:
        return ""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        data = json.loads(body)
    except (TypeError, ValueError):
        return ""
    msgs: list[str] = []
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict):
            msgs = [str(m) for m in err.get("messages") or []] or [str(err.get("type", ""))]
        elif isinstance(data.get("errors"), list):
            msgs = [str(m) for m in data["errors"]]
    # Mux's words go into vidpipe's messages: written as text (no control characters).
    return shown(" ".join(" ".join(msgs).split()))[:300]


def _retry_after(headers: Any) -> float | None:
    if not headers:
        return None
    value = None
    try:
        value = headers.get("Retry-After") or headers.get("retry-after")
    except AttributeError:
        return None
    if value is None:
        return None
    try:
        return max(0.0, min(float(value), 120.0))
    except ValueError:
        return None
