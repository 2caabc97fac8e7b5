"""What the stages emit: typed records, routed by the runtime, never sent by a stage.

Each record names the stage that consumes it (:data:`ROUTES`). The Faust agents send a
record to that stage's internal topic; the in-process runner (:mod:`stream.pipeline.runner`)
calls that stage directly. Both read the same table, so the order of stages
(account → merchant → score, and label → merchant fraud) exists once: here.
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
class Verdict:
    """The outcome of scoring one transaction."""

    scored: Scored
    rules: list[str]
    features: dict[str, float]
    #: labels whose report time the stream's event time has now reached (applied after scoring)
    labels: list[LabelOutcome] = field(default_factory=list)
    #: the merchant-fraud records those labels emit
    frauds: list[MerchantFraud] = field(default_factory=list)

    @property
    def alert(self) -> bool:
        return self.scored.alert


#: Which stage consumes each record.
ROUTES: dict[type, Stage] = {ToMerchant: Stage.MERCHANT, ToScore: Stage.SCORE, MerchantFraud: Stage.MERCHANT}


def merchant_fraud(outcome: LabelOutcome) -> MerchantFraud | None:
    """The record a label emits: a confirmed fraud counts toward its merchant's fraud rate,
    even when it came too late to teach the model; a repeated label counts once."""
    if outcome.is_fraud and outcome.merchant_id and outcome.event_ts is not None and outcome.reason != "duplicate":
        return MerchantFraud(outcome.merchant_id, outcome.event_ts)
    return None
