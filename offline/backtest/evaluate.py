"""``kuntur evaluate``: a prequential backtest of the streaming detector on a labelled history.

The run drives the worker's own stages in process — :class:`stream.pipeline.runner.Runner`
routes the same emits the Faust agents route through topics — over the file
in event-time order. Each transaction is scored first; its label teaches the model only
when it would have arrived (``--label-delay`` or the file's ``label_time``). Metrics
count transactions inside ``--test-start``/``--test-end``; everything before streams
through too, to warm up state and model. Optional batch baselines (the original plan's
offline RandomForest/XGBoost) are trained on the very feature vectors the stream
computed, under the same label-arrival rule, so the rows compare like with like.
"""

from __future__ import annotations

import argparse
import gc
import pickle
import resource
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from config.settings import Settings
from features.catalogue import FEATURE_NAMES
from models.detector import Detector
from models.rules import ALERTING
from offline.backtest.cli_args import add_evaluate_arguments, add_history_arguments
from offline.backtest.history import (
    History,
    LabelRule,
    events,
    label_rule,
    load_history,
    parse_columns,
    parse_duration,
    time_range,
)
from offline.backtest.scores import scores_format, write_scores
from offline.backtest.warnings import WARMUP_GRACE_S, backtest_warnings
from offline.backtest.window import check_window, day_from, local_seconds, parse_when, time_zone, when
from offline.errors import HistoryError, OfflineError
from offline.progress import Progress
from stream.pipeline.runner import Runner
from stream.pipeline.stages import Pipeline, new_detector

__all__ = ["OnlineRun", "run_online", "register", "evaluate"]

_DAY = 86400.0


@dataclass
class OnlineRun:
    """What the streaming detector did with each transaction of a history."""

    scores: np.ndarray  # float64; NaN where not scored (duplicate id)
    alerts: np.ndarray  # bool
    seconds: float  # wall time of the scoring loop (file reading excluded)
    cpu_seconds: float  # CPU time of this process in that loop: what one core spent
    detector: Detector
    label_horizon_s: float
    features: np.ndarray | None = None  # n x d float32, catalogue order, when asked for
    reason_counts: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    late: int = 0
    pending_capacity: int = 0  # transactions the detector could hold awaiting labels
    rules: dict[str, list[int]] = field(default_factory=dict)  # expert rule -> indices of the transactions it fired on

    @property
    def throughput(self) -> float:
        """Scored transactions per wall-clock second."""
        return self._per(self.seconds)

    @property
    def cpu_throughput(self) -> float:
        """Scored transactions per CPU second: the rate of one dedicated core."""
        return self._per(self.cpu_seconds)

    def _per(self, seconds: float) -> float:
        scored = int(np.count_nonzero(~np.isnan(self.scores)))
        return scored / seconds if seconds > 0 else 0.0


def label_horizon(settings: Settings, rule: LabelRule) -> float:
    """The label horizon of the run: the configured one, stretched past a fixed label delay
    so that a label arriving exactly ``delay`` after its transaction is still learned."""
    if rule.delay_s is None:
        return settings.label_horizon_s
    return max(settings.label_horizon_s, rule.delay_s + 1.0)


def pending_needed(ts: np.ndarray, horizon_s: float) -> int:
    """The most transactions that ever await a label at once: those within one label horizon.

    >>> pending_needed(np.array([0.0, 1.0, 2.0, 10.0]), 5.0)
    3
    """
    if not len(ts):
        return 0
    t = np.sort(ts)
    return int((np.searchsorted(t, t + horizon_s, side="right") - np.arange(len(t))).max())


def run_online(
    history: History,
    rule: LabelRule,
    settings: Settings,
    keep_features: bool = False,
    progress: Progress | None = None,
) -> OnlineRun:
    """Stream the history through a fresh :class:`Pipeline`, exactly as the worker's agents do.

    The buffer of transactions awaiting labels is raised to hold every transaction of one
    label horizon when the configured ``pending_capacity`` is smaller (a busy history:
    PaySim's 115k transactions a day over 7 days): otherwise the oldest would be evicted
    before their labels arrive and the backtest would measure a model that never learned,
    not the model. A worker must be configured the same way for such traffic.
    """
    horizon = label_horizon(settings, rule)
    needed = pending_needed(history.ts, horizon) + 1024
    if needed > settings.pending_capacity:
        settings = settings.replace(pending_capacity=needed)
    run = Runner(Pipeline(settings, new_detector(settings, label_horizon_s=horizon)))
    n = len(history)
    index = {tx.transaction_id: i for i, tx in enumerate(history.transactions)} if n else {}
    scores = np.full(n, np.nan)
    alerts = np.zeros(n, dtype=bool)
    features = np.zeros((n, len(FEATURE_NAMES)), dtype=np.float32) if keep_features else None
    reasons: Counter[str] = Counter()
    fired: dict[str, list[int]] = {}
    step = 0
    began, began_cpu = time.perf_counter(), time.process_time()
    # the collector skips what is alive now, the loaded history above all (100k+ objects alive to the
    # end): every full collection rescanned it, ~4 % of the loop's CPU; handed back after the loop
    gc.freeze()
    try:
        for tx, label in events(history, rule):
            if tx is None:
                assert label is not None
                run.label(label)
                continue
            verdict = run.transaction(tx)
            step += 1
            if verdict is not None:
                i = index[tx.transaction_id]
                scores[i] = verdict.scored.score
                for rule_id in verdict.rules:
                    fired.setdefault(rule_id, []).append(i)
                if verdict.alert:
                    alerts[i] = True
                    for r in verdict.scored.reasons:
                        reasons[r.feature] += 1
                if features is not None:
                    features[i] = list(verdict.features.values())
            if progress is not None and step == 2048:
                progress.update(step)
                step = 0
    finally:
        gc.unfreeze()
    seconds, cpu = time.perf_counter() - began, time.process_time() - began_cpu
    if progress is not None:
        progress.update(step)
    detector = run.pipeline.detector
    return OnlineRun(scores, alerts, seconds, cpu, detector, horizon, features, reasons, run.duplicates, run.late,
                     settings.pending_capacity, fired)


def known_labels(history: History, rule: LabelRule, horizon: float) -> tuple[np.ndarray, np.ndarray]:
    """What a learner may know of each transaction, and from when (event time).

    A reported label is known at its report time; a transaction nobody reports is
    learned as genuine once the label horizon has passed — the online model's rule.
    """
    from offline.backtest.history import report_times

    at = report_times(history, rule)
    reported = ~np.isnan(at)
    train_y = reported & (history.labels == 1.0)
    known_at = np.where(reported, at, history.ts + horizon)
    return train_y, known_at


#: The benchmark's reading of its configured test start (naive times in UTC).
_parse_when = parse_when


def _account_codes(history: History) -> np.ndarray:
    codes: dict[str, int] = {}
    return np.fromiter(
        (codes.setdefault(tx.account_id, len(codes)) for tx in history.transactions),
        dtype=np.int64,
        count=len(history),
    )


def _summary_row(name: str, summary: dict[str, Any]) -> str:
    def f(key: str, fmt: str = ".4f") -> str:
        v = summary.get(key)
        return "-" if v is None or v != v else format(v, fmt)

    return (
        f"{name:<22} {f('roc_auc'):>7} {f('average_precision'):>7} {f('precision'):>7} {f('recall'):>7} "
        f"{f('f1'):>7} {f('precision_at_budget'):>8} {f('card_precision_at_budget'):>8} "
        f"{f('alerts_per_day_mean', '.1f'):>9} "
        f"{f('throughput_tx_s', ',.0f'):>9}"
    )


def evaluate(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """Run the backtest the command line describes; returns the JSON summary."""
    from offline.backtest.breakdown import breakdown
    from offline.backtest.metrics import daily_precision_at_k, summarize

    if args.model:
        settings = settings.replace(model=args.model)
    # fail before a long run, not after it: optional extras, outputs, the test window
    for kind in args.baseline or []:
        from offline.backtest.baseline import require_baseline

        require_baseline(kind)
    if args.scores_out:
        scores_format(args.scores_out)
    if args.report:
        from offline.backtest.report import require_matplotlib

        require_matplotlib()
    checkpoint_out = getattr(args, "checkpoint_out", None)
    if checkpoint_out:
        from offline.backtest.bootstrap import checkpoint_key, write_checkpoint

        key = checkpoint_key(checkpoint_out, settings)
    args.timezone = args.timezone or settings.timezone
    zone = time_zone(args.timezone)
    start, end = parse_when(args.test_start, "--test-start", zone), parse_when(args.test_end, "--test-end", zone)
    columns = parse_columns(args.columns)
    if start is not None or end is not None:
        span = time_range(args.file, columns, args.timezone)
        if span is not None:
            check_window(start, end, *span, zone, args.test_start, args.test_end)
    show = not args.no_progress
    with Progress(total=None, desc=f"read {Path(args.file).name}", unit="rows", enabled=show) as bar:
        history = load_history(args.file, columns, args.timezone, progress=bar.update)
    if not len(history):
        raise HistoryError(f"{args.file}: no valid transactions ({history.rows_read} rows read)")
    if "label" not in history.mapping:
        raise HistoryError("no label column: map one with --columns label=COLUMN (fraud 1/0)")
    ts = history.ts
    check_window(start, end, float(ts[0]), float(ts[-1]), zone, args.test_start, args.test_end)
    rule = label_rule(history, args.label_delay)
    baselines = args.baseline or []
    with Progress(total=len(history), desc=f"stream {settings.model}", unit="tx", enabled=show) as bar:
        online = run_online(history, rule, settings, keep_features=bool(baselines), progress=bar)

    test = ~np.isnan(history.labels) & ~np.isnan(online.scores)
    if start is not None:
        test &= ts >= start
    if end is not None:
        test &= ts < end
    if not test.any():
        raise HistoryError(
            "no labelled, scored transaction falls inside --test-start/--test-end "
            f"(the file covers {when(ts[0], zone)} – {when(ts[-1], zone)})"
        )
    y = history.labels[test] == 1.0
    accounts = _account_codes(history)[test]
    t = local_seconds(ts, zone)[test]  # days are the --timezone's calendar days
    day = (t // _DAY).astype(np.int64)
    txs = [tx for tx, keep in zip(history.transactions, test, strict=True) if keep]
    amounts = np.fromiter((tx.amount for tx in txs), dtype=np.float64, count=len(txs))
    currencies = [tx.currency for tx in txs]
    types = None if history.fraud_types is None else [k for k, keep in zip(history.fraud_types, test, strict=True)
                                                      if keep]

    runs: list[dict[str, Any]] = []

    def add_run(name: str, scores: np.ndarray, alert: np.ndarray, extra: dict[str, Any], top: list[Any],
                fired: dict[str, np.ndarray] | None = None) -> None:
        s = np.nan_to_num(scores[test], nan=0.0)
        a = alert[test]
        k, *more = args.budget
        summary = summarize(y, s, a, t, accounts, k)
        summary["precision_at_k"] = {
            str(kk): daily_precision_at_k(day, accounts, y, s, kk)[1] for kk in args.budget
        }
        summary.update(extra)
        daily, _ = daily_precision_at_k(day, accounts, y, s, k)
        parts = breakdown(y, s, a, summary["days"], settings.alert_threshold, amounts, currencies, types, fired,
                          ALERTING)
        runs.append({"name": name, "summary": summary, "scores": s, "alert": a, "daily": daily, "top": top,
                     "breakdown": parts})

    det = online.detector
    fired: dict[str, np.ndarray] = {}
    for r, idx in online.rules.items():
        mask = np.zeros(len(history), dtype=bool)
        mask[idx] = True
        fired[r] = mask[test]
    add_run(
        f"online {settings.model}",
        online.scores,
        online.alerts,
        {
            "throughput_tx_s": round(online.throughput, 1),
            "cpu_throughput_tx_s": round(online.cpu_throughput, 1),
            "seconds": round(online.seconds, 3),
            "model_bytes": len(pickle.dumps(det.model.estimator)),
            "examples_seen": det.model.examples_seen,
            "genuine_learned": det.model.examples_seen - det.model.frauds_seen,
            "duplicates": online.duplicates,
            "late_events": online.late,
            "labels": {k: v for k, v in det.counts.items() if k not in ("scored",)},
        },
        online.reason_counts.most_common(15),
        fired,
    )
    if baselines:
        from offline.backtest.baseline import run_baseline

        assert online.features is not None
        train_y, known_at = known_labels(history, rule, online.label_horizon_s)
        for kind in baselines:
            began = time.perf_counter()
            with Progress(total=len(history), desc=f"baseline {kind}", unit="tx", enabled=show) as bar:
                result = run_baseline(
                    online.features,
                    ts,
                    train_y,
                    known_at,
                    kind=kind,
                    retrain_every_s=parse_duration(args.retrain_every),
                    train_window_s=parse_duration(args.train_window),
                    smote=args.smote,
                    search=not args.no_search,
                    seed=args.seed,
                    progress=bar.update,
                )
            seconds = time.perf_counter() - began
            imp = result.feature_importances
            top = (
                sorted(zip(FEATURE_NAMES, (float(v) for v in imp), strict=True), key=lambda p: -p[1])[:15]
                if imp is not None
                else []
            )
            add_run(
                f"batch {kind}",
                result.scores,
                result.scores >= settings.alert_threshold,
                {
                    "throughput_tx_s": round(len(history) / seconds, 1) if seconds > 0 else None,
                    "seconds": round(seconds, 3),
                    "retrains": len(result.retrains),
                    "params": result.params,
                },
                top,
            )

    first, last, horizon = float(ts[0]), float(ts[-1]), online.label_horizon_s
    meta = {
        "file": str(args.file),
        "rows_read": history.rows_read,
        "transactions": len(history),
        "rejected": dict(history.rejected),
        "rejections": [{"row": r, "error": c, "detail": d} for r, c, d in history.rejections],
        "columns": history.mapping,
        "label_rule": rule.describe(),
        "label_horizon_days": online.label_horizon_s / _DAY,
        "timezone": args.timezone,
        "first_transaction": when(first, zone),
        "last_transaction": when(last, zone),
        "test_start": args.test_start,
        "test_end": args.test_end,
        "test_transactions": int(test.sum()),
        "threshold": settings.alert_threshold,
        "budget_k": args.budget[0],
        "model": settings.model,
        "warmup_genuine": settings.warmup_genuine,
        "pending_capacity": online.pending_capacity,
        "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "command": "kuntur " + " ".join(sys.argv[1:]) if sys.argv else "",
        "run_at": datetime.now(tz=UTC).isoformat(timespec="seconds"),
    }
    warnings = backtest_warnings(
        [{"name": r["name"], **r["summary"]} for r in runs],
        budget_k=args.budget[0],
        warmup_s=(start - first) if start is not None else (last - first),
        horizon_s=horizon,
        threshold=settings.alert_threshold,
        warmup_genuine=settings.warmup_genuine,
        test_start_given=start is not None,
        earliest_test_start=day_from(first + horizon - WARMUP_GRACE_S, zone) if first + horizon < last else None,
    )
    out: dict[str, Any] = {
        "meta": meta,
        "warnings": [w.as_dict() for w in warnings],
        "runs": [{"name": r["name"], **r["summary"], "top_features": r["top"], "breakdown": r["breakdown"]}
                 for r in runs],
    }
    if checkpoint_out:
        out["checkpoint"] = write_checkpoint(det, settings, checkpoint_out, key)
    if args.json:
        Path(args.json).write_bytes(orjson.dumps(out, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    if args.scores_out:
        write_scores(args.scores_out, history, online.scores, online.alerts)
    if args.report:
        from offline.backtest.report import ReportRun, write_report

        report_runs = [
            ReportRun(r["name"], y, r["scores"], r["alert"], t, accounts, r["summary"], r["daily"], r["top"],
                      r["breakdown"])
            for r in runs
        ]
        write_report(args.report, report_runs, title=f"Kuntur backtest — {Path(args.file).name}", meta=meta,
                     warnings=out["warnings"])
    return out


def print_summary(out: dict[str, Any]) -> None:
    meta = out["meta"]
    print(f"{meta['transactions']:,} transactions ({meta['test_transactions']:,} in the test window); "
          f"{meta['label_rule']}; threshold {meta['threshold']}, budget {meta['budget_k']} accounts/day")
    if meta["rejected"]:
        print(f"rejected rows: {meta['rejected']} (first: {meta['rejections'][:3]})")
    print(f"{'run':<22} {'AUC':>7} {'AP':>7} {'prec':>7} {'recall':>7} {'F1':>7} {'P@budget':>8} {'CP@budg':>8} "
          f"{'alerts/d':>9} {'tx/s':>9}")
    for run in out["runs"]:
        print(_summary_row(run["name"], run))


_DESCRIPTION = """\
Prequential backtest of the streaming detector on a labelled CSV/Parquet history, in
process, with the worker's own feature, model and rule code. Each transaction is scored
first, in event-time order; its label teaches the model only when it would have arrived.

Label arrival: --label-delay (every label reported that long after its transaction), or
the file's label_time column (empty = never reported: learned as genuine at the label
horizon); --label-delay wins if both are given, 7d if neither.

Metrics over the test window (--test-start/--test-end; earlier rows still warm up state
and model): ROC AUC, average precision, precision/recall/F1 of the alerts (threshold and
rules, as the worker alerts), the investigators' alert budget -- daily precision of the
top-k accounts by score (--budget), averaged over days (P@budget), and the literature's
card precision top-k (CP@budg: the same with accounts found fraudulent on earlier days
removed) -- alerts per day, and the scoring throughput. --baseline adds the original
plan's batch model, retrained on a schedule on the same features under the same label-arrival rule, as extra rows.

Figures that would mislead (no genuine example learned, AUC < 0.5, alerts/day 3x the
budget, a run alerting on most transactions, a warm-up shorter than the label horizon)
come with "warning:" lines on stderr, under "warnings" in --json and atop --report.
--checkpoint-out data/model.ckpt keeps the trained model for a worker (<data_dir>/model.ckpt)."""

_EXAMPLE = """\
example (the Fraud Detection Handbook's simulated data):
  kuntur evaluate transactions.csv \\
    --columns account_id=CUSTOMER_ID,merchant_id=TERMINAL_ID,amount=TX_AMOUNT,timestamp=TX_DATETIME,label=TX_FRAUD \\
    --label-delay 7d --test-start 2018-07-01 --baseline random-forest --report report.html --json summary.json"""


def register(sub: Any) -> None:
    """Add ``kuntur evaluate`` to the CLI's subcommands."""
    p = sub.add_parser(
        "evaluate",
        help="prequential backtest in-process with the same core; metrics, scores file, report",
        description=_DESCRIPTION,
        epilog=_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", help="labelled history: .csv, .csv.gz or .parquet")
    add_history_arguments(p)
    add_evaluate_arguments(p)
    p.set_defaults(func=_cmd_evaluate)


def _cmd_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    if args.threshold is not None:
        settings = settings.replace(alert_threshold=args.threshold)
    try:
        out = evaluate(args, settings)
    except OfflineError as exc:
        print(f"kuntur evaluate: error: {exc}", file=sys.stderr)
        return 2
    print_summary(out)
    for what, path in (("summary", args.json), ("scores", args.scores_out), ("report", args.report)):
        if path:
            print(f"{what}: {path}")
    if "checkpoint" in out:
        c = out["checkpoint"]
        print(f"checkpoint: {c['path']} (model {c['version']}, {c['examples_seen']:,} examples learned, "
              f"{c['frauds_seen']:,} of them frauds; signed with the model key)")
    for w in out["warnings"]:
        print(f"warning: {w['message']}", file=sys.stderr)
    return 0
