"""One implementation: a history replayed through a real worker scores exactly as `kuntur evaluate`."""

from __future__ import annotations

import csv
from argparse import Namespace

import numpy as np
import pytest

from offline.backtest.evaluate import run_online
from offline.backtest.history import label_rule, load_history
from offline.backtest.replay import replay
from offline.simulator import SimConfig, write_file

from .conftest import consume

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("settings", [1], indirect=True, ids=["1-partition"])
def test_replayed_history_scores_equal_offline_evaluate(settings, start_worker, tmp_path):
    cfg = SimConfig(seed=11, accounts=40, transactions=500, tx_per_account_per_day=10.0, fraud_rate=0.05)
    full = tmp_path / "full.csv"
    assert write_file(cfg, full, progress=False) == 500
    # Frauds are reported 2 h after they happen; everything else is learned as genuine at a
    # 6 h horizon, as the scored stream's event time passes it — hundreds of examples learned.
    path = tmp_path / "history.csv"
    with open(full, newline="") as src, open(path, "w", newline="") as dst:
        rows = csv.DictReader(src)
        out = csv.DictWriter(dst, fieldnames=[c for c in rows.fieldnames or () if c != "label_time"])
        out.writeheader()
        for row in rows:
            row.pop("label_time")
            row["is_fraud"] = row["is_fraud"] if row["is_fraud"] == "1" else ""
            out.writerow(row)
    settings = settings.replace(emit_scores=True, warmup_genuine=0, label_horizon_s=6 * 3600.0)
    history = load_history(path)
    rule = label_rule(history, "2h")
    offline = run_online(history, rule, settings)
    assert offline.detector.model.examples_seen > 100  # the model really learned during the run
    span = history.transactions[-1].ts - history.transactions[0].ts

    worker = start_worker(settings)
    # paced so the worker keeps up (~25 s): a backlog would let labels and merchant fraud
    # reports land a few transactions later than offline (see docs/model-quality.md)
    speed = span / 25.0
    # Labels are sent 30 event-minutes (~0.3 s of wall time) ahead of their report time; the
    # worker holds each until its scored stream reaches the report time, so a labels
    # consumer running a little behind the transactions cannot change what is learned when.
    args = Namespace(file=str(path), columns=None, timezone="UTC", no_progress=True, label_delay="2h",
                     label_lead="30m", speed=str(speed))
    counts = replay(args, settings)
    assert counts["transactions"] == 500
    assert counts["labels"] == int(np.count_nonzero(~np.isnan(history.labels)))

    records = consume(settings, settings.topic_scores, until=lambda r: len(r) >= 500, timeout=180, worker=worker)
    streamed = {r["transaction_id"]: r["score"] for r in records}
    ids = [tx.transaction_id for tx in history.transactions]
    assert set(streamed) == set(ids)
    got = np.array([streamed[i] for i in ids])
    assert np.ptp(offline.scores) > 0.1  # scores vary: equality is not trivial
    np.testing.assert_allclose(got, offline.scores, rtol=1e-9, atol=1e-12)
    assert worker.metrics()["kuntur_model_examples_seen"] == offline.detector.model.examples_seen
