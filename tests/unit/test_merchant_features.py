"""Merchant traffic counts and fraud rates from labels that have arrived (no leakage)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.errors import StateDecodeError
from features.merchant import (
    MAX_ENCODED_SIZE,
    MERCHANT_FEATURES,
    NO_MERCHANT_FEATURES,
    MerchantState,
    MerchantUpdate,
    is_expired,
    record_merchant_fraud,
    update_merchant,
)
from features.transaction import Transaction

T0 = 1_699_920_000.0  # 2023-11-14 00:00 UTC, a tile boundary at every level
DAY = 86400.0


def tx(i: int | str, ts: float, amount: float = 10.0) -> Transaction:
    return Transaction(f"t{i}", f"acc{i}", ts, amount, merchant_id="m1")


def run(events: list[Transaction], state: MerchantState | None = None) -> MerchantUpdate:
    update = None
    for e in events:
        update = update_merchant(state, e)
        state = update.state
    assert update is not None
    return update


def test_feature_names_and_no_merchant_defaults() -> None:
    f = run([tx(1, T0)]).features
    assert tuple(f) == MERCHANT_FEATURES
    assert "merchant_fraud_rate_7d" in MERCHANT_FEATURES
    assert f["has_merchant"] == 1.0
    assert tuple(NO_MERCHANT_FEATURES) == MERCHANT_FEATURES
    assert set(NO_MERCHANT_FEATURES.values()) == {0.0}


def test_counts_and_mean_per_window() -> None:
    events = [
        tx(1, T0, 100.0),  # 20 days before the last: 30d only
        tx(2, T0 + 15 * DAY, 40.0),  # 5 days before: 7d, 30d
        tx(3, T0 + 20 * DAY - 3 * 3600, 20.0),  # 3 h before: 24h too
        tx(4, T0 + 20 * DAY - 60, 30.0),  # 1 min before: 1h too
        tx(5, T0 + 20 * DAY, 10.0),
    ]
    f = run(events).features
    assert [f[f"merchant_tx_count_{w}"] for w in ("1h", "24h", "7d", "30d")] == [2, 3, 4, 5]
    assert f["merchant_amount_mean_7d"] == 25.0


def test_no_fraud_before_a_label_arrives() -> None:
    u = run([tx(i, T0 + 60 * i) for i in range(4)])
    assert (u.features["merchant_fraud_count_7d"], u.features["merchant_fraud_rate_7d"]) == (0, 0)
    state = record_merchant_fraud(u.state, T0 + 60)  # the 2nd transaction was fraud
    f = update_merchant(state, tx(9, T0 + 600)).features
    assert f["merchant_fraud_count_7d"] == f["merchant_fraud_count_30d"] == 1.0
    assert f["merchant_fraud_rate_7d"] == f["merchant_fraud_rate_30d"] == 0.2  # 1 of 5


def test_recording_does_not_modify_the_input_state() -> None:
    u = run([tx(1, T0)])
    before = u.state.to_bytes()
    record_merchant_fraud(u.state, T0)
    assert u.state.to_bytes() == before


def test_fraud_counts_by_transaction_event_time() -> None:
    u = run([tx(1, T0), tx(2, T0 + 10 * DAY), tx(3, T0 + 20 * DAY)])
    state = record_merchant_fraud(u.state, T0 + 10 * DAY)  # 10 days before the newest
    f = update_merchant(state, tx(4, T0 + 20 * DAY + 60)).features
    assert (f["merchant_fraud_count_7d"], f["merchant_fraud_count_30d"]) == (0.0, 1.0)
    assert f["merchant_fraud_rate_7d"] == 0.0
    assert f["merchant_fraud_rate_30d"] == 0.25  # 1 of the 4 transactions in 30 days


def test_a_fraud_older_than_30_days_no_longer_counts() -> None:
    state = record_merchant_fraud(run([tx(1, T0)]).state, T0)
    assert update_merchant(state, tx(2, T0 + 29 * DAY)).features["merchant_fraud_count_30d"] == 1
    gone = update_merchant(state, tx(3, T0 + 30 * DAY)).features
    assert gone["merchant_fraud_count_30d"] == 0.0
    assert gone["merchant_fraud_rate_30d"] == 0.0
    # a label that arrives for a transaction already outside the 30 days changes nothing
    recent = run([tx(4, T0 + 40 * DAY)]).state
    assert record_merchant_fraud(recent, T0 + 5 * DAY) == recent


def test_label_without_state_and_for_a_newer_transaction() -> None:
    state = record_merchant_fraud(None, T0)
    assert state.last_ts == T0
    f = update_merchant(state, tx(1, T0 + 60)).features
    assert (f["merchant_fraud_count_7d"], f["merchant_fraud_rate_7d"]) == (1.0, 1.0)
    # a label for a transaction newer than anything this merchant has counted
    later = record_merchant_fraud(run([tx(2, T0)]).state, T0 + 2 * DAY)
    assert later.last_ts == T0 + 2 * DAY
    g = update_merchant(later, tx(3, T0 + 2 * DAY + 1)).features
    assert (g["merchant_tx_count_1h"], g["merchant_tx_count_7d"]) == (1.0, 2.0)
    assert g["merchant_fraud_count_7d"] == 1.0
    assert record_merchant_fraud(MerchantState(), T0).last_ts == T0


def test_fraud_rate_is_capped_at_one() -> None:
    state = run([tx(1, T0)]).state
    for _ in range(3):  # repeated labels for the same transaction
        state = record_merchant_fraud(state, T0)
    f = update_merchant(state, tx(2, T0 + 1)).features
    assert f["merchant_fraud_count_7d"] == 3.0
    assert f["merchant_fraud_rate_7d"] == 1.0


def test_late_and_out_of_order_events() -> None:
    u = run([tx(1, T0), tx(2, T0 + 2 * 3600)])
    ooo = update_merchant(u.state, tx(3, T0 + 2 * 3600 - 1200, 50.0))
    assert not ooo.late
    assert ooo.features["merchant_tx_count_24h"] == 3.0
    assert ooo.features["merchant_tx_count_1h"] == 2.0
    late = update_merchant(u.state, tx(4, T0 + 2 * 3600 - 3601))
    assert late.late
    assert late.state == u.state
    assert late.features["merchant_tx_count_24h"] == 2.0


def test_idle_merchant_expires() -> None:
    u = run([tx(1, T0)])
    assert not is_expired(u.state, T0 + 35 * DAY, 35 * DAY)
    assert is_expired(u.state, T0 + 35 * DAY + 1, 35 * DAY)
    fresh = update_merchant(u.state, tx(2, T0 + 36 * DAY)).features
    assert fresh["merchant_tx_count_30d"] == 1.0


def test_state_size_is_bounded() -> None:
    state = None
    for i in range(5000):  # a busy terminal: a transaction every ~9 minutes for a month
        state = update_merchant(state, tx(i, T0 + i * 518.0, 10.0 + i % 50)).state
        if i % 97 == 0:
            state = record_merchant_fraud(state, state.last_ts - 3 * DAY)
    assert state is not None
    assert len(state.to_bytes()) <= MAX_ENCODED_SIZE == 489
    # one tile per level: header 9, bitmaps 1 + 2 + 4, counts 4 + 4, day row 12, no caches 1
    assert len(run([tx(1, T0)]).state.to_bytes()) == 37


@settings(max_examples=100, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from([0.0, 30.0, 900.0, 8000.0, DAY, 9 * DAY]),
            st.floats(-1.0, 1.0),
            st.floats(0.01, 1e5),
            st.booleans(),
        ),
        min_size=1,
        max_size=30,
    ),
    cut=st.integers(0, 30),
)
def test_round_trip_gives_identical_later_features(steps: list[tuple[float, float, float, bool]], cut: int) -> None:
    t = T0
    events = []
    for i, (gap, jitter, amount, fraud) in enumerate(steps):
        t = max(t, t + gap * jitter)
        events.append((tx(i, t + min(gap * jitter, 0.0), amount), fraud))
    a = b = None
    for i, (e, fraud) in enumerate(events):
        if i == cut and a is not None:
            b = MerchantState.from_bytes(a.to_bytes())
            assert b == a
        ua, ub = update_merchant(a, e), update_merchant(b if i >= cut else a, e)
        assert ua.features == ub.features
        assert all(math.isfinite(v) for v in ua.features.values())
        a, b = ua.state, ub.state
        if fraud:
            a, b = record_merchant_fraud(a, e.ts - 3600), record_merchant_fraud(b, e.ts - 3600)
        b = MerchantState.from_bytes(b.to_bytes())


def test_decode_errors() -> None:
    data = run([tx(1, T0), tx(2, T0 + DAY)]).state.to_bytes()
    with pytest.raises(StateDecodeError, match="version 2"):
        MerchantState.from_bytes(b"\x02" + data[1:])
    with pytest.raises(StateDecodeError, match="truncated"):
        MerchantState.from_bytes(data[:-1])
    with pytest.raises(StateDecodeError, match="trailing"):
        MerchantState.from_bytes(data + b"\x01")
