"""Errors of the feature core.

The stream shell catches these around table reads: a state that cannot be decoded is
dropped (and counted) rather than allowed to stop the worker.
"""

from __future__ import annotations


class FeatureError(Exception):
    """Root of every error the feature core raises on purpose."""


class StateDecodeError(FeatureError, ValueError):
    """Stored per-entity state bytes cannot be decoded.

    Raised for an unknown layout version (state written by a newer or older release) and
    for truncated or over-long data. The message says which and for which state type.
    """


class UnknownFeatureError(FeatureError, KeyError):
    """A feature name that is not in the catalogue (misspelt, or renamed since).

    A ``KeyError``, as a failed catalogue lookup always was; its text is the message
    without the quotes ``KeyError`` adds.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""
