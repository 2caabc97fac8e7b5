"""PendingLabels: compact storage, capacity eviction, event-time expiry."""

from __future__ import annotations

import math
import pickle
import random
import tracemalloc

import numpy as np
import pytest

from models.pending import Pending, PendingLabels

NAMES = ["amount", "count_1h", "is_new_device"]


def x_for(i: float) -> dict[str, float]:
    return {"amount": 10.0 + i, "count_1h": float(i % 5), "is_new_device": float(i % 2)}


def add(p: PendingLabels, tid: str, ts: float, **kw) -> None:
    p.add(
        tid,
        kw.get("account", "acc"),
        kw.get("merchant", "m1"),
        ts,
        kw.get("x", x_for(ts)),
        kw.get("score", 0.25),
        kw.get("alerted", False),
    )


def test_add_pop_keeps_everything_scored():
    pending = PendingLabels(NAMES)
    pending.add(
        "t1", "acc-1", "m-9", 1_700_000_000.5, {"amount": 12.25, "count_1h": 3.0, "is_new_device": 1.0}, 0.75, True
    )
    assert len(pending) == 1 and "t1" in pending
    p = pending.pop("t1")
    assert isinstance(p, Pending)
    assert (p.transaction_id, p.account_id, p.merchant_id) == ("t1", "acc-1", "m-9")
    assert p.event_ts == 1_700_000_000.5
    assert (p.score, p.alerted) == (0.75, True)
    assert pending.features(p) == {"amount": 12.25, "count_1h": 3.0, "is_new_device": 1.0}
    assert len(pending) == 0
    assert pending.pop("t1") is None


def test_vectors_are_float32_in_column_order():
    pending = PendingLabels(NAMES)
    # keys in another order than the columns still land in column order
    pending.add("t1", "a", None, 1.0, {"is_new_device": 1.0, "amount": 0.1, "count_1h": 2.0}, 0.0, False)
    p = pending.get("t1")
    assert isinstance(p.x, bytes) and len(p.x) == 4 * len(NAMES)
    np.testing.assert_array_equal(pending.row(p), np.array([0.1, 2.0, 1.0], dtype=np.float32))
    assert pending.features(p)["amount"] == pytest.approx(0.1, rel=1e-7)
    assert pending.features(p)["amount"] != 0.1  # float32 rounding, documented
    assert list(pending.features(p)) == NAMES


def test_missing_columns_are_left_out_again_and_extra_keys_ignored():
    pending = PendingLabels(NAMES)
    pending.add("t1", "a", None, 1.0, {"amount": 5.0, "extra": 9.0}, 0.0, False)
    p = pending.get("t1")
    assert p.partial
    assert pending.features(p) == {"amount": 5.0}
    assert math.isnan(pending.row(p)[1])


def test_no_feature_names_adopts_the_first_vectors_columns():
    pending = PendingLabels(())
    pending.add("t1", "a", None, 1.0, {"b": 2.0, "a": 1.0}, 0.0, False)
    assert pending.names == ("b", "a")
    assert pending.features(pending.get("t1")) == {"b": 2.0, "a": 1.0}


def test_capacity_evicts_oldest_event_first_and_counts():
    pending = PendingLabels(NAMES, capacity=3)
    for i, ts in enumerate([100.0, 101.0, 102.0]):
        add(pending, f"t{i}", ts)
    add(pending, "late", 99.0)  # arrives out of order, oldest event: evicted first
    assert len(pending) == 3 and pending.evicted == 1
    assert "late" not in pending and pending.pop("late") is None
    add(pending, "t3", 103.0)
    assert pending.evicted == 2
    assert "t0" not in pending
    assert [p.transaction_id for p in pending] == ["t1", "t2", "t3"]


def test_re_adding_an_id_replaces_it_without_growing():
    pending = PendingLabels(NAMES, capacity=2)
    add(pending, "t1", 10.0, score=0.1)
    add(pending, "t1", 10.0, score=0.9)
    assert len(pending) == 1 and pending.evicted == 0
    assert pending.get("t1").score == 0.9
    expired = pending.expire(100.0, 0.0)
    assert [p.transaction_id for p in expired] == ["t1"]
    assert pending.expire(100.0, 0.0) == []


def test_expire_is_exact_with_out_of_order_inserts():
    pending = PendingLabels(NAMES)
    for ts in [10.0, 12.0, 11.0, 15.0, 13.0, 20.0, 9.5]:
        add(pending, f"t{ts}", ts)
    # cutoff = 23 - 10 = 13: everything at or before 13, oldest event first
    assert [p.event_ts for p in pending.expire(23.0, 10.0)] == [9.5, 10.0, 11.0, 12.0, 13.0]
    assert len(pending) == 2
    assert pending.expire(23.0, 10.0) == []
    assert pending.expire(24.9, 10.0) == []
    assert [p.event_ts for p in pending.expire(25.0, 10.0)] == [15.0]
    assert pending.oldest_event_ts() == 20.0


def test_expire_skips_entries_already_labelled():
    pending = PendingLabels(NAMES)
    for i in range(5):
        add(pending, f"t{i}", float(i))
    assert pending.pop("t2").event_ts == 2.0
    assert [p.transaction_id for p in pending.expire(10.0, 0.0)] == ["t0", "t1", "t3", "t4"]
    assert len(pending) == 0 and pending.oldest_event_ts() is None


def test_random_arrival_order_expires_everything_exactly_once():
    rng = random.Random(3)
    pending = PendingLabels(NAMES)
    stamps = [float(i) + rng.uniform(-30.0, 30.0) for i in range(2000)]
    for i, ts in enumerate(stamps):
        add(pending, f"t{i}", ts)
    labelled = {f"t{i}" for i in range(0, 2000, 7)}
    for tid in labelled:
        pending.pop(tid)
    seen: list[float] = []
    for watermark in range(0, 2100, 50):
        out = pending.expire(float(watermark), 100.0)
        assert all(p.event_ts <= watermark - 100.0 for p in out)
        seen.extend(p.event_ts for p in out)
    assert seen == sorted(seen)
    assert len(seen) + len(pending) == 2000 - len(labelled)
    assert all(p.event_ts > 2050.0 - 100.0 for p in pending)


def test_heap_stays_bounded_when_labels_remove_most_entries():
    pending = PendingLabels(NAMES, capacity=100)
    for i in range(10_000):
        add(pending, f"t{i}", float(i))
        pending.pop(f"t{i}")
    assert len(pending) == 0
    assert len(pending._heap) <= 2 * 100 + 1024


@pytest.mark.parametrize("ts", [math.nan, math.inf])
def test_non_finite_event_time_is_refused(ts):
    pending = PendingLabels(NAMES)
    with pytest.raises(ValueError, match="event_ts"):
        add(pending, "t1", ts)
    assert len(pending) == 0


def test_capacity_must_be_positive():
    with pytest.raises(ValueError, match="capacity"):
        PendingLabels(NAMES, capacity=0)


@pytest.mark.parametrize("how", ["pickle", "state"])
def test_round_trip_is_columnar_and_complete(how):
    pending = PendingLabels(NAMES, capacity=10)
    for i in range(12):
        add(pending, f"t{i}", float(100 - i), alerted=i % 3 == 0, merchant=None if i % 2 else "m")
    pending.add("part", "a", None, 50.0, {"amount": 1.0}, 0.5, True)
    if how == "pickle":
        restored = pickle.loads(pickle.dumps(pending))
    else:
        state = pending.state_dict()
        assert all(isinstance(v, list | int | np.ndarray) for v in state.values())
        assert state["rows"].dtype == np.float32 and state["rows"].size == 10 * len(NAMES)
        restored = PendingLabels.from_state(state)
    assert restored.names == pending.names and restored.capacity == 10
    assert restored.evicted == pending.evicted == 3
    assert len(restored) == len(pending) == 10
    for a, b in zip(pending, restored, strict=True):
        assert a == b
        assert restored.features(b) == pending.features(a)
    assert [p.transaction_id for p in restored.expire(1000.0, 0.0)] == [
        p.transaction_id for p in pending.expire(1000.0, 0.0)
    ]


def test_inconsistent_state_is_refused():
    pending = PendingLabels(NAMES, capacity=10)
    add(pending, "t1", 1.0)
    state = pending.state_dict()
    state["rows"] = state["rows"][:-1]
    with pytest.raises(ValueError, match="rows"):
        PendingLabels.from_state(state)


def test_memory_per_entry_is_bounded():
    """60 float features, realistic ids: the figure quoted in models/pending.py."""
    names = [f"feature_{i:02d}" for i in range(60)]
    rng = random.Random(1)
    xs = [{k: rng.random() * 1000 for k in names} for _ in range(50)]
    n = 20_000
    pending = PendingLabels(names, capacity=n)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(n):
        pending.add(
            f"tx-{i:09d}", f"acc-{i:07d}", f"merchant-{i % 997:05d}", 1.7e9 + i, xs[i % 50], rng.random(), False
        )
    per_entry = (tracemalloc.get_traced_memory()[0] - before) / n
    tracemalloc.stop()
    print(f"pending entry: {per_entry:.0f} bytes")
    assert 240 < per_entry < 700
