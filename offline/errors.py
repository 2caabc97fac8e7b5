"""Errors of the offline package (simulator and backtest), under one root."""

from __future__ import annotations


class OfflineError(Exception):
    """Root of every error the offline package raises on purpose."""


class HistoryError(OfflineError, ValueError):
    """A history file (for ``kuntur evaluate`` / ``kuntur replay``) cannot be read as asked."""


class BaselineUnavailable(OfflineError, RuntimeError):
    """A batch baseline needs a library that is not installed (scikit-learn, xgboost)."""


class UnknownBaselineError(OfflineError, ValueError):
    """A baseline kind that is not one of :data:`offline.backtest.baseline.BASELINES`."""


class ReportUnavailable(OfflineError, RuntimeError):
    """The HTML report needs matplotlib, which is not installed."""


class CheckpointOutError(OfflineError, ValueError):
    """``kuntur evaluate --checkpoint-out`` cannot write the model (no model key, the file exists)."""
