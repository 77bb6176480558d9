"""What the claim saga needs from the reward stock read model."""

from __future__ import annotations

from typing import Protocol

from services.rewards.domain import StockState


class StockReader(Protocol):
    async def get_stock(self, tenant: str, reward_id: str) -> StockState:
        """The reward stream's state and version (version 0: nothing reserved yet)."""
        ...
