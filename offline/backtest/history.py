"""Labelled transaction histories (CSV or Parquet) for ``kuntur evaluate`` and ``kuntur replay``.

A bank's history rarely uses our field names, so a column map says which file column
holds which schema field (``account_id=CUSTOMER_ID,amount=TX_AMOUNT,...``); fields a
file lacks are simply absent. Every row goes through the same validation as a Kafka
message (:func:`stream.pipeline.validation.transaction_from_dict`), so a row the worker would
dead-letter is rejected here with the same reason — and the run goes on.

Two extra fields describe the truth: ``label`` (fraud 1/0, true/false; empty = unknown)
and ``label_time`` (when the bank reported the outcome; empty = never reported). A third,
``fraud_type`` (the typology of a fraud, e.g. the simulator's ``card_testing``), is only
reported on: the HTML report's recall per typology.

>>> parse_columns("account_id=CUSTOMER_ID, amount=TX_AMOUNT")
{'account_id': 'CUSTOMER_ID', 'amount': 'TX_AMOUNT'}
>>> parse_duration("7d"), parse_duration("90m"), parse_duration("3600s"), parse_duration("0")
(604800.0, 5400.0, 3600.0, 0.0)
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import Any

import numpy as np

from features.transaction import SCHEMA_FIELDS, Transaction
from offline.backtest.cells import (
    SHORT,
    cell,
    cell_column,
    csv_chunks,
    epoch,
    field_values,
    parquet_chunks,
    parquet_table,
    read_csv,
    truth_value,
)
from offline.backtest.window import time_zone
from offline.errors import HistoryError
from stream.errors import InvalidEvent
from stream.pipeline.validation import Label, transaction_from_dict

#: Fields a column map may name: the Transaction schema plus the truth.
MAPPABLE = (*SCHEMA_FIELDS, "label", "label_time", "fraud_type")
#: Fields that describe the truth, not the transaction (never shown to the pipeline).
TRUTH_FIELDS = frozenset({"label", "label_time", "fraud_type"})
#: Column names recognised without a map, per field (first match wins).
DEFAULT_NAMES: dict[str, tuple[str, ...]] = {
    **{name: (name,) for name in SCHEMA_FIELDS},
    "label": ("label", "is_fraud"),
    "label_time": ("label_time", "reported_at"),
    "fraud_type": ("fraud_type", "typology"),
}
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(text: str) -> float:
    """``"7d"``, ``"12h"``, ``"90m"``, ``"30s"``, ``"2w"`` → seconds; ``"0"`` is 0.

    A number without a unit is an error: ``--label-delay 7`` meant 7 days far more often
    than 7 seconds, and taking it as seconds silently turns a backtest into one with
    instant labels.
    """
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text or "")
    if not m:
        raise HistoryError(f"bad duration {text!r}: use a number with a unit s, m, h, d or w (e.g. 7d)")
    number, unit = m.group(1), m.group(2)
    if not unit and float(number) != 0:
        raise HistoryError(
            f"duration {text.strip()!r} has no unit: write {number}d, {number}h, {number}m or {number}s"
        )
    return float(number) * _UNITS[unit or "s"]


def parse_columns(spec: str | None) -> dict[str, str]:
    """``"field=COLUMN,..."`` → ``{field: COLUMN}``; unknown fields are an error."""
    out: dict[str, str] = {}
    for part in (spec or "").split(","):
        if not part.strip():
            continue
        name, sep, column = part.partition("=")
        name, column = name.strip(), column.strip()
        if not sep or not name or not column:
            raise HistoryError(f"bad column mapping {part.strip()!r}: use field=COLUMN")
        if name not in MAPPABLE:
            raise HistoryError(f"unknown field {name!r} in --columns; fields are: {', '.join(MAPPABLE)}")
        out[name] = column
    return out


def resolve_columns(header: list[str], explicit: dict[str, str]) -> dict[str, str]:
    """Field → file column: the explicit map, then columns named like the fields."""
    present = set(header)
    missing = [f"{name}={col}" for name, col in explicit.items() if col not in present]
    if missing:
        raise HistoryError(
            f"column(s) not in the file: {', '.join(missing)}; the file has: {', '.join(header)}"
        )
    mapping = dict(explicit)
    taken = set(explicit.values())
    for name, candidates in DEFAULT_NAMES.items():
        if name in mapping:
            continue
        for col in candidates:
            if col in present and col not in taken:
                mapping[name] = col
                break
    for name in ("account_id", "timestamp", "amount"):
        if name not in mapping:
            raise HistoryError(
                f"no column for required field {name!r}: map one with --columns {name}=COLUMN "
                f"(the file has: {', '.join(header)})"
            )
    return mapping


@dataclass
class History:
    """Valid transactions in event-time order, with their truth and report times."""

    transactions: list[Transaction]
    #: 1.0 fraud, 0.0 genuine, NaN unknown — per transaction
    labels: np.ndarray
    #: when the outcome was reported (epoch s), NaN if never — per transaction
    label_times: np.ndarray
    #: 1-based data row of each transaction in the file
    rows: np.ndarray
    mapping: dict[str, str]
    rows_read: int = 0
    #: (row, error code, detail) of the first rejected rows (all are counted in ``rejected``)
    rejections: list[tuple[int, str, str]] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)
    #: the typology of each transaction (None: genuine or not given), when the file has a fraud_type column
    fraud_types: list[str | None] | None = None

    def __len__(self) -> int:
        return len(self.transactions)

    @property
    def ts(self) -> np.ndarray:
        return np.fromiter((tx.ts for tx in self.transactions), dtype=np.float64, count=len(self.transactions))

    @property
    def has_label_times(self) -> bool:
        return "label_time" in self.mapping


def load_history(
    path: str | Path,
    columns: dict[str, str] | None = None,
    timezone: str = "UTC",
    progress: Callable[[int], None] | None = None,
    keep_rejections: int = 20,
    values: dict[str, dict[str, str]] | None = None,
) -> History:
    """Read, map, validate and sort a labelled history. Rejected rows are counted, not fatal.

    ``values`` recodes a field's values to the schema's, e.g. ``{"transaction_type":
    {"CASH_OUT": "withdrawal"}}``; values it does not name are kept as they are.

    The file is converted a chunk of rows at a time, column by column (one pass of a
    conversion over a list costs far less than a dispatch per cell); every row then goes
    through :func:`transaction_from_dict` like a Kafka message.
    """
    path = Path(path)
    if not path.exists():
        raise HistoryError(f"{path}: no such file")
    name = path.name.lower()
    table = None
    if name.endswith((".parquet", ".pq")):
        table = parquet_table(path)
        header = list(table.column_names)
    elif name.endswith((".csv", ".csv.gz", ".tsv")):
        header, rows = read_csv(path)
    else:
        raise HistoryError(f"{path}: unknown file type; use .csv, .csv.gz or .parquet")
    zone = time_zone(timezone)
    mapping = resolve_columns(header, columns or {})
    index = {name: header.index(col) for name, col in mapping.items()}
    fields = [(name, i) for name, i in index.items() if name not in TRUTH_FIELDS]
    recode = {name: table for name, table in (values or {}).items() if name in index}
    label_i, label_time_i, type_i = index.get("label"), index.get("label_time"), index.get("fraud_type")
    used = set(index.values())
    chunks = (
        parquet_chunks(table, used, index["timestamp"]) if table is not None else csv_chunks(rows, used)
    )
    hist = History([], np.empty(0), np.empty(0), np.empty(0, dtype=np.int64), mapping)
    acc = _Accumulator(hist, len(header), keep_rejections, progress, zone)
    names = [name for name, _ in fields]
    for size, cells, lengths in chunks:
        field_columns = [field_values(name, cells[i], zone, recode.get(name)) for name, i in fields]
        none = [None] * size
        acc.add_chunk(
            names,
            field_columns,
            none if label_i is None else cell_column(cells[label_i]),
            none if label_time_i is None else cell_column(cells[label_time_i]),
            None if type_i is None else cell_column(cells[type_i]),
            lengths,
        )
    return acc.finish()


@dataclass
class _Accumulator:
    """The valid rows of a history so far, and its rejections, built chunk by chunk."""

    hist: History
    width: int
    keep_rejections: int
    progress: Callable[[int], None] | None
    zone: tzinfo
    rows: int = 0
    txs: list[Transaction] = field(default_factory=list)
    truth: list[float] = field(default_factory=list)
    reported: list[float] = field(default_factory=list)
    row_numbers: list[int] = field(default_factory=list)
    types: list[str | None] | None = None
    _truth_of: dict[Any, float] = field(default_factory=dict)

    def add_chunk(
        self,
        names: list[str],
        field_columns: list[list[Any]],
        labels: list[Any],
        label_times: list[Any],
        kinds: list[Any] | None,
        lengths: list[int] | None,
    ) -> None:
        """Validate each row of a chunk (field values per column, in ``names`` order);
        ``lengths``, when given, are the rows' cell counts (some are too short)."""
        hist, progress, zone = self.hist, self.progress, self.zone
        txs, truth, reported, row_numbers = self.txs, self.truth, self.reported, self.row_numbers
        if kinds is not None and self.types is None:
            self.types = []
        types = self.types
        n = self.rows
        rows = zip(*field_columns, strict=True)
        for values, label, lt, kind in zip(rows, labels, label_times, kinds or labels, strict=True):
            n += 1
            try:
                if lengths is not None and SHORT in values:
                    raise IndexError
                # Empty cells stay in as None: validation reads a None field as an absent one.
                obj = dict(zip(names, values, strict=True))
                if obj.get("transaction_id") is None:
                    obj["transaction_id"] = f"row-{n}"
                tx = transaction_from_dict(obj)
                y = self._label(label)
                at = math.nan
                if lt is SHORT:
                    raise IndexError
                if lt is not None:
                    t = epoch(lt, zone)
                    if not isinstance(t, float):
                        raise InvalidEvent("bad-timestamp", f"label_time {lt!r} is not ISO-8601 or epoch seconds")
                    at = t
                if kind is SHORT:
                    raise IndexError
            except IndexError:
                hist.rejected["bad-row"] += 1
                if len(hist.rejections) < self.keep_rejections:
                    cells = "?" if lengths is None else lengths[n - self.rows - 1]
                    hist.rejections.append((n, "bad-row", f"row has {cells} cells, header has {self.width}"))
                continue
            except InvalidEvent as err:
                hist.rejected[err.code] += 1
                if len(hist.rejections) < self.keep_rejections:
                    hist.rejections.append((n, err.code, err.detail))
                continue
            txs.append(tx)
            if types is not None:
                types.append(None if kind is None else str(kind))
            truth.append(y)
            reported.append(at)
            row_numbers.append(n)
            if progress is not None and n % 10_000 == 0:
                progress(10_000)
        self.rows = n

    def _label(self, label: Any) -> float:
        """:func:`~offline.backtest.cells.truth_value` of a label cell, remembered per value
        (a label column has a handful)."""
        if label is SHORT:
            raise IndexError
        try:
            return self._truth_of[label]
        except KeyError:
            y = self._truth_of[label] = truth_value(label)
            return y
        except TypeError:  # unhashable
            return truth_value(label)

    def finish(self) -> History:
        """The history: valid transactions sorted by event time (stable), with their truth."""
        hist, txs, n = self.hist, self.txs, self.rows
        if self.progress is not None:
            self.progress(n % 10_000)
        ts = np.fromiter((tx.ts for tx in txs), dtype=np.float64, count=len(txs))
        order = np.argsort(ts, kind="stable")
        hist.transactions = [txs[i] for i in order]
        hist.labels = np.asarray(self.truth, dtype=np.float64)[order]
        hist.label_times = np.asarray(self.reported, dtype=np.float64)[order]
        hist.rows = np.asarray(self.row_numbers, dtype=np.int64)[order]
        if self.types is not None:
            hist.fraud_types = [self.types[i] for i in order]
        hist.rows_read = n
        return hist


def time_range(path: str | Path, columns: dict[str, str] | None = None,
               timezone: str = "UTC") -> tuple[float, float] | None:
    """The first and last event time of a history file, from its timestamp column alone.

    Much faster than :func:`load_history` (no validation, no sorting: a few seconds for a
    million CSV rows), so that a test window outside the file fails before the long work.
    ``None`` when no timestamp parses. Unknown files and columns raise as
    :func:`load_history` would.
    """
    path = Path(path)
    if not path.exists():
        raise HistoryError(f"{path}: no such file")
    name = path.name.lower()
    zone = time_zone(timezone)
    if name.endswith((".parquet", ".pq")):
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise HistoryError("reading Parquet needs pyarrow: pip install 'kuntur[eval]'") from None
        header = list(pq.read_schema(path).names)
        column = resolve_columns(header, columns or {})["timestamp"]
        values: Iterator[Any] = iter(pq.read_table(path, columns=[column]).column(0).to_pylist())
    elif name.endswith((".csv", ".csv.gz", ".tsv")):
        header, rows = read_csv(path)
        i = header.index(resolve_columns(header, columns or {})["timestamp"])
        values = (row[i] if len(row) > i else None for row in rows)
    else:
        raise HistoryError(f"{path}: unknown file type; use .csv, .csv.gz or .parquet")
    lo, hi = math.inf, -math.inf
    for value in values:
        t = epoch(cell(value), zone)
        if isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t):
            lo, hi = min(lo, float(t)), max(hi, float(t))
    return (lo, hi) if lo <= hi else None


@dataclass(frozen=True, slots=True)
class LabelRule:
    """When each transaction's outcome reaches the model.

    ``delay_s`` set: every labelled transaction (fraud or genuine) is reported at event
    time + delay. Otherwise the file's ``label_time`` column says when (empty = never
    reported, so the transaction is learned as genuine at the label horizon).
    """

    delay_s: float | None

    def describe(self) -> str:
        if self.delay_s is None:
            return "labels reported at the file's label_time (empty = never reported)"
        return f"every label reported {self.delay_s / 86400:g} days after its transaction"


def label_rule(history: History, delay: str | None) -> LabelRule:
    """``--label-delay`` if given; else the file's label_time column; else 7 days."""
    if delay is not None:
        return LabelRule(parse_duration(delay))
    if history.has_label_times:
        return LabelRule(None)
    return LabelRule(7 * 86400.0)


def report_times(history: History, rule: LabelRule) -> np.ndarray:
    """Per transaction, when its label arrives (NaN = never)."""
    known = ~np.isnan(history.labels)
    if rule.delay_s is None:
        return np.where(known, history.label_times, np.nan)
    return np.where(known, history.ts + rule.delay_s, np.nan)


def events(
    history: History, rule: LabelRule, label_lead_s: float = 0.0
) -> Iterator[tuple[Transaction | None, Label | None]]:
    """Transactions and their labels merged in event-time order.

    Yields ``(tx, None)`` or ``(None, label)``. A label reported at the same instant as
    a transaction comes first, matching the worker: labels reported at or before a
    transaction's event time are applied before it is scored. ``label_lead_s`` moves
    each label that much earlier in the sequence (its ``reported_at`` is unchanged): a
    replay can send labels ahead, and the worker still applies each at its report time.
    """
    at = report_times(history, rule)
    labelled = np.flatnonzero(~np.isnan(at))
    order = labelled[np.argsort(at[labelled], kind="stable")]
    # Plain Python lists (numpy scalars are slow to index and compare one at a time);
    # ``due`` is each label's place in the sequence, the same float64 subtraction.
    reported = at[order]
    due = (reported - label_lead_s).tolist()
    reported_at, which = reported.tolist(), order.tolist()
    fraud = (history.labels[order] != 0.0).tolist()
    txs = history.transactions
    n = len(due)
    li = 0
    for tx in txs:
        ts = tx.ts
        while li < n and due[li] <= ts:
            label = txs[which[li]]
            yield None, Label(label.transaction_id, label.account_id, fraud[li], reported_at[li])
            li += 1
        yield tx, None
    for rest in range(li, n):
        label = txs[which[rest]]
        yield None, Label(label.transaction_id, label.account_id, fraud[rest], reported_at[rest])
