"""Errors raised by the online-model core."""

from __future__ import annotations


class UnknownModelError(ValueError):
    """A model name that is not one of :data:`models.registry.CANDIDATES`."""


class CheckpointError(Exception):
    """A checkpoint file cannot be written or read (truncated, corrupt, wrong format)."""


class CheckpointMismatch(CheckpointError, ValueError):
    """A checkpoint was written for other feature columns than the caller's.

    Loading it anyway would feed the model the wrong columns, so it is refused.
    """

