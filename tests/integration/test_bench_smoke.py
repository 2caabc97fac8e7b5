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
