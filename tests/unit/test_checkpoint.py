"""Checkpoints: exact round trip, generation, metadata sidecar, refusal of bad files."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import orjson
import pytest

from models import checkpoint as ckpt
from models.checkpoint import load_checkpoint, read_metadata, save_checkpoint, sidecar_path
from models.detector import Detector
from models.errors import CheckpointError, CheckpointMismatch
from models.registry import CANDIDATES
from models.scorer import FraudModel

NAMES = ["a", "b", "c"]
CREATED = 1_700_000_000.0  # 2023-11-14T22:13:20+00:00


def trained(name: str = "logreg", n: int = 600, seed: int = 1) -> Detector:
    rng = random.Random(seed)
    det = Detector(
        FraudModel(name, NAMES, created=CREATED), threshold=0.4, label_horizon_s=100.0, pending_capacity=10_000
    )
    for t in range(n):
        fraud = rng.random() < 0.1
        x = {"a": rng.gauss(3.0 if fraud else 0.0, 0.5), "b": rng.gauss(0, 1), "c": rng.random()}
        det.score(f"t{t}", f"acc{t % 7}", f"m{t % 3}", 1_700_000_000.0 + t, x)
        if fraud and t % 2:
            det.on_label(f"t{t}", True)
    return det


PROBES = [{"a": a, "b": b, "c": 0.5} for a in (0.0, 1.5, 3.0) for b in (-1.0, 0.0, 2.0)]


def test_round_trip_restores_everything(tmp_path):
    det = trained()
    path = save_checkpoint(det, tmp_path / "model.ckpt")
    assert path == tmp_path / "model.ckpt"
    back = load_checkpoint(path, NAMES)
    assert [back.model.score_one(x) for x in PROBES] == [det.model.score_one(x) for x in PROBES]
    assert back.model.version == det.model.version == "logreg.g1"
    assert (back.model.examples_seen, back.model.frauds_seen) == (det.model.examples_seen, det.model.frauds_seen)
    assert back.model.created == CREATED
    assert (back.threshold, back.label_horizon_s, back.watermark) == (0.4, 100.0, det.watermark)
    assert back.quality.as_dict() == det.quality.as_dict()
    assert back.counts == det.counts
    assert len(back.pending) == len(det.pending) > 80
    # the restored buffer still teaches with the features parked before the restart
    tid = next(iter(det.pending)).transaction_id
    assert back.pending.features(back.pending.get(tid)) == det.pending.features(det.pending.get(tid))
    assert back.on_label(tid, True) == det.on_label(tid, True)
    assert back.model.score_one(PROBES[0]) == det.model.score_one(PROBES[0])
    # resolved ids survive too: a duplicate stays a duplicate across restarts
    assert back.on_label(tid, True).reason == "duplicate"


def test_each_save_increments_the_generation_first(tmp_path):
    det = trained(n=50)
    assert det.model.version == "logreg.g0"
    save_checkpoint(det, tmp_path / "m.ckpt")
    assert read_metadata(tmp_path / "m.ckpt")["generation"] == 1
    save_checkpoint(det, tmp_path / "m.ckpt")
    assert det.model.generation == 2
    assert read_metadata(tmp_path / "m.ckpt")["version"] == "logreg.g2"
    assert load_checkpoint(tmp_path / "m.ckpt").model.version == "logreg.g2"


def test_sidecar_metadata(tmp_path):
    det = trained()
    before = datetime.now().astimezone()
    path = save_checkpoint(det, tmp_path / "model.ckpt")
    side = sidecar_path(path)
    assert side.name == "model.ckpt.json"
    meta = orjson.loads(side.read_bytes())
    assert meta == read_metadata(path) == read_metadata(side)
    assert meta["version"] == "logreg.g1" and meta["name"] == "logreg"
    assert meta["generation"] == 1
    assert meta["examples_seen"] == det.model.examples_seen > 400
    assert meta["frauds_seen"] == det.model.frauds_seen > 10
    assert meta["created"] == "2023-11-14T22:13:20+00:00"
    saved_at = datetime.fromisoformat(meta["saved_at"])
    assert saved_at.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=5) <= saved_at <= before + timedelta(seconds=60)
    assert meta["feature_names"] == NAMES
    assert meta["threshold"] == 0.4
    assert meta["pending"] == len(det.pending) > 80
    assert meta["label_horizon_s"] == 100.0
    assert meta["watermark"] == det.watermark
    assert meta["quality"]["tp"] == det.quality.tp


def test_feature_mismatch_is_refused(tmp_path):
    path = save_checkpoint(trained(n=50), tmp_path / "m.ckpt")
    with pytest.raises(CheckpointMismatch) as info:
        load_checkpoint(path, ["a", "b", "d"])
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert "missing now: c" in message and "new: d" in message and "logreg.g1" in message
    with pytest.raises(CheckpointMismatch, match="different order"):
        load_checkpoint(path, ["c", "b", "a"])
    assert load_checkpoint(path).model.feature_names == NAMES  # no names given: no check


def test_corrupt_file_is_refused(tmp_path):
    path = save_checkpoint(trained(n=50), tmp_path / "m.ckpt")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum"):
        load_checkpoint(path)


@pytest.mark.parametrize("keep", [0, 10, 30, 200, -1])
def test_truncated_file_is_refused(tmp_path, keep):
    path = save_checkpoint(trained(n=50), tmp_path / "m.ckpt")
    data = path.read_bytes()
    path.write_bytes(data[:keep] if keep >= 0 else data[:-1])
    with pytest.raises(CheckpointError, match="truncated|not a Kuntur checkpoint"):
        load_checkpoint(path)


def test_foreign_file_is_refused(tmp_path):
    path = tmp_path / "other.bin"
    path.write_bytes(b"\x80\x04not ours at all")
    with pytest.raises(CheckpointError, match="not a Kuntur checkpoint"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="not a Kuntur checkpoint"):
        read_metadata(path)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "absent.ckpt")


def test_failed_write_keeps_the_old_file_and_generation(tmp_path, monkeypatch):
    det = trained(n=50)
    path = save_checkpoint(det, tmp_path / "m.ckpt")
    old = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.pickle, "dump", fail)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(det, path)
    assert det.model.generation == 1
    assert path.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.ckpt", "m.ckpt.json"]


@pytest.mark.parametrize("name", sorted(CANDIDATES))
def test_every_candidate_round_trips_with_identical_scores(tmp_path, name):
    det = trained(name, n=300)
    back = load_checkpoint(save_checkpoint(det, tmp_path / f"{name}.ckpt"), NAMES)
    assert [back.model.score_one(x) for x in PROBES] == [det.model.score_one(x) for x in PROBES]
    assert back.model.version == f"{name}.g1"
