"""Cost of sealing personal fields, in one process: ``python -m bench.sealing``.

Awards with a ``reason`` and ``metadata`` (sealed) against the same awards without them (never
sealed), over 1,000 participants: encode (with ``seal``), and decode (opening with keys from a
warm SQLite key store, as the projector does). docs/erasure.md, "Performance".
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable

from projections.data_keys import open_data_keys
from schemas import codec
from schemas.events import Causation, Commit, PointsAwarded
from schemas.sealing import seal

N, PEOPLE = 20_000, 1_000


def commits(personal: bool) -> list[Commit]:
    return [
        Commit(
            commit_id=f"c-{n}",
            tenant="acme",
            participant_id=f"p{n % PEOPLE}",
            expected_version=n // PEOPLE,
            recorded_at="2026-02-14T10:00:00Z",
            causation=Causation("points.award", "http", f"r-{n}", f"k-{n}", "ab" * 32),
            events=(
                PointsAwarded(
                    f"tx-{n}",
                    10,
                    10 * (n // PEOPLE + 1),
                    "order refund for the customer" if personal else None,
                    {"order": f"o-{n}"} if personal else {},
                    base_amount=10,
                ),
            ),
        )
        for n in range(N)
    ]


def timed(label: str, fn: Callable[[], object]) -> None:
    started = time.perf_counter()
    fn()
    seconds = time.perf_counter() - started
    print(f"{label}: {1e6 * seconds / N:.1f} us per commit ({N / seconds:,.0f}/s)")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        keys = open_data_keys(f"sqlite:///{tmp}/keys.db", ttl=3600)
        plain, personal = commits(False), commits(True)
        for c in personal[:PEOPLE]:
            keys.key_for_write(c.tenant, c.participant_id)  # warm: the cache holds every key
        clear_values = [codec.encode(c) for c in plain]
        sealed_values = [codec.encode(seal(c, keys)) for c in personal]
        unsealed_values = [codec.encode(c) for c in personal]
        for _ in range(2):
            timed(
                "encode, no personal value (seal passes it)",
                lambda: [codec.encode(seal(c, keys)) for c in plain],
            )
            timed(
                "encode, personal values in clear (before)",
                lambda: [codec.encode(c) for c in personal],
            )
            timed(
                "encode, personal values sealed",
                lambda: [codec.encode(seal(c, keys)) for c in personal],
            )
            timed(
                "decode, no personal value", lambda: [codec.decode(v, keys) for v in clear_values]
            )
            timed(
                "decode, personal values in clear (before)",
                lambda: [codec.decode(v, keys) for v in unsealed_values],
            )
            timed(
                "decode, personal values sealed",
                lambda: [codec.decode(v, keys) for v in sealed_values],
            )
        keys.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
