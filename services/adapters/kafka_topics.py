"""Create the Kafka topics Gamify owns, and refuse topics that could lose or compact commits.

A topic that *keeps history* (participant events, dead letters) is created with
``retention.ms=-1``, ``retention.bytes=-1`` and ``cleanup.policy=delete``; every topic gets the
configured replication factor and ``min.insync.replicas``. An existing topic is never changed:
its configuration is read back (DescribeConfigs) and, for a history topic, any setting that lets
Kafka delete or compact records stops the process with a one-line TopicConfigError, unless the
operator says the history is kept another way (``allow_finite_retention``). Partition count,
replication factor and ``min.insync.replicas`` that differ from the configured ones only warn.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    KafkaError,
    TopicAlreadyExistsError,
    TopicAuthorizationFailedError,
    for_code,
)

logger = logging.getLogger(__name__)

KEEP_FOREVER = {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}
OVERRIDE = "GAMIFY_KAFKA_ALLOW_FINITE_RETENTION"
_AUTHORIZATION = (TopicAuthorizationFailedError, ClusterAuthorizationFailedError)
_warned: set[str] = set()


class TopicConfigError(RuntimeError):
    """An existing topic lets Kafka delete or compact commits; the message is one line."""


@dataclass(frozen=True, slots=True)
class TopicPolicy:
    """How Gamify creates topics and what it accepts on existing ones.

    Attributes:
        replication_factor: Replicas of each partition of a topic Gamify creates.
        min_insync_replicas: ``min.insync.replicas`` of a topic Gamify creates; with
            ``acks=all`` a write fails rather than land on fewer replicas.
        allow_finite_retention: Start even when a history topic deletes or compacts records
            (the operator keeps the history elsewhere); the problems are logged as errors.
    """

    replication_factor: int = 1
    min_insync_replicas: int = 1
    allow_finite_retention: bool = False


def topic_configs(policy: TopicPolicy, *, keeps_history: bool) -> dict[str, str]:
    """The topic configuration Gamify asks for when it creates a topic."""
    configs = {"min.insync.replicas": str(policy.min_insync_replicas)}
    if keeps_history:
        configs.update(KEEP_FOREVER)
    return configs


def new_topics(
    partitions: Mapping[str, int], policy: TopicPolicy, history: Collection[str]
) -> list[NewTopic]:
    """The CreateTopics request for ``partitions`` (topic -> count); ``history`` keep forever."""
    return [
        NewTopic(
            name,
            count,
            policy.replication_factor,
            topic_configs=topic_configs(policy, keeps_history=name in history),
        )
        for name, count in partitions.items()
    ]


def retention_problems(topic: str, configs: Mapping[str, str]) -> list[str]:
    """Why a history topic with these (described) ``configs`` could lose commits; [] if none.

    A setting the broker does not report counts as a problem: Gamify cannot know what the
    broker's default does (Apache Kafka's default ``retention.ms`` is 7 days).
    """
    problems = []
    for name, wanted in KEEP_FOREVER.items():
        value = configs.get(name)
        if value is None:
            problems.append(f"{name} is not reported by the broker (its default applies)")
        elif name == "cleanup.policy":
            if "compact" in {p.strip() for p in value.split(",")}:
                problems.append(
                    f"cleanup.policy={value} compacts it to the last commit per participant"
                )
        elif value != wanted:
            problems.append(f"{name}={value} lets Kafka delete the oldest commits")
    return problems


def refusal(topic: str, problems: Sequence[str]) -> str:
    """The one-line start-up error for a history topic with ``problems``, naming the fix."""
    fix = ",".join(f"{name}={value}" for name, value in KEEP_FOREVER.items())
    return (
        f"topic {topic} could lose events: {'; '.join(problems)}. Fix: kafka-configs.sh "
        f"--bootstrap-server <broker> --alter --entity-type topics --entity-name {topic} "
        f"--add-config {fix} (or set {OVERRIDE}=true if the history is kept elsewhere)"
    )


def replication_warnings(
    topic: str, described: Mapping[str, Any], configs: Mapping[str, str], policy: TopicPolicy
) -> list[str]:
    """Differences from the configured replication factor and ``min.insync.replicas``."""
    warnings = []
    replicas = [len(p.get("replicas") or ()) for p in described.get("partitions") or ()]
    if replicas and min(replicas) < policy.replication_factor:
        warnings.append(
            f"topic {topic} has replication factor {min(replicas)}, configured "
            f"{policy.replication_factor} (GAMIFY_KAFKA_REPLICATION_FACTOR)"
        )
    isr = configs.get("min.insync.replicas")
    if isr is not None and isr.lstrip("-").isdigit() and int(isr) < policy.min_insync_replicas:
        warnings.append(
            f"topic {topic} has min.insync.replicas={isr}, configured "
            f"{policy.min_insync_replicas} (GAMIFY_KAFKA_MIN_INSYNC_REPLICAS)"
        )
    return warnings


async def ensure_topics(
    bootstrap_servers: str,
    partitions: dict[str, int],
    *,
    history: Collection[str] = (),
    policy: TopicPolicy | None = None,
    client_id: str = "gamify-admin",
    connection: Mapping[str, Any] | None = None,
) -> None:
    """Create each topic unless it exists; check existing ones against ``policy``.

    ``partitions`` maps topic -> partition count; topics in ``history`` keep every record (see
    the module docstring). ``connection`` holds the TLS/SASL client options
    (services.adapters.kafka_clients.client_options). aiokafka returns CreateTopics errors as
    codes instead of raising, so they are read here.

    Raises:
        TopicConfigError: an existing history topic could delete or compact records.
    """
    policy = policy or TopicPolicy()
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, client_id=client_id, **(connection or {})
    )
    await admin.start()
    try:
        response = await admin.create_topics(new_topics(partitions, policy, history))
        for topic, code, *rest in response.topic_errors:
            if code == 0:
                logger.info("created topic %s with %d partitions", topic, partitions[topic])
                continue
            error = for_code(code)
            if error is TopicAlreadyExistsError or error in _AUTHORIZATION:
                exists = error is TopicAlreadyExistsError
                if not exists:
                    logger.warning(
                        "not allowed to create topic %s (%s); assuming it exists",
                        topic,
                        error.message,
                    )
                wanted = partitions[topic] if exists else None
                await _check_existing(admin, topic, wanted, topic in history, policy)
            else:
                message = rest[0] if rest else None
                raise error(f"creating topic {topic}: {message or error.message}")
    finally:
        await admin.close()


async def check_history_topic(
    bootstrap_servers: str,
    topic: str,
    *,
    policy: TopicPolicy | None = None,
    client_id: str = "gamify-admin",
    connection: Mapping[str, Any] | None = None,
) -> None:
    """Check an existing history topic without creating anything (for replay).

    A missing topic is not checked (the caller reports it). Raises TopicConfigError.
    """
    policy = policy or TopicPolicy()
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, client_id=client_id, **(connection or {})
    )
    await admin.start()
    try:
        # list_topics names no topic, so it cannot auto-create this one.
        if topic in await admin.list_topics():
            await _check_existing(admin, topic, None, True, policy)
    finally:
        await admin.close()


async def _check_existing(
    admin: AIOKafkaAdminClient,
    topic: str,
    wanted_partitions: int | None,
    keeps_history: bool,
    policy: TopicPolicy,
) -> None:
    configs = await _describe_configs(admin, topic, keeps_history, policy)
    warnings = []
    if wanted_partitions is not None:
        # Only once CreateTopics said it exists: naming a topic in a metadata request makes
        # brokers with auto-creation create it.
        described = next(iter(await admin.describe_topics([topic])), {})
        warnings = replication_warnings(topic, described, configs or {}, policy)
        found = len(described.get("partitions") or ())
        if described.get("error_code") == 0 and found != wanted_partitions:
            warnings.append(f"topic {topic} has {found} partitions, configured {wanted_partitions}")
    for warning in warnings:
        if warning not in _warned:  # a process checks its topics more than once at start
            _warned.add(warning)
            logger.warning("%s; keeping the topic as it is", warning)
    if keeps_history and configs is not None:
        problems = retention_problems(topic, configs)
        if problems and policy.allow_finite_retention:
            logger.error("%s is set: %s", OVERRIDE, refusal(topic, problems))
        elif problems:
            raise TopicConfigError(refusal(topic, problems))


async def _describe_configs(
    admin: AIOKafkaAdminClient, topic: str, keeps_history: bool, policy: TopicPolicy
) -> dict[str, str] | None:
    """The topic's configuration, or None when not allowed to read it and that is allowed."""
    try:
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        return described_configs(responses, topic)
    except KafkaError as exc:
        if not keeps_history:
            logger.warning("could not read the configuration of topic %s: %r", topic, exc)
            return None
        if policy.allow_finite_retention:
            logger.error(
                "could not read the configuration of topic %s (%s is set): %r", topic, OVERRIDE, exc
            )
            return None
        raise TopicConfigError(
            f"could not read the configuration of topic {topic} ({exc!r}), so Gamify cannot "
            f"tell whether it keeps every event. Fix: allow DescribeConfigs on the topic "
            f"(or set {OVERRIDE}=true if the history is kept elsewhere)"
        ) from None


def described_configs(responses: Sequence[Any], topic: str) -> dict[str, str]:
    """``name -> value`` of ``topic`` from DescribeConfigs responses; raises its error code."""
    for response in responses:
        for code, message, _type, name, entries in response.resources:
            if name != topic:
                continue
            if code != 0:
                raise for_code(code)(f"describing topic {topic}: {message}")
            return {entry[0]: entry[1] for entry in entries if entry[1] is not None}
    raise KafkaError(f"describing topic {topic}: not in the answer")
