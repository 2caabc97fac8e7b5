"""What a worker does besides handling events: gauges, checkpoints, state expiry.

Plain objects, testable without Faust; :mod:`stream.app` schedules them as timers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sized

from models.checkpoint import checkpoint_bytes, save_checkpoint
from models.shared import SharedModel
from stream.metrics import Metrics
from stream.pipeline.stages import Pipeline

log = logging.getLogger("kuntur")


class Gauges:
    """Copies the detector's and the tables' state into the Prometheus gauges."""

    def __init__(
        self, pipeline: Pipeline, metrics: Metrics, tables: dict[str, Sized], shared: SharedModel | None = None
    ) -> None:
        self.pipeline = pipeline
        self.metrics = metrics
        self.tables = tables
        self.shared = shared
        self._genuine_counted = 0

    def refresh(self) -> None:
        det, m = self.pipeline.detector, self.metrics
        learned = det.counts["learned_genuine_at_horizon"]
        m.genuine_learned.inc(learned - self._genuine_counted)
        self._genuine_counted = learned
        m.ids_dropped.set(self.pipeline.account.ids_dropped)
        m.examples_seen.set(det.model.examples_seen)
        if self.shared is not None:
            m.training_offset.set(self.shared.next_offset)
            m.examples_in_flight.set(self.shared.lag_examples)
        m.precision.set(det.quality.precision)
        m.recall.set(det.quality.recall)
        m.pending.set(len(det.pending))
        m.deferred_labels.set(self.pipeline.score.deferred_labels)
        for name, table in self.tables.items():
            m.entities.labels(table=name).set(len(table))


class Checkpointer:
    """Saves the model when it has learned something since the last save (or when forced).

    Skipping no-op saves keeps the model version, and the alerts that name it, stable.
    With a shared model (:class:`models.shared.SharedModel`) it saves the *agreed* model
    with the training offset it has read, and its generation becomes that offset: every
    worker that has read the log as far names the model alike (``<name>.g<offset>``).
    """

    def __init__(
        self,
        pipeline: Pipeline,
        metrics: Metrics,
        path: str,
        key: bytes,
        save: Callable[..., object] = save_checkpoint,
        on_saved: Callable[[], None] | None = None,
        shared: SharedModel | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.metrics = metrics
        self.path = path
        self._key = key
        self._save = save
        self._on_saved = on_saved
        self.shared = shared
        self._last: tuple[int, int] | None = None

    def progress(self) -> tuple[int, int]:
        det = self.pipeline.detector
        model = det.model if self.shared is None else self.shared.agreed
        return model.examples_seen, len(det.pending)

    def checkpoint(self, force: bool = False) -> bool:
        """Save if there is progress (or ``force``); returns whether a checkpoint was written."""
        progress = self.progress()
        if not force and self._last == progress:
            return False
        self._last = progress
        det, shared = self.pipeline.detector, self.shared
        if shared is None:
            self._save(det, self.path, self._key)
        else:
            agreed = shared.agreed
            agreed.generation = shared.next_offset - 1  # the save makes it the offset
            self._save(det, self.path, self._key, model=agreed, training_offset=shared.next_offset)
            det.model.generation = agreed.generation
        model = det.model
        self.metrics.checkpointed(model.name, model.version, model.generation)
        if self._on_saved is not None:
            self._on_saved()
        log.info("checkpoint %s: %d examples seen", model.version, model.examples_seen)
        return True

    def snapshot(self) -> bytes:
        """The agreed model as a signed snapshot for the model topic (shared model only)."""
        assert self.shared is not None
        return checkpoint_bytes(
            self.pipeline.detector, self._key, model=self.shared.agreed, training_offset=self.shared.next_offset
        )
