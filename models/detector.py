"""Delayed-label online learning: score now, learn when the truth is known.

The worker and ``kuntur evaluate`` both drive a :class:`Detector`, so a backtest replays
exactly what production does:

1. :meth:`Detector.score` scores a transaction, parks it (with the features it was scored
   with) in :class:`~models.pending.PendingLabels`, and advances the event-time watermark.
2. A fraud report, :meth:`Detector.on_label`, teaches the model right away with the parked
   features — never with later ones, and never before the label arrived.
3. A transaction nobody reported within ``label_horizon_s`` of event time is learned as
   genuine, exactly once, when the watermark passes its horizon (:meth:`Detector.advance`).

Labels that cannot teach are reported, not raised, in :attr:`LabelOutcome.reason`:

* ``"unknown-transaction"`` — never scored here, evicted for capacity, or resolved so long
  ago that it left the resolved-ids memory;
* ``"duplicate"`` — the transaction was already learned from an earlier label;
* ``"late-after-horizon"`` — the horizon passed first and it was learned as genuine. We do
  not learn it again: its features are gone by design (bounded memory), and teaching the
  same transaction twice with opposite labels would leave the model with an arbitrary mix
  of both. A late *fraud* report still carries ``merchant_id`` and ``event_ts`` so the
  merchant fraud-rate features can count it.

Recently resolved ids are remembered (bounded by ``pending_capacity``) to tell those cases
apart and to keep a re-delivered transaction (at-least-once) from being learned twice.

The watermark is the largest event time this detector has scored; an event that arrives
more than ``label_horizon_s`` behind it is scored normally and learned as genuine at the
next advance. Cold start: fraud reports come within days, genuine examples only after the
horizon, so a fresh model first learns frauds alone and scores everything high — replay
history first (``kuntur evaluate`` + checkpoint) or set ``warmup_genuine``.

>>> from models.scorer import FraudModel
>>> det = Detector(FraudModel("logreg", ["a"]), label_horizon_s=10.0)
>>> det.score("t1", "acc", "m1", 100.0, {"a": 1.0}).alert
False
>>> det.model.examples_seen
0
>>> det.on_label("t1", True).reason
'learned'
>>> det.on_label("t1", True).reason
'duplicate'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.pending import Pending, PendingLabels, Resolution
from models.quality import OnlineQuality
from models.scorer import FraudModel, Reason

__all__ = [
    "DUPLICATE",
    "LATE_AFTER_HORIZON",
    "LEARNED",
    "UNKNOWN_TRANSACTION",
    "Detector",
    "LabelOutcome",
    "Scored",
    "learn_packed",
]

LEARNED = "learned"
UNKNOWN_TRANSACTION = "unknown-transaction"
DUPLICATE = "duplicate"
LATE_AFTER_HORIZON = "late-after-horizon"

#: ``learner(transaction_id, x, partial, is_fraud, event_ts)``: where resolved examples go
#: instead of the detector's own model (:class:`models.shared.SharedModel`)
Learner = Callable[[str, bytes, bool, bool, float], None]

_LABELLED = 0  # resolved by a label
_EXPIRED = 1  # resolved as genuine at the horizon

@dataclass(frozen=True, slots=True)
class Scored:
    """The decision for one transaction; ``reasons`` are computed only for alerts."""

    score: float
    alert: bool
    reasons: list[Reason]


@dataclass(frozen=True, slots=True)
class LabelOutcome:
    """What a label did. ``merchant_id``/``event_ts`` are those of the labelled transaction
    when it is still known (``None`` otherwise)."""

    learned: bool
    is_fraud: bool
    merchant_id: str | None
    event_ts: float | None
    reason: str


class Detector:
    """Score, park, and learn from delayed labels.

    Parameters
    ----------
    model
        The online model; ``model.feature_names`` fixes the parked vectors' columns.
    threshold
        Alert when ``score >= threshold``.
    label_horizon_s
        Event-time seconds after which an unreported transaction is learned as genuine.
    pending_capacity
        Maximum transactions awaiting a label (oldest evicted beyond it, not learned).
    quality_window
        Resolved TP/FP/FN outcomes in the rolling precision/recall.
    warmup_genuine
        No alerts until the model has learned this many genuine examples (scores are still
        computed). Genuine examples only arrive after the label horizon while fraud reports
        arrive within days, so a fresh model first learns frauds only and would score
        every transaction as fraud. 0 (default) alerts from the first score; bootstrap a
        model by replaying history, or set ~1000 for a cold start.
    """

    def __init__(
        self,
        model: FraudModel,
        threshold: float = 0.5,
        label_horizon_s: float = 7 * 86400,
        pending_capacity: int = 500_000,
        quality_window: int = 1000,
        *,
        warmup_genuine: int = 0,
    ) -> None:
        self.model = model
        self.threshold = threshold
        self.label_horizon_s = label_horizon_s
        self.pending_capacity = pending_capacity
        self.quality_window = quality_window
        self.warmup_genuine = warmup_genuine
        self._warm = warmup_genuine <= 0
        self.pending = PendingLabels(model.feature_names, capacity=pending_capacity)
        #: whether :meth:`state_dict` carries the pending and resolved transactions; a worker
        #: keeps them in a changelogged table instead (:meth:`use_store`)
        self.learning_state_in_checkpoint = True
        self.quality = OnlineQuality(window=quality_window)
        self.watermark = float("-inf")
        #: ``None``: learn at once; else every resolved example goes to it (a shared model)
        self.learner: Learner | None = None
        self.counts: dict[str, int] = {
            "scored": 0,
            "alerts": 0,
            "rescored": 0,
            "learned_genuine_at_horizon": 0,
            LEARNED: 0,
            UNKNOWN_TRANSACTION: 0,
            DUPLICATE: 0,
            LATE_AFTER_HORIZON: 0,
        }

    def use_store(self, store: MutableMapping[str, bytes]) -> int:
        """Keep the pending and resolved transactions in ``store`` (a changelogged table's
        dict) from now on, recording every key written (:meth:`PendingLabels.take_changes`);
        what the detector held so far is dropped (the table is the truth). Returns how many
        pending entries were dropped."""
        dropped = len(self.pending)
        old = self.pending
        self.pending = PendingLabels(
            old.feature_names, capacity=old.capacity, store=store, resolved_capacity=old.resolved_capacity,
            track_changes=True,
        )
        self.pending.evicted = old.evicted
        self.learning_state_in_checkpoint = False
        return dropped

    # -- state (checkpoints) ---------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything but the model (which has its own :meth:`FraudModel.state_dict`) as
        plain values and numpy arrays: settings, watermark, counters, the pending buffer,
        the quality window and the resolved-ids memory."""
        keep = self.learning_state_in_checkpoint
        pending = self.pending if keep else PendingLabels(self.pending.names, capacity=self.pending_capacity)
        resolved = self.pending.resolutions() if keep else []
        return {
            # floats that may be infinite (watermark, a disabled horizon) go in an array
            "floats": np.array([self.threshold, self.label_horizon_s, self.watermark]),
            "pending_capacity": self.pending_capacity,
            "quality_window": self.quality_window,
            "warmup_genuine": self.warmup_genuine,
            "warm": self._warm,
            "counts": dict(self.counts),
            "pending": pending.state_dict(),
            "quality": self.quality.state_dict(),
            "resolved_capacity": self.pending.resolved_capacity,
            "resolved_id": [tid for tid, _ in resolved],
            "resolved_how": np.array([r.how for _, r in resolved], dtype=np.int8),
            "resolved_merchant_id": [r.merchant_id for _, r in resolved],
            "resolved_event_ts": np.array([r.event_ts for _, r in resolved], dtype=np.float64),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any], model: FraudModel) -> Detector:
        """The detector a :meth:`state_dict` describes, around the restored ``model``."""
        threshold, horizon, watermark = np.asarray(state["floats"], dtype=np.float64).tolist()
        det = cls(model, threshold, horizon, int(state["pending_capacity"]),
                  int(state["quality_window"]), warmup_genuine=int(state["warmup_genuine"]))
        det._warm = bool(state["warm"])
        det.watermark = watermark
        det.counts = {str(k): int(v) for k, v in state["counts"].items()}
        det.pending = pending = PendingLabels.from_state(state["pending"])
        det.quality = OnlineQuality.from_state(state["quality"])
        pending.resolved_capacity = int(state["resolved_capacity"])
        how = np.asarray(state["resolved_how"]).tolist()
        if not set(how) <= {_LABELLED, _EXPIRED}:
            raise ValueError("unexpected resolution kind in the resolved-ids memory")
        entries = zip(map(str, state["resolved_id"]), how, state["resolved_merchant_id"],
                      np.asarray(state["resolved_event_ts"], dtype=np.float64).tolist(), strict=True)
        for tid, kind, merchant_id, event_ts in entries:
            pending.resolve(tid, Resolution(int(kind), merchant_id, event_ts))
        return det

    def __repr__(self) -> str:
        return (f"Detector(model={self.model!r}, threshold={self.threshold}, "
                f"pending={len(self.pending)}, quality={self.quality!r})")

    def score(
        self,
        transaction_id: str,
        account_id: str,
        merchant_id: str | None,
        event_ts: float,
        x: Mapping[str, float],
        force_alert: bool = False,
    ) -> Scored:
        """Score ``x``, park it until its label or horizon, advance the watermark.

        ``force_alert`` raises the alert whatever the score (an expert rule fired); the
        online quality then measures every alert the system emitted, not just the model's.

        A transaction id already pending or resolved (an at-least-once re-delivery) is
        scored again but not parked again, so it is never learned twice.
        """
        model, pending = self.model, self.pending
        row, partial = pending.vector(x)
        scoring = model.forward_row(row, pending.names, x)
        p = scoring.score
        alert = force_alert or (p >= self.threshold and (self._warm or self.warm))
        reasons = model.explain(scoring, x) if alert else []
        counts = self.counts
        counts["scored"] += 1
        if alert:
            counts["alerts"] += 1
        if pending.known(transaction_id):
            counts["rescored"] += 1
        else:
            pending.add_vector(transaction_id, account_id, merchant_id, event_ts, row, partial,
                               p, alert)
        if event_ts > self.watermark:
            self.advance(event_ts)
        return Scored(p, alert, reasons)

    @property
    def warm(self) -> bool:
        """Whether the model has learned ``warmup_genuine`` genuine examples (alerts on)."""
        if not self._warm:
            self._warm = self.model.examples_seen - self.model.frauds_seen >= self.warmup_genuine
        return self._warm

    def on_label(self, transaction_id: str, is_fraud: bool) -> LabelOutcome:
        """Learn from a label with the features the transaction was scored with."""
        is_fraud = bool(is_fraud)
        p = self.pending.pop(transaction_id)
        if p is None:
            resolved = self.pending.resolution(transaction_id)
            if resolved is None:
                reason = UNKNOWN_TRANSACTION
                merchant_id, event_ts = None, None
            else:
                merchant_id, event_ts = resolved.merchant_id, resolved.event_ts
                reason = DUPLICATE if resolved.how == _LABELLED else LATE_AFTER_HORIZON
            self.counts[reason] += 1
            return LabelOutcome(False, is_fraud, merchant_id, event_ts, reason)
        self._learn(p, is_fraud, _LABELLED)
        self.counts[LEARNED] += 1
        return LabelOutcome(True, is_fraud, p.merchant_id, p.event_ts, LEARNED)

    def advance(self, watermark_ts: float) -> int:
        """Move the watermark forward (never back) and learn "genuine" for every pending
        transaction at least ``label_horizon_s`` older. Returns how many were learned."""
        if watermark_ts > self.watermark:
            self.watermark = watermark_ts
        expired = self.pending.expire(self.watermark, self.label_horizon_s)
        for p in expired:
            self._learn(p, False, _EXPIRED)
        if expired:
            self.counts["learned_genuine_at_horizon"] += len(expired)
        return len(expired)

    def _learn(self, p: Pending, is_fraud: bool, how: int) -> None:
        pending = self.pending
        if self.learner is None:
            learn_packed(self.model, pending.names, p.x, p.partial, is_fraud)
        else:
            self.learner(p.transaction_id, p.x, p.partial, is_fraud, p.event_ts)
        self.quality.update(p.alerted, is_fraud)
        pending.resolve(p.transaction_id, Resolution(how, p.merchant_id, p.event_ts))


def learn_packed(model: FraudModel, names: tuple[str, ...], x: bytes, partial: bool, is_fraud: bool) -> None:
    """Teach ``model`` one example whose features are packed float32 in ``names`` order
    (a :class:`~models.pending.Pending`'s ``x``; NaN = missing where ``partial``): the one
    learning step of the detector and of the shared model's training log."""
    values = np.frombuffer(x, dtype=np.float32)
    if model.accepts_rows:
        model.learn_row(values.astype(np.float64), names, is_fraud)
        return
    listed = values.tolist()
    if partial:
        model.learn_one({k: v for k, v in zip(names, listed, strict=True) if v == v}, is_fraud)
    else:
        model.learn_one(dict(zip(names, listed, strict=True)), is_fraud)
