"""``offline/benchmarks.toml``: the datasets, their column mappings and the protocol."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offline.backtest.history import MAPPABLE
from offline.errors import HistoryError

__all__ = ["DEFAULT_FILE", "REPO_ROOT", "Benchmarks", "Dataset", "load_benchmarks"]

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_FILE = REPO_ROOT / "offline" / "benchmarks.toml"


@dataclass(frozen=True)
class Dataset:
    """One benchmark: a labelled history and how to read and judge it."""

    name: str
    title: str
    file: Path
    test_start: str
    columns: dict[str, str]
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    label_delay: str | None = None  # None: the file's label_time column
    simulate: dict[str, Any] | None = None  # generate the file with the simulator when absent


@dataclass(frozen=True)
class Benchmarks:
    budget: int
    candidates: list[str]
    baselines: list[str]
    retrain_every: str
    train_window: str
    max_train_rows: int | None
    datasets: dict[str, Dataset]


def load_benchmarks(path: str | Path = DEFAULT_FILE) -> Benchmarks:
    """Read and check the benchmark file; relative dataset paths are from the repository root."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise HistoryError(f"{path}: {exc}") from None
    proto = raw.get("protocol", {})
    datasets = {}
    for name, d in raw.get("datasets", {}).items():
        unknown = set(d.get("columns", {})) - set(MAPPABLE)
        if unknown:
            raise HistoryError(f"{path}: dataset {name}: unknown field(s) {sorted(unknown)} in columns")
        file = Path(d["file"])
        datasets[name] = Dataset(
            name=name,
            title=d.get("title", name),
            file=file if file.is_absolute() else REPO_ROOT / file,
            test_start=d["test_start"],
            columns=dict(d.get("columns", {})),
            values={k: dict(v) for k, v in d.get("values", {}).items()},
            label_delay=d.get("label_delay"),
            simulate=d.get("simulate"),
        )
    return Benchmarks(
        budget=int(proto.get("budget", 100)),
        candidates=list(proto.get("candidates", [])),
        baselines=list(proto.get("baselines", [])),
        retrain_every=proto.get("retrain_every", "7d"),
        train_window=proto.get("train_window", "28d"),
        max_train_rows=proto.get("max_train_rows"),
        datasets=datasets,
    )
