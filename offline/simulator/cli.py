"""``kuntur simulate``: its command line, and running it (to a file or to Kafka)."""

from __future__ import annotations

import argparse
import math
import sys
import threading
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from offline.progress import format_count, format_duration, format_rate
from offline.simulator.errors import OutputFormatError, ProduceError
from offline.simulator.generator import generate
from offline.simulator.output import output_format, produce, write_file
from offline.simulator.schema import MAX_FRAUD_RATE, SimConfig
from stream.cli import non_negative_int

__all__ = ["register", "run_simulate"]

_DESCRIPTION = """\
Simulate realistic Peruvian-bank traffic (accounts in Lima, Arequipa, Trujillo, Chiclayo,
Piura, Cusco, Iquitos, ... at BCP, BBVA, Interbank, Scotiabank and BanBif; purchases,
transfers, withdrawals, bill payments and deposits over POS, online, ATM, mobile and
branch; quiet nights, busy paydays) and produce it to the transactions topic, with the
delayed fraud reports banks would send to the labels topic. Or, with --out, write a
labelled CSV/Parquet history for `kuntur replay` / `kuntur evaluate`.

Fraud typologies simulated (about 0.7% of transactions by default):
  card_testing          bursts of tiny online amounts at 1-3 merchants within minutes,
                        then a large purchase, from a new device/IP
  account_takeover      new device + new IP, mostly at night, transfers draining the
                        account to mule accounts
  compromised_merchant  a skimmed POS terminal: cards used there are cashed out in
                        another city hours to days later
  amount_spike          compromised card used for 5-20x the account's normal amounts
  impossible_travel     a card-present transaction far away minutes after a genuine one
                        (> 900 km/h, e.g. Lima then Iquitos 20 minutes later)

Fraud reports arrive 1 hour to 30 days later (median ~2 days); 10% are never reported.
The same --seed always gives the same traffic. Event time starts at --start and advances
with the simulated activity (--tx-per-account-per-day), independently of --rate.
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def _merchant_count(text: str) -> int:
    value = _positive_int(text)
    if value < 20:
        raise argparse.ArgumentTypeError(f"must be >= 20 (one per category), got {value}")
    return value


def _float_in(low: float, high: float, low_open: bool, name: str) -> Any:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        ok = math.isfinite(value) and (value > low if low_open else value >= low)
        if not ok or value > high:
            bracket = "(" if low_open else "["
            raise argparse.ArgumentTypeError(f"{name} must be in {bracket}{low:g}, {high:g}], got {text}")
        return value

    return parse


def _wall_duration(text: str) -> float:
    """``--duration``: a positive duration with a unit (``60s``, ``10m``) in seconds; a bare
    number is refused (as every duration in Kuntur), ``0`` too."""
    from offline.backtest.history import parse_duration
    from offline.errors import HistoryError

    try:
        seconds = parse_duration(text)
    except HistoryError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"--duration must be positive, got {text!r}")
    return seconds


def _positive_float(text: str) -> float:
    return _float_in(0.0, float("inf"), True, "value")(text)


def _start_time(text: str) -> datetime:
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO-8601 date/time such as 2026-01-01 or 2026-01-01T00:00:00-05:00, got {text!r}"
        ) from None
    return dt  # a time without a zone is read in the timezone setting (_config_from_args)


def _out_path(text: str) -> str:
    try:
        output_format(text)
    except OutputFormatError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``kuntur simulate`` to the ``kuntur`` command line."""
    p = subparsers.add_parser(
        "simulate",
        help="produce realistic synthetic transactions and delayed labels (or write a file)",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--rate", type=_float_in(0.0, 1e9, False, "--rate"), default=1000.0, metavar="TX_PER_S",
        help="transactions produced per wall-clock second (default 1000; 0 = as fast as "
        "possible). Labels are not paced. Ignored with --out.",
    )  # fmt: skip
    size = p.add_mutually_exclusive_group()
    size.add_argument(
        "--duration", type=_wall_duration, metavar="DURATION",
        help="run for about this long in wall-clock time, with a unit: 60s, 10m, 2h "
        "(transactions = rate x duration; needs --rate > 0)",
    )  # fmt: skip
    size.add_argument(
        "--transactions", type=_positive_int, metavar="N",
        help=f"number of transactions to simulate (default {SimConfig.transactions:,})",
    )  # fmt: skip
    p.add_argument(
        "--accounts", type=_positive_int, default=SimConfig.accounts, metavar="N",
        help=f"simulated bank accounts (default {SimConfig.accounts:,})",
    )  # fmt: skip
    p.add_argument(
        "--merchants", type=_merchant_count, metavar="N",
        help="merchants and terminals (POS, online shops, billers, ATMs, branches); "
        "default accounts/10, at least 20",
    )  # fmt: skip
    p.add_argument(
        "--seed", type=non_negative_int, default=SimConfig.seed, metavar="N",
        help=f"random seed: the same seed gives the same traffic (default {SimConfig.seed})",
    )  # fmt: skip
    p.add_argument(
        "--fraud-rate", type=_float_in(0.0, MAX_FRAUD_RATE, True, "--fraud-rate"),
        default=SimConfig.fraud_rate, metavar="F",
        help=f"share of fraudulent transactions, in (0, {MAX_FRAUD_RATE}] "
        f"(default {SimConfig.fraud_rate})",
    )  # fmt: skip
    p.add_argument(
        "--unreported-share", type=_float_in(0.0, 1.0, False, "--unreported-share"),
        default=SimConfig.unreported_share, metavar="F",
        help="share of fraudulent transactions never reported by a label, in [0, 1] "
        f"(default {SimConfig.unreported_share})",
    )  # fmt: skip
    p.add_argument(
        "--hard", action="store_true",
        help="hard mode: noisier genuine behaviour (new devices and networks, one-off large "
        "purchases) and subtler fraud (amounts near the usual, the victim's own device, smaller "
        "drains, quieter card testing)",
    )  # fmt: skip
    p.add_argument(
        "--tx-per-account-per-day", type=_positive_float,
        default=SimConfig.tx_per_account_per_day, metavar="F",
        help="average transactions per account per simulated day; sets how much event "
        f"time the run covers (default {SimConfig.tx_per_account_per_day}: 100,000 "
        "transactions over 5,000 accounts span about a week)",
    )  # fmt: skip
    p.add_argument(
        "--start", type=_start_time, default=SimConfig.start, metavar="ISO",
        help="event time of the start, ISO-8601 (e.g. 2026-03-01 or "
        "2026-03-01T08:00:00-05:00; without a zone, in the timezone setting, America/Lima by default). "
        "Default 2026-01-01T00:00-05:00",
    )  # fmt: skip
    p.add_argument(
        "--out", type=_out_path, metavar="PATH",
        help="write a labelled history file instead of producing to Kafka: .csv, .csv.gz, "
        ".parquet or .pq (Parquet needs pyarrow). Rows have every transaction field plus "
        "is_fraud, fraud_type and label_time",
    )  # fmt: skip
    p.add_argument("--no-progress", action="store_true",
                   help="do not show the progress bar on stderr")  # fmt: skip
    p.set_defaults(func=run_simulate, simulate_parser=p)


def _start_seconds(start: datetime | float, zone: str) -> float:
    if isinstance(start, datetime):
        if start.tzinfo is None:
            start = start.replace(tzinfo=ZoneInfo(zone))
        return start.timestamp()
    return float(start)


def _config_from_args(args: argparse.Namespace, zone: str = "America/Lima") -> SimConfig:
    """The simulation ``args`` ask for; ``zone``: where a ``--start`` without a zone is read."""
    if args.duration is not None:
        if args.rate <= 0:
            args.simulate_parser.error("--duration needs a positive --rate (transactions = rate x duration)")
        transactions = max(1, int(round(args.rate * args.duration)))
    else:
        transactions = args.transactions or SimConfig.transactions
    try:
        return SimConfig(
            seed=args.seed,
            accounts=args.accounts,
            merchants=args.merchants,
            transactions=transactions,
            start=_start_seconds(args.start, zone),
            tx_per_account_per_day=args.tx_per_account_per_day,
            fraud_rate=args.fraud_rate,
            unreported_share=args.unreported_share,
            hard=args.hard,
        )
    except ValueError as exc:
        args.simulate_parser.error(str(exc))
        raise  # unreachable: error() exits


def run_simulate(args: argparse.Namespace, settings: Any) -> int:
    """Entry point of ``kuntur simulate``."""
    cfg = _config_from_args(args, settings.timezone)
    progress = not args.no_progress
    began = time.monotonic()
    if args.out:
        try:
            rows = write_file(cfg, args.out, progress=progress)
        except OutputFormatError as exc:
            args.simulate_parser.error(str(exc))
        elapsed = time.monotonic() - began
        print(
            f"kuntur simulate: wrote {format_count(rows)} transactions to {args.out} in "
            f"{format_duration(elapsed)} ({format_rate(rows / max(elapsed, 1e-9))}/s; "
            f"seed {cfg.seed}, {cfg.accounts:,} accounts, ~{cfg.expected_days:.1f} days "
            "of event time)"
        )
        return 0
    stop = threading.Event()
    try:
        counts = produce(
            generate(cfg),
            settings.kafka_client_config(),
            settings.topic_transactions,
            settings.topic_labels,
            rate=args.rate,
            progress=progress,
            stop=stop,
            total=cfg.transactions,
        )
    except KeyboardInterrupt:
        print(
            "kuntur simulate: interrupted (messages already queued were flushed)",
            file=sys.stderr,
        )
        return 130
    except ProduceError as exc:
        print(f"kuntur simulate: {exc}", file=sys.stderr)
        return 1
    elapsed = time.monotonic() - began
    n = counts["transactions"]
    share = counts["frauds"] / n * 100 if n else 0.0
    print(
        f"kuntur simulate: produced {format_count(n)} transactions "
        f"({format_count(counts['frauds'])} fraudulent, {share:.2f}%) to "
        f"{settings.topic_transactions!r} and {format_count(counts['labels'])} labels to "
        f"{settings.topic_labels!r} in {format_duration(elapsed)} "
        f"({format_rate(n / max(elapsed, 1e-9))} tx/s)"
    )
    return 0
