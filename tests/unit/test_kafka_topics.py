"""What Gamify asks the Kafka admin client to create, and what it accepts on existing topics."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from aiokafka.errors import KafkaError, UnknownTopicOrPartitionError

from services.adapters.kafka_topics import (
    KEEP_FOREVER,
    OVERRIDE,
    TopicPolicy,
    described_configs,
    new_topics,
    refusal,
    replication_warnings,
    retention_problems,
    topic_configs,
)

EVENTS, DLQ, INBOUND = "g.participant-events", "g.inbound-dlq", "g.inbound"


def test_history_topics_keep_everything_with_the_configured_replication() -> None:
    topics = new_topics(
        {EVENTS: 6, DLQ: 6, INBOUND: 3},
        TopicPolicy(replication_factor=3, min_insync_replicas=2),
        history={EVENTS, DLQ},
    )
    asked = {t.name: (t.num_partitions, t.replication_factor, t.topic_configs) for t in topics}
    forever = {
        "retention.ms": "-1",
        "retention.bytes": "-1",
        "cleanup.policy": "delete",
        "min.insync.replicas": "2",
    }
    assert asked == {
        EVENTS: (6, 3, forever),
        DLQ: (6, 3, forever),
        INBOUND: (3, 3, {"min.insync.replicas": "2"}),  # the broker's retention applies
    }


def test_defaults_suit_a_one_broker_cluster() -> None:
    assert topic_configs(TopicPolicy(), keeps_history=True) == {
        **KEEP_FOREVER,
        "min.insync.replicas": "1",
    }
    (topic,) = new_topics({EVENTS: 1}, TopicPolicy(), history={EVENTS})
    assert topic.replication_factor == 1


KEPT = {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"retention.ms": "604800000"}, "retention.ms=604800000 lets Kafka delete"),
        ({"retention.bytes": "1073741824"}, "retention.bytes=1073741824 lets Kafka delete"),
        ({"cleanup.policy": "compact"}, "cleanup.policy=compact compacts"),
        ({"cleanup.policy": "delete,compact"}, "cleanup.policy=delete,compact compacts"),
        ({"retention.ms": None}, "retention.ms is not reported by the broker"),
    ],
)
def test_settings_that_lose_commits_are_problems(
    change: dict[str, str | None], reason: str
) -> None:
    configs = {k: v for k, v in {**KEPT, **change}.items() if v is not None}
    problems = retention_problems(EVENTS, configs)
    assert len(problems) == 1
    assert reason in problems[0]


def test_kept_history_has_no_problems() -> None:
    assert retention_problems(EVENTS, {**KEPT, "min.insync.replicas": "2"}) == []


def test_the_refusal_is_one_line_naming_setting_fix_and_override() -> None:
    message = refusal(EVENTS, retention_problems(EVENTS, {**KEPT, "retention.ms": "604800000"}))
    assert "\n" not in message
    assert "retention.ms=604800000" in message
    assert (
        f"--entity-name {EVENTS} --add-config retention.ms=-1,retention.bytes=-1,"
        "cleanup.policy=delete" in message
    )
    assert f"{OVERRIDE}=true" in message


def described(replicas: int, partitions: int = 2) -> dict[str, object]:
    return {
        "error_code": 0,
        "partitions": [
            {"partition": p, "replicas": list(range(replicas))} for p in range(partitions)
        ],
    }


def test_replication_below_the_configured_one_warns() -> None:
    policy = TopicPolicy(replication_factor=3, min_insync_replicas=2)
    warnings = replication_warnings(EVENTS, described(1), {"min.insync.replicas": "1"}, policy)
    assert warnings == [
        f"topic {EVENTS} has replication factor 1, configured 3 (GAMIFY_KAFKA_REPLICATION_FACTOR)",
        f"topic {EVENTS} has min.insync.replicas=1, configured 2 "
        "(GAMIFY_KAFKA_MIN_INSYNC_REPLICAS)",
    ]
    assert replication_warnings(EVENTS, described(3), {"min.insync.replicas": "2"}, policy) == []


def response(*resources: tuple[int, str | None, int, str, list[tuple[object, ...]]]) -> object:
    return SimpleNamespace(resources=list(resources))


def test_described_configs_reads_the_topic_entries() -> None:
    answer = response(
        (0, None, 2, "other", [("retention.ms", "1", False, 1, False, [])]),
        (0, None, 2, EVENTS, [("retention.ms", "-1", False, 1, False, []), ("x", None)]),
    )
    assert described_configs([answer], EVENTS) == {"retention.ms": "-1"}


def test_described_configs_raises_the_topic_error() -> None:
    with pytest.raises(UnknownTopicOrPartitionError):
        described_configs([response((3, "unknown", 2, EVENTS, []))], EVENTS)
    with pytest.raises(KafkaError, match="not in the answer"):
        described_configs([response()], EVENTS)
