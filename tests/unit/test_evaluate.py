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
    assert run["name"] == "online gam-pairs-asinh" and run["budget_k"] == 5
    assert set(run["precision_at_k"]) == {"5", "2"} and run["precision_at_k"]["5"] == run["precision_at_budget"]
    assert 0.5 < run["roc_auc"] <= 1.0
    assert summary["meta"]["test_transactions"] < summary["meta"]["transactions"] == 3000
    with open(scores, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3000 and {"transaction_id", "score", "label"} <= set(rows[0])
    assert "<html" in report.read_text()[:200].lower()
    printed = capsys.readouterr().out
    assert "online gam-pairs-asinh" in printed and "P@budget" in printed


def test_cli_errors_are_clear(history_file, tmp_path, capsys):
    assert main(["evaluate", str(history_file), "--columns", "label=NOPE", "--no-progress"]) == 2
    assert "not in the file: label=NOPE" in capsys.readouterr().err
    no_label = tmp_path / "nolabel.csv"
    no_label.write_text("transaction_id,account_id,timestamp,amount\nt,a,2026-01-01T00:00:00Z,5\n")
    assert main(["evaluate", str(no_label), "--no-progress"]) == 2
    assert "no label column" in capsys.readouterr().err
    assert main(["evaluate", str(history_file), "--test-start", "2030-01-01", "--no-progress"]) == 2
    assert "test-start" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["scores.csv", "scores.csv.gz", "scores.parquet"])
def test_scores_out_writes_the_format_its_extension_names(history_file, tmp_path, name):
    import pandas as pd

    path = tmp_path / name
    assert main(["evaluate", str(history_file), "--label-delay", "2d", "--scores-out", str(path), "--no-progress"]) == 0
    magic = {".parquet": b"PAR1", ".gz": b"\x1f\x8b", ".csv": b"tran"}[path.suffix]
    assert path.read_bytes().startswith(magic)
    frame = pd.read_parquet(path) if name.endswith(".parquet") else pd.read_csv(path)
    assert len(frame) == 3000 and list(frame.columns)[:4] == ["transaction_id", "account_id", "event_time", "score"]
    assert frame["score"].between(0, 1).all()


def test_scores_out_refuses_an_unknown_extension_before_the_run(history_file, tmp_path, capsys):
    assert main(["evaluate", str(history_file), "--scores-out", str(tmp_path / "s.xlsx"), "--no-progress"]) == 2
    assert "unknown extension" in capsys.readouterr().err
    assert not (tmp_path / "s.xlsx").exists()


def test_zero_amount_transactions_are_scored(tmp_path, settings):
    rows = ["transaction_id,account_id,merchant_id,timestamp,amount,label"]
    rows += [f"t{i},a{i % 3},m{i % 2},2026-01-01T{i // 60:02d}:{i % 60:02d}:00Z,{0 if i % 5 == 0 else 12.5},0"
             for i in range(200)]
    path = tmp_path / "zero.csv"
    path.write_text("\n".join(rows) + "\n")
    h = load_history(path)
    assert len(h) == 200 and not h.rejected
    run = run_online(h, LabelRule(86400.0), settings)
    assert not np.isnan(run.scores).any()


def test_pending_buffer_holds_a_whole_label_horizon_so_no_label_is_lost(history_file):
    h = load_history(history_file)
    small = load_settings(env={}, overrides={"warmup_genuine": 0, "pending_capacity": 100})
    run = run_online(h, LabelRule(2 * 86400.0), small)
    assert run.pending_capacity > 100
    assert run.detector.counts["unknown-transaction"] == 0
    assert run.detector.model.examples_seen > 2000
