"""One dataset of the benchmark: every online candidate and batch baseline, one table's rows."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from config.settings import Settings
from offline.backtest.evaluate import _account_codes, _parse_when, known_labels, run_online
from offline.backtest.history import History, label_rule, load_history, parse_duration
from offline.backtest.metrics import (
    alerts_per_day,
    average_precision,
    card_precision_at_k,
    daily_precision_at_k,
    roc_auc,
)
from offline.benchmark.config import Benchmarks, Dataset

__all__ = ["ensure_file", "run_dataset", "score_row"]

_DAY = 86400.0
Log = Callable[[str], None]


def ensure_file(ds: Dataset, log: Log) -> bool:
    """Whether the dataset's file is there (generated first if the dataset says how)."""
    if ds.file.exists():
        return True
    if ds.simulate is None:
        log(f"{ds.name}: skipped, {ds.file} is absent")
        return False
    from offline.simulator import SimConfig, write_file

    log(f"{ds.name}: generating {ds.file} with the simulator ({ds.simulate})")
    ds.file.parent.mkdir(parents=True, exist_ok=True)
    write_file(SimConfig(**ds.simulate), ds.file, progress=False)
    return True


def score_row(
    name: str, kind: str, scores: np.ndarray, alert: np.ndarray, test: np.ndarray, history: History,
    accounts: np.ndarray, budget: int, cpu_seconds: float, extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The table row of one scorer over the test window."""
    y = history.labels[test] == 1.0
    s = np.nan_to_num(scores[test], nan=0.0)
    t = history.ts[test]
    day = (t // _DAY).astype(np.int64)
    acc = accounts[test]
    days = alerts_per_day(day, alert[test])
    return {
        "name": name,
        "kind": kind,
        "roc_auc": roc_auc(y, s),
        "average_precision": average_precision(y, s),
        "card_precision": card_precision_at_k(day, acc, y, s, budget)[1],
        "precision_at_k": daily_precision_at_k(day, acc, y, s, budget)[1],
        "alerts_per_day": float(np.mean([d["alerts"] for d in days])) if days else float("nan"),
        "cpu_seconds": cpu_seconds,
        "cpu_tx_s": len(history) / cpu_seconds if cpu_seconds > 0 else float("nan"),
        **(extra or {}),
    }


def run_dataset(
    ds: Dataset, bench: Benchmarks, settings: Settings, log: Log, *,
    candidates: list[str] | None = None, baselines: list[str] | None = None,
) -> dict[str, Any]:
    """Run the candidates and baselines on ``ds``; the rows and the run's facts, JSON-ready."""
    from offline.backtest.baseline import require_baseline, run_baseline

    candidates = bench.candidates if candidates is None else candidates
    baselines = bench.baselines if baselines is None else baselines
    for kind in baselines:
        require_baseline(kind)
    began = time.perf_counter()
    history = load_history(ds.file, ds.columns, values=ds.values)
    log(f"{ds.name}: {len(history):,} transactions read in {time.perf_counter() - began:.0f} s "
        f"(rejected: {dict(history.rejected) or 'none'})")
    rule = label_rule(history, ds.label_delay)
    start = _parse_when(ds.test_start, "test_start")
    test = ~np.isnan(history.labels) & (history.ts >= (start if start is not None else -np.inf))
    accounts = _account_codes(history)
    rows: list[dict[str, Any]] = []
    features = None
    horizon = 0.0
    for model in candidates:
        keep = features is None and bool(baselines)
        online = run_online(history, rule, settings.replace(model=model), keep_features=keep)
        if online.features is not None:
            features = online.features
        horizon = online.label_horizon_s
        test &= ~np.isnan(online.scores)
        row = score_row(f"online {model}", "online", online.scores, online.alerts, test, history, accounts,
                        bench.budget, online.cpu_seconds, {"model": model})
        rows.append(row)
        log(f"{ds.name}: {_brief(row)}")
    if baselines and features is not None:
        train_y, known_at = known_labels(history, rule, horizon)
        for kind in baselines:
            cpu = time.process_time()
            result = run_baseline(
                features, history.ts, train_y, known_at, kind=kind,
                retrain_every_s=parse_duration(bench.retrain_every), train_window_s=parse_duration(bench.train_window),
                max_train_rows=bench.max_train_rows,
            )
            cpu = time.process_time() - cpu
            row = score_row(f"batch {kind}", "batch", result.scores, result.scores >= settings.alert_threshold, test,
                            history, accounts, bench.budget, cpu,
                            {"retrains": len(result.retrains), "params": _params(result.params)})
            rows.append(row)
            log(f"{ds.name}: {_brief(row)}")
    y = history.labels[test] == 1.0
    return {
        "dataset": ds.name,
        "title": ds.title,
        "file": str(ds.file),
        "transactions": len(history),
        "rejected": dict(history.rejected),
        "test_start": ds.test_start,
        "test_transactions": int(test.sum()),
        "test_frauds": int(y.sum()),
        "test_days": len(np.unique((history.ts[test] // _DAY).astype(np.int64))),
        "label_rule": rule.describe(),
        "budget": bench.budget,
        "rows": rows,
    }


def _params(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k != "search"}


def _brief(row: dict[str, Any]) -> str:
    return (f"{row['name']:<26} AUC {row['roc_auc']:.4f}  AP {row['average_precision']:.4f}  "
            f"CP@k {row['card_precision']:.4f}  alerts/day {row['alerts_per_day']:.1f}  "
            f"CPU tx/s {row['cpu_tx_s']:,.0f}")
