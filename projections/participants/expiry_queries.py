"""Reads for the expiry scheduler: participants whose next expiring credit is due."""

from __future__ import annotations

from projections.db import rows
from projections.participants.schema import TableSql


class ExpiryQueries(TableSql):
    """The ``point_expiry`` read model (projections/participants/features/expiry.py)."""

    def due(self, at: str, limit: int) -> list[tuple[str, str]]:
        """Up to ``limit`` (tenant, participant_id) whose soonest open lot expires at or before
        ``at`` (``YYYY-MM-DDTHH:MM:SSZ``), soonest first; uses the ``next_expires_at`` index."""
        with self.db.transaction(commit=False) as c:
            c.execute(
                self.sql(
                    "SELECT tenant, participant_id FROM {point_expiry} "
                    "WHERE next_expires_at <= ? ORDER BY next_expires_at, tenant, participant_id "
                    "LIMIT ?"
                ),
                (at, limit),
            )
            return [(str(t), str(p)) for t, p in rows(c)]

    def next_expiry(self, tenant: str, participant_id: str) -> str | None:
        """The soonest ``expires_at`` of the participant's open lots, or None."""
        with self.db.transaction(commit=False) as c:
            c.execute(
                self.sql(
                    "SELECT next_expires_at FROM {point_expiry} "
                    "WHERE tenant = ? AND participant_id = ?"
                ),
                (tenant, participant_id),
            )
            found = rows(c)
        return found[0][0] if found else None
