"""The command line: help that explains, the feature catalogue, clear config errors."""

from __future__ import annotations

import orjson
import pytest

from features.catalogue import FEATURE_NAMES
from stream.cli import main


def test_help_lists_every_design_command(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for command in ("broker", "worker", "simulate", "alerts", "features", "demo"):
        assert command in out


def test_features_prints_the_catalogue_as_json(capsys):
    assert main(["features", "--format", "json"]) == 0
    catalogue = orjson.loads(capsys.readouterr().out)
    names = [f["name"] for f in catalogue]
    assert names == list(FEATURE_NAMES)
    assert all(f["description"] and f["source_fields"] for f in catalogue)


def test_features_lists_models_with_what_each_is_and_as_json(capsys, monkeypatch):
    from models.registry import CANDIDATES, DEFAULT_MODEL

    assert main(["features", "--models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    default = next(line for line in lines if line.startswith(DEFAULT_MODEL + " "))
    assert "default" in default and "asinh" in default.split("default", 1)[1]  # a description follows
    monkeypatch.setenv("KUNTUR_MODEL", "logreg")
    assert main(["features", "--models", "--format", "json"]) == 0
    models = orjson.loads(capsys.readouterr().out)
    assert [m["name"] for m in models] == list(CANDIDATES)
    assert all(m["description"] for m in models)
    assert [m["name"] for m in models if m["configured"]] == ["logreg"]
    assert [m["name"] for m in models if m["default"]] == [DEFAULT_MODEL]


def test_the_catalogue_lists_the_rules_too(capsys):
    from models.rules import RULES

    assert main(["features"]) == 0
    out = capsys.readouterr().out
    assert all(r.rule_id in out and r.description in out for r in RULES)
    assert main(["features", "--rules", "--format", "json"]) == 0
    rules = orjson.loads(capsys.readouterr().out)
    assert {r["rule"]: r["alerts"] for r in rules} == {r.rule_id: r.alerts for r in RULES}
    assert all(set(r["features"]) <= set(FEATURE_NAMES) for r in rules)


def test_bad_setting_is_a_clear_error_not_a_traceback(capsys, monkeypatch):
    monkeypatch.setenv("KUNTUR_PARTITIONS", "lots")
    assert main(["features"]) == 2
    assert "partitions" in capsys.readouterr().err


def test_keygen_then_rekey_rotates_a_checkpoint_key(tmp_path, capsys):
    from features.catalogue import FEATURE_NAMES
    from models.checkpoint import load_checkpoint, save_checkpoint
    from models.detector import Detector
    from models.errors import CheckpointSignatureError
    from models.scorer import FraudModel

    old, new = tmp_path / "old.key", tmp_path / "new.key"
    assert main(["keygen", "--out", str(old)]) == 0 and main(["keygen", "--out", str(new)]) == 0
    assert main(["keygen", "--out", str(old)]) == 2  # never overwritten
    assert oct(old.stat().st_mode & 0o777) == "0o600" and old.read_text() != new.read_text()
    ckpt = tmp_path / "model.ckpt"
    old_key = old.read_text().strip().encode()
    save_checkpoint(Detector(FraudModel("logreg", FEATURE_NAMES)), ckpt, old_key)
    assert main(["rekey", str(ckpt), "--old-key-file", str(old), "--new-key-file", str(new)]) == 0
    assert load_checkpoint(ckpt, new.read_text().strip().encode()).model.name == "logreg"
    with pytest.raises(CheckpointSignatureError):
        load_checkpoint(ckpt, old_key)
    # a wrong old key is refused with a clear error, and the file is left as it was
    before = ckpt.read_bytes()
    assert main(["rekey", str(ckpt), "--old-key-file", str(old), "--new-key-file", str(new)]) == 2
    assert ckpt.read_bytes() == before
    assert "refused" in capsys.readouterr().err


def test_pseudonym_maps_a_real_id_as_the_worker_does(tmp_path, capsys, monkeypatch):
    from stream.pipeline.pseudonym import Pseudonymiser

    monkeypatch.setenv("KUNTUR_PSEUDONYM_KEY", "q" * 40)
    assert main(["pseudonym", "acc-1", "acc-2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"acc-{i}\t{Pseudonymiser(b'q' * 40).value('account', f'acc-{i}')}" for i in (1, 2)]
    monkeypatch.delenv("KUNTUR_PSEUDONYM_KEY")
    assert main(["pseudonym", "acc-1"]) == 2
