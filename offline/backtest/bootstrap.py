"""``kuntur evaluate --checkpoint-out PATH``: the backtest's model as a worker's checkpoint.

A fresh worker alerts on rules alone until its model has learned ``warmup_genuine``
genuine examples, which takes one label horizon (7 days) of event time. A backtest over the
bank's history has already taught the very same model (same stages, same features), so its
model, signed with the model key, is a checkpoint a worker can start from: written as
``<data_dir>/model.ckpt`` it is what :func:`stream.worker.restore_detector` loads at start.

What is written is the model and what describes it (the online quality window, the label
counts), wrapped in a detector built from the *worker's* settings (threshold, label
horizon, pending capacity, warm-up), not the backtest's: ``evaluate`` stretches the horizon
past a fixed ``--label-delay`` and raises the pending buffer to one horizon of the file's
traffic, and neither belongs in a worker. The history's last transactions still awaiting
their labels and its event-time watermark are left out: a worker keeps its pending
transactions in its own changelogged table, and its watermark follows its own traffic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from config.errors import ConfigError
from config.settings import Settings
from models.checkpoint import read_metadata, save_checkpoint
from models.detector import Detector
from offline.errors import CheckpointOutError

__all__ = ["checkpoint_key", "write_checkpoint"]


def checkpoint_key(path: str | Path, settings: Settings) -> bytes:
    """The model key for ``--checkpoint-out`` and a check of ``path``, before the long run.

    Raises :class:`CheckpointOutError` without a key (the worker would refuse an unsigned
    model) or when ``path`` exists (a worker's checkpoint is never replaced silently).
    """
    try:
        key = settings.model_signing_key()
    except ConfigError as exc:
        raise CheckpointOutError(f"--checkpoint-out signs the model with the workers' key: {exc}") from None
    path = Path(path)
    if path.exists():
        raise CheckpointOutError(
            f"--checkpoint-out {path}: the file exists (a worker's model?); move it aside first "
            "(stop the worker that writes it: it rewrites its checkpoint when it stops), or choose another path"
        )
    if path.parent.exists() and not path.parent.is_dir():
        raise CheckpointOutError(f"--checkpoint-out {path}: {path.parent} is not a directory")
    return key


def worker_detector(trained: Detector, settings: Settings) -> Detector:
    """``trained``'s model, quality and counts in a detector configured as a worker's."""
    det = Detector(
        trained.model,
        threshold=settings.alert_threshold,
        label_horizon_s=settings.label_horizon_s,
        pending_capacity=settings.pending_capacity,
        quality_window=trained.quality_window,
        warmup_genuine=settings.warmup_genuine,
    )
    det.quality = trained.quality
    det.counts = dict(trained.counts)
    _ = det.warm  # settle the warm-up flag from the model's examples before it is saved
    return det


def write_checkpoint(trained: Detector, settings: Settings, path: str | Path, key: bytes) -> dict[str, Any]:
    """Sign and write the backtest's model to ``path`` (parents created); returns the path and
    the model's version and examples, read back from the signed file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(worker_detector(trained, settings), path, key)
    meta = read_metadata(path, key)
    return {"path": str(path), **{k: meta.get(k) for k in ("version", "examples_seen", "frauds_seen", "saved_at")}}
