"""Bench helpers: pure, no broker, no timings asserted."""

from __future__ import annotations

import numpy as np

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
