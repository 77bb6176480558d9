"""The reward stock read model: tables, statements and the stream projection that fills them."""

from __future__ import annotations

from typing import Any

from projections.participants.projector import Write
from projections.participants.schema import Table, register_statement, register_table
from projections.rewards.projector import APPLIED, CodeRow, StockRow, apply_stock
from projections.streams import SelectIn, register_stream
from schemas.events import REWARD, Commit, RewardCodeReleased, RewardCodeReserved

STOCK_COLUMNS = "tenant, reward_id, version, reserved_count, updated_at"
CODE_COLUMNS = (
    "tenant, reward_id, code_value, status, claim_id, participant_id, idempotency_key, updated_at"
)

register_table(
    Table(
        "reward_stock",
        """CREATE TABLE IF NOT EXISTS {reward_stock} (
    tenant TEXT NOT NULL,
    reward_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    reserved_count BIGINT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (tenant, reward_id))""",
        ("tenant", "reward_id"),
    )
)

register_table(
    Table(
        "reward_codes",
        """CREATE TABLE IF NOT EXISTS {reward_codes} (
    tenant TEXT NOT NULL,
    reward_id TEXT NOT NULL,
    code_value TEXT NOT NULL,
    status TEXT NOT NULL,
    claim_id TEXT NOT NULL,
    participant_id TEXT,
    idempotency_key TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (tenant, reward_id, code_value))""",
        ("tenant", "reward_id", "code_value"),
    )
)

STOCK_UPSERT = register_statement(
    "reward_stock_upsert",
    (
        f"INSERT INTO {{reward_stock}} ({STOCK_COLUMNS}) VALUES (?, ?, ?, ?, ?) "  # noqa: S608
        "ON CONFLICT (tenant, reward_id) DO UPDATE SET version = excluded.version, "
        "reserved_count = excluded.reserved_count, updated_at = excluded.updated_at"
    ),
)

CODE_UPSERT = register_statement(
    "reward_code_upsert",
    (
        f"INSERT INTO {{reward_codes}} ({CODE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "  # noqa: S608
        "ON CONFLICT (tenant, reward_id, code_value) DO UPDATE SET status = excluded.status, "
        "claim_id = excluded.claim_id, participant_id = excluded.participant_id, "
        "idempotency_key = excluded.idempotency_key, updated_at = excluded.updated_at"
    ),
)


def stock_from_db(found: tuple[Any, ...]) -> StockRow:
    return StockRow(found[0], found[1], found[2], found[3], found[4])


def code_from_db(found: tuple[Any, ...]) -> CodeRow:
    return CodeRow(*found)


def code_to_db(code: CodeRow) -> tuple[Any, ...]:
    return (
        code.tenant,
        code.reward_id,
        code.code_value,
        code.status,
        code.claim_id,
        code.participant_id,
        code.idempotency_key,
        code.updated_at,
    )


class RewardStockStream:
    """Reward-stream commits of one batch: stock rows by (tenant, reward id), code rows by code.

    Code rows change in memory and are written once at the end, so a code reserved, released and
    reserved again within one batch ends as one upsert of its last state.
    """

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], StockRow | None] = {}
        self.codes: dict[tuple[str, str], dict[str, CodeRow]] = {}
        self.dirty: set[tuple[str, str]] = set()
        self.dirty_codes: set[tuple[str, str, str]] = set()

    def load(self, select_in: SelectIn, commits: list[Commit]) -> None:
        streams = sorted({(c.tenant, c.participant_id) for c in commits})
        self.rows.update(dict.fromkeys(streams))
        for ident in streams:
            self.codes[ident] = {}
        found = select_in(
            f"SELECT {STOCK_COLUMNS} FROM {{reward_stock}} WHERE (tenant, reward_id) IN",  # noqa: S608
            streams,
        )
        for stock in map(stock_from_db, found):
            self.rows[(stock.tenant, stock.reward_id)] = stock
        named = sorted(
            {
                (c.tenant, c.participant_id, e.code_value)
                for c in commits
                for e in c.events
                if isinstance(e, RewardCodeReserved | RewardCodeReleased) and e.code_value
            }
        )
        found = select_in(
            f"SELECT {CODE_COLUMNS} FROM {{reward_codes}} "  # noqa: S608
            "WHERE (tenant, reward_id, code_value) IN",
            named,
        )
        for code in map(code_from_db, found):
            self.codes[(code.tenant, code.reward_id)][code.code_value] = code

    def apply(self, commit: Commit, *, key_used: bool) -> tuple[str, list[Write]]:
        # Reward commits carry no idempotency key of their own: a reservation records the claim's
        # key in its event, and the decision reuses it (services/rewards), so key_used is unused.
        ident = (commit.tenant, commit.participant_id)
        codes = self.codes.setdefault(ident, {})
        status, row, changed = apply_stock(self.rows.get(ident), codes, commit)
        if status == APPLIED and row is not None:
            self.rows[ident] = row
            self.dirty.add(ident)
            for code in changed:
                codes[code.code_value] = code
                self.dirty_codes.add((*ident, code.code_value))
        return status, []

    def flush(self) -> list[Write]:
        writes = [
            Write(
                STOCK_UPSERT,
                (r.tenant, r.reward_id, r.version, r.reserved_count, r.updated_at),
            )
            for ident in sorted(self.dirty)
            if (r := self.rows[ident]) is not None
        ]
        writes.extend(
            Write(CODE_UPSERT, code_to_db(self.codes[(tenant, rid)][code]))
            for tenant, rid, code in sorted(self.dirty_codes)
        )
        return writes


register_stream(REWARD, RewardStockStream)
