"""The per-event pipeline (no broker): stage order, duplicates, event-time label join."""

from __future__ import annotations

from config.settings import load_settings
from features.catalogue import FEATURE_NAMES
from models.detector import Detector
from models.scorer import FraudModel
from stream.pipeline.runner import Runner
from stream.pipeline.stages import Pipeline
from stream.pipeline.validation import Label, transaction_from_dict

BASE = 1767225600.0  # 2026-01-01T00:00:00Z


def make_pipeline(horizon_s: float = 3600.0) -> Pipeline:
    settings = load_settings(overrides={"label_horizon_s": horizon_s, "warmup_genuine": 0})
    detector = Detector(FraudModel("logreg", feature_names=FEATURE_NAMES), threshold=0.5, label_horizon_s=horizon_s)
    return Pipeline(settings, detector)


class Run:
    """Drives a pipeline through the in-process runner (the evaluator's), dicts as tables."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.p = pipeline
        self.runner = Runner(pipeline)

    def tx(self, tid: str, ts: float, amount: float = 50.0, account: str = "acc-1", **extra):
        tx = transaction_from_dict(
            {"transaction_id": tid, "account_id": account, "timestamp": ts, "amount": amount, **extra}
        )
        return self.runner.transaction(tx)

    def label(self, label: Label):
        return self.runner.label(label)


def test_duplicate_transaction_is_not_scored_twice():
    run = Run(make_pipeline())
    assert run.tx("t1", BASE) is not None
    assert run.tx("t1", BASE) is None
    assert run.tx("t2", BASE + 10).features["account_tx_count_1h"] == 2.0


def test_label_that_overtakes_its_transaction_waits_for_event_time():
    p = make_pipeline()
    run = Run(p)
    run.tx("t0", BASE)
    # the label for t1 (reported 60 s after it) arrives before t1 was scored
    assert run.label(Label("t1", "acc-1", True, BASE + 120 + 60)) is None
    assert p.score.deferred_labels == 1
    run.tx("t1", BASE + 120)
    assert p.detector.model.examples_seen == 0  # not yet reported in event time
    verdict = run.tx("t2", BASE + 600)
    assert [o.reason for o in verdict.labels] == ["learned"] and verdict.labels[0].is_fraud
    assert p.detector.model.frauds_seen == 1 and p.score.deferred_labels == 0


def test_report_within_horizon_teaches_fraud_even_if_stream_jumped_past_horizon():
    p = make_pipeline(horizon_s=3600.0)
    run = Run(p)
    run.tx("f1", BASE)
    assert run.label(Label("f1", "acc-1", True, BASE + 60)) is None
    verdict = run.tx("g2", BASE + 7200)  # two hours later: f1's horizon has passed
    assert [o.reason for o in verdict.labels] == ["learned"]
    assert p.detector.model.frauds_seen == 1


def test_repeated_fraud_pattern_score_rises_with_labels():
    p = make_pipeline()
    run = Run(p)
    scores = []
    for i in range(30):
        t = BASE + i * 7200.0
        for j in range(5):
            run.tx(f"g-{i}-{j}", t, 40.0 + j, account=f"acc-{j}", channel="pos", device_id="d1", merchant_id="m")
        verdict = run.tx(
            f"f-{i}",
            t + 1,
            4800.0,
            account=f"acc-{i % 5}",
            channel="online",
            transaction_type="transfer",
            device_id=f"new-{i}",
            merchant_id="m",
        )
        scores.append(verdict.scored.score)
        run.label(Label(f"f-{i}", f"acc-{i % 5}", True, t + 61))
    assert sum(scores[-5:]) / 5 > sum(scores[:5]) / 5 + 0.3
