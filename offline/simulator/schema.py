"""What to simulate (:class:`SimConfig`) and what comes out (:class:`SimEvent`, file columns)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from features.transaction import SCHEMA_FIELDS
from offline.timefmt import LIMA

__all__ = [
    "DAY",
    "DEFAULT_START",
    "FILE_COLUMNS",
    "FRAUD_TYPES",
    "MAX_FRAUD_RATE",
    "TRANSACTION_FIELDS",
    "SimConfig",
    "SimEvent",
]

DEFAULT_START = datetime(2026, 1, 1, tzinfo=LIMA).timestamp()
DAY = 86_400

FRAUD_TYPES = (
    "card_testing",
    "account_takeover",
    "compromised_merchant",
    "amount_spike",
    "impossible_travel",
)
#: Every Transaction field of DESIGN.md, in file column order.
TRANSACTION_FIELDS = SCHEMA_FIELDS
#: Columns of a simulated history file: the transaction plus the ground truth.
#: ``label_time`` is the label's ``reported_at`` (empty if none was sent): with
#: ``is_fraud=1`` a fraud report, with ``is_fraud=0`` an explicit "genuine" confirmation.
FILE_COLUMNS = (*TRANSACTION_FIELDS, "is_fraud", "fraud_type", "label_time")

MAX_FRAUD_RATE = 0.2


@dataclass(frozen=True)
class SimConfig:
    """What to simulate. Same config (including ``seed``) -> identical events."""

    seed: int = 7
    accounts: int = 5000
    merchants: int | None = None  # default accounts // 10 (min 20)
    transactions: int = 100_000
    start: float = DEFAULT_START  # 2026-01-01T00:00:00-05:00
    tx_per_account_per_day: float = 3.0
    fraud_rate: float = 0.007
    unreported_share: float = 0.10
    genuine_label_share: float = 0.20  # of high-amount genuine transactions
    #: noisier genuine behaviour and subtler fraud (see the package docstring, "Hard mode")
    hard: bool = False

    def __post_init__(self) -> None:
        problems = []
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            problems.append(f"seed must be an integer >= 0, got {self.seed!r}")
        if self.accounts < 1:
            problems.append(f"accounts must be >= 1, got {self.accounts}")
        if self.merchants is not None and self.merchants < 20:
            problems.append(f"merchants must be >= 20 (one per category), got {self.merchants}")
        if self.transactions < 0:
            problems.append(f"transactions must be >= 0, got {self.transactions}")
        if not math.isfinite(self.start) or self.start < 0:
            problems.append(f"start must be epoch seconds >= 0, got {self.start}")
        if not self.tx_per_account_per_day > 0 or not math.isfinite(self.tx_per_account_per_day):
            problems.append(f"tx_per_account_per_day must be > 0, got {self.tx_per_account_per_day}")
        if not 0.0 < self.fraud_rate <= MAX_FRAUD_RATE:
            problems.append(f"fraud_rate must be in (0, {MAX_FRAUD_RATE}], got {self.fraud_rate}")
        if not 0.0 <= self.unreported_share <= 1.0:
            problems.append(f"unreported_share must be in [0, 1], got {self.unreported_share}")
        if not 0.0 <= self.genuine_label_share <= 1.0:
            problems.append(f"genuine_label_share must be in [0, 1], got {self.genuine_label_share}")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def n_merchants(self) -> int:
        return self.merchants if self.merchants is not None else max(20, self.accounts // 10)

    @property
    def expected_days(self) -> float:
        """Approximate event-time span of the transactions, in days."""
        return self.transactions / (self.accounts * self.tx_per_account_per_day)


@dataclass(frozen=True, slots=True)
class SimEvent:
    """One simulated message. ``time`` is its event time (epoch seconds)."""

    time: float
    kind: str  # "transaction" or "label"
    key: str  # account_id (the Kafka key)
    value: dict  # Transaction or Label JSON object; never ground truth
    is_fraud: bool  # ground truth for transactions (False for labels)
    fraud_type: str | None
