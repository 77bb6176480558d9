"""The saga's StockReader over the reward stock read model."""

from __future__ import annotations

import asyncio

from projections.rewards.queries import RewardQueries
from services.rewards.domain import Held, StockState


class RewardStockReader:
    """Runs the synchronous stock query in a worker thread and maps it to the domain state."""

    def __init__(self, queries: RewardQueries) -> None:
        self.queries = queries

    async def get_stock(self, tenant: str, reward_id: str) -> StockState:
        stock = await asyncio.to_thread(self.queries.stock, tenant, reward_id)
        return StockState(
            stock.version,
            tuple(
                Held(c.code_value, c.claim_id, c.participant_id, c.idempotency_key)
                for c in stock.reserved
            ),
        )
