"""Command-line pieces shared by ``kuntur evaluate`` and ``kuntur replay``.

Both commands read a history the same way, so they take the same options for it; the
argument types here turn bad input into argparse's usage errors.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from offline.backtest.window import DEFAULT_TIMEZONE

__all__ = ["SmoteFlag", "add_evaluate_arguments", "add_history_arguments", "budgets", "duration"]


def add_history_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by ``evaluate`` and ``replay``: how to read the file."""
    p.add_argument(
        "--columns",
        metavar="MAP",
        help="field=COLUMN pairs mapping the file to the schema, e.g. account_id=CUSTOMER_ID,amount=TX_AMOUNT,"
        "timestamp=TX_DATETIME,label=TX_FRAUD (fields named like the schema are found without it)",
    )
    p.add_argument(
        "--timezone",
        default=None,
        help=f"zone of times written without one, in the file and in --test-start/--test-end, and of the "
        f"report's days (IANA name; default: the timezone setting, {DEFAULT_TIMEZONE} unless configured; "
        "an explicit offset always wins)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_evaluate_arguments(p: argparse.ArgumentParser) -> None:
    """``kuntur evaluate``'s own options (after the history's)."""
    p.add_argument("--label-delay", type=duration, metavar="DURATION",
                   help="labels arrive this long after the transaction (7d, 36h; a unit is required)")
    p.add_argument("--test-start", metavar="TIME",
                   help="first event time counted in the metrics (ISO date/time; without an offset: --timezone)")
    p.add_argument("--test-end", metavar="TIME", help="event time where counting stops (exclusive; as --test-start)")
    p.add_argument(
        "--budget",
        type=budgets,
        default=[100],
        metavar="K[,K...]",
        help="accounts investigators review per day (100); more values after a comma are reported too",
    )
    p.add_argument("--model", help="streaming model candidate (default: the configured one; kuntur features --models)")
    p.add_argument("--threshold", type=float, help="alert threshold 0..1 (default: KUNTUR_ALERT_THRESHOLD or 0.5)")
    p.add_argument(
        "--baseline",
        action="append",
        choices=["random-forest", "xgboost", "balanced-bagging"],
        help="add a batch baseline (repeatable)",
    )
    p.add_argument("--retrain-every", type=duration, default="7d", metavar="DURATION",
                   help="baseline retraining period (7d)")
    p.add_argument("--train-window", type=duration, default="28d", metavar="DURATION",
                   help="baseline training window (28d)")
    p.add_argument("--smote", action=SmoteFlag, help="oversample frauds with SMOTE when training the baseline")
    p.add_argument("--no-search", action="store_true", help="skip the baseline's small hyperparameter search")
    p.add_argument("--seed", type=int, default=0, help="baseline random seed (0)")
    p.add_argument("--json", metavar="PATH", help="write the summary as JSON")
    p.add_argument(
        "--scores-out", metavar="PATH", help="write every transaction's score (.csv, .csv.gz or .parquet, by extension)"
    )
    p.add_argument("--report", metavar="PATH", help="write a self-contained HTML report with plots")
    p.add_argument(
        "--checkpoint-out",
        metavar="PATH",
        help="write the trained model as a signed worker checkpoint (needs the model key; a worker loads "
        "<data_dir>/model.ckpt at start, e.g. data/model.ckpt)",
    )


def duration(text: str) -> str:
    """A ``DURATION`` option, checked when parsed (``7d``; a bare number other than 0 is a
    usage error) and kept as written.

    >>> duration("7d")
    '7d'
    """
    from offline.backtest.history import parse_duration
    from offline.errors import HistoryError

    try:
        parse_duration(text)
    except HistoryError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def budgets(text: str) -> list[int]:
    """``--budget`` values: ``'100'`` -> ``[100]``, ``'100,25'`` -> ``[100, 25]``.

    >>> budgets("100, 25")
    [100, 25]
    """
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"budget {text!r}: use whole numbers like 100 or 100,25") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("budget: at least one whole number >= 1")
    return values


class SmoteFlag(argparse.Action):
    """``--smote``: a flag that fails when parsed, not after a long streaming run, if
    imbalanced-learn is not installed."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=False, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        from offline.backtest.baseline import require_smote
        from offline.errors import BaselineUnavailable

        try:
            require_smote()
        except BaselineUnavailable as exc:
            parser.error(str(exc))
        setattr(namespace, self.dest, True)
