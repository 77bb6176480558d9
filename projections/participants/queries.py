"""Read functions over the participant read models, for the GET endpoints and command handlers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from projections.db import row, rows
from projections.participants.listing import (
    ParticipantListing,
    ParticipantPage,
    list_participants,
)
from projections.participants.projector import APPLIED, ParticipantRow
from projections.participants.schema import PARTICIPANT_COLUMNS, TableSql
from projections.participants.store import row_from_db, tracking_name

_PARTICIPANTS = f"SELECT {PARTICIPANT_COLUMNS} FROM {{participants}}"  # noqa: S608
_PARTICIPANT = f"{_PARTICIPANTS} WHERE tenant = ? AND participant_id = ?"

__all__ = [
    "LedgerPage",
    "OutcomeRow",
    "ParticipantListing",
    "ParticipantPage",
    "ParticipantQueries",
    "ParticipantRow",
]


@dataclass(frozen=True, slots=True)
class OutcomeRow:
    """The projector's verdict on one commit, and where the commit is on the log.

    ``events`` is None when the outcome does not hold them: an applied commit's events are on
    the log at ``position`` (partition, offset), and only stores written before that kept a
    copy here (services.adapters.read_model reads them back for an idempotent replay).
    """

    commit_id: str
    status: str
    command: str
    events: list[dict[str, Any]] | None
    fingerprint: str | None = None  # of the request that used the key (idempotent() only)
    position: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class LedgerPage:
    """One page of a participant's points transactions, newest first."""

    entries: list[dict[str, Any]]
    total: int


class ParticipantQueries(TableSql):
    """Read-only access to the participant read models (synchronous: call from a thread)."""

    def _one(
        self, sql: str, params: tuple[Any, ...], *, inline: bool = False
    ) -> tuple[Any, ...] | None:
        if inline:  # one statement in the calling thread (only where ``self.inline``)
            return self.db.inline_read(self.sql(sql), params)
        with self.db.transaction(commit=False) as c:
            c.execute(self.sql(sql), params)
            return row(c)

    def participant(
        self, tenant: str, participant_id: str, *, inline: bool = False
    ) -> ParticipantRow | None:
        found = self._one(_PARTICIPANT, (tenant, participant_id), inline=inline)
        return row_from_db(found) if found else None

    @property
    def inline(self) -> bool:
        """Whether reads may run ``inline=True`` on the event loop (SQLite: yes)."""
        return self.db.kind == "sqlite"

    def participant_inline(self, tenant: str, participant_id: str) -> ParticipantRow | None:
        """``participant`` as one statement in the calling thread (only when ``inline``).

        A primary-key read on SQLite takes tens of microseconds; a worker-thread hop and a
        BEGIN/ROLLBACK around it cost several times that (bench: GET profile under wrk).
        """
        return self.participant(tenant, participant_id, inline=True)

    def scan(
        self, tenant: str, after: str | None, limit: int, min_points: int = 0
    ) -> list[ParticipantRow]:
        """Up to ``limit`` participants of the tenant with ``total_earned >= min_points``, in
        participant id order, after ``after`` (None: from the first): a cursor for evaluations."""
        with self.db.transaction(commit=False) as c:
            c.execute(
                self.sql(
                    f"SELECT {PARTICIPANT_COLUMNS} FROM {{participants}} "  # noqa: S608
                    "WHERE tenant = ? AND participant_id > ? AND total_earned >= ? "
                    "ORDER BY participant_id LIMIT ?"
                ),
                (tenant, after or "", min_points, limit),
            )
            return [row_from_db(found) for found in rows(c)]

    def listing(self, tenant: str, spec: ParticipantListing) -> ParticipantPage:
        """A page of the tenant's participants: search, filters, sort (projections/participants/listing.py)."""
        return list_participants(self, tenant, spec)

    def transactions(
        self, tenant: str, participant_id: str, page: int, page_size: int
    ) -> LedgerPage:
        found, total = self.paged(
            "transaction_id, kind, amount, balance_after, reason, metadata, created_at",
            "points_ledger",
            "tenant = ? AND participant_id = ?",
            (tenant, participant_id),
            "version DESC, idx DESC",
            page,
            page_size,
        )
        entries = [
            {
                "id": r[0],
                "type": r[1],
                "amount": r[2],
                "balance_after": r[3],
                "reason": r[4],
                "metadata": orjson.loads(r[5]),
                "created_at": r[6],
            }
            for r in found
        ]
        return LedgerPage(entries, total)

    def events(
        self, tenant: str, participant_id: str, event_name: str | None, page: int, page_size: int
    ) -> LedgerPage:
        """A page of the participant's tracked events, newest first (optionally one name)."""
        where = "tenant = ? AND participant_id = ?" + (" AND event_name = ?" if event_name else "")
        params: tuple[Any, ...] = (tenant, participant_id) + ((event_name,) if event_name else ())
        found, total = self.paged(
            "event_id, event_name, properties, occurred_at, recorded_at",
            "event_history",
            where,
            params,
            "occurred_at DESC, version DESC, idx DESC",
            page,
            page_size,
        )
        entries = [
            {
                "id": r[0],
                "event_name": r[1],
                "properties": orjson.loads(r[2]),
                "occurred_at": r[3],
                "recorded_at": r[4],
            }
            for r in found
        ]
        return LedgerPage(entries, total)

    def tier_history(self, tenant: str, participant_id: str) -> list[dict[str, Any]]:
        """Every tier change of the participant, oldest first."""
        with self.db.transaction(commit=False) as c:
            c.execute(
                self.sql(
                    "SELECT code, name, level, previous_code, manual, achieved_at "
                    "FROM {tier_history} WHERE tenant = ? AND participant_id = ? "
                    "ORDER BY version, idx"
                ),
                (tenant, participant_id),
            )
            found = rows(c)
        return [
            {
                "code": r[0],
                "name": r[1],
                "level": r[2],
                "previous_code": r[3],
                "manual": bool(r[4]),
                "achieved_at": r[5],
            }
            for r in found
        ]

    def outcome(self, commit_id: str, *, inline: bool = False) -> OutcomeRow | None:
        found = self._one(
            "SELECT commit_id, status, command, events, log_partition, log_offset "
            "FROM {commit_outcomes} WHERE commit_id = ?",
            (commit_id,),
            inline=inline,
        )
        return _outcome(found, None) if found else None

    def idempotent(
        self, tenant: str, participant_id: str, key: str, *, inline: bool = False
    ) -> OutcomeRow | None:
        found = self._one(
            "SELECT o.commit_id, o.status, o.command, o.events, o.log_partition, o.log_offset, "
            "f.fingerprint "
            "FROM {idempotency_keys} k JOIN {commit_outcomes} o ON o.commit_id = k.commit_id "
            "LEFT JOIN {idempotency_fingerprints} f ON f.tenant = k.tenant "
            "AND f.participant_id = k.participant_id AND f.idempotency_key = k.idempotency_key "
            "WHERE k.tenant = ? AND k.participant_id = ? AND k.idempotency_key = ?",
            (tenant, participant_id, key),
            inline=inline,
        )
        return _outcome(found, found[6]) if found else None

    # Set-wise reads for the inbound waves: one statement per MANY_CHUNK keys instead of one each.

    def _many(self, sql: str, params: tuple[Any, ...], *, inline: bool) -> list[tuple[Any, ...]]:
        if inline:
            return self.db.inline_rows(self.sql(sql), params)
        with self.db.transaction(commit=False) as c:
            c.execute(self.sql(sql), params)
            return rows(c)

    def participants(
        self, tenant: str, ids: Sequence[str], *, inline: bool = False
    ) -> dict[str, ParticipantRow]:
        """``participant`` for many ids of one tenant, by id (absent ids are not in the map)."""
        found: dict[str, ParticipantRow] = {}
        for part in _chunks(list(dict.fromkeys(ids))):
            marks = ", ".join("?" * len(part))
            sql = f"{_PARTICIPANTS} WHERE tenant = ? AND participant_id IN ({marks})"
            for r in self._many(sql, (tenant, *part), inline=inline):
                participant = row_from_db(r)
                found[participant.participant_id] = participant
        return found

    def outcomes(self, commit_ids: Sequence[str], *, inline: bool = False) -> dict[str, OutcomeRow]:
        """``outcome`` for many commits, by commit id (commits without a verdict are absent)."""
        found: dict[str, OutcomeRow] = {}
        for part in _chunks(list(dict.fromkeys(commit_ids))):
            sql = (
                "SELECT commit_id, status, command, events, log_partition, log_offset "  # noqa: S608
                f"FROM {{commit_outcomes}} WHERE commit_id IN ({', '.join('?' * len(part))})"
            )
            for r in self._many(sql, tuple(part), inline=inline):
                found[r[0]] = _outcome(r, None)
        return found

    def idempotent_many(
        self, tenant: str, keys: Sequence[tuple[str, str]], *, inline: bool = False
    ) -> dict[tuple[str, str], OutcomeRow]:
        """``idempotent`` for many (participant id, key) pairs of one tenant, by pair."""
        found: dict[tuple[str, str], OutcomeRow] = {}
        for part in _chunks(list(dict.fromkeys(keys)), MANY_CHUNK // 2):
            pairs = ", ".join(["(?, ?)"] * len(part))
            sql = (  # the pairs drive the join: each one a primary-key lookup
                f"WITH wanted (participant_id, idempotency_key) AS (VALUES {pairs}) "  # noqa: S608
                "SELECT o.commit_id, o.status, o.command, o.events, o.log_partition, "
                "o.log_offset, f.fingerprint, k.participant_id, k.idempotency_key "
                "FROM wanted w JOIN {idempotency_keys} k ON k.tenant = ? "
                "AND k.participant_id = w.participant_id AND k.idempotency_key = w.idempotency_key "
                "JOIN {commit_outcomes} o ON o.commit_id = k.commit_id "
                "LEFT JOIN {idempotency_fingerprints} f ON f.tenant = k.tenant "
                "AND f.participant_id = k.participant_id AND f.idempotency_key = k.idempotency_key"
            )
            params = (*(value for pair in part for value in pair), tenant)
            for r in self._many(sql, params, inline=inline):
                found[(r[7], r[8])] = _outcome(r, r[6])
        return found

    def next_offset(self, topic: str, partition: int) -> int | None:
        """The projector's position on one partition (last applied offset + 1)."""
        found = self._one(
            "SELECT notification_id FROM tracking WHERE application_name = ?",
            (tracking_name(topic, partition, self.suffix),),
        )
        return found[0] if found else None

    def ping(self) -> None:
        """Raise if the database cannot be reached."""
        self._one("SELECT 1", ())


MANY_CHUNK = 400  # bound parameters per set-wise statement (SQLite's limit is 32,766)


def _chunks(items: list[Any], size: int = MANY_CHUNK) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _outcome(found: Any, fingerprint: str | None) -> OutcomeRow:
    if found[3]:
        events = orjson.loads(found[3])
    else:  # an applied commit's events are on the log; other verdicts have none to show
        events = None if found[1] == APPLIED else []
    return OutcomeRow(found[0], found[1], found[2], events, fingerprint, (found[4], found[5]))
