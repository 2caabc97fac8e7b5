"""Worker log output: Faust's human-readable lines, or JSON lines for log shippers.

With ``log_format = "json"`` every record — Kuntur's, Faust's, aiokafka's, Python
warnings — is one JSON object on one line of standard error (where Faust's text lines
go too): ``ts`` (ISO-8601, UTC), ``level``, ``logger``, ``message``, then any
``extra=`` fields of the record, and ``exc_info`` / ``stack_info`` as text when present.

>>> import logging
>>> record = logging.LogRecord("kuntur", logging.INFO, "worker.py", 1, "scored %d", (3,), None)
>>> record.created, record.partition = 0.0, 2
>>> JsonFormatter().format(record)
'{"ts":"1970-01-01T00:00:00.000000+00:00","level":"INFO","logger":"kuntur","message":"scored 3","partition":2}'
"""

from __future__ import annotations

import logging
import logging.config
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = ["JsonFormatter", "configure_logging", "logging_config"]

#: Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
_TEXT_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"


def _dumps(entry: dict[str, Any]) -> str:
    return orjson.dumps(entry, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def _text_if_unserialisable(value: Any) -> Any:
    try:
        orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return str(value)
    return value


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on a single line (newlines inside values are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="microseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        try:
            return _dumps(entry)
        except TypeError:  # e.g. a dict with tuple keys in an extra: a log line must never fail
            return _dumps({key: _text_if_unserialisable(value) for key, value in entry.items()})


def logging_config(log_format: str, level: str) -> dict[str, Any] | None:
    """A ``logging.config.dictConfig`` for the worker, or None for Faust's own text format.

    Faust's worker (``mode``) applies this dict when it starts, replacing its default
    colourised handler, so the JSON format covers Faust's and aiokafka's records too.
    A fresh dict every call: ``mode`` may mutate the one it is given.
    """
    if log_format != "json":
        return None
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
                "level": level.upper(),
            }
        },
        "root": {"level": level.upper(), "handlers": ["default"]},
    }


#: Libraries whose info lines (Faust's service start-up, subscription and recovery tables) are
#: debug detail for a Kuntur operator: at ``info`` they show warnings and errors only.
QUIET_AT_INFO = ("faust", "mode", "aiokafka", "kafka")


def configure_logging(log_format: str, level: str) -> dict[str, Any] | None:
    """Set up logging before Faust does (so start-up lines are kept); returns the config for Faust.

    Below ``debug``, the libraries of :data:`QUIET_AT_INFO` log warnings and errors only (their
    loggers keep these levels through Faust's own logging set-up, which configures the root)."""
    logging.captureWarnings(True)
    for name in QUIET_AT_INFO:
        logging.getLogger(name).setLevel(logging.NOTSET if level.lower() == "debug" else logging.WARNING)
    config = logging_config(log_format, level)
    if config is None:
        logging.basicConfig(level=level.upper(), format=_TEXT_FORMAT, force=True)
    else:
        logging.config.dictConfig(config)
    return logging_config(log_format, level)
