"""Kafka security settings for Faust's clients (aiokafka).

The confluent-kafka clients take theirs from :meth:`config.settings.Settings.kafka_config`.
SASL over TLS must carry an SSL context: without one, Faust's ``SASLCredentials`` speak
SASL_PLAINTEXT, and with PLAIN the password would cross the network in clear text.
"""

from __future__ import annotations

import ssl

import faust
from faust.types.auth import CredentialsT

from config.settings import Settings


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """A client TLS context: the configured CA (or the system's), hostname verification on."""
    ctx = ssl.create_default_context(cafile=settings.kafka_ssl_cafile or None)
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def broker_credentials(settings: Settings) -> CredentialsT | None:
    """Faust credentials for the configured protocol (validated when the settings were loaded)."""
    protocol = settings.kafka_security_protocol.upper()
    if protocol.startswith("SASL_"):
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password.reveal(),
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=ssl_context(settings) if protocol == "SASL_SSL" else None,
        )
    if protocol == "SSL":
        return faust.SSLCredentials(ssl_context(settings))
    return None
