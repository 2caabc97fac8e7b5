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


def test_features_lists_models(capsys):
    assert main(["features", "--models"]) == 0
    assert "gam-pairs (default)" in capsys.readouterr().out


def test_bad_setting_is_a_clear_error_not_a_traceback(capsys, monkeypatch):
    monkeypatch.setenv("KUNTUR_PARTITIONS", "lots")
    assert main(["features"]) == 2
    assert "partitions" in capsys.readouterr().err
