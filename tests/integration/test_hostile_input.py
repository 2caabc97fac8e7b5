"""Hostile input against a real worker on a real broker: everything bad is dead-lettered
with its reason, nothing bad moves time or breaks the worker, Faust's table views are off."""

from __future__ import annotations

import urllib.error
import urllib.request

import orjson
import pytest

from offline.simulator import SimConfig, generate
from tests.integration.conftest import consume, produce, produce_json, wait_for

pytestmark = pytest.mark.slow


def test_poison_timestamps_oversized_messages_and_huge_amounts_are_dead_lettered(settings, start_worker):
    settings = settings.replace(alert_threshold=0.0, warmup_genuine=0)
    worker = start_worker(settings)
    pid = worker.proc.pid
    good = [e.value for e in generate(SimConfig(seed=11, accounts=200, transactions=600)) if e.kind == "transaction"]
    base = {"account_id": "acc-x", "amount": 5.0, "timestamp": "2026-01-01T10:00:00-05:00"}
    hostile = [
        ({**base, "transaction_id": "far-future", "timestamp": "9999-12-31T23:59:59-12:00"}, "bad-timestamp"),
        ({**base, "transaction_id": "next-year", "timestamp": "2099-01-01T00:00:00Z"}, "bad-timestamp"),
        ({**base, "transaction_id": "huge-amount", "amount": 1e308}, "bad-amount"),
        ({**base, "transaction_id": "big", "device_id": "d" * 900_000}, "too-large"),
        ({**base, "transaction_id": "long-id", "merchant_id": "m" * 5000}, "bad-value"),
    ]
    produce_json(settings, settings.topic_transactions, good[:300])
    producer_big = {"message.max.bytes": 2_000_000}
    produce(
        settings,
        settings.topic_transactions,
        [(b"acc-x", orjson.dumps(record)) for record, _ in hostile],
        extra=producer_big,
    )
    produce(settings, settings.topic_transactions, [(b"k" * 100_000, b"{not json")], extra=producer_big)
    produce_json(settings, settings.topic_transactions, good[300:])
    dlq = consume(settings, settings.topic_dlq, lambda d: len(d) >= len(hostile) + 1, 90, worker)
    assert sorted(d["error"] for d in dlq) == sorted([code for _, code in hostile] + ["bad-json"])
    whole = {
        orjson.loads(d["payload"])["transaction_id"]: d["error"]
        for d in dlq
        if not d["payload_truncated"] and d["error"] != "bad-json"  # "{not json" is no JSON to read
    }
    assert whole == {r["transaction_id"]: code for r, code in hostile if r["transaction_id"] != "big"}
    (big,) = [d for d in dlq if d["payload_truncated"]]
    assert big["error"] == "too-large" and big["payload_bytes"] > 900_000 and len(big["payload"]) <= 16 * 1024
    assert all(len(orjson.dumps(d)) < 64 * 1024 for d in dlq)  # no dead letter can exceed the producer limit
    wait_for(lambda: worker.metrics().get("kuntur_transactions_total") == len(good), 90, "good ones scored", worker)
    metrics = worker.metrics()
    assert metrics["dead_letters"] == len(hostile) + 1
    # the poison timestamp moved nothing: no pending transaction was learned as genuine at once
    assert metrics.get("kuntur_genuine_learned_total", 0) == 0
    assert worker.proc.poll() is None and worker.proc.pid == pid


def test_faust_table_and_router_views_are_off_and_institution_labels_are_bounded(settings, start_worker):
    settings = settings.replace(alert_threshold=0.0, warmup_genuine=0, metric_institutions_max=5)
    worker = start_worker(settings)
    txs = [
        {
            "transaction_id": f"inst-{i}",
            "account_id": f"acc-{i}",
            "amount": 10.0,
            "timestamp": 1767225600 + i,
            "institution_id": f"bank-{i}" if i < 20 else "a bank name, not an identifier",
        }
        for i in range(21)
    ]
    produce_json(settings, settings.topic_transactions, txs)
    wait_for(lambda: worker.metrics().get("kuntur_transactions_total") == len(txs), 60, "scored", worker)
    series = [line for line in worker.metrics_text().splitlines() if line.startswith("kuntur_alerts_total{")]
    assert len(series) == 6, series  # five institutions + other
    assert any('institution="other"' in line for line in series)
    for path in ("/table/accounts-v1/acc-1/", "/table/", "/router/", "/graph/"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{worker.base_url}{path}", timeout=5)
        assert err.value.code == 404, path
