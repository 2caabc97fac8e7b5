"""What the stages emit: typed records, routed by the runtime, never sent by a stage.

Each record names the stage that consumes it (:data:`ROUTES`). The Faust agents send a
record to that stage's internal topic; the in-process runner (:mod:`stream.pipeline.runner`)
calls that stage directly. Both read the same table, so the order of stages
(account → merchant → score, and label → merchant fraud and account fraud) exists once: here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from features.transaction import Transaction
from models.detector import LabelOutcome, Scored


class Stage(Enum):
    """The stages of the pipeline, in the order a transaction meets them."""

    ACCOUNT = "account"
    MERCHANT = "merchant"
    SCORE = "score"


@dataclass(frozen=True, slots=True)
class ToMerchant:
    """A transaction with its account features (catalogue order), for the merchant stage."""

    tx: Transaction
    values: list[float]


@dataclass(frozen=True, slots=True)
class ToScore:
    """A transaction with its full feature vector (catalogue order), for the score stage."""

    tx: Transaction
    values: list[float]


@dataclass(frozen=True, slots=True)
class MerchantFraud:
    """A confirmed fraud at a merchant, for the merchant's fraud rate."""

    merchant_id: str
    event_ts: float


@dataclass(frozen=True, slots=True)
class AccountFraud:
    """A confirmed fraud on an account's transaction (its event time), for the account's
    reported-fraud memory (:mod:`features.account.frauds`); ``known_at`` is the event time
    the scored stream had reached when the label was applied (at least its report time)."""

    account_id: str
    event_ts: float
    known_at: float


#: The records an applied label emits.
Fraud = MerchantFraud | AccountFraud


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of scoring one transaction."""

    scored: Scored
    rules: list[str]
    features: dict[str, float]
    #: labels whose report time the stream's event time has now reached (applied after scoring)
    labels: list[LabelOutcome] = field(default_factory=list)
    #: the merchant- and account-fraud records those labels emit
    frauds: list[Fraud] = field(default_factory=list)

    @property
    def alert(self) -> bool:
        return self.scored.alert


#: Which stage consumes each record.
ROUTES: dict[type, Stage] = {
    ToMerchant: Stage.MERCHANT,
    ToScore: Stage.SCORE,
    MerchantFraud: Stage.MERCHANT,
    AccountFraud: Stage.ACCOUNT,
}


def merchant_fraud(outcome: LabelOutcome) -> MerchantFraud | None:
    """The record a label emits: a confirmed fraud counts toward its merchant's fraud rate,
    even when it came too late to teach the model; a repeated label counts once."""
    if outcome.is_fraud and outcome.merchant_id and outcome.event_ts is not None and outcome.reason != "duplicate":
        return MerchantFraud(outcome.merchant_id, outcome.event_ts)
    return None


def account_fraud(outcome: LabelOutcome, account_id: str, known_at: float) -> AccountFraud | None:
    """The record an applied label emits for its account (``account_id``, the label's), applied
    when the scored stream had reached ``known_at``: the same rule as :func:`merchant_fraud` -- a
    confirmed fraud whose transaction is still known counts, even when it came too late to
    teach the model; a repeated label counts once."""
    if outcome.is_fraud and account_id and outcome.event_ts is not None and outcome.reason != "duplicate":
        return AccountFraud(account_id, outcome.event_ts, known_at)
    return None


def label_frauds(outcome: LabelOutcome, account_id: str, known_at: float) -> list[Fraud]:
    """Every record an applied label emits: its merchant's fraud, then its account's."""
    return [f for f in (merchant_fraud(outcome), account_fraud(outcome, account_id, known_at)) if f is not None]
