"""Worker processes started by the demo, the bench and the integration tests."""

from __future__ import annotations

import os
import urllib.request

from config.settings import Settings

__all__ = ["is_ready", "worker_env"]


def is_ready(base_url: str) -> bool:
    """True once the worker's /ready answers 200 (partitions assigned, tables recovered)."""
    try:
        with urllib.request.urlopen(f"{base_url}/ready", timeout=2) as resp:  # noqa: S310 - loopback URL
            return bool(resp.status == 200)
    except OSError:
        return False


def worker_env(settings: Settings) -> dict[str, str]:
    """The environment of a ``kuntur worker`` child: ours, plus ``settings`` as KUNTUR_* variables.

    The password is left out: a child that needs it reads it from the parent's environment.
    """
    env = dict(os.environ)
    for key, value in settings.as_dict().items():
        if key != "kafka_sasl_password":
            env[f"KUNTUR_{key.upper()}"] = str(value)
    return env
