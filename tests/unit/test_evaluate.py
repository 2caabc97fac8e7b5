"""`kuntur evaluate` in-process: prequential order, outputs, clear errors."""

from __future__ import annotations

import csv

import numpy as np
import orjson
import pytest

from config.settings import load_settings
from offline.backtest.evaluate import known_labels, label_horizon, run_online
from offline.backtest.history import LabelRule, label_rule, load_history
from offline.simulator import SimConfig, write_file
from stream.cli import main


@pytest.fixture(scope="module")
def history_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("eval") / "sim.csv"
    write_file(SimConfig(seed=3, accounts=60, transactions=3000, tx_per_account_per_day=6.0, fraud_rate=0.03),
               path, progress=False)
    return path


@pytest.fixture
def settings():
    return load_settings(env={}, overrides={"warmup_genuine": 0})


def test_no_label_is_learned_before_it_arrives(history_file, settings):
    h = load_history(history_file)
    with_labels = run_online(h, label_rule(h, "1d"), settings)
    never = run_online(h, LabelRule(10_000 * 86400.0), settings)  # labels arrive after the file ends
    first_report = h.ts[0] + 86400
    before = h.ts <= first_report
    assert np.array_equal(with_labels.scores[before], never.scores[before])
    assert not np.allclose(with_labels.scores[~before], never.scores[~before])
    assert never.detector.model.examples_seen == 0
    assert with_labels.detector.model.examples_seen > 1000


def test_horizon_is_stretched_past_a_fixed_delay_so_no_label_is_lost(history_file, settings):
    h = load_history(history_file)
    assert label_horizon(settings, LabelRule(7 * 86400.0)) == 7 * 86400.0 + 1
    run = run_online(h, LabelRule(7 * 86400.0), settings)
    assert run.detector.counts["late-after-horizon"] == 0


def test_baseline_training_labels_follow_the_same_arrival_rule(history_file):
    h = load_history(history_file)
    train_y, known_at = known_labels(h, LabelRule(None), 7 * 86400.0)
    reported = ~np.isnan(h.label_times)
    assert np.array_equal(known_at[reported], h.label_times[reported])
    assert np.allclose(known_at[~reported], h.ts[~reported] + 7 * 86400.0)
    assert not train_y[~reported].any()
    assert train_y.sum() == np.sum(reported & (h.labels == 1))


def test_cli_writes_json_scores_and_report(history_file, tmp_path, capsys):
    out = tmp_path / "s.json"
    scores = tmp_path / "scores.csv"
    report = tmp_path / "r.html"
    rc = main(["evaluate", str(history_file), "--label-delay", "2d", "--test-start", "2026-01-03",
               "--budget", "5,2", "--json", str(out), "--scores-out", str(scores), "--report", str(report),
               "--no-progress"])
    assert rc == 0
    summary = orjson.loads(out.read_bytes())
    run = summary["runs"][0]
    assert run["name"] == "online gam-pairs" and run["budget_k"] == 5
    assert set(run["precision_at_k"]) == {"5", "2"} and run["precision_at_k"]["5"] == run["precision_at_budget"]
    assert 0.5 < run["roc_auc"] <= 1.0
    assert summary["meta"]["test_transactions"] < summary["meta"]["transactions"] == 3000
    with open(scores, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3000 and {"transaction_id", "score", "label"} <= set(rows[0])
    assert "<html" in report.read_text()[:200].lower()
    printed = capsys.readouterr().out
    assert "online gam-pairs" in printed and "P@budget" in printed


def test_cli_errors_are_clear(history_file, tmp_path, capsys):
    assert main(["evaluate", str(history_file), "--columns", "label=NOPE", "--no-progress"]) == 2
    assert "not in the file: label=NOPE" in capsys.readouterr().err
    no_label = tmp_path / "nolabel.csv"
    no_label.write_text("transaction_id,account_id,timestamp,amount\nt,a,2026-01-01T00:00:00Z,5\n")
    assert main(["evaluate", str(no_label), "--no-progress"]) == 2
    assert "no label column" in capsys.readouterr().err
    assert main(["evaluate", str(history_file), "--test-start", "2030-01-01", "--no-progress"]) == 2
    assert "test-start" in capsys.readouterr().err
