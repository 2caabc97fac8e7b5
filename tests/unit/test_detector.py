"""Detector: delayed-label semantics the worker and the offline evaluator rely on."""

from __future__ import annotations

import random

import numpy as np
import pytest
from river import base

from models.detector import Detector, LabelOutcome, Scored
from models.scorer import FraudModel

NAMES = ["p", "amount"]
HORIZON = 100.0


class Recorder(base.Classifier):
    """Scores ``x["p"]`` and records every example it learns."""

    def __init__(self) -> None:
        self.learned: list[tuple[dict, bool]] = []

    def learn_one(self, x, y, **kwargs):
        self.learned.append((dict(x), y))

    def predict_proba_one(self, x, **kwargs):
        p = x.get("p", 0.0)
        return {False: 1.0 - p, True: p}


def make(threshold: float = 0.5, capacity: int = 1000) -> tuple[Detector, Recorder]:
    rec = Recorder()
    det = Detector(
        FraudModel("recorder", NAMES, estimator=rec),
        threshold=threshold,
        label_horizon_s=HORIZON,
        pending_capacity=capacity,
    )
    return det, rec


def x(p: float = 0.25, amount: float = 10.0) -> dict[str, float]:
    return {"p": p, "amount": amount}


def test_no_learning_before_a_label():
    det, rec = make()
    for i in range(5):
        det.score(f"t{i}", "acc", "m1", float(i), x())
    assert det.model.examples_seen == 0
    assert rec.learned == []
    assert len(det.pending) == 5
    assert det.watermark == 4.0


def test_fraud_label_teaches_the_features_it_was_scored_with():
    det, rec = make()
    det.score("t1", "acc", "m1", 100.0, x(amount=10.0))
    det.score("t2", "acc", "m1", 101.0, x(amount=999.0))  # the account has moved on
    outcome = det.on_label("t1", True)
    assert outcome == LabelOutcome(True, True, "m1", 100.0, "learned")
    assert rec.learned == [({"p": 0.25, "amount": 10.0}, True)]
    assert det.model.examples_seen == 1 and det.model.frauds_seen == 1
    assert "t1" not in det.pending and len(det.pending) == 1


def test_label_for_unknown_transaction_is_reported_not_raised():
    det, rec = make()
    outcome = det.on_label("never-seen", True)
    assert outcome == LabelOutcome(False, True, None, None, "unknown-transaction")
    assert rec.learned == [] and det.counts["unknown-transaction"] == 1


def test_unreported_transaction_is_learned_as_genuine_once_after_the_horizon():
    det, rec = make()
    det.score("t1", "acc", "m1", 0.0, x(amount=1.0))
    det.score("t2", "acc", "m1", 50.0, x(amount=2.0))
    assert rec.learned == []
    det.score("t3", "acc", "m1", 100.0, x(amount=3.0))  # watermark 100: t1 is 100 s old
    assert rec.learned == [({"p": 0.25, "amount": 1.0}, False)]
    assert det.advance(149.0) == 0
    assert det.advance(150.0) == 1
    assert det.advance(10_000.0) == 1
    assert det.advance(20_000.0) == 0
    assert [(xx["amount"], y) for xx, y in rec.learned] == [(1.0, False), (2.0, False), (3.0, False)]
    assert len(det.pending) == 0
    assert det.counts["learned_genuine_at_horizon"] == 3


def test_label_after_the_horizon_is_reported_late_and_not_learned_again():
    det, rec = make()
    det.score("t1", "acc", "m7", 0.0, x())
    det.advance(HORIZON)
    assert len(rec.learned) == 1
    outcome = det.on_label("t1", True)
    assert outcome == LabelOutcome(False, True, "m7", 0.0, "late-after-horizon")
    assert len(rec.learned) == 1
    assert det.model.examples_seen == 1 and det.model.frauds_seen == 0


def test_duplicate_label_does_not_learn_twice():
    det, rec = make()
    det.score("t1", "acc", "m1", 0.0, x())
    assert det.on_label("t1", True).reason == "learned"
    outcome = det.on_label("t1", True)
    assert outcome == LabelOutcome(False, True, "m1", 0.0, "duplicate")
    det.advance(10 * HORIZON)
    assert len(rec.learned) == 1


def test_redelivered_transaction_is_parked_and_learned_once():
    det, rec = make()
    det.score("t1", "acc", "m1", 0.0, x(amount=1.0))
    det.score("t1", "acc", "m1", 0.0, x(amount=1.0))  # at-least-once re-delivery
    assert len(det.pending) == 1
    det.on_label("t1", False)
    det.score("t1", "acc", "m1", 0.0, x(amount=1.0))  # re-delivered after its label
    assert len(det.pending) == 0
    det.advance(10 * HORIZON)
    assert rec.learned == [({"p": 0.25, "amount": 1.0}, False)]
    assert det.counts["rescored"] == 2


def test_quality_counts_outcomes_from_labels_and_horizon():
    det, _ = make(threshold=0.5)
    det.score("tp", "a", None, 0.0, x(p=0.75))
    det.score("fp-label", "a", None, 0.0, x(p=0.75))
    det.score("fn", "a", None, 0.0, x(p=0.25))
    det.score("fp-horizon", "a", None, 0.0, x(p=0.75))
    det.score("tn-horizon", "a", None, 0.0, x(p=0.25))
    det.on_label("tp", True)
    det.on_label("fp-label", False)
    det.on_label("fn", True)
    assert det.advance(HORIZON) == 2
    q = det.quality
    assert (q.tp, q.fp, q.fn, q.tn) == (1, 2, 1, 1)
    assert q.precision == pytest.approx(1 / 3)
    assert q.recall == pytest.approx(1 / 2)


def test_alert_at_threshold_and_reasons_only_for_alerts(monkeypatch):
    det, _ = make(threshold=0.5)
    for i in range(20):  # gives the perturbation explainer its baseline (running means)
        det.score(f"w{i}", "a", None, float(i), x(p=0.25, amount=10.0))
        det.on_label(f"w{i}", False)

    def boom(*args, **kwargs):
        raise AssertionError("explain must only run for alerts")

    with monkeypatch.context() as m:
        m.setattr(det.model, "explain", boom)
        assert det.score("low", "a", None, 30.0, x(p=0.25)) == Scored(0.25, False, [])

    scored = det.score("edge", "a", None, 31.0, x(p=0.5, amount=10.0))
    assert scored.alert and scored.score == 0.5
    assert [r.feature for r in scored.reasons] == ["p"]
    assert scored.reasons[0].contribution == pytest.approx(0.25)
    assert det.counts["alerts"] == 1 and det.counts["scored"] == 22


def test_watermark_never_moves_back():
    det, _ = make()
    det.score("t1", "a", None, 500.0, x())
    det.score("t2", "a", None, 10.0, x())  # a late event does not move the watermark
    assert det.watermark == 500.0
    # an older watermark changes nothing; the late event is past its horizon already
    assert det.advance(20.0) == 1
    assert det.watermark == 500.0
    assert [p.transaction_id for p in det.pending] == ["t1"]
    assert det.advance(599.0) == 0
    assert det.advance(600.0) == 1


def test_label_for_an_evicted_transaction_is_unknown():
    det, rec = make(capacity=2)
    for i in range(3):
        det.score(f"t{i}", "a", None, float(i), x())
    assert det.pending.evicted == 1
    assert det.on_label("t0", True).reason == "unknown-transaction"
    assert rec.learned == []


def test_default_model_learns_from_delayed_labels():
    """End to end with the fast logistic regression and its array path."""
    rng = random.Random(5)
    names = ["a", "b", "c"]
    det = Detector(FraudModel("logreg", names), label_horizon_s=50.0)
    # the same model fed through feature dicts instead of float32 rows
    by_dict = Detector(FraudModel("logreg", names), label_horizon_s=50.0)
    by_dict.model._fast = False
    assert det.model.accepts_rows and not by_dict.model.accepts_rows
    labels: dict[int, list[str]] = {}
    for t in range(3000):
        fraud = rng.random() < 0.05
        xx = {"a": rng.gauss(3.0 if fraud else 0.0, 0.5), "b": rng.gauss(0, 1), "c": rng.random()}
        assert det.score(f"t{t}", "acc", None, float(t), xx) == by_dict.score(f"t{t}", "acc", None, float(t), xx)
        if fraud:
            labels.setdefault(t + 10, []).append(f"t{t}")
        for tid in labels.pop(t, []):
            assert det.on_label(tid, True).learned and by_dict.on_label(tid, True).learned
    assert det.model.frauds_seen > 100
    assert det.model.examples_seen == by_dict.model.examples_seen > 2900
    np.testing.assert_array_equal(det.model.estimator._w, by_dict.model.estimator._w)
    scored = det.score("probe", "acc", None, 3000.0, {"a": 3.0, "b": 0.0, "c": 0.5})
    assert scored.alert and scored.reasons[0].feature == "a"
    assert det.quality.recall > 0.8
    assert det.score("probe2", "acc", None, 3000.0, {"a": 0.0, "b": 0.0, "c": 0.5}).score < 0.1


def test_warmup_holds_alerts_until_enough_genuine_examples_are_learned():
    rec = Recorder()
    det = Detector(FraudModel("recorder", NAMES, estimator=rec), label_horizon_s=HORIZON, warmup_genuine=2)
    assert not det.warm
    det.score("f1", "a", None, 0.0, x(p=0.75))
    det.on_label("f1", True)  # a fraud does not warm the model up
    cold = det.score("t1", "a", None, 1.0, x(p=0.9))
    assert (cold.score, cold.alert, cold.reasons) == (0.9, False, [])
    det.on_label("t1", False)
    det.score("t2", "a", None, 2.0, x(p=0.25))
    det.on_label("t2", False)
    assert det.warm
    assert det.score("t3", "a", None, 3.0, x(p=0.9)).alert
    assert det.counts["alerts"] == 1
    # the default alerts from the first score
    assert make()[0].score("t", "a", None, 0.0, x(p=0.9)).alert


def test_forced_alert_is_alerted_and_counted_in_quality():
    from features.catalogue import FEATURE_NAMES
    from models.detector import Detector
    from models.scorer import FraudModel

    det = Detector(FraudModel("logreg", feature_names=FEATURE_NAMES), threshold=0.99, label_horizon_s=60.0)
    x = dict.fromkeys(FEATURE_NAMES, 0.0)
    assert det.score("t1", "a", None, 1000.0, x, force_alert=True).alert
    assert not det.score("t2", "a", None, 1001.0, x).alert
    det.on_label("t1", True)
    assert (det.quality.tp, det.quality.fn) == (1, 0)
