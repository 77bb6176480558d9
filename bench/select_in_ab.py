"""Before/after of the store's batch reads: ``(cols) IN ((?, ?), ...)`` against a VALUES join.

Applies the same records, in batches of 1,000 as the runner does, to a fresh store with either
the old ``_Batch._select_in`` (a row-value IN list, re-implemented here) or the store's current
one, and prints events/s overall and over the last fifth (the rate as the tables grow).

    python -m bench.select_in_ab sqlite old 100000 3 90
    python -m bench.select_in_ab sqlite new 100000 3 90
    python -m bench.select_in_ab postgres old 100000 3 90

Arguments: store kind, implementation, participants, commits per participant, seconds cap.
"""

from __future__ import annotations

import gc
import sys
import time
from typing import Any

import projections.participants.store as store_module
from bench.env import fresh_store
from projections.db import rows
from schemas.codec import encode
from schemas.events import Causation, Commit, Event, ParticipantRegistered, PointsAwarded
from schemas.log import LogRecord

CURRENT = store_module._Batch._select_in  # noqa: SLF001


def row_value_in(self: Any, head: str, keys: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The store's batch read before the change: one row-value IN list per chunk."""
    found: list[tuple[Any, ...]] = []
    for start in range(0, len(keys), store_module.CHUNK):
        chunk = keys[start : start + store_module.CHUNK]
        one = "(" + ", ".join("?" * len(chunk[0])) + ")"
        self.c.execute(
            self.sql(f"{head} ({', '.join([one] * len(chunk))})"), [v for k in chunk for v in k]
        )
        found.extend(rows(self.c))
    return found


def records(participants: int, rounds: int) -> list[LogRecord]:
    out: list[LogRecord] = []
    gc.disable()
    try:
        for r in range(rounds):
            for i in range(participants):
                cid = f"c{r}-{i:08d}"
                events: tuple[Event, ...] = (
                    PointsAwarded(transaction_id=f"tx-{cid}", amount=10,
                                  balance_after=10 * (r + 1), reason="order"),
                )  # fmt: skip
                if r == 0:
                    events = (ParticipantRegistered(auto_created=True), *events)
                commit = Commit(
                    cid, "bench", f"user_{i:07d}", r, "2026-02-14T10:00:00Z",
                    Causation("points.award", idempotency_key=f"order-{i}-{r}"), events,
                )  # fmt: skip
                out.append(LogRecord(0, len(out), encode(commit)))
    finally:
        gc.enable()
    return out


def main(argv: list[str]) -> int:
    kind, impl = argv[0], argv[1]
    participants, rounds, cap = int(argv[2]), int(argv[3]), float(argv[4])
    store_module._Batch._select_in = row_value_in if impl == "old" else CURRENT  # type: ignore[method-assign]  # noqa: SLF001
    todo = records(participants, rounds)
    with fresh_store(kind, "gamify-ab-") as store:
        started = time.perf_counter()
        marks: list[tuple[float, int]] = []
        for start in range(0, len(todo), 1000):
            store.apply_batch("bench.participant-events", 0, todo[start : start + 1000])
            marks.append((time.perf_counter() - started, min(len(todo), start + 1000)))
            if marks[-1][0] > cap:
                break
    seconds, done = marks[-1]
    at, n4 = next(m for m in marks if m[1] >= 0.8 * done)
    last = (done - n4) / (seconds - at) if seconds > at else float("nan")
    print(
        f"{kind} {impl}: {done:,} events in {seconds:.1f}s = {done / seconds:,.0f}/s; "
        f"last fifth {last:,.0f}/s; {'complete' if done == len(todo) else 'time-capped'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
