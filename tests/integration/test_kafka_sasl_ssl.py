"""Kafka security for real: an Apache Kafka broker with a SASL_SSL listener (SCRAM-SHA-512,
a throw-away CA and broker certificate made by the test), and Kuntur's clients on it.

The worker (Faust/aiokafka) and the confluent-kafka tools (simulate, alerts) connect with
credentials from configuration only and verify the broker's certificate and host name; a
plaintext client and wrong credentials are refused.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from config.settings import Settings
from stream.dev.broker import free_port
from stream.dev.kafka import KafkaNode, cluster_id, kafka_libs
from stream.dev.process import worker_env
from tests.integration.conftest import ROOT, consume, wait_for

pytestmark = pytest.mark.slow

USER, PASSWORD = "kuntur", "scram-test-password-9f1"  # noqa: S105 - a throw-away test credential
SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule required;"


def make_certificates(tmp: Path) -> tuple[Path, Path]:
    """A CA, and a broker certificate for 127.0.0.1/localhost signed by it; (ca.pem, broker.pem)."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=tmp, check=True, capture_output=True, timeout=60)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=kuntur-test-ca",
    )
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key", "-out", "broker.csr", "-subj", "/CN=localhost"
    )
    (tmp / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl(
        "x509",
        "-req",
        "-in",
        "broker.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "broker.crt",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    )
    openssl("pkcs8", "-topk8", "-nocrypt", "-in", "broker.key", "-out", "broker.pk8")
    pem = tmp / "broker.pem"  # Kafka's PEM keystore: the private key, then the certificate
    pem.write_text((tmp / "broker.pk8").read_text() + (tmp / "broker.crt").read_text())
    return tmp / "ca.pem", pem


class SecureNode(KafkaNode):
    """A Kafka node whose client listener speaks SASL_SSL only (SCRAM-SHA-512); brokers talk to
    themselves on a loopback-only internal listener."""

    def __init__(self, *args: object, keystore: Path, internal_port: int, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.keystore = keystore
        self.internal_port = internal_port

    def write_config(self, voters: str, replication: int, min_isr: int) -> None:
        super().write_config(voters, replication, min_isr)
        props = dict(line.split("=", 1) for line in self.config_path.read_text().splitlines() if "=" in line)
        props.update(
            {
                "listeners": f"SASL_SSL://{self.host}:{self.port},INTERNAL://{self.host}:{self.internal_port},"
                f"CONTROLLER://{self.host}:{self.controller_port}",
                "advertised.listeners": f"SASL_SSL://{self.host}:{self.port},INTERNAL://{self.host}:{self.internal_port}",
                "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,SASL_SSL:SASL_SSL",
                "inter.broker.listener.name": "INTERNAL",
                "sasl.enabled.mechanisms": "SCRAM-SHA-512",
                "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": SCRAM_LOGIN,
                "ssl.keystore.type": "PEM",
                "ssl.keystore.location": str(self.keystore),
            }
        )
        self.config_path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))

    def format(self, cluster: str) -> None:
        cmd = self._java(
            "kafka.tools.StorageTool",
            "format",
            "-t",
            cluster,
            "-c",
            str(self.config_path),
            "--add-scram",
            f"SCRAM-SHA-512=[name={USER},password={PASSWORD}]",
        )
        done = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr.decode()[-2000:]


def client(settings: Settings) -> AdminClient:
    return AdminClient({**settings.kafka_client_config(), "socket.timeout.ms": 5000})


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    tmp = tmp_path_factory.mktemp("sasl-ssl")
    ca, keystore = make_certificates(tmp)
    port, controller, internal = free_port(), free_port(), free_port()
    node = SecureNode(
        1, "127.0.0.1", port, controller, tmp / "node-1", kafka_libs(), keystore=keystore, internal_port=internal
    )
    node.write_config(f"1@127.0.0.1:{controller}", 1, 1)
    node.format(cluster_id())
    node.start()
    try:
        yield f"127.0.0.1:{port}", ca
    finally:
        node.stop()


@pytest.fixture
def secure_settings(settings: Settings, secure_broker: tuple[str, Path]) -> Settings:
    bootstrap, ca = secure_broker
    secure = settings.replace(
        kafka_bootstrap=bootstrap,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username=USER,
        kafka_sasl_password=PASSWORD,
        kafka_ssl_cafile=str(ca),
    )
    deadline = time.monotonic() + 90
    while True:  # the broker is up once an authenticated, verified client sees its metadata
        try:
            client(secure).list_topics(timeout=5)
            return secure
        except Exception:
            if time.monotonic() > deadline:
                raise


def kuntur(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "stream.cli", *args], env=env, capture_output=True, timeout=timeout, cwd=ROOT
    )


def test_worker_and_tools_work_over_sasl_ssl_with_credentials_from_configuration(secure_settings, tmp_path):
    settings = secure_settings.replace(alert_threshold=0.0, warmup_genuine=0)
    env = {**worker_env(settings), "KUNTUR_KAFKA_SASL_PASSWORD": PASSWORD}
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "stream.cli", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
        )
    try:
        from stream.dev.process import is_ready

        wait_for(lambda: is_ready(f"http://127.0.0.1:{settings.web_port}"), 120, "worker ready over SASL_SSL")
        done = kuntur(env, "simulate", "--transactions", "300", "--rate", "0", "--no-progress")
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        alerts = consume(settings, settings.topic_alerts, lambda a: len(a) >= 250, 120)
        assert alerts and all(0.0 <= a["score"] <= 1.0 for a in alerts)
        tail = kuntur(env, "alerts", "--from-beginning", "--limit", "3", timeout=60)
        assert tail.returncode == 0, tail.stderr.decode()[-2000:]
    finally:
        worker.terminate()
        worker.wait(60)
    log_text = log_path.read_text(errors="replace")
    assert "in the clear" not in log_text.lower() and PASSWORD not in log_text


def test_a_plaintext_client_and_wrong_credentials_are_refused(secure_settings):
    plaintext = secure_settings.replace(kafka_security_protocol="PLAINTEXT", kafka_sasl_mechanism="")
    with pytest.raises(Exception):  # noqa: B017 - librdkafka's error type varies; the point is: refused
        client(plaintext).list_topics(timeout=5)
    wrong = secure_settings.replace(kafka_sasl_password="not-the-password")
    with pytest.raises(Exception):  # noqa: B017
        client(wrong).list_topics(timeout=10)


def test_wrong_credentials_give_one_clear_error_within_seconds(secure_settings):
    env = {**worker_env(secure_settings), "KUNTUR_KAFKA_SASL_PASSWORD": "not-the-password"}
    began = time.monotonic()
    done = kuntur(env, "worker", timeout=60)
    seconds = time.monotonic() - began
    output = done.stdout.decode() + done.stderr.decode()
    assert done.returncode != 0, output
    assert "refused the connection: SASL authentication failed" in output, output[-2000:]
    assert "Traceback" not in output and "not-the-password" not in output
    assert seconds < 20, seconds
    tool = kuntur(env, "alerts", "--limit", "1", timeout=60)
    assert tool.returncode != 0 and "SASL authentication failed" in tool.stderr.decode()
