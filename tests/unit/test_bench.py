"""Bench helpers: pure, no broker, no timings asserted."""

from __future__ import annotations

import numpy as np
import pytest

from bench.common import Progress, Size, table
from bench.latency import summarise
from bench.profile import analyse
from stream.pipeline.validation import parse_transaction

TX = parse_transaction(
    b'{"transaction_id":"t1","account_id":"a1","amount":12.5,"timestamp":"2026-03-01T10:00:00-05:00",'
    b'"merchant_id":"m-7","channel":"pos","latitude":-12.05,"longitude":-77.04}'
)


def test_progress_rates_interpolate_between_samples():
    p = Progress(expected=1000, samples=[(0.0, 0.0), (1.0, 100.0), (2.0, 500.0), (3.0, 900.0), (4.0, 1000.0)])
    assert p.crossing(300.0) == 1.5
    assert p.rate() == 800.0 / (3.0 - 1.0)
    assert p.overall() == 1000.0 / (4.0 - 1.0)
    assert p.summary()["processed"] == 1000


def test_progress_without_enough_samples_has_no_rate():
    assert Progress(expected=100, samples=[(0.0, 0.0), (1.0, 5.0)]).rate() is None
    assert Progress(expected=100).overall() is None


def test_table_aligns_columns():
    text = table("T", ["name", "n"], [["a", 1234], ["bb", 0.5], ["c", None]])
    lines = text.splitlines()
    assert lines[0] == "T"
    assert "1,234" in text and "0.500" in text and " -" in text
    assert len({len(line) for line in lines[1:]}) == 1


def test_quick_size_is_smaller_than_default():
    quick, default = Size(transactions=20_000), Size()
    assert quick.transactions < default.transactions


def test_latency_summary_skips_warmup_and_reports_quantiles():
    sent = {f"t{i}": 1_000_000 + i * 10 for i in range(1000)}  # one every 10 ms
    scored = {tid: ts + 5 + (i % 10) for i, (tid, ts) in enumerate(sent.items())}
    out = summarise(100.0, 10.0, 1.0, sent, scored, {"buckets": []}, (0.0, 0.0, 0.0))
    assert out["measured"] == 900  # the first second is warm-up
    assert 5.0 <= out["p50_ms"] <= 14.0
    assert out["max_ms"] == 14.0
    assert out["worker_p50_ms"] is None


def test_profile_analysis_reads_pstats(tmp_path):
    import cProfile

    def account_agent() -> float:
        return float(np.sum(np.arange(1000)))

    prof = cProfile.Profile()
    prof.enable()
    for _ in range(5):
        account_agent()
    prof.disable()
    path = tmp_path / "x.prof"
    prof.dump_stats(str(path))
    out = analyse(path, scored=5, top=5)
    assert out["scored"] == 5 and len(out["top_own"]) <= 5
    assert {s["stage"] for s in out["stages"]} >= {"accounts agent", "scoring agent"}


def test_throughput_render_names_every_run_and_the_ratios():
    from bench.throughput import EMPTY, render

    row = {**EMPTY, "events_per_s": 1000.0, "processed": 10, "rss_mib": [100.0], "load_average": (1.0, 1.0, 1.0)}
    result = {
        "source": {"transactions": 10},
        "pipeline": row,
        "peer": {**row, "events_per_s": 2000.0},
        "quix": {**EMPTY, "skipped": "quixstreams not importable"},
        "ratio": None,
        "ratio_worker_peer": 0.5,
    }
    text = render(result)
    assert "kuntur worker" in text and "plain confluent-kafka loop" in text
    assert "ratio worker/peer (goal >= 0.5): 0.5" in text
    assert "Quix Streams peer skipped: quixstreams not importable" in text


def test_transports_and_scaleout_render():
    from bench import scaleout, transports

    variants = {
        "raw": {"label": "raw", "events_per_s": 300_000.0, "vs_raw": 1.0, "load_average": (2.0, 1.0, 1.0)},
        "confluent": {"label": "confluent://", "events_per_s": None, "failed": "not ready after 45s"},
    }
    text = transports.render({"source": {"transactions": 10}, "variants": variants})
    assert "300,000" in text and "not ready after 45s" in text
    run = {
        "events_per_s": 100.0, "events_per_s_10_90": 90.0, "speedup": 1.0, "per_worker_transactions": [5, 5],
        "load_average": (1.5, 1.0, 1.0), "load_average_after": (1.7, 1.0, 1.0),
    }
    text = scaleout.render({"broker": "Apache Kafka", "cores": 2, "source": {"transactions": 10}, "runs": {"2": run}})
    assert "Apache Kafka" in text and "5 / 5" in text


def test_peer_serves_its_count_and_readiness():
    import json
    import urllib.error
    import urllib.request

    from bench.peer import Counter, serve
    from stream.dev.broker import free_port

    counter, port = Counter(), free_port()
    server = serve(counter, port)
    try:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5)
            raise AssertionError("ready before any assignment")
        except urllib.error.HTTPError as err:
            assert err.code == 503
        counter.ready, counter.count = True, 7
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/count", timeout=5) as resp:
            assert json.loads(resp.read())["count"] == 7
    finally:
        server.shutdown()


def test_quix_peer_says_why_it_is_skipped(capsys):
    import sys

    from bench import peer_quix

    version, why_not = peer_quix.probe(sys.executable + "-missing")
    assert version is None and why_not is not None and "cannot run" in why_not
    try:
        import quixstreams  # noqa: F401
    except ImportError:
        assert peer_quix.main(["--web-port", "1", "--state-dir", "/nonexistent"]) == 0
        assert "skipped: quixstreams is not installed" in capsys.readouterr().err


def test_progress_of_a_backlog_drained_between_two_samples_is_a_lower_bound_not_none():
    # nothing at 1.0 s, everything at 1.2 s: at least 3,000 / 0.2 s
    p = Progress(expected=3000, samples=[(0.8, 0.0), (1.0, 0.0), (1.2, 3000.0)])
    assert p.overall() == pytest.approx(15000.0)
