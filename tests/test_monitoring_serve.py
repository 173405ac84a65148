"""Monitoring `webhook serve`: Prometheus metrics scraped over HTTP, health checks, JSON logs."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Platform
from prometheus_client.parser import text_string_to_metric_families
from serve_helpers import ServeProcess
from test_webhooks import Served, ready

from vidpipe.db import init_db, make_engine
from vidpipe.emulator import Emulator
from vidpipe.mux import MuxGateway, RetryPolicy
from vidpipe.webhooks import sign
from vidpipe.webhooks.serve import MAX_BODY, create_app
from vidpipe.webhooks.telemetry import (
    EVENT_TYPES,
    OUTCOMES,
    REASONS,
    WebhookMetrics,
    status_class,
    type_label,
)

SECRET = "whsec-monitoring-0123456789"


@pytest.fixture
def serving(platform: Platform) -> Iterator[ServeProcess]:
    platform.add_lessons(range(10, 60))
    server = ServeProcess(platform.url, SECRET, metrics=True)
    try:
        yield server
    finally:
        if server.proc.poll() is None:
            server.stop()


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """`/metrics` over HTTP, parsed with prometheus-client's parser: (sample, labels) -> value."""
    resp = httpx.get(url + "/metrics", timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(resp.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def signed(body: bytes, *, secret: str = SECRET, age: int = 0) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Mux-Signature": sign(secret, body, timestamp=int(time.time()) - age),
    }


def deliver(url: str, body: bytes, headers: dict[str, str]) -> int:
    return httpx.post(url + "/webhooks/mux", content=body, headers=headers, timeout=20).status_code


# -- counts equal what was sent --------------------------------------------------------------


def test_counts_scraped_after_a_mixed_load_equal_what_was_sent(serving: ServeProcess) -> None:
    readies = [
        json.dumps(ready(f"asset-{i}", passthrough=f'{{"lesson_id": {i}}}')).encode()
        for i in range(10, 50)
    ]
    unknown = [
        json.dumps({"type": f"custom.type.{i}", "id": f"evt-u{i}", "data": {"id": "x"}}).encode()
        for i in range(15)
    ]
    sends: list[tuple[bytes, dict[str, str], int]] = []
    sends += [(b, signed(b), 200) for b in readies]
    sends += [(b, signed(b), 200) for b in unknown]
    sends += [(b, signed(b, secret="wrong-secret"), 401) for b in readies[:7]]
    sends += [(b, {"Content-Type": "application/json"}, 400) for b in readies[:3]]
    sends += [(b, signed(b, age=1000), 401) for b in readies[:5]]
    sends += [(b"{not json", signed(b"{not json"), 400)] * 6
    big = b"x" * (MAX_BODY + 1)
    sends += [(big, signed(big), 413)] * 4
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda s: deliver(serving.url, s[0], s[1]), sends))
    assert codes == [s[2] for s in sends]
    # then the redeliveries, once every first delivery is recorded
    with ThreadPoolExecutor(8) as pool:
        dup_codes = list(pool.map(lambda b: deliver(serving.url, b, signed(b)), readies[:10]))
    assert dup_codes == [200] * 10

    m = scrape(serving.metrics_url)
    events = "vidpipe_webhook_events_total"
    assert value(m, events, type="video.asset.ready", outcome="recorded") == 40
    assert value(m, events, type="video.asset.ready", outcome="duplicate") == 10
    assert value(m, events, type="other", outcome="ignored") == 15
    assert sum(v for (name, _), v in m.items() if name == events) == 65
    rejected = {r: value(m, "vidpipe_webhook_rejected_total", reason=r) for r in REASONS}
    assert rejected == {
        "signature": 10,
        "stale": 5,
        "malformed": 6,
        "too_large": 4,
        "overloaded": 0,
        "timeout": 0,
    }
    assert value(m, "vidpipe_webhook_request_seconds_count") == len(sends) + 10
    assert value(m, "vidpipe_webhook_request_seconds_bucket", le="+Inf") == len(sends) + 10
    assert value(m, "vidpipe_webhook_in_progress") == 0
    assert value(m, "vidpipe_database_errors_total") == 0
    assert value(m, "process_resident_memory_bytes") > 0


def test_metrics_are_on_the_metrics_port_only_and_health_checks_on_both(
    serving: ServeProcess,
) -> None:
    assert httpx.get(serving.url + "/metrics", timeout=10).status_code == 404
    before = len(serving.drain())
    for base in (serving.url, serving.metrics_url):
        for _ in range(5):
            assert httpx.get(base + "/healthz", timeout=10).json() == {"ok": True}
            resp = httpx.get(base + "/readyz", timeout=10)
            assert (resp.status_code, resp.json()) == (200, {"ok": True})
    assert httpx.post(serving.metrics_url + "/webhooks/mux", content=b"{}").status_code in (
        404,
        405,
    )
    assert len(serving.drain()) == before  # no log line per probe
    m = scrape(serving.metrics_url)
    assert value(m, "vidpipe_webhook_request_seconds_count") == 0  # probes are not deliveries
    code, err = serving.stop()
    assert code == 0, err


# -- readiness follows the database -----------------------------------------------------------


def take_database_away(platform: Platform, tmp_path: Path) -> tuple[Any, Any]:
    """Make the platform database unreachable; return (put_back, ...)."""
    url = make_engine(platform.url).url
    if url.get_backend_name() == "sqlite":
        path = Path(str(url.database))
        aside = tmp_path / "moved-away.db"
        path.rename(aside)
        return (lambda: aside.rename(path)), path
    import psycopg
    from psycopg import sql

    name = str(url.database)
    conninfo = f"host={url.host} port={url.port} user={url.username} dbname=postgres"

    def admin(statement: Any) -> None:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(statement)

    ident = sql.Identifier(name)
    admin(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(ident))
    admin(
        sql.SQL("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = {}").format(
            sql.Literal(name)
        )
    )
    return (
        lambda: admin(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(ident))
    ), None


def readiness(server: ServeProcess) -> list[int]:
    return [
        httpx.get(base + "/readyz", timeout=15).status_code
        for base in (server.url, server.metrics_url)
    ]


def test_readyz_turns_503_when_the_database_goes_away_and_200_when_it_comes_back(
    serving: ServeProcess, platform: Platform, tmp_path: Path
) -> None:
    assert readiness(serving) == [200, 200]
    platform.engine.dispose()
    put_back, sqlite_path = take_database_away(platform, tmp_path)
    try:
        assert readiness(serving) == [503, 503]
        detail = httpx.get(serving.metrics_url + "/readyz", timeout=15).json()
        assert detail["ok"] is False and detail["error"]
        public = httpx.get(serving.url + "/readyz", timeout=15).json()
        assert public == {"ok": False, "error": "not ready"}  # no database detail in public
        assert httpx.get(serving.url + "/healthz", timeout=10).status_code == 200
        if sqlite_path is not None:
            assert not sqlite_path.exists()  # probing did not create an empty database
    finally:
        put_back()
    assert readiness(serving) == [200, 200]
    body = json.dumps(ready("asset-after", passthrough='{"lesson_id": 11}')).encode()
    assert deliver(serving.url, body, signed(body)) == 200


# -- labels stay bounded ------------------------------------------------------------------------


def test_labels_stay_bounded_under_ten_thousand_distinct_asset_ids(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'platform.db'}")
    init_db(engine)
    metrics = WebhookMetrics()
    asset_ids = [f"hostile-{uuid.uuid4().hex}" for _ in range(10_000)]

    def body(i: int) -> bytes:
        kind = "video.asset.ready" if i % 2 else f"video.asset.{asset_ids[i]}"
        data = {
            "id": asset_ids[i],
            "passthrough": '{"lesson_id": 999999}',
            "status": "ready",
            "playback_ids": [{"id": f"pb-{asset_ids[i]}", "policy": "public"}],
        }
        return json.dumps({"type": kind, "id": asset_ids[i], "data": data}).encode()

    with Served(create_app(engine, SECRET, metrics=metrics, prune_every=None)) as s:

        def send(chunk: range) -> list[int]:
            with httpx.Client(base_url=s.url, timeout=30) as client:
                out = []
                for i in chunk:
                    b = body(i)
                    secret = SECRET if i % 10 else "forged"  # every tenth is forged
                    headers = signed(b, secret=secret)
                    out.append(
                        client.post(
                            f"/webhooks/mux?asset={asset_ids[i]}", content=b, headers=headers
                        ).status_code
                    )
                return out

        with ThreadPoolExecutor(16) as pool:
            codes = [
                c
                for part in pool.map(send, [range(k, 10_000, 16) for k in range(16)])
                for c in part
            ]
    assert codes.count(200) == 9_000 and codes.count(401) == 1_000
    text = metrics.exposition().decode()
    assert not any(a in text for a in asset_ids)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    events = families["vidpipe_webhook_events"].samples
    assert {s.labels["type"] for s in events} <= {*EVENT_TYPES, "other"}
    assert {s.labels["outcome"] for s in events} <= set(OUTCOMES)
    assert len([s for s in events if s.name.endswith("_total")]) == 2  # ready and other
    assert sum(s.value for s in events if s.name.endswith("_total")) == 9_000
    assert {s.labels["reason"] for s in families["vidpipe_webhook_rejected"].samples} == set(
        REASONS
    )
    engine.dispose()


# -- Mux calls, by method and status class -------------------------------------------------------


def test_mux_calls_are_counted_by_method_and_status_class(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'platform.db'}")
    init_db(engine)
    metrics = WebhookMetrics()
    with Emulator(ready_after=0.0) as emu:
        gateway = MuxGateway(
            emu.base_url,
            "id",
            "secret",
            pace=False,
            retry=RetryPolicy(attempts=1, initial=0.001, maximum=0.001, jitter=0.0),
        )
        app = create_app(engine, SECRET, gateway_factory=lambda: gateway, metrics=metrics)
        with Served(app) as s:
            for i in range(3):  # Mux has no such asset: one GET answered 404 each
                body = json.dumps(ready(f"gone-{i}")).encode()
                assert deliver(s.url, body, signed(body)) == 200
        gateway.close()
    text = metrics.exposition().decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }
    assert samples[("vidpipe_mux_requests_total", (("method", "GET"), ("status", "4xx")))] == 3
    assert "gone-" not in text


@pytest.mark.parametrize(
    ("status", "label"),
    [
        (200, "2xx"),
        (201, "2xx"),
        (308, "3xx"),
        (404, "4xx"),
        (429, "429"),
        (503, "5xx"),
        (None, "error"),
        (0, "error"),
        (999, "error"),
    ],
)
def test_status_classes_are_a_closed_set(status: int | None, label: str) -> None:
    assert status_class(status) == label


def test_unknown_event_types_count_as_other() -> None:
    assert type_label("video.asset.ready") == "video.asset.ready"
    assert type_label("video.asset.ready\n") == "other"
    assert type_label({"type": 1}) == "other"


# -- JSON log lines -------------------------------------------------------------------------------


def test_json_log_lines_parse_and_escape_control_characters(platform: Platform) -> None:
    platform.add_lessons(range(10, 12))
    server = ServeProcess(platform.url, SECRET, log_format="json", metrics=True)
    try:
        hostile_id = 'evt\n{"level": "forged"}\x1b[31m\u2028' + "z" * 3000
        event = ready("asset-j", passthrough='{"lesson_id": 10}')
        event["id"] = hostile_id
        body = json.dumps(event).encode()
        assert deliver(server.url, body, signed(body)) == 200
        forged = json.dumps({"type": "x\r\ny", "id": "e"}).encode()
        assert deliver(server.url, forged, signed(forged, secret="nope")) == 401
        code, err = server.stop()
        assert code == 0, err
        assert server.proc.stdout is not None
        lines = server.drain(0)
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "message"} <= r.keys() for r in records)
    assert all(r["time"].endswith("Z") for r in records)
    handled = [r for r in records if r.get("outcome") == "recorded"]
    assert len(handled) == 1
    rec = handled[0]
    assert rec["type"] == "video.asset.ready" and rec["asset"] == "asset-j"
    assert rec["status"] == 200 and rec["level"] == "info" and rec["duration"] >= 0
    assert rec["event_id"].startswith('evt\\n{"level": "forged"}\\x1b[31m\\u2028')
    assert len(rec["event_id"]) <= 1000 and len(rec["message"]) <= 1000
    for r in records:
        for field in r.values():
            if isinstance(field, str):
                assert field.isprintable(), field
    refused = [r for r in records if r.get("status") == 401]
    assert len(refused) == 1 and refused[0]["level"] == "warning"
    assert any("stopped (SIGTERM)" in r["message"] for r in records)


# -- overload, time-outs and database errors are counted -----------------------------------------


def exposition_samples(metrics: WebhookMetrics) -> dict[Any, float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(metrics.exposition().decode())
        for s in f.samples
    }


def test_overload_and_handler_timeouts_are_counted_as_such(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'platform.db'}")
    init_db(engine)
    gate = threading.Event()
    entered = threading.Semaphore(0)

    class BlockingGateway:
        def find_asset(self, asset_id: str) -> Any:
            entered.release()
            gate.wait(10)
            return None

    metrics = WebhookMetrics()
    app = create_app(
        engine,
        SECRET,
        gateway_factory=lambda: BlockingGateway(),  # type: ignore[arg-type,return-value]
        max_in_progress=1,
        handler_timeout=1.0,
        metrics=metrics,
    )
    body = json.dumps(ready("slow")).encode()
    with Served(app) as s, ThreadPoolExecutor(1) as pool:
        first = pool.submit(deliver, s.url, body, signed(body))
        assert entered.acquire(timeout=10)
        assert value(exposition_samples(metrics), "vidpipe_webhook_in_progress") == 1
        assert deliver(s.url, body, signed(body)) == 503  # the one slot is taken
        assert first.result(timeout=10) == 503  # not handled within 1 s
        gate.set()
    m = exposition_samples(metrics)
    assert value(m, "vidpipe_webhook_rejected_total", reason="overloaded") == 1
    assert value(m, "vidpipe_webhook_rejected_total", reason="timeout") == 1
    assert value(m, "vidpipe_webhook_request_seconds_count") == 2
    assert value(m, "vidpipe_webhook_in_progress") == 0
    engine.dispose()


def test_database_errors_are_counted_and_the_delivery_is_an_error(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'no-tables.db'}")  # vidpipe's tables missing
    metrics = WebhookMetrics()
    body = json.dumps(ready("asset-x")).encode()
    with Served(create_app(engine, SECRET, metrics=metrics, prune_every=None)) as s:
        assert deliver(s.url, body, signed(body)) == 503  # Mux retries later
    m = exposition_samples(metrics)
    assert value(m, "vidpipe_database_errors_total") == 1
    assert value(m, "vidpipe_webhook_events_total", type="video.asset.ready", outcome="error") == 1
    engine.dispose()
