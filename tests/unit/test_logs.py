"""JSON-lines logging: the formatter, and that Faust's own logging setup (mode) keeps it."""

from __future__ import annotations

import doctest
import logging
import logging.config
import sys
from datetime import UTC, datetime

import orjson
import pytest
from mode.utils.logging import get_logger, setup_logging

import stream.logs
from stream.logs import JsonFormatter, configure_logging, logging_config


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    logging.captureWarnings(False)
    root.handlers[:] = handlers
    root.setLevel(level)


def record(msg: str = "scored %d", args: tuple = (3,), **extra) -> logging.LogRecord:
    rec = logging.LogRecord("kuntur", logging.WARNING, __file__, 1, msg, args, None)
    rec.__dict__.update(extra)
    return rec


def test_one_json_object_with_ts_level_logger_message_and_extras():
    line = JsonFormatter().format(record(partition=2, topic="transactions", lag=None))
    entry = orjson.loads(line)
    assert list(entry)[:4] == ["ts", "level", "logger", "message"]
    assert (entry["level"], entry["logger"], entry["message"]) == ("WARNING", "kuntur", "scored 3")
    assert (entry["partition"], entry["topic"], entry["lag"]) == (2, "transactions", None)
    ts = datetime.fromisoformat(entry["ts"])
    assert ts.utcoffset().total_seconds() == 0
    assert abs((datetime.now(tz=UTC) - ts).total_seconds()) < 60


def test_multiline_messages_tracebacks_and_odd_extras_stay_on_one_line():
    try:
        raise ValueError("bad\namount")
    except ValueError:
        rec = logging.LogRecord("kuntur", logging.ERROR, __file__, 1, "two\nlines", None, sys.exc_info())
    rec.where = {("topic", 1): 5}  # a key JSON cannot have: the value becomes text
    rec.what = object()
    line = JsonFormatter().format(rec)
    assert "\n" not in line
    entry = orjson.loads(line)
    assert entry["message"] == "two\nlines"
    assert "ValueError: bad" in entry["exc_info"] and "Traceback" in entry["exc_info"]
    assert entry["where"] == "{('topic', 1): 5}"
    assert entry["what"].startswith("<object object at")


def test_text_format_leaves_faust_its_own_config():
    assert logging_config("text", "info") is None
    config = logging_config("json", "debug")
    assert config is not None and config["root"]["level"] == "DEBUG"
    assert logging_config("json", "debug") is not config  # mode may mutate the dict it gets


def test_faust_logging_setup_with_our_config_writes_json_lines(restore_logging, capsys):
    """What faust.Worker does at start: mode's setup_logging(logging_config=...)."""
    setup_logging(loglevel="info", logging_config=logging_config("json", "info"))
    get_logger("faust.worker").info("[^Worker]: Ready")
    logging.getLogger("kuntur").info("checkpoint %s", "logreg.g2", extra={"examples_seen": 10})
    logging.getLogger("aiokafka").debug("below the level: dropped")
    lines = capsys.readouterr().err.splitlines()
    entries = [orjson.loads(line) for line in lines]
    assert [(e["logger"], e["message"]) for e in entries] == [
        ("faust.worker", "[^Worker]: Ready"),
        ("kuntur", "checkpoint logreg.g2"),
    ]
    assert entries[1]["examples_seen"] == 10


def test_configure_logging_covers_start_up_lines_and_warnings(restore_logging, capsys):
    faust_config = configure_logging("json", "info")
    assert faust_config == logging_config("json", "info")
    logging.getLogger("kuntur").info("restored model")
    import warnings

    warnings.warn("deprecated knob", UserWarning, stacklevel=1)
    entries = [orjson.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert entries[0]["message"] == "restored model"
    assert entries[1]["logger"] == "py.warnings" and "deprecated knob" in entries[1]["message"]


def test_configure_logging_text_mode_is_human_readable(restore_logging, capsys):
    assert configure_logging("text", "info") is None
    logging.getLogger("kuntur").info("restored model")
    err = capsys.readouterr().err
    assert "[INFO] kuntur: restored model" in err


def test_module_docstring_example_runs():
    assert doctest.testmod(stream.logs).failed == 0
