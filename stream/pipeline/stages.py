"""The stages of the per-event pipeline — plain synchronous Python, no Faust, no Kafka.

Each stage takes an input and the state of the entity it owns and returns the new state
and the records it wants emitted (:mod:`stream.pipeline.emits`), in the manner of
Bytewax's ``StatefulLogic.on_item``. It never sends: the Faust agents route the emits
to topics and tables, and :mod:`stream.pipeline.runner` routes the very same emits in
process for ``kuntur evaluate`` and the tests. States are objects here; the worker's
tables hold them encoded (``to_bytes``/``from_bytes``).
"""

from __future__ import annotations

import logging
import operator
from dataclasses import dataclass

from config.settings import Settings
from features.account import ACCOUNT_FEATURES, AccountState, record_account_fraud, update_account
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
from stream.pipeline.deferred import DeferredLabels
from stream.pipeline.emits import AccountFraud, Fraud, MerchantFraud, ToMerchant, ToScore, Verdict, label_frauds
from stream.pipeline.validation import Label

__all__ = ["AccountStage", "AccountStep", "MerchantStage", "Pipeline", "ScoreStage", "Writes", "new_detector"]

_log = logging.getLogger(__name__)

#: the account's and the merchant's features in catalogue order, read from their feature dicts
#: in one C call (a comprehension over 63 names costs three times as much per transaction)
_ACCOUNT_VALUES = operator.itemgetter(*ACCOUNT_FEATURES)
_MERCHANT_VALUES = operator.itemgetter(*MERCHANT_FEATURES)


@dataclass(frozen=True, slots=True)
class AccountStep:
    """What the account stage did with one transaction.

    ``state`` is ``None`` for a duplicate (nothing to write, nothing emitted)."""

    state: AccountState | None
    emit: ToMerchant | None
    late: bool = False

    @property
    def duplicate(self) -> bool:
        return self.state is None


class AccountStage:
    """Update the account's rolling state (or its reported frauds); emit the transaction with
    its account features."""

    def __init__(self, settings: Settings) -> None:
        self._late = settings.late_tolerance_s
        self._ttl = settings.state_ttl_s
        #: ids inside the lateness tolerance forgotten because an account passed its id memory's cap
        self.ids_dropped = 0

    def on_transaction(self, state: AccountState | None, tx: Transaction) -> AccountStep:
        update = update_account(state, tx, late_tolerance_s=self._late, ttl_s=self._ttl)
        if update.ids_dropped:
            before = self.ids_dropped
            self.ids_dropped += update.ids_dropped
            if self.ids_dropped.bit_length() > before.bit_length():  # logged at 1, 2, 4, 8... in all
                _log.warning(
                    "%d transaction ids inside the lateness tolerance forgotten so far: an account passed the "
                    "id memory's cap (MAX_IDS); a re-delivery of one of them would be counted again",
                    self.ids_dropped,
                )
        if update.duplicate:
            return AccountStep(None, None)
        f = update.features
        return AccountStep(update.state, ToMerchant(tx, list(_ACCOUNT_VALUES(f))), update.late)

    @staticmethod
    def on_fraud(state: AccountState | None, fraud: AccountFraud) -> AccountState | None:
        """The state with the reported fraud remembered (``state`` itself when nothing changed,
        ``None`` for an account without state)."""
        return record_account_fraud(state, fraud.event_ts, fraud.known_at)


class MerchantStage:
    """Update the merchant's rolling state (or its fraud count); emit the full feature vector."""

    NO_MERCHANT_VALUES: tuple[float, ...] = tuple(NO_MERCHANT_FEATURES[name] for name in MERCHANT_FEATURES)

    def __init__(self, settings: Settings) -> None:
        self._late = settings.late_tolerance_s
        self._ttl = settings.state_ttl_s

    def on_transaction(self, state: MerchantState | None, msg: ToMerchant) -> tuple[MerchantState | None, ToScore]:
        """The new merchant state (``None``: the transaction has no merchant) and the emit."""
        tx = msg.tx
        if not tx.merchant_id:
            return None, ToScore(tx, [*msg.values, *self.NO_MERCHANT_VALUES])
        update = update_merchant(state, tx, late_tolerance_s=self._late, ttl_s=self._ttl)
        return update.state, ToScore(tx, [*msg.values, *_MERCHANT_VALUES(update.features)])

    @staticmethod
    def on_fraud(state: MerchantState | None, fraud: MerchantFraud) -> MerchantState:
        return record_merchant_fraud(state, fraud.event_ts)


class ScoreStage:
    """Score with the model and rules; learn from labels joined on event time.

    Its state: the detector (the model; the transactions awaiting labels and the recently
    resolved ones, :mod:`models.pending`) and the labels reported ahead of the scored stream
    (:mod:`stream.pipeline.deferred`). The last two are key-value stores of bytes that the
    worker backs with changelogged tables on the account's partition; :meth:`take_writes`
    says which of their keys changed, for the worker to persist.
    """

    #: labels reported ahead of the scored stream wait at most this many at once (oldest applied first)
    MAX_DEFERRED = 100_000

    def __init__(self, detector: Detector, deferred: DeferredLabels | None = None) -> None:
        self.detector = detector
        self.deferred = DeferredLabels() if deferred is None else deferred

    def on_transaction(self, msg: ToScore) -> Verdict:
        """Score a transaction whose full feature vector (catalogue order) is known."""
        tx = msg.tx
        released, frauds = self._release(upto=tx.ts)
        x = dict(zip(FEATURE_NAMES, msg.values, strict=True))
        rules = fired_rules(x)
        scored = self.detector.score(
            tx.transaction_id, tx.account_id, tx.merchant_id, tx.ts, x, force_alert=rules_alert(rules)
        )
        return Verdict(scored=scored, rules=rules, features=x, labels=released, frauds=frauds)

    def what_if(self, msg: ToScore) -> Verdict:
        """What :meth:`on_transaction` would decide for ``msg`` now, changing nothing: no
        deferred label applied, nothing parked, no counter, no watermark move. The reasons
        are computed whether or not it would alert (``POST /score``, :mod:`stream.score_api`)."""
        det = self.detector
        x = dict(zip(FEATURE_NAMES, msg.values, strict=True))
        rules = fired_rules(x)
        row, _ = det.pending.vector(x)
        scoring = det.model.forward_row(row, det.pending.names, x)
        model = det.model
        # Detector.warm without caching the answer (the flag is part of its checkpoint)
        warm = det._warm or model.examples_seen - model.frauds_seen >= det.warmup_genuine
        alert = rules_alert(rules) or (scoring.score >= det.threshold and warm)
        return Verdict(scored=Scored(scoring.score, alert, model.explain(scoring, x)), rules=rules, features=x)

    def on_label(self, label: Label) -> tuple[LabelOutcome | None, list[Fraud] | None]:
        """Apply a label once the scored stream's event time has reached its report time.

        Labels and transactions travel on different topics, so in a replay (or a backlog)
        a label can overtake the transaction it is about. Joining on event time makes the
        worker learn exactly what the offline evaluator learns: nothing before it was
        reported, and a report that came within the horizon teaches "fraud" even if the
        stream is already past the horizon. Returns the outcome and the records the applied
        label emits (:func:`~stream.pipeline.emits.label_frauds`); ``(None, None)`` while the
        label is deferred.
        """
        if label.reported_at > self.detector.watermark:
            self.deferred.push(label)
            if len(self.deferred) <= self.MAX_DEFERRED:
                return None, None
            label = self.deferred.pop()
        outcome = self.detector.on_label(label.transaction_id, label.is_fraud)
        known_at = max(self.detector.watermark, label.reported_at)  # never before its report time
        return outcome, label_frauds(outcome, label.account_id, known_at)

    def release_labels(self, upto: float) -> list[LabelOutcome]:
        """Apply deferred labels reported at or before ``upto``, each at its own event time:
        transactions whose horizon ended before the report are learned as genuine first."""
        return self._release(upto)[0]

    def _release(self, upto: float) -> tuple[list[LabelOutcome], list[Fraud]]:
        """:meth:`release_labels`, and the records the released labels emit. They are known
        from the event time the scored stream reaches with the transaction at ``upto``."""
        out: list[LabelOutcome] = []
        frauds: list[Fraud] = []
        deferred = self.deferred
        known_at = max(self.detector.watermark, upto)
        while (reported_at := deferred.earliest()) is not None and reported_at <= upto:
            label = deferred.pop()
            self.detector.advance(reported_at)
            outcome = self.detector.on_label(label.transaction_id, label.is_fraud)
            out.append(outcome)
            frauds += label_frauds(outcome, label.account_id, known_at)
        return out, frauds

    @property
    def deferred_labels(self) -> int:
        return len(self.deferred)

    def take_writes(self) -> Writes:
        """Keys of the learning state written or deleted since the last call."""
        return Writes(self.detector.pending.take_changes(), self.deferred.take_changes())


@dataclass(frozen=True, slots=True)
class Writes:
    """Keys of the score stage's stores that changed: ``pending`` (the detector's pending and
    resolved transactions) and ``deferred`` (labels reported ahead of the stream)."""

    pending: set[str]
    deferred: set[str]

    def __bool__(self) -> bool:
        return bool(self.pending or self.deferred)


class Pipeline:
    """The three stages of one detector, built from one settings object."""

    def __init__(self, settings: Settings, detector: Detector) -> None:
        self.settings = settings
        self.account = AccountStage(settings)
        self.merchant = MerchantStage(settings)
        self.score = ScoreStage(detector)

    @property
    def detector(self) -> Detector:
        return self.score.detector


def new_detector(settings: Settings, label_horizon_s: float | None = None) -> Detector:
    """A fresh detector as the worker builds it (the evaluator uses the very same one)."""
    return Detector(
        FraudModel(settings.model, feature_names=FEATURE_NAMES),
        threshold=settings.alert_threshold,
        label_horizon_s=settings.label_horizon_s if label_horizon_s is None else label_horizon_s,
        pending_capacity=settings.pending_capacity,
        warmup_genuine=settings.warmup_genuine,
    )
