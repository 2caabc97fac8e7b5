from __future__ import annotations

import argparse
import importlib.util
import sys

import numpy as np
import pytest

from offline.backtest.metrics import roc_auc
from offline.errors import BaselineUnavailable, UnknownBaselineError

pytest.importorskip("sklearn")

from offline.backtest.baseline import (  # noqa: E402
    BASELINES,
    require_baseline,
    require_smote,
    run_baseline,
    smote_oversample,
)
from offline.backtest.cli_args import SmoteFlag  # noqa: E402

DAY = 86400.0
LABEL_DELAY = 3 * DAY  # frauds are reported 3 days later
HORIZON = 7 * DAY  # unreported transactions count as genuine after 7 days


def _problem(n: int = 3000, days: int = 30, seed: int = 0) -> tuple[np.ndarray, ...]:
    """~3 % frauds that two of six features separate (noisily)."""
    rng = np.random.default_rng(seed)
    ts = np.sort(rng.uniform(0, days * DAY, n)) + 1_700_000_000.0
    X = rng.normal(size=(n, 6)).astype(np.float32)
    y = X[:, 0] + X[:, 1] + rng.normal(scale=0.7, size=n) > 3.0
    X[:, 5] *= 1000.0  # an amount-like column on another scale
    known_at = np.where(y, ts + LABEL_DELAY, ts + HORIZON)
    return X, ts, y, known_at


@pytest.fixture(scope="module")
def fitted() -> tuple[tuple[np.ndarray, ...], object, list[int]]:
    data = _problem()
    X, ts, y, known_at = data
    done: list[int] = []
    result = run_baseline(X, ts, y, known_at, n_estimators=30, progress=done.append)
    return data, result, done


def test_problem_is_imbalanced() -> None:
    _, _, y, _ = _problem()
    assert 0.015 < y.mean() < 0.06


def test_no_training_label_is_known_after_its_retrain_point(fitted) -> None:
    (X, ts, y, known_at), result, _ = fitted
    assert len(result.retrains) == 4  # days 7, 14, 21, 28 of 30
    for r in result.retrains:
        T = r["time"]
        assert r["max_known_at"] <= T
        assert r["window_start"] == T - 28 * DAY
        assert r["window_start"] <= r["train_start"] <= r["train_end"] < T
        visible = (ts >= T - 28 * DAY) & (ts < T) & (known_at <= T)
        assert r["rows"] == int(visible.sum())
        assert r["positives"] == int(y[visible].sum())
        assert r["score_start"] == T
    # a model trained at T never scores a row before T
    starts = [r["time"] for r in result.retrains]
    assert starts == sorted(starts)
    assert np.all(np.diff(starts) == 7 * DAY)


def test_rows_before_the_first_model_score_zero(fitted) -> None:
    (X, ts, y, known_at), result, done = fitted
    first = result.retrains[0]["time"]
    assert first == ts[0] + 7 * DAY
    assert np.all(result.scores[ts < first] == 0.0)
    assert result.scores.shape == (len(ts),) and result.scores.dtype == np.float64
    assert sum(done) == len(ts)  # progress got increments covering every row


def test_random_forest_beats_random(fitted) -> None:
    (X, ts, y, known_at), result, _ = fitted
    scored = ts >= result.retrains[1]["time"]
    assert roc_auc(y[scored], result.scores[scored]) > 0.8
    assert result.feature_importances is not None and result.feature_importances.shape == (6,)
    assert result.feature_importances[:2].sum() > result.feature_importances[2:].sum()


def test_search_picks_a_grid_point_and_reuses_it(fitted) -> None:
    _, result, _ = fitted
    trials = result.params["search"]
    assert len(trials) == 4 and all("average_precision" in t for t in trials)
    best = max(trials, key=lambda t: t["average_precision"])["params"]
    fits = [r for r in result.retrains if r["model"] == "fitted"]
    at = next(i for i, r in enumerate(fits) if r.get("searched"))
    assert all(r["params"] == best for r in fits[at:])
    assert all(r["params"] == {"max_depth": 16, "min_samples_leaf": 10} for r in fits[:at])  # defaults until then
    assert result.params["max_depth"] == best["max_depth"]


def test_labels_never_known_are_never_learned() -> None:
    X, ts, y, known_at = _problem(n=1500)
    never = np.where(y, np.inf, known_at)  # no fraud is ever reported
    result = run_baseline(X, ts, y, never, n_estimators=10, search=False)
    assert all(r["positives"] == 0 and r["model"] == "none" for r in result.retrains)
    assert np.all(result.scores == 0.0)


def test_unsorted_rows_are_scored_in_the_callers_order(fitted) -> None:
    (X, ts, y, known_at), result, _ = fitted
    perm = np.random.default_rng(1).permutation(len(ts))
    shuffled = run_baseline(X[perm], ts[perm], y[perm], known_at[perm], n_estimators=30)
    np.testing.assert_allclose(shuffled.scores, result.scores[perm])


def test_smote_path_runs_and_balances() -> None:
    X, ts, y, known_at = _problem(n=1500)
    result = run_baseline(X, ts, y, known_at, smote=True, search=False, n_estimators=10)
    fits = [r for r in result.retrains if r["model"] == "fitted"]
    assert fits and all(r["synthetic"] == max(0, r["rows"] - 2 * r["positives"]) for r in fits)
    assert any(r["synthetic"] > 0 for r in fits)
    assert result.params["smote"] is True
    Xs, ys = smote_oversample(X[:600], y[:600], np.random.default_rng(0))
    assert ys.sum() == (~ys).sum() and len(Xs) == len(ys)
    lo, hi = X[:600][y[:600]].min(axis=0), X[:600][y[:600]].max(axis=0)
    assert np.all((Xs[600:] >= lo - 1e-3) & (Xs[600:] <= hi + 1e-3))  # synthetic frauds stay in the frauds' hull box


def test_unknown_kind_is_a_clear_error() -> None:
    X, ts, y, known_at = _problem(n=100)
    with pytest.raises(UnknownBaselineError, match="random-forest"):
        run_baseline(X, ts, y, known_at, kind="gradient-boosting")
    with pytest.raises(UnknownBaselineError, match="xgboost"):
        require_baseline("svm")
    require_baseline("random-forest")
    assert BASELINES == ("random-forest", "xgboost", "balanced-bagging")


def test_balanced_bagging_and_the_row_cap_learn_without_future_labels() -> None:
    X, ts, y, known_at = _problem(n=3000)
    result = run_baseline(X, ts, y, known_at, kind="balanced-bagging", n_estimators=10, max_train_rows=500)
    trained = [r for r in result.retrains if r.get("model") == "fitted"]
    assert trained and all(r["rows"] <= 500 + r["positives"] for r in trained)
    assert all(r["max_known_at"] <= r["time"] for r in trained)
    later = result.scores[ts >= trained[0]["time"]]
    assert later.max() > 0.5 > later.min()


def test_missing_libraries_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    X, ts, y, known_at = _problem(n=100)
    monkeypatch.setitem(sys.modules, "xgboost", None)
    with pytest.raises(BaselineUnavailable, match="xgboost"):
        run_baseline(X, ts, y, known_at, kind="xgboost")
    with pytest.raises(BaselineUnavailable, match="pip install xgboost"):
        require_baseline("xgboost")
    monkeypatch.setitem(sys.modules, "sklearn.ensemble", None)
    with pytest.raises(BaselineUnavailable, match=r"kuntur\[eval\]"):
        run_baseline(X, ts, y, known_at)


def test_smote_needs_imbalanced_learn_and_says_so_when_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smote", action=SmoteFlag)
    assert parser.parse_args([]).smote is False
    if importlib.util.find_spec("imblearn") is not None:
        require_smote()
        assert parser.parse_args(["--smote"]).smote is True
    monkeypatch.setitem(sys.modules, "imblearn.over_sampling", None)  # as if not installed
    with pytest.raises(BaselineUnavailable, match="imbalanced-learn"):
        require_smote()
    X, _, y, _ = _problem(n=600)
    with pytest.raises(BaselineUnavailable, match=r"kuntur\[eval\]"):
        smote_oversample(X, y, np.random.default_rng(0))
    with pytest.raises(SystemExit):
        parser.parse_args(["--smote"])
