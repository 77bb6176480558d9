"""Decode cost per record, old against new, in one process: ``python -m bench.decode_ab``.

``generic`` is the decoder before msgspec (orjson into dicts, then the event dataclasses), still
the codec's path for older event versions; ``typed`` is schemas.codec.decode today. Records are
``make bench-fast``'s workload.
"""

from __future__ import annotations

import sys
import time

from bench.apply_profile import records_of
from bench.env import FAST
from schemas import codec


def main() -> int:
    values = [
        r.value
        for found in records_of(FAST.participants, FAST.events, FAST.partitions).values()
        for r in found
    ]
    for _ in range(2):
        for name, fn in (
            ("generic (orjson + dataclasses)", codec._decode_generic),  # noqa: SLF001
            ("typed (msgspec)", codec.decode),
        ):
            started = time.perf_counter()
            for value in values:
                fn(value)
            seconds = time.perf_counter() - started
            print(
                f"{name}: {1e6 * seconds / len(values):.1f} us per record ({len(values) / seconds:,.0f}/s)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
