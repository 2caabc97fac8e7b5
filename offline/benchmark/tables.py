"""The Markdown tables of ``docs/model-quality.md``, written between two marker comments.

Per dataset: one row per scorer (AUC, AP, card precision@k, alerts/day, CPU tx/s); then
the ranking that chooses the default model: each scorer's rank by AP and by card
precision@k on each dataset (1 = best, ties share the better rank), averaged.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

__all__ = ["BEGIN", "END", "format_tables", "mean_ranks", "write_tables"]

BEGIN = "<!-- benchmark tables: begin (written by python -m offline.benchmark) -->"
END = "<!-- benchmark tables: end -->"


def _f(value: Any, fmt: str) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, fmt)


def _ranks(values: list[float]) -> list[float]:
    """1 = highest value; equal values share the better rank."""
    return [1.0 + sum(1 for w in values if w > v) for v in values]


def mean_ranks(results: list[dict[str, Any]]) -> list[tuple[str, float, dict[str, float]]]:
    """(scorer, mean rank, rank per dataset) over the datasets where it ran, best first.

    A dataset's rank of a scorer is the mean of its ranks by AP and by card precision@k
    among that dataset's scorers.
    """
    per: dict[str, dict[str, float]] = {}
    for res in results:
        rows = res["rows"]
        ap = _ranks([r["average_precision"] for r in rows])
        cp = _ranks([r["card_precision"] for r in rows])
        for r, a, c in zip(rows, ap, cp, strict=True):
            per.setdefault(r["name"], {})[res["dataset"]] = (a + c) / 2
    out = [(name, sum(d.values()) / len(d), d) for name, d in per.items()]
    return sorted(out, key=lambda item: (-len(item[2]), item[1]))


def format_tables(results: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    for res in results:
        k = res["budget"]
        lines += [
            f"### {res['title']}",
            "",
            f"`{Path(res['file']).name}`: {res['transactions']:,} transactions; test from {res['test_start']}: "
            f"{res['test_transactions']:,} transactions, {res['test_frauds']:,} frauds, {res['test_days']} days; "
            f"{res['label_rule']}. Run {res.get('run_at', '?')}.",
            "",
            f"| scorer | ROC AUC | AP | card precision@{k} | precision@{k} (no removal) | alerts/day | CPU tx/s |",
            "|---|---|---|---|---|---|---|",
        ]
        best_ap = max(r["average_precision"] for r in res["rows"])
        best_cp = max(r["card_precision"] for r in res["rows"])
        for r in res["rows"]:
            ap = _f(r["average_precision"], ".4f")
            cp = _f(r["card_precision"], ".4f")
            lines.append(
                f"| {r['name']} | {_f(r['roc_auc'], '.4f')} "
                f"| {'**' + ap + '**' if r['average_precision'] == best_ap else ap} "
                f"| {'**' + cp + '**' if r['card_precision'] == best_cp else cp} "
                f"| {_f(r['precision_at_k'], '.4f')} | {_f(r['alerts_per_day'], ',.0f')} "
                f"| {_f(r['cpu_tx_s'], ',.0f')} |"
            )
        lines.append("")
    if results:
        names = [res["dataset"] for res in results]
        lines += [
            "### Mean rank (AP and card precision, averaged; 1 = best)",
            "",
            "| scorer | mean rank | " + " | ".join(names) + " |",
            "|---|---|" + "---|" * len(names),
        ]
        for name, mean, per in mean_ranks(results):
            cells = " | ".join(_f(per.get(d), ".1f") for d in names)
            lines.append(f"| {name} | {mean:.2f} | {cells} |")
        lines.append("")
    return "\n".join(lines)


def write_tables(doc: Path, results: list[dict[str, Any]]) -> None:
    """Replace the text between :data:`BEGIN` and :data:`END` in ``doc`` (appended if absent)."""
    text = doc.read_text(encoding="utf-8") if doc.exists() else ""
    block = f"{BEGIN}\n\n{format_tables(results)}\n{END}"
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    doc.write_text(text, encoding="utf-8")
