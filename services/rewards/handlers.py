"""The claim use case: a short saga over the reward's stock stream and the participant stream.

1. Replay: a request whose idempotency key already recorded a claim on the participant gets
   that claim back, touching nothing (RefusedEarlier if the key recorded a refusal).
2. Probe: the participant decision is tried on the current state (cap, expiry, points), so a
   claim that would be refused never holds a code. The real decision is made again in step 4.
3. Reserve (rewards with an inventory only): ``RewardCodeReserved`` on the reward stream, which
   carries the request's idempotency key; a retry of the same request reuses that reservation.
4. Claim: ``RewardClaimed`` (+ ``PointsDeducted``) on the participant stream, in one commit
   under the request's idempotency key.
5. Compensation: when step 4 is refused (a domain error, the key used by another command, or
   every attempt conflicting), ``RewardCodeReleased`` gives the code back before the error is
   answered. When step 4's outcome is unknown (not projected in time, a crash), the code stays
   held: a retry with the same key completes the claim with it (docs/rewards.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from schemas.events import REWARD, Event
from services.participants.commands import ClaimReward
from services.participants.domain import DomainError, Env, Refused, decide
from services.participants.features.rewards import inventory, reward_of
from services.participants.handlers import (
    ConcurrencyConflict,
    Context,
    Deps,
    IdempotencyKeyReused,
    Result,
    check_same_request,
    execute,
    run,
)
from services.participants.writes import write_budget
from services.rewards.domain import Held, StockState, decide_release, decide_reserve
from services.rewards.ports import StockReader

logger = logging.getLogger(__name__)

CLAIM, RESERVE, RELEASE = "rewards.claim", "rewards.reserve", "rewards.release"
# Every claimant of a reward writes its stock stream: across processes they conflict more than
# on a participant, so a reservation gets a few rounds of the handler's bounded retries.
RESERVE_ROUNDS = 4
PROBE_CODE = "probe"  # stands in for the code to be reserved while probing the decision


class RefusedEarlier(Refused):
    """The idempotency key recorded a refusal of this claim (inbound dead-letters do): 409."""

    def __init__(self, key: str) -> None:
        super().__init__(
            f"The claim with idempotency key {key!r} was refused earlier; "
            "send a new key to try again"
        )


@dataclass(frozen=True, slots=True)
class Claim:
    """A recorded claim, as the claim endpoint answers it."""

    claim_id: str
    participant_id: str
    reward_id: str
    reward_name: str
    reward_type: str
    code_value: str | None
    points_deducted: int
    new_balance: int
    replayed: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "claim_id": self.claim_id,
            "participant_id": self.participant_id,
            "reward_name": self.reward_name,
            "reward_type": self.reward_type,
            "code_value": self.code_value,
            "points_deducted": self.points_deducted,
            "new_balance": self.new_balance,
        }


async def claim_reward(deps: Deps, stock: StockReader, ctx: Context, command: ClaimReward) -> Claim:
    """Claim ``command.reward_id`` for ``command.participant_id`` (see the module docstring).

    Every step shares one write timeout (``write_budget``).
    """
    async with write_budget(deps.projection_timeout):
        return await _claim(deps, stock, ctx, command)


async def _claim(deps: Deps, stock: StockReader, ctx: Context, command: ClaimReward) -> Claim:
    pid = command.participant_id
    original = await _original(deps, ctx, pid)
    if original is not None:
        return await _claim_of(deps, ctx, pid, original)
    catalog = await deps.reader.get_catalog(ctx.tenant)
    reward = reward_of(catalog, command.reward_id)
    codes = inventory(reward)
    claim_id = command.claim_id or deps.new_id()
    state = await deps.reader.get_state(ctx.tenant, pid)
    probe = replace(
        command, claim_id=claim_id, code_value=PROBE_CODE if codes is not None else None
    )
    try:
        decide(state, probe, Env(lambda: PROBE_CODE, deps.clock(), catalog))
    except DomainError:
        # A concurrent copy of this request may have recorded the claim since step 1 (then the
        # cap or the balance refuses this one): the copy's claim is the answer.
        original = await _original(deps, ctx, pid)
        if original is not None:
            return await _claim_of(deps, ctx, pid, original)
        raise

    held: Held | None = None
    if codes is not None:
        held = await _reserve(deps, stock, ctx, reward, codes, claim_id, pid)
    final = replace(
        command,
        claim_id=held.claim_id if held else claim_id,
        code_value=held.code_value if held else None,
    )
    try:
        result = await execute(deps, ctx, final)
    except (DomainError, IdempotencyKeyReused, ConcurrencyConflict):
        if held is not None:
            await _release(deps, stock, ctx, command.reward_id, held)
        raise
    claimed = result.event("RewardClaimed")
    if held is not None and (claimed is None or claimed["claim_id"] != held.claim_id):
        # The key recorded another outcome meanwhile (a concurrent copy of the request with a
        # reservation of its own, or a refusal): this attempt's code was never handed out.
        await _release(deps, stock, ctx, command.reward_id, held)
    if claimed is None and ctx.idempotency_key is not None:
        raise RefusedEarlier(ctx.idempotency_key)
    return await _claim_of(deps, ctx, pid, result)


async def _original(deps: Deps, ctx: Context, pid: str) -> Result | None:
    if ctx.idempotency_key is None:
        return None
    found = await deps.reader.get_idempotent(ctx.tenant, pid, ctx.idempotency_key)
    if found is None:
        return None
    check_same_request(found, CLAIM, ctx)
    if not any(e["type"] == "RewardClaimed" for e in found.events):
        raise RefusedEarlier(ctx.idempotency_key)
    return Result(events=found.events, commit_id=found.commit_id, replayed=True)


async def _reserve(
    deps: Deps,
    stock: StockReader,
    ctx: Context,
    reward: dict[str, Any],
    codes: list[str],
    claim_id: str,
    pid: str,
) -> Held:
    decided: list[Held] = []

    async def load() -> tuple[StockState, int]:
        state = await stock.get_stock(ctx.tenant, reward["id"])
        return state, state.version

    def decide_on(state: StockState, now: datetime) -> list[Event]:
        events, held = decide_reserve(
            state,
            codes,
            reward.get("name", reward["code"]),
            claim_id,
            pid,
            ctx.idempotency_key,
        )
        decided.append(held)
        return events

    # The stock commit carries no idempotency key: the key lives in the reservation event, and
    # one key may see a reserve and a release on the stream.
    stock_ctx = replace(ctx, idempotency_key=None)
    for round_ in range(RESERVE_ROUNDS):
        try:
            await run(deps, stock_ctx, REWARD, reward["id"], RESERVE, load, decide_on)
            return decided[-1]  # the last decision is the one that was applied
        except ConcurrencyConflict:
            if round_ == RESERVE_ROUNDS - 1:
                raise
    raise AssertionError("unreachable")


async def _release(
    deps: Deps, stock: StockReader, ctx: Context, reward_id: str, held: Held
) -> None:
    """Compensation; a failure is logged and the code stays held (visible as pending)."""

    async def load() -> tuple[StockState, int]:
        state = await stock.get_stock(ctx.tenant, reward_id)
        return state, state.version

    def decide_on(state: StockState, now: datetime) -> list[Event]:
        return decide_release(state, held.claim_id, held.code_value)

    stock_ctx = replace(ctx, idempotency_key=None)
    try:
        await run(deps, stock_ctx, REWARD, reward_id, RELEASE, load, decide_on)
    except Exception:
        logger.exception(
            "could not release code of claim %s on reward %s/%s; it stays held",
            held.claim_id,
            ctx.tenant,
            reward_id,
        )


async def _claim_of(deps: Deps, ctx: Context, pid: str, result: Result) -> Claim:
    claimed = result.event("RewardClaimed")
    if claimed is None:
        raise RuntimeError(f"commit {result.commit_id} recorded no RewardClaimed")
    balances = [
        e["data"]["balance_after"]
        for e in result.events
        if e["type"] in ("PointsAwarded", "PointsDeducted")
    ]
    if balances:
        balance = balances[-1]
    else:
        state = await deps.reader.get_state(ctx.tenant, pid)
        balance = state.balance if state else 0
    return Claim(
        claim_id=claimed["claim_id"],
        participant_id=pid,
        reward_id=claimed["reward_id"],
        reward_name=claimed["reward_name"],
        reward_type=claimed["reward_type"],
        code_value=claimed["code_value"],
        points_deducted=claimed["points_deducted"],
        new_balance=balance,
        replayed=result.replayed,
    )
