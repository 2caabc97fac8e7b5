"""Every metric the Grafana dashboard and the alert rules query is one a live worker exposes.

A worker processes simulator traffic that exercises every labelled metric (alerts, labels,
dead letters, consumer lag); the names are read from its real ``/metrics``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from offline.simulator import SimConfig, generate
from tests.integration.conftest import produce, produce_json, wait_for
from tests.unit.test_deploy import PROMETHEUS_SYNTHETIC, dashboard_exprs, promql_metric_names

pytestmark = pytest.mark.slow

ALERT_RULES = Path(__file__).resolve().parents[2] / "config" / "prometheus" / "alerts.yml"


def exposed_sample_names(text: str) -> set[str]:
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


def test_dashboard_and_alert_rules_only_use_metrics_the_worker_exposes(settings, start_worker):
    settings = settings.replace(alert_threshold=0.0, warmup_genuine=0)  # every transaction alerts
    worker = start_worker(settings)
    events = list(generate(SimConfig(seed=5, accounts=200, transactions=600)))
    produce_json(settings, settings.topic_transactions, [e.value for e in events if e.kind == "transaction"])
    produce_json(settings, settings.topic_labels, [e.value for e in events if e.kind == "label"])
    produce(settings, settings.topic_transactions, [(b"k", b"{not json")])

    def every_family_has_samples() -> bool:
        names = exposed_sample_names(worker.metrics_text())
        return {"kuntur_alerts_total", "kuntur_labels_total", "kuntur_dead_letters_total",
                "kuntur_consumer_lag_messages"} <= names  # fmt: skip

    wait_for(every_family_has_samples, 60, "alerts, labels, dead letters and lag in /metrics", worker)
    exposed = exposed_sample_names(worker.metrics_text())

    panels = {name: title for title, expr in dashboard_exprs() for name in promql_metric_names(expr)}
    missing = {name: title for name, title in panels.items() if name not in exposed | PROMETHEUS_SYNTHETIC}
    assert not missing, f"dashboard panels query metrics the worker does not expose: {missing}"

    rules = [r for g in yaml.safe_load(ALERT_RULES.read_text())["groups"] for r in g["rules"]]
    used_by_rules = {name: r.get("alert") or r.get("record") for r in rules for name in promql_metric_names(r["expr"])}
    missing = {name: rule for name, rule in used_by_rules.items() if name not in exposed | PROMETHEUS_SYNTHETIC}
    assert not missing, f"alert rules query metrics the worker does not expose: {missing}"
    assert len(panels) >= 15 and "kuntur_scoring_latency_seconds_bucket" in panels
