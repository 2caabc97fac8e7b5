"""What ``kuntur worker`` says at start: its own lines, the warm-up, not Faust's tables."""

from __future__ import annotations

import logging

import pytest

from config.settings import load_settings
from stream.logs import QUIET_AT_INFO, configure_logging
from stream.pipeline.stages import new_detector
from stream.worker import WarmUp, start_lines


@pytest.fixture
def settings(tmp_path):
    return load_settings(env={}, overrides={"data_dir": str(tmp_path), "warmup_genuine": 3, "web_port": 7001})


def test_the_start_line_names_model_threshold_bootstrap_metrics_and_data(settings, tmp_path):
    lines = start_lines(settings, new_detector(settings))
    assert lines[0].startswith("worker starting: model gam-pairs-asinh (version gam-pairs-asinh.g0, 0 examples")
    for part in ("threshold 0.5", "Kafka 127.0.0.1:9092", "metrics http://127.0.0.1:7001/metrics", str(tmp_path)):
        assert part in lines[0]
    assert lines[1].startswith("fresh model: alerts are rule-only until it has learned 3 genuine examples (0 so far")


def test_a_warm_model_says_so_once(settings):
    detector = new_detector(settings)
    warm_up = WarmUp(detector)
    assert warm_up.check() is None
    detector.model.examples_seen = 3  # as if it had learned three genuine examples
    line = warm_up.check()
    assert line is not None and line.startswith("model alerting: gam-pairs-asinh.g0 has learned 3 genuine")
    assert warm_up.check() is None
    assert len(start_lines(settings, detector)) == 1  # no warm-up line for a warm model


@pytest.fixture
def quiet_loggers():
    before = {name: logging.getLogger(name).level for name in QUIET_AT_INFO}
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for name, old in before.items():
        logging.getLogger(name).setLevel(old)
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)


def test_faust_info_lines_are_debug_detail_warnings_still_show(quiet_loggers):
    configure_logging("text", "info")
    assert not logging.getLogger("faust.tables.recovery").isEnabledFor(logging.INFO)
    assert not logging.getLogger("aiokafka.consumer").isEnabledFor(logging.INFO)
    assert logging.getLogger("faust.worker").isEnabledFor(logging.WARNING)
    assert logging.getLogger("kuntur").isEnabledFor(logging.INFO)
    configure_logging("text", "debug")
    assert logging.getLogger("faust.tables.recovery").isEnabledFor(logging.DEBUG)


def test_the_internal_and_changelog_topics_are_known_before_the_worker_subscribes(settings):
    """The worker creates them before Faust subscribes (a topic declared during the subscription
    is ignored as missing until a metadata refresh, and nothing flows through it)."""
    from stream.app import create_app
    from stream.metrics import Metrics
    from stream.pipeline.stages import Pipeline
    from stream.worker import internal_topics

    settings = settings.replace(model_key="k" * 40)
    kuntur = create_app(settings, Pipeline(settings, new_detector(settings)), Metrics(), 4, b"k" * 40)
    topics = internal_topics(kuntur.app)
    app = settings.app_id
    assert {f"{app}-by-merchant-v3", f"{app}-to-score-v3"} <= set(topics)
    changelogs = {name for name, config in topics.items() if config == {"cleanup.policy": "compact"}}
    assert {f"{app}-pending-v1-changelog", f"{app}-deferred-labels-v1-changelog"} <= changelogs
    assert all(name.startswith(f"{app}-") for name in topics)
    assert settings.topic_transactions not in topics and settings.topic_labels not in topics
