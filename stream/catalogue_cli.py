"""``kuntur features --models`` and ``--rules``: the model candidates and the expert rules
as a table, JSON or Markdown (the feature catalogue itself is :mod:`features.catalogue`).

>>> print(format_rules("table").splitlines()[0].split())
['RULE', 'ALERTS', 'FEATURES', 'DESCRIPTION']
>>> "gam-pairs-asinh" in format_models("json", "gam-pairs-asinh")
True
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from models.registry import CANDIDATES, DEFAULT_MODEL, DESCRIPTIONS
from models.rules import RULES

__all__ = ["format_models", "format_rules"]


def _render(
    fmt: str, titles: tuple[str, ...], rows: Sequence[tuple[str, ...]], objects: list[dict[str, object]]
) -> str:
    if fmt == "json":
        return json.dumps(objects, indent=2, ensure_ascii=False)
    if fmt == "markdown":
        lines = ["| " + " | ".join(titles) + " |", "|" + "---|" * len(titles)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
        return "\n".join(lines)
    if fmt == "table":
        upper = tuple(t.upper() for t in titles)
        widths = [max(len(r[i]) for r in (upper, *rows)) for i in range(len(titles) - 1)]
        return "\n".join("  ".join([*(c.ljust(w) for c, w in zip(r, widths, strict=False)), r[-1]])
                         for r in (upper, *rows))
    raise ValueError(f"unknown format {fmt!r}; use 'table', 'json' or 'markdown'")


def format_models(fmt: str = "table", configured: str = DEFAULT_MODEL) -> str:
    """Every model candidate: name, whether it is the default / the configured one, what it is."""
    rows, objects = [], []
    for name in CANDIDATES:
        marks = [m for m, on in (("default", name == DEFAULT_MODEL), ("configured", name == configured)) if on]
        rows.append((name, ", ".join(marks), DESCRIPTIONS.get(name, "")))
        objects.append({"name": name, "default": name == DEFAULT_MODEL, "configured": name == configured,
                        "description": DESCRIPTIONS.get(name, "")})
    return _render(fmt, ("model", "", "description"), rows, objects)


def format_rules(fmt: str = "table") -> str:
    """Every expert rule: id, whether it alerts by itself (else it only annotates an alert),
    the catalogue features it reads, and what it checks."""
    rows = [(r.rule_id, "yes" if r.alerts else "no", ", ".join(r.features), r.description) for r in RULES]
    objects: list[dict[str, object]] = [
        {"rule": r.rule_id, "alerts": r.alerts, "features": list(r.features), "description": r.description}
        for r in RULES
    ]
    return _render(fmt, ("rule", "alerts", "features", "description"), rows, objects)
