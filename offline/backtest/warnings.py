"""Warnings of a backtest whose figures would mislead: what they mean and what to do.

A backtest always prints numbers; some runs' numbers mean nothing (issue 11, item 2): a
6-day history with a 7-day label horizon gives ``AUC 0.4197`` for a model that never
learned a genuine example, and a batch baseline that alerts on 67,104 of 67,662
transactions prints a row like any other. :func:`backtest_warnings` is a pure function of
the run's figures (the JSON summary's ``runs`` plus a few facts of the run), so each case
is tested with crafted inputs; ``kuntur evaluate`` prints each on stderr as
``warning: ...``, lists them under ``warnings`` in ``--json`` and shows them in a banner
at the top of the HTML report.

>>> [w.code for w in backtest_warnings(
...     [{"name": "online m", "roc_auc": 0.42, "alerts_per_day_mean": 3.0, "alerts": 20, "transactions": 900,
...       "genuine_learned": 0, "examples_seen": 12}],
...     budget_k=100, warmup_s=2 * 86400.0, horizon_s=7 * 86400.0, threshold=0.5, warmup_genuine=1000)]
['no-genuine-learned', 'warmup-shorter-than-horizon', 'auc-below-chance']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["BUDGET_MULTIPLE", "MOST_TRANSACTIONS", "WARMUP_GRACE_S", "BacktestWarning", "backtest_warnings"]

#: alerts/day at least this many times the daily budget: nobody could review them.
BUDGET_MULTIPLE = 3.0
#: a run that alerts on more than this share of the test transactions alerts on "most".
MOST_TRANSACTIONS = 0.5
#: a warm-up this much shorter than the horizon still counts as one (a window opening at
#: midnight when the file's first transaction came a few seconds after midnight)
WARMUP_GRACE_S = 3600.0

_DAY = 86400.0


@dataclass(frozen=True, slots=True)
class BacktestWarning:
    """One reason not to trust a figure: a stable ``code``, the ``run`` it is about (None: the
    whole backtest) and a ``message`` saying what it means and what to do."""

    code: str
    message: str
    run: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "run": self.run, "message": self.message}


def _days(seconds: float) -> str:
    return f"{seconds / _DAY:.1f} days"


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if f == f else None


def backtest_warnings(
    runs: Sequence[Mapping[str, Any]],
    *,
    budget_k: int,
    warmup_s: float,
    horizon_s: float,
    threshold: float,
    warmup_genuine: int = 0,
    test_start_given: bool = True,
    earliest_test_start: str | None = None,
) -> list[BacktestWarning]:
    """The warnings a backtest's figures call for, most fundamental first.

    ``runs`` are the summary rows (``name``, ``roc_auc``, ``alerts_per_day_mean``,
    ``alerts``, ``transactions``; a streaming run also has ``genuine_learned``, the genuine
    examples its model learned). ``warmup_s`` is the event time before the test window
    (the whole run without ``--test-start``: ``test_start_given`` False), ``horizon_s`` the
    label horizon, ``budget_k`` the alerts investigators review a day, ``threshold`` the
    alert threshold, ``warmup_genuine`` the genuine examples a fresh model needs before its
    score may alert; ``earliest_test_start`` (text) is suggested as a window that would do.
    """
    out: list[BacktestWarning] = []
    for run in runs:
        genuine = run.get("genuine_learned")
        if genuine is None:
            continue
        name, genuine = str(run.get("name")), int(genuine)
        if genuine == 0:
            alerting = (
                f"its score never alerted (a fresh model waits for {warmup_genuine:,} genuine examples), so "
                "every alert was an expert rule's,"
                if warmup_genuine > 0
                else "its alerts come from a model that has seen frauds only,"
            )
            out.append(BacktestWarning(
                "no-genuine-learned",
                f"{name} learned no genuine example in this run ({int(run.get('examples_seen') or 0):,} examples, "
                f"all frauds): an unreported transaction teaches 'genuine' only once the label horizon "
                f"({_days(horizon_s)}) of event time has passed, and the history is too short for that. "
                f"{alerting[0].upper()}{alerting[1:]} and its AUC and AP measure an untrained model. "
                "Use a history longer than the label horizon plus the test window (or --label-delay, if the "
                "bank really reports genuine outcomes sooner).",
                name,
            ))
        elif genuine < warmup_genuine:
            out.append(BacktestWarning(
                "model-never-alerted",
                f"{name} learned only {genuine:,} genuine examples in this run, fewer than the {warmup_genuine:,} a "
                "fresh model needs before its score may alert (warmup_genuine): every alert was an expert rule's, "
                "and its AUC and AP measure a model that has barely learned. Genuine examples come mostly from "
                f"transactions nobody reported within the label horizon ({_days(horizon_s)}): use a longer history.",
                name,
            ))
    if warmup_s < horizon_s - WARMUP_GRACE_S:
        if test_start_given:
            what = f"the warm-up before --test-start is {_days(warmup_s)}"
            fix = (f"Start the test window at least {_days(horizon_s)} after the first transaction"
                   + (f" (--test-start {earliest_test_start} or later)" if earliest_test_start else "")
                   + " or use a longer history.")
        else:
            what = f"without --test-start the whole run ({_days(warmup_s)}) is both warm-up and test window, and it is"
            fix = (f"Use a history longer than {_days(horizon_s)} and count only after it with --test-start"
                   + (f" ({earliest_test_start} or later)" if earliest_test_start else "") + ".")
        out.append(BacktestWarning(
            "warmup-shorter-than-horizon",
            f"{what} shorter than the label horizon ({_days(horizon_s)}): when counting starts, few or no "
            "transactions have taught the model 'genuine' yet (that takes one horizon), so the figures measure "
            f"a model still warming up, not the model a worker would run. {fix}",
        ))
    for run in runs:
        name = str(run.get("name"))
        auc = _number(run.get("roc_auc"))
        if auc is not None and auc < 0.5:
            out.append(BacktestWarning(
                "auc-below-chance",
                f"{name}: ROC AUC {auc:.4f} is below 0.5, worse than a random score: it ranks genuine "
                "transactions above frauds. Usually the model had not learned enough by the test window (see the "
                "other warnings); otherwise check that the label column means 1 = fraud (--columns label=...).",
                name,
            ))
        alerts, n = _number(run.get("alerts")), _number(run.get("transactions"))
        most = alerts is not None and n is not None and n > 0 and alerts / n > MOST_TRANSACTIONS
        if most:
            assert alerts is not None and n is not None
            out.append(BacktestWarning(
                "alerts-on-most-transactions",
                f"{name} alerted on {int(alerts):,} of {int(n):,} test transactions ({alerts / n:.1%}): at "
                f"threshold {threshold:g} its alerts are no selection at all, and its precision is just the fraud "
                "rate. A batch baseline does this when its first training sets hold frauds but almost no genuine "
                "examples (genuine ones are known only after the label horizon): warm up longer before "
                "--test-start; for any run, the report's threshold table shows a usable threshold.",
                name,
            ))
        per_day = _number(run.get("alerts_per_day_mean"))
        if per_day is not None and budget_k > 0 and per_day >= BUDGET_MULTIPLE * budget_k:
            out.append(BacktestWarning(
                "alerts-over-budget",
                f"{name}: {per_day:,.1f} alerts a day is {per_day / budget_k:,.0f}x the budget of {budget_k:,} "
                "a day (--budget): investigators could not review them, so its precision and recall do not "
                "describe what a team would see. Raise the threshold (--threshold; the report's threshold table "
                "shows the alerts a day at each) or fix what the other warnings say.",
                name,
            ))
    return out
