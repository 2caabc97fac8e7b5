"""The per-event pipeline as plain synchronous steps — no Faust, no Kafka.

The Faust agents call these steps around their table reads/writes, and the offline
evaluator calls the very same steps with in-memory dicts: one implementation.
States cross this boundary as bytes (the table value format).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from config.settings import Settings
from features.account import ACCOUNT_FEATURES, AccountState, AccountUpdate, update_account
from features.catalogue import FEATURE_NAMES
from features.merchant import (
    MERCHANT_FEATURES,
    NO_MERCHANT_FEATURES,
    MerchantState,
    record_merchant_fraud,
    update_merchant,
)
from features.transaction import Transaction
from models.detector import Detector, LabelOutcome, Scored
from models.rules import fired_rules, rules_alert
from models.scorer import FraudModel
from stream.pipeline.validation import Label


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of scoring one transaction."""

    scored: Scored
    rules: list[str]
    features: dict[str, float]
    #: labels whose report time the stream's event time has now reached (applied after scoring)
    labels: list[LabelOutcome] = field(default_factory=list)

    @property
    def alert(self) -> bool:
        return self.scored.alert


class Pipeline:
    """Account stage → merchant stage → scoring, plus label learning."""

    #: labels reported ahead of the scored stream wait at most this many at once (oldest applied first)
    MAX_DEFERRED = 100_000

    def __init__(self, settings: Settings, detector: Detector) -> None:
        self.settings = settings
        self.detector = detector
        self._late = settings.late_tolerance_s
        self._ttl = settings.state_ttl_s
        self._deferred: list[tuple[float, int, Label]] = []
        self._seq = 0

    # -- state steps on objects (the evaluator keeps states in memory as objects) ----------

    def update_account(self, state: AccountState | None, tx: Transaction) -> AccountUpdate:
        return update_account(state, tx, late_tolerance_s=self._late, ttl_s=self._ttl)

    def update_merchant(self, state: MerchantState | None, tx: Transaction) -> tuple[MerchantState, list[float]]:
        update = update_merchant(state, tx, late_tolerance_s=self._late, ttl_s=self._ttl)
        f = update.features
        return update.state, [f[name] for name in MERCHANT_FEATURES]

    @staticmethod
    def record_merchant_fraud(state: MerchantState | None, fraud_ts: float) -> MerchantState:
        return record_merchant_fraud(state, fraud_ts)

    # -- the same steps on table bytes (the worker's tables hold encoded states) ----------

    def account(self, state: bytes | None, tx: Transaction) -> tuple[bytes | None, AccountUpdate]:
        """Update the account's state; returns (new state bytes or None if unchanged, update)."""
        update = self.update_account(AccountState.from_bytes(state) if state else None, tx)
        if update.duplicate:
            return None, update
        return update.state.to_bytes(), update

    @staticmethod
    def account_values(update: AccountUpdate) -> list[float]:
        f = update.features
        return [f[name] for name in ACCOUNT_FEATURES]

    def merchant(self, state: bytes | None, tx: Transaction) -> tuple[bytes, list[float]]:
        new, values = self.update_merchant(MerchantState.from_bytes(state) if state else None, tx)
        return new.to_bytes(), values

    @staticmethod
    def no_merchant_values() -> list[float]:
        return [NO_MERCHANT_FEATURES[name] for name in MERCHANT_FEATURES]

    @staticmethod
    def merchant_fraud(state: bytes | None, fraud_ts: float) -> bytes:
        return record_merchant_fraud(MerchantState.from_bytes(state) if state else None, fraud_ts).to_bytes()

    def score(self, tx: Transaction, values: list[float]) -> Verdict:
        """Score a transaction whose full feature vector (catalogue order) is known."""
        released = self.release_labels(upto=tx.ts)
        x = dict(zip(FEATURE_NAMES, values, strict=True))
        rules = fired_rules(x)
        scored = self.detector.score(
            tx.transaction_id, tx.account_id, tx.merchant_id, tx.ts, x, force_alert=rules_alert(rules)
        )
        return Verdict(scored=scored, rules=rules, features=x, labels=released)

    def label(self, label: Label) -> LabelOutcome | None:
        """Apply a label once the scored stream's event time has reached its report time.

        Labels and transactions travel on different topics, so in a replay (or a backlog)
        a label can overtake the transaction it is about. Joining on event time makes the
        worker learn exactly what the offline evaluator learns: nothing before it was
        reported, and a report that came within the horizon teaches "fraud" even if the
        stream is already past the horizon. Returns ``None`` when the label is deferred.
        """
        if label.reported_at > self.detector.watermark:
            self._seq += 1
            heapq.heappush(self._deferred, (label.reported_at, self._seq, label))
            if len(self._deferred) <= self.MAX_DEFERRED:
                return None
            label = heapq.heappop(self._deferred)[2]
        return self.detector.on_label(label.transaction_id, label.is_fraud)

    def release_labels(self, upto: float) -> list[LabelOutcome]:
        """Apply deferred labels reported at or before ``upto``, each at its own event time:
        transactions whose horizon ended before the report are learned as genuine first."""
        out: list[LabelOutcome] = []
        while self._deferred and self._deferred[0][0] <= upto:
            reported_at, _, label = heapq.heappop(self._deferred)
            self.detector.advance(reported_at)
            out.append(self.detector.on_label(label.transaction_id, label.is_fraud))
        return out

    @property
    def deferred_labels(self) -> int:
        return len(self._deferred)


def new_detector(settings: Settings, label_horizon_s: float | None = None) -> Detector:
    """A fresh detector as the worker builds it (the evaluator uses the very same one)."""
    return Detector(
        FraudModel(settings.model, feature_names=FEATURE_NAMES),
        threshold=settings.alert_threshold,
        label_horizon_s=settings.label_horizon_s if label_horizon_s is None else label_horizon_s,
        pending_capacity=settings.pending_capacity,
        warmup_genuine=settings.warmup_genuine,
    )
