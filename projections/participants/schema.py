"""Tables of the participant read models (portable SQL) and their names.

A rebuild writes the same tables under a suffix (``participants__rebuild``...) and swaps them in.
"""

from __future__ import annotations

TABLE_NAMES = (
    "participants",
    "points_ledger",
    "commit_outcomes",
    "idempotency_keys",
    "rejected_records",
)
# Tables whose rows belong to one participant (repaired by a per-participant replay).
PARTICIPANT_TABLES = TABLE_NAMES[:4]
PRIMARY_KEYS = {
    "participants": ("tenant", "participant_id"),
    "points_ledger": ("tenant", "participant_id", "version", "idx"),
    "commit_outcomes": ("commit_id",),
    "idempotency_keys": ("tenant", "participant_id", "idempotency_key"),
    "rejected_records": ("topic", "log_partition", "log_offset"),
}

CREATE_TABLES = [
    """CREATE TABLE IF NOT EXISTS {participants} (
        tenant TEXT NOT NULL,
        participant_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        display_name TEXT,
        avatar_url TEXT,
        attributes TEXT NOT NULL,
        balance BIGINT NOT NULL,
        total_earned BIGINT NOT NULL,
        total_spent BIGINT NOT NULL,
        total_events BIGINT NOT NULL,
        rewards_claimed BIGINT NOT NULL,
        is_active BOOLEAN NOT NULL,
        created_at TEXT NOT NULL,
        last_seen_at TEXT NOT NULL,
        PRIMARY KEY (tenant, participant_id))""",
    """CREATE TABLE IF NOT EXISTS {points_ledger} (
        tenant TEXT NOT NULL,
        participant_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        idx INTEGER NOT NULL,
        transaction_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        amount BIGINT NOT NULL,
        balance_after BIGINT NOT NULL,
        reason TEXT,
        metadata TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (tenant, participant_id, version, idx))""",
    """CREATE TABLE IF NOT EXISTS {commit_outcomes} (
        commit_id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        participant_id TEXT NOT NULL,
        status TEXT NOT NULL,
        command TEXT NOT NULL,
        events TEXT,
        log_partition INTEGER NOT NULL,
        log_offset BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS {idempotency_keys} (
        tenant TEXT NOT NULL,
        participant_id TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        commit_id TEXT NOT NULL,
        PRIMARY KEY (tenant, participant_id, idempotency_key))""",
    """CREATE TABLE IF NOT EXISTS {rejected_records} (
        topic TEXT NOT NULL,
        log_partition INTEGER NOT NULL,
        log_offset BIGINT NOT NULL,
        error TEXT NOT NULL,
        PRIMARY KEY (topic, log_partition, log_offset))""",
]

PARTICIPANT_COLUMNS = (
    "tenant, participant_id, version, display_name, avatar_url, attributes, balance, "
    "total_earned, total_spent, total_events, rewards_claimed, is_active, created_at, last_seen_at"
)


def table_names(suffix: str = "") -> dict[str, str]:
    """Placeholder -> real table name, for ``str.format_map`` on the SQL of this package."""
    return {name: f"{name}{suffix}" for name in TABLE_NAMES}
