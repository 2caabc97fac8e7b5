"""Reading a worker's Prometheus /metrics: the few series the demo, the bench and the tests watch."""

from __future__ import annotations

import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["histogram_quantile", "scrape"]


def scrape(url: str) -> dict[str, Any]:
    """Counters, gauges and latency buckets from a worker's /metrics (empty dict if down)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback URL we built
            text = resp.read().decode()
    except OSError:
        return {}
    out: dict[str, Any] = {
        "buckets": [], "labels": 0.0, "dead_letters": 0.0, "alerts": 0.0, "gaps_repaired": 0.0, "gaps_lost": 0.0,
    }
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name, value = sample.name, sample.value
            if name == "kuntur_scoring_latency_seconds_bucket":
                out["buckets"].append((float(sample.labels["le"]), value))
            elif name == "kuntur_labels_total":
                out["labels"] += value
            elif name == "kuntur_dead_letters_total":
                out["dead_letters"] += value
            elif name == "kuntur_alerts_total":
                out["alerts"] += value
            elif name == "kuntur_input_gap_messages_total":
                out["gaps_repaired" if sample.labels["outcome"] == "repaired" else "gaps_lost"] += value
            elif name == "kuntur_model_info":
                out["model_version"] = sample.labels["version"]
            elif not sample.labels:
                out[name] = value
    return out


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Prometheus' histogram_quantile on cumulative buckets (le, count): linear within a bucket.

    >>> histogram_quantile(0.5, [(0.01, 50.0), (0.1, 100.0), (float("inf"), 100.0)])
    0.01
    """
    buckets = sorted(buckets)
    if not buckets or buckets[-1][1] == 0:
        return None
    rank = q * buckets[-1][1]
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if le == float("inf"):
                return prev_le
            width = count - prev_count
            return prev_le + (le - prev_le) * ((rank - prev_count) / width if width else 0.0)
        prev_le, prev_count = le, count
    return prev_le
