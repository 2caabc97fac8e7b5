"""Prometheus' own tool checks our config, alert rules and dashboard queries, and runs the rules' unit tests.

promtool comes from Debian's ``prometheus`` package (``make tools``). Without it the tests
skip locally, but never in CI (``CI`` set): there a missing promtool is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.unit.test_deploy import concrete_promql, dashboard_exprs

ROOT = Path(__file__).resolve().parents[2]
PROM_DIR = ROOT / "config" / "prometheus"


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing in CI: `make tools` installs Debian's prometheus package")
        pytest.skip("promtool not installed (make tools)")
    return path


def run(promtool: str, *args: str, cwd: Path = PROM_DIR) -> str:
    proc = subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"promtool {' '.join(args)} failed:\n{output}"
    return output


def test_promtool_check_config(promtool):
    out = run(promtool, "check", "config", "prometheus.yml")
    assert "SUCCESS" in out and "1 rule files found" in out


def test_promtool_check_rules(promtool):
    out = run(promtool, "check", "rules", "alerts.yml")
    rules = [r for g in yaml.safe_load((PROM_DIR / "alerts.yml").read_text())["groups"] for r in g["rules"]]
    assert f"SUCCESS: {len(rules)} rules found" in out


def test_promtool_test_rules_covers_every_alert(promtool):
    out = run(promtool, "test", "rules", "alerts.test.yml")
    assert "SUCCESS" in out
    alerts = {r["alert"] for g in yaml.safe_load((PROM_DIR / "alerts.yml").read_text())["groups"] for r in g["rules"]}
    tests = yaml.safe_load((PROM_DIR / "alerts.test.yml").read_text())["tests"]
    firing = {c["alertname"] for t in tests for c in t.get("alert_rule_test", []) if c.get("exp_alerts")}
    quiet = {c["alertname"] for t in tests for c in t.get("alert_rule_test", []) if not c.get("exp_alerts")}
    assert alerts == firing, f"alerts without a firing test: {alerts - firing}"
    assert alerts == quiet, f"alerts without a test that they stay quiet: {alerts - quiet}"
    assert {"KunturWorkerDown", "KunturConsumerLagGrowing", "KunturDeadLetterRateHigh", "KunturAlertRateAboveBudget",
            "KunturModelQualityDropping", "KunturCheckpointStale"} <= alerts  # fmt: skip


def test_every_dashboard_query_is_valid_promql(promtool, tmp_path):
    """promtool parses each panel query (Grafana variables filled in) as a recording rule."""
    rules = [
        {"record": f"dashboard:query_{i}", "expr": concrete_promql(expr)}
        for i, (_, expr) in enumerate(dashboard_exprs())
    ]
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    out = run(promtool, "check", "rules", str(path), cwd=tmp_path)
    assert f"SUCCESS: {len(rules)} rules found" in out
