"""One model for every worker: examples learned in the order of one training log.

A worker never learns from its own labels directly. When its detector resolves a
transaction (a label, or the label horizon), :class:`SharedModel` turns it into an
:class:`Example` (the features it was scored with, the outcome, the event time) for the
worker to append to the *training log* (one Kafka partition). Every worker reads that log
in full, in offset order, into its **agreed model**: the agreed models of two workers that
have read the same offsets are identical (the same learning steps on the same start,
:func:`learn_packed`), whichever worker produced which example.

Scoring must not wait for a round trip through Kafka, and one worker alone must score
exactly what ``kuntur evaluate`` scores (an example learned as soon as it is resolved). So
the model a worker *scores* with is the agreed model plus its own examples still in flight
(produced, not yet read back), applied in the order it produced them:

* while nothing is in flight the scoring model *is* the agreed model;
* a local example makes the scoring model a copy of the agreed one (if it was not already)
  and is applied to it at once;
* reading the log applies every record to the agreed model; a record of this worker's that
  is the oldest in flight leaves the flight; after a batch, an empty flight makes the
  scoring model the agreed one again, and a batch that carried another worker's record
  rebuilds the scoring model as a copy of the agreed one plus the examples still in flight.

With one worker no record is foreign, the agreed model learns the same steps in the same
order, and the scoring model equals ``evaluate``'s at every transaction. With several, a
worker's scoring model differs from the agreed one only by its own in-flight examples
(one produce → read round trip).

A transaction learned twice would bias the model (a worker killed after producing an
example but before committing its input resolves it again on restart): the agreed model
skips a record whose transaction id is among the last :data:`DEDUP_IDS` it learned.

>>> from models.scorer import FraudModel
>>> from models.detector import Detector
>>> det = Detector(FraudModel("logreg", ["a"]), label_horizon_s=10.0)
>>> shared = SharedModel(det, origin=b"w" * 16)
>>> _ = det.score("t1", "acc", None, 0.0, {"a": 1.0})
>>> det.on_label("t1", True).reason, det.model.examples_seen, shared.agreed.examples_seen
('learned', 1, 0)
>>> shared.consume([(0, encode_batch(shared.take_outbox()))])
>>> det.model is shared.agreed, shared.agreed.examples_seen, shared.next_offset
(True, 1, 1)
"""

from __future__ import annotations

import copy
import struct
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from models.detector import Detector, learn_packed
from models.scorer import FraudModel

__all__ = ["DEDUP_IDS", "Example", "SharedModel", "decode_batch", "decode_example", "encode_batch", "encode_example"]

#: transaction ids the agreed model remembers to skip a re-produced example
DEDUP_IDS = 100_000

_MAGIC = 0x4B  # "K"
_VERSION = 1
# magic, version, origin (16 bytes), sequence, fraud?, partial?, event time, id length
_HEAD = struct.Struct(">BB16sQ??dH")
_LEN = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class Example:
    """One resolved transaction: what the model learns, and who produced it."""

    origin: bytes
    seq: int
    transaction_id: str
    is_fraud: bool
    partial: bool
    event_ts: float
    x: bytes  # the features it was scored with: float32, the model's column order


def encode_example(ex: Example) -> bytes:
    tid = ex.transaction_id.encode()
    head = _HEAD.pack(_MAGIC, _VERSION, ex.origin, ex.seq, ex.is_fraud, ex.partial, ex.event_ts, len(tid))
    return head + tid + ex.x


def decode_example(data: bytes, n_features: int) -> Example:
    """The example in ``data``; ``ValueError`` for anything else (a foreign or truncated record)."""
    if len(data) < _HEAD.size:
        raise ValueError(f"training record of {len(data)} bytes is truncated")
    magic, version, origin, seq, is_fraud, partial, event_ts, n_id = _HEAD.unpack_from(data)
    if magic != _MAGIC or version != _VERSION:
        raise ValueError(f"not a training record of version {_VERSION} (magic {magic}, version {version})")
    end = _HEAD.size + n_id
    if len(data) != end + 4 * n_features:
        raise ValueError(f"training record has {len(data) - end} feature bytes, expected {4 * n_features}")
    return Example(origin, seq, data[_HEAD.size:end].decode(), is_fraud, partial, event_ts, data[end:])


def encode_batch(examples: Iterable[bytes]) -> bytes:
    """One log record for several encoded examples (length-prefixed, in order)."""
    return b"".join(_LEN.pack(len(e)) + e for e in examples)


def decode_batch(data: bytes) -> list[bytes]:
    """The encoded examples of one log record; ``ValueError`` if the framing is broken."""
    out, pos = [], 0
    while pos < len(data):
        if pos + _LEN.size > len(data):
            raise ValueError("training record framing is truncated")
        (n,) = _LEN.unpack_from(data, pos)
        pos += _LEN.size
        if pos + n > len(data):
            raise ValueError("training record framing is truncated")
        out.append(data[pos:pos + n])
        pos += n
    return out


class SharedModel:
    """Keeps ``detector.model`` = the agreed model + this worker's examples in flight.

    ``next_offset`` is the training log's offset the agreed model reads next (it has
    learned every record before it). Installs itself as ``detector.learner``.
    """

    def __init__(self, detector: Detector, origin: bytes, next_offset: int = 0) -> None:
        if len(origin) != 16:
            raise ValueError("origin must be 16 bytes (a worker's random id)")
        self.detector = detector
        self.agreed: FraudModel = detector.model
        self.origin = origin
        self.next_offset = next_offset
        self.in_flight: deque[Example] = deque()
        self._in_flight_ids: set[str] = set()
        self._outbox: list[bytes] = []
        self._seq = 0
        self._seen: deque[str] = deque()
        self._seen_ids: set[str] = set()
        #: examples read (``consumed``), skipped as already learned (``duplicates``), records
        #: unreadable (``bad``), own examples that never reached the log (``lost``)
        self.counts = {"produced": 0, "consumed": 0, "duplicates": 0, "bad": 0, "rebuilds": 0, "lost": 0}
        detector.learner = self.local

    # -- this worker's examples -------------------------------------------------------------

    def local(self, transaction_id: str, x: bytes, partial: bool, is_fraud: bool, event_ts: float) -> None:
        """A transaction this worker resolved: learn it for scoring now, queue it for the log."""
        if transaction_id in self._seen_ids or transaction_id in self._in_flight_ids:
            self.counts["duplicates"] += 1
            return
        ex = Example(self.origin, self._seq, transaction_id, bool(is_fraud), partial, event_ts, x)
        self._seq += 1
        det = self.detector
        if det.model is self.agreed:
            det.model = copy.deepcopy(self.agreed)
        learn_packed(det.model, det.pending.names, ex.x, ex.partial, ex.is_fraud)
        self.in_flight.append(ex)
        self._in_flight_ids.add(transaction_id)
        self._outbox.append(encode_example(ex))
        self.counts["produced"] += 1

    def take_outbox(self) -> list[bytes]:
        """The encoded examples to append to the training log, in order (each returned
        once); :func:`encode_batch` makes one log record of them."""
        out, self._outbox = self._outbox, []
        return out

    # -- the training log ---------------------------------------------------------------------

    def consume(self, records: Iterable[tuple[int, bytes]]) -> None:
        """Apply a batch of ``(offset, value)`` records of the training log, in offset order."""
        foreign = False
        names = self.names
        n_features = len(names)
        for offset, value in records:
            if offset < self.next_offset:
                continue  # read twice (a consumer restart): already applied
            self.next_offset = offset + 1
            try:
                examples = [decode_example(e, n_features) for e in decode_batch(value)]
            except ValueError:
                self.counts["bad"] += 1
                continue
            foreign |= self._apply(examples, names)
        det = self.detector
        if not self.in_flight:
            det.model = self.agreed
        elif foreign:
            model = copy.deepcopy(self.agreed)
            for ex in self.in_flight:
                learn_packed(model, names, ex.x, ex.partial, ex.is_fraud)
            det.model = model
            self.counts["rebuilds"] += 1

    def _apply(self, examples: list[Example], names: tuple[str, ...]) -> bool:
        """Learn one record's examples into the agreed model; whether the scoring model must
        be rebuilt (another worker's example, or one of ours that never reached the log)."""
        foreign = False
        for ex in examples:
            self.counts["consumed"] += 1
            own = ex.origin == self.origin
            if own:
                in_flight = self.in_flight
                while in_flight and in_flight[0].seq < ex.seq:  # never delivered (a failed send):
                    self._in_flight_ids.discard(in_flight.popleft().transaction_id)  # not in the log,
                    self.counts["lost"] += 1  # so out of the scoring model too (rebuilt below)
                    foreign = True
                if in_flight and in_flight[0].seq == ex.seq:
                    self._in_flight_ids.discard(in_flight.popleft().transaction_id)
            else:
                foreign = True
            if ex.transaction_id in self._seen_ids:
                self.counts["duplicates"] += 1
                continue
            self._remember(ex.transaction_id)
            learn_packed(self.agreed, names, ex.x, ex.partial, ex.is_fraud)
        return foreign

    def _remember(self, transaction_id: str) -> None:
        self._seen.append(transaction_id)
        self._seen_ids.add(transaction_id)
        if len(self._seen) > DEDUP_IDS:
            self._seen_ids.discard(self._seen.popleft())

    def replace_agreed(self, model: FraudModel, next_offset: int) -> None:
        """Start again from ``model`` at ``next_offset`` (a snapshot): nothing in flight."""
        self.agreed = model
        self.next_offset = next_offset
        self.in_flight.clear()
        self._in_flight_ids.clear()
        self.detector.model = model

    @property
    def names(self) -> tuple[str, ...]:
        """The examples' columns: the detector's parked vectors'."""
        return self.detector.pending.names

    @property
    def lag_examples(self) -> int:
        """This worker's examples produced and not yet read back."""
        return len(self.in_flight)

