"""The benchmark harness end to end at a tiny size: it runs, and its figures are sane.

No timing is asserted: only that every run processed everything and reported a figure.
"""

from __future__ import annotations

import pytest

from bench import latency, throughput
from bench.common import Context, Size

pytestmark = pytest.mark.slow

TINY = Size(transactions=3_000, accounts=300, latency_rates=(300.0,), latency_seconds=3.0)


def test_throughput_and_latency_smoke():
    with Context(TINY, say=lambda _: None) as ctx:
        result = throughput.run(ctx)
        lat = latency.run(ctx, warmup=0.5)
    assert result["ceiling"]["processed"] == result["source"]["transactions"] == 3_000
    assert result["pipeline"]["processed"] == 3_000
    assert result["ratio"] is not None and result["ratio"] > 0
    assert result["pipeline"]["cpu_us_per_event"] > 0
    (row,) = lat["rates"]
    assert row["scored"] == row["sent"] > 0
    assert row["p50_ms"] is not None and row["p50_ms"] <= row["p99_ms"]
    assert "throughput" in ctx.results and "latency" in ctx.results
    assert "throughput" in throughput.render(result).lower()


def test_peers_and_shared_model_off_smoke():
    """The worker without the shared model, the plain peer and (if installed) the Quix peer."""
    from bench import peer_quix

    with Context(TINY, say=lambda _: None) as ctx:
        result = throughput.run(ctx, runs=("unshared", "peer", "quix"))
    assert result["unshared"]["processed"] == 3_000
    assert result["peer"]["processed"] == 3_000 and result["peer"]["events_per_s"] > 0
    _, why_not = peer_quix.probe(peer_quix.interpreter())
    if why_not is None:
        assert result["quix"]["processed"] == 3_000
    else:
        assert result["quix"]["skipped"] == why_not
    assert "plain confluent-kafka loop" in throughput.render(result)


def test_transports_smoke():
    """The raw client (consume; consume + produce) and the Faust aiokafka passthrough; the
    sinks hold the transactions under their account keys. (confluent:// is left out: it
    waits 45 s for partitions it never gets, docs/performance.md.)"""
    from bench import transports

    with Context(TINY, say=lambda _: None) as ctx:
        result = transports.run(ctx, variants=("raw", "raw+produce", "aiokafka-large"))
    rows = result["variants"]
    assert all(r["processed"] == 3_000 and not r.get("failed") for r in rows.values())
    assert rows["raw+produce"]["sink_check"] == rows["aiokafka-large"]["sink_check"] == "intact"
    assert "Transports" in transports.render(result)


def test_scaleout_on_apache_kafka_smoke():
    from bench import scaleout
    from stream.dev.kafka import kafka_libs
    from stream.errors import BrokerError

    try:
        kafka_libs()
    except BrokerError as exc:
        pytest.skip(str(exc))
    with Context(TINY, say=lambda _: None) as ctx:
        result = scaleout.run(ctx, workers=(1, 2), broker="kafka")
    assert result["broker"].startswith("Apache Kafka")
    for n, run in result["runs"].items():
        # at least once: a rebalance while the second worker joins may score a few twice
        assert sum(run["per_worker_transactions"]) >= 3_000
        assert len(run["per_worker_transactions"]) == int(n)
    assert result["runs"]["1"]["speedup"] == 1.0


def test_rebalance_probe_two_workers_joining_over_a_backlog_score_everything():
    """bench.rebalance's run on Apache Kafka: two workers rebalance while draining 3,000
    transactions; every one is scored (the offset guard reads back what Faust skips)."""
    from bench import rebalance
    from stream.dev.kafka import KafkaCluster, kafka_libs
    from stream.errors import BrokerError

    try:
        kafka_libs()
    except BrokerError as exc:
        pytest.skip(str(exc))
    with KafkaCluster(nodes=1) as cluster, Context(TINY, cluster.bootstrap, say=lambda _: None) as ctx:
        result = rebalance.run(ctx, runs=1)
    (row,) = result["runs"]
    assert row["transactions"] == 3_000
    assert row["never_scored"] == 0, row
    assert row["gap_messages_lost"] == 0
    assert "0 of 1 runs left a transaction unscored" in rebalance.render(result)


def test_backtest_speed_smoke():
    """The evaluate benchmark times a real ``kuntur evaluate`` and its read-only baseline."""
    from bench import evaluate

    result = evaluate.run(Size(transactions=3_000, accounts=300), datasets=("no-such-dataset",))
    (row,) = result["histories"]
    assert row["transactions"] == 3_000
    assert row["stream_tx_per_cpu_s"] > 0 and row["command_tx_per_cpu_s"] > 0
    # reading alone is cheaper than reading and evaluating
    assert row["read_only_tx_per_cpu_s"] > row["command_tx_per_cpu_s"]
    (skipped,) = result["skipped"]
    assert skipped.startswith("no-such-dataset: file absent")
    assert "3,000" in evaluate.render(result)
