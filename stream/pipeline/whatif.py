"""What-if scoring: the decision the stream would take for a transaction now, changing nothing.

The account and merchant updates are pure functions of a state and a transaction
(:func:`features.account.update_account`, :func:`features.merchant.update_merchant`): given
states decoded from a table's bytes they return *new* state objects, which a what-if
throws away. :meth:`stream.pipeline.stages.ScoreStage.what_if` scores without parking,
counting or moving the watermark. So nothing a what-if computes is ever written.

>>> from config.settings import load_settings
>>> from stream.pipeline.stages import Pipeline, new_detector
>>> settings = load_settings(overrides={"model": "logreg"})
>>> pipeline = Pipeline(settings, new_detector(settings))
>>> tx = Transaction("t1", "a1", ts=1_772_377_200.0, amount=50.0)
>>> answer = what_if(pipeline, None, None, tx)
>>> answer.duplicate, answer.verdict.features["account_tx_count_1h"], pipeline.detector.counts["scored"]
(False, 1.0, 0)
"""

from __future__ import annotations

from dataclasses import dataclass

from features.account import ACCOUNT_FEATURES, AccountState, update_account
from features.merchant import MerchantState
from features.transaction import Transaction
from stream.pipeline.emits import ToMerchant, Verdict
from stream.pipeline.stages import Pipeline

__all__ = ["WhatIf", "what_if"]


@dataclass(frozen=True, slots=True)
class WhatIf:
    """The would-be verdict (``None``: the account has already seen this transaction id,
    so the stream would not score it again) and whether it would arrive late."""

    verdict: Verdict | None
    late: bool = False

    @property
    def duplicate(self) -> bool:
        return self.verdict is None


def what_if(
    pipeline: Pipeline, account: AccountState | None, merchant: MerchantState | None, tx: Transaction
) -> WhatIf:
    """Score ``tx`` against the given account and merchant states (``None``: none yet) as
    the stream would, without changing them or the pipeline. The states are left as they
    were; pass copies decoded from bytes to be safe against any in-place change."""
    s = pipeline.settings
    update = update_account(account, tx, late_tolerance_s=s.late_tolerance_s, ttl_s=s.state_ttl_s)
    if update.duplicate:
        return WhatIf(None)
    values = [update.features[name] for name in ACCOUNT_FEATURES]
    _, to_score = pipeline.merchant.on_transaction(merchant if tx.merchant_id else None, ToMerchant(tx, values))
    return WhatIf(pipeline.score.what_if(to_score), update.late)
