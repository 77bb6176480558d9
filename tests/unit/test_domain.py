"""Decisions: given a participant's state and a command, the events or the error."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import services.participants.features  # noqa: F401 - registers the deciders
from schemas.events import (
    ParticipantProfileUpdated,
    ParticipantRegistered,
    PointsAwarded,
    PointsDeducted,
)
from services.participants.commands import (
    AwardPoints,
    DeductPoints,
    RegisterParticipant,
    UpdateParticipant,
)
from services.participants.domain import (
    MAX_ATTRIBUTE_BYTES,
    MAX_ATTRIBUTE_KEYS,
    AttributesTooLarge,
    Env,
    InsufficientPoints,
    ParticipantNotFound,
    ParticipantState,
    decide,
    merge_patch,
    replacement,
    same,
)

IDS = Env(new_id=lambda: "tx-1", now=datetime(2026, 2, 14, 10, tzinfo=UTC))


def test_registering_a_new_participant_records_its_profile() -> None:
    events = decide(
        None, RegisterParticipant("u1", display_name="Jane", attributes={"plan": "p"}), IDS
    )
    assert events == [ParticipantRegistered(display_name="Jane", attributes={"plan": "p"})]


def test_registering_an_existing_participant_updates_only_given_changed_fields() -> None:
    state = ParticipantState(version=3, display_name="Jane", avatar_url="a.png")
    events = decide(state, RegisterParticipant("u1", display_name="Janet", avatar_url="a.png"), IDS)
    assert events == [ParticipantProfileUpdated(changes={"display_name": "Janet"})]


def test_registering_again_with_the_same_profile_decides_nothing() -> None:
    state = ParticipantState(version=1, display_name="Jane", attributes={"a": 1})
    assert (
        decide(state, RegisterParticipant("u1", display_name="Jane", attributes={"a": 1}), IDS)
        == []
    )


def test_updating_an_unknown_participant_is_refused() -> None:
    with pytest.raises(ParticipantNotFound, match="u9"):
        decide(None, UpdateParticipant("u9", display_name="x"), IDS)


def test_updating_attributes_records_only_the_keys_set_and_removed() -> None:
    state = ParticipantState(version=1, attributes={"plan": "premium", "old": True, "keep": 1})
    events = decide(
        state,
        UpdateParticipant(
            "u1", attributes={"plan": "enterprise", "old": None, "team_id": "team_42"}
        ),
        IDS,
    )
    assert events == [
        ParticipantProfileUpdated(
            attributes_set={"plan": "enterprise", "team_id": "team_42"},
            attributes_removed=["old"],
        )
    ]


def test_a_patch_leaves_out_keys_whose_value_does_not_change() -> None:
    state = ParticipantState(version=1, display_name="Jane", attributes={"a": 1, "b": "x"})
    events = decide(
        state,
        UpdateParticipant("u1", display_name="Jane", attributes={"a": 1, "b": "y", "gone": None}),
        IDS,
    )
    assert events == [ParticipantProfileUpdated(attributes_set={"b": "y"})]


@pytest.mark.parametrize(
    "patch", [{"a": 1}, {"missing": None}, {}, None], ids=["same", "absent-null", "empty", "null"]
)
def test_a_patch_that_changes_nothing_decides_nothing(patch: dict | None) -> None:
    state = ParticipantState(version=1, display_name="Jane", attributes={"a": 1})
    command = UpdateParticipant("u1", display_name="Jane", attributes=patch)
    assert decide(state, command, IDS) == []


def test_a_patch_of_one_key_on_a_large_map_records_one_key() -> None:
    state = ParticipantState(version=1, attributes={f"k{i}": i for i in range(10_000)})
    events = decide(state, UpdateParticipant("u1", attributes={"k5": "new"}), IDS)
    assert events == [ParticipantProfileUpdated(attributes_set={"k5": "new"})]


def test_one_true_and_one_point_zero_are_different_attribute_values() -> None:
    state = ParticipantState(version=1, attributes={"a": 1, "b": 1, "c": [1]})
    events = decide(state, UpdateParticipant("u1", attributes={"a": True, "b": 1.0, "c": [1]}), IDS)
    assert events == [ParticipantProfileUpdated(attributes_set={"a": True, "b": 1.0})]
    assert same({"x": [1, {"y": None}]}, {"x": [1, {"y": None}]})
    assert not same({"x": [1]}, {"x": [True]})


def test_registering_again_replaces_the_attributes_with_a_short_delta() -> None:
    state = ParticipantState(version=1, attributes={"a": 1, "b": 2, "c": 3})
    events = decide(state, RegisterParticipant("u1", attributes={"a": 1, "b": 5, "c": 3}), IDS)
    assert events == [ParticipantProfileUpdated(attributes_set={"b": 5})]
    events = decide(state, RegisterParticipant("u1", attributes={"a": 1, "b": 2}), IDS)
    assert events == [ParticipantProfileUpdated(attributes_removed=["c"])]


@pytest.mark.parametrize("attributes", [None, {}])
def test_registering_again_with_null_or_no_attributes_clears_them_by_replacement(
    attributes: dict | None,
) -> None:
    state = ParticipantState(version=1, attributes={f"k{i}": i for i in range(1_000)})
    events = decide(state, RegisterParticipant("u1", attributes=attributes), IDS)
    assert events == [ParticipantProfileUpdated(attributes_replaced=True)]


def test_registering_again_with_a_different_map_replaces_it_when_that_is_shorter() -> None:
    state = ParticipantState(version=1, attributes={f"k{i}": i for i in range(1_000)})
    events = decide(state, RegisterParticipant("u1", attributes={"only": None}), IDS)
    assert events == [
        ParticipantProfileUpdated(attributes_replaced=True, attributes_set={"only": None})
    ]


def test_registering_again_without_attributes_leaves_them() -> None:
    state = ParticipantState(version=1, attributes={"a": 1})
    assert decide(state, RegisterParticipant("u1", display_name="J"), IDS) == [
        ParticipantProfileUpdated(changes={"display_name": "J"})
    ]
    assert (
        decide(ParticipantState(version=1), RegisterParticipant("u1", attributes=None), IDS) == []
    )


def test_attributes_may_not_grow_past_the_key_or_byte_bound() -> None:
    full = ParticipantState(version=1, attributes={f"k{i}": i for i in range(MAX_ATTRIBUTE_KEYS)})
    with pytest.raises(AttributesTooLarge, match="1001 keys"):
        decide(full, UpdateParticipant("u1", attributes={"new": 1}), IDS)
    swap = decide(full, UpdateParticipant("u1", attributes={"new": 1, "k0": None}), IDS)
    assert swap == [ParticipantProfileUpdated(attributes_set={"new": 1}, attributes_removed=["k0"])]
    big = ParticipantState(version=1, attributes={"a": "x" * (MAX_ATTRIBUTE_BYTES - 20)})
    with pytest.raises(AttributesTooLarge):
        decide(big, UpdateParticipant("u1", attributes={"b": "y" * 100}), IDS)


def test_a_first_registration_is_held_to_the_same_bound() -> None:
    too_many = {f"k{i}": i for i in range(MAX_ATTRIBUTE_KEYS + 1)}
    with pytest.raises(AttributesTooLarge):
        decide(None, RegisterParticipant("u1", attributes=too_many), IDS)


def test_a_map_over_the_bound_from_before_it_existed_may_change_and_shrink() -> None:
    legacy = ParticipantState(version=1, attributes={f"k{i}": i for i in range(5_000)})
    assert decide(legacy, UpdateParticipant("u1", attributes={"k1": "v"}), IDS)
    assert decide(legacy, UpdateParticipant("u1", attributes={"k1": None}), IDS)
    with pytest.raises(AttributesTooLarge):
        decide(legacy, UpdateParticipant("u1", attributes={"k9999": 1}), IDS)


def test_the_attribute_deltas_leave_their_inputs_untouched() -> None:
    current = {"a": 1}
    assert merge_patch(current, {"b": 2, "a": None}).set == {"b": 2}
    assert replacement(current, {}).replaced
    assert current == {"a": 1}


def test_the_first_award_creates_the_participant_in_the_same_decision() -> None:
    events = decide(None, AwardPoints("u1", 50, reason="signup"), IDS)
    assert events == [
        ParticipantRegistered(auto_created=True),
        PointsAwarded(
            transaction_id="tx-1", amount=50, balance_after=50, reason="signup", base_amount=50
        ),
    ]


def test_an_award_adds_to_the_balance() -> None:
    events = decide(ParticipantState(version=2, balance=70), AwardPoints("u1", 30), IDS)
    assert events == [
        PointsAwarded(transaction_id="tx-1", amount=30, balance_after=100, base_amount=30)
    ]


def test_a_deduct_within_the_balance_debits_it() -> None:
    events = decide(ParticipantState(version=2, balance=70), DeductPoints("u1", 70, "shop"), IDS)
    assert events == [
        PointsDeducted(transaction_id="tx-1", amount=70, balance_after=0, reason="shop")
    ]


@pytest.mark.parametrize(
    ("balance", "state"), [(30, ParticipantState(version=1, balance=30)), (0, None)]
)
def test_a_deduct_above_the_balance_is_refused_with_both_numbers(
    balance: int, state: ParticipantState | None
) -> None:
    with pytest.raises(InsufficientPoints) as caught:
        decide(state, DeductPoints("u1", 50), IDS)
    assert str(caught.value) == f"Insufficient points. Available: {balance}, requested: 50"
