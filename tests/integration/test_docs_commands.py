"""Every fenced ``sh`` block of README.md and docs/*.md runs as written, at a small size.

A command in the docs that no longer works fails CI. Each block is run by bash with
``set -e`` in a temporary directory (``.venv`` linked to this checkout's, ``HOME`` a
temporary directory, no ``KUNTUR_*`` variables from outside), after the explicit
:data:`SUBSTITUTIONS` below — sizes, durations and ports only, never the command itself.
Blocks that need what a test cannot have (Docker, a bank's file, a password prompt, hours)
are in :data:`SKIP_BLOCKS` / :data:`SKIP_COMMANDS` with the reason; a block in neither
list fails the test, so a new block is either run or skipped on purpose.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from stream.dev.broker import free_port

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

pytestmark = pytest.mark.slow

#: (document, the block's first command starts with) -> why it is not run.
SKIP_BLOCKS: dict[tuple[str, str], str] = {
    ("README.md", "make demo"): "make test is CI itself; make demo is `kuntur demo` "
    "(tests/integration/test_cli_demo.py)",
    ("README.md", ".venv/bin/kuntur console --add-user"): "password prompt, then serves until stopped "
    "(tests/integration/test_console_browser.py runs both)",
    ("console.md", ".venv/bin/kuntur console --add-user"): "password prompt, then serves until stopped "
    "(tests/integration/test_console_browser.py runs both)",
    ("operations.md", "export GRAFANA_ADMIN_PASSWORD"): "needs Docker "
    "(tests/unit/test_deploy.py checks the compose file)",
    ("operations.md", "kafka-configs.sh"): "Apache Kafka's own tool against a production cluster",
    ("operations.md", "docker compose"): "needs Docker and a running compose stack",
    ("reliability.md", "make kafka"): "runs the fault tests: part of this suite already",
}
#: Documents whose blocks are benchmark runs on downloaded datasets (hours on this machine).
SKIP_DOCUMENTS: dict[str, str] = {
    "model-quality.md": "benchmark runs on downloaded public datasets and 1,000,000-transaction histories (hours)",
}
#: Commands (logical lines) skipped inside a block that otherwise runs.
SKIP_COMMANDS: list[tuple[str, str]] = [
    (r"kuntur evaluate transactions\.csv", "a bank's file (transactions.csv) that is not in the repository"),
]
#: (pattern, replacement, why): applied to every block that runs, in this order.
SUBSTITUTIONS: list[tuple[str, str, str]] = [
    (r"--transactions 200000", "--transactions 4000 --accounts 100",
     "1/50 of the transactions over 1/50 of the accounts: the same ~13 days of event time"),
    (r"--rate 500 --duration 60s", "--rate 500 --duration 3s", "3 s of traffic instead of a minute"),
    (r"--port 9092", "--port {port}", "a free port (9092 may be taken on a CI machine)"),
    (r"^(\.venv/bin/kuntur alerts .*?)(\s+#.*)?$", r"timeout 20 \1 || test $? = 124\2",
     "the alerts tail waits for its 20 alerts: stop it after 20 s"),
]


def sh_blocks(path: Path) -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```", path.read_text(), flags=re.S | re.M)


def commands(block: str) -> list[str]:
    """Logical lines: continuation lines joined."""
    return [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def first_command(block: str) -> str:
    return next((c.strip() for c in commands(block) if not c.strip().startswith("#")), "")


def all_blocks() -> list[tuple[str, int, str]]:
    return [(doc.name, i, block) for doc in DOCS for i, block in enumerate(sh_blocks(doc))]


def skip_reason(doc: str, block: str) -> str | None:
    if doc in SKIP_DOCUMENTS:
        return SKIP_DOCUMENTS[doc]
    first = first_command(block)
    return next((why for (d, start), why in SKIP_BLOCKS.items() if d == doc and first.startswith(start)), None)


def runnable(block: str, port: int) -> str:
    lines = []
    for line in commands(block):
        if any(re.search(pattern, line) for pattern, _ in SKIP_COMMANDS):
            continue
        for pattern, replacement, _ in SUBSTITUTIONS:
            line = re.sub(pattern, replacement.replace("{port}", str(port)), line)
        lines.append(line)
    return "\n".join(lines)


def test_every_sh_block_is_run_or_skipped_on_purpose():
    blocks = all_blocks()
    assert len(blocks) >= 8, "no sh blocks found: did the fence style change?"
    run = [(doc, i) for doc, i, block in blocks if skip_reason(doc, block) is None]
    assert ("README.md", 1) in run and ("README.md", 3) in run  # the by-hand flow and the warm-up's bootstrap
    assert ("README.md", 4) in run  # the backtest
    for doc, start in SKIP_BLOCKS:  # a stale skip entry hides nothing: it must match a block
        assert any(d == doc and first_command(b).startswith(start) for d, _, b in blocks), (doc, start)


@pytest.mark.parametrize(
    ("doc", "index", "block"),
    [pytest.param(d, i, b, id=f"{d}#{i}") for d, i, b in all_blocks()],
)
def test_documented_commands_work(doc, index, block, tmp_path):
    reason = skip_reason(doc, block)
    if reason is not None:
        pytest.skip(reason)
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    (tmp_path / "home").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUNTUR_")}
    env.update(HOME=str(tmp_path / "home"), KUNTUR_WEB_PORT=str(free_port()), PYTHONPATH=str(ROOT))
    port = free_port()
    env["KUNTUR_KAFKA_BOOTSTRAP"] = f"127.0.0.1:{port}"
    script = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + runnable(block, port) + "\n"
    (tmp_path / "block.sh").write_text(script)
    done = subprocess.run(
        ["bash", str(tmp_path / "block.sh")], cwd=tmp_path, env=env, capture_output=True, timeout=600, check=False
    )
    out = (done.stdout + done.stderr).decode(errors="replace")
    assert done.returncode == 0, f"{doc} block {index} failed:\n{script}\n--- output ---\n{out[-6000:]}"
    assert "Traceback" not in out, out[-6000:]
