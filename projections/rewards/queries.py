"""Read functions over the reward read models: code stock and participants' claims (sync)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from projections.db import row, rows
from projections.participants.features.rewards import CLAIM_COLUMNS
from projections.participants.schema import TableSql
from projections.rewards.projector import RESERVED, CodeRow
from projections.rewards.stream import CODE_COLUMNS, code_from_db

__all__ = ["ClaimPage", "CodeRow", "RewardQueries", "Stock"]


@dataclass(frozen=True, slots=True)
class Stock:
    """A reward's stock stream: its version and the codes held right now."""

    version: int = 0
    reserved: list[CodeRow] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ClaimPage:
    """One page of a participant's reward claims, newest first."""

    entries: list[dict[str, Any]]
    total: int


class RewardQueries(TableSql):
    """Reward stock and claims (synchronous: call from a thread)."""

    def stock(self, tenant: str, reward_id: str) -> Stock:
        """The stream's version and its held codes, read in one transaction."""
        with self.db.transaction(commit=False) as c:
            c.execute(
                self.sql("SELECT version FROM {reward_stock} WHERE tenant = ? AND reward_id = ?"),
                (tenant, reward_id),
            )
            found = row(c)
            if found is None:
                return Stock()
            c.execute(
                self.sql(
                    f"SELECT {CODE_COLUMNS} FROM {{reward_codes}} "  # noqa: S608
                    "WHERE tenant = ? AND reward_id = ? AND status = ?"
                ),
                (tenant, reward_id, RESERVED),
            )
            return Stock(int(found[0]), [code_from_db(r) for r in rows(c)])

    def reserved_codes(self, tenant: str, reward_ids: list[str]) -> dict[str, set[str]]:
        """The codes held right now, per reward (only rewards with some are keys)."""
        held: dict[str, set[str]] = {}
        if not reward_ids:
            return held
        marks = ", ".join("?" * len(reward_ids))
        with self.db.transaction(commit=False) as c:
            c.execute(
                self.sql(
                    "SELECT reward_id, code_value FROM {reward_codes} "  # noqa: S608
                    f"WHERE tenant = ? AND status = ? AND reward_id IN ({marks})"
                ),
                (tenant, RESERVED, *reward_ids),
            )
            for reward_id, code in rows(c):
                held.setdefault(reward_id, set()).add(code)
        return held

    def pending(self, tenant: str, reward_id: str) -> list[CodeRow]:
        """Held codes whose claim is not recorded on its participant (yet, or ever)."""
        columns = ", ".join(f"k.{c.strip()}" for c in CODE_COLUMNS.split(","))
        with self.db.transaction(commit=False) as c:
            c.execute(
                self.sql(
                    f"SELECT {columns} FROM {{reward_codes}} k "  # noqa: S608
                    "WHERE k.tenant = ? AND k.reward_id = ? AND k.status = ? AND NOT EXISTS ("
                    "SELECT 1 FROM {reward_claims} r WHERE r.tenant = k.tenant "
                    "AND r.participant_id = k.participant_id AND r.claim_id = k.claim_id) "
                    "ORDER BY k.updated_at, k.code_value"
                ),
                (tenant, reward_id, RESERVED),
            )
            return [code_from_db(r) for r in rows(c)]

    def claims(self, tenant: str, participant_id: str, page: int, page_size: int) -> ClaimPage:
        """A page of the participant's claims, newest first."""
        found, total = self.paged(
            CLAIM_COLUMNS,
            "reward_claims",
            "tenant = ? AND participant_id = ?",
            (tenant, participant_id),
            "version DESC, idx DESC",
            page,
            page_size,
        )
        entries = [
            {
                "claim_id": r[4],
                "reward_id": r[5],
                "name": r[6],
                "type": r[7],
                "code": r[8],
                "points_deducted": r[9],
                "claimed_at": r[10],
            }
            for r in found
        ]
        return ClaimPage(entries, int(total))
