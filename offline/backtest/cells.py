"""Cells of a history file, column by column: the readers and conversions behind
:func:`offline.backtest.history.load_history`.

Why columns: converting a whole column with one comprehension costs far less than a
dispatch on the field name per cell, and a Parquet column can be converted by Arrow
before it becomes Python objects (time stamps). Files are read in chunks of
:data:`CHUNK_ROWS` rows, so a large file is never held as Python cells all at once.
"""

from __future__ import annotations

import csv
import gzip
import math
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, tzinfo
from itertools import islice
from pathlib import Path
from typing import Any

from offline.errors import HistoryError
from stream.errors import InvalidEvent

_NUMERIC = frozenset({"amount", "account_balance", "account_age_days", "latitude", "longitude"})
_TRUE = frozenset({"1", "1.0", "true", "t", "yes", "y", "fraud"})
_FALSE = frozenset({"0", "0.0", "false", "f", "no", "n", "genuine", "legit"})


def read_csv(path: Path) -> tuple[list[str], Iterator[list[Any]]]:
    """The header of a CSV file (optionally gzipped) and an iterator over its rows."""
    opener: Callable[..., Any] = gzip.open if path.name.lower().endswith(".gz") else open
    fh = opener(path, "rt", newline="", encoding="utf-8")
    reader = csv.reader(fh)
    try:
        header = next(reader)
    except StopIteration:
        fh.close()
        raise HistoryError(f"{path}: the file is empty (no header row)") from None

    def rows() -> Iterator[list[Any]]:
        with fh:
            yield from reader

    return header, rows()


def parquet_table(path: Path) -> Any:
    """The whole Parquet file as an Arrow table (pyarrow is an optional dependency)."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise HistoryError("reading Parquet needs pyarrow: pip install 'kuntur[eval]'") from None
    return pq.read_table(path)


#: Rows converted at a time: the history is read column by column in chunks this long, so
#: that a large file is never held as Python cells all at once.
CHUNK_ROWS = 4096
#: The cell of a CSV row too short to have that column.
SHORT: Any = object()
#: Chunk of a history file: its number of rows, the values of each column asked for (by
#: index, ``SHORT`` where a row has no such cell), and each row's length when some row
#: is too short for a column asked for (else ``None``).
Chunk = tuple[int, dict[int, Sequence[Any]], list[int] | None]


def csv_chunks(rows: Iterator[list[Any]], indices: set[int]) -> Iterator[Chunk]:
    """The CSV rows in chunks, as the columns at ``indices``.

    Transposed in one C call (``zip``) up to the shortest row's length; a column some
    row is too short for is gathered with ``SHORT`` in its place."""
    while chunk := list(islice(rows, CHUNK_ROWS)):
        lengths = list(map(len, chunk))
        shortest = min(lengths)
        whole = list(zip(*chunk, strict=False))  # the first `shortest` columns (rows differ in length)
        yield len(chunk), {
            i: whole[i] if i < shortest else [row[i] if i < len(row) else SHORT for row in chunk]
            for i in indices
        }, lengths if shortest <= max(indices) else None


def parquet_chunks(table: Any, indices: set[int], time_index: int) -> Iterator[Chunk]:
    """The Parquet table in chunks, as the columns at ``indices``.

    A time-zone-aware timestamp column at ``time_index`` comes as epoch seconds straight
    from its integer ticks (``ticks / ticks-per-second`` is the correctly rounded quotient,
    as ``datetime.timestamp()`` is), without a datetime per cell."""
    import pyarrow as pa

    for batch in table.to_batches(max_chunksize=CHUNK_ROWS):
        columns: dict[int, Sequence[Any]] = {}
        for i in indices:
            column = batch.column(i)
            per_second = _TICKS_PER_SECOND.get(getattr(column.type, "unit", ""))
            if i == time_index and pa.types.is_timestamp(column.type) and column.type.tz and per_second:
                columns[i] = [None if t is None else t / per_second for t in column.cast(pa.int64()).to_pylist()]
            else:
                columns[i] = column.to_pylist()
        yield batch.num_rows, columns, None


_TICKS_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000}


def cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def number(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value  # validation names the field and the bad value
    return value


def epoch(value: Any, zone: tzinfo) -> Any:
    """Epoch seconds; naive ISO times and datetimes are read in ``zone``."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=zone)).timestamp()
    if isinstance(value, str):
        if ":" not in value:  # an ISO time has one; a number never (saves a failed float())
            try:
                return float(value)
            except ValueError:
                pass
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
        except ValueError:
            return value  # validation reports bad-timestamp
        return (dt if dt.tzinfo else dt.replace(tzinfo=zone)).timestamp()
    return value


def truth_value(value: Any) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool | int | float):
        return 1.0 if value else 0.0
    text = str(value).strip().lower()
    if text in _TRUE:
        return 1.0
    if text in _FALSE:
        return 0.0
    raise InvalidEvent("bad-value", f"label {value!r} is not fraud/genuine (1/0, true/false)")


def field_values(name: str, cells: Sequence[Any], zone: tzinfo, recode: dict[str, str] | None) -> list[Any]:
    """One column's cells as the field ``name`` of a transaction object: empty cells
    ``None``, numbers and times parsed where they parse (validation reports the others),
    other values as text, then recoded. Short rows' ``SHORT`` is kept."""
    text = _all_text(cells)
    if name in _NUMERIC:
        out = [number(v) if (v := c.strip()) else None for c in cells] if text else [
            None if (v := cell(c)) is None else number(v) for c in cells
        ]
    elif name == "timestamp":
        out = [epoch(v, zone) if (v := c.strip()) else None for c in cells] if text else [
            None if (v := cell(c)) is None else epoch(v, zone) for c in cells
        ]
    else:
        out = cell_column(cells) if text else [None if (v := cell(c)) is None else _text(v) for c in cells]
    if recode:
        out = [recode.get(v, v) if v is not None else None for v in out]
    return out


def _all_text(cells: Sequence[Any]) -> bool:
    """Whether every cell is a ``str`` (a CSV column without short rows): such a column
    takes the fast paths of :func:`cell` (strip, empty is ``None``) without a call per cell."""
    return set(map(type, cells)) <= _STR_TYPE


_STR_TYPE = {str}


def _text(value: Any) -> Any:
    return value if isinstance(value, str) else str(value)


def cell_column(cells: Sequence[Any]) -> list[Any]:
    """A column's cells through :func:`cell` (``SHORT`` is kept)."""
    if _all_text(cells):
        return [c.strip() or None for c in cells]
    return [cell(c) for c in cells]
