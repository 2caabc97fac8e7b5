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


class CheckpointSignatureError(CheckpointError):
    """A checkpoint's HMAC-SHA256 signature is missing or does not match the key.

    It was not written with this key, or it was truncated or altered since; nothing in it
    was deserialised.
    """
