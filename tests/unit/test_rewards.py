"""Rewards: the claim decision (caps, expiry, stock codes, points), the stock stream's decisions
and fold, and the participant-side fold (claims table, counters)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest

import projections.participants.features  # noqa: F401 - registers the folds
import services.participants.features  # noqa: F401 - registers the deciders
from projections.participants.projector import APPLIED, ParticipantRow, apply_commit
from projections.rewards.projector import CONFLICT, RELEASED, RESERVED, CodeRow, apply_stock
from schemas.events import (
    REWARD,
    Causation,
    Commit,
    Event,
    ParticipantRegistered,
    PointsDeducted,
    RewardClaimed,
    RewardCodeReleased,
    RewardCodeReserved,
)
from services.participants.commands import ClaimReward, from_body
from services.participants.domain import (
    Env,
    InsufficientPoints,
    ParticipantState,
    Refused,
    UnknownDefinition,
    decide,
)
from services.participants.engine import Catalog
from services.participants.features.rewards import expired, inventory
from services.rewards.domain import (
    Held,
    OutOfStock,
    StockState,
    decide_release,
    decide_reserve,
)

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
AT = "2026-03-01T12:00:00Z"


def reward(rid: str = "r1", **body: Any) -> tuple[str, str, str, dict[str, Any]]:
    return ("reward", rid, f"code-{rid}", {"name": rid.upper(), "type": "coupon", **body})


def env(*rewards: tuple[str, str, str, dict[str, Any]], now: datetime = NOW) -> Env:
    ids = itertools.count(1)
    return Env(new_id=lambda: f"id-{next(ids)}", now=now, catalog=Catalog.of(rewards))


def state(balance: int = 0, claims: dict[str, int] | None = None) -> ParticipantState:
    sections = {"reward_claims": claims} if claims else {}
    return ParticipantState(version=3, balance=balance, total_earned=balance, sections=sections)


def claim(rid: str = "r1", deduct: bool = False, code: str | None = None) -> ClaimReward:
    return ClaimReward("u1", rid, deduct, claim_id="c1", code_value=code)


# --------------------------------------------------------------------------------------------
# The participant decision


def test_a_claim_with_deduction_records_the_claim_and_the_debit_in_one_decision() -> None:
    events = decide(state(100), claim(deduct=True), env(reward(points_cost=30)))
    assert events == [
        RewardClaimed("c1", "r1", "R1", "coupon", None, 30),
        PointsDeducted("id-1", 30, 70, "reward:code-r1", {"reward_id": "r1", "claim_id": "c1"}),
    ]


def test_without_deduction_or_without_a_cost_nothing_is_debited() -> None:
    free = decide(state(0), claim(deduct=False), env(reward(points_cost=30)))
    assert free == [RewardClaimed("c1", "r1", "R1", "coupon", None, 0)]
    no_cost = decide(state(0), claim(deduct=True), env(reward()))
    assert no_cost == [RewardClaimed("c1", "r1", "R1", "coupon", None, 0)]


def test_insufficient_points_is_refused_with_the_deduct_message() -> None:
    with pytest.raises(
        InsufficientPoints, match=r"^Insufficient points. Available: 20, requested: 30$"
    ):
        decide(state(20), claim(deduct=True), env(reward(points_cost=30)))


def test_the_per_participant_cap_defaults_to_one() -> None:
    with pytest.raises(Refused, match="cap reached: at most 1 per participant"):
        decide(state(claims={"r1": 1}), claim(), env(reward()))


def test_a_higher_cap_allows_more_claims_until_reached() -> None:
    cat = env(reward(max_claims_per_user=3))
    assert decide(state(claims={"r1": 2}), claim(), cat)
    with pytest.raises(Refused, match="cap reached: at most 3"):
        decide(state(claims={"r1": 3}), claim(), env(reward(max_claims_per_user=3)))
    # claims of another reward do not count
    assert decide(state(claims={"r2": 5}), claim(), env(reward()))


def test_unknown_or_inactive_rewards_are_not_found() -> None:
    with pytest.raises(UnknownDefinition, match="Reward not found: nope"):
        decide(state(), claim("nope"), env(reward()))


def test_an_expired_reward_is_refused() -> None:
    with pytest.raises(Refused, match="expired"):
        decide(state(), claim(), env(reward(expires_at="2026-03-01T12:00:00Z")))
    assert decide(state(), claim(), env(reward(expires_at="2026-03-01T12:00:01Z")))
    assert expired({"expires_at": "2026-02-01T00:00:00"}, NOW)  # naive means UTC
    assert not expired({"expires_at": None}, NOW)


def test_a_reward_with_an_inventory_needs_a_reserved_code() -> None:
    cat = env(reward(codes=["A", "B"]))
    with pytest.raises(Refused, match="through its stock"):
        decide(state(), claim(), cat)
    [event] = decide(state(), claim(code="B"), env(reward(codes=["A", "B"])))
    assert isinstance(event, RewardClaimed) and event.code_value == "B"


def test_an_unknown_participant_is_created_by_a_free_claim() -> None:
    events = decide(None, claim(), env(reward()))
    assert events == [
        ParticipantRegistered(auto_created=True),
        RewardClaimed("c1", "r1", "R1", "coupon", None, 0),
    ]


def test_the_claim_id_is_made_when_the_command_has_none() -> None:
    [event] = decide(state(), ClaimReward("u1", "r1"), env(reward()))
    assert isinstance(event, RewardClaimed) and event.claim_id == "id-1"


def test_inventory_is_the_distinct_codes_in_order_and_none_without_codes() -> None:
    assert inventory({"codes": ["b", "a", "b"]}) == ["b", "a"]
    assert inventory({"codes": []}) == []
    assert inventory({}) is None


def test_inbound_bodies_build_the_claim_command() -> None:
    command = from_body("rewards.claim", {"participant_id": "u1", "reward_id": "r1"})
    assert command == ClaimReward("u1", "r1", False)


# --------------------------------------------------------------------------------------------
# Stock stream decisions


def test_reserve_takes_the_first_free_code_in_inventory_order() -> None:
    stock = StockState(4, (Held("A", "c0", "u0"),))
    events, held = decide_reserve(stock, ["A", "B", "C"], "Mug", "c1", "u1", "key-1")
    assert events == [RewardCodeReserved("c1", "u1", "B", "key-1")]
    assert held == Held("B", "c1", "u1", "key-1")


def test_reserve_refuses_when_every_code_is_held() -> None:
    stock = StockState(2, (Held("A", "c0"), Held("B", "c1")))
    with pytest.raises(OutOfStock, match="Reward out of stock: Mug"):
        decide_reserve(stock, ["A", "B"], "Mug", "c2", "u2", None)
    with pytest.raises(OutOfStock):
        decide_reserve(StockState(), [], "Mug", "c2", "u2", None)


def test_a_retry_with_the_same_key_reuses_its_reservation() -> None:
    stock = StockState(1, (Held("A", "c0", "u1", "key-1"),))
    assert decide_reserve(stock, ["A", "B"], "Mug", "c9", "u1", "key-1") == (
        [],
        Held("A", "c0", "u1", "key-1"),
    )
    # the same key from another participant is another request
    events, held = decide_reserve(stock, ["A", "B"], "Mug", "c9", "u2", "key-1")
    assert held.code_value == "B" and events
    # without a key nothing is reused
    assert decide_reserve(stock, ["A", "B"], "Mug", "c9", "u1", None)[1].code_value == "B"


def test_release_gives_back_only_the_claims_own_code() -> None:
    stock = StockState(1, (Held("A", "c0", "u1"),))
    assert decide_release(stock, "c0", "A") == [RewardCodeReleased("c0", "A")]
    assert decide_release(stock, "c1", "A") == []  # someone else's now
    assert decide_release(StockState(2), "c0", "A") == []  # already released


def test_a_released_code_is_free_again() -> None:
    stock = StockState(2, (Held("B", "c1"),))  # A was reserved and released
    assert decide_reserve(stock, ["A", "B"], "Mug", "c2", "u2", None)[1].code_value == "A"


# --------------------------------------------------------------------------------------------
# Stock stream fold


def stock_commit(version: int, *events: Event, cid: str = "s") -> Commit:
    return Commit(cid, "t", "r1", version, AT, Causation("rewards.reserve"), events, REWARD)


def test_the_stock_fold_reserves_and_releases_codes_with_the_version_check() -> None:
    status, row, changed = apply_stock(
        None, {}, stock_commit(0, RewardCodeReserved("c1", "u1", "A", "k1"))
    )
    assert status == "applied" and row is not None
    assert (row.version, row.reserved_count) == (1, 1)
    assert changed == [CodeRow("t", "r1", "A", RESERVED, "c1", "u1", "k1", AT)]
    codes = {"A": changed[0]}

    assert apply_stock(row, codes, stock_commit(0, RewardCodeReleased("c1", "A")))[0] == CONFLICT

    status, after, released = apply_stock(
        row, codes, stock_commit(1, RewardCodeReleased("c1", "A"))
    )
    assert status == "applied" and after is not None
    assert (after.version, after.reserved_count) == (2, 0)
    assert released == [CodeRow("t", "r1", "A", RELEASED, "c1", "u1", "k1", AT)]
    assert codes["A"].status == RESERVED  # the input is not changed


def test_releasing_a_code_that_is_not_held_changes_nothing_but_the_version() -> None:
    status, row, changed = apply_stock(None, {}, stock_commit(0, RewardCodeReleased("c1", "A")))
    assert status == "applied" and row is not None
    assert (row.version, row.reserved_count, changed) == (1, 0, [])


# --------------------------------------------------------------------------------------------
# Participant fold


def participant_commit(version: int, *events: Event) -> Commit:
    return Commit("c", "t", "u1", version, AT, Causation("rewards.claim"), events)


def test_a_claim_counts_on_the_row_and_its_sections_and_writes_a_claim_row() -> None:
    row = ParticipantRow("t", "u1", version=1, balance=100, total_earned=100)
    verdict = apply_commit(
        row,
        participant_commit(
            1,
            RewardClaimed("c1", "r1", "Mug", "physical", "A", 30),
            PointsDeducted("tx", 30, 70, "reward:mug"),
        ),
        key_used=False,
    )
    assert verdict.status == APPLIED and verdict.row is not None
    assert verdict.row.rewards_claimed == 1
    assert verdict.row.sections["reward_claims"] == {"r1": 1}
    assert (verdict.row.balance, verdict.row.total_spent) == (70, 30)
    claims = [w for w in verdict.writes if w.statement == "reward_claim_insert"]
    assert [w.params for w in claims] == [
        ("t", "u1", 2, 0, "c1", "r1", "Mug", "physical", "A", 30, AT)
    ]
