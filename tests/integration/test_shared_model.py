"""One model for all workers, on Apache Kafka with real worker processes.

Two workers split the partitions, so each receives about half of the labels; with the
shared model each learns all of them, in the training log's order, and both report the
same training offset and model. A third worker started later with an empty data
directory takes the model from the model topic and the training log, not from a file.
"""

from __future__ import annotations

import time

import pytest

from .conftest import another_worker, produce_json, wait_for
from .faultkit import fault_settings, labels_for, report, transactions
from .test_faults import ts, two_workers_scoring

pytestmark = pytest.mark.slow


def _model(worker) -> tuple[float, float, float]:
    m = worker.metrics()
    return (m.get("kuntur_model_training_offset", -1), m.get("kuntur_model_examples_seen", -1),
            m.get("kuntur_model_examples_in_flight", -1))


@pytest.mark.parametrize("settings", [4], indirect=True, ids=["4-partitions"])
def test_two_workers_learn_one_model_and_a_new_worker_starts_from_it(settings, start_worker, tmp_path):
    settings = fault_settings(settings)
    txs = transactions(1200, seed=31, accounts=200)
    a, b = two_workers_scoring(settings, start_worker, tmp_path, txs)
    scored = [w.metrics()["kuntur_transactions_total"] for w in (a, b)]
    assert all(0 < n < len(txs) for n in scored), scored  # each worker scored only its partitions

    labels = labels_for(txs, after_s=1.0)
    sent = time.monotonic()
    produce_json(settings, settings.topic_labels, labels)
    last = max(ts(t) for t in txs)  # labels teach once a worker's stream passes their report time
    probe = [{"transaction_id": f"probe-{i}", "account_id": f"acc-probe-{i}", "timestamp": last + 60.0, "amount": 1.0}
             for i in range(40)]
    produce_json(settings, settings.topic_transactions, probe)
    learned = lambda: sum(w.label_outcomes().get("learned", 0) for w in (a, b))  # noqa: E731
    wait_for(lambda: learned() == len(labels), 90, "every label learned by the worker holding its partition")
    # each worker learned about half of the labels itself, and both models hold all of them
    wait_for(lambda: _model(a)[1] == _model(b)[1] == len(labels), 60, "both models learned every label")
    converged_s = time.monotonic() - sent
    wait_for(lambda: _model(a)[0] == _model(b)[0] > 0 and _model(a)[2] == _model(b)[2] == 0, 30,
             "both workers at the same training offset, nothing in flight")
    # the same model: the checkpoint names it by the training offset on both workers
    wait_for(lambda: a.metrics()["kuntur_model_generation"] == b.metrics()["kuntur_model_generation"]
             == _model(a)[0], 30, "both workers name the model alike")
    own = [w.label_outcomes().get("learned", 0) for w in (a, b)]
    assert all(0 < n < len(labels) for n in own), own
    offset = _model(a)[0]
    a.stop()
    b.stop()

    c = start_worker(another_worker(settings, tmp_path, "worker-c"))  # an empty data dir
    wait_for(lambda: c.ready()[0] == 200, 60, "a new worker is ready")
    assert _model(c)[1] == len(labels), c.log()
    assert _model(c)[0] == offset
    assert "from the model topic" in c.log()
    report("test_two_workers_learn_one_model_and_a_new_worker_starts_from_it", transactions=len(txs),
           labels=len(labels), learned_by_each_worker=own, examples_in_each_model=len(labels),
           training_offset=offset, labels_sent_to_both_models_s=round(converged_s, 1))
