"""Wrong input and a missing broker: one readable line within seconds, a non-zero exit, no traceback.

These run the real ``kuntur`` command in a subprocess (as a person at a terminal would).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stream.cli import build_parser, main
from stream.dev.broker import free_port

ROOT = Path(__file__).resolve().parents[2]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUNTUR_")}
    env.update({"KUNTUR_MODEL_KEY": "k" * 40, **extra})
    return env


def _start(*args: str, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "stream.cli", *args],
        cwd=ROOT,
        env=_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_every_kafka_command_says_cannot_reach_kafka_within_seconds(tmp_path):
    history = tmp_path / "h.csv"
    history.write_text("transaction_id,account_id,timestamp,amount,is_fraud\nt1,a1,2026-01-01T00:00:00Z,10,0\n")
    port = free_port()
    commands = {
        "simulate": ["simulate", "--rate", "100", "--duration", "2s", "--no-progress"],
        "alerts": ["alerts", "--limit", "1"],
        "replay": ["replay", str(history)],
        "worker": ["worker", "--data-dir", str(tmp_path / "w")],
    }
    started = time.monotonic()
    procs = {
        name: _start(*args, "--bootstrap", f"127.0.0.1:{port}", KUNTUR_KAFKA_CONNECT_TIMEOUT_S="3")
        for name, args in commands.items()
    }
    for name, proc in procs.items():
        out, _ = proc.communicate(timeout=60)
        lines = out.decode(errors="replace").strip().splitlines()
        assert proc.returncode == 3, (name, lines)
        assert len(lines) == 1, (name, lines)  # no librdkafka "%3|... Connection refused" lines, no traceback
        assert lines[0].startswith(f"kuntur: error: cannot reach Kafka at 127.0.0.1:{port} (tried for 3 s"), lines
        assert "produced" not in lines[0] and "sent" not in lines[0]
    assert time.monotonic() - started < 30  # in parallel: each about 3 s + start-up


def test_an_unknown_model_is_a_usage_error_before_reading_the_file(tmp_path):
    history = tmp_path / "h.csv"
    history.write_text("transaction_id,account_id,timestamp,amount,is_fraud\n" + "t,a,2026-01-01T00:00:00Z,1,0\n" * 10)
    started = time.monotonic()
    proc = _start("evaluate", str(history), "--model", "bogus")
    out = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 2, out
    assert "Traceback" not in out
    assert "error: --model 'bogus' is not a model candidate; choose one of: gam, " in out
    assert time.monotonic() - started < 15
    proc = _start("worker", KUNTUR_MODEL="bogus")
    out = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 2 and out.strip().splitlines() == [
        out.strip().splitlines()[0]
    ] and "model 'bogus' (KUNTUR_MODEL or --config) is not a candidate" in out, out


def test_a_missing_history_file_is_a_usage_error_before_kafka(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--bootstrap", "127.0.0.1:1", "replay", "no-such-file.csv"])
    assert info.value.code == 2
    assert "no-such-file.csv: no such file" in capsys.readouterr().err


def test_broker_on_a_port_in_use_fails_with_a_clear_error(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["broker", "--port", str(port)]) == 2
    err = capsys.readouterr()
    assert f"port {port} on 127.0.0.1 is already in use" in err.err
    assert "listening" not in err.out


def test_global_options_work_after_the_command_and_show_in_its_help():
    parser = build_parser()
    assert parser.parse_args(["alerts", "--bootstrap", "h:1", "--config", "k.toml"]).bootstrap == "h:1"
    args = parser.parse_args(["--bootstrap", "before:1", "alerts"])
    assert args.bootstrap == "before:1" and args.config is None  # not overwritten by the command's default
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():  # type: ignore[attr-defined]
        text = p.format_help()
        assert "--bootstrap HOST:PORT" in text and "--config TOML" in text, name
        assert p.description, f"kuntur {name} has no description"


def test_pyproject_declares_the_flat_layout_so_an_editable_install_warns_nothing():
    import tomllib

    from setuptools import find_namespace_packages

    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    # package-dir {"" = "."}: setuptools installs the project as a plain .pth path, without the
    # meta-path finder and its "Editable installation" warning
    assert setuptools["package-dir"] == {"": "."}
    found = set(find_namespace_packages(where=str(ROOT), include=setuptools["packages"]["find"]["include"]))
    for package, patterns in setuptools["package-data"].items():
        for pattern in patterns:
            data_dir = pattern.split("/")[0]
            if "/" in pattern:  # data in a sub-directory: it must be a (namespace) package, not "would be ignored"
                assert f"{package}.{data_dir}" in found, (package, pattern)
