"""The deployment files agree with the code: docker-compose.yml, Dockerfile, Prometheus and Grafana config.

Compose cannot run here (no Docker engine), so the compose file is parsed and checked against
the settings object, the CLI parser and the Prometheus/Grafana files it mounts.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from config.settings import Settings, env_names, load_settings
from stream.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
PROMETHEUS = ROOT / "config" / "prometheus" / "prometheus.yml"
DASHBOARD = ROOT / "config" / "grafana" / "dashboards" / "kuntur.json"
GRAFANA_PROVISIONING = ROOT / "config" / "grafana" / "provisioning"
REQUIREMENTS = ROOT / "requirements-docker.txt"

#: PromQL words that look like metric names but are operators, modifiers or constants.
_PROMQL_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2", "group_left", "group_right"}
#: Series Prometheus makes itself rather than scraping them.
PROMETHEUS_SYNTHETIC = {"up", "ALERTS", "ALERTS_FOR_STATE", "scrape_duration_seconds", "scrape_samples_scraped"}


def promql_metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (strings, label matchers, ranges and grouping removed)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for m in re.finditer(r"(?<![\w.$])[A-Za-z_:][A-Za-z0-9_:]*", expr):
        if expr[m.end() :].lstrip().startswith("(") or m.group().lower() in _PROMQL_KEYWORDS:
            continue  # a function or aggregation, or an operator
        names.add(m.group())
    return names


def dashboard_exprs(dashboard: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every query of every panel of the Kuntur dashboard."""
    dashboard = dashboard or json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p.get("targets", [])]


def concrete_promql(expr: str) -> str:
    """A dashboard query with Grafana's variables replaced, as Prometheus would receive it."""
    return expr.replace("$__rate_interval", "1m").replace("$instance", ".*")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def kuntur_services(compose: dict[str, Any], command: str | None = None) -> dict[str, dict[str, Any]]:
    """Services running the Kuntur image, optionally only those whose command is ``command``."""
    return {
        name: svc
        for name, svc in services(compose).items()
        if "build" in svc and (command is None or svc.get("command", ["worker"])[0] == command)
    }


def worker_port(svc: dict[str, Any]) -> int:
    return int(svc["environment"].get("KUNTUR_WEB_PORT", Settings().web_port))


def parse_port(spec: str) -> tuple[str, int, int]:
    """``[ip:]host:container`` as published by compose."""
    parts = str(spec).split(":")
    assert len(parts) in (2, 3), f"publish ports as [ip:]host:container, got {spec!r}"
    ip = parts[0] if len(parts) == 3 else "0.0.0.0"
    return ip, int(parts[-2]), int(parts[-1].split("/")[0])


# ---------------------------------------------------------------------------------- compose


def test_every_service_has_an_image_or_a_build(compose):
    for name, svc in services(compose).items():
        assert "image" in svc or "build" in svc, name
        if "image" in svc and "build" not in svc:
            assert re.fullmatch(r"[\w./-]+:[\w.-]+", svc["image"]), f"{name}: pin the image tag, got {svc['image']}"
            assert not svc["image"].endswith(":latest"), name


def test_kafka_is_apache_kafka_in_kraft_mode(compose):
    kafka = services(compose)["kafka"]
    env = kafka["environment"]
    assert kafka["image"].startswith("apache/kafka:")
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "KAFKA_CONTROLLER_QUORUM_VOTERS" in env and "KAFKA_ZOOKEEPER_CONNECT" not in env
    assert not any("zookeeper" in name for name in services(compose))
    assert int(env["KAFKA_NUM_PARTITIONS"]) >= 2
    init = services(compose)["kafka-init"]
    script = init["command"][0]
    for topic in ("transactions", "labels", "alerts", "transactions-dlq"):
        assert f"--topic {topic} " in script, topic
    partitions = int(re.search(r"--partitions (\d+)", script).group(1))
    for svc in kuntur_services(compose).values():
        assert int(svc["environment"]["KUNTUR_PARTITIONS"]) == partitions


def test_two_workers_in_one_consumer_group_and_the_simulator(compose):
    workers = kuntur_services(compose, "worker")
    assert len(workers) >= 2
    assert len({svc["environment"]["KUNTUR_APP_ID"] for svc in workers.values()}) == 1  # one group
    assert all(svc["environment"]["KUNTUR_WEB_HOST"] == "0.0.0.0" for svc in workers.values())
    assert kuntur_services(compose, "simulate"), "the simulator service is missing"
    parser = build_parser()
    for name, svc in kuntur_services(compose).items():
        parser.parse_args(svc["command"])  # the command line is one `kuntur` accepts
        assert svc.get("depends_on"), name


def test_every_kuntur_env_name_is_a_setting_and_its_value_loads(compose):
    known = set(env_names())
    for name, svc in services(compose).items():
        env = {k: str(v) for k, v in (svc.get("environment") or {}).items()}
        unknown = {k for k in env if k.startswith("KUNTUR_")} - known
        assert not unknown, f"{name}: {unknown} are not settings (config.settings.env_names())"
        if name in kuntur_services(compose):
            load_settings(env=env)  # types and ranges check out


def test_ports_are_loopback_unique_and_match_the_workers(compose):
    seen: dict[int, str] = {}
    for name, svc in services(compose).items():
        for spec in svc.get("ports", []):
            ip, host, container = parse_port(spec)
            assert ip == "127.0.0.1", f"{name}: publish on loopback, got {spec}"
            assert host not in seen, f"{name} and {seen.get(host)} both publish {host}"
            seen[host] = name
    for name, svc in kuntur_services(compose, "worker").items():
        assert [parse_port(p)[2] for p in svc["ports"]] == [worker_port(svc)], name


def test_volumes_exist_and_each_worker_keeps_its_own_data(compose):
    declared = set(compose.get("volumes") or {})
    for name, svc in services(compose).items():
        for spec in svc.get("volumes", []):
            source = spec.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: bind mount {source} does not exist"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
    data_volumes = []
    for name, svc in kuntur_services(compose, "worker").items():
        data_dir = svc["environment"]["KUNTUR_DATA_DIR"]
        mounts = [v.split(":")[0] for v in svc["volumes"] if v.split(":")[1] == data_dir]
        assert len(mounts) == 1, f"{name}: mount a volume at KUNTUR_DATA_DIR ({data_dir}) to keep checkpoints"
        data_volumes += mounts
    assert len(set(data_volumes)) == len(data_volumes), "workers must not share a data volume"


def test_depends_on_names_real_services(compose):
    for name, svc in services(compose).items():
        for dep in svc.get("depends_on", []):
            assert dep in services(compose), f"{name} depends on unknown {dep}"


def test_prometheus_scrapes_exactly_the_worker_services(compose):
    config = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "kuntur"]
    targets = {t for sc in job["static_configs"] for t in sc["targets"]}
    workers = kuntur_services(compose, "worker")
    assert targets == {f"{name}:{worker_port(svc)}" for name, svc in workers.items()}
    assert job.get("metrics_path", "/metrics") == "/metrics"
    prom = services(compose)["prometheus"]
    config_file = next(a.split("=", 1)[1] for a in prom["command"] if a.startswith("--config.file="))
    mounts = {v.split(":")[1]: v.split(":")[0] for v in prom["volumes"]}
    assert mounts[str(Path(config_file).parent)] == "./config/prometheus"
    for rule_file in config["rule_files"]:
        assert (PROMETHEUS.parent / rule_file).is_file(), rule_file


def test_grafana_is_provisioned_with_the_datasource_and_the_dashboard(compose):
    grafana = services(compose)["grafana"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"]}
    assert mounts["/etc/grafana/provisioning"] == "./config/grafana/provisioning"
    (provider,) = yaml.safe_load((GRAFANA_PROVISIONING / "dashboards" / "kuntur.yml").read_text())["providers"]
    assert mounts[provider["options"]["path"]] == "./config/grafana/dashboards"
    (source,) = yaml.safe_load((GRAFANA_PROVISIONING / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090" and "prometheus" in services(compose)
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert Path(home).parent.as_posix() == provider["options"]["path"] and Path(home).name == DASHBOARD.name
    uids = {t["datasource"]["uid"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p.get("targets", [])}
    assert uids == {source["uid"]}


# -------------------------------------------------------------------------------- dashboard


def test_dashboard_has_the_panels_operators_need():
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["title"] == "Kuntur — fraud detection"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    exprs = dashboard_exprs(dashboard)
    used = set().union(*(promql_metric_names(e) for _, e in exprs))
    needed = {
        "throughput": "kuntur_transactions_total",
        "lag": "kuntur_consumer_lag_messages",
        "latency": "kuntur_scoring_latency_seconds_bucket",
        "alerts per institution": "kuntur_alerts_total",
        "alert budget": "kuntur_alert_budget_ratio",
        "dead letters": "kuntur_dead_letters_total",
        "labels": "kuntur_labels_total",
        "precision": "kuntur_model_precision",
        "recall": "kuntur_model_recall",
        "model version": "kuntur_model_info",
        "state size": "kuntur_state_entities",
        "checkpoint age": "kuntur_checkpoint_age_seconds",
    }
    missing = {what: name for what, name in needed.items() if name not in used}
    assert not missing, f"no panel shows {missing}"
    text = " ".join(e for _, e in exprs)
    assert "histogram_quantile(0.5," in text and "histogram_quantile(0.99," in text
    assert "by (institution)" in text and "by (topic, reason)" in text
    assert used <= {n for n in used if n.startswith("kuntur_")} | PROMETHEUS_SYNTHETIC


def test_promql_metric_names_ignores_functions_labels_ranges_and_grouping():
    expr = 'histogram_quantile(0.99, sum by (le) (rate(a_bucket{x="y", le!="z"}[$__rate_interval])))'
    assert promql_metric_names(expr) == {"a_bucket"}
    assert promql_metric_names("a > 3 * b offset 6h and on(instance) changes(c[15m]) > 1e3") == {"a", "b", "c"}
    assert promql_metric_names("sum(x) by (job) / ignoring(reason) group_left y unless z") == {"x", "y", "z"}


# ------------------------------------------------------------------------------- Dockerfile


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """Instructions of each build stage as (INSTRUCTION, arguments), continuations joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text(encoding="utf-8"))
    stages: list[list[tuple[str, str]]] = [[]]
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        if instruction.upper() == "FROM" and stages[-1] and any(i == "FROM" for i, _ in stages[-1]):
            stages.append([])
        stages[-1].append((instruction.upper(), args.strip()))
    return stages


def test_dockerfile_is_slim_non_root_and_pinned():
    stages = dockerfile_stages()
    args = dict(a.split("=", 1) for i, a in stages[0] if i == "ARG" and "=" in a)
    base = args.get("PYTHON_IMAGE")
    assert base and re.fullmatch(r"python:3\.\d+\.\d+-slim(-\w+)?", base), base
    final = stages[-1]
    users = [a for i, a in final if i == "USER"]
    assert users and users[-1] not in {"root", "0"}, "the image must run as a non-root user"
    assert [a for i, a in final if i == "ENTRYPOINT"] == ['["kuntur"]']
    assert [a for i, a in final if i == "EXPOSE"] == [str(Settings().web_port)]
    assert any(i == "HEALTHCHECK" and "/health" in a for i, a in final)
    runs = " ".join(a for stage in stages for i, a in stage if i == "RUN")
    assert f"-r /tmp/{REQUIREMENTS.name}" in runs and "--no-deps" in runs and "pip check" in runs
    for stage in stages:
        for instruction, arguments in stage:
            if instruction == "COPY" and "--from=" not in arguments:
                for source in shlex.split(arguments)[:-1]:
                    assert (ROOT / source).exists(), f"COPY {source}: no such file"
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    for source in ("pyproject.toml", "README.md", REQUIREMENTS.name, "stream", "features", "models", "config"):
        assert f"!{source}" in ignored, f".dockerignore keeps {source} out of the build context"


def pinned_requirements() -> dict[str, str]:
    pins = {}
    for line in REQUIREMENTS.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and version, f"{REQUIREMENTS.name}: pin exactly (name==version), got {line!r}"
            pins[canonicalize_name(name)] = version
    return pins


def test_docker_requirements_pin_every_runtime_dependency():
    pins = pinned_requirements()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for spec in project["dependencies"]:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name in pins, f"{REQUIREMENTS.name} does not pin {req.name}"
        assert req.specifier.contains(pins[name]), f"{name}=={pins[name]} does not satisfy {spec}"
    # Where the installed version is the pinned one, its own dependencies must be pinned too.
    for name, version in pins.items():
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        if dist.version != version:
            continue
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                assert canonicalize_name(req.name) in pins, f"{name} needs {req.name}: pin it in {REQUIREMENTS.name}"


def test_workers_read_the_model_key_from_a_compose_secret_off_the_data_volume(compose):
    assert compose["secrets"]["kuntur_model_key"]["file"] == "./secrets/model.key"
    for name, svc in kuntur_services(compose, "worker").items():
        assert "kuntur_model_key" in svc["secrets"], name
        key_file = svc["environment"]["KUNTUR_MODEL_KEY_FILE"]
        assert key_file == "/run/secrets/kuntur_model_key"
        assert not key_file.startswith(svc["environment"]["KUNTUR_DATA_DIR"]), name
        assert "KUNTUR_MODEL_KEY" not in svc["environment"], f"{name}: a key in the compose file is in git"


def test_workers_can_forward_score_requests_to_each_other(compose):
    """/score is forwarded to the worker holding the account's partition: each worker must be
    reachable at an address the others can use (not its 0.0.0.0 bind), with a bearer token
    (a worker bound to a non-loopback address refuses /score without one)."""
    from config.settings import load_settings
    from stream.app import create_app
    from stream.metrics import Metrics
    from stream.pipeline.stages import Pipeline, new_detector

    assert compose["secrets"]["kuntur_score_token"]["file"] == "./secrets/score.token"
    for name, svc in kuntur_services(compose, "worker").items():
        env = svc["environment"]
        assert env["KUNTUR_WEB_ADVERTISED_HOST"] == svc["hostname"], name
        assert env["KUNTUR_SCORE_TOKEN_FILE"] == "/run/secrets/kuntur_score_token", name
        assert "kuntur_score_token" in svc["secrets"], name
        assert "KUNTUR_SCORE_TOKEN" not in env, f"{name}: a token in the compose file is in git"
    settings = load_settings(env={}, overrides={"web_host": "0.0.0.0", "web_advertised_host": "worker-1",
                                                "model_key": "k" * 40})
    app = create_app(settings, Pipeline(settings, new_detector(settings)), Metrics(), 4, b"k" * 40).app
    assert str(app.conf.canonical_url) == "http://worker-1:6066"  # what the other workers forward to
    assert app.conf.web_bind == "0.0.0.0"
