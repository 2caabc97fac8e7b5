"""models.shared: one training log, identical agreed models, exact scores with one worker."""

from __future__ import annotations

import random

import numpy as np
import pytest

from models.detector import Detector
from models.scorer import FraudModel
from models.shared import SharedModel, decode_batch, decode_example, encode_batch, encode_example

NAMES = ["amount", "count", "night"]


def _detector(model: str) -> Detector:
    return Detector(FraudModel(model, NAMES, created=0.0), label_horizon_s=50.0, warmup_genuine=0)


def _stream(n: int, seed: int) -> list[tuple[str, float, dict[str, float], bool]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        fraud = rng.random() < 0.1
        x = {"amount": rng.lognormvariate(3 + 2 * fraud, 1), "count": float(rng.randint(0, 5 + 5 * fraud)),
             "night": float(rng.random() < 0.2 + 0.5 * fraud)}
        out.append((f"t{seed}-{i}", float(i), x, fraud))
    return out


def _drive(det: Detector, stream, labels_every: int = 7, on_step=None) -> list[float]:
    """Score each transaction; every ``labels_every`` report the frauds scored so far."""
    scores, frauds = [], []
    for i, (tid, ts, x, fraud) in enumerate(stream):
        scores.append(det.score(tid, "acc", "m", ts, x).score)
        if fraud:
            frauds.append(tid)
        if i % labels_every == 0:
            for f in frauds:
                det.on_label(f, True)
            frauds.clear()
        if on_step is not None:
            on_step()
    return scores


def _state(model: FraudModel) -> dict:
    state = model.state_dict()
    state.pop("created")
    return state


def _same(a: FraudModel, b: FraudModel) -> bool:
    sa, sb = _state(a), _state(b)

    def eq(x, y) -> bool:
        if isinstance(x, dict):
            return x.keys() == y.keys() and all(eq(x[k], y[k]) for k in x)
        if isinstance(x, np.ndarray):
            return np.array_equal(x, y, equal_nan=True)
        return x == y

    return eq(sa, sb)


@pytest.mark.parametrize("model", ["logreg", "gam-pairs-asinh"])
def test_one_worker_scores_exactly_what_a_detector_learning_at_once_scores(model: str) -> None:
    stream = _stream(600, seed=1)
    plain = _drive(_detector(model), stream)

    det = _detector(model)
    shared = SharedModel(det, origin=b"a" * 16)
    log: list[bytes] = []
    rng = random.Random(5)

    def step() -> None:  # the log round trip at arbitrary moments, as Kafka delivers it
        log.append(encode_batch(shared.take_outbox()))
        if rng.random() < 0.3:
            shared.consume((o, log[o]) for o in range(shared.next_offset, len(log)))

    assert _drive(det, stream, on_step=step) == plain
    assert shared.counts["produced"] > 100
    log.append(encode_batch(shared.take_outbox()))
    shared.consume((o, log[o]) for o in range(shared.next_offset, len(log)))
    assert det.model is shared.agreed and not shared.in_flight


@pytest.mark.parametrize("model", ["logreg", "gam-pairs-asinh"])
def test_two_workers_that_read_the_same_log_hold_the_same_model(model: str) -> None:
    dets = [_detector(model), _detector(model)]
    shareds = [SharedModel(d, origin=bytes([65 + i]) * 16) for i, d in enumerate(dets)]
    log: list[bytes] = []
    rng = random.Random(9)

    def step() -> None:
        for s in shareds:
            if rng.random() < 0.5:  # a producer's batch reaches the log now or later
                log.append(encode_batch(s.take_outbox()))
        s = rng.choice(shareds)  # one of them reads what is there so far
        s.consume((o, log[o]) for o in range(s.next_offset, len(log)))

    streams = [_stream(600, seed=2), _stream(600, seed=3)]
    frauds: list[list[str]] = [[], []]
    for i in range(600):  # both workers at once, each on its own accounts
        for w in rng.sample([0, 1], 2):
            tid, ts, x, fraud = streams[w][i]
            dets[w].score(tid, f"acc{w}", "m", ts, x)
            if fraud:
                frauds[w].append(tid)
            if i % 7 == 0:
                for f in frauds[w]:
                    dets[w].on_label(f, True)
                frauds[w].clear()
            step()
    for s in shareds:
        log.append(encode_batch(s.take_outbox()))
    for s in shareds:
        s.consume((o, log[o]) for o in range(s.next_offset, len(log)))
    a, b = (s.agreed for s in shareds)
    assert a.examples_seen == b.examples_seen == sum(s.counts['produced'] for s in shareds)
    assert _same(a, b)
    assert all(d.model is s.agreed for d, s in zip(dets, shareds, strict=True))
    assert sum(s.counts["rebuilds"] for s in shareds) > 0  # the scoring model took others' examples in


def test_a_re_produced_example_is_learned_once_and_a_foreign_record_is_skipped() -> None:
    det = _detector("logreg")
    shared = SharedModel(det, origin=b"a" * 16)
    det.score("t1", "acc", None, 0.0, {"amount": 1.0, "count": 0.0, "night": 0.0})
    det.on_label("t1", True)
    record = encode_batch(shared.take_outbox())
    shared.consume([(0, record), (1, b"not an example"), (2, record)])  # a crash re-produced it
    assert shared.agreed.examples_seen == 1
    assert shared.counts["duplicates"] == 1 and shared.counts["bad"] == 1
    assert shared.next_offset == 3
    shared.consume([(1, record)])  # read again after a consumer restart: ignored
    assert shared.agreed.examples_seen == 1


def test_example_round_trip_and_refusals() -> None:
    det = _detector("logreg")
    shared = SharedModel(det, origin=b"z" * 16)
    det.score("t9", "acc", None, 3.5, {"amount": 2.0, "count": 1.0, "night": 1.0})
    det.on_label("t9", False)
    (record,) = shared.take_outbox()
    assert decode_batch(encode_batch([record, record])) == [record, record]
    ex = decode_example(record, 3)
    assert (ex.transaction_id, ex.is_fraud, ex.event_ts, ex.seq) == ("t9", False, 3.5, 0)
    assert encode_example(ex) == record
    assert np.frombuffer(ex.x, dtype=np.float32).tolist() == [2.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="feature bytes"):
        decode_example(record, 4)
    with pytest.raises(ValueError, match="truncated"):
        decode_example(record[:10], 3)


def test_an_own_example_that_never_reached_the_log_leaves_the_scoring_model():
    """A failed send: the log (and so every agreed model) never has it, so the scoring model
    drops it too instead of keeping it in flight for ever."""
    det = _detector("logreg")
    shared = SharedModel(det, origin=b"a" * 16)
    row = {"amount": 1.0, "count": 0.0, "night": 0.0}
    for tid in ("t1", "t2"):
        det.score(tid, "acc", None, 0.0, row)
        det.on_label(tid, True)
    first, second = shared.take_outbox()
    shared.consume([(0, encode_batch([second]))])  # t1's record was lost on the way
    assert not shared.in_flight and shared.counts["lost"] == 1
    assert det.model is shared.agreed and shared.agreed.examples_seen == 1
