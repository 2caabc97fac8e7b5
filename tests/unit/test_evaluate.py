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


def _no_genuine_history(path):
    """Two days of traffic; frauds reported within hours, genuine ones never: with a 7-day
    horizon the model cannot learn a genuine example (the issue's 6.7-day history)."""
    rows = ["transaction_id,account_id,merchant_id,timestamp,amount,label,label_time"]
    for i in range(400):
        t = 1767243600 + i * 430  # 2026-01-01 Lima, every ~7 minutes for 2 days
        fraud = i % 40 == 7
        rows.append(f"t{i},a{i % 25},m{i % 7},{t},{900.0 if fraud else 20.0 + i % 13},{int(fraud)},"
                    f"{t + 3600 if fraud else ''}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_cli_warns_when_the_figures_would_mislead(tmp_path, capsys):
    history = _no_genuine_history(tmp_path / "short.csv")
    out = tmp_path / "s.json"
    report = tmp_path / "r.html"
    assert main(["evaluate", str(history), "--json", str(out), "--report", str(report), "--no-progress"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("warning: ")]
    summary = orjson.loads(out.read_bytes())
    codes = [w["code"] for w in summary["warnings"]]
    assert codes[:2] == ["no-genuine-learned", "warmup-shorter-than-horizon"]
    assert len(lines) == len(codes) and "learned no genuine example" in lines[0]
    assert summary["runs"][0]["genuine_learned"] == 0
    text = report.read_text()
    assert text.index('class="warnings"') < text.index("<h2>Summary</h2>")
    assert "learned no genuine example" in text


def test_a_window_outside_the_file_fails_before_the_run_and_names_the_files_range(history_file, capsys,
                                                                                  monkeypatch):
    import offline.backtest.evaluate as evaluate_module

    def never(*a, **kw):
        raise AssertionError("the history was processed")

    monkeypatch.setattr(evaluate_module, "load_history", never)
    monkeypatch.setattr(evaluate_module, "run_online", never)
    assert main(["evaluate", str(history_file), "--test-start", "2026-02-15", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--test-start 2026-02-15 is after the history's last transaction (2026-01-09 " in err
    assert "the file covers 2026-01-01 00:15 America/Lima – 2026-01-09 16:23 America/Lima" in err
    assert main(["evaluate", str(history_file), "--test-end", "2025-12-31", "--no-progress"]) == 2
    assert "--test-end 2025-12-31 is at or before the history's first transaction" in capsys.readouterr().err
    assert main(["evaluate", str(history_file), "--test-start", "2026-01-05", "--test-end", "2026-01-04",
                 "--no-progress"]) == 2
    assert "is not before --test-end" in capsys.readouterr().err
    assert main(["evaluate", str(history_file), "--test-start", "next tuesday", "--no-progress"]) == 2
    assert "use an ISO date" in capsys.readouterr().err


def test_test_start_without_an_offset_is_read_in_the_timezone(history_file, tmp_path):
    def window(*extra):
        out = tmp_path / "w.json"
        assert main(["evaluate", str(history_file), "--label-delay", "2d", *extra, "--json", str(out),
                     "--no-progress"]) == 0
        return orjson.loads(out.read_bytes())["meta"]["test_transactions"]

    h = load_history(history_file)
    lima_midnight = 1767243600 + 3 * 86400  # 2026-01-04T00:00-05:00
    assert window("--test-start", "2026-01-04") == int(np.sum(h.ts >= lima_midnight))
    assert window("--test-start", "2026-01-04T00:00:00-05:00") == window("--test-start", "2026-01-04")
    assert window("--test-start", "2026-01-04", "--timezone", "UTC") == int(np.sum(h.ts >= lima_midnight - 5 * 3600))


def test_checkpoint_out_writes_the_trained_model_a_worker_loads(history_file, tmp_path, capsys, monkeypatch):
    from features.catalogue import FEATURE_NAMES
    from models.checkpoint import load_checkpoint

    key = "k" * 64
    path = tmp_path / "data" / "model.ckpt"
    out = tmp_path / "s.json"
    monkeypatch.delenv("KUNTUR_MODEL_KEY_FILE", raising=False)
    monkeypatch.delenv("KUNTUR_MODEL_KEY", raising=False)
    # no key: refused before the run, nothing written
    assert main(["evaluate", str(history_file), "--checkpoint-out", str(path), "--no-progress"]) == 2
    assert "no model key" in capsys.readouterr().err and not path.exists()
    monkeypatch.setenv("KUNTUR_MODEL_KEY", key)
    assert main(["evaluate", str(history_file), "--label-delay", "2d", "--checkpoint-out", str(path),
                 "--json", str(out), "--no-progress"]) == 0
    assert f"checkpoint: {path}" in capsys.readouterr().out
    summary = orjson.loads(out.read_bytes())
    det = load_checkpoint(path, key.encode(), feature_names=FEATURE_NAMES)
    assert det.model.examples_seen == summary["runs"][0]["examples_seen"] > 2000
    assert det.model.frauds_seen > 0 and det.warm
    assert summary["checkpoint"]["version"] == det.model.version == "gam-pairs-asinh.g1"
    # the worker's settings, not the backtest's stretched horizon and buffer; no history left pending
    assert det.label_horizon_s == 7 * 86400 and det.pending_capacity == 500_000 and len(det.pending) == 0
    # the model scores as the backtest's last state did: it is the same model
    x = dict.fromkeys(FEATURE_NAMES, 1.0)
    assert 0.0 <= det.model.score_one(x) <= 1.0
    # an existing checkpoint (a worker's model) is never replaced
    assert main(["evaluate", str(history_file), "--checkpoint-out", str(path), "--no-progress"]) == 2
    assert "the file exists" in capsys.readouterr().err
