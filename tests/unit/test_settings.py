"""Settings precedence, typing and secret masking."""

from __future__ import annotations

import pytest

from config.errors import ConfigError
from config.settings import Secret, Settings, env_names, load_settings


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
    ],
)
def test_bad_settings_fail_with_clear_errors(env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(env=env)


def test_secret_is_masked_everywhere_but_reveal():
    s = load_settings(env={"KUNTUR_KAFKA_SASL_PASSWORD": "hunter2", "KUNTUR_KAFKA_SASL_MECHANISM": "PLAIN"})
    assert "hunter2" not in repr(s) and "hunter2" not in str(s.as_dict())
    assert s.kafka_client_config()["sasl.password"] == "hunter2"
    assert s.kafka_sasl_password == Secret("hunter2")


def test_env_names_cover_every_field():
    names = env_names()
    assert "KUNTUR_KAFKA_BOOTSTRAP" in names and len(names) == len(Settings().as_dict())
