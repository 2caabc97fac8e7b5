"""Where a backtest's alerts go: per typology, per rule, fraud amounts, per threshold.

The headline figures (AUC, precision, recall) hide what a fraud team asks next: *which*
frauds are caught (recall per typology, when the file has a ``fraud_type`` column), how
precise each expert rule is on its own, how much fraud money was caught and missed, and
what another threshold would cost in alerts a day. Pure functions over the test window's
arrays; ``kuntur evaluate`` puts them in ``--json`` (``breakdown`` of each run) and the
HTML report draws them as tables.

Amounts are summed per currency, never across currencies: a USD amount plus a PEN amount
is no amount at all (issue 11, item 13).

>>> import numpy as np
>>> y = np.array([True, True, False, False]); alert = np.array([True, False, True, False])
>>> typology_recall(y, alert, ["card_testing", "account_takeover", None, None])[0]["recall"]
0.0
>>> fraud_amounts(y, alert, np.array([10.0, 5.0, 1.0, 1.0]), ["PEN", "PEN", "PEN", "PEN"])[0]["caught_share"]
0.6666666666666666
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["THRESHOLDS", "breakdown", "fraud_amounts", "rule_precision", "threshold_table", "typology_recall"]

#: Thresholds of the trade-off table (the run's own threshold is added).
THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
UNTYPED = "(none given)"


def typology_recall(y: np.ndarray, alert: np.ndarray, types: Sequence[str | None]) -> list[dict[str, Any]]:
    """Per fraud typology: frauds, how many alerted, recall; most frequent first. Frauds
    without a typology are counted as ``(none given)``."""
    yb, ab = np.asarray(y, dtype=bool), np.asarray(alert, dtype=bool)
    kinds = np.array([t if t else UNTYPED for t in types], dtype=object)
    rows = []
    for kind in sorted(set(kinds[yb].tolist())):
        frauds = yb & (kinds == kind)
        n, caught = int(frauds.sum()), int((frauds & ab).sum())
        rows.append({"typology": kind, "frauds": n, "caught": caught, "recall": caught / n if n else float("nan")})
    return sorted(rows, key=lambda r: (-r["frauds"], r["typology"]))


def rule_precision(fired: Mapping[str, np.ndarray], y: np.ndarray, alerting: frozenset[str] = frozenset()
                   ) -> list[dict[str, Any]]:
    """Per expert rule (``fired``: rule → bool mask of the transactions it fired on): how
    often it fired, on how many frauds, its precision on its own, and whether it raises
    alerts by itself (``alerting``) or only annotates them."""
    yb = np.asarray(y, dtype=bool)
    rows = []
    for rule, mask in fired.items():
        m = np.asarray(mask, dtype=bool)
        n, frauds = int(m.sum()), int((m & yb).sum())
        rows.append({"rule": rule, "fired": n, "frauds": frauds, "precision": frauds / n if n else float("nan"),
                     "alerts_by_itself": rule in alerting})
    return sorted(rows, key=lambda r: (-r["fired"], r["rule"]))


def fraud_amounts(y: np.ndarray, alert: np.ndarray, amount: np.ndarray, currency: Sequence[str | None]
                  ) -> list[dict[str, Any]]:
    """Per currency: the fraud amount caught (alerted) and missed, and the share caught."""
    yb, ab = np.asarray(y, dtype=bool), np.asarray(alert, dtype=bool)
    amt = np.asarray(amount, dtype=np.float64)
    cur = np.array([c or "PEN" for c in currency], dtype=object)  # the schema's default
    rows = []
    for c in sorted(set(cur[yb].tolist())):
        frauds = yb & (cur == c)
        caught = float(amt[frauds & ab].sum())
        missed = float(amt[frauds & ~ab].sum())
        total = caught + missed
        rows.append({
            "currency": c, "frauds": int(frauds.sum()), "caught_frauds": int((frauds & ab).sum()),
            "caught_amount": caught, "missed_amount": missed,
            "caught_share": caught / total if total else float("nan"),
        })
    return rows


def threshold_table(y: np.ndarray, s: np.ndarray, days: int, threshold: float | None = None,
                    thresholds: Sequence[float] = THRESHOLDS) -> list[dict[str, Any]]:
    """Alerts a day, precision and recall of ``score >= t`` for each threshold ``t`` (the
    score alone: rules that alert by themselves come on top)."""
    yb, sf = np.asarray(y, dtype=bool), np.asarray(s, dtype=np.float64)
    frauds = int(yb.sum())
    ts = sorted({*thresholds, *([threshold] if threshold is not None else [])})
    rows = []
    for t in ts:
        hit = sf >= t
        alerts, tp = int(hit.sum()), int((hit & yb).sum())
        rows.append({
            "threshold": float(t), "alerts": alerts, "alerts_per_day": alerts / days if days else float("nan"),
            "precision": tp / alerts if alerts else float("nan"), "recall": tp / frauds if frauds else float("nan"),
            "current": threshold is not None and t == threshold,
        })
    return rows


def breakdown(
    y: np.ndarray, s: np.ndarray, alert: np.ndarray, days: int, threshold: float, amount: np.ndarray,
    currency: Sequence[str | None], types: Sequence[str | None] | None = None,
    fired: Mapping[str, np.ndarray] | None = None, alerting: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Every table above for one run over the test window, JSON-ready (``by_typology`` only
    with typologies, ``by_rule`` only with the rules' masks: the streaming run's)."""
    out: dict[str, Any] = {
        "fraud_amount": fraud_amounts(y, alert, amount, currency),
        "thresholds": threshold_table(y, s, days, threshold),
    }
    if types is not None:
        out["by_typology"] = typology_recall(y, alert, types)
    if fired is not None:
        out["by_rule"] = rule_precision(fired, y, alerting)
    return out
