"""Errors of the simulator, under the offline package's root :class:`~offline.errors.OfflineError`."""

from __future__ import annotations

from offline.errors import OfflineError

__all__ = ["OutputFormatError", "ProduceError"]


class OutputFormatError(OfflineError, ValueError):
    """The output file format is unknown or its writer is not installed."""


class ProduceError(OfflineError, RuntimeError):
    """Some messages could not be delivered to Kafka."""
