"""Decode cost per record, before against now, in one process: ``python -m bench.decode_ab``.

Records are ``make bench-fast``'s workload (a sample of ``--records``), in clear as the bench
writes them and sealed as the product writes them (``schemas.sealing.seal``: every award's
``reason`` and ``metadata`` go into the envelope; keys in a dict). Per variant, the process CPU
time (``time.process_time``) per record, best of ``--rounds`` rounds; the variants alternate
within each round, so the machine's load shifts them alike:

- ``generic``: orjson into dicts, then the event dataclasses (the codec's path for older event
  versions and for anything the typed path refuses);
- ``before``: the typed decoder before the one-pass change (a copy below): msgspec reads the
  envelope with each event's data as ``msgspec.Raw``, one more msgspec call per event, then
  ``Causation(...)`` and ``Commit(...)``;
- ``now``: ``schemas.codec.decode``;
- ``... + check``: what the projector's ``_read`` does per record: the decode, then
  ``projections.poison.check_storable`` of the bytes (``before + check`` with the check as it was).

    python -m bench.decode_ab                  # 20,000 records, 5 rounds
    python -m bench.decode_ab --records 5000 --rounds 3
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

import msgspec
import orjson

from bench.apply_profile import records_of
from bench.env import FAST
from projections.poison import check_storable
from schemas import codec
from schemas.events import EVENT_CLASSES, PARTICIPANT, Causation, Commit
from schemas.sealing import new_key, seal


class _Keys:
    """DataKeys in a dict (tests/unit/test_sealing.py's FakeKeys)."""

    def __init__(self) -> None:
        self.keys: dict[tuple[str, str], tuple[str, bytes]] = {}

    def key_for_write(self, tenant: str, participant_id: str) -> tuple[str, bytes]:
        if (tenant, participant_id) not in self.keys:
            self.keys[(tenant, participant_id)] = (f"k{len(self.keys)}", new_key())
        return self.keys[(tenant, participant_id)]

    def key_for_read(self, tenant: str, participant_id: str, kid: str) -> bytes | None:
        found = self.keys.get((tenant, participant_id))
        return found[1] if found is not None and found[0] == kid else None


# --- the typed decoder before the one-pass change (schemas/codec.py at 2ab2dce) ----------------


class _RawEvent(msgspec.Struct):
    type: str
    version: int
    data: msgspec.Raw


class _RawCommit(msgspec.Struct):
    commit_id: str
    tenant: str
    participant_id: str
    expected_version: int
    recorded_at: str
    causation: codec._RawCausation  # noqa: SLF001
    events: list[_RawEvent]
    stream: str | None = None
    personal: dict[str, Any] | None = None


_ENVELOPE = msgspec.json.Decoder(_RawCommit)
_DATA = {t: (cls.class_version, msgspec.json.Decoder(cls), cls) for t, cls in EVENT_CLASSES.items()}


class _NotTyped(Exception):
    pass


def before(value: bytes, keys: Any = None) -> Commit:
    """``schemas.codec.decode`` before the one-pass change."""
    try:
        return _before_typed(value, keys)
    except (msgspec.DecodeError, _NotTyped):
        return codec._decode_generic(value, keys)  # noqa: SLF001


def _before_typed(value: bytes, keys: Any = None) -> Commit:
    raw = _ENVELOPE.decode(value)
    c = raw.causation
    fingerprint, input_ = c.fingerprint, c.input
    sealed: dict[int, Any] = {}
    if raw.personal is not None:
        plain = codec._open(raw.personal, raw.tenant, raw.participant_id, raw.commit_id, keys)  # noqa: SLF001
        if plain is not None:
            sealed = codec._sealed_events(plain)  # noqa: SLF001
            fingerprint = plain.get("f", fingerprint)
            input_ = codec._with_inputs(input_, plain)  # noqa: SLF001
    events = []
    for idx, e in enumerate(raw.events):
        current = _DATA.get(e.type)
        if current is None or current[0] != e.version:
            raise _NotTyped
        if idx in sealed:
            data = msgspec.json.decode(e.data)
            if not isinstance(data, dict) or not isinstance(sealed[idx], dict):
                raise _NotTyped
            events.append(msgspec.convert({**data, **sealed[idx]}, current[2]))
        else:
            events.append(current[1].decode(e.data))
    return Commit(
        commit_id=raw.commit_id,
        tenant=raw.tenant,
        participant_id=raw.participant_id,
        expected_version=raw.expected_version,
        recorded_at=raw.recorded_at,
        causation=Causation(
            c.command, c.source or "http", c.request_id, c.idempotency_key, fingerprint, input_
        ),
        events=tuple(events),
        stream=raw.stream or PARTICIPANT,
    )


# --- the check before this branch (projections/poison.py at 2ab2dce) ------------------------

_NUL_ESCAPE = b"\\u0000"
_DIGITS = bytes(0x30 if 0x30 <= i <= 0x39 else 0x20 for i in range(256))
_LONG_NUMBER = b"0" * 19


def check_before(value: bytes) -> None:
    """``check_storable``'s pre-filter before this branch (records that pass it are walked)."""
    if _NUL_ESCAPE not in value and _LONG_NUMBER not in value.translate(_DIGITS):
        return
    check_storable(value)


# --- the measurement ----------------------------------------------------------------------


def _cpu_per_record(fn: Callable[[bytes], Any], values: list[bytes]) -> float:
    started = time.process_time()
    for value in values:
        fn(value)
    return 1e6 * (time.process_time() - started) / len(values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.decode_ab", description=__doc__)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    every = [
        r.value
        for found in records_of(FAST.participants, FAST.events, FAST.partitions).values()
        for r in found
    ]
    clear = every[:: max(1, len(every) // args.records)][: args.records]
    keys = _Keys()
    sealed = [codec.encode(seal(codec.decode(v), keys)) for v in clear]
    for value in clear[:200] + sealed[:200]:  # the same commits, or the figures mean nothing
        generic = codec._decode_generic(value, keys)  # noqa: SLF001
        assert before(value, keys) == codec.decode(value, keys) == generic

    def read_before(value: bytes) -> None:
        before(value)
        check_before(value)

    def read_now(value: bytes) -> None:
        codec.decode(value)
        check_storable(value)

    variants: dict[str, tuple[Callable[[bytes], Any], list[bytes]]] = {
        "clear: generic": (codec._decode_generic, clear),  # noqa: SLF001
        "clear: before": (before, clear),
        "clear: now": (codec.decode, clear),
        "clear: before + check": (read_before, clear),
        "clear: now + check": (read_now, clear),
        "sealed: before": (lambda v: before(v, keys), sealed),
        "sealed: now": (lambda v: codec.decode(v, keys), sealed),
    }
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(args.rounds):
        for name, (fn, values) in variants.items():
            best[name] = min(best[name], _cpu_per_record(fn, values))
    print(
        f"{len(clear):,} records ({sum(map(len, clear)) // len(clear)} bytes in clear, "
        f"{sum(map(len, sealed)) // len(sealed)} sealed), best of {args.rounds} rounds, "
        f"load average {open('/proc/loadavg').read().split()[0]}"  # noqa: PTH123, SIM115
    )
    for name, us in best.items():
        print(f"  {name:24s} {us:6.2f} us CPU per record")
    print(orjson.dumps({k: round(v, 2) for k, v in best.items()}).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
