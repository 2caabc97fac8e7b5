"""``kuntur worker``: restore the model, build the Faust app, run until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import faust
from faust.types import TP

from config.settings import Settings
from features.catalogue import FEATURE_NAMES
from models.checkpoint import load_checkpoint_bytes
from models.detector import Detector
from models.shared import SharedModel
from stream import faust_patches
from stream.app import Kuntur, create_app
from stream.kafka.admin import ensure_internal_topics, ensure_topics
from stream.learning import TrainingReader, ensure_learning_topics, latest_snapshot
from stream.logs import configure_logging
from stream.metrics import Metrics
from stream.pipeline.stages import Pipeline, new_detector

log = logging.getLogger("kuntur")

#: Seconds between broker queries of the end offsets behind ``kuntur_consumer_lag_messages``.
LAG_INTERVAL_S = 5.0
#: Longest a SIGTERM'd worker takes to stop, whatever the broker does.
SHUTDOWN_GRACE_S = 15.0


def restore_detector(settings: Settings, key: bytes) -> tuple[Detector, int | None]:
    """The checkpointed detector if one exists (same features, valid signature), else a
    fresh one; with the training-log offset its model has read (None: not known).

    A checkpoint whose signature does not verify is refused (:class:`CheckpointSignatureError`):
    the worker does not start rather than silently dropping or trusting a model."""
    path = Path(settings.data_dir) / "model.ckpt"
    if path.exists():
        detector, meta = load_checkpoint_bytes(path.read_bytes(), key, feature_names=FEATURE_NAMES, source=str(path))
        detector.threshold = settings.alert_threshold
        log.info(
            "restored model %s (%d examples seen) from %s", detector.model.version, detector.model.examples_seen, path
        )
        offset = meta.get("training_offset")
        return detector, offset if isinstance(offset, int) else None
    return new_detector(settings), None


def share_model(settings: Settings, detector: Detector, local_offset: int | None, key: bytes) -> SharedModel:
    """Join the shared model: start from the newest snapshot on Kafka (or the local
    checkpoint when it has read further), then read the training log to its end."""
    ensure_learning_topics(settings)
    snapshot = latest_snapshot(settings, key)
    if snapshot is not None and (local_offset is None or snapshot.training_offset > local_offset):
        snapshot.model.generation = snapshot.training_offset
        detector.model = snapshot.model
        offset = snapshot.training_offset
        log.info("model %s from the model topic (training offset %d)", snapshot.version, offset)
    else:
        offset = local_offset or 0
    shared = SharedModel(detector, origin=os.urandom(16), next_offset=offset)
    reader = TrainingReader(settings, shared)
    try:
        read = reader.catch_up()
    finally:
        reader.close()
    log.info(
        "model: %d training examples read at start; agreed model at training offset %d (%d examples seen)",
        read, shared.next_offset, detector.model.examples_seen,
    )
    return shared


def build_worker(settings: Settings) -> Kuntur:
    key = settings.model_signing_key()  # before anything else: no key, no start
    faust_patches.install(settings.consumer_fetch_max_wait_ms, settings.consumer_direct_delivery)
    partitions = ensure_topics(settings)
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    detector, offset = restore_detector(settings, key)
    shared = share_model(settings, detector, offset, key) if settings.shared_model else None
    metrics = Metrics(institutions_max=settings.metric_institutions_max)
    metrics.set_model(detector.model.name, detector.model.version, detector.model.generation)
    metrics.checkpoint_interval.set(settings.checkpoint_interval_s)
    metrics.alert_budget.set(settings.alert_budget_ratio)
    kuntur = create_app(settings, Pipeline(settings, detector), metrics, partitions, key, shared)
    created = ensure_internal_topics(settings, internal_topics(kuntur.app), partitions)
    if created:
        log.info("created internal topics %s", ", ".join(created))
    watch_consumer_lag(kuntur.app, metrics)
    for line in start_lines(settings, detector):
        log.info("%s", line)
    watch_warm_up(kuntur.app, detector)
    return kuntur


def internal_topics(app: faust.App) -> dict[str, dict[str, str]]:
    """The app's internal topics (agents' repartition topics) and tables' changelogs, with
    the configs Faust would give them."""
    topics: dict[str, dict[str, str]] = {}
    for agent in app.agents.values():
        channel = agent.channel
        if getattr(channel, "internal", False):
            topics[channel.get_topic_name()] = {}
    for table in app.tables.values():
        topics[table.changelog_topic.get_topic_name()] = {"cleanup.policy": "compact"}
    return topics


def start_lines(settings: Settings, detector: Detector) -> list[str]:
    """What a person starting a worker needs to know, in one or two log lines."""
    model = detector.model
    lines = [
        f"worker starting: model {model.name} (version {model.version}, {model.examples_seen} examples seen), "
        f"threshold {detector.threshold:g}, Kafka {settings.kafka_bootstrap}, "
        f"metrics http://{settings.web_host}:{settings.web_port}/metrics, data {Path(settings.data_dir).resolve()}"
    ]
    if not detector.warm:
        genuine = model.examples_seen - model.frauds_seen
        lines.append(
            f"fresh model: alerts are rule-only until it has learned {detector.warmup_genuine} genuine examples "
            f"({genuine} so far; a transaction teaches 'genuine' {settings.label_horizon_s / 3600:g} h of event "
            "time after it happened, unless a fraud label came first). Skip the warm-up with a model trained on "
            "history: README, 'The model's warm-up'"
        )
    return lines


class WarmUp:
    """Says once, when it happens, that the model's own score has started to alert."""

    def __init__(self, detector: Detector) -> None:
        self.detector = detector
        self.announced = detector.warm

    def check(self) -> str | None:
        if self.announced or not self.detector.warm:
            return None
        self.announced = True
        model = self.detector.model
        return (
            f"model alerting: {model.version} has learned {model.examples_seen - model.frauds_seen} genuine "
            f"examples ({model.frauds_seen} frauds); scores >= {self.detector.threshold:g} now alert"
        )


def watch_warm_up(app: faust.App, detector: Detector, interval: float = 2.0) -> None:
    """Log :class:`WarmUp`'s line from a timer on the worker's event loop."""
    warm_up = WarmUp(detector)
    if warm_up.announced:
        return

    @app.timer(interval=interval)
    async def model_warm_up() -> None:
        line = warm_up.check()
        if line:
            log.info("%s", line)


def on_stop_signal(kuntur: Kuntur) -> None:
    """Checkpoint now (on the event loop, between batches), then give the graceful shutdown
    :data:`SHUTDOWN_GRACE_S` before exiting anyway."""
    kuntur.watch.stop()
    try:
        kuntur.checkpointer.checkpoint(force=True)
    except Exception:
        log.exception("checkpoint at shutdown failed")

    def watchdog() -> None:
        time.sleep(SHUTDOWN_GRACE_S)
        log.warning(
            "shutdown not finished after %.0fs (broker unreachable?): exiting; uncommitted input is re-delivered",
            SHUTDOWN_GRACE_S,
        )
        logging.shutdown()
        os._exit(0)

    threading.Thread(target=watchdog, name="kuntur-shutdown-watchdog", daemon=True).start()


def watch_consumer_lag(app: faust.App, metrics: Metrics, interval: float = LAG_INTERVAL_S) -> None:
    """Every ``interval`` s, ask the broker for the end offsets of this worker's input partitions.

    Lag = end offset - committed offset (Kafka's definition, what ``kafka-consumer-groups``
    shows). Asking the broker, rather than reusing the high watermark of the last fetch,
    keeps the gauge honest when the worker stops fetching. Changelog partitions are
    recovery input, not work, and are left out.
    """

    @app.timer(interval=interval)
    async def consumer_lag() -> None:
        consumer = app.consumer
        try:
            tps = [tp for tp in consumer.assignment() if not tp.topic.endswith("-changelog")]
            ends = await asyncio.wait_for(consumer.highwaters(*tps), timeout=interval) if tps else {}
        except Exception as exc:  # not started, rebalancing, broker unreachable: keep the last values
            log.debug("consumer lag: end offsets unavailable: %r", exc)
            return
        metrics.set_consumer_lag(consumer_lags(ends, app.monitor.tp_committed_offsets, app.monitor.tp_read_offsets))


def consumer_lags(
    ends: Mapping[TP, int | None], committed: Mapping[TP, int], read: Mapping[TP, int]
) -> dict[tuple[str, int], int]:
    """Messages behind per (topic, partition): end offset - committed offset (next to read).

    Before the first commit of a partition the last read offset + 1 stands in; a partition
    with neither is left out. Never negative (the embedded broker under-reports end offsets).

    >>> consumer_lags({TP("tx", 0): 120, TP("tx", 1): 50, TP("tx", 2): 7}, {TP("tx", 0): 100}, {TP("tx", 1): 59})
    {('tx', 0): 20, ('tx', 1): 0}
    """
    lags = {}
    for tp, end in ends.items():
        done = committed.get(tp)
        if done is None and tp in read:
            done = read[tp] + 1
        if end is not None and done is not None:
            lags[(tp.topic, tp.partition)] = max(0, end - done)
    return lags


def run_worker(settings: Settings) -> int:
    from faust.worker import Worker

    class KunturWorker(Worker):
        """Faust's worker; SIGTERM/SIGINT also checkpoint at once and arm a watchdog, so
        the process stops within :data:`SHUTDOWN_GRACE_S` even when the broker is gone
        (Faust's shutdown would wait for it to commit offsets)."""

        def _schedule_shutdown(self, signal: Any) -> None:
            if not self._signal_stop_time:
                on_stop_signal(kuntur)
            super()._schedule_shutdown(signal)

    logging_config = configure_logging(settings.log_format, settings.log_level)
    kuntur = build_worker(settings)
    worker = KunturWorker(
        kuntur.app,
        loglevel=settings.log_level,
        logging_config=logging_config,
        quiet=True,
        redirect_stdouts=False,
    )
    worker.execute_from_commandline()  # returns via SystemExit on shutdown
    return 0
