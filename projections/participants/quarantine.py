"""The quarantine of records the projector could not apply: list, show, acknowledge, watch."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import asdict, dataclass
from typing import Any

from projections import metrics
from projections.db import rows
from projections.participants.schema import TableSql

QUARANTINED, ACKNOWLEDGED, RETRIED = "quarantined", "acknowledged", "retried"
COLUMNS = (
    "topic, log_partition, log_offset, commit_id, stream, tenant, participant_id, command, "
    "recorded_at, kind, error_type, error, digest, size, status, verdict"
)


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    """One quarantined record: where it is on the log, what it held (sanitised), why it failed.

    ``digest`` is the SHA-256 of the record's bytes (hex), ``size`` their length; ``status`` is
    quarantined, acknowledged or retried, and ``verdict`` the retry's verdict (applied,
    conflict, duplicate).
    """

    topic: str
    partition: int
    offset: int
    commit_id: str | None
    stream: str | None
    tenant: str | None
    participant_id: str | None
    command: str | None
    recorded_at: str | None
    kind: str
    error_type: str
    error: str
    digest: str
    size: int
    status: str
    verdict: str | None

    @property
    def position(self) -> str:
        """``partition:offset``, how the CLI names a record."""
        return f"{self.partition}:{self.offset}"

    def as_dict(self) -> dict[str, Any]:
        return {"position": self.position, **asdict(self)}


class QuarantineQueries(TableSql):
    """Reads and operator changes of the quarantine table (synchronous: call from a thread)."""

    def open_count(self) -> int:
        """Records still quarantined (neither retried nor acknowledged)."""
        with self.db.transaction(commit=False) as c:
            c.execute(
                self.sql("SELECT COUNT(*) FROM {quarantined_records} WHERE status = ?"),
                (QUARANTINED,),
            )
            return int(rows(c)[0][0])

    def entries(self, status: str | None = None, limit: int = 1000) -> list[QuarantineEntry]:
        """Entries in log order (``status``: only those), at most ``limit``."""
        where, params = ("WHERE status = ?", (status,)) if status else ("", ())
        with self.db.transaction(commit=False) as c:
            c.execute(
                self.sql(
                    f"SELECT {COLUMNS} FROM {{quarantined_records}} {where} "  # noqa: S608
                    "ORDER BY topic, log_partition, log_offset LIMIT ?"
                ),
                (*params, limit),
            )
            return [QuarantineEntry(*found) for found in rows(c)]

    def find(self, ref: str) -> QuarantineEntry | None:
        """The entry at ``partition:offset`` (or ``offset`` on partition 0), or with commit id ``ref``."""
        position = parse_position(ref)
        with self.db.transaction(commit=False) as c:
            if position is not None:
                where, params = "log_partition = ? AND log_offset = ?", position
            else:
                where, params = "commit_id = ?", (ref,)
            c.execute(
                self.sql(
                    f"SELECT {COLUMNS} FROM {{quarantined_records}} WHERE {where} "  # noqa: S608
                    "ORDER BY log_partition, log_offset"
                ),
                params,
            )
            found = rows(c)
        return QuarantineEntry(*found[0]) if found else None

    def acknowledge(self, entry: QuarantineEntry) -> None:
        """Mark a quarantined record as seen: ``/readyz`` no longer fails for it."""
        self._set(entry, "status = ?", (ACKNOWLEDGED,), only_open=True)

    def record_failure(
        self, entry: QuarantineEntry, kind: str, error_type: str, error: str
    ) -> None:
        """A retry failed again: keep the record quarantined with the latest error."""
        self._set(entry, "kind = ?, error_type = ?, error = ?", (kind, error_type, error))

    def _set(
        self,
        entry: QuarantineEntry,
        assignments: str,
        values: tuple[Any, ...],
        *,
        only_open: bool = False,
    ) -> None:
        extra = f" AND status = '{QUARANTINED}'" if only_open else ""
        with self.db.transaction(commit=True) as c:
            c.execute(
                self.sql(
                    f"UPDATE {{quarantined_records}} SET {assignments} "  # noqa: S608
                    f"WHERE topic = ? AND log_partition = ? AND log_offset = ?{extra}"
                ),
                (*values, entry.topic, entry.partition, entry.offset),
            )


def parse_position(ref: str) -> tuple[int, int] | None:
    """``"2:15"`` -> (2, 15); ``"15"`` -> (0, 15); anything else (a commit id) -> None."""
    head, sep, tail = ref.partition(":")
    if sep and head.isdigit() and tail.isdigit():
        return int(head), int(tail)
    if not sep and ref.isdigit():
        return 0, int(ref)
    return None


class QuarantineMonitor:
    """How many records are quarantined, read from the store every ``interval`` seconds.

    ``/readyz`` reads the last count (it never waits for the database); the count also sets the
    ``gamify_projector_quarantined_records`` gauge.
    """

    def __init__(self, count: Callable[[], int], projection: str, *, interval: float = 1.0) -> None:
        self.count, self.projection, self.interval = count, projection, interval
        self.open: int | None = None
        self.error: str | None = None
        self.measured_at = 0.0

    def refresh(self) -> None:
        try:
            self.open = self.count()
            self.error = None
            metrics.QUARANTINE_OPEN.labels(self.projection).set(self.open)
        except Exception as exc:  # the store check of /readyz reports the store itself
            self.error = type(exc).__name__
        self.measured_at = time.time()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.to_thread(self.refresh)
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)
