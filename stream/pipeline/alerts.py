"""Alert records (DESIGN.md): explainable, idempotent by ``alert_id``.

``reasons`` are plain-language sentences (:mod:`stream.pipeline.reasons`): the model's top
contributions (``"source": "model"``), then strong deviations from the account's history
the model did not name (``"source": "history"``, contribution 0)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from features.transaction import Transaction
from models.detector import Scored
from stream.pipeline.reasons import plain_reasons

_ALERT_NS = uuid.UUID("6b756e74-7572-4b75-6e74-757266726175")  # "kuntur"-derived, fixed forever


def alert_id(transaction_id: str) -> str:
    """Stable id: the same transaction always yields the same alert id (idempotent sinks)."""
    return str(uuid.uuid5(_ALERT_NS, transaction_id))


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat()


def build_alert(
    tx: Transaction,
    features: dict[str, float],
    scored: Scored,
    threshold: float,
    model_version: str,
    rules: list[str],
    scored_at: float,
) -> dict[str, Any]:
    return {
        "alert_id": alert_id(tx.transaction_id),
        "transaction_id": tx.transaction_id,
        "account_id": tx.account_id,
        "institution_id": tx.institution_id,
        "event_time": iso(tx.ts),
        "scored_at": iso(scored_at),
        "score": round(scored.score, 6),
        "threshold": threshold,
        "model_version": model_version,
        "reasons": plain_reasons(scored.reasons, features, tx),
        "rules": rules,
        "features": features,
        "amount": tx.amount if tx.original_amount is None else tx.original_amount,  # as sent, in its currency
        "currency": tx.currency,
        "amount_pen": round(tx.amount, 2),  # what the features and rules saw
        "merchant_id": tx.merchant_id,
        "merchant_category": tx.merchant_category,
        "channel": tx.channel,
        "transaction_type": tx.transaction_type,
        "latitude": tx.latitude,
        "longitude": tx.longitude,
    }
