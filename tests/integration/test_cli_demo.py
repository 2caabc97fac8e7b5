"""``kuntur demo`` as a person runs it: the model's warm-up is visible, every figure says
where it comes from, the dead letters are explained."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_demo_shows_the_model_warming_up_then_alerting_and_labels_its_figures():
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUNTUR_")}
    env["KUNTUR_WARMUP_GENUINE"] = "100"
    done = subprocess.run(
        [sys.executable, "-m", "stream.cli", "demo", "--transactions", "6000", "--accounts", "300", "--rate", "0",
         "--label-horizon-hours", "1", "--timeout", "200"],
        cwd=ROOT, env=env, capture_output=True, timeout=260, check=False,
    )  # fmt: skip
    out = done.stdout.decode()
    assert done.returncode == 0, out + done.stderr.decode()
    lines = out.splitlines()
    warming = next(i for i, line in enumerate(lines) if line.startswith("model    warming up"))
    alerting = next(i for i, line in enumerate(lines) if line.startswith("model    alerting"))
    assert warming < alerting
    assert "4 malformed messages sent on purpose" in out
    rows = [line.split(None, 1) for line in lines[lines.index("final summary") + 1 :] if line.startswith("  ")]
    summary = {row[0]: row[1] for row in rows if len(row) == 2}
    for key in ("precision_vs_simulator_truth", "recall_vs_simulator_truth", "online_precision_from_labels",
                "online_recall_from_labels", "dead_lettered_on_purpose", "model_state"):  # fmt: skip
        assert key in summary, (key, summary)
    assert summary["model_state"] == "alerting"
    assert "precision" not in summary and "online_precision" not in summary  # no unlabelled twins
    assert "*_vs_simulator_truth: the alerts against the simulator's ground truth" in out


def test_online_figures_are_na_before_any_label():
    from stream.dev.demo import ratio

    assert ratio(0.0, 0) == "n/a" and ratio(None, 5) == "n/a" and ratio(0.5, 5) == "0.50"
