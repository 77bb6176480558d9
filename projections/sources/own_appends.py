"""This process's own appends, handed to its projector without waiting for the fetch round trip.

A ``gamify serve`` process appends a commit, the broker acknowledges it at (partition, offset),
and the same process's projector would then have to fetch it back; a fetch waits up to
``fetch.max.wait.ms`` (tansu holds it for all of it), which was most of a Kafka write's latency.
The acknowledged record is already known here: its bytes, its partition and its offset
(the produce response's base offset plus the record's index in its batch, Kafka's contract).

Why this neither loses, doubles nor reorders a commit (the store's exactly-once rule is
unchanged: records go to it in offset order and it skips what is below its position):

- ``next`` of a partition is the next offset the source hands out. It is set from the store's
  position when the partition is assigned and moves only past records handed out.
- A fetched record below ``next`` was already handed out (by this feed): it is dropped. The
  consumer reads the partition contiguously from the same starting position, so a fetched
  record above ``next`` means the offsets between do not exist on the log.
- An own record is handed out only when its offset *equals* ``next``: nothing can be skipped.
  Anything else (another process's record in between, a partition not assigned here, an
  append whose acknowledgement was lost) is left to the fetch, which delivers every record.
- The bytes handed out are the bytes the broker acknowledged at that offset. The fetch later
  delivers the same offset; its bytes are compared with what was handed out, and a difference
  (a broker reporting wrong offsets) stops the feed and fails the source loudly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence

from schemas.log import LogRecord

logger = logging.getLogger(__name__)


class OwnAppendMismatch(RuntimeError):
    """The log holds other bytes at an offset than the append acknowledged there."""


class OwnAppends:
    """Acknowledged appends of this process, by partition, for the partitions assigned here.

    Args:
        limit: Most records kept waiting (not yet contiguous) or unconfirmed (handed out, not
            yet fetched back); beyond it new offers are ignored (the fetch delivers them) and
            the oldest confirmations are given up.
    """

    def __init__(self, *, limit: int = 50_000) -> None:
        self.limit = limit
        self.enabled = True
        self.next: dict[int, int] = {}
        self._waiting: dict[int, dict[int, bytes]] = {}
        self._unconfirmed: dict[tuple[int, int], bytes] = {}
        self._pending = 0
        self.offered = asyncio.Event()
        self.handed = 0  # records handed out from here (a metric for tests and benchmarks)

    def assigned(self, positions: dict[int, int]) -> None:
        """Partitions positioned at these next offsets (a new assignment or a restart)."""
        self._unconfirmed = {k: v for k, v in self._unconfirmed.items() if k[0] not in positions}
        for partition, offset in positions.items():
            self.next[partition] = offset
            waiting = self._waiting.setdefault(partition, {})
            for stale in [o for o in waiting if o < offset]:
                del waiting[stale]
        self._pending = sum(len(w) for w in self._waiting.values())

    def revoked(self, partitions: Iterable[int]) -> None:
        """These partitions are no longer read here: forget them."""
        for partition in partitions:
            self.next.pop(partition, None)
            self._waiting.pop(partition, None)
        self._unconfirmed = {k: v for k, v in self._unconfirmed.items() if k[0] in self.next}
        self._pending = sum(len(w) for w in self._waiting.values())

    def offer(self, partition: int, offset: int, value: bytes) -> None:
        """An append of this process was acknowledged at ``partition``/``offset``."""
        start = self.next.get(partition)
        if not self.enabled or start is None or offset < start or self._pending >= self.limit:
            return
        self._waiting[partition][offset] = value
        self._pending += 1
        self.offered.set()

    def merge(
        self, fetched: dict[int, list[LogRecord]], max_records: int
    ) -> dict[int, list[LogRecord]]:
        """Fetched records not yet handed out, followed by own records that continue them."""
        out: dict[int, list[LogRecord]] = {}
        for partition, records in fetched.items():
            fresh = self._fresh(partition, records)
            if fresh:
                out[partition] = fresh
        room = max_records - sum(len(r) for r in out.values())
        for partition in list(self._waiting):
            if room <= 0:
                break
            own = self._take(partition, room)
            if own:
                out.setdefault(partition, []).extend(own)
                room -= len(own)
        return out

    def _fresh(self, partition: int, records: Sequence[LogRecord]) -> list[LogRecord]:
        start = self.next.get(partition)
        if start is None:  # not positioned through this feed: hand out as the consumer gives
            return list(records)
        for record in records:
            if record.offset < start:
                self._confirm(record)
        fresh = [r for r in records if r.offset >= start]
        if fresh:
            self.next[partition] = fresh[-1].offset + 1
            waiting = self._waiting.get(partition, {})
            for offset in [o for o in waiting if o <= fresh[-1].offset]:
                del waiting[offset]
                self._pending -= 1
        return fresh

    def _take(self, partition: int, room: int) -> list[LogRecord]:
        waiting = self._waiting[partition]
        offset = self.next[partition]
        taken: list[LogRecord] = []
        while room > 0 and offset in waiting:
            record = LogRecord(partition, offset, waiting.pop(offset))
            taken.append(record)
            self._pending -= 1
            if len(self._unconfirmed) < self.limit:
                self._unconfirmed[(partition, offset)] = record.value
            offset += 1
            room -= 1
        if taken:
            self.next[partition] = offset
            self.handed += len(taken)
        return taken

    def _confirm(self, record: LogRecord) -> None:
        handed = self._unconfirmed.pop((record.partition, record.offset), None)
        if handed is not None and handed != record.value:
            self.enabled = False
            raise OwnAppendMismatch(
                f"partition {record.partition} offset {record.offset}: the log holds other "
                "bytes than the append acknowledged there; own-append projection is off"
            )

    def has_ready(self) -> bool:
        """True when some partition's next record is an own append (a read need not wait)."""
        return any(self.next.get(p) in w for p, w in self._waiting.items() if w)
