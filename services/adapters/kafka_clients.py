"""The keyword arguments every Kafka client Gamify makes shares: TLS and SASL, in one place."""

from __future__ import annotations

import ssl
from typing import Any

from aiokafka.helpers import create_ssl_context

from services.adapters.kafka_topics import TopicPolicy, ensure_topics
from services.config import ConfigError, KafkaSecurity, Settings


def client_options(security: KafkaSecurity) -> dict[str, Any]:
    """Keyword arguments for AIOKafkaProducer, AIOKafkaConsumer and AIOKafkaAdminClient.

    Returns ``security_protocol`` always; ``ssl_context`` with SSL/SASL_SSL (the CA file, or the
    system's trusted CAs when none is set; the client certificate when one is set; hostname
    check as configured); ``sasl_mechanism``, ``sasl_plain_username`` and
    ``sasl_plain_password`` with SASL_* (aiokafka uses the ``plain`` names for SCRAM too).
    ``bootstrap_servers`` and per-client options (client id, acks...) stay at the call site.

    Raises ConfigError naming the variable when a TLS file cannot be loaded.
    """
    options: dict[str, Any] = {"security_protocol": security.security_protocol}
    if security.uses_tls:
        options["ssl_context"] = ssl_context(security)
    if security.uses_sasl:
        options["sasl_mechanism"] = security.sasl_mechanism
        options["sasl_plain_username"] = security.sasl_username
        options["sasl_plain_password"] = security.sasl_password
    return options


def ssl_context(security: KafkaSecurity) -> ssl.SSLContext:
    """A client TLS context: verifies the broker's certificate, optionally presents our own."""
    try:
        context = create_ssl_context(cafile=security.ssl_cafile)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"GAMIFY_KAFKA_SSL_CAFILE={security.ssl_cafile}: cannot load the CA: {_reason(exc)}"
        ) from None
    if security.ssl_certfile is not None:
        try:
            context.load_cert_chain(
                security.ssl_certfile, security.ssl_keyfile, security.ssl_key_password
            )
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"GAMIFY_KAFKA_SSL_CERTFILE={security.ssl_certfile} / GAMIFY_KAFKA_SSL_KEYFILE="
                f"{security.ssl_keyfile}: cannot load the client certificate: {_reason(exc)}"
            ) from None
    context.check_hostname = security.ssl_check_hostname
    return context


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def topic_policy(settings: Settings) -> TopicPolicy:
    """Replication and retention rules of Gamify's topics, from the settings."""
    return TopicPolicy(
        replication_factor=settings.kafka_replication_factor,
        min_insync_replicas=settings.kafka_min_insync_replicas,
        allow_finite_retention=settings.kafka_allow_finite_retention,
    )


async def ensure_gamify_topics(
    settings: Settings, *, events: bool = True, inbound: bool = False
) -> None:
    """Create or check the topics a process uses: participant events, and inbound + dead letters.

    Raises TopicConfigError (participant events or dead letters could lose records), ConfigError
    (TLS files) or a KafkaError (broker unreachable).
    """
    partitions = {}
    if events:
        partitions[settings.participant_events_topic] = settings.kafka_partitions
    if inbound:
        partitions[settings.inbound_topic] = settings.kafka_partitions
        partitions[settings.dead_letter_topic] = settings.kafka_partitions
    await ensure_topics(
        settings.kafka_bootstrap_servers or "",
        partitions,
        # The inbound topic keeps the broker's retention: once processed, a command's outcome
        # is in participant events.
        history={settings.participant_events_topic, settings.dead_letter_topic},
        policy=topic_policy(settings),
        connection=client_options(settings.kafka_security),
    )
