"""A self-contained HTML report of a ``kuntur evaluate`` backtest.

One file, no external assets: charts are matplotlib PNGs embedded as base64 ``data:`` URIs,
so the report can be mailed to a regulator or attached to a ticket as is. It puts every run
(the streaming model and each batch baseline) side by side: a summary table, PR and ROC
curves, daily precision of the investigators' top-k accounts, alert volume per day, score
distributions of fraud vs genuine transactions and the features each run leaned on.

It opens with the backtest's warnings (:mod:`offline.backtest.warnings`: figures that would
mislead), a readable header (file, window, label rule, model, threshold, budget) and, from
:mod:`offline.backtest.breakdown`, recall per fraud typology, precision per expert rule,
the fraud amount caught and missed per currency and a threshold trade-off table.

matplotlib is part of the optional ``eval`` extra; it is imported only when a report is
written (with the non-interactive Agg canvas, never pyplot's global state).
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from offline.backtest.metrics import alerts_per_day, curve_points
from offline.errors import ReportUnavailable

__all__ = ["ReportRun", "ReportUnavailable", "require_matplotlib", "write_report"]

_DAY_S = 86400
_MAX_META_CHARS = 1500
_HIST_BINS = 50

#: (summary key, column title, format) of the comparison table; absent keys show "–".
_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("transactions", "transactions", ",d"),
    ("frauds", "frauds", ",d"),
    ("roc_auc", "ROC AUC", ".4f"),
    ("average_precision", "avg precision", ".4f"),
    ("precision", "precision", ".4f"),
    ("recall", "recall", ".4f"),
    ("f1", "F1", ".4f"),
    ("precision_at_budget", "precision@budget", ".4f"),
    ("alerts_per_day_mean", "alerts/day", ",.1f"),
    ("throughput_tx_s", "tx/s", ",.0f"),
)
_TABLE_KEYS = {key for key, _, _ in _COLUMNS} | {"budget_k"}

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1100px;color:#222;
padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.3em .6em;vertical-align:top}
th{background:#f4f4f4;text-align:left}
.warnings{background:#fff3cd;border:2px solid #d39e00;border-radius:6px;padding:.6em 1em;margin:1em 0}
.warnings h2{margin-top:0;border:none;color:#8a5a00}.warnings li{margin:.4em 0}
.ok{background:#e8f5e9;border:1px solid #7cb342;border-radius:6px;padding:.4em 1em}
tr.current td{font-weight:bold}dl.head{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}
dl.head dt{font-weight:bold}dl.head dd{margin:0}td.num{text-align:right;font-variant-numeric:tabular-nums}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em}
pre{white-space:pre-wrap;word-break:break-all;margin:0}
figure{margin:1em 0}img{max-width:100%}figcaption{color:#555;font-size:.9em}
"""


@dataclass
class ReportRun:
    """One scored run over the test window (the streaming model or a batch baseline)."""

    name: str
    y: np.ndarray  # bool: fraud
    s: np.ndarray  # float score
    alert: np.ndarray  # bool: alerted (threshold or rule)
    ts: np.ndarray  # float event time, epoch seconds
    account: np.ndarray  # int account codes
    summary: dict[str, Any]  # offline.backtest.metrics.summarize(...) plus extras (throughput_tx_s, ...)
    daily: list[dict[str, Any]]  # offline.backtest.metrics.daily_precision_at_k(...)[0]
    top_features: Sequence[tuple[str, float]] = field(default_factory=list)  # (feature, importance)
    breakdown: dict[str, Any] = field(default_factory=dict)  # offline.backtest.breakdown.breakdown(...)


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any, spec: str) -> str:
    """A table cell: formatted number, "–" for missing/NaN, escaped text otherwise."""
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return _esc(value)
    if spec.endswith("d"):
        value = int(value)
    return format(value, spec)


def _meta_value(value: Any) -> str:
    if isinstance(value, dict | list | tuple):
        text = json.dumps(value, default=str, ensure_ascii=False)
    else:
        text = str(value)
    if len(text) > _MAX_META_CHARS:
        text = text[:_MAX_META_CHARS] + " …"
    return f"<pre>{_esc(text)}</pre>" if isinstance(value, dict | list | tuple) else _esc(text)


def require_matplotlib() -> None:
    """Fail fast — before a long backtest — if the report cannot be drawn (raises :class:`ReportUnavailable`)."""
    _matplotlib()


def _matplotlib() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ReportUnavailable("the HTML report needs matplotlib: pip install 'kuntur[eval]'") from exc
    return Figure


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figure_html(fig: Any, alt: str, caption: str) -> str:
    return (
        f'<figure><img alt="{_esc(alt)}" src="data:image/png;base64,{_png(fig)}">'
        f"<figcaption>{_esc(caption)}</figcaption></figure>"
    )


def _colors(n: int) -> list[str]:
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
    return [palette[i % len(palette)] for i in range(n)]


def _days(rows: list[dict[str, Any]]) -> np.ndarray:
    return np.array([r["day"] for r in rows], dtype="datetime64[D]")


def _curves(Figure: Any, runs: Sequence[ReportRun], colors: list[str]) -> list[str]:
    pr = Figure(figsize=(6.4, 4.6), layout="constrained")
    roc = Figure(figsize=(6.4, 4.6), layout="constrained")
    ax_pr, ax_roc = pr.subplots(), roc.subplots()
    for run, color in zip(runs, colors, strict=True):
        recall, precision = curve_points(run.y, run.s, "pr")
        if len(recall):
            ap = _fmt(run.summary.get("average_precision"), ".3f")
            ax_pr.plot(recall, precision, color=color, drawstyle="steps-post", label=f"{run.name} (AP {ap})")
        fpr, tpr = curve_points(run.y, run.s, "roc")
        if len(fpr):
            auc = _fmt(run.summary.get("roc_auc"), ".3f")
            ax_roc.plot(fpr, tpr, color=color, label=f"{run.name} (AUC {auc})")
    rate = float(np.mean(runs[0].y)) if len(runs[0].y) else 0.0
    ax_pr.axhline(rate, color="#999", linestyle=":", label=f"fraud rate {rate:.4f}")
    ax_pr.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title="Precision-recall")
    ax_roc.plot([0, 1], [0, 1], color="#999", linestyle=":", label="chance")
    ax_roc.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.02), title="ROC")
    for ax in (ax_pr, ax_roc):
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    return [
        _figure_html(pr, "precision-recall curves", "Precision-recall curve per run (dotted: the fraud rate)."),
        _figure_html(roc, "ROC curves", "ROC curve per run (dotted: chance)."),
    ]


def _daily(Figure: Any, runs: Sequence[ReportRun], colors: list[str], k: Any) -> list[str]:
    prec = Figure(figsize=(9.6, 4.2), layout="constrained")
    vol = Figure(figsize=(9.6, 4.2), layout="constrained")
    ax_p, ax_v = prec.subplots(), vol.subplots()
    for run, color in zip(runs, colors, strict=True):
        if run.daily:
            mean = _fmt(run.summary.get("precision_at_budget"), ".3f")
            values = [r["precision"] for r in run.daily]
            ax_p.plot(_days(run.daily), values, color=color, marker=".", label=f"{run.name} (mean {mean})")
        volume = alerts_per_day(np.floor_divide(np.asarray(run.ts, dtype=np.float64), _DAY_S), run.alert)
        if volume:
            ax_v.plot(_days(volume), [r["alerts"] for r in volume], color=color, marker=".", label=run.name)
    if isinstance(k, int | float) and not isinstance(k, bool):
        ax_v.axhline(k, color="#d39e00", linestyle="--", label=f"budget: {k:,} a day")
    ax_p.set(xlabel="day", ylabel=f"precision of top {k} accounts", ylim=(0, 1.02),
             title="Daily precision at the alert budget")
    ax_v.set(xlabel="day", ylabel="alerts raised that day", title="Alerts per day")
    ax_v.set_ylim(bottom=0)
    for fig, ax in ((prec, ax_p), (vol, ax_v)):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(loc="best", fontsize="small")
        fig.autofmt_xdate()
    return [
        _figure_html(
            prec,
            "daily precision at budget",
            f"Each day, the share of fraudulent accounts among the {k} accounts with the highest score.",
        ),
        _figure_html(vol, "alerts per day", "Alerts raised per day (threshold or rule); dashed: the budget."),
    ]


def _distributions(Figure: Any, runs: Sequence[ReportRun]) -> str:
    fig = Figure(figsize=(9.6, 2.6 * len(runs) + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(runs), 1, squeeze=False)[:, 0])
    for ax, run in zip(axes, runs, strict=True):
        s = np.asarray(run.s, dtype=np.float64)
        y = np.asarray(run.y, dtype=bool)
        lo, hi = (float(s.min()), float(s.max())) if len(s) else (0.0, 1.0)
        bins = np.linspace(lo, hi if hi > lo else lo + 1.0, _HIST_BINS + 1)
        ax.hist(s[~y], bins=bins, color="#1f77b4", alpha=0.6, label=f"genuine ({int((~y).sum()):,})")
        ax.hist(s[y], bins=bins, color="#d62728", alpha=0.6, label=f"fraud ({int(y.sum()):,})")
        ax.set_yscale("log")
        ax.set(title=run.name, xlabel="score", ylabel="transactions (log)")
        ax.legend(loc="upper center", fontsize="small")
        ax.grid(alpha=0.3)
    return _figure_html(fig, "score distributions", "Scores of genuine and fraudulent transactions, per run.")


def _features(Figure: Any, runs: Sequence[ReportRun], colors: list[str]) -> list[str]:
    out = []
    for run, color in zip(runs, colors, strict=True):
        top = list(run.top_features)[:20]
        if not top:
            continue
        names = [str(name) for name, _ in top][::-1]
        values = [float(v) for _, v in top][::-1]
        fig = Figure(figsize=(8.0, 0.3 * len(top) + 1.2), layout="constrained")
        ax = fig.subplots()
        ax.barh(names, values, color=color)
        ax.set(title=f"Top features — {run.name}", xlabel="importance (forest) or times cited in alerts")
        ax.grid(alpha=0.3, axis="x")
        out.append(_figure_html(fig, f"top features of {run.name}", f"Top features of {run.name}."))
    return out


def _summary_table(runs: Sequence[ReportRun], k: Any) -> str:
    cols = [c for c in _COLUMNS if c[0] != "throughput_tx_s" or any(c[0] in r.summary for r in runs)]
    head = "".join(
        f"<th>{_esc(title if key != 'precision_at_budget' else f'precision@{k}')}</th>" for key, title, _ in cols
    )
    rows = []
    for run in runs:
        cells = "".join(f'<td class="num">{_fmt(run.summary.get(key), spec)}</td>' for key, _, spec in cols)
        rows.append(f"<tr><th>{_esc(run.name)}</th>{cells}</tr>")
    return f"<table><tr><th>run</th>{head}</tr>{''.join(rows)}</table>"


def _details(runs: Sequence[ReportRun]) -> str:
    parts = []
    for run in runs:
        extra = {k: v for k, v in run.summary.items() if k not in _TABLE_KEYS}
        if not extra:
            continue
        cells = "".join(
            f"<tr><th>{_esc(k)}</th><td>{_meta_value(_fmt(v, '.6g') if isinstance(v, float) else v)}</td></tr>"
            for k, v in extra.items()
        )
        parts.append(f"<h3>{_esc(run.name)}</h3><table>{cells}</table>")
    return "".join(parts)


#: (meta key, label) of the header, in this order; the rest is under "All run facts".
_HEADER: tuple[tuple[str, str], ...] = (
    ("file", "history"),
    ("transactions", "transactions"),
    ("first_transaction", "from"),
    ("last_transaction", "to"),
    ("test_transactions", "in the test window"),
    ("label_rule", "labels"),
    ("model", "model"),
    ("threshold", "alert threshold"),
    ("budget_k", "budget (accounts a day)"),
    ("run_at", "run at"),
)


def _header(meta: dict[str, Any]) -> str:
    rows = []
    for key, label in _HEADER:
        if key not in meta or meta[key] is None:
            continue
        value = meta[key]
        if key in ("transactions", "test_transactions") and isinstance(value, int):
            value = f"{value:,}"
        rows.append(f"<dt>{_esc(label)}</dt><dd>{_esc(value)}</dd>")
    window = [f"from {meta['test_start']}" if meta.get("test_start") else "",
              f"until {meta['test_end']}" if meta.get("test_end") else ""]
    text = " ".join(w for w in window if w) or "the whole file (no --test-start/--test-end)"
    if meta.get("timezone"):
        text += f" ({meta['timezone']} time)"
    rows.insert(min(len(rows), 4), f"<dt>test window</dt><dd>{_esc(text)}</dd>")
    facts = "".join(f"<tr><th>{_esc(key)}</th><td>{_meta_value(v)}</td></tr>" for key, v in meta.items())
    return (f'<dl class="head">{"".join(rows)}</dl>'
            f"<details><summary>All run facts</summary><table>{facts}</table></details>")


def _warnings_html(warnings: Sequence[dict[str, Any]]) -> str:
    if not warnings:
        return '<p class="ok">No warnings: the figures below come from a model that learned both classes.</p>'
    items = "".join(f"<li>{_esc(w.get('message', w))}</li>" for w in warnings)
    return (f'<div class="warnings" role="alert"><h2>⚠ {len(warnings)} warning{"s" if len(warnings) > 1 else ""}'
            f": these figures may mislead</h2><ul>{items}</ul></div>")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], classes: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    marks = [*classes, *[""] * (len(rows) - len(classes))]
    body = "".join(
        (f'<tr class="{mark}">' if mark else "<tr>") + "".join(row) + "</tr>"
        for row, mark in zip(rows, marks, strict=True)
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _num(value: Any, spec: str) -> str:
    return f'<td class="num">{_fmt(value, spec)}</td>'


def _breakdown_html(runs: Sequence[ReportRun]) -> list[str]:
    """Typology recall, rule precision, fraud amounts and threshold trade-offs, per run."""
    out: list[str] = []
    typed = [r for r in runs if r.breakdown.get("by_typology")]
    if typed:
        kinds = list(dict.fromkeys(row["typology"] for r in typed for row in r.breakdown["by_typology"]))
        by = {r.name: {row["typology"]: row for row in r.breakdown["by_typology"]} for r in typed}
        rows = [[f"<th>{_esc(kind)}</th>", _num(by[typed[0].name].get(kind, {}).get("frauds"), ",d"),
                 *(_num(by[r.name].get(kind, {}).get("recall"), ".3f") for r in typed)] for kind in kinds]
        out += ["<h2>Recall per fraud typology</h2>",
                _table(["typology", "frauds", *(f"recall — {r.name}" for r in typed)], rows),
                "<p>Share of each typology's frauds in the test window that raised an alert.</p>"]
    for run in runs:
        rules = run.breakdown.get("by_rule")
        if rules:
            rows = [[f"<th>{_esc(r['rule'])}</th>", _num(r["fired"], ",d"), _num(r["frauds"], ",d"),
                     _num(r["precision"], ".3f"), f"<td>{'alerts' if r['alerts_by_itself'] else 'annotates'}</td>"]
                    for r in rules]
            out += [f"<h2>Expert rules — {_esc(run.name)}</h2>",
                    _table(["rule", "fired on", "of them frauds", "precision", "role"], rows),
                    "<p>Precision of each rule on its own over the test window: rules that alert by themselves "
                    "raise an alert whatever the score; the others only annotate the model's alerts.</p>"]
    amounts = [(r, row) for r in runs for row in r.breakdown.get("fraud_amount", [])]
    if amounts:
        rows = [[f"<th>{_esc(r.name)}</th>", f"<td>{_esc(row['currency'])}</td>", _num(row["frauds"], ",d"),
                 _num(row["caught_frauds"], ",d"), _num(row["caught_amount"], ",.2f"),
                 _num(row["missed_amount"], ",.2f"), _num(row["caught_share"], ".1%")] for r, row in amounts]
        out += ["<h2>Fraud amount caught and missed</h2>",
                _table(["run", "currency", "frauds", "alerted", "amount caught", "amount missed", "share caught"],
                       rows),
                "<p>The amounts of fraudulent transactions that raised an alert (caught) or not (missed), per "
                "currency: amounts in different currencies are never added.</p>"]
    for run in runs:
        table = run.breakdown.get("thresholds")
        if table:
            rows = [[_num(r["threshold"], ".2f"), _num(r["alerts"], ",d"), _num(r["alerts_per_day"], ",.1f"),
                     _num(r["precision"], ".3f"), _num(r["recall"], ".3f")] for r in table]
            classes = ["current" if r.get("current") else "" for r in table]
            out += [f"<h2>Threshold trade-off — {_esc(run.name)}</h2>",
                    _table(["threshold", "alerts", "alerts/day", "precision", "recall"], rows, classes),
                    "<p>What the score alone would alert at each threshold (bold: the run's own); rules that "
                    "alert by themselves come on top. Pick the threshold whose alerts a day the team can review.</p>"]
    return out


def write_report(
    path: str | Path, runs: Sequence[ReportRun], title: str, meta: dict[str, Any],
    warnings: Sequence[dict[str, Any]] = (),
) -> None:
    """Write the backtest report for ``runs`` (same test window each) to ``path`` as one HTML file.

    ``warnings`` (``{"code", "run", "message"}`` each) are shown first, in a banner.
    ``meta`` gives the header (file, range, window, label rule, model, threshold, budget,
    date); every entry is also listed under "All run facts", nested values as JSON. Raises
    :class:`ReportUnavailable` if matplotlib is missing.
    """
    if not runs:
        raise ValueError("a report needs at least one run")
    Figure = _matplotlib()
    colors = _colors(len(runs))
    k = meta.get("budget_k", runs[0].summary.get("budget_k", "k"))
    figures = [*_curves(Figure, runs, colors), *_daily(Figure, runs, colors, k), _distributions(Figure, runs)]
    features = _features(Figure, runs, colors)
    body = [
        f"<h1>{_esc(title)}</h1>",
        _warnings_html(warnings),
        _header(meta),
        "<h2>Summary</h2>",
        _summary_table(runs, k),
        "<p>Ratios are over the test window; precision, recall and F1 are of the alerts raised "
        f"(threshold or rule); precision@{_esc(k)} is the mean over days of the share of frauds among "
        f"the {_esc(k)} accounts with the highest score that day.</p>",
        *_breakdown_html(runs),
        "<h2>Curves</h2>",
        *figures[:2],
        "<h2>Over time</h2>",
        *figures[2:4],
        "<h2>Score distributions</h2>",
        figures[4],
    ]
    if features:
        body += ["<h2>Top features</h2>", *features]
    details = _details(runs)
    if details:
        body += ["<h2>Run details</h2>", details]
    document = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
    Path(path).write_text(document, encoding="utf-8")
