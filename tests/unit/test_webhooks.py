"""Webhooks, the pure parts: the log -> payload mapping, ids, signatures, retries, address checks."""

from __future__ import annotations

import hashlib
import hmac
import socket

import pytest

from projections.webhooks.mapping import EVENT_TYPES, event_id, subscribed, webhook_events
from projections.webhooks.outbox import delivery_id
from schemas.events import (
    DEFINITION,
    BadgeEarned,
    Causation,
    ChallengeCompleted,
    ChallengeProgressed,
    Commit,
    DefinitionCreated,
    EventTracked,
    ParticipantRegistered,
    PointsAwarded,
    PointsDeducted,
    PointsExpired,
    RewardClaimed,
    StreakBroken,
    StreakExtended,
    TierChanged,
)
from services.config import ConfigError, Settings, WebhookSettings
from services.webhooks.addresses import PublicResolver, RefusedAddress, check_url, is_public
from services.webhooks.sender import retry_delay, verdict
from services.webhooks.signing import delivery_headers, signature, verify

AT = "2026-02-14T10:00:00Z"


def commit(*events: object, stream: str = "participant", commit_id: str = "c-1") -> Commit:
    return Commit(
        commit_id=commit_id,
        tenant="acme",
        participant_id="alice",
        expected_version=0,
        recorded_at=AT,
        causation=Causation(command="points.award"),
        events=tuple(events),  # type: ignore[arg-type]
        stream=stream,
    )


def test_every_webhook_event_type_maps_from_its_log_event_with_the_participant() -> None:
    found = webhook_events(
        commit(
            ParticipantRegistered(display_name="Alice", auto_created=True),
            PointsAwarded(transaction_id="t1", amount=10, balance_after=10, reason="r"),
            PointsDeducted(transaction_id="t2", amount=3, balance_after=7),
            PointsExpired(
                transaction_id="t3",
                lot_id="t1",
                amount=4,
                balance_after=3,
                expires_at="2026-02-14T00:00:00Z",
            ),
            TierChanged(
                code="gold", name="Gold", level=2, previous_code="silver", previous_level=1
            ),
            BadgeEarned(code="b", name="B", rarity="rare"),
            StreakExtended(code="daily", period="2026-02-14", count=3, longest=3, new_record=True),
            StreakBroken(code="daily", previous_count=3),
            ChallengeCompleted(code="ch", window="2026-W07"),
            RewardClaimed(
                claim_id="k",
                reward_id="r",
                reward_name="Mug",
                reward_type="physical",
                points_deducted=5,
            ),
        )
    )
    assert [e.type for e in found] == list(EVENT_TYPES)
    assert all(e.data["participant_id"] == "alice" for e in found)
    assert all(e.tenant_id == "acme" and e.occurred_at == AT for e in found)
    by_type = {e.type: e.data for e in found}
    assert by_type["points.awarded"] == {
        "participant_id": "alice",
        "transaction_id": "t1",
        "amount": 10,
        "balance_after": 10,
        "reason": "r",
        "metadata": {},
    }
    assert by_type["tier.changed"]["tier"] == {
        "code": "gold",
        "name": "Gold",
        "level": 2,
        "color": None,
    }
    assert by_type["tier.changed"]["previous_tier"] == {"code": "silver", "level": 1}
    assert by_type["badge.earned"]["badge"] == {"code": "b", "name": "B", "rarity": "rare"}
    assert (
        by_type["streak.extended"]["count"] == 3 and by_type["streak.broken"]["previous_count"] == 3
    )
    assert by_type["challenge.completed"] == {
        "participant_id": "alice",
        "challenge_code": "ch",
        "window": "2026-W07",
    }
    assert by_type["reward.claimed"]["reward_id"] == "r"
    assert by_type["participant.created"]["auto_created"] is True
    assert set(found[0].as_json()) == {"id", "type", "occurred_at", "tenant_id", "data"}


def test_events_without_a_webhook_and_other_streams_give_none() -> None:
    assert webhook_events(commit(EventTracked(event_name="x"), ChallengeProgressed(code="c"))) == []
    created = DefinitionCreated(kind="badge", id="1", code="b")
    assert webhook_events(commit(created, stream=DEFINITION)) == []


def test_ids_are_stable_per_log_event_and_distinct_across_events() -> None:
    one = commit(EventTracked(event_name="x"), PointsAwarded(amount=1), PointsAwarded(amount=2))
    first, again = webhook_events(one), webhook_events(one)
    assert [e.id for e in first] == [e.id for e in again]
    assert first[0].id == event_id("c-1", 1, "points.awarded") != first[1].id
    other = webhook_events(commit(PointsAwarded(amount=1), commit_id="c-2"))
    assert other[0].id != first[0].id
    assert (
        delivery_id(first[0].id, "w1")
        == delivery_id(first[0].id, "w1")
        != delivery_id(first[0].id, "w2")
    )


def test_a_subscription_receives_its_types_or_every_type_with_a_star() -> None:
    assert subscribed(["points.awarded"], "points.awarded")
    assert not subscribed(["points.awarded"], "badge.earned")
    assert subscribed(["*"], "badge.earned")


def test_the_signature_covers_the_timestamp_and_the_body() -> None:
    body, secret = b'{"id":"1"}', "s3cret-0123456789"
    expected = hmac.new(secret.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature(secret, body, 1700000000) == f"sha256={expected}"
    assert verify(secret, body, "1700000000", f"sha256={expected}")
    assert not verify(secret, body, "1700000001", f"sha256={expected}")
    assert not verify(secret, body + b" ", "1700000000", f"sha256={expected}")
    assert not verify("other-secret-000000", body, "1700000000", f"sha256={expected}")
    assert not verify(secret, body, "not-a-time", f"sha256={expected}")
    bricqs = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = delivery_headers(
        secret=secret,
        body=body,
        timestamp=1700000000,
        event_type="badge.earned",
        delivery_id="d1",
        tenant="acme",
    )
    assert headers["X-Bricqs-Signature"] == f"sha256={bricqs}"
    assert headers["X-Gamify-Signature"] == f"sha256={expected}"
    assert headers["X-Gamify-Timestamp"] == "1700000000"
    assert headers["X-Gamify-Event"] == headers["X-Bricqs-Event"] == "badge.earned"
    assert headers["X-Gamify-Delivery"] == headers["X-Bricqs-Delivery"] == "d1"
    assert headers["X-Bricqs-Tenant"] == "acme"


def test_five_attempts_back_off_exponentially_over_about_thirty_minutes_then_fail() -> None:
    settings = WebhookSettings()
    delays = [retry_delay(n, settings) for n in range(1, settings.max_attempts)]
    assert delays == [120, 240, 480, 960] and sum(delays) == 1800
    assert verdict(1, 500, 0.0, settings) == ("pending", 120.0)
    assert verdict(2, None, 10.0, settings) == ("pending", 250.0)
    assert verdict(5, 500, 0.0, settings) == ("failed", 0.0)
    assert verdict(5, 204, 0.0, settings) == ("delivered", 0.0)
    assert verdict(1, 302, 0.0, settings)[0] == "pending"  # redirects are not followed


def test_webhook_settings_come_from_the_environment() -> None:
    found = Settings.from_env(
        {
            "GAMIFY_WEBHOOKS_MAX_ATTEMPTS": "3",
            "GAMIFY_WEBHOOKS_BACKOFF_MS": "500",
            "GAMIFY_WEBHOOKS_BACKOFF_FACTOR": "3",
            "GAMIFY_WEBHOOKS_TIMEOUT_MS": "2000",
            "GAMIFY_WEBHOOKS_CONCURRENCY": "2",
            "GAMIFY_WEBHOOKS_ALLOW_PRIVATE": "true",
        }
    ).webhooks
    assert found == WebhookSettings(3, 0.5, 3, 2.0, 2, 0.2, True)
    assert Settings.from_env({}).webhooks.allow_private is False
    with pytest.raises(ConfigError):
        Settings.from_env({"GAMIFY_WEBHOOKS_ALLOW_PRIVATE": "maybe"})


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_public(address)
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(RefusedAddress):
        check_url(f"http://{host}/hook", allow_private=False)
    assert check_url(f"http://{host}/hook", allow_private=True)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "file:///etc/passwd",
        "http:///nohost",
        "http://u:p@example.com/",
        "http://localhost:8080/",
        "http://api.localhost/",
    ],
)
def test_only_http_urls_of_a_host_without_credentials_are_allowed(url: str) -> None:
    with pytest.raises(RefusedAddress):
        check_url(url, allow_private=False)


def test_public_addresses_and_names_pass_the_static_check() -> None:
    assert is_public("93.184.216.34") and is_public("2606:4700::1111")
    assert check_url("https://hooks.example.com/x", allow_private=False)
    assert check_url("http://93.184.216.34:8080/x", allow_private=False)


class FixedResolver:
    """A resolver answering fixed addresses (what a rebinding DNS server could answer)."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[dict[str, object]]:
        return [
            {"hostname": host, "host": a, "port": port, "family": family, "proto": 0, "flags": 0}
            for a in self.addresses
        ]

    async def close(self) -> None:
        return None


async def test_a_name_that_resolves_to_any_private_address_is_refused_at_send_time() -> None:
    public = PublicResolver(FixedResolver("93.184.216.34"))  # type: ignore[arg-type]
    assert [r["host"] for r in await public.resolve("hooks.example.com", 443)] == ["93.184.216.34"]
    rebinding = PublicResolver(FixedResolver("93.184.216.34", "127.0.0.1"))  # type: ignore[arg-type]
    with pytest.raises(RefusedAddress, match="127.0.0.1"):
        await rebinding.resolve("hooks.example.com", 443)


def test_every_mapped_payload_satisfies_the_published_webhook_schema() -> None:
    import json
    from pathlib import Path

    import yaml
    from jsonschema import Draft202012Validator

    root = Path(__file__).resolve().parents[2]
    schema = json.loads((root / "schemas/json/webhook_event.v1.json").read_text())
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    assert schema["properties"]["type"]["enum"] == list(EVENT_TYPES)
    found = webhook_events(
        commit(
            ParticipantRegistered(),
            PointsAwarded(amount=1),
            PointsDeducted(amount=1),
            TierChanged(code="g", name="G", level=1),
            TierChanged(code="g", name="G", level=2, previous_code="s", previous_level=1),
            BadgeEarned(code="b", name="B"),
            StreakExtended(code="s"),
            StreakBroken(code="s"),
            ChallengeCompleted(code="c"),
            RewardClaimed(reward_id="r", code_value="X"),
        )
    )
    for event in found:
        assert list(validator.iter_errors(event.as_json())) == [], event.type
    wrong = {**found[1].as_json(), "data": {**found[1].data, "extra": 1}}
    assert list(validator.iter_errors(wrong))
    doc = yaml.safe_load((root / "schemas/asyncapi.yaml").read_text())
    message = doc["components"]["messages"]["webhookEvent"]
    for example in message["examples"]:
        assert list(validator.iter_errors(example["payload"])) == []
    headers = delivery_headers(
        secret="s" * 16, body=b"{}", timestamp=1, event_type="x", delivery_id="d", tenant="t"
    )
    documented = message["headers"]
    assert (
        set(documented["required"])
        == set(documented["properties"])
        == set(headers) - {"Content-Type", "User-Agent"}
    )
    assert list(Draft202012Validator(documented).iter_errors(headers)) == []
