"""Point expiry, pure: lots in the shared fold, spend order, the ExpirePoints decision.

Every scenario runs the decider on the state the projector folded, so the decision side
(engine.Draft) and the read side (projector.apply_commit) are checked to agree.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import services.participants.features  # noqa: F401 - registers the deciders
from projections.participants.projector import ParticipantRow, apply_commit
from schemas.events import Causation, Commit, PointsExpired, TierChanged
from schemas.sections import due_lots, open_lots
from services.adapters.read_model import participant_state
from services.participants.commands import AwardPoints, ClaimReward, DeductPoints, ExpirePoints
from services.participants.domain import Env, decide
from services.participants.engine import Catalog

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
TIERS = Catalog.of(
    [
        (
            "tier",
            "t1",
            "bronze",
            {"name": "Bronze", "level": 1, "criteria_config": {"min_points": 0}},
        ),
        (
            "tier",
            "t2",
            "gold",
            {"name": "Gold", "level": 2, "criteria_config": {"min_points": 150}},
        ),
    ]
)


class Participant:
    """Decide commands and fold their commits, as the handler and the projector do."""

    def __init__(self, catalog: Catalog | None = None) -> None:
        self.row: ParticipantRow | None = None
        self.catalog = catalog or Catalog()
        self.ids = (f"tx{n}" for n in itertools.count(1))
        self.writes: list[Any] = []

    def run(self, command: Any, now: datetime = T0) -> list[Any]:
        state = participant_state(self.row)
        events = decide(state, command, Env(lambda: next(self.ids), now, self.catalog))
        if events:
            at = now.strftime("%Y-%m-%dT%H:%M:%SZ")
            version = self.row.version if self.row else 0
            commit = Commit("c", "t", "u1", version, at, Causation("x"), tuple(events))
            verdict = apply_commit(self.row, commit, key_used=False)
            self.row = verdict.row
            self.writes.extend(verdict.writes)
        return events

    @property
    def lots(self) -> list[tuple[str, str, int]]:
        assert self.row is not None
        return [(x["id"], x["expires_at"], x["remaining"]) for x in open_lots(self.row.sections)]

    @property
    def counters(self) -> tuple[int, int, int]:
        assert self.row is not None
        return self.row.balance, self.row.total_earned, self.row.total_spent


def test_an_award_with_expires_at_opens_a_lot_and_one_without_does_not() -> None:
    p = Participant()
    p.run(AwardPoints("u1", 50))
    assert p.row is not None and "point_lots" not in p.row.sections
    p.run(AwardPoints("u1", 30, expires_at="2026-04-01T00:00:00Z"))
    assert p.lots == [("tx2", "2026-04-01T00:00:00Z", 30)]


def test_spending_consumes_soonest_expiring_lots_first_then_non_expiring_points() -> None:
    p = Participant()
    p.run(AwardPoints("u1", 100))  # never expires
    p.run(AwardPoints("u1", 30, expires_at="2026-05-01T00:00:00Z"))  # tx2
    p.run(AwardPoints("u1", 20, expires_at="2026-04-01T00:00:00Z"))  # tx3: soonest
    p.run(AwardPoints("u1", 10, expires_at="2026-05-01T00:00:00Z"))  # tx4: same expiry as tx2
    p.run(DeductPoints("u1", 25))
    assert p.lots == [
        ("tx2", "2026-05-01T00:00:00Z", 25),
        ("tx4", "2026-05-01T00:00:00Z", 10),
    ]
    p.run(DeductPoints("u1", 50))
    assert p.lots == []
    assert p.counters == (85, 160, 75)


def test_expiry_takes_only_the_unspent_remainder_and_is_not_spending() -> None:
    p = Participant()
    p.run(AwardPoints("u1", 100))
    p.run(AwardPoints("u1", 40, expires_at="2026-03-02T00:00:00Z"))  # tx2
    p.run(DeductPoints("u1", 15))
    later = datetime(2026, 3, 2, tzinfo=UTC)
    events = p.run(ExpirePoints("u1", "tx2"), now=later)
    assert events == [
        PointsExpired("tx4", "tx2", amount=25, balance_after=100, expires_at="2026-03-02T00:00:00Z")
    ]
    assert p.counters == (100, 140, 15)
    assert p.lots == []
    ledger = [w.params[5:8] for w in p.writes if w.statement == "ledger_insert"]
    assert ledger[-1] == ("expire", -25, 100)


def test_a_lot_not_yet_due_or_already_closed_decides_nothing() -> None:
    p = Participant()
    p.run(AwardPoints("u1", 40, expires_at="2026-03-02T00:00:00Z"))  # tx1
    assert p.run(ExpirePoints("u1", "tx1"), now=datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC)) == []
    p.run(DeductPoints("u1", 40))  # fully spent before it expired
    assert p.run(ExpirePoints("u1", "tx1"), now=datetime(2026, 3, 3, tzinfo=UTC)) == []
    assert p.counters == (0, 40, 40)


def test_expiring_twice_applies_once() -> None:
    p = Participant()
    p.run(AwardPoints("u1", 40, expires_at="2026-03-02T00:00:00Z"))
    later = datetime(2026, 3, 5, tzinfo=UTC)
    assert len(p.run(ExpirePoints("u1", "tx1"), now=later)) == 1
    assert p.run(ExpirePoints("u1", "tx1"), now=later) == []
    assert p.counters == (0, 40, 0)


def test_an_unknown_participant_has_nothing_to_expire() -> None:
    assert decide(None, ExpirePoints("u1", "tx1"), Env(lambda: "x", T0)) == []


def test_tiers_never_drop_because_of_expiry() -> None:
    p = Participant(TIERS)
    events = p.run(AwardPoints("u1", 200, expires_at="2026-03-02T00:00:00Z"))
    assert [e.code for e in events if isinstance(e, TierChanged)] == ["gold"]
    events = p.run(ExpirePoints("u1", "tx1"), now=datetime(2026, 3, 2, tzinfo=UTC))
    assert [type(e) for e in events] == [PointsExpired]
    assert p.row is not None and p.row.sections["tier"]["code"] == "gold"
    assert p.counters == (0, 200, 0)


def test_due_lots_are_those_whose_expiry_is_not_after_the_moment() -> None:
    sections = {
        "point_lots": [
            {"id": "a", "expires_at": "2026-03-01T00:00:00Z", "remaining": 1},
            {"id": "b", "expires_at": "2026-03-02T00:00:00Z", "remaining": 2},
        ]
    }
    assert [x["id"] for x in due_lots(sections, "2026-03-01T00:00:00Z")] == ["a"]
    assert due_lots({}, "2030-01-01T00:00:00Z") == []


def test_a_reward_claim_s_debit_consumes_expiring_credits_first() -> None:
    mug = Catalog.of(
        [("reward", "r1", "mug", {"name": "Mug", "type": "physical", "points_cost": 30})]
    )
    p = Participant(mug)
    p.run(AwardPoints("u1", 100))
    p.run(AwardPoints("u1", 20, expires_at="2026-04-01T00:00:00Z"))  # tx2
    p.run(ClaimReward("u1", "r1", points_deduction=True))
    assert p.lots == []
    assert p.counters == (90, 120, 30)


def test_an_expiry_is_not_the_participant_s_activity_last_seen_at_stays() -> None:
    """last_seen_at is the latest accepted command of the participant: the scheduler's expiry
    (and an erasure) change the participant without moving it."""
    p = Participant()
    p.run(AwardPoints("u1", 40, expires_at="2026-03-02T00:00:00Z"))
    assert p.row is not None and p.row.last_seen_at == "2026-03-01T12:00:00Z"
    p.run(ExpirePoints("u1", "tx1"), now=datetime(2026, 3, 5, tzinfo=UTC))
    assert p.counters == (0, 40, 0)  # expired
    assert p.row.last_seen_at == "2026-03-01T12:00:00Z"
    p.run(AwardPoints("u1", 5), now=datetime(2026, 3, 6, tzinfo=UTC))
    assert p.row.last_seen_at == "2026-03-06T00:00:00Z"
