"""``--scores-out``: one row per transaction of a backtest, in the format its extension names."""

from __future__ import annotations

import csv
import gzip
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from offline.backtest.history import History
from offline.errors import HistoryError

SCORE_FORMATS = (".csv", ".csv.gz", ".parquet")
_SCORE_COLUMNS = ("transaction_id", "account_id", "event_time", "score", "alert", "label")


def scores_format(path: str | Path) -> str:
    """The format ``--scores-out`` writes, from the file's extension (:class:`HistoryError`
    for any other: a file named ``.parquet`` must not hold CSV).

    >>> scores_format("s.CSV.GZ"), scores_format("s.parquet")
    ('.csv.gz', '.parquet')
    """
    name = Path(path).name.lower()
    for ext in (".csv.gz", ".csv", ".parquet"):
        if name.endswith(ext):
            return ext
    raise HistoryError(f"--scores-out {path}: unknown extension; use one of {', '.join(SCORE_FORMATS)}")


def write_scores(path: str | Path, history: History, scores: np.ndarray, alerts: np.ndarray) -> int:
    """One row per transaction: transaction_id, account_id, event_time, score, alert, label,
    as CSV, gzip-compressed CSV or Parquet by the extension of ``path``."""
    path = Path(path)
    fmt = scores_format(path)
    if fmt == ".parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise HistoryError("writing Parquet needs pyarrow: pip install 'kuntur[eval]'") from None
        txs = history.transactions
        table = pa.table({
            "transaction_id": [tx.transaction_id for tx in txs],
            "account_id": [tx.account_id for tx in txs],
            "event_time": pa.array(np.array([tx.ts for tx in txs]) * 1e6, pa.float64()).cast(pa.int64())
            .cast(pa.timestamp("us", tz="UTC")),
            "score": pa.array(scores, pa.float64(), mask=np.isnan(scores)),
            "alert": pa.array(alerts, pa.bool_()),
            "label": pa.array(history.labels, pa.float64(), mask=np.isnan(history.labels)).cast(pa.int8()),
        })
        pq.write_table(table, path, compression="zstd")
        return len(txs)
    n = 0
    opener = gzip.open if fmt == ".csv.gz" else open
    with opener(path, "wt", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(_SCORE_COLUMNS)
        for tx, s, a, y in zip(history.transactions, scores, alerts, history.labels, strict=True):
            w.writerow([
                tx.transaction_id,
                tx.account_id,
                datetime.fromtimestamp(tx.ts, tz=UTC).isoformat(),
                "" if s != s else f"{s:.6f}",
                int(a),
                "" if y != y else int(y),
            ])
            n += 1
    return n
