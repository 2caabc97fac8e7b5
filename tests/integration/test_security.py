"""Security on real worker processes: nothing planted runs; no key, no start."""

from __future__ import annotations

import hashlib
import os
import pickle
import struct
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from features.catalogue import FEATURE_NAMES
from models import checkpoint as ckpt
from stream.dev.process import worker_env
from stream.kafka.admin import ensure_topics

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


class Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def run_worker(settings, env_changes: dict[str, str] | None = None, timeout: float = 60) -> tuple[int, str, float]:
    ensure_topics(settings)
    env = {**worker_env(settings), **(env_changes or {})}
    began = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "stream.cli", "worker"], env=env, capture_output=True, timeout=timeout, cwd=ROOT
    )
    return proc.returncode, proc.stdout.decode() + proc.stderr.decode(), time.monotonic() - began


def test_a_planted_checkpoint_is_refused_and_its_payload_never_runs(settings, tmp_path):
    """The attack as measured: right magic, the real feature names, a recomputed SHA-256,
    a pickle that calls os.system; and a forged new-format file signed with a guessed key."""
    marker = tmp_path / "pwned"
    meta = orjson.dumps({"format_version": 1, "version": "gam-pairs.g9", "feature_names": list(FEATURE_NAMES)})
    payload = pickle.dumps({"format_version": 1, "detector": Exploit(marker)})
    body = ckpt.MAGIC + struct.pack(">I", len(meta)) + meta + payload
    data_dir = Path(settings.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "model.ckpt").write_bytes(body + hashlib.sha256(body).digest())
    code, output, _ = run_worker(settings)
    assert code == 2, output
    assert "refused" in output and "model.ckpt" in output
    assert not marker.exists()


def test_a_worker_without_a_model_key_says_so_within_seconds(settings):
    code, output, seconds = run_worker(settings.replace(model_key_file=""), {"KUNTUR_MODEL_KEY_FILE": ""})
    assert code == 2, output
    assert "no model key" in output and "kuntur keygen" in output
    assert seconds < 15
    assert "Traceback" not in output
