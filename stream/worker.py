"""``kuntur worker``: restore the model, build the Faust app, run until SIGTERM/SIGINT."""

from __future__ import annotations

import logging
from pathlib import Path

from config.settings import Settings
from features.catalogue import FEATURE_NAMES
from models.checkpoint import load_checkpoint
from models.detector import Detector
from models.scorer import FraudModel
from stream.app import Kuntur, create_app
from stream.core import Pipeline
from stream.metrics import Metrics
from stream.topics import ensure_topics

log = logging.getLogger("kuntur")


def restore_detector(settings: Settings) -> Detector:
    """The checkpointed detector if one exists (same features), else a fresh one."""
    path = Path(settings.data_dir) / "model.ckpt"
    if path.exists():
        detector = load_checkpoint(path, feature_names=FEATURE_NAMES)
        detector.threshold = settings.alert_threshold
        log.info(
            "restored model %s (%d examples seen) from %s", detector.model.version, detector.model.examples_seen, path
        )
        return detector
    return Detector(
        FraudModel(settings.model, feature_names=FEATURE_NAMES),
        threshold=settings.alert_threshold,
        label_horizon_s=settings.label_horizon_s,
        pending_capacity=settings.pending_capacity,
        warmup_genuine=settings.warmup_genuine,
    )


def build_worker(settings: Settings) -> Kuntur:
    partitions = ensure_topics(settings)
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    detector = restore_detector(settings)
    metrics = Metrics()
    metrics.set_model(detector.model.name, detector.model.version, detector.model.generation)
    return create_app(settings, Pipeline(settings, detector), metrics, partitions)


def run_worker(settings: Settings) -> int:
    from faust.worker import Worker

    kuntur = build_worker(settings)
    worker = Worker(kuntur.app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()  # returns via SystemExit on shutdown
    return 0
