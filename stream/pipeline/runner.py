"""Run the pipeline in process: the stages' emits routed by :data:`~stream.pipeline.emits.ROUTES`
to the next stage at once, with dicts of state objects as the tables.

This is what ``kuntur evaluate`` streams a history through and what the pipeline's unit
tests drive (Bytewax's ``testing.run_main`` plays the same part). The Faust agents route
the same emits through internal topics; on one partition the order of events is the same,
so a worker and this runner compute the same scores (the replay-equivalence test checks it).

>>> from config.settings import load_settings
>>> from stream.pipeline.stages import Pipeline, new_detector
>>> from stream.pipeline.validation import transaction_from_dict
>>> settings = load_settings(overrides={"model": "logreg"})
>>> run = Runner(Pipeline(settings, new_detector(settings)))
>>> tx = transaction_from_dict({"transaction_id": "t1", "account_id": "a", "timestamp": 0, "amount": 5})
>>> run.transaction(tx).features["account_tx_count_1h"]
1.0
>>> run.transaction(tx) is None  # a duplicate is not scored twice
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from features.account import AccountState
from features.merchant import MerchantState
from features.transaction import Transaction
from models.detector import LabelOutcome
from stream.pipeline.emits import ROUTES, AccountFraud, MerchantFraud, Stage, ToMerchant, ToScore, Verdict
from stream.pipeline.stages import Pipeline
from stream.pipeline.validation import Label

__all__ = ["Runner"]


class Runner:
    """Routes one pipeline's emits in process. Counts duplicates and late events."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.accounts: dict[str, AccountState] = {}
        self.merchants: dict[str, MerchantState] = {}
        self.duplicates = 0
        self.late = 0
        self._verdict: Verdict | None = None
        handlers: dict[Stage, Callable[[Any], None]] = {
            Stage.ACCOUNT: self._account_fraud,
            Stage.MERCHANT: self._merchant,
            Stage.SCORE: self._score,
        }
        self._handlers = {kind: handlers[stage] for kind, stage in ROUTES.items()}

    def transaction(self, tx: Transaction) -> Verdict | None:
        """Take one transaction through every stage; its verdict, or ``None`` for a duplicate."""
        step = self.pipeline.account.on_transaction(self.accounts.get(tx.account_id), tx)
        if step.state is None:
            self.duplicates += 1
            return None
        self.late += step.late
        self.accounts[tx.account_id] = step.state
        self._verdict = None
        self.route(step.emit)
        verdict, self._verdict = self._verdict, None
        return verdict

    def label(self, label: Label) -> LabelOutcome | None:
        """Apply one label (``None`` while it waits for the stream to reach its report time)."""
        outcome, frauds = self.pipeline.score.on_label(label)
        for fraud in frauds or ():
            self.route(fraud)
        return outcome

    def route(self, emit: ToMerchant | ToScore | MerchantFraud | AccountFraud | None) -> None:
        if emit is not None:
            self._handlers[type(emit)](emit)

    def _account_fraud(self, emit: AccountFraud) -> None:
        """A reported fraud into its account's state, at once (as merchant fraud is routed)."""
        state = self.pipeline.account.on_fraud(self.accounts.get(emit.account_id), emit)
        if state is not None:
            self.accounts[emit.account_id] = state

    def _merchant(self, emit: ToMerchant | MerchantFraud) -> None:
        stage = self.pipeline.merchant
        if isinstance(emit, MerchantFraud):
            self.merchants[emit.merchant_id] = stage.on_fraud(self.merchants.get(emit.merchant_id), emit)
            return
        merchant_id = emit.tx.merchant_id
        state, out = stage.on_transaction(self.merchants.get(merchant_id) if merchant_id else None, emit)
        if state is not None and merchant_id:
            self.merchants[merchant_id] = state
        self.route(out)

    def _score(self, emit: ToScore) -> None:
        verdict = self.pipeline.score.on_transaction(emit)
        self._verdict = verdict
        for fraud in verdict.frauds:
            self.route(fraud)
