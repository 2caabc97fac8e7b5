"""Per-entity rolling-window state and feature extraction (pure Python, no Kafka)."""

from features.account import ACCOUNT_FEATURES, AccountState, AccountUpdate, update_account
from features.catalogue import CATALOGUE, FEATURE_NAMES, FeatureSpec, describe, format_catalogue
from features.errors import StateDecodeError, UnknownFeatureError
from features.merchant import (
    MERCHANT_FEATURES,
    NO_MERCHANT_FEATURES,
    MerchantState,
    MerchantUpdate,
    record_merchant_fraud,
    update_merchant,
)
from features.transaction import Transaction
from features.windows import is_expired

__all__ = [
    "ACCOUNT_FEATURES",
    "CATALOGUE",
    "FEATURE_NAMES",
    "MERCHANT_FEATURES",
    "NO_MERCHANT_FEATURES",
    "AccountState",
    "AccountUpdate",
    "FeatureSpec",
    "MerchantState",
    "MerchantUpdate",
    "StateDecodeError",
    "Transaction",
    "UnknownFeatureError",
    "describe",
    "format_catalogue",
    "is_expired",
    "record_merchant_fraud",
    "update_account",
    "update_merchant",
]
