"""Errors of the streaming shell."""

from __future__ import annotations


class StreamError(Exception):
    """Root of every error the streaming shell raises on purpose."""


class InvalidEvent(StreamError, ValueError):
    """An input message that cannot be processed; it goes to the dead-letter topic.

    ``code`` is the machine-readable reason (a DeadLetter ``error`` and a metric label);
    the message is the human-readable ``detail``.
    """

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class BrokerError(StreamError, RuntimeError):
    """The embedded broker could not be started or reached."""



class BrokerUnreachable(BrokerError):
    """No Kafka broker answered within the configured deadline (``broker_unreachable_exit_s``)."""
