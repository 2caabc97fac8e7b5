"""Signed checkpoints of a :class:`~models.detector.Detector`: model, pending labels, quality.

A checkpoint is data, not code. Our own models (``logreg``, ``gam``, ``gam-pairs``,
``mlp``) and everything around them are written as JSON plus raw little-endian arrays
(each class's ``state_dict``/``from_state``), so reading one cannot run anything. The
River-only candidates (:data:`~models.registry.PICKLED_CANDIDATES`) can only be captured
by pickle; their estimator alone is pickled, inside the signed payload.

The whole file is signed with HMAC-SHA256 under a key the caller holds (the worker's
settings), and :func:`load_checkpoint` checks the signature with
:func:`hmac.compare_digest` before it parses a single byte past the magic: a file planted
without the key is refused with :class:`CheckpointSignatureError`, whatever it claims.

File layout (one file, written to a temporary name then ``os.replace``-d into place)::

    b"KUNTUR-CHECKPOINT\\n"            magic
    u32 u32 u64 u64, big-endian        format version; bytes of metadata, state, arrays
    metadata                           JSON (the same as the sidecar)
    state                              JSON; arrays as {"$array": i}, described in "arrays"
    arrays                             raw little-endian buffers, back to back
    32 bytes                           HMAC-SHA256(key, everything before it)

Next to it, ``<path>.json`` holds the metadata for people and dashboards; it is never
read back, and :func:`read_metadata` without a key is informational only.

>>> import tempfile, pathlib
>>> from models.scorer import FraudModel
>>> key = b"0123456789abcdef0123456789abcdef"
>>> det = Detector(FraudModel("logreg", ["a"]))
>>> path = save_checkpoint(det, pathlib.Path(tempfile.mkdtemp()) / "model.ckpt", key)
>>> det.model.version, read_metadata(path, key)["version"]
('logreg.g1', 'logreg.g1')
>>> load_checkpoint(path, key, feature_names=["a"]).model.version
'logreg.g1'
>>> load_checkpoint(path, b"another key, another key, another")
Traceback (most recent call last):
...
models.errors.CheckpointSignatureError: checkpoint ... refused: ...
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import math
import os
import pickle
import struct
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson
from river import base

from models.detector import Detector
from models.errors import CheckpointError, CheckpointMismatch, CheckpointSignatureError
from models.registry import PICKLED_CANDIDATES
from models.scorer import FraudModel

__all__ = ["FORMAT_VERSION", "MIN_KEY_BYTES", "checkpoint_bytes", "load_checkpoint",
           "load_checkpoint_bytes", "read_metadata", "save_checkpoint", "sidecar_path"]

MAGIC = b"KUNTUR-CHECKPOINT\n"
FORMAT_VERSION = 2
MIN_KEY_BYTES = 16
_TAG = 32  # HMAC-SHA256
_HEADER = struct.Struct(">IIQQ")
_DTYPES = frozenset({"<f8", "<f4", "<i8", "|i1", "|u1", "|b1"})  # never object arrays


def sidecar_path(path: str | Path) -> Path:
    """``<path>.json``, the human-readable metadata next to a checkpoint."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def _check_key(key: object) -> bytes:
    if not isinstance(key, bytes | bytearray):
        raise TypeError(f"the checkpoint key must be bytes, got {type(key).__name__} "
                        f"(feature_names is a keyword argument)")
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the checkpoint key must have at least {MIN_KEY_BYTES} bytes "
                         f"(32 random bytes recommended), got {len(key)}")
    return bytes(key)


def _iso(ts: float | None) -> str | None:
    if ts is None or not math.isfinite(ts):
        return None
    return datetime.fromtimestamp(ts, tz=UTC).isoformat()


def _metadata(
    detector: Detector, saved_at: float, model: FraudModel, training_offset: int | None
) -> dict[str, Any]:
    watermark = detector.watermark if math.isfinite(detector.watermark) else None
    return {
        "format_version": FORMAT_VERSION,
        "version": model.version,
        "name": model.name,
        "generation": model.generation,
        "examples_seen": model.examples_seen,
        "frauds_seen": model.frauds_seen,
        "created": _iso(model.created),
        "saved_at": _iso(saved_at),
        "feature_names": list(model.feature_names),
        "threshold": detector.threshold,
        "label_horizon_s": detector.label_horizon_s,
        "pending": len(detector.pending),
        "pending_capacity": detector.pending_capacity,
        "pending_evicted": detector.pending.evicted,
        "watermark": watermark,
        "watermark_iso": _iso(watermark),
        "quality": detector.quality.as_dict(),
        "counts": dict(detector.counts),
        # the shared model's training log offset this model has read up to (models.shared)
        "training_offset": training_offset,
    }


# -- encoding: a JSON tree with the arrays moved out into raw buffers ---------------------


class _Arrays:
    """Collects the arrays of a state tree as little-endian buffers."""

    def __init__(self) -> None:
        self.specs: list[dict[str, Any]] = []
        self.buffers: list[memoryview] = []
        self.size = 0

    def encode(self, value: Any) -> Any:
        """``value`` as JSON-ready data, every numpy array replaced by ``{"$array": i}``."""
        if isinstance(value, np.ndarray):
            arr = np.ascontiguousarray(value)
            arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
            if arr.dtype.str not in _DTYPES:
                raise CheckpointError(f"cannot store an array of {arr.dtype} in a checkpoint")
            self.specs.append({"dtype": arr.dtype.str, "shape": list(arr.shape),
                               "offset": self.size, "nbytes": arr.nbytes})
            if arr.nbytes:
                self.buffers.append(arr.reshape(-1).data.cast("B"))
            self.size += arr.nbytes
            return {"$array": len(self.specs) - 1}
        if isinstance(value, dict):
            if "$array" in value or not all(isinstance(k, str) for k in value):
                raise CheckpointError(f"cannot store keys {list(value)[:5]} in a checkpoint")
            return {k: self.encode(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.encode(v) for v in value]
        if isinstance(value, float) and not math.isfinite(value):
            raise CheckpointError(f"non-finite float {value} outside an array")
        if value is None or isinstance(value, bool | int | float | str):
            return value
        raise CheckpointError(f"cannot store a {type(value).__name__} in a checkpoint")


def _arrays(specs: Any, blob: memoryview) -> list[np.ndarray]:
    """The arrays ``specs`` describe, copied out of ``blob`` (plain numbers only)."""
    if not isinstance(specs, list):
        raise ValueError("array table missing")
    out: list[np.ndarray] = []
    for spec in specs:
        dtype = spec["dtype"]
        if dtype not in _DTYPES:
            raise ValueError(f"array dtype {dtype!r} is not allowed")
        shape = tuple(spec["shape"])
        if not all(isinstance(d, int) and d >= 0 for d in shape):
            raise ValueError(f"bad array shape {shape!r}")
        dt = np.dtype(dtype)
        count = math.prod(shape)
        offset, nbytes = spec["offset"], spec["nbytes"]
        if nbytes != count * dt.itemsize or not 0 <= offset <= len(blob) - nbytes:
            raise ValueError(f"array {len(out)} lies outside the array section")
        arr = np.frombuffer(blob, dtype=dt, count=count, offset=offset).reshape(shape)
        out.append(arr.astype(dt.newbyteorder("="), copy=True))
    return out


def _decode(value: Any, arrays: list[np.ndarray]) -> Any:
    if isinstance(value, dict):
        if "$array" in value:
            i = value["$array"]
            if len(value) != 1 or not isinstance(i, int) or not 0 <= i < len(arrays):
                raise ValueError(f"bad array reference {value!r}")
            return arrays[i]
        return {k: _decode(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    return value


# -- writing --------------------------------------------------------------------------------


class _SigningWriter:
    """File wrapper that signs what goes through it (so the payload is never copied)."""

    def __init__(self, fh: IO[bytes], key: bytes) -> None:
        self._fh = fh
        self.mac = hmac.new(key, digestmod=hashlib.sha256)

    def write(self, data: bytes | memoryview) -> int:
        self.mac.update(data)
        return self._fh.write(data)


def _atomic_write(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Call ``write(fh)`` on a temporary file in ``path``'s directory, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename durable where the OS allows it
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _state(detector: Detector, model: FraudModel) -> tuple[bytes, _Arrays]:
    """The state JSON and its arrays. Only a pickled candidate's estimator is pickled."""
    arrays = _Arrays()
    model_state = model.state_dict()
    tree: dict[str, Any] = {
        "model": arrays.encode(model_state),
        "detector": arrays.encode(detector.state_dict()),
    }
    if model_state["estimator_class"] is None:
        if model.name not in PICKLED_CANDIDATES:
            raise CheckpointError(
                f"model {model.name!r} ({type(model.estimator).__name__}) has no array state "
                f"and is not one of the pickled River candidates "
                f"({', '.join(sorted(PICKLED_CANDIDATES))}); it cannot be checkpointed")
        blob = pickle.dumps(model.estimator, protocol=pickle.HIGHEST_PROTOCOL)
        tree["pickled_estimator"] = arrays.encode(np.frombuffer(blob, dtype=np.uint8))
    tree["arrays"] = arrays.specs
    return orjson.dumps(tree), arrays


def _write_signed(fh: IO[bytes], key: bytes, detector: Detector, model: FraudModel, meta: dict[str, Any]) -> None:
    meta_json = orjson.dumps(meta)
    state_json, arrays = _state(detector, model)
    out = _SigningWriter(fh, key)
    out.write(MAGIC)
    out.write(_HEADER.pack(FORMAT_VERSION, len(meta_json), len(state_json), arrays.size))
    out.write(meta_json)
    out.write(state_json)
    for buffer in arrays.buffers:
        out.write(buffer)
    fh.write(out.mac.digest())


def save_checkpoint(
    detector: Detector, path: str | Path, key: bytes, *,
    model: FraudModel | None = None, training_offset: int | None = None,
) -> Path:
    """Write ``detector`` to ``path`` atomically, signed with ``key``; return the path.

    ``model``: the model to save instead of ``detector.model`` (a shared model's agreed
    one), ``training_offset``: the training log offset it has read up to.
    The model's generation is incremented *before* writing, so the file and every alert
    scored after this call carry the same new :attr:`~models.scorer.FraudModel.version`.
    If writing fails, the generation is restored and the previous file is left intact.
    """
    key = _check_key(key)
    path = Path(path)
    model = detector.model if model is None else model
    model.generation += 1
    try:
        meta = _metadata(detector, time.time(), model, training_offset)
        _atomic_write(path, lambda fh: _write_signed(fh, key, detector, model, meta))
    except BaseException:
        model.generation -= 1
        raise
    try:
        _atomic_write(sidecar_path(path),
                      lambda fh: fh.write(orjson.dumps(meta, option=orjson.OPT_INDENT_2)))
    except OSError as exc:
        raise CheckpointError(f"checkpoint {path} saved, but its metadata sidecar could not "
                              f"be written: {exc}") from exc
    return path


def checkpoint_bytes(
    detector: Detector, key: bytes, *, model: FraudModel | None = None, training_offset: int | None = None
) -> bytes:
    """The signed checkpoint :func:`save_checkpoint` would write, as bytes (a model
    snapshot on a topic); the generation is left as it is."""
    key = _check_key(key)
    model = detector.model if model is None else model
    buffer = io.BytesIO()
    _write_signed(buffer, key, detector, model, _metadata(detector, time.time(), model, training_offset))
    return buffer.getvalue()


# -- reading --------------------------------------------------------------------------------


def _verified(data: bytes, path: Path | str, key: bytes) -> memoryview:
    """The signed payload of ``data``, or :class:`CheckpointSignatureError`. Nothing but the
    magic is looked at before the signature is checked."""
    if not data.startswith(MAGIC):
        raise CheckpointError(f"{path} is not a Kuntur checkpoint (bad magic bytes)")
    if len(data) < len(MAGIC) + _HEADER.size + _TAG:
        raise CheckpointSignatureError(f"checkpoint {path} refused: truncated "
                                       f"({len(data)} bytes), no room for its signature")
    payload = memoryview(data)[:-_TAG]
    expected = hmac.new(key, payload, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, data[-_TAG:]):
        raise CheckpointSignatureError(
            f"checkpoint {path} refused: its HMAC-SHA256 signature does not match this key "
            f"(written with another key, truncated or altered since, or an unsigned "
            f"checkpoint from before format {FORMAT_VERSION}); nothing in it was read")
    return payload


def _sections(payload: memoryview, path: Path | str) -> tuple[dict[str, Any], memoryview, memoryview]:
    """Metadata (parsed), state JSON and array bytes of a payload whose signature checked
    out, or of a header read for information only."""
    start = len(MAGIC) + _HEADER.size
    if len(payload) < start:
        raise CheckpointError(f"checkpoint {path} is truncated ({len(payload)} bytes)")
    version, n_meta, n_state, n_arrays = _HEADER.unpack_from(payload, len(MAGIC))
    if version != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} has format version {version}; this Kuntur "
                              f"reads version {FORMAT_VERSION}")
    if len(payload) < start + n_meta:
        raise CheckpointError(f"checkpoint {path} is truncated ({len(payload)} bytes)")
    try:
        meta = orjson.loads(payload[start:start + n_meta])
    except orjson.JSONDecodeError as exc:
        raise CheckpointError(f"checkpoint {path} has corrupt metadata: {exc}") from exc
    if not isinstance(meta, dict):
        raise CheckpointError(f"checkpoint {path} has corrupt metadata")
    state = payload[start + n_meta:start + n_meta + n_state]
    arrays = payload[start + n_meta + n_state:start + n_meta + n_state + n_arrays]
    return meta, state, arrays


def _describe_mismatch(expected: list[str], given: list[str]) -> str:
    missing = [f for f in expected if f not in set(given)]
    new = [f for f in given if f not in set(expected)]
    if not missing and not new:
        return "the same features in a different order"

    def show(names: list[str]) -> str:
        return ", ".join(names[:10]) + (f" (+{len(names) - 10} more)" if len(names) > 10 else "")

    parts = []
    if missing:
        parts.append(f"missing now: {show(missing)}")
    if new:
        parts.append(f"new: {show(new)}")
    return "; ".join(parts)


def _restore(tree: Any, feature_names: Sequence[str] | None) -> Detector:
    model_state = tree["model"]
    estimator = None
    if model_state["estimator_class"] is None:
        name = model_state["name"]
        if name not in PICKLED_CANDIDATES:
            raise ValueError(f"model {name!r} has no array state and is not a pickled River "
                             f"candidate")
        pickled = tree["pickled_estimator"]
        if not isinstance(pickled, np.ndarray) or pickled.dtype != np.uint8:
            raise ValueError("the pickled estimator is missing")
        # Only for River-only candidates, in a file whose signature checked out.
        estimator = pickle.loads(pickled.tobytes())  # noqa: S301
        if not isinstance(estimator, base.Classifier):
            raise ValueError(f"the pickled estimator is a {type(estimator).__name__}")
    model = FraudModel.from_state(model_state, estimator=estimator, feature_names=feature_names)
    return Detector.from_state(tree["detector"], model)


def load_checkpoint(
    path: str | Path, key: bytes, *, feature_names: Sequence[str] | None = None
) -> Detector:
    """Restore a detector saved by :func:`save_checkpoint` with the same ``key``.

    The signature is checked before anything is parsed: a file not signed with ``key``
    (planted, truncated, altered, or from before format 2) raises
    :class:`CheckpointSignatureError`. ``feature_names``: the columns the caller's feature
    extractor produces; if they differ from the checkpoint's (names or order),
    :class:`CheckpointMismatch` is raised rather than feeding the model the wrong columns.
    A missing file raises ``FileNotFoundError``; a foreign or unreadable file
    :class:`CheckpointError`.
    """
    path = Path(path)
    return load_checkpoint_bytes(path.read_bytes(), key, feature_names=feature_names, source=str(path))[0]


def load_checkpoint_bytes(
    data: bytes, key: bytes, *, feature_names: Sequence[str] | None = None, source: str = "checkpoint"
) -> tuple[Detector, dict[str, Any]]:
    """:func:`load_checkpoint` from bytes (``source`` names them in errors), with the
    checkpoint's metadata."""
    key = _check_key(key)
    payload = _verified(data, source, key)
    meta, state, arrays = _sections(payload, source)
    expected = list(meta.get("feature_names", []))
    if feature_names is not None and list(feature_names) != expected:
        raise CheckpointMismatch(
            f"checkpoint {source} ({meta.get('version')}) was trained on {len(expected)} "
            f"features but the extractor now gives {len(list(feature_names))}: "
            f"{_describe_mismatch(expected, list(feature_names))}. Start a new model or use "
            f"the matching feature code."
        )
    try:
        tree = orjson.loads(state)
        tree = _decode(tree, _arrays(tree["arrays"], arrays))
        return _restore(tree, feature_names), meta
    except Exception as exc:
        raise CheckpointError(f"checkpoint {source} cannot be restored: {exc!r}") from exc


def read_metadata(path: str | Path, key: bytes | None = None) -> dict[str, Any]:
    """The metadata of a checkpoint (from its header) or of a ``.json`` sidecar.

    With ``key``, a checkpoint's signature is checked first. Without it, or for a
    sidecar, the figures are informational: nothing security-relevant may rest on them.
    """
    path = Path(path)
    if path.suffix == ".json":
        try:
            meta: dict[str, Any] = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise CheckpointError(f"metadata {path} is not valid JSON: {exc}") from exc
        return meta
    if key is not None:
        return _sections(_verified(path.read_bytes(), path, _check_key(key)), path)[0]
    with path.open("rb") as fh:
        head = fh.read(len(MAGIC) + _HEADER.size)
        if not head.startswith(MAGIC):
            raise CheckpointError(f"{path} is not a Kuntur checkpoint (bad magic bytes)")
        if len(head) == len(MAGIC) + _HEADER.size:
            n_meta = _HEADER.unpack_from(head, len(MAGIC))[1]
            head += fh.read(n_meta)
    return _sections(memoryview(head), path)[0]
