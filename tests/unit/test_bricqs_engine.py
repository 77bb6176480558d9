"""Issue 12's pure parts: the tier multiplier, next and pending tiers, who an evaluation reaches,
the events' new fields and their upcasters, inbound award batches, the reference parser."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from itertools import count
from typing import Any

import orjson
import pytest

import services.participants.features  # noqa: F401 - registers the deciders
from schemas.codec import decode_event
from schemas.events import BadgeEarned, PointsAwarded, TierChanged
from schemas.sections import fold
from services.inbound.messages import InboundBatch, InboundCommand, Rejected, parse
from services.participants.commands import (
    AssignTier,
    AwardBadge,
    AwardPoints,
    EvaluateParticipant,
    TrackEvent,
)
from services.participants.domain import Env, ParticipantState, decide
from services.participants.engine import Catalog, multiply, tier_multiplier
from services.participants.features import tiers
from services.participants.features.evaluation import evaluation_key, qualifies, unevaluable
from tests.reference_shapes import json_blocks, participants_examples, shape_differences

NOW = datetime(2026, 2, 14, 10, 0, tzinfo=UTC)
AT = "2026-02-14T10:00:00Z"


def tier(code: str, level: int, points: int, **extra: Any) -> tuple[str, str, str, dict[str, Any]]:
    body = {"name": code.title(), "level": level, "criteria_config": {"min_points": points}}
    return ("tier", f"id-{code}", code, {**body, **extra})


def env(*definitions: tuple[str, str, str, dict[str, Any]]) -> Env:
    ids = count(1)
    return Env(new_id=lambda: f"id{next(ids)}", now=NOW, catalog=Catalog.of(definitions))


def holding(code: str, level: int, earned: int) -> ParticipantState:
    sections = fold(TierChanged(code, code.title(), level), {}, AT)
    return ParticipantState(version=3, balance=earned, total_earned=earned, sections=sections)


def awarded(events: list[Any]) -> list[PointsAwarded]:
    return [e for e in events if isinstance(e, PointsAwarded)]


# --------------------------------------------------------------------------------------------
# The tier multiplier


@pytest.mark.parametrize(
    ("amount", "factor", "credited"),
    [(33, "1.5", 49), (10, "1.1", 11), (3, "1.25", 3), (7, "2", 14), (1_000_000, "1.3", 1_300_000)],
)
def test_multiplying_is_exact_decimal_arithmetic_floored(
    amount: int, factor: str, credited: int
) -> None:
    assert multiply(amount, Decimal(factor)) == credited


def test_the_multiplier_is_the_held_tier_s_and_none_without_one() -> None:
    catalog = env(tier("gold", 2, 100, multiplier=1.5), tier("silver", 1, 10)).catalog
    assert tier_multiplier(catalog, holding("gold", 2, 100).sections) == Decimal("1.5")
    assert tier_multiplier(catalog, holding("silver", 1, 10).sections) is None
    assert tier_multiplier(catalog, {}) is None
    assert tier_multiplier(catalog, holding("retired", 3, 500).sections) is None  # inactive
    one = env(tier("gold", 2, 100, multiplier=1)).catalog
    assert tier_multiplier(one, holding("gold", 2, 100).sections) is None


def test_a_direct_award_is_multiplied_by_the_tier_held_before_it_and_records_both() -> None:
    e = env(tier("silver", 1, 0, multiplier=1.25), tier("gold", 2, 100, multiplier=2))
    events = decide(holding("silver", 1, 90), AwardPoints("u1", 30, expires_at=AT), e)
    award = awarded(events)[0]
    assert (award.amount, award.base_amount, award.multiplier) == (37, 30, "1.25")
    assert (award.balance_after, award.expires_at) == (127, AT)
    assert [t.code for t in events if isinstance(t, TierChanged)] == ["gold"]  # x2 from next one


def test_earn_rule_points_are_multiplied_and_challenge_rewards_are_not() -> None:
    e = env(
        tier("gold", 2, 0, multiplier=1.5),
        ("rule", "id-r", "r", {"name": "r", "event_name": "buy", "points": 5}),
        (
            "challenge",
            "id-c",
            "c",
            {
                "name": "c",
                "objectives": [{"id": "o", "event_name": "buy", "count": 1}],
                "rewards": {"points": 100},
            },
        ),
    )
    events = decide(holding("gold", 2, 0), TrackEvent("u1", "buy", {}, AT), e)
    by_reason = {a.reason: (a.amount, a.base_amount, a.multiplier) for a in awarded(events)}
    assert by_reason == {"rule:r": (7, 5, "1.5"), "challenge:c": (100, 100, None)}


# --------------------------------------------------------------------------------------------
# Next tier, pending tier, evaluation


def test_next_tier_is_never_reached_and_pending_is_reached_but_not_held() -> None:
    catalog = env(tier("bronze", 1, 10), tier("gold", 2, 100), tier("plat", 3, 1000)).catalog
    assert tiers.next_tier(catalog, None, 500)["code"] == "plat"  # type: ignore[index]
    assert tiers.pending(catalog, None, 500)["code"] == "gold"  # type: ignore[index]
    assert tiers.next_tier(catalog, 2, 500)["code"] == "plat"  # type: ignore[index]
    assert tiers.pending(catalog, 2, 500) is None
    assert tiers.next_tier(catalog, None, 5)["code"] == "bronze"  # type: ignore[index]
    assert tiers.next_tier(catalog, 1, 5000) is None and tiers.pending(catalog, 3, 5000) is None


def test_who_qualifies_for_a_tier_or_a_badge() -> None:
    gold = {"code": "gold", "level": 2, "criteria_config": {"min_points": 100}}
    assert qualifies("tier", gold, 100, {})
    assert not qualifies("tier", gold, 99, {})
    assert qualifies("tier", gold, 100, holding("silver", 1, 100).sections)
    assert not qualifies("tier", gold, 500, holding("gold", 2, 500).sections)
    assert not qualifies("tier", gold, 500, holding("vip", 5, 500).sections)  # higher, manual
    badge = {"code": "b", "criteria_config": {"min_points": 10}}
    assert qualifies("badge", badge, 10, {})
    earned = fold(BadgeEarned("b", "B"), {}, AT)
    assert not qualifies("badge", badge, 10, earned)
    assert not qualifies("streak", badge, 10, {})


def test_what_cannot_be_evaluated_says_why() -> None:
    assert unevaluable("tier", {"code": "t"}, True) is None
    assert "inactive" in (unevaluable("tier", {"code": "t"}, False) or "")
    assert "manual" in (unevaluable("badge", {"code": "b", "award_type": "manual"}, True) or "")
    assert "criteria" in (unevaluable("badge", {"code": "b"}, True) or "")
    assert "only tiers and badges" in (unevaluable("reward", {"code": "r"}, True) or "")
    assert evaluation_key("d-1", 3) == "evaluate:d-1:3"


def test_evaluating_a_participant_runs_the_consequences_and_never_creates_one() -> None:
    e = env(
        tier("gold", 2, 100),
        ("badge", "id-b", "b", {"name": "B", "criteria_config": {"min_points": 50}}),
    )
    known = ParticipantState(version=1, balance=120, total_earned=120)
    events = decide(known, EvaluateParticipant("u1"), e)
    assert sorted(type(x).__name__ for x in events) == ["BadgeEarned", "TierChanged"]
    assert decide(None, EvaluateParticipant("u1"), e) == []
    assert (
        decide(holding("gold", 2, 120), EvaluateParticipant("u1"), env(tier("gold", 2, 100))) == []
    )


# --------------------------------------------------------------------------------------------
# What the events record, and how older records read


def test_badge_metadata_and_tier_reason_are_recorded() -> None:
    e = env(tier("vip", 9, 10**9, award_type="manual"), ("badge", "id-b", "b", {"name": "B"}))
    badge = decide(None, AwardBadge("u1", "b", {"campaign": "spring"}), e)[-1]
    assert isinstance(badge, BadgeEarned) and badge.metadata == {"campaign": "spring"}
    assigned = decide(None, AssignTier("u1", "vip", "VIP promotion"), e)[-1]
    assert isinstance(assigned, TierChanged) and assigned.reason == "VIP promotion"


def test_older_event_versions_read_as_today_s_events() -> None:
    old_award = {
        "transaction_id": "t",
        "amount": 5,
        "balance_after": 5,
        "reason": None,
        "metadata": {},
    }
    assert decode_event({"type": "PointsAwarded", "version": 2, "data": old_award}) == (
        PointsAwarded("t", 5, 5, None, {}, base_amount=5, multiplier=None, expires_at=None)
    )
    old_tier = {
        "code": "g",
        "name": "G",
        "level": 1,
        "color": None,
        "previous_code": None,
        "previous_level": None,
        "manual": True,
    }
    assert decode_event({"type": "TierChanged", "version": 1, "data": old_tier}).reason is None  # type: ignore[attr-defined]
    old_badge = {"code": "b", "name": "B", "rarity": None, "manual": True}
    got = decode_event({"type": "BadgeEarned", "version": 1, "data": old_badge})
    assert got == BadgeEarned("b", "B", None, True, {})


# --------------------------------------------------------------------------------------------
# Inbound award batches


def test_an_inbound_award_batch_parses_each_item_on_its_own() -> None:
    message = {
        "command": "points.award_batch",
        "tenant": "acme",
        "awards": [
            {
                "participant_id": "u1",
                "amount": 5,
                "idempotency_key": "k-1",
                "expires_at": "2030-01-01T02:00:00+02:00",
            },
            {"participant_id": "u2", "amount": 0},
            "nope",
            {"participant_id": "u3", "amount": 1, "idempotency_key": "bad key!"},
        ],
    }
    batch = parse(orjson.dumps(message), {"acme"}, now=NOW)
    assert isinstance(batch, InboundBatch) and len(batch.items) == 4
    first = batch.items[0]
    assert isinstance(first, InboundCommand) and first.idempotency_key == "k-1"
    assert first.command == AwardPoints("u1", 5, None, {}, "2030-01-01T00:00:00Z")
    assert [type(i).__name__ for i in batch.items[1:]] == ["Rejected"] * 3
    assert "awards[1].amount" in batch.items[1].reason  # type: ignore[union-attr]
    for awards in ([], [{"participant_id": "u1", "amount": 1}] * 101, None):
        with pytest.raises(Rejected):
            parse(orjson.dumps({**message, "awards": awards}), {"acme"}, now=NOW)


# --------------------------------------------------------------------------------------------
# The reference's examples


def test_the_reference_page_gives_the_three_answers_and_the_comparison_sees_every_key() -> None:
    examples = participants_examples()
    assert "created_at" not in examples["profile"] and "first_seen_at" not in examples["created"]
    assert set(examples["profile"]["tier"]["next_tier"]) == {
        "code",
        "name",
        "points_required",
        "points_remaining",
    }
    assert json_blocks('{\n  "a": "https://x.test/y",   // comment\n  "b": [1]\n}\n') == [
        {"a": "https://x.test/y", "b": [1]}
    ]
    profile = examples["profile"]
    assert shape_differences(profile, profile) == []
    extra = {**profile, "created_at": AT}
    assert shape_differences(profile, extra) == ["$: not in the reference ['created_at']"]
    nested = {**profile, "tier": {**profile["tier"], "next_tier": {"code": "p"}}}
    assert shape_differences(profile, nested) == [
        "$.tier.next_tier: missing ['name', 'points_remaining', 'points_required']"
    ]
    assert shape_differences(profile, {**profile, "tier": None}) != []
    assert shape_differences(profile, {**profile, "badges": [{"code": "x"}]}) != []
    assert shape_differences(profile, {**profile, "attributes": {"any": 1}}) == []  # free map
