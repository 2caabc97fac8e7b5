"""What-if scoring (POST /score's core): the stream's answer, with no state changed."""

from __future__ import annotations

import copy
import random

import pytest

from config.settings import load_settings
from features.account import AccountState
from features.merchant import MerchantState
from stream.pipeline.runner import Runner
from stream.pipeline.stages import Pipeline, new_detector
from stream.pipeline.validation import Label, transaction_from_dict
from stream.pipeline.whatif import what_if

BASE = 1767225600.0  # 2026-01-01T00:00:00Z


def tx(tid: str, account: str, ts: float, amount: float, merchant: str | None, **extra):
    record = {"transaction_id": tid, "account_id": account, "timestamp": ts, "amount": amount, **extra}
    if merchant:
        record["merchant_id"] = merchant
    return transaction_from_dict(record)


@pytest.fixture(scope="module", params=["gam-pairs-asinh", "logreg"])
def history(request) -> Runner:
    """A runner that has streamed 1,500 transactions and learned from labels and the horizon."""
    settings = load_settings(overrides={"model": request.param, "label_horizon_s": 3600.0, "warmup_genuine": 50})
    run = Runner(Pipeline(settings, new_detector(settings)))
    rng = random.Random(7)
    for i in range(1500):
        ts = BASE + i * 30.0
        fraud = rng.random() < 0.05
        t = tx(
            f"t{i}",
            f"acc-{rng.randrange(40)}",
            ts,
            5000.0 if fraud else rng.uniform(5, 200),
            f"m-{rng.randrange(8)}" if rng.random() < 0.9 else None,
            device_id=f"d{rng.randrange(3 if not fraud else 1000)}",
            latitude=-12.0,
            longitude=-77.0,
        )
        run.transaction(t)
        if fraud:
            run.label(Label(t.transaction_id, t.account_id, True, ts))  # reported at once: applied now
    assert run.pipeline.detector.model.examples_seen > 500
    return run


def _bytes(run: Runner) -> tuple[dict[str, bytes], dict[str, bytes]]:
    return ({k: v.to_bytes() for k, v in run.accounts.items()}, {k: v.to_bytes() for k, v in run.merchants.items()})


def _detector_state(run: Runner) -> tuple:
    det = run.pipeline.detector
    return (
        det.watermark,
        dict(det.counts),
        len(det.pending),
        det.model.examples_seen,
        det._warm,
        run.pipeline.score.deferred_labels,
    )


def test_what_if_gives_the_streams_answer_and_changes_nothing(history: Runner):
    run = history
    end = BASE + 1500 * 30.0
    probes = [
        tx("p1", "acc-3", end + 5, 40.0, "m-2", device_id="d1", latitude=-12.0, longitude=-77.0),
        tx("p2", "acc-5", end + 9, 7_000.0, "m-4", device_id="new-device", latitude=-3.7, longitude=-73.2),
        tx("p3", "acc-new", end + 12, 90.0, None),
        tx("p4", "acc-7", end - 1200, 300.0, "m-new"),  # maybe late, within the tolerance
    ]
    before_states, before_detector = _bytes(run), _detector_state(run)
    for t in probes:
        account = run.accounts.get(t.account_id)
        merchant = run.merchants.get(t.merchant_id) if t.merchant_id else None
        answer = what_if(
            run.pipeline,
            AccountState.from_bytes(account.to_bytes()) if account else None,
            MerchantState.from_bytes(merchant.to_bytes()) if merchant else None,
            t,
        )
        replica = copy.deepcopy(run)
        stream = replica.transaction(t)  # what the stream would do, on a copy
        assert answer.verdict is not None and stream is not None
        assert answer.verdict.scored.score == pytest.approx(stream.scored.score, abs=1e-12)
        assert answer.verdict.alert == stream.alert
        assert answer.verdict.rules == stream.rules
        assert answer.verdict.features == stream.features
        assert answer.late == (replica.late > run.late)
        if stream.alert:  # the stream explains alerts only; the what-if always explains
            assert answer.verdict.scored.reasons == stream.scored.reasons
    assert _bytes(run) == before_states
    assert _detector_state(run) == before_detector


def test_what_if_on_the_live_state_objects_leaves_them_as_they_were(history: Runner):
    run = history
    t = tx("p9", "acc-1", BASE + 1500 * 30.0 + 1, 80.0, "m-1")
    before = _bytes(run)
    what_if(run.pipeline, run.accounts["acc-1"], run.merchants["m-1"], t)
    assert _bytes(run) == before


def test_a_transaction_the_account_has_seen_is_a_duplicate(history: Runner):
    run = history
    t = tx("dup", "acc-1", BASE + 1500 * 30.0 + 2, 80.0, "m-1")
    state = copy.deepcopy(run)
    state.transaction(t)
    assert what_if(state.pipeline, state.accounts["acc-1"], state.merchants["m-1"], t).duplicate
    assert not what_if(run.pipeline, run.accounts["acc-1"], run.merchants["m-1"], t).duplicate
