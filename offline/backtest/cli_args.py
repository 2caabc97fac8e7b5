"""Command-line pieces shared by ``kuntur evaluate`` and ``kuntur replay``.

Both commands read a history the same way, so they take the same options for it; the
argument types here turn bad input into argparse's usage errors.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

__all__ = ["SmoteFlag", "add_history_arguments", "budgets"]


def add_history_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by ``evaluate`` and ``replay``: how to read the file."""
    p.add_argument(
        "--columns",
        metavar="MAP",
        help="field=COLUMN pairs mapping the file to the schema, e.g. account_id=CUSTOMER_ID,amount=TX_AMOUNT,"
        "timestamp=TX_DATETIME,label=TX_FRAUD (fields named like the schema are found without it)",
    )
    p.add_argument("--timezone", default="UTC", help="zone of timestamps written without one (default UTC)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


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
