"""End to end on a real Apache Kafka broker with a real worker process and real Kafka clients."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from offline.simulator import SimConfig, generate
from tests.integration.conftest import consume, produce, produce_json, wait_for

pytestmark = pytest.mark.slow

ALERT_FIELDS = {
    "alert_id",
    "transaction_id",
    "account_id",
    "institution_id",
    "event_time",
    "scored_at",
    "score",
    "threshold",
    "model_version",
    "reasons",
    "rules",
    "features",
}


def sim_transactions(n: int, seed: int = 3) -> list[dict]:
    cfg = SimConfig(seed=seed, accounts=300, transactions=n)
    return [e.value for e in generate(cfg) if e.kind == "transaction"]


@pytest.mark.parametrize("settings", [1, 4], indirect=True, ids=["1-partition", "4-partitions"])
def test_simulator_traffic_in_alerts_out(settings, start_worker):
    settings = settings.replace(alert_threshold=0.0, warmup_genuine=0)  # every transaction alerts
    worker = start_worker(settings)
    txs = sim_transactions(1500)
    produce_json(settings, settings.topic_transactions, txs)
    alerts = consume(settings, settings.topic_alerts, lambda a: len(a) >= len(txs), 120, worker)
    assert {a["transaction_id"] for a in alerts} == {t["transaction_id"] for t in txs}
    for alert in alerts[:50]:
        assert ALERT_FIELDS <= alert.keys()
        assert 0.0 <= alert["score"] <= 1.0
        assert alert["model_version"].startswith(settings.model)
        assert isinstance(alert["features"], dict) and "account_tx_count_1h" in alert["features"]
        assert alert["threshold"] == 0.0
    ids = [a["alert_id"] for a in alerts]
    assert len(set(ids)) == len(ids)
    wait_for(lambda: worker.metrics().get("kuntur_transactions_total") == len(txs), 30, "metrics", worker)
    text = worker.metrics_text()
    for name in (
        "kuntur_transactions_total",
        "kuntur_scoring_latency_seconds_bucket",
        "kuntur_alerts_total",
        "kuntur_model_examples_seen",
        "kuntur_state_entities",
        "kuntur_checkpoint_age_seconds",
    ):
        assert name in text


def test_bad_messages_go_to_dlq_while_good_ones_flow(settings, start_worker):
    worker = start_worker(settings)
    good = sim_transactions(200, seed=5)
    bad = [
        (b"k1", b"{not json"),
        (b"k2", b'{"transaction_id": "b2", "account_id": "a", "amount": -1, "timestamp": 1767225600}'),
        (b"k3", b'{"transaction_id": "b3", "account_id": "a", "amount": 5, "timestamp": "soon"}'),
        (b"k4", b'{"account_id": "a", "amount": 5, "timestamp": 1767225600}'),
        (b"k5", b"\xff\xfe binary"),
    ]
    produce(settings, settings.topic_transactions, bad[:3])
    produce_json(settings, settings.topic_transactions, good)
    produce(settings, settings.topic_transactions, bad[3:])
    produce(settings, settings.topic_labels, [(b"a", b'{"transaction_id": "t"}')])
    dlq = consume(settings, settings.topic_dlq, lambda d: len(d) >= 6, 90, worker)
    reasons = sorted(d["error"] for d in dlq)
    assert reasons == sorted(["bad-json", "bad-amount", "bad-timestamp", "missing-field", "bad-json", "missing-field"])
    binary = next(d for d in dlq if d["payload_encoding"] == "base64")
    assert base64.b64decode(binary["payload"]) == b"\xff\xfe binary"
    assert {d["topic"] for d in dlq} == {settings.topic_transactions, settings.topic_labels}
    assert all(d["detail"] and d["offset"] is not None for d in dlq)
    wait_for(lambda: worker.metrics().get("kuntur_transactions_total") == len(good), 60, "good ones scored", worker)
    assert worker.metrics()["dead_letters"] == 6


def test_labels_teach_the_model_and_raise_the_score_of_a_repeated_pattern(settings, start_worker):
    settings = settings.replace(emit_scores=True, label_horizon_s=3600.0)
    worker = start_worker(settings)
    base = 1767225600.0  # 2026-01-01T00:00Z
    rounds = 40

    def tx(i: int, acc: str, amount: float, fraud: bool) -> dict:
        t = base + i * 7200.0
        return {
            "transaction_id": f"{'f' if fraud else 'g'}-{i}",
            "account_id": acc,
            "timestamp": t + (1 if fraud else 0),
            "amount": amount,
            "channel": "online" if fraud else "pos",
            "transaction_type": "transfer" if fraud else "purchase",
            "device_id": f"dev-new-{i}" if fraud else "dev-1",
            "ip_address": f"10.9.{i}.1" if fraud else "10.0.0.1",
            "merchant_id": "m-ok",
        }

    for i in range(rounds):
        genuine = [tx(i * 10 + j, f"acc-{j}", 40.0 + j, False) for j in range(5)]
        fraud = tx(i * 10 + 9, f"acc-{i % 5}", 4800.0, True)
        produce_json(settings, settings.topic_transactions, [*genuine, fraud])
        produce_json(
            settings,
            settings.topic_labels,
            [
                {
                    "transaction_id": fraud["transaction_id"],
                    "account_id": fraud["account_id"],
                    "is_fraud": True,
                    "reported_at": fraud["timestamp"] + 60,
                }
            ],
        )
    scores = consume(settings, settings.topic_scores, lambda s: len(s) >= rounds * 6, 120, worker)
    fraud_scores = [s["score"] for s in sorted(scores, key=lambda s: s["event_time"]) if s["transaction_id"][0] == "f"]
    early, late = sum(fraud_scores[:5]) / 5, sum(fraud_scores[-5:]) / 5
    assert late > early + 0.2, (early, late)
    wait_for(lambda: worker.metrics().get("kuntur_model_examples_seen", 0) >= rounds, 60, "examples seen", worker)
    assert worker.metrics().get("kuntur_genuine_learned_total", 0) > 0  # horizon passed for genuine ones


@pytest.mark.parametrize("seal", [True, False], ids=["seal", "no-seal"])
def test_restart_resumes_with_table_state_without_loss_or_recount(settings, start_worker, seal):
    """``changelog_seal`` is a broker-compatibility switch: Tansu needs it (it under-reports
    a partition's high watermark), Apache Kafka restores exactly without it."""
    if not seal and os.environ.get("TEST_BROKER") == "tansu":
        pytest.skip("Tansu needs the changelog seal (docs/reliability.md, Broker compatibility)")
    settings = settings.replace(alert_threshold=0.0, warmup_genuine=0, changelog_seal=seal)
    base = 1767225600.0
    first = [
        {"transaction_id": f"r-{i}", "account_id": "acc-restart", "timestamp": base + i * 60.0, "amount": 10.0 + i}
        for i in range(30)
    ]
    second = [
        {"transaction_id": f"r-{i}", "account_id": "acc-restart", "timestamp": base + i * 60.0, "amount": 10.0 + i}
        for i in range(30, 40)
    ]
    worker = start_worker(settings)
    produce_json(settings, settings.topic_transactions, first)
    wait_for(lambda: worker.metrics().get("kuntur_transactions_total") == 30, 90, "first batch", worker)
    assert worker.stop() == 0
    assert (Path(settings.data_dir) / "model.ckpt").exists()
    restarted = start_worker(settings)
    # A re-delivered duplicate of an already-counted transaction must not count again.
    produce_json(settings, settings.topic_transactions, [first[-1], *second])
    wait_for(lambda: restarted.metrics().get("kuntur_transactions_total", 0) >= 10, 90, "second batch", restarted)
    alerts = consume(
        settings, settings.topic_alerts, lambda a: len({x["transaction_id"] for x in a}) >= 40, 60, restarted
    )
    last = max(alerts, key=lambda a: a["event_time"])
    assert last["transaction_id"] == "r-39"
    assert last["features"]["account_tx_count_1h"] == 40.0  # 40 tx within one hour, none lost or twice
    assert restarted.metrics()["kuntur_transactions_total"] == 10
    # At-least-once: anything re-delivered after the restart (and the explicit re-send) is a duplicate.
    assert restarted.metrics().get("kuntur_duplicates_total", 0) >= 1


def test_idle_entities_expire_from_state_tables(settings, start_worker):
    settings = settings.replace(state_ttl_s=3600.0, state_sweep_interval_s=1.0)
    worker = start_worker(settings)
    base = 1767225600.0
    produce_json(
        settings,
        settings.topic_transactions,
        [
            {
                "transaction_id": "old",
                "account_id": "acc-idle",
                "timestamp": base,
                "amount": 5.0,
                "merchant_id": "m-idle",
            },
        ],
    )
    wait_for(lambda: worker.metrics().get("kuntur_transactions_total") == 1, 60, "first transaction", worker)
    entities = lambda: {  # noqa: E731
        line.split('"')[1]: float(line.rsplit(" ", 1)[1])
        for line in worker.metrics_text().splitlines()
        if line.startswith("kuntur_state_entities{")
    }
    wait_for(lambda: entities() == {"accounts": 1.0, "merchants": 1.0}, 30, "state held", worker)
    # two hours of event time later another account is active: the idle ones are past their TTL
    produce_json(
        settings,
        settings.topic_transactions,
        [
            {"transaction_id": "new", "account_id": "acc-live", "timestamp": base + 7200, "amount": 5.0},
        ],
    )
    wait_for(lambda: entities() == {"accounts": 1.0, "merchants": 0.0}, 30, "idle entities expired", worker)
