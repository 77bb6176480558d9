"""Erasure in the read models: ParticipantErased clears the profile and the history's free text.

The fold clears the participant row's display name, avatar and attributes. The history written
before the erasure (rows of versions below it; commit outcomes and idempotency fingerprints of
every commit but those after it in the same batch) is anonymised after the batch's writes, so
the result does not depend on how commits were batched: live
projection and every replay (which reads the sealed fields as empty once the key is destroyed)
give the same rows. Points, counts, badges, tiers and leaderboard scores are left as they are.
"""

from __future__ import annotations

from typing import Any

import orjson

from projections.db import rows
from projections.participants.projector import Draft, ParticipantRow, Write, evolver, writer
from projections.participants.schema import Flush, register_flush_hook
from schemas.events import PARTICIPANT, Commit, ParticipantErased
from schemas.sealing import PERSONAL

ERASE = "participant_erase"  # handled by the flush hook below, never executed as SQL


@evolver(ParticipantErased)
def _clear(event: ParticipantErased, row: Draft, commit: Commit) -> None:
    row.display_name = None
    row.avatar_url = None
    row.attributes = {}


@writer(ParticipantErased)
def _write(
    event: ParticipantErased, row: ParticipantRow, commit: Commit, idx: int
) -> tuple[Write, ...]:
    version = commit.expected_version + 1
    return (Write(ERASE, (commit.tenant, commit.participant_id, version, commit.commit_id)),)


def anonymised_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Encoded events (schemas.codec.encode_event) with their personal fields emptied.

    What the same events decode to once their key is destroyed, so a replay writes the same.
    """
    out = []
    for event in events:
        data = dict(event.get("data") or {})
        for name in PERSONAL.get(event.get("type", ""), ()):
            if name in data:
                data[name] = _empty_like(data[name])
        out.append({**event, "data": data})
    return out


def _empty_like(value: Any) -> Any:
    if isinstance(value, dict):
        return {}
    if isinstance(value, list):
        return []
    return None


def _erase(flush: Flush) -> None:
    erasures = flush.grouped.pop(ERASE, None)
    if erasures:
        flush.after.append(lambda: [_anonymise(flush, *e) for e in erasures])


def _later(flush: Flush, tenant: str, pid: str, commit_id: str) -> list[str]:
    """Ids of the participant's commits after ``commit_id`` in this batch (they stay as written)."""
    ids = [c.commit_id for c in flush.commits if (c.tenant, c.participant_id) == (tenant, pid)]
    return ids[ids.index(commit_id) + 1 :] if commit_id in ids else []


def _anonymise(flush: Flush, tenant: str, pid: str, version: int, commit_id: str) -> None:
    c, sql = flush.c, flush.sql
    later = set(_later(flush, tenant, pid, commit_id))
    who = (tenant, pid, version)
    c.execute(
        sql(
            "UPDATE {points_ledger} SET reason = NULL, metadata = '{{}}' "
            "WHERE tenant = ? AND participant_id = ? AND version < ?"
        ),
        who,
    )
    c.execute(
        sql(
            "UPDATE {event_history} SET properties = '{{}}' "
            "WHERE tenant = ? AND participant_id = ? AND version < ?"
        ),
        who,
    )
    c.execute(
        sql(
            "DELETE FROM {participant_snapshots} "
            "WHERE tenant = ? AND participant_id = ? AND version < ?"
        ),
        who,
    )
    c.execute(
        sql(
            "SELECT f.idempotency_key, k.commit_id FROM {idempotency_fingerprints} f "
            "JOIN {idempotency_keys} k ON k.tenant = f.tenant "
            "AND k.participant_id = f.participant_id AND k.idempotency_key = f.idempotency_key "
            "WHERE f.tenant = ? AND f.participant_id = ?"
        ),
        (tenant, pid),
    )
    gone = [(tenant, pid, key) for key, of in rows(c) if of not in later]
    if gone:
        c.executemany(
            sql(
                "DELETE FROM {idempotency_fingerprints} "
                "WHERE tenant = ? AND participant_id = ? AND idempotency_key = ?"
            ),
            gone,
        )
    c.execute(
        sql(
            "SELECT commit_id, events FROM {commit_outcomes} WHERE tenant = ? AND stream = ? "
            "AND participant_id = ? AND events IS NOT NULL"
        ),
        (tenant, PARTICIPANT, pid),
    )
    changed = []
    for found_id, events in rows(c):
        if found_id in later:
            continue
        before = orjson.loads(events)
        after = anonymised_events(before)
        if after != before:
            changed.append((orjson.dumps(after).decode(), found_id))
    if changed:
        c.executemany(sql("UPDATE {commit_outcomes} SET events = ? WHERE commit_id = ?"), changed)


register_flush_hook(_erase)
