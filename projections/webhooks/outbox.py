"""The webhook outbox in the read-model store: dispatcher positions and deliveries.

The dispatcher records a batch's deliveries and its new position in ONE transaction, so a crash
never skips an event (it re-reads from the old position, and a delivery already recorded is not
recorded twice: its id is derived from the event and the subscription). The sender claims due
deliveries with a lease, so a sender that dies mid-request leaves them to be sent again:
delivery is at-least-once. These tables are not read models of the log (a replay never touches
them), so they are not registered with projections.participants.schema.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import orjson

from projections.db import Database, row, rows
from projections.webhooks.mapping import (
    NAMESPACE,
    PERSONAL_FIELDS,
    subscribed,
    webhook_events,
)
from schemas.codec import CodecError, decode
from schemas.events import Commit, ParticipantErased
from schemas.log import LogRecord
from schemas.sealing import DataKeys

KIND = "webhook"  # definition kind of a subscription
PENDING, DELIVERED, FAILED, CANCELLED = "pending", "delivered", "failed", "cancelled"
CHUNK = 300

TABLES = (
    """CREATE TABLE IF NOT EXISTS webhook_positions (
    topic TEXT NOT NULL,
    log_partition INTEGER NOT NULL,
    next_offset BIGINT NOT NULL,
    PRIMARY KEY (topic, log_partition))""",
    """CREATE TABLE IF NOT EXISTS webhook_deliveries (
    delivery_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    last_status_code INTEGER,
    last_error TEXT,
    next_attempt_at DOUBLE PRECISION NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    log_partition INTEGER NOT NULL,
    log_offset BIGINT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS webhook_deliveries_due "
    "ON webhook_deliveries (status, next_attempt_at)",
    "CREATE INDEX IF NOT EXISTS webhook_deliveries_by_webhook "
    "ON webhook_deliveries (tenant, webhook_id, created_at)",
)
DELIVERY_COLUMNS = (
    "delivery_id, tenant, webhook_id, event_id, event_type, body, status, attempts, "
    "last_status_code, last_error, next_attempt_at, created_at, updated_at"
)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event for one subscription: ``body`` is sent byte for byte on every attempt."""

    delivery_id: str
    tenant: str
    webhook_id: str
    event_id: str
    event_type: str
    body: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: float  # Unix seconds
    created_at: str
    updated_at: str

    def as_json(self) -> dict[str, Any]:
        """The delivery as the admin API shows it (no body: the receiver has it)."""
        return {
            "id": self.delivery_id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "status": self.status,
            "attempts": self.attempts,
            "last_status_code": self.last_status_code,
            "last_error": self.last_error,
            "next_attempt_at": iso(self.next_attempt_at) if self.status == PENDING else None,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class Subscription:
    """What the sender needs of a webhook subscription (its definition)."""

    id: str
    url: str
    secret: str
    events: list[str]
    is_active: bool
    created_at: str


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def delivery_id(event_id: str, webhook_id: str) -> str:
    """Stable per event and subscription: recording it again changes nothing."""
    return str(uuid.uuid5(NAMESPACE, f"{event_id}/{webhook_id}"))


def _delivery(found: tuple[Any, ...]) -> Delivery:
    return Delivery(*found[:10], float(found[10]), *found[11:13])  # type: ignore[arg-type]


class Outbox:
    """Positions and deliveries (synchronous: call from a thread)."""

    def __init__(self, db: Database, *, keys: DataKeys | None = None) -> None:
        self.db = db
        self.keys = keys  # opens sealed personal fields for the payloads (schemas/sealing.py)

    def sql(self, text: str) -> str:
        return self.db.sql(text)

    def create_tables(self) -> None:
        with self.db.transaction(commit=True) as c:
            for statement in TABLES:
                c.execute(statement)

    # ---- the dispatcher's side

    def next_offsets(self, topic: str, partitions: list[int]) -> dict[int, int]:
        """The dispatcher's next offset per partition that has a position."""
        with self.db.transaction(commit=False) as c:
            c.execute(
                self.sql(
                    "SELECT log_partition, next_offset FROM webhook_positions WHERE topic = ?"
                ),
                (topic,),
            )
            found = {int(p): int(n) for p, n in rows(c)}
        return {p: found[p] for p in partitions if p in found}

    def record(self, topic: str, partition: int, records: list[LogRecord], now: float) -> int:
        """Record the deliveries of ``records`` and the position after them; the count recorded.

        Call only once the projector has passed the records: only commits it APPLIED (at this
        very position: a second copy of a commit is not) produce deliveries.
        """
        with self.db.transaction(commit=True) as c:
            next_offset = self._lock_position(c, topic, partition)
            fresh = [r for r in records if r.offset >= next_offset]
            if not fresh:
                return 0
            # No active subscription of any tenant: nothing to deliver, only the position moves
            # (decoding every record again and naming its events would find no subscriber).
            any_subscription = self._any_subscription(c)
            commits = [
                (r, cm)
                for r in fresh
                if any_subscription and (cm := _decoded(r, self.keys)) is not None
            ]
            applied = self._applied(c, partition, commits)
            subs = self._subscriptions(c, sorted({cm.tenant for _, cm in applied}))
            params = [
                (
                    delivery_id(event.id, sub.id),
                    cm.tenant,
                    sub.id,
                    event.id,
                    event.type,
                    orjson.dumps(event.as_json()).decode(),
                    PENDING,
                    0,
                    None,
                    None,
                    now,
                    iso(now),
                    iso(now),
                    record.partition,
                    record.offset,
                )
                for record, cm in applied
                for event in webhook_events(cm)
                for sub in subs.get(cm.tenant, [])
                if subscribed(sub.events, event.type) and sub.created_at <= cm.recorded_at
            ]
            if params:
                c.executemany(
                    self.sql(
                        f"INSERT INTO webhook_deliveries ({DELIVERY_COLUMNS}, log_partition, "  # noqa: S608
                        "log_offset) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                        "ON CONFLICT (delivery_id) DO NOTHING"
                    ),
                    params,
                )
            for record, cm in applied:
                if any(isinstance(e, ParticipantErased) for e in cm.events):
                    self._erase_pending(c, cm, record)
            c.execute(
                self.sql(
                    "UPDATE webhook_positions SET next_offset = ? "
                    "WHERE topic = ? AND log_partition = ?"
                ),
                (fresh[-1].offset + 1, topic, partition),
            )
        return len(params)

    def _erase_pending(self, c: Any, erased: Commit, record: LogRecord) -> None:
        """Rewrite the participant's deliveries still queued from before its erasure, with their
        personal fields emptied (mapping.PERSONAL_FIELDS); sent ones are the receivers' now."""
        c.execute(
            self.sql(
                "SELECT delivery_id, body FROM webhook_deliveries WHERE tenant = ? "
                "AND status = ? AND log_partition = ? AND log_offset < ?"
            ),
            (erased.tenant, PENDING, record.partition, record.offset),
        )
        changed = []
        for found_id, body in rows(c):
            payload = orjson.loads(body)
            data = payload.get("data") or {}
            if data.get("participant_id") != erased.participant_id:
                continue
            data.update({k: v for k, v in PERSONAL_FIELDS.items() if k in data})
            changed.append((orjson.dumps(payload).decode(), found_id))
        if changed:
            c.executemany(
                self.sql("UPDATE webhook_deliveries SET body = ? WHERE delivery_id = ?"), changed
            )

    def _lock_position(self, c: Any, topic: str, partition: int) -> int:
        c.execute(
            self.sql(
                "INSERT INTO webhook_positions (topic, log_partition, next_offset) "
                "VALUES (?, ?, 0) ON CONFLICT DO NOTHING"
            ),
            (topic, partition),
        )
        select = "SELECT next_offset FROM webhook_positions WHERE topic = ? AND log_partition = ?"
        if self.db.kind == "postgres":
            select += " FOR UPDATE"  # SQLite's BEGIN IMMEDIATE already holds the write lock
        c.execute(self.sql(select), (topic, partition))
        return int(row(c)[0])  # type: ignore[index]

    def _applied(
        self, c: Any, partition: int, commits: list[tuple[LogRecord, Commit]]
    ) -> list[tuple[LogRecord, Commit]]:
        """The commits the projector applied from exactly these records."""
        ids = sorted({cm.commit_id for _, cm in commits})
        outcomes: dict[str, tuple[str, int, int]] = {}
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            c.execute(
                self.sql(
                    "SELECT commit_id, status, log_partition, log_offset FROM commit_outcomes "  # noqa: S608
                    f"WHERE commit_id IN ({', '.join('?' * len(chunk))})"
                ),
                chunk,
            )
            outcomes.update({f[0]: (f[1], int(f[2]), int(f[3])) for f in rows(c)})
        return [
            (r, cm)
            for r, cm in commits
            if outcomes.get(cm.commit_id) == ("applied", partition, r.offset)
        ]

    def _any_subscription(self, c: Any) -> bool:
        c.execute(
            self.sql("SELECT 1 FROM definitions WHERE kind = ? AND is_active = ? LIMIT 1"),
            (KIND, True),
        )
        return bool(rows(c))

    def _subscriptions(self, c: Any, tenants: list[str]) -> dict[str, list[Subscription]]:
        found: dict[str, list[Subscription]] = {}
        if not tenants:
            return found
        c.execute(
            self.sql(
                "SELECT tenant, id, body, is_active, created_at FROM definitions "  # noqa: S608
                f"WHERE kind = ? AND is_active = ? AND tenant IN ({', '.join('?' * len(tenants))})"
            ),
            (KIND, True, *tenants),
        )
        for f in rows(c):
            found.setdefault(f[0], []).append(_subscription(f[1:]))
        return found

    # ---- the sender's side

    def due_webhooks(self, now: float, limit: int = 1000) -> list[str]:
        """Subscriptions with a delivery due (each is then served separately: no starvation)."""
        with self.db.transaction(commit=False) as c:
            c.execute(
                self.sql(
                    "SELECT DISTINCT webhook_id FROM webhook_deliveries "
                    "WHERE status = ? AND next_attempt_at <= ? LIMIT ?"
                ),
                (PENDING, now, limit),
            )
            return [f[0] for f in rows(c)]

    def claim(self, webhook_id: str, now: float, limit: int, lease_until: float) -> list[Delivery]:
        """Take up to ``limit`` due deliveries of one subscription: attempts + 1, and
        ``next_attempt_at`` pushed to ``lease_until`` (due again if the sender dies)."""
        claimed: list[Delivery] = []
        with self.db.transaction(commit=True) as c:
            c.execute(
                self.sql(
                    f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries "  # noqa: S608
                    "WHERE webhook_id = ? AND status = ? AND next_attempt_at <= ? "
                    "ORDER BY next_attempt_at, created_at LIMIT ?"
                ),
                (webhook_id, PENDING, now, limit),
            )
            for d in map(_delivery, rows(c)):
                c.execute(
                    self.sql(
                        "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = ? "
                        "WHERE delivery_id = ? AND status = ? AND next_attempt_at = ? "
                        "RETURNING delivery_id"
                    ),
                    (lease_until, d.delivery_id, PENDING, d.next_attempt_at),
                )
                if row(c) is not None:
                    claimed.append(_with(d, attempts=d.attempts + 1))
        return claimed

    def finish(
        self,
        delivery: Delivery,
        status: str,
        code: int | None,
        error: str | None,
        next_attempt_at: float,
        now: float,
    ) -> None:
        """Record an attempt's result: delivered, failed, cancelled, or pending (a retry)."""
        with self.db.transaction(commit=True) as c:
            c.execute(
                self.sql(
                    "UPDATE webhook_deliveries SET status = ?, last_status_code = ?, "
                    "last_error = ?, next_attempt_at = ?, updated_at = ? "
                    "WHERE delivery_id = ? AND status = ? AND attempts = ?"
                ),
                (
                    status,
                    code,
                    error,
                    next_attempt_at,
                    iso(now),
                    delivery.delivery_id,
                    PENDING,
                    delivery.attempts,
                ),
            )

    def subscription(self, tenant: str, webhook_id: str) -> Subscription | None:
        with self.db.transaction(commit=False) as c:
            c.execute(
                self.sql(
                    "SELECT id, body, is_active, created_at FROM definitions "
                    "WHERE tenant = ? AND kind = ? AND id = ?"
                ),
                (tenant, KIND, webhook_id),
            )
            found = row(c)
        return None if found is None else _subscription(found)

    # ---- the admin API's side

    def page(
        self, tenant: str, webhook_id: str, status: str | None, page: int, page_size: int
    ) -> tuple[list[Delivery], int]:
        """One page of a subscription's deliveries, newest first, and their total."""
        where = "tenant = ? AND webhook_id = ?" + ("" if status is None else " AND status = ?")
        params = (tenant, webhook_id) + (() if status is None else (status,))
        with self.db.transaction(commit=False) as c:
            c.execute(self.sql(f"SELECT COUNT(*) FROM webhook_deliveries WHERE {where}"), params)  # noqa: S608
            total = int(row(c)[0])  # type: ignore[index]
            c.execute(
                self.sql(
                    f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE {where} "  # noqa: S608
                    "ORDER BY created_at DESC, log_partition DESC, log_offset DESC, event_id "
                    "LIMIT ? OFFSET ?"
                ),
                (*params, page_size, (page - 1) * page_size),
            )
            return [_delivery(f) for f in rows(c)], total

    def get(self, tenant: str, webhook_id: str, delivery_id_: str) -> Delivery | None:
        with self.db.transaction(commit=False) as c:
            c.execute(
                self.sql(
                    f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries "  # noqa: S608
                    "WHERE tenant = ? AND webhook_id = ? AND delivery_id = ?"
                ),
                (tenant, webhook_id, delivery_id_),
            )
            found = row(c)
        return None if found is None else _delivery(found)

    def redeliver(self, tenant: str, webhook_id: str, delivery_id_: str, now: float) -> bool:
        """Queue the delivery again, due now, with a fresh set of attempts; False if unknown."""
        with self.db.transaction(commit=True) as c:
            c.execute(
                self.sql(
                    "UPDATE webhook_deliveries SET status = ?, attempts = 0, next_attempt_at = ?, "
                    "updated_at = ? WHERE tenant = ? AND webhook_id = ? AND delivery_id = ? "
                    "RETURNING delivery_id"
                ),
                (PENDING, now, iso(now), tenant, webhook_id, delivery_id_),
            )
            return row(c) is not None

    def pending(self) -> int:
        """Deliveries not yet delivered, failed or cancelled (a gauge)."""
        with self.db.transaction(commit=False) as c:
            c.execute(
                self.sql("SELECT COUNT(*) FROM webhook_deliveries WHERE status = ?"), (PENDING,)
            )
            return int(row(c)[0])  # type: ignore[index]


def _decoded(record: LogRecord, keys: DataKeys | None) -> Commit | None:
    try:
        return decode(record.value, keys)
    except CodecError:
        return None  # the projector quarantined it: no outcome, no webhook


def _subscription(found: tuple[Any, ...]) -> Subscription:
    body = orjson.loads(found[1])
    return Subscription(
        id=found[0],
        url=str(body.get("url", "")),
        secret=str(body.get("secret", "")),
        events=list(body.get("events", [])),
        is_active=bool(found[2]),
        created_at=found[3],
    )


def _with(delivery: Delivery, **changes: Any) -> Delivery:
    return replace(delivery, **changes)
