"""Command-line pieces shared by ``kuntur evaluate`` and ``kuntur replay``.

Both commands read a history the same way, so they take the same options for it; the
argument types here turn bad input into argparse's usage errors.
"""

from __future__ import annotations

import argparse

__all__ = ["add_history_arguments", "budgets"]


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
