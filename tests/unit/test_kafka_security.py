"""Kafka security settings reach the wire: SASL_SSL and SSL speak TLS first, never clear text."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading

import pytest
from aiokafka import AIOKafkaProducer
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from config.errors import ConfigError
from config.settings import load_settings
from stream.kafka.security import broker_credentials


def first_bytes_sent(protocol: str, mechanism: str = "") -> bytes:
    """Point a real aiokafka client, configured as the worker configures Faust, at a loopback
    listener and return the first bytes it sends."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    got: list[bytes] = []

    def accept() -> None:
        server.settimeout(10)
        try:
            conn, _ = server.accept()
            conn.settimeout(5)
            got.append(conn.recv(5))
            conn.close()
        except OSError:
            got.append(b"")

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    settings = load_settings(
        overrides={
            "kafka_bootstrap": f"127.0.0.1:{port}",
            "kafka_security_protocol": protocol,
            "kafka_sasl_mechanism": mechanism,
            "kafka_sasl_username": "kuntur",
            "kafka_sasl_password": "s3cret-password",
        }
    )
    auth = dict(credentials_to_aiokafka_auth(broker_credentials(settings)))

    async def connect() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=2000, **auth)
        try:
            await asyncio.wait_for(producer.start(), timeout=5)
        except Exception:  # noqa: S110 - nobody speaks Kafka here; only the bytes matter
            pass
        finally:
            await producer.stop()

    asyncio.run(connect())
    thread.join(10)
    server.close()
    return got[0] if got else b""


@pytest.mark.parametrize("protocol,mechanism", [("SASL_SSL", "SCRAM-SHA-512"), ("SASL_SSL", "PLAIN"), ("SSL", "")])
def test_tls_protocols_send_a_tls_client_hello_first(protocol, mechanism):
    sent = first_bytes_sent(protocol, mechanism)
    assert sent[:1] == b"\x16" and sent[1:2] == b"\x03", sent  # TLS handshake record
    assert b"s3cret" not in sent


def test_sasl_ssl_credentials_carry_a_verifying_tls_context():
    settings = load_settings(
        overrides={"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "SCRAM-SHA-512"}
    )
    auth = credentials_to_aiokafka_auth(broker_credentials(settings))
    assert auth["security_protocol"] == "SASL_SSL"
    ctx = auth["ssl_context"]
    assert isinstance(ctx, ssl.SSLContext) and ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize(
    "protocol,mechanism,match",
    [("SASL_SSL", "", "needs kafka_sasl_mechanism"), ("PLAINTEXT", "PLAIN", "use SASL_SSL"), ("TLS", "", "one of")],
)
def test_contradictory_security_settings_are_refused(protocol, mechanism, match):
    """Refused when loaded, so no client (worker, simulate, replay, alerts, demo) starts with them."""
    with pytest.raises(ConfigError, match=match):
        load_settings(overrides={"kafka_security_protocol": protocol, "kafka_sasl_mechanism": mechanism})
