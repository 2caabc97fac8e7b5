"""The per-partition consumer lag gauge (``kuntur_consumer_lag_messages``)."""

from __future__ import annotations

import doctest

from faust.types import TP
from prometheus_client.parser import text_string_to_metric_families

import stream.worker
from stream.metrics import Metrics
from stream.worker import consumer_lags


def lag_samples(metrics: Metrics) -> dict[tuple[str, str], float]:
    text = metrics.exposition().decode()
    return {
        (s.labels["topic"], s.labels["partition"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "kuntur_consumer_lag_messages"
    }


def test_lag_is_end_minus_committed_with_the_read_offset_before_the_first_commit():
    ends = {TP("tx", 0): 120, TP("tx", 1): 50, TP("tx", 2): 7, TP("tx", 3): None}
    lags = consumer_lags(ends, committed={TP("tx", 0): 100, TP("tx", 3): 4}, read={TP("tx", 1): 39})
    assert lags == {("tx", 0): 20, ("tx", 1): 10}  # tx-2: nothing known yet; tx-3: no end offset


def test_lag_never_goes_negative():
    assert consumer_lags({TP("tx", 0): 1229}, committed={TP("tx", 0): 1231}, read={}) == {("tx", 0): 0}


def test_revoked_partitions_disappear_from_the_gauge():
    metrics = Metrics()
    metrics.set_consumer_lag({("tx", 0): 5, ("tx", 1): 7})
    assert lag_samples(metrics) == {("tx", "0"): 5.0, ("tx", "1"): 7.0}
    metrics.set_consumer_lag({("tx", 1): 2})  # after a rebalance this worker keeps tx-1 only
    assert lag_samples(metrics) == {("tx", "1"): 2.0}


def test_docstring_example_runs():
    assert doctest.testmod(stream.worker).failed == 0
