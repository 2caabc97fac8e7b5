"""Checkpoints: exact round trip, generation, metadata sidecar, refusal of bad files, and
the signature: nothing in an unsigned or tampered file is ever deserialised."""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle
import random
import struct
from datetime import datetime, timedelta

import numpy as np
import orjson
import pytest

from models import checkpoint as ckpt
from models.checkpoint import load_checkpoint, read_metadata, save_checkpoint, sidecar_path
from models.detector import Detector
from models.errors import CheckpointError, CheckpointMismatch, CheckpointSignatureError
from models.registry import CANDIDATES, PICKLED_CANDIDATES, build
from models.scorer import FraudModel

NAMES = ["a", "b", "c"]
CREATED = 1_700_000_000.0  # 2023-11-14T22:13:20+00:00
KEY = b"test-key-0123456789abcdef-0123456"
OTHER_KEY = b"another-key-0123456789abcdef-0123"


def stream(n: int, seed: int, start: int = 0):
    rng = random.Random(seed)
    for t in range(start, start + n):
        fraud = rng.random() < 0.1
        x = {"a": rng.gauss(3.0 if fraud else 0.0, 0.5), "b": rng.gauss(0, 1), "c": rng.random()}
        yield t, x, fraud


def feed(det: Detector, events) -> list:
    """Score every event (and label half the frauds); what the detector decided."""
    out = []
    for t, x, fraud in events:
        s = det.score(f"t{t}", f"acc{t % 7}", f"m{t % 3}", 1_700_000_000.0 + t, x)
        out.append((s.score, s.alert, s.reasons))
        if fraud and t % 2:
            out.append(det.on_label(f"t{t}", True))
    return out


def trained(name: str = "logreg", n: int = 600, seed: int = 1) -> Detector:
    det = Detector(
        FraudModel(name, NAMES, created=CREATED), threshold=0.4, label_horizon_s=100.0, pending_capacity=10_000
    )
    feed(det, stream(n, seed))
    return det


PROBES = [{"a": a, "b": b, "c": 0.5} for a in (0.0, 1.5, 3.0) for b in (-1.0, 0.0, 2.0)]


class Exploit:
    """Unpickling this runs ``touch <marker>``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def sign(body: bytes, key: bytes = KEY) -> bytes:
    return body + hmac.new(key, body, hashlib.sha256).digest()


def split(path) -> tuple[int, bytes, dict, bytes]:
    """(version, metadata JSON, state tree, array bytes) of a checkpoint we wrote."""
    data = path.read_bytes()[: -32]
    start = len(ckpt.MAGIC) + ckpt._HEADER.size
    version, n_meta, n_state, n_arrays = ckpt._HEADER.unpack_from(data, len(ckpt.MAGIC))
    meta = data[start:start + n_meta]
    state = orjson.loads(data[start + n_meta:start + n_meta + n_state])
    return version, meta, state, data[start + n_meta + n_state:]


def join(version: int, meta: bytes, state: dict, arrays: bytes, key: bytes = KEY) -> bytes:
    state_json = orjson.dumps(state)
    header = ckpt._HEADER.pack(version, len(meta), len(state_json), len(arrays))
    return sign(ckpt.MAGIC + header + meta + state_json + arrays, key)


def with_extra_array(state: dict, arrays: bytes, data: bytes) -> tuple[dict, bytes, dict]:
    """Append ``data`` as one more uint8 array; return the state, arrays and its reference."""
    state["arrays"].append({"dtype": "|u1", "shape": [len(data)], "offset": len(arrays), "nbytes": len(data)})
    return state, arrays + data, {"$array": len(state["arrays"]) - 1}


# -- round trip --------------------------------------------------------------------------------


def test_round_trip_restores_everything(tmp_path):
    det = trained()
    path = save_checkpoint(det, tmp_path / "model.ckpt", KEY)
    assert path == tmp_path / "model.ckpt"
    back = load_checkpoint(path, KEY, feature_names=NAMES)
    assert [back.model.score_one(x) for x in PROBES] == [det.model.score_one(x) for x in PROBES]
    assert back.model.version == det.model.version == "logreg.g1"
    assert (back.model.examples_seen, back.model.frauds_seen) == (det.model.examples_seen, det.model.frauds_seen)
    assert back.model.created == CREATED
    assert (back.threshold, back.label_horizon_s, back.watermark) == (0.4, 100.0, det.watermark)
    assert back.quality.as_dict() == det.quality.as_dict()
    assert back.counts == det.counts
    assert len(back.pending) == len(det.pending) > 80
    assert back.pending.evicted == det.pending.evicted
    # the restored buffer still teaches with the features parked before the restart
    tid = next(iter(det.pending)).transaction_id
    assert back.pending.features(back.pending.get(tid)) == det.pending.features(det.pending.get(tid))
    assert back.on_label(tid, True) == det.on_label(tid, True)
    assert back.model.score_one(PROBES[0]) == det.model.score_one(PROBES[0])
    # resolved ids survive too: a duplicate stays a duplicate across restarts
    assert back.on_label(tid, True).reason == "duplicate"


@pytest.mark.parametrize("name", sorted(CANDIDATES))
def test_every_candidate_restores_exactly_and_keeps_learning_identically(tmp_path, name):
    det = trained(name, n=300)
    back = load_checkpoint(save_checkpoint(det, tmp_path / f"{name}.ckpt", KEY), KEY, feature_names=NAMES)
    assert back.model.version == f"{name}.g1"
    assert [back.model.score_one(x) for x in PROBES] == [det.model.score_one(x) for x in PROBES]
    # new data: same scores, alerts, reasons and label outcomes, learning as it goes
    later = list(stream(300, seed=2, start=300))
    assert feed(back, later) == feed(det, later)
    assert [back.model.score_one(x) for x in PROBES] == [det.model.score_one(x) for x in PROBES]
    assert back.counts == det.counts and back.quality.as_dict() == det.quality.as_dict()


@pytest.mark.parametrize("name", ["logreg", "gam", "gam-pairs", "mlp"])
def test_our_models_are_written_without_pickle(tmp_path, monkeypatch, name):
    def no_pickle(*args, **kwargs):
        raise AssertionError("our own models must not be pickled")

    monkeypatch.setattr(ckpt.pickle, "dumps", no_pickle)
    monkeypatch.setattr(ckpt.pickle, "loads", no_pickle)
    det = trained(name, n=200)
    path = save_checkpoint(det, tmp_path / "m.ckpt", KEY)
    assert "pickled_estimator" not in split(path)[2]
    assert load_checkpoint(path, KEY).model.score_one(PROBES[-1]) == det.model.score_one(PROBES[-1])


def test_pickled_candidates_are_exactly_the_river_only_ones():
    for name in CANDIDATES:
        assert (name in PICKLED_CANDIDATES) == (FraudModel(name, NAMES).state_dict()["estimator_class"] is None)


def test_custom_estimator_without_state_cannot_be_checkpointed(tmp_path):
    det = Detector(FraudModel("custom", NAMES, estimator=build("hat")))
    with pytest.raises(CheckpointError, match="cannot be checkpointed"):
        save_checkpoint(det, tmp_path / "m.ckpt", KEY)
    assert det.model.generation == 0
    assert not (tmp_path / "m.ckpt").exists()


def test_each_save_increments_the_generation_first(tmp_path):
    det = trained(n=50)
    assert det.model.version == "logreg.g0"
    save_checkpoint(det, tmp_path / "m.ckpt", KEY)
    assert read_metadata(tmp_path / "m.ckpt")["generation"] == 1
    save_checkpoint(det, tmp_path / "m.ckpt", KEY)
    assert det.model.generation == 2
    assert read_metadata(tmp_path / "m.ckpt", KEY)["version"] == "logreg.g2"
    assert load_checkpoint(tmp_path / "m.ckpt", KEY).model.version == "logreg.g2"


def test_sidecar_metadata(tmp_path):
    det = trained()
    before = datetime.now().astimezone()
    path = save_checkpoint(det, tmp_path / "model.ckpt", KEY)
    side = sidecar_path(path)
    assert side.name == "model.ckpt.json"
    meta = orjson.loads(side.read_bytes())
    assert meta == read_metadata(path) == read_metadata(side) == read_metadata(path, KEY)
    assert meta["format_version"] == 2
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


def test_the_sidecar_is_never_read_back(tmp_path):
    path = save_checkpoint(trained(n=50), tmp_path / "m.ckpt", KEY)
    sidecar_path(path).write_bytes(orjson.dumps({"feature_names": ["x"], "name": "hat"}))
    assert load_checkpoint(path, KEY, feature_names=NAMES).model.name == "logreg"


def test_feature_mismatch_is_refused(tmp_path):
    path = save_checkpoint(trained(n=50), tmp_path / "m.ckpt", KEY)
    with pytest.raises(CheckpointMismatch) as info:
        load_checkpoint(path, KEY, feature_names=["a", "b", "d"])
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert "missing now: c" in message and "new: d" in message and "logreg.g1" in message
    with pytest.raises(CheckpointMismatch, match="different order"):
        load_checkpoint(path, KEY, feature_names=["c", "b", "a"])
    assert load_checkpoint(path, KEY).model.feature_names == NAMES  # no names given: no check


# -- the signature -----------------------------------------------------------------------------


def test_wrong_key_is_refused(tmp_path):
    path = save_checkpoint(trained(n=50), tmp_path / "m.ckpt", KEY)
    with pytest.raises(CheckpointSignatureError) as info:
        load_checkpoint(path, OTHER_KEY)
    assert str(path) in str(info.value) and "signature" in str(info.value)
    with pytest.raises(CheckpointSignatureError):
        read_metadata(path, OTHER_KEY)


@pytest.mark.parametrize("where", [len(ckpt.MAGIC) + 2, 60, 0.5, -40, -1])
def test_tampered_byte_is_refused(tmp_path, where):
    path = save_checkpoint(trained(n=50), tmp_path / "m.ckpt", KEY)
    data = bytearray(path.read_bytes())
    i = int(len(data) * where) if isinstance(where, float) else where
    data[i] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointSignatureError, match="signature"):
        load_checkpoint(path, KEY)


@pytest.mark.parametrize("keep", [0, 10, 30, 200, -1])
def test_truncated_file_is_refused(tmp_path, keep):
    path = save_checkpoint(trained(n=50), tmp_path / "m.ckpt", KEY)
    data = path.read_bytes()
    path.write_bytes(data[:keep] if keep >= 0 else data[:-1])
    with pytest.raises(CheckpointError, match="truncated|not a Kuntur checkpoint"):
        load_checkpoint(path, KEY)


def test_missing_signature_is_refused(tmp_path):
    path = save_checkpoint(trained(n=50), tmp_path / "m.ckpt", KEY)
    path.write_bytes(path.read_bytes()[:-32])
    with pytest.raises(CheckpointSignatureError):
        load_checkpoint(path, KEY)


@pytest.mark.parametrize("layout", ["format-1", "format-2"])
def test_planted_pickle_never_runs(tmp_path, monkeypatch, layout):
    """A file with valid magic, metadata and SHA-256 but no valid HMAC: refused before any
    parsing, and its payload never runs."""
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"format_version": 1, "detector": Exploit(marker)})
    meta = orjson.dumps({"format_version": 1, "version": "logreg.g7", "feature_names": NAMES})
    if layout == "format-1":  # the old layout: magic, metadata, pickle, SHA-256
        body = ckpt.MAGIC + struct.pack(">I", len(meta)) + meta + payload
        data = body + hashlib.sha256(body).digest()
    else:  # the new layout, a pickle where the estimator would be, signed with a guessed key
        state = {"model": {"name": "hat", "estimator_class": None}, "pickled_estimator": {"$array": 0},
                 "arrays": [{"dtype": "|u1", "shape": [len(payload)], "offset": 0, "nbytes": len(payload)}]}
        state_json = orjson.dumps(state)
        header = ckpt._HEADER.pack(2, len(meta), len(state_json), len(payload))
        data = sign(ckpt.MAGIC + header + meta + state_json + payload, key=b"guessed-" * 4)
    path = tmp_path / "model.ckpt"
    path.write_bytes(data)
    parsed = []
    monkeypatch.setattr(ckpt.pickle, "loads", lambda *a, **k: parsed.append("pickle"))
    monkeypatch.setattr(ckpt.orjson, "loads", lambda *a, **k: parsed.append("json"))
    monkeypatch.setattr(ckpt.np, "frombuffer", lambda *a, **k: parsed.append("numpy"))
    with pytest.raises(CheckpointSignatureError) as info:
        load_checkpoint(path, KEY, feature_names=NAMES)
    assert str(path) in str(info.value)
    assert parsed == []
    monkeypatch.undo()
    with pytest.raises(CheckpointSignatureError):  # and for real, with the real parsers
        load_checkpoint(path, KEY)
    assert not marker.exists()


def test_signed_pickle_in_our_own_model_is_never_unpickled(tmp_path):
    """A valid signature (the key leaked, or our own writer went wrong) still gives no
    pickle path for our own models: an extra pickled entry is ignored."""
    marker = tmp_path / "pwned"
    det = trained("gam-pairs", n=100)
    path = save_checkpoint(det, tmp_path / "m.ckpt", KEY)
    version, meta, state, arrays = split(path)
    exploit = pickle.dumps(Exploit(marker))
    state, arrays, ref = with_extra_array(state, arrays, exploit)
    state["pickled_estimator"] = ref
    state["model"]["estimator_pickle"] = ref
    path.write_bytes(join(version, meta, state, arrays))
    back = load_checkpoint(path, KEY, feature_names=NAMES)
    assert [back.model.score_one(x) for x in PROBES] == [det.model.score_one(x) for x in PROBES]
    assert not marker.exists()


def test_signed_pickle_claiming_our_model_name_is_refused(tmp_path):
    """Our model's name with its array state swapped for a pickle: refused, not run."""
    marker = tmp_path / "pwned"
    path = save_checkpoint(trained("logreg", n=100), tmp_path / "m.ckpt", KEY)
    version, meta, state, arrays = split(path)
    state, arrays, ref = with_extra_array(state, arrays, pickle.dumps(Exploit(marker)))
    state["model"]["estimator_class"] = None
    state["model"]["estimator"] = None
    state["pickled_estimator"] = ref
    path.write_bytes(join(version, meta, state, arrays))
    with pytest.raises(CheckpointError, match="not a pickled River candidate"):
        load_checkpoint(path, KEY)
    assert not marker.exists()


def test_signed_object_arrays_are_refused(tmp_path):
    path = save_checkpoint(trained("logreg", n=50), tmp_path / "m.ckpt", KEY)
    version, meta, state, arrays = split(path)
    state["arrays"][0]["dtype"] = "|O"
    path.write_bytes(join(version, meta, state, arrays))
    with pytest.raises(CheckpointError, match="not allowed"):
        load_checkpoint(path, KEY)


def test_key_must_be_bytes_of_a_useful_length(tmp_path):
    det = trained(n=20)
    with pytest.raises(TypeError, match="bytes"):
        save_checkpoint(det, tmp_path / "m.ckpt", "a string key")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least 16 bytes"):
        save_checkpoint(det, tmp_path / "m.ckpt", b"short")
    path = save_checkpoint(det, tmp_path / "m.ckpt", KEY)
    with pytest.raises(TypeError, match="bytes"):
        load_checkpoint(path, NAMES)  # type: ignore[arg-type]
    assert det.model.generation == 1


# -- other refusals ----------------------------------------------------------------------------


def test_foreign_file_is_refused(tmp_path):
    path = tmp_path / "other.bin"
    path.write_bytes(b"\x80\x04not ours at all")
    with pytest.raises(CheckpointError, match="not a Kuntur checkpoint"):
        load_checkpoint(path, KEY)
    with pytest.raises(CheckpointError, match="not a Kuntur checkpoint"):
        read_metadata(path)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "absent.ckpt", KEY)


def test_other_format_version_is_refused_after_the_signature(tmp_path):
    path = save_checkpoint(trained(n=20), tmp_path / "m.ckpt", KEY)
    _, meta, state, arrays = split(path)
    path.write_bytes(join(3, meta, state, arrays))
    with pytest.raises(CheckpointError, match="format version 3"):
        load_checkpoint(path, KEY)


def test_failed_write_keeps_the_old_file_and_generation(tmp_path, monkeypatch):
    det = trained(n=50)
    path = save_checkpoint(det, tmp_path / "m.ckpt", KEY)
    old = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.os, "fsync", fail)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(det, path, KEY)
    assert det.model.generation == 1
    assert path.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.ckpt", "m.ckpt.json"]


def test_infinite_settings_survive(tmp_path):
    det = Detector(FraudModel("gam", NAMES), label_horizon_s=float("inf"))
    back = load_checkpoint(save_checkpoint(det, tmp_path / "m.ckpt", KEY), KEY)
    assert back.label_horizon_s == float("inf") and back.watermark == float("-inf")
    assert np.isfinite(back.model.score_one(PROBES[0]))
