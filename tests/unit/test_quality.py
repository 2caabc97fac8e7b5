"""OnlineQuality: TP/FP/FN arithmetic, rolling window, undefined ratios."""

from __future__ import annotations

import pytest

from models.quality import OnlineQuality


def test_empty_quality_is_zero_not_nan():
    q = OnlineQuality()
    assert (q.precision, q.recall) == (0.0, 0.0)
    assert (q.tp, q.fp, q.fn, q.tn) == (0, 0, 0, 0)


def test_hand_made_sequence():
    q = OnlineQuality(window=100)
    outcomes = [
        (True, True),  # TP
        (True, False),  # FP
        (False, True),  # FN
        (False, False),  # TN: counted, not windowed
        (True, True),  # TP
        (True, True),  # TP
        (True, False),  # FP
        (False, True),  # FN
    ]
    for alerted, is_fraud in outcomes:
        q.update(alerted, is_fraud)
    assert (q.tp, q.fp, q.fn, q.tn) == (3, 2, 2, 1)
    assert q.precision == pytest.approx(3 / 5)
    assert q.recall == pytest.approx(3 / 5)
    assert (q.window_tp, q.window_fp, q.window_fn) == (3, 2, 2)


def test_precision_defined_without_recall_and_vice_versa():
    q = OnlineQuality()
    q.update(True, False)
    assert (q.precision, q.recall) == (0.0, 0.0)
    q.update(False, True)
    assert (q.precision, q.recall) == (0.0, 0.0)
    q.update(True, True)
    assert q.precision == pytest.approx(0.5)
    assert q.recall == pytest.approx(0.5)


def test_window_rolls_over_only_tp_fp_fn():
    q = OnlineQuality(window=3)
    q.update(True, False)  # FP  (will roll out)
    q.update(False, True)  # FN  (will roll out)
    for _ in range(50):
        q.update(False, False)  # TNs never push outcomes out of the window
    assert (q.window_fp, q.window_fn) == (1, 1)
    q.update(True, True)  # TP
    q.update(True, True)  # TP -> FP rolls out
    q.update(True, True)  # TP -> FN rolls out
    assert (q.window_tp, q.window_fp, q.window_fn) == (3, 0, 0)
    assert (q.precision, q.recall) == (1.0, 1.0)
    # cumulative counts keep everything
    assert (q.tp, q.fp, q.fn, q.tn) == (3, 1, 1, 50)
    q.update(False, True)  # FN -> a TP rolls out: window TP 2, FN 1
    assert q.recall == pytest.approx(2 / 3)
    assert q.precision == 1.0


def test_as_dict_for_metrics():
    q = OnlineQuality(window=10)
    q.update(True, True)
    q.update(True, False)
    d = q.as_dict()
    assert d["precision"] == 0.5 and d["recall"] == 1.0
    assert (d["tp"], d["fp"], d["fn"], d["tn"], d["window"]) == (1, 1, 0, 0, 10)


def test_window_must_be_positive():
    with pytest.raises(ValueError, match="window"):
        OnlineQuality(window=0)


def test_state_round_trip_continues_identically():
    q = OnlineQuality(window=4)
    for i in range(11):
        q.update(i % 2 == 0, i % 3 == 0)
    state = q.state_dict()
    back = OnlineQuality.from_state(state)
    assert back.as_dict() == q.as_dict()
    for i in range(7):
        q.update(i % 3 == 0, i % 2 == 0)
        back.update(i % 3 == 0, i % 2 == 0)
        assert back.as_dict() == q.as_dict()


def test_state_with_unknown_outcomes_is_refused():
    state = OnlineQuality(window=2).state_dict()
    state["recent"] = [0, 7]
    with pytest.raises(ValueError, match="unexpected"):
        OnlineQuality.from_state(state)
