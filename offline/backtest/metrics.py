"""Offline quality metrics of a fraud scorer: scikit-learn's, plus the alert-budget ones it lacks.

``kuntur evaluate`` scores ~1M transactions per run and reports them for the streaming model
and each batch baseline side by side, so every metric is defined once, here:

* :func:`roc_auc` and :func:`average_precision` — scikit-learn's ``roc_auc_score`` and
  ``average_precision_score`` (ties share a step), NaN where a class is missing instead of
  an exception or a warning.
* :func:`curve_points` — scikit-learn's ``precision_recall_curve`` / ``roc_curve``, thinned
  to a plot-sized number of points.
* :func:`threshold_metrics` — precision/recall/F1 of the alert decision (threshold *or*
  forced by a rule, so it takes the boolean alerts, not a threshold).
* :func:`card_precision_at_k` — the literature's protocol (Fraud Detection Handbook,
  ``card_precision_top_k``): as :func:`daily_precision_at_k`, but accounts found
  fraudulent in an earlier day's top k are removed from later days (investigators block
  a compromised card, so finding it again is worth nothing).
* :func:`daily_precision_at_k` — the alert-budget metric investigators live by ("card
  precision top-k" of the Fraud Detection Handbook): each day, the share of fraudulent
  accounts among the k accounts with the highest score that day.

scikit-learn is part of the ``eval`` extra; the worker's live gauges (``models/quality.py``)
do not use this module.

>>> import numpy as np
>>> y = np.array([False, False, True, True])
>>> s = np.array([0.1, 0.4, 0.35, 0.8])
>>> roc_auc(y, s), round(average_precision(y, s), 4)
(0.75, 0.8333)
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from offline.timefmt import day_iso

try:
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve
except ImportError as exc:  # pragma: no cover - the eval extra is missing
    raise ImportError("offline metrics need scikit-learn: pip install 'kuntur[eval]'") from exc

__all__ = [
    "alerts_per_day",
    "average_precision",
    "card_precision_at_k",
    "curve_points",
    "daily_precision_at_k",
    "roc_auc",
    "summarize",
    "threshold_metrics",
]

_DAY_S = 86400


def _as_bool(y: Any) -> np.ndarray:
    return np.asarray(y).astype(bool, copy=False).ravel()


def _as_float(s: Any) -> np.ndarray:
    return np.asarray(s, dtype=np.float64).ravel()


def _as_scores(s: Any) -> np.ndarray:
    """Scores as float64; NaN would sort arbitrarily and silently skew every ranking metric."""
    sf = _as_float(s)
    if np.isnan(sf).any():
        raise ValueError("scores contain NaN (score unscored rows explicitly, e.g. 0.0, or drop them)")
    return sf


def roc_auc(y: Any, s: Any) -> float:
    """Area under the ROC curve: P(score of a fraud > score of a genuine), ties count half.

    NaN when only one class is present (the area is undefined).
    """
    yb, sf = _as_bool(y), _as_scores(s)
    if yb.all() or not yb.any():
        return float("nan")
    return float(roc_auc_score(yb, sf))


def average_precision(y: Any, s: Any) -> float:
    """Average precision: ``sum_n (R_n - R_{n-1}) * P_n`` over the distinct scores from highest
    to lowest (no interpolation; tied scores form one step).

    NaN when there is no fraud (recall is undefined).
    """
    yb, sf = _as_bool(y), _as_scores(s)
    if not yb.any():
        return float("nan")
    return float(average_precision_score(yb, sf))


def threshold_metrics(y: Any, alert: Any) -> dict[str, float | int]:
    """Precision, recall and F1 of the alert decision.

    ``alert`` is the boolean decision per transaction — ``s >= threshold | forced`` — because
    rules can force alerts below the threshold. Undefined ratios are 0.0 (no alert: precision
    0; no fraud: recall 0), as scikit-learn's ``zero_division=0``.
    """
    yb, ab = _as_bool(y), _as_bool(alert)
    if len(yb) != len(ab):
        raise ValueError(f"y has {len(yb)} rows but alert has {len(ab)}")
    tp = int(np.count_nonzero(yb & ab))
    alerts = int(np.count_nonzero(ab))
    fp = alerts - tp
    fn = int(np.count_nonzero(yb)) - tp
    precision = tp / alerts if alerts else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn, "alerts": alerts}


def _group_order(d: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Row order sorted by (day, account); one packed int64 key sorts ~10x faster than lexsort."""
    d_span = int(d.max()) - int(d.min()) + 1
    a_span = int(a.max()) - int(a.min()) + 1
    if d_span * a_span >= 2**62:
        return np.lexsort((a, d))
    return np.argsort((d - d.min()) * a_span + (a - a.min()))


def _daily_inputs(day: Any, account: Any, y: Any, s: Any, k: int) -> tuple[np.ndarray, ...]:
    """The per-day metrics' inputs as arrays of one length (``ValueError`` otherwise)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    d = np.asarray(day, dtype=np.int64).ravel()
    a = np.asarray(account, dtype=np.int64).ravel()
    yb, sf = _as_bool(y), _as_scores(s)
    if not (len(d) == len(a) == len(yb) == len(sf)):
        raise ValueError("day, account, y and s must have the same length")
    return d, a, yb, sf


def daily_precision_at_k(day: Any, account: Any, y: Any, s: Any, k: int) -> tuple[list[dict[str, Any]], float]:
    """Daily precision of the top-k accounts by score, and its mean over days.

    Each day, every account is reduced to its highest score that day and is fraudulent that
    day if any of its transactions that day is a fraud. Investigators review the ``k``
    accounts with the highest scores (all of them if fewer); precision is the share of
    frauds among those. Accounts tied at the k-th score share the remaining slots
    pro rata — the expected precision under a random tie-break — so the figure does not
    depend on account order (baselines score whole stretches 0.0 before their first model).

    ``day`` is int days since the epoch (``ts // 86400``); ``account`` an int code per row.
    Returns per-day rows ``{day (ISO date), precision, accounts, frauds, hits}`` — ``frauds``
    the fraudulent accounts that day, ``hits`` those inside the budget — and the mean
    precision (NaN if there is no day).

    >>> rows, mean = daily_precision_at_k([0, 0, 0, 1], [1, 2, 3, 1], [1, 0, 0, 0], [0.9, 0.5, 0.1, 0.3], k=2)
    >>> [(r["day"], r["precision"]) for r in rows], mean
    ([('1970-01-01', 0.5), ('1970-01-02', 0.0)], 0.25)
    """
    d, a, yb, sf = _daily_inputs(day, account, y, s, k)
    if not len(d):
        return [], float("nan")

    order = _group_order(d, a)
    d_o, a_o = d[order], a[order]
    new_group = np.empty(len(order), dtype=bool)
    new_group[0] = True
    new_group[1:] = (d_o[1:] != d_o[:-1]) | (a_o[1:] != a_o[:-1])
    starts = np.flatnonzero(new_group)
    g_day = d_o[starts]
    g_score = np.maximum.reduceat(sf[order], starts)
    g_fraud = np.maximum.reduceat(yb[order].astype(np.int8), starts).astype(bool)

    new_day = np.empty(len(g_day), dtype=bool)
    new_day[0] = True
    np.not_equal(g_day[1:], g_day[:-1], out=new_day[1:])
    day_start = np.flatnonzero(new_day)
    days = g_day[day_start]
    g_day_idx = np.cumsum(new_day) - 1
    accounts = np.diff(np.append(day_start, len(g_day)))
    kk = np.minimum(k, accounts)
    by_score = np.argsort(-g_score)
    by_score = by_score[np.argsort(g_day_idx[by_score], kind="stable")]
    boundary = g_score[by_score[day_start + kk - 1]][g_day_idx]
    above = g_score > boundary
    tied = g_score == boundary
    n_days = len(days)
    n_above = np.bincount(g_day_idx, weights=above, minlength=n_days)
    f_above = np.bincount(g_day_idx, weights=above & g_fraud, minlength=n_days)
    n_tied = np.bincount(g_day_idx, weights=tied, minlength=n_days)
    f_tied = np.bincount(g_day_idx, weights=tied & g_fraud, minlength=n_days)
    frauds = np.bincount(g_day_idx, weights=g_fraud, minlength=n_days)
    hits = f_above + (kk - n_above) * f_tied / np.maximum(n_tied, 1)
    precision = hits / kk

    rows = [
        {"day": day_iso(dd), "precision": float(p), "accounts": int(n), "frauds": int(f), "hits": float(h)}
        for dd, p, n, f, h in zip(days, precision, accounts, frauds, hits, strict=True)
    ]
    return rows, float(precision.mean())


def card_precision_at_k(day: Any, account: Any, y: Any, s: Any, k: int) -> tuple[list[float], float]:
    """Card precision top-k with detected cards removed: per day precision, and its mean.

    Each day, every account not yet detected is reduced to its highest score that day and
    is fraudulent that day if any of its transactions that day is; the ``k`` highest
    (ties broken by account code) are reviewed, precision is frauds among them / ``k``,
    and the fraudulent ones join the detected accounts, skipped on every later day. The
    divisor is ``k`` even when fewer accounts are left, as in the Handbook.

    >>> card_precision_at_k([0, 0, 1, 1], [1, 2, 1, 2], [1, 0, 1, 1], [0.9, 0.5, 0.9, 0.1], k=1)
    ([1.0, 1.0], 1.0)
    """
    d, a, yb, sf = _daily_inputs(day, account, y, s, k)
    if not len(d):
        return [], float("nan")
    order = np.lexsort((a, d))
    d_o, a_o, y_o, s_o = d[order], a[order], yb[order].astype(np.int8), sf[order]
    new_group = np.empty(len(order), dtype=bool)
    new_group[0] = True
    new_group[1:] = (d_o[1:] != d_o[:-1]) | (a_o[1:] != a_o[:-1])
    starts = np.flatnonzero(new_group)
    g_day, g_acc = d_o[starts], a_o[starts]
    g_score = np.maximum.reduceat(s_o, starts)
    g_fraud = np.maximum.reduceat(y_o, starts).astype(bool)
    bounds = np.flatnonzero(np.r_[True, g_day[1:] != g_day[:-1], True])
    detected: set[int] = set()
    out: list[float] = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        acc = g_acc[lo:hi]
        keep = np.fromiter((int(x) not in detected for x in acc), dtype=bool, count=len(acc)) if detected else None
        sc, fr = g_score[lo:hi], g_fraud[lo:hi]
        if keep is not None:
            acc, sc, fr = acc[keep], sc[keep], fr[keep]
        top = np.lexsort((acc, -sc))[:k]
        found = acc[top][fr[top]]
        detected.update(int(x) for x in found)
        out.append(len(found) / k)
    return out, float(np.mean(out))


def alerts_per_day(day: Any, alert: Any) -> list[dict[str, Any]]:
    """Alert volume per day: ``{day (ISO date), alerts, transactions}`` for every day with traffic."""
    d = np.asarray(day, dtype=np.int64).ravel()
    ab = _as_bool(alert)
    if len(d) != len(ab):
        raise ValueError(f"day has {len(d)} rows but alert has {len(ab)}")
    days, idx, counts = np.unique(d, return_inverse=True, return_counts=True)
    alerts = np.bincount(idx, weights=ab, minlength=len(days))
    return [
        {"day": day_iso(dd), "alerts": int(n_a), "transactions": int(n)}
        for dd, n_a, n in zip(days, alerts, counts, strict=True)
    ]


def _downsample(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep at most ``max_points`` points spread evenly along the curve's length (both ends kept)."""
    if len(x) <= max_points:
        return x, y
    step = np.hypot(np.diff(x), np.diff(y))
    arc = np.concatenate(([0.0], np.cumsum(step)))
    targets = np.linspace(0.0, arc[-1], max_points)
    keep = np.unique(np.concatenate(([0, len(x) - 1], np.searchsorted(arc, targets).clip(0, len(x) - 1))))
    return x[keep], y[keep]


def curve_points(
    y: Any, s: Any, kind: Literal["pr", "roc"] = "pr", max_points: int = 500
) -> tuple[np.ndarray, np.ndarray]:
    """A plot-sized precision-recall (``"pr"``: recall, precision) or ROC (``"roc"``: FPR, TPR) curve.

    scikit-learn's curves (one point per distinct score), thinned to at most
    ``max_points`` evenly along the curve. The PR curve runs from (0, 1) towards full recall
    and the ROC curve from (0, 0). Empty arrays when the curve is undefined (a class
    is absent: no fraud for PR, one class for ROC).
    """
    if kind not in ("pr", "roc"):
        raise ValueError(f"kind must be 'pr' or 'roc', got {kind!r}")
    if max_points < 2:
        raise ValueError(f"max_points must be >= 2, got {max_points}")
    yb, sf = _as_bool(y), _as_scores(s)
    n_pos = int(np.count_nonzero(yb))
    n_neg = len(yb) - n_pos
    empty = np.empty(0, dtype=np.float64)
    if n_pos == 0 or (kind == "roc" and n_neg == 0):
        return empty, empty
    if kind == "pr":
        precision, recall, _ = precision_recall_curve(yb, sf)
        x, yy = recall[::-1], precision[::-1]
    else:
        x, yy, _ = roc_curve(yb, sf, drop_intermediate=False)
    return _downsample(x, yy, max_points)


def summarize(y: Any, s: Any, alert: Any, ts: Any, account: Any, budget_k: int) -> dict[str, Any]:
    """Every headline number of one run over the test window, JSON-ready.

    Keys: transactions, frauds, fraud_rate, roc_auc, average_precision, precision, recall,
    f1, tp, fp, fn, alerts, alerts_per_day_mean, precision_at_budget (mean daily precision
    of the top ``budget_k`` accounts), card_precision_at_budget (the same with accounts
    detected on earlier days removed: :func:`card_precision_at_k`), budget_k, days. Undefined values (e.g. AUC with one
    class) are NaN.
    """
    yb, sf, ab = _as_bool(y), _as_scores(s), _as_bool(alert)
    t = _as_float(ts)
    if not (len(yb) == len(sf) == len(ab) == len(t)):
        raise ValueError("y, s, alert and ts must have the same length")
    n = len(yb)
    day = np.floor_divide(t, _DAY_S).astype(np.int64)
    frauds = int(np.count_nonzero(yb))
    daily, budget_mean = daily_precision_at_k(day, account, yb, sf, budget_k)
    _, card_mean = card_precision_at_k(day, account, yb, sf, budget_k)
    n_days = len(daily)
    thr = threshold_metrics(yb, ab)
    return {
        "transactions": n,
        "frauds": frauds,
        "fraud_rate": frauds / n if n else float("nan"),
        "roc_auc": roc_auc(yb, sf),
        "average_precision": average_precision(yb, sf),
        "precision": thr["precision"],
        "recall": thr["recall"],
        "f1": thr["f1"],
        "tp": thr["tp"],
        "fp": thr["fp"],
        "fn": thr["fn"],
        "alerts": thr["alerts"],
        "alerts_per_day_mean": thr["alerts"] / n_days if n_days else float("nan"),
        "precision_at_budget": budget_mean,
        "card_precision_at_budget": card_mean,
        "budget_k": int(budget_k),
        "days": n_days,
    }
