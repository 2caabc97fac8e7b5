"""Worker processes started by the demo, the bench and the integration tests."""

from __future__ import annotations

import os
import secrets
import urllib.request
from pathlib import Path

from config.settings import Secret, Settings

__all__ = ["is_ready", "worker_env", "write_key_file"]


def is_ready(base_url: str) -> bool:
    """True once the worker's /ready answers 200 (partitions assigned, tables recovered)."""
    try:
        with urllib.request.urlopen(f"{base_url}/ready", timeout=2) as resp:  # noqa: S310 - loopback URL
            return bool(resp.status == 200)
    except OSError:
        return False


def worker_env(settings: Settings) -> dict[str, str]:
    """The environment of a ``kuntur worker`` child: ours, plus ``settings`` as KUNTUR_* variables.

    Secrets (the Kafka password, the model key) are left out: a child that needs them reads
    them from the parent's environment, or from a file setting (``model_key_file``).
    """
    env = dict(os.environ)
    for key, value in settings.as_dict().items():
        if not isinstance(getattr(settings, key), Secret):
            env[f"KUNTUR_{key.upper()}"] = str(value)
    return env


def write_key_file(path: str | Path) -> Path:
    """Write a new random model key (32 bytes as hex) to ``path``, readable by its owner only."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    return path
