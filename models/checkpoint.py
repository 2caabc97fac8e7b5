"""Atomic checkpoints of a :class:`~models.detector.Detector`: model, pending labels, quality.

File layout (one file, written to a temporary name then ``os.replace``-d into place)::

    b"KUNTUR-CHECKPOINT\\n"             magic
    u32 big-endian n, n bytes           metadata as JSON (readable without unpickling)
    pickle                              the detector (River estimator, pending buffer, ...)
    32 bytes                            SHA-256 of everything before it

A truncated or altered file fails the checksum and raises :class:`CheckpointError` before
anything is unpickled. Next to it, ``<path>.json`` holds the same metadata for people and
dashboards. The pickle is our own file, written by this module; a checkpoint path must
never point at untrusted input.

>>> import tempfile, pathlib
>>> from models.scorer import FraudModel
>>> det = Detector(FraudModel("logreg", ["a"]))
>>> path = save_checkpoint(det, pathlib.Path(tempfile.mkdtemp()) / "model.ckpt")
>>> det.model.version, read_metadata(path)["version"]
('logreg.g1', 'logreg.g1')
>>> load_checkpoint(path, ["a"]).model.version
'logreg.g1'
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import pickle
import struct
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from models.detector import Detector
from models.errors import CheckpointError, CheckpointMismatch

__all__ = ["FORMAT_VERSION", "load_checkpoint", "read_metadata", "save_checkpoint",
           "sidecar_path"]

MAGIC = b"KUNTUR-CHECKPOINT\n"
FORMAT_VERSION = 1
_DIGEST = 32
_LEN = struct.Struct(">I")


def sidecar_path(path: str | Path) -> Path:
    """``<path>.json``, the human-readable metadata next to a checkpoint."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def _iso(ts: float | None) -> str | None:
    if ts is None or not math.isfinite(ts):
        return None
    return datetime.fromtimestamp(ts, tz=UTC).isoformat()


def _metadata(detector: Detector, saved_at: float) -> dict[str, Any]:
    model = detector.model
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
    }


class _HashingWriter:
    """File wrapper that hashes what goes through it (so the payload is never copied)."""

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self.sha = hashlib.sha256()

    def write(self, data: bytes | memoryview) -> int:
        self.sha.update(data)
        return self._fh.write(data)


def _atomic_write(path: Path, write: Any) -> None:
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


def save_checkpoint(detector: Detector, path: str | Path) -> Path:
    """Write ``detector`` to ``path`` atomically; return the path.

    The model's generation is incremented *before* writing, so the file and every alert
    scored after this call carry the same new :attr:`~models.scorer.FraudModel.version`.
    If writing fails, the generation is restored and the previous file is left intact.
    """
    path = Path(path)
    model = detector.model
    model.generation += 1
    try:
        meta = _metadata(detector, time.time())
        meta_json = orjson.dumps(meta)

        def write(fh: IO[bytes]) -> None:
            out = _HashingWriter(fh)
            out.write(MAGIC)
            out.write(_LEN.pack(len(meta_json)))
            out.write(meta_json)
            pickle.dump({"format_version": FORMAT_VERSION, "detector": detector}, out,
                        protocol=pickle.HIGHEST_PROTOCOL)
            fh.write(out.sha.digest())

        _atomic_write(path, write)
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


def _header(data: bytes, path: Path) -> tuple[dict[str, Any], int]:
    """Parse magic and metadata; return the metadata and the offset of the pickle."""
    if not data.startswith(MAGIC):
        raise CheckpointError(f"{path} is not a Kuntur checkpoint (bad magic bytes)")
    start = len(MAGIC) + _LEN.size
    if len(data) < start:
        raise CheckpointError(f"checkpoint {path} is truncated ({len(data)} bytes)")
    (n,) = _LEN.unpack_from(data, len(MAGIC))
    if len(data) < start + n:
        raise CheckpointError(f"checkpoint {path} is truncated ({len(data)} bytes)")
    try:
        meta = orjson.loads(data[start:start + n])
    except orjson.JSONDecodeError as exc:
        raise CheckpointError(f"checkpoint {path} has corrupt metadata: {exc}") from exc
    return meta, start + n


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


def load_checkpoint(path: str | Path, feature_names: Sequence[str] | None = None) -> Detector:
    """Restore a detector saved by :func:`save_checkpoint`.

    ``feature_names``: the columns the caller's feature extractor produces. If they differ
    from the checkpoint's (names or order), :class:`CheckpointMismatch` is raised rather
    than feeding the model the wrong columns. A missing file raises ``FileNotFoundError``;
    a truncated, corrupt or foreign file raises :class:`CheckpointError`.
    """
    path = Path(path)
    data = path.read_bytes()
    meta, offset = _header(data, path)
    if len(data) < offset + _DIGEST:
        raise CheckpointError(f"checkpoint {path} is truncated ({len(data)} bytes)")
    body = memoryview(data)[:-_DIGEST]
    if hashlib.sha256(body).digest() != data[-_DIGEST:]:
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt (checksum mismatch)")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} has format version {version}; this Kuntur "
                              f"reads version {FORMAT_VERSION}")
    expected = list(meta.get("feature_names", []))
    if feature_names is not None and list(feature_names) != expected:
        raise CheckpointMismatch(
            f"checkpoint {path} ({meta.get('version')}) was trained on {len(expected)} "
            f"features but the extractor now gives {len(list(feature_names))}: "
            f"{_describe_mismatch(expected, list(feature_names))}. Start a new model or use "
            f"the matching feature code."
        )
    try:
        # Our own file (checksummed above), never untrusted input.
        state = pickle.loads(body[offset:])  # noqa: S301
        detector = state["detector"]
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} cannot be restored: {exc!r}") from exc
    if not isinstance(detector, Detector):
        raise CheckpointError(f"checkpoint {path} holds {type(detector).__name__}, "
                              f"not a Detector")
    return detector


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata of a checkpoint (from its header) or of a ``.json`` sidecar."""
    path = Path(path)
    if path.suffix == ".json":
        try:
            meta: dict[str, Any] = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise CheckpointError(f"metadata {path} is not valid JSON: {exc}") from exc
        return meta
    with path.open("rb") as fh:
        head = fh.read(len(MAGIC) + _LEN.size)
        if len(head) == len(MAGIC) + _LEN.size and head.startswith(MAGIC):
            (n,) = _LEN.unpack_from(head, len(MAGIC))
            head += fh.read(n)
    return _header(head, path)[0]
