"""A self-contained HTML report of a ``kuntur evaluate`` backtest.

One file, no external assets: charts are matplotlib PNGs embedded as base64 ``data:`` URIs,
so the report can be mailed to a regulator or attached to a ticket as is. It puts every run
(the streaming model and each batch baseline) side by side: a summary table, PR and ROC
curves, daily precision of the investigators' top-k accounts, alert volume per day, score
distributions of fraud vs genuine transactions and the features each run leaned on.

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
th{background:#f4f4f4;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
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
    ax_p.set(ylabel=f"precision of top {k} accounts", ylim=(0, 1.02), title="Daily precision at the alert budget")
    ax_v.set(ylabel="alerts", title="Alerts per day")
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
        _figure_html(vol, "alerts per day", "Alerts raised per day (threshold or rule)."),
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
        ax.set(title=f"Top features — {run.name}")
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


def write_report(path: str | Path, runs: Sequence[ReportRun], title: str, meta: dict[str, Any]) -> None:
    """Write the backtest report for ``runs`` (same test window each) to ``path`` as one HTML file.

    ``meta`` is shown in the header in its own order (file, rows, label rule, threshold,
    budget, model, command line, date, ...); nested values are shown as JSON. Raises
    :class:`ReportUnavailable` if matplotlib is missing.
    """
    if not runs:
        raise ValueError("a report needs at least one run")
    Figure = _matplotlib()
    colors = _colors(len(runs))
    k = meta.get("budget_k", runs[0].summary.get("budget_k", "k"))
    meta_rows = "".join(f"<tr><th>{_esc(key)}</th><td>{_meta_value(v)}</td></tr>" for key, v in meta.items())
    figures = [*_curves(Figure, runs, colors), *_daily(Figure, runs, colors, k), _distributions(Figure, runs)]
    features = _features(Figure, runs, colors)
    body = [
        f"<h1>{_esc(title)}</h1>",
        f"<table>{meta_rows}</table>",
        "<h2>Summary</h2>",
        _summary_table(runs, k),
        "<p>Ratios are over the test window; precision, recall and F1 are of the alerts raised "
        f"(threshold or rule); precision@{_esc(k)} is the mean over days of the share of frauds among "
        f"the {_esc(k)} accounts with the highest score that day.</p>",
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
