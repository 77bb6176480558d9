"""Reward stock under concurrency, through the real handlers and the real projector.

The claim saga (services/rewards) over the embedded SQLite log, with the read
models in SQLite and PostgreSQL: M participants race for a reward with N < M codes from two
"API processes" (each its own handler locks, so the reward stream sees real conflicts). Exactly
N claims succeed, each code is handed out once, nobody is debited without a code, a refused
claim gives its code back (compensation) and a released code is claimed again; a retry with the
same key after a crash between the saga's steps completes the claim with the code already held.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from projections import runner
from projections.db import Database, rows
from projections.definitions.queries import DefinitionQueries
from projections.participants.queries import ParticipantQueries
from projections.participants.store import participant_store
from projections.progress import Progress
from projections.rebuild import compare
from projections.replay import READ_MODELS
from projections.rewards.queries import RewardQueries
from services.adapters.read_model import DefinitionStateReader, ReadModelReader
from services.definitions.handlers import create_definition
from services.participants.commands import AwardPoints, ClaimReward
from services.participants.domain import InsufficientPoints, ParticipantState, Refused
from services.participants.handlers import Context, Deps, execute
from services.rewards import handlers as saga
from services.rewards.domain import OutOfStock
from services.rewards.handlers import Claim, claim_reward
from services.rewards.reader import RewardStockReader

TENANT = "acme"
CTX = Context(TENANT)


@dataclass
class World:
    """A log, the projector running into ``db``, and ``processes`` handler instances."""

    db: Database
    log: Any
    source: Any
    processes: list[Deps]
    stock: RewardStockReader
    rewards: RewardQueries
    participants: ParticipantQueries
    definitions: DefinitionQueries
    reopen: Callable[[], Any]  # a second reader of the same log, from offset 0

    @property
    def deps(self) -> Deps:
        return self.processes[0]

    async def reward(self, code: str, **body: Any) -> str:
        reader = DefinitionStateReader(self.definitions)
        definition = {"code": code, "name": code.title(), "type": "coupon", **body}
        return await create_definition(self.deps, reader, CTX, "reward", definition)

    async def award(self, pid: str, amount: int) -> None:
        await execute(self.deps, CTX, AwardPoints(pid, amount))

    async def claim(
        self,
        pid: str,
        reward_id: str,
        *,
        deduct: bool = True,
        key: str | None = None,
        proc: int = 0,
    ) -> Claim:
        ctx = replace(CTX, idempotency_key=key)
        command = ClaimReward(pid, reward_id, deduct)
        return await claim_reward(self.processes[proc], self.stock, ctx, command)

    async def balance(self, pid: str) -> int:
        row = await asyncio.to_thread(self.participants.participant, TENANT, pid)
        return row.balance if row else 0

    async def held(self, reward_id: str) -> set[str]:
        found = await asyncio.to_thread(self.rewards.reserved_codes, TENANT, [reward_id])
        return found.get(reward_id, set())

    def select(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with self.db.transaction(commit=False) as c:
            c.execute(self.db.sql(sql), params)
            return rows(c)


@pytest.fixture
async def world(db: Database, tmp_path: Path) -> AsyncIterator[World]:
    from projections.sources.sqlite import SqliteLogReader, SqliteLogSource
    from services.adapters.sqlite_event_log import SqliteEventLog

    # The embedded log, a real durable log (the in-memory one stays in unit tests).
    topic, path = "gamify.participant-events", str(tmp_path / "log.db")
    source = SqliteLogSource(path, topic)
    log = SqliteEventLog(path, on_append=source.wake)
    log_reader = SqliteLogReader(path)  # idempotent replays read the original commit back

    def reopen() -> Any:
        return SqliteLogSource(path, topic)

    store = participant_store(db)
    await asyncio.to_thread(store.create_table)
    participants = ParticipantQueries(db)
    definitions = DefinitionQueries(db)
    progress = Progress(lambda p: participants.next_offset(source.topic, p))
    ids = itertools.count()

    def new_deps() -> Deps:  # its own locks: another API process on the same log and store
        return Deps(
            log=log,
            reader=ReadModelReader(participants, definitions, log=log_reader),
            progress=progress,
            clock=lambda: datetime(2026, 2, 14, 12, 0, tzinfo=UTC),  # pinned: no calendar edge
            new_id=lambda: f"id-{next(ids)}",
            projection_timeout=20.0,
        )

    rewards = RewardQueries(db)
    stop = asyncio.Event()
    projector = asyncio.create_task(
        runner.run(source, store, stop, on_advance=progress.advance, poll_timeout=0.02)
    )
    try:
        yield World(
            db,
            log,
            source,
            [new_deps(), new_deps()],
            RewardStockReader(rewards),
            rewards,
            participants,
            definitions,
            reopen,
        )
    finally:
        stop.set()
        await asyncio.wait_for(projector, 10)
        log.close()
        log_reader.close()
        source.close()
    assert not projector.exception()


async def outcomes(calls: list[Callable[[], Any]]) -> list[Claim | Exception]:
    async def one(call: Callable[[], Any]) -> Claim | Exception:
        try:
            return await call()  # type: ignore[no-any-return]
        except Exception as exc:  # noqa: BLE001 - the test sorts them
            return exc

    return list(await asyncio.gather(*(one(c) for c in calls)))


# --------------------------------------------------------------------------------------------


async def test_m_participants_race_for_n_codes_and_exactly_n_win(world: World) -> None:
    codes = [f"CODE-{i}" for i in range(5)]
    reward_id = await world.reward("tshirt", codes=codes, points_cost=30)
    pids = [f"p{i}" for i in range(12)]
    for pid in pids:
        await world.award(pid, 100)

    results = await outcomes(
        [lambda pid=pid, i=i: world.claim(pid, reward_id, proc=i % 2) for i, pid in enumerate(pids)]
    )

    won = [r for r in results if isinstance(r, Claim)]
    lost = [r for r in results if not isinstance(r, Claim)]
    assert len(won) == len(codes), results
    assert all(isinstance(r, OutOfStock) for r in lost), lost
    assert sorted(c.code_value for c in won) == codes  # every code handed out exactly once
    assert all(c.points_deducted == 30 and c.new_balance == 70 for c in won)
    winners = {c.participant_id for c in won}
    for pid in pids:  # nobody is debited without a code
        assert await world.balance(pid) == (70 if pid in winners else 100), pid
    assert await world.held(reward_id) == set(codes)
    assert await asyncio.to_thread(world.rewards.pending, TENANT, reward_id) == []
    claims = world.select(
        "SELECT participant_id, code FROM reward_claims WHERE reward_id = ?", reward_id
    )
    assert sorted(c for _, c in claims) == codes
    assert {p for p, _ in claims} == winners
    [(count, version)] = world.select(
        "SELECT reserved_count, version FROM reward_stock WHERE reward_id = ?", reward_id
    )
    assert count == 5 and version == 5
    profile = await asyncio.to_thread(world.participants.participant, TENANT, won[0].participant_id)
    assert profile is not None and profile.rewards_claimed == 1
    assert profile.sections["reward_claims"] == {reward_id: 1}

    applied = world.select(
        "SELECT command, COUNT(*) FROM commit_outcomes WHERE stream = 'reward' "
        "AND status = 'applied' GROUP BY command"
    )
    assert applied == [("rewards.reserve", 5)]  # losers conflicted or found no code: no writes
    await assert_replay_rebuilds_the_same_tables(world)


async def assert_replay_rebuilds_the_same_tables(world: World) -> None:
    """The rewards tables (and every other) are a deterministic function of the log."""
    check = participant_store(world.db, suffix="__check")
    await asyncio.to_thread(check.create_table)
    end = await world.source.end_offsets()
    source = world.reopen()
    try:
        await asyncio.wait_for(
            runner.run(source, check, asyncio.Event(), until=end, poll_timeout=0.02), 30
        )
    finally:
        source.close()
    tables = READ_MODELS["participants"]
    with world.db.transaction(commit=False) as c:
        assert compare((world.db, c), (world.db, c), tables, "", "__check") == []


async def test_a_refused_claim_releases_its_code_and_the_code_is_claimed_again(
    world: World,
) -> None:
    reward_id = await world.reward("mug", codes=["ONLY"], points_cost=50)
    await world.award("rich", 100)
    real = world.deps.reader

    class Stale:
        """Answers the probe with a balance the participant no longer has (a concurrent spend)."""

        def __init__(self) -> None:
            self.first = True

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        async def get_state(self, tenant: str, pid: str) -> ParticipantState | None:
            if self.first and pid == "broke":
                self.first = False
                return ParticipantState(version=0, balance=1000)
            return await real.get_state(tenant, pid)

    deps = replace(world.deps, reader=Stale())
    with pytest.raises(InsufficientPoints, match="Available: 0, requested: 50"):
        await claim_reward(deps, world.stock, CTX, ClaimReward("broke", reward_id, True))
    assert await world.held(reward_id) == set()  # compensated: RewardCodeReleased
    [(status, claim_of)] = world.select(
        "SELECT status, participant_id FROM reward_codes WHERE code_value = 'ONLY'"
    )
    assert (status, claim_of) == ("released", "broke")
    assert await world.balance("broke") == 0

    got = await world.claim("rich", reward_id)
    assert got.code_value == "ONLY" and got.new_balance == 50
    with pytest.raises(OutOfStock):
        await world.claim("broke", reward_id, deduct=False)


async def test_the_cap_refuses_a_second_claim_even_when_both_held_a_code(world: World) -> None:
    reward_id = await world.reward("sticker", codes=["A", "B", "C"], max_claims_per_user=1)
    results = await outcomes(
        [lambda i=i: world.claim("greedy", reward_id, deduct=False, proc=i % 2) for i in range(3)]
    )
    won = [r for r in results if isinstance(r, Claim)]
    assert len(won) == 1, results
    assert all(isinstance(r, Refused) and "cap reached" in str(r) for r in results if r not in won)
    assert await world.held(reward_id) == {won[0].code_value}  # the others gave theirs back


async def test_a_retry_after_a_crash_between_the_steps_reuses_the_held_code(world: World) -> None:
    reward_id = await world.reward("voucher", codes=["V1", "V2"], points_cost=10)
    await world.award("p1", 10)
    catalog = await world.deps.reader.get_catalog(TENANT)
    reward = catalog.rewards[reward_id]
    # The process reserved a code for the request, then died before the participant step.
    ctx = replace(CTX, idempotency_key="req-1")
    held = await saga._reserve(world.deps, world.stock, ctx, reward, ["V1", "V2"], "claim-1", "p1")
    assert held.code_value == "V1"
    [pending] = await asyncio.to_thread(world.rewards.pending, TENANT, reward_id)
    assert (pending.code_value, pending.claim_id, pending.participant_id) == ("V1", "claim-1", "p1")

    retries = await outcomes([lambda: world.claim("p1", reward_id, key="req-1") for _ in range(3)])
    assert all(isinstance(r, Claim) for r in retries), [repr(r) for r in retries]
    assert {(r.claim_id, r.code_value) for r in retries} == {("claim-1", "V1")}  # type: ignore[union-attr]
    assert await world.held(reward_id) == {"V1"}  # no second code for the same request
    assert await world.balance("p1") == 0  # debited once
    again = await world.claim("p1", reward_id, key="req-1")
    assert again.replayed and again.code_value == "V1" and again.new_balance == 0
    assert await asyncio.to_thread(world.rewards.pending, TENANT, reward_id) == []


async def test_concurrent_copies_of_one_keyed_request_make_one_claim(world: World) -> None:
    reward_id = await world.reward("badge-pin", codes=["P1", "P2", "P3"], max_claims_per_user=3)
    results = await outcomes(
        [lambda i=i: world.claim("p2", reward_id, key="same", proc=i % 2) for i in range(4)]
    )
    assert all(isinstance(r, Claim) for r in results), [repr(r) for r in results]
    assert len({(r.claim_id, r.code_value) for r in results}) == 1  # type: ignore[union-attr]
    assert len(await world.held(reward_id)) == 1
    row = await asyncio.to_thread(world.participants.participant, TENANT, "p2")
    assert row is not None and row.rewards_claimed == 1


async def test_a_reward_without_inventory_skips_the_stock_stream(world: World) -> None:
    reward_id = await world.reward("double-xp", type="points_multiplier", max_claims_per_user=2)
    first = await world.claim("p3", reward_id, deduct=False)
    second = await world.claim("p3", reward_id, deduct=False)
    assert first.code_value is None and second.code_value is None
    assert first.claim_id != second.claim_id
    with pytest.raises(Refused, match="cap reached"):
        await world.claim("p3", reward_id, deduct=False)
    assert world.select("SELECT * FROM reward_stock") == []
    kinds = Counter(s for (s,) in world.select("SELECT stream FROM commit_outcomes"))
    assert kinds["reward"] == 0
