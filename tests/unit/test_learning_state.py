"""The score stage's learning state as key-value stores: what a changelogged table needs.

A table's changelog replayed on another worker gives that worker the same store; these
tests play that part with dict copies (a partition move, a crash and restore).
"""

from __future__ import annotations

import tracemalloc

from config.settings import load_settings
from features.catalogue import FEATURE_NAMES
from models.pending import PendingLabels, Resolution
from stream.agents import Handlers, Message
from stream.metrics import Metrics
from stream.pipeline.deferred import DeferredLabels
from stream.pipeline.emits import ToScore
from stream.pipeline.stages import Pipeline, new_detector
from stream.pipeline.validation import Label, transaction_from_dict
from stream.wire import Outbox, ScoreEntry

SETTINGS = load_settings(overrides={"model": "logreg", "label_horizon_s": 1000.0, "warmup_genuine": 0})


def tx(i: int, ts: float, account: str = "acc-1") -> ToScore:
    t = transaction_from_dict(
        {"transaction_id": f"t{i}", "account_id": account, "timestamp": ts, "amount": 5 + i, "merchant_id": "m1"}
    )
    return ToScore(t, [float(i % 7)] * len(FEATURE_NAMES))


def pipeline(pending: dict[str, bytes] | None = None, deferred: dict[str, bytes] | None = None) -> Pipeline:
    p = Pipeline(SETTINGS, new_detector(SETTINGS))
    p.detector.use_store({} if pending is None else pending)
    p.score.deferred = DeferredLabels({} if deferred is None else deferred, track_changes=True)
    return p


def moved(p: Pipeline) -> Pipeline:
    """A second worker that recovered ``p``'s tables from their changelogs."""
    return pipeline(dict(p.detector.pending.store), dict(p.score.deferred.store))


def test_labels_for_transactions_scored_by_the_old_owner_still_teach():
    old = pipeline()
    for i in range(5):
        old.score.on_transaction(tx(i, 100.0 + i))
    new = moved(old)
    assert len(new.detector.pending) == 5
    new.score.on_transaction(tx(50, 105.0))  # the new owner's stream has reached the report time
    outcome, fraud = new.score.on_label(Label("t2", "acc-1", True, 104.0))
    assert outcome is not None and outcome.reason == "learned" and fraud is not None
    assert new.detector.model.frauds_seen == 1
    # and the new owner learns the rest as genuine at their horizon, exactly once
    new.score.on_transaction(tx(99, 2000.0))
    assert new.detector.counts["learned_genuine_at_horizon"] == 5  # t0, t1, t3, t4 and t50
    assert moved(new).detector.on_label("t2", True).reason == "duplicate"  # the resolved marker moved too


def test_deferred_labels_survive_a_move_and_teach_when_their_time_comes():
    old = pipeline()
    old.score.on_transaction(tx(1, 100.0))
    assert old.score.on_label(Label("t1", "acc-1", True, 500.0)) == (None, None)  # ahead of the stream
    new = moved(old)
    assert new.score.deferred_labels == 1
    verdict = new.score.on_transaction(tx(2, 600.0))
    assert [o.reason for o in verdict.labels] == ["learned"]
    assert new.detector.model.frauds_seen == 1 and new.score.deferred_labels == 0


def test_every_changed_key_is_reported_once_per_take():
    p = pipeline()
    p.score.on_transaction(tx(1, 100.0))
    writes = p.score.take_writes()
    assert writes.pending == {"t1"} and not writes.deferred
    assert not p.score.take_writes()
    p.score.on_label(Label("t1", "acc-1", False, 2000.0))  # ahead: deferred
    writes = p.score.take_writes()
    assert not writes.pending and len(writes.deferred) == 1
    p.score.on_transaction(tx(2, 3000.0))  # releases the label, resolves t1 (a marker), expires nothing else
    writes = p.score.take_writes()
    assert writes.pending == {"t1", "t2"} and len(writes.deferred) == 1
    assert not p.score.deferred.store  # the released label's key is deleted


def test_handlers_put_new_keys_on_the_messages_partition():
    p = pipeline()
    handlers = Handlers(SETTINGS, p, Metrics(), partitions=4)
    box = Outbox()
    box.add(3, ScoreEntry(tx(7, 100.0), 0.0))
    ((_, value),) = box.messages()
    sends, scored = handlers.scoring([Message(None, value, "to-score", 3, 0, 0.0)])
    assert scored == 1 and sends.written["pending"] == {"t7": 3}


def test_reindex_after_the_store_changed_under_it():
    store: dict[str, bytes] = {}
    a = PendingLabels(["x"], capacity=10, store=store, track_changes=True)
    for i in range(6):
        a.add(f"t{i}", "acc", None, float(i), {"x": float(i)}, 0.1, False)
    a.resolve("t0", Resolution(0, None, 0.0))
    del store["t3"]  # a revoked partition's key, dropped by the table
    a.reindex()
    assert len(a) == 4 and a.resolved_count == 1
    assert [p.transaction_id for p in a.expire(10.0, 0.0)] == ["t1", "t2", "t4", "t5"]


def test_bytes_per_pending_transaction_in_memory_and_on_the_wire():
    """The figures docs/reliability.md quotes: one pending entry of the real catalogue."""
    n = 5000
    p = pipeline()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(n):
        p.score.on_transaction(tx(i, 1.7e9 + i / 10, account=f"acc-{i % 300:07d}"))  # all within the horizon
    per_entry = (tracemalloc.get_traced_memory()[0] - before) / n
    tracemalloc.stop()
    store = p.detector.pending.store
    assert len(p.detector.pending) == len(store) == n
    record = sum(len(k) + len(v) for k, v in store.items()) / len(store)
    print(f"{len(FEATURE_NAMES)} features: {per_entry:.0f} B in memory, {record:.0f} B per changelog record")
    assert record < 60 + 4 * len(FEATURE_NAMES) + 40
    assert per_entry < 800


def test_a_re_delivered_deferred_label_waits_once():
    deferred = DeferredLabels()
    label = Label("t1", "acc-1", True, 500.0)
    assert deferred.push(label) and not deferred.push(label)
    assert deferred.push(Label("t1", "acc-1", False, 600.0))  # another report: another entry
    assert len(deferred) == 2 and [lab.is_fraud for lab in deferred.pop_until(1e9)] == [True, False]
