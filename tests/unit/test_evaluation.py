from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest

from offline.backtest.metrics import (
    alerts_per_day,
    average_precision,
    card_precision_at_k,
    curve_points,
    daily_precision_at_k,
    roc_auc,
    summarize,
    threshold_metrics,
)

metrics = pytest.importorskip("sklearn.metrics")


def _tied_data(seed: int, n: int = 2000, rate: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.random(n) < rate
    s = np.round(rng.random(n) * 0.7 + y * rng.random(n) * 0.5, 1)  # ~12 distinct values: many ties
    return y, s


@pytest.mark.parametrize("seed", range(6))
def test_roc_auc_and_average_precision_match_sklearn_with_ties(seed: int) -> None:
    y, s = _tied_data(seed)
    assert roc_auc(y, s) == pytest.approx(metrics.roc_auc_score(y, s), abs=1e-12)
    assert average_precision(y, s) == pytest.approx(metrics.average_precision_score(y, s), abs=1e-12)


def test_metrics_match_sklearn_on_continuous_scores_and_float32() -> None:
    rng = np.random.default_rng(7)
    y = rng.random(5000) < 0.02
    s = (rng.random(5000) + y * 0.3).astype(np.float32)
    assert roc_auc(y, s) == pytest.approx(metrics.roc_auc_score(y, s), abs=1e-12)
    assert average_precision(y, s) == pytest.approx(metrics.average_precision_score(y, s), abs=1e-12)


def test_all_scores_tied_is_chance() -> None:
    y = np.array([0, 1, 0, 1, 0], dtype=bool)
    s = np.zeros(5)
    assert roc_auc(y, s) == 0.5
    assert average_precision(y, s) == pytest.approx(0.4)


def test_undefined_metrics_are_nan() -> None:
    s = np.array([0.1, 0.5, 0.9])
    assert math.isnan(roc_auc([False, False, False], s))
    assert math.isnan(roc_auc([True, True, True], s))
    assert math.isnan(average_precision([False, False, False], s))
    assert average_precision([True, True, True], s) == 1.0


def test_nan_scores_are_refused() -> None:
    with pytest.raises(ValueError, match="NaN"):
        roc_auc([True, False], [0.5, float("nan")])


def test_threshold_metrics_match_sklearn() -> None:
    y, s = _tied_data(3)
    alert = (s >= 0.6) | (np.arange(len(s)) % 97 == 0)  # a rule forces a few alerts below the threshold
    m = threshold_metrics(y, alert)
    assert m["precision"] == pytest.approx(metrics.precision_score(y, alert))
    assert m["recall"] == pytest.approx(metrics.recall_score(y, alert))
    assert m["f1"] == pytest.approx(metrics.f1_score(y, alert))
    assert m["alerts"] == int(alert.sum())
    assert m["tp"] + m["fp"] == m["alerts"]
    assert m["tp"] + m["fn"] == int(y.sum())


def test_threshold_metrics_without_alerts_or_frauds_is_zero() -> None:
    m = threshold_metrics([False, False], [False, False])
    assert (m["precision"], m["recall"], m["f1"], m["alerts"]) == (0.0, 0.0, 0.0, 0)
    with pytest.raises(ValueError):
        threshold_metrics([True], [True, False])


def test_daily_precision_at_k_hand_computed() -> None:
    # day 0: account 1 scores 0.9 (one fraud tx of two), account 2 0.8 (genuine), account 3 0.7 (fraud),
    #        account 4 0.1 (fraud, below the budget)
    # day 1: only account 1 (genuine that day) -> fewer accounts than k
    day = [0, 0, 0, 0, 0, 0, 1]
    account = [1, 1, 2, 3, 4, 2, 1]
    y = [0, 1, 0, 1, 1, 0, 0]
    s = [0.9, 0.2, 0.8, 0.7, 0.1, 0.3, 0.95]
    rows, mean = daily_precision_at_k(day, account, y, s, k=2)
    assert rows == [
        {"day": "1970-01-01", "precision": 0.5, "accounts": 4, "frauds": 3, "hits": 1.0},
        {"day": "1970-01-02", "precision": 0.0, "accounts": 1, "frauds": 0, "hits": 0.0},
    ]
    assert mean == 0.25
    rows, mean = daily_precision_at_k(day, account, y, s, k=3)
    assert rows[0]["precision"] == pytest.approx(2 / 3)
    rows, _ = daily_precision_at_k(day, account, y, s, k=10)
    assert rows[0]["precision"] == 0.75  # all 4 accounts reviewed, 3 fraudulent


def test_daily_precision_at_k_shares_tied_slots() -> None:
    # four accounts tied at 0.5 for the last of 2 slots after account 9 (0.9, fraud); 1 of the 4 is fraud
    rows, _ = daily_precision_at_k([19000] * 5, [9, 1, 2, 3, 4], [1, 0, 1, 0, 0], [0.9, 0.5, 0.5, 0.5, 0.5], k=2)
    assert rows[0]["day"] == "2022-01-08"
    assert rows[0]["hits"] == pytest.approx(1.25)
    assert rows[0]["precision"] == pytest.approx(0.625)
    all_zero, _ = daily_precision_at_k([0] * 4, [0, 1, 2, 3], [1, 0, 0, 0], [0.0] * 4, k=2)
    assert all_zero[0]["precision"] == pytest.approx(0.25)  # the base rate, whatever the account order


def _naive_daily(day: np.ndarray, account: np.ndarray, y: np.ndarray, s: np.ndarray, k: int) -> dict[int, float]:
    best: dict[tuple[int, int], float] = defaultdict(lambda: -np.inf)
    fraud: dict[tuple[int, int], bool] = defaultdict(bool)
    for d, a, yy, ss in zip(day.tolist(), account.tolist(), y.tolist(), s.tolist(), strict=True):
        best[(d, a)] = max(best[(d, a)], ss)
        fraud[(d, a)] |= yy
    per_day: dict[int, list[tuple[float, bool]]] = defaultdict(list)
    for (d, a), ss in best.items():
        per_day[d].append((ss, fraud[(d, a)]))
    out = {}
    for d, accs in per_day.items():
        top = sorted(accs, key=lambda p: -p[0])[:k]
        out[d] = sum(f for _, f in top) / len(top)
    return out


def test_daily_precision_at_k_matches_naive_reduction() -> None:
    rng = np.random.default_rng(11)
    n = 3000
    day = rng.integers(18000, 18010, n)
    account = rng.integers(0, 400, n)
    y = rng.random(n) < 0.05
    s = rng.random(n) + y * 0.2
    rows, mean = daily_precision_at_k(day, account, y, s, k=15)
    expected = _naive_daily(day, account, y, s, 15)
    assert len(rows) == 10
    for row, d in zip(rows, sorted(expected), strict=True):
        assert row["precision"] == pytest.approx(expected[d])
    assert mean == pytest.approx(np.mean(list(expected.values())))


def test_daily_precision_at_k_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        daily_precision_at_k([0], [0], [True], [0.5], k=0)
    with pytest.raises(ValueError):
        daily_precision_at_k([0, 0], [0], [True], [0.5], k=1)
    rows, mean = daily_precision_at_k([], [], [], [], k=5)
    assert rows == [] and math.isnan(mean)


def test_alerts_per_day_counts_days_without_alerts() -> None:
    assert alerts_per_day([5, 3, 3, 5, 5], [True, False, False, True, False]) == [
        {"day": "1970-01-04", "alerts": 0, "transactions": 2},
        {"day": "1970-01-06", "alerts": 2, "transactions": 3},
    ]


def test_curve_points_match_sklearn_curves() -> None:
    y, s = _tied_data(5, n=400)
    recall, precision = curve_points(y, s, "pr")
    p_ref, r_ref, _ = metrics.precision_recall_curve(y, s)
    np.testing.assert_allclose(recall, r_ref[::-1])
    np.testing.assert_allclose(precision, p_ref[::-1])
    fpr, tpr = curve_points(y, s, "roc")
    f_ref, t_ref, _ = metrics.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, f_ref)
    np.testing.assert_allclose(tpr, t_ref)


def test_curve_points_downsample_keeps_the_ends() -> None:
    rng = np.random.default_rng(2)
    y = rng.random(20000) < 0.1
    s = rng.random(20000) + y * 0.3
    fpr, tpr = curve_points(y, s, "roc", max_points=100)
    assert 2 <= len(fpr) <= 100
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0)
    x, yy = curve_points(np.zeros(5, dtype=bool), np.arange(5.0), "pr")
    assert len(x) == len(yy) == 0
    with pytest.raises(ValueError):
        curve_points(y, s, "det")  # type: ignore[arg-type]


def test_summarize_keys_and_values() -> None:
    rng = np.random.default_rng(4)
    n = 5000
    ts = np.sort(rng.uniform(0, 10 * 86400, n))
    y = rng.random(n) < 0.03
    s = rng.random(n) + y * 0.5
    alert = s >= 0.9
    account = rng.integers(0, 300, n)
    out = summarize(y, s, alert, ts, account, 20)
    assert set(out) >= {
        "transactions", "frauds", "fraud_rate", "roc_auc", "average_precision", "precision", "recall", "f1",
        "alerts", "alerts_per_day_mean", "precision_at_budget", "budget_k", "days",
    }  # fmt: skip
    assert out["transactions"] == n and out["frauds"] == int(y.sum()) and out["days"] == 10
    assert out["roc_auc"] == pytest.approx(metrics.roc_auc_score(y, s))
    assert out["alerts_per_day_mean"] == pytest.approx(alert.sum() / 10)
    _, mean = daily_precision_at_k((ts // 86400).astype(int), account, y, s, 20)
    assert out["precision_at_budget"] == pytest.approx(mean)
    assert out["budget_k"] == 20


def _handbook_card_precision(day, account, y, s, k):
    """The Fraud Detection Handbook's card_precision_top_k (remove_detected_compromised_cards)."""
    import pandas as pd

    df = pd.DataFrame({"day": day, "account": account, "y": y.astype(int), "s": s})
    detected: list[int] = []
    out = []
    for d in sorted(df.day.unique()):
        day_df = df[(df.day == d) & ~df.account.isin(detected)]
        per = day_df.groupby("account")[["s", "y"]].max().reset_index()
        top = per.sort_values(["s", "account"], ascending=[False, True]).head(k)
        found = list(top[top.y == 1].account)
        detected.extend(found)
        out.append(len(found) / k)
    return out


def test_card_precision_removes_accounts_detected_on_earlier_days() -> None:
    rng = np.random.default_rng(7)
    n = 4000
    day = np.sort(rng.integers(0, 12, n))
    account = rng.integers(0, 150, n)
    y = rng.random(n) < 0.05
    s = rng.random(n) + y * 0.4
    daily, mean = card_precision_at_k(day, account, y, s, 10)
    assert daily == pytest.approx(_handbook_card_precision(day, account, y, s, 10))
    assert mean == pytest.approx(np.mean(daily))
    assert mean <= daily_precision_at_k(day, account, y, s, 10)[1] + 1e-12
    assert summarize(y, s, s > 0.9, day * 86400.0, account, 10)["card_precision_at_budget"] == pytest.approx(mean)


def test_breakdown_tables_of_a_run():
    from offline.backtest.breakdown import fraud_amounts, rule_precision, threshold_table, typology_recall

    y = np.array([True, True, True, False, False, False])
    alert = np.array([True, False, True, True, False, False])
    s = np.array([0.9, 0.2, 0.6, 0.7, 0.1, 0.3])
    rows = typology_recall(y, alert, ["card_testing", "card_testing", None, None, None, None])
    assert rows == [{"typology": "card_testing", "frauds": 2, "caught": 1, "recall": 0.5},
                    {"typology": "(none given)", "frauds": 1, "caught": 1, "recall": 1.0}]
    rules = rule_precision({"card-testing": np.array([1, 1, 0, 1, 0, 0], bool)}, y, frozenset({"card-testing"}))
    assert rules == [{"rule": "card-testing", "fired": 3, "frauds": 2, "precision": 2 / 3, "alerts_by_itself": True}]
    amount = np.array([100.0, 50.0, 30.0, 5.0, 5.0, 5.0])
    amounts = fraud_amounts(y, alert, amount, ["PEN", "PEN", "USD", "PEN", "", ""])
    assert [(r["currency"], r["caught_amount"], r["missed_amount"]) for r in amounts] == [
        ("PEN", 100.0, 50.0), ("USD", 30.0, 0.0)]
    table = threshold_table(y, s, days=2, threshold=0.65, thresholds=(0.5, 0.8))
    assert [(r["threshold"], r["alerts"], r["alerts_per_day"], r["current"]) for r in table] == [
        (0.5, 3, 1.5, False), (0.65, 2, 1.0, True), (0.8, 1, 0.5, False)]
    assert table[0]["precision"] == 2 / 3 and table[0]["recall"] == 2 / 3
