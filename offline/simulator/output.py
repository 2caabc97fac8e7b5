"""Where the events go: a labelled history file (CSV or Parquet), or the Kafka topics."""

from __future__ import annotations

import csv
import gzip
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from offline.progress import Progress
from offline.simulator.errors import OutputFormatError, ProduceError
from offline.simulator.generator import Simulator
from offline.simulator.schema import FILE_COLUMNS, TRANSACTION_FIELDS, SimConfig, SimEvent

__all__ = ["output_format", "produce", "write_file"]

_FORMATS = {".csv": "csv", ".csv.gz": "csv", ".parquet": "parquet", ".pq": "parquet"}
_PYARROW_MISSING = (
    "Parquet output needs the optional package pyarrow, which is not installed: "
    "run `pip install pyarrow`, or write CSV instead (--out FILE.csv or FILE.csv.gz)"
)


def output_format(path: str | Path, fmt: str | None = None) -> str:
    """``'csv'`` or ``'parquet'`` for a path (by extension) or an explicit ``fmt``.

    Raises :class:`OutputFormatError` for an unknown format or when Parquet is asked for
    and ``pyarrow`` is not importable.
    """
    if fmt is None:
        name = str(path).lower()
        for ext, kind in _FORMATS.items():
            if name.endswith(ext):
                fmt = kind
                break
        else:
            raise OutputFormatError(
                f"cannot tell the output format of {str(path)!r}: use a file name ending in {', '.join(_FORMATS)}"
            )
    fmt = fmt.lower()
    if fmt not in ("csv", "parquet"):
        raise OutputFormatError(f"unknown output format {fmt!r}: use 'csv' or 'parquet'")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
            import pyarrow.parquet  # noqa: F401
        except ImportError:
            raise OutputFormatError(_PYARROW_MISSING) from None
    return fmt


def write_file(cfg: SimConfig, path: str | Path, fmt: str | None = None, progress: bool = True) -> int:
    """Write one row per simulated transaction with the ground truth; return rows written.

    Columns are :data:`FILE_COLUMNS`: every Transaction field, then ``is_fraud`` (0/1),
    ``fraud_type`` and ``label_time`` (the ``reported_at`` of the label the stream sends
    for this transaction; empty if none). CSV (``.csv``, ``.csv.gz``) uses the stdlib;
    Parquet (``.parquet``, ``.pq``) needs ``pyarrow``. Rows are in event-time order.
    """
    kind = output_format(path, fmt)
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    sim = Simulator(cfg)
    bar = Progress(total=cfg.transactions, desc=f"simulate -> {path.name}", unit="tx",
                   enabled=progress)  # fmt: skip
    with bar:
        if kind == "csv":
            return _write_csv(sim, path, bar)
        return _write_parquet(sim, path, bar)


def _rows(sim: Simulator, bar: Progress) -> Iterator[list[Any]]:
    fields = TRANSACTION_FIELDS
    pending = 0
    for ev in sim.events():
        if ev.kind != "transaction":
            continue
        v = ev.value
        row = [v.get(f) for f in fields]
        row.append(1 if ev.is_fraud else 0)
        row.append(ev.fraud_type)
        row.append(sim.last_label or None)
        yield row
        pending += 1
        if pending == 1000:
            bar.update(pending)
            pending = 0
    bar.update(pending)


def _write_csv(sim: Simulator, path: Path, bar: Progress) -> int:
    n = 0
    if str(path).lower().endswith(".gz"):
        fh: Any = gzip.open(path, "wt", newline="", encoding="utf-8", compresslevel=3)
    else:
        fh = open(path, "w", newline="", encoding="utf-8")
    with fh:
        writer = csv.writer(fh)
        writer.writerow(FILE_COLUMNS)
        for row in _rows(sim, bar):
            writer.writerow(["" if x is None else x for x in row])
            n += 1
    return n


def _write_parquet(sim: Simulator, path: Path, bar: Progress) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    floats = {"amount", "account_balance", "latitude", "longitude"}
    ints = {"account_age_days": pa.int32(), "is_fraud": pa.int8()}
    schema = pa.schema(
        [(name, pa.float64() if name in floats else ints.get(name, pa.string())) for name in FILE_COLUMNS]
    )
    n = 0
    batch: list[list[Any]] = []
    with pq.ParquetWriter(str(path), schema, compression="zstd") as writer:
        for row in _rows(sim, bar):
            batch.append(row)
            if len(batch) == 65_536:
                writer.write_table(_table(pa, schema, batch))
                n += len(batch)
                batch = []
        if batch or n == 0:
            writer.write_table(_table(pa, schema, batch))
            n += len(batch)
    return n


def _table(pa: Any, schema: Any, rows: list[list[Any]]) -> Any:
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(FILE_COLUMNS)
    return pa.Table.from_arrays(
        [pa.array(list(col), type=field.type) for col, field in zip(columns, schema, strict=True)],
        schema=schema,
    )


def produce(
    events: Iterable[SimEvent],
    producer_config: dict[str, str],
    topic_transactions: str,
    topic_labels: str,
    rate: float = 0.0,
    progress: bool = True,
    stop: threading.Event | None = None,
    total: int | None = None,
) -> dict[str, int]:
    """Send events to Kafka: key = account_id (UTF-8), value = the JSON object.

    ``rate`` paces transactions per wall-clock second (a token bucket holding at most one
    second of burst; 0 = as fast as possible); labels are sent as soon as they come up in
    the stream. Stops early when ``stop`` is set. Flushes at the end (also on errors or
    KeyboardInterrupt) and raises :class:`ProduceError` if deliveries failed. Returns
    ``{"transactions": n, "labels": m, "frauds": k}``. ``total`` (optional) is the number
    of transactions expected, for the progress bar.
    """
    from confluent_kafka import Producer

    failures: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            failures.append(str(err))

    conf: dict[str, Any] = {
        "client.id": "kuntur-simulate",
        "linger.ms": 20,
        "batch.num.messages": 10_000,
        "queue.buffering.max.messages": 500_000,
        "delivery.report.only.error": True,
    }
    conf.update(producer_config)
    conf["on_delivery"] = on_delivery
    producer = Producer(conf)
    counts = {"transactions": 0, "labels": 0, "frauds": 0}
    dumps = orjson.dumps
    wait = stop.wait if stop is not None else time.sleep
    clock = time.monotonic
    began = clock()
    sent_at_reset = 0
    bar = Progress(total=total, desc="simulate -> kafka", unit="tx", enabled=progress)
    step = 0
    completed = False
    try:
        with bar:
            for ev in events:
                if stop is not None and stop.is_set():
                    break
                if ev.kind == "transaction":
                    topic = topic_transactions
                    if rate > 0:
                        due = began + (counts["transactions"] - sent_at_reset) / rate
                        now = clock()
                        if due - now > 0.002:
                            wait(due - now)
                            if stop is not None and stop.is_set():
                                break
                        elif now - due > 1.0:  # fell behind: allow at most 1 s of burst
                            began, sent_at_reset = now - 1.0, counts["transactions"]
                    counts["transactions"] += 1
                    counts["frauds"] += ev.is_fraud
                    step += 1
                    if step == 256:
                        bar.update(step)
                        step = 0
                else:
                    topic = topic_labels
                    counts["labels"] += 1
                value, key = dumps(ev.value), ev.key.encode()
                while True:
                    try:
                        producer.produce(topic, value, key)
                        break
                    except BufferError:  # local queue full: let librdkafka drain it
                        producer.poll(0.05)
                producer.poll(0)
            bar.update(step)
        completed = True
    finally:  # deliver what was queued; on an exception (Ctrl-C) do not wait long
        remaining = producer.flush(30.0 if completed else 5.0)
    if failures or remaining:
        raise ProduceError(
            f"{len(failures)} message(s) failed delivery and {remaining} were still queued "
            f"after 30 s (first error: {failures[0] if failures else 'timeout'}); "
            f"sent {counts['transactions']} transactions and {counts['labels']} labels"
        )
    return counts
