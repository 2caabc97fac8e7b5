"""``kuntur replay``: put a labelled history onto the topics, in event-time order.

Transactions go to the transactions topic and each label to the labels topic at its
report time (``--label-delay`` after the transaction, or the file's ``label_time``) —
the same label-arrival rule as ``kuntur evaluate``, from the same code
(:func:`offline.backtest.history.events`), so a worker fed by a replay learns what the offline
backtest learns. ``--speed`` paces event time against the wall clock (``60`` = one
event-hour per wall-minute) or sends as fast as the broker takes it (``max``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from config.rates import PEN_PER_UNIT
from config.settings import Settings
from features.transaction import SCHEMA_FIELDS, Transaction
from offline.backtest.cli_args import add_history_arguments, duration
from offline.backtest.history import History, LabelRule, events, label_rule, load_history, parse_columns, parse_duration
from offline.errors import HistoryError
from offline.progress import Progress
from offline.simulator import SimEvent, produce
from stream.pipeline.alerts import iso
from stream.pipeline.validation import Label, parse_time


def transaction_json(tx: Transaction) -> dict[str, Any]:
    """The Transaction JSON of DESIGN.md for ``tx`` (absent optional fields left out)."""
    out: dict[str, Any] = {}
    for name in SCHEMA_FIELDS:
        if name == "timestamp":
            out[name] = _time(tx.ts)
            continue
        value = getattr(tx, name)
        if value is not None:
            out[name] = value
    if tx.original_amount is not None:  # as it was sent: in its currency (the worker converts again)
        out["amount"] = tx.original_amount
        if tx.account_balance is not None:
            out["account_balance"] = tx.account_balance / PEN_PER_UNIT[tx.currency]
    out.update(tx.extra)
    return out


def _time(ts: float) -> str | float:
    """ISO-8601 when it reads back as exactly ``ts``, else epoch seconds (never a drift)."""
    text = iso(ts)
    return text if parse_time(text, "timestamp") == ts else ts


def label_json(label: Label) -> dict[str, Any]:
    return {
        "transaction_id": label.transaction_id,
        "account_id": label.account_id,
        "is_fraud": label.is_fraud,
        "reported_at": _time(label.reported_at),
    }


def replay_events(
    history: History, rule: LabelRule, speed: float | None, label_lead_s: float = 0.0
) -> Iterator[SimEvent]:
    """The history as produce-ready events; with ``speed``, sleeps to pace event time."""
    began = time.monotonic()
    first: float | None = None
    for tx, label in events(history, rule, label_lead_s):
        if tx is not None:
            ev = SimEvent(tx.ts, "transaction", tx.account_id, transaction_json(tx), False, None)
        else:
            assert label is not None
            sent = label.reported_at - label_lead_s
            ev = SimEvent(sent, "label", label.account_id, label_json(label), False, None)
        if speed is not None:
            if first is None:
                first = ev.time
            delay = began + (ev.time - first) / speed - time.monotonic()
            if delay > 0.001:
                time.sleep(delay)
        yield ev


def parse_speed(text: str) -> float | None:
    """``max`` → ``None`` (no pacing); else a positive multiple of real time."""
    if text.strip().lower() == "max":
        return None
    try:
        speed = float(text)
    except ValueError:
        raise HistoryError(f"--speed {text!r}: use a number (x real time) or max") from None
    if speed <= 0:
        raise HistoryError("--speed must be > 0 (or max)")
    return speed


def replay(args: argparse.Namespace, settings: Settings) -> dict[str, int]:
    from stream.kafka.admin import ensure_topics

    speed = parse_speed(args.speed)
    args.timezone = getattr(args, "timezone", None) or settings.timezone
    show = not args.no_progress
    with Progress(total=None, desc=f"read {Path(args.file).name}", unit="rows", enabled=show) as bar:
        history = load_history(args.file, parse_columns(args.columns), args.timezone, progress=bar.update)
    if history.rejected:
        print(f"skipped {sum(history.rejected.values())} invalid row(s): {dict(history.rejected)}; "
              f"first: {history.rejections[:3]}", file=sys.stderr)
    rule = label_rule(history, args.label_delay)
    if "label" not in history.mapping:
        print("no label column mapped: replaying transactions only", file=sys.stderr)
    ensure_topics(settings)
    counts = produce(
        replay_events(history, rule, speed, parse_duration(args.label_lead) if args.label_lead else 0.0),
        settings.kafka_client_config(),
        settings.topic_transactions,
        settings.topic_labels,
        rate=0.0,
        progress=show,
        total=len(history),
    )
    counts.pop("frauds", None)
    counts["rejected"] = sum(history.rejected.values())
    return counts


_DESCRIPTION = """\
Replay a labelled history into the topics in event-time order: each transaction to the
transactions topic, each label to the labels topic at its report time (--label-delay after
the transaction, or the file's label_time column; 7d if neither). This is the label rule
of `kuntur evaluate`, so a worker fed by a replay learns what the offline backtest learns.
Topics are created if missing. --speed paces event time against the wall clock (60 = one
event-hour per wall-minute) or sends as fast as the broker takes it (max)."""


def register(sub: Any) -> None:
    """Add ``kuntur replay`` to the CLI's subcommands."""
    p = sub.add_parser(
        "replay",
        help="replay a labelled CSV/Parquet history into the topics in event-time order",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", help="history: .csv, .csv.gz or .parquet (same column mapping as kuntur evaluate)")
    add_history_arguments(p)
    p.add_argument("--label-delay", type=duration, metavar="DURATION",
                   help="labels reported this long after the transaction (7d; a unit is required)")
    p.add_argument(
        "--label-lead",
        type=duration,
        metavar="DURATION",
        help="send each label this much event time before its report time (default 0). The worker still applies "
        "it at its report time, so a busy labels consumer cannot make it land late; the result equals evaluate's",
    )
    p.add_argument("--speed", default="max", help="x real time of event time (e.g. 3600 = 1 h per s), or max (default)")
    p.set_defaults(func=_cmd_replay)


def _cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    try:
        counts = replay(args, settings)
    except HistoryError as exc:
        print(f"kuntur replay: error: {exc}", file=sys.stderr)
        return 2
    print(f"replayed {counts['transactions']:,} transactions and {counts['labels']:,} labels "
          f"to {settings.topic_transactions}/{settings.topic_labels}"
          + (f" ({counts['rejected']:,} invalid rows skipped)" if counts["rejected"] else ""))
    return 0
