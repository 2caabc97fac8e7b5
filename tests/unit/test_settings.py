"""Settings precedence, typing and secret masking."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.errors import ConfigError
from config.settings import (
    REFERENCE_BEGIN,
    REFERENCE_END,
    Secret,
    Settings,
    env_names,
    load_settings,
    reference_markdown,
    update_reference,
)

OPERATIONS_DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def test_defaults_match_design_topics():
    s = load_settings(env={})
    assert (s.topic_transactions, s.topic_labels, s.topic_alerts, s.topic_dlq) == (
        "transactions",
        "labels",
        "alerts",
        "transactions-dlq",
    )
    assert s.label_horizon_s == 7 * 86400


def test_precedence_file_then_env_then_overrides(tmp_path):
    cfg = tmp_path / "k.toml"
    cfg.write_text('[kuntur]\nalert_threshold = 0.7\npartitions = 8\napp_id = "from-file"\n')
    s = load_settings(env={"KUNTUR_PARTITIONS": "6"}, path=cfg, overrides={"app_id": "from-flag"})
    assert (s.alert_threshold, s.partitions, s.app_id) == (0.7, 6, "from-flag")


def test_config_file_from_env_and_bool_parsing(tmp_path):
    cfg = tmp_path / "k.toml"
    cfg.write_text("emit_scores = true\n")
    assert load_settings(env={"KUNTUR_CONFIG": str(cfg)}).emit_scores is True
    assert load_settings(env={"KUNTUR_EMIT_SCORES": "no"}).emit_scores is False


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KUNTUR_PARTITIONS": "many"}, "must be int"),
        ({"KUNTUR_NOPE": "1"}, "unknown setting 'nope'"),
        ({"KUNTUR_ALERT_THRESHOLD": "1.5"}, "alert_threshold must be in"),
        ({"KUNTUR_EMIT_SCORES": "perhaps"}, "must be bool"),
        ({"KUNTUR_CONFIG": "/nonexistent/k.toml"}, "does not exist"),
        ({"KUNTUR_LOG_FORMAT": "xml"}, "log_format must be one of text, json"),
        ({"KUNTUR_ALERT_BUDGET_RATIO": "0"}, "alert_budget_ratio must be in"),
    ],
)
def test_bad_settings_fail_with_clear_errors(env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(env=env)


def test_secret_is_masked_everywhere_but_reveal():
    s = load_settings(
        env={
            "KUNTUR_KAFKA_SASL_PASSWORD": "hunter2",
            "KUNTUR_KAFKA_SASL_MECHANISM": "PLAIN",
            "KUNTUR_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        }
    )
    assert "hunter2" not in repr(s) and "hunter2" not in str(s.as_dict())
    assert s.kafka_client_config()["sasl.password"] == "hunter2"
    assert s.kafka_sasl_password == Secret("hunter2")


def test_env_names_cover_every_field():
    names = env_names()
    assert "KUNTUR_KAFKA_BOOTSTRAP" in names and len(names) == len(Settings().as_dict())


def test_log_format_and_alert_budget():
    assert (Settings().log_format, Settings().alert_budget_ratio) == ("text", 0.01)
    s = load_settings(env={"KUNTUR_LOG_FORMAT": "json", "KUNTUR_ALERT_BUDGET_RATIO": "0.002"})
    assert (s.log_format, s.alert_budget_ratio) == ("json", 0.002)


def test_reference_table_has_one_row_per_setting_with_env_name_default_and_help():
    rows = reference_markdown().splitlines()[2:]
    assert len(rows) == len(env_names())
    assert "| `kafka_sasl_password` | `KUNTUR_KAFKA_SASL_PASSWORD` | *(secret)* |" in reference_markdown()
    assert "| `emit_scores` | `KUNTUR_EMIT_SCORES` | `false` |" in reference_markdown()
    for row, env in zip(rows, env_names(), strict=True):
        assert f"| `{env}` |" in row and row.count(" | ") == 3


def test_operations_doc_holds_the_current_reference():
    """docs/operations.md embeds the generated table; regenerate it when a setting changes with
    python -c 'from config.settings import update_reference; update_reference("docs/operations.md")'
    """
    text = OPERATIONS_DOC.read_text(encoding="utf-8")
    assert f"{REFERENCE_BEGIN}\n{reference_markdown()}{REFERENCE_END}" in text, (
        "docs/operations.md has a stale configuration reference: run "
        "python -c 'from config.settings import update_reference; update_reference(\"docs/operations.md\")'"
    )


def test_update_reference_rewrites_only_the_marked_block(tmp_path):
    doc = tmp_path / "ops.md"
    doc.write_text(f"# Ops\n\nbefore\n{REFERENCE_BEGIN}\n| old |\n{REFERENCE_END}\nafter\n")
    assert update_reference(doc) is True
    assert doc.read_text() == f"# Ops\n\nbefore\n{REFERENCE_BEGIN}\n{reference_markdown()}{REFERENCE_END}\nafter\n"
    assert update_reference(doc) is False
    doc.write_text("no markers")
    with pytest.raises(ConfigError, match="no settings reference markers"):
        update_reference(doc)


def test_worker_children_never_get_secrets_through_their_environment(monkeypatch):
    from stream.dev.process import worker_env

    monkeypatch.delenv("KUNTUR_MODEL_KEY", raising=False)
    monkeypatch.delenv("KUNTUR_KAFKA_SASL_PASSWORD", raising=False)
    s = load_settings(overrides={"model_key": "k" * 40, "kafka_sasl_password": "hunter2", "model_key_file": "/k"})
    env = worker_env(s)
    assert "KUNTUR_MODEL_KEY" not in env and "KUNTUR_KAFKA_SASL_PASSWORD" not in env
    assert env["KUNTUR_MODEL_KEY_FILE"] == "/k"
    assert not any("hunter2" in v or "k" * 40 in v for v in env.values())


def test_model_key_is_required_long_enough_and_read_from_its_file(tmp_path):
    with pytest.raises(ConfigError, match="no model key"):
        load_settings(overrides={"model_key": "", "model_key_file": ""}).model_signing_key()
    with pytest.raises(ConfigError, match="at least 32"):
        load_settings(overrides={"model_key": "short"}).model_signing_key()
    key_file = tmp_path / "model.key"
    key_file.write_text("a" * 64 + "\n")
    assert load_settings(overrides={"model_key_file": str(key_file)}).model_signing_key() == b"a" * 64
    with pytest.raises(ConfigError, match="cannot be read"):
        load_settings(overrides={"model_key_file": str(tmp_path / "missing")}).model_signing_key()
