"""The per-event pipeline as plain synchronous steps — no Faust, no Kafka.

The Faust agents call these steps around their table reads/writes, and the offline
evaluator calls the very same steps with in-memory dicts: one implementation.
States cross this boundary as bytes (the table value format).
"""

from __future__ import annotations

from dataclasses import dataclass

from features.account import ACCOUNT_FEATURES, AccountState, AccountUpdate, update_account
from features.catalogue import FEATURE_NAMES
from features.merchant import (
    MERCHANT_FEATURES,
    NO_MERCHANT_FEATURES,
    MerchantState,
    record_merchant_fraud,
    update_merchant,
)
from models.detector import Detector, LabelOutcome, Scored
from models.rules import fired_rules

from config.settings import Settings
from features.transaction import Transaction
from stream.validation import Label


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of scoring one transaction."""

    scored: Scored
    rules: list[str]
    features: dict[str, float]

    @property
    def alert(self) -> bool:
        return self.scored.alert or bool(self.rules)


class Pipeline:
    """Account stage → merchant stage → scoring, plus label learning."""

    def __init__(self, settings: Settings, detector: Detector) -> None:
        self.settings = settings
        self.detector = detector
        self._late = settings.late_tolerance_s
        self._ttl = settings.state_ttl_s

    def account(self, state: bytes | None, tx: Transaction) -> tuple[bytes | None, AccountUpdate]:
        """Update the account's state; returns (new state bytes or None if unchanged, update)."""
        update = update_account(
            AccountState.from_bytes(state) if state else None, tx, late_tolerance_s=self._late, ttl_s=self._ttl
        )
        if update.duplicate:
            return None, update
        return update.state.to_bytes(), update

    @staticmethod
    def account_values(update: AccountUpdate) -> list[float]:
        f = update.features
        return [f[name] for name in ACCOUNT_FEATURES]

    def merchant(self, state: bytes | None, tx: Transaction) -> tuple[bytes, list[float]]:
        update = update_merchant(
            MerchantState.from_bytes(state) if state else None, tx, late_tolerance_s=self._late, ttl_s=self._ttl
        )
        f = update.features
        return update.state.to_bytes(), [f[name] for name in MERCHANT_FEATURES]

    @staticmethod
    def no_merchant_values() -> list[float]:
        return [NO_MERCHANT_FEATURES[name] for name in MERCHANT_FEATURES]

    @staticmethod
    def merchant_fraud(state: bytes | None, fraud_ts: float) -> bytes:
        return record_merchant_fraud(MerchantState.from_bytes(state) if state else None, fraud_ts).to_bytes()

    def score(self, tx: Transaction, values: list[float]) -> Verdict:
        """Score a transaction whose full feature vector (catalogue order) is known."""
        x = dict(zip(FEATURE_NAMES, values, strict=True))
        scored = self.detector.score(tx.transaction_id, tx.account_id, tx.merchant_id, tx.ts, x)
        return Verdict(scored=scored, rules=fired_rules(x), features=x)

    def label(self, label: Label) -> LabelOutcome:
        return self.detector.on_label(label.transaction_id, label.is_fraud)
