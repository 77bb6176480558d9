"""Which failures make a log record poison (quarantine it) and which are the infrastructure's (retry).

The rule (README "When a record cannot be applied"): a record is poison when applying it fails
the same way every time, because of what it holds:

- ``decode``: the bytes are not a commit this code reads (``CodecError``), or it names a stream
  type this code does not project (``UnknownStream``, e.g. written by a newer version);
- ``value``: the commit holds a value no read-model store can keep (``Unstorable``: text with a
  NUL character, an integer outside 64 bits), checked on the record itself so SQLite and
  PostgreSQL, live projection and replay, quarantine the same records whatever the batching;
- ``store``: the database refused a value (PEP 249 ``DataError``; a NOT NULL or CHECK violation);
- ``engine``: the fold raised a Python error (``TypeError``, ``KeyError``, ...), which is pure
  code over the log and the rows folded from it, so it fails the same way on every replay.

Everything else is an infrastructure fault and is retried, never quarantined: any other database
error (connection lost, disk full, lock or statement timeout, serialization failure, unique or
foreign-key violations, which concurrent writers can cause, a table missing during a swap),
``OSError`` and ``MemoryError``, and the eventsourcing library's pool errors. When in doubt the
rule says "retry": a transient error taken for poison would make projection nondeterministic.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from dataclasses import dataclass
from typing import Any

import msgspec
import psycopg
from eventsourcing import persistence
from eventsourcing.domain import EventSourcingError

from projections.data_keys import KeyStoreError
from schemas.codec import CodecError

INT64 = (-(2**63), 2**63 - 1)
MAX_ERROR_CHARS = 500
MAX_FIELD_CHARS = 255
# Cheap pre-filter on the raw JSON: a NUL escape (looked for only when the record has a backslash
# at all: one memchr, and records rarely have one) or a run of 19+ digits (digits mapped to "0",
# the rest to " ", then one substring search: ~10x faster than a regex). Only records that match
# are parsed again (msgspec: integers of any size stay integers; orjson reads those beyond 64 bits
# as floats) and walked; false positives (inside longer strings) are then cleared.
_NUL_ESCAPE = b"\\u0000"
_DIGITS = bytes(0x30 if 0x30 <= i <= 0x39 else 0x20 for i in range(256))
_LONG_NUMBER = b"0" * 19
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_DRIVER_ERRORS = (sqlite3.Error, psycopg.Error)
_REFUSED_CONSTRAINTS = ("NOT NULL constraint failed", "CHECK constraint failed")


class Unstorable(ValueError):
    """The record holds a value no read-model store can keep (NUL in text, int beyond 64 bits)."""


class UnknownStream(ValueError):
    """The commit names a stream type this code does not project."""


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """Why a record is poison: ``kind`` (decode, value, store, engine), the error's type and text."""

    kind: str
    error_type: str
    message: str


def check_storable(value: bytes) -> None:
    """Raise ``Unstorable`` if the record's JSON holds text with NUL or an integer beyond 64 bits."""
    nul = b"\\" in value and _NUL_ESCAPE in value
    if not nul and _LONG_NUMBER not in value.translate(_DIGITS):
        return
    try:
        parsed = msgspec.json.decode(value)
    except msgspec.DecodeError:
        return  # decoding reports it
    _walk(parsed, "$")


def _walk(node: Any, path: str) -> None:
    if isinstance(node, str):
        if "\x00" in node:
            raise Unstorable(f"{sanitise(path, 120)}: text with a NUL character")
    elif isinstance(node, int) and not isinstance(node, bool):
        if not INT64[0] <= node <= INT64[1]:
            raise Unstorable(f"{sanitise(path, 120)}: integer outside 64 bits")
    elif isinstance(node, dict):
        for key, item in node.items():
            _walk(key, f"{path}.<key>")
            _walk(item, f"{path}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            _walk(item, f"{path}[{i}]")


def is_poison(exc: BaseException) -> bool:
    """True if ``exc`` says the record itself cannot be applied (the rule in this module's doc)."""
    driver = _driver_error(exc)
    if driver is not None:
        return _refuses_value(driver)
    if isinstance(exc, EventSourcingError | OSError | MemoryError | KeyStoreError):
        return False  # KeyStoreError: a missing or wrong master key, never the record
    return isinstance(exc, Exception)


def diagnose(exc: BaseException) -> Diagnosis:
    """The kind, type and sanitised message of a poison error, for the quarantine row."""
    driver = _driver_error(exc)
    shown = driver or exc
    if isinstance(exc, CodecError | UnknownStream):
        kind = "decode"
    elif isinstance(exc, Unstorable):
        kind = "value"
    elif driver is not None:
        kind = "store"
    else:
        kind = "engine"
    name = f"{type(shown).__module__}.{type(shown).__qualname__}"
    return Diagnosis(kind, sanitise(name, 120), sanitise(str(shown), MAX_ERROR_CHARS))


def digest(value: bytes) -> str:
    """The record bytes' SHA-256, hex: identifies the record without storing it."""
    return hashlib.sha256(value).hexdigest()


def sanitise(text: str, limit: int = MAX_FIELD_CHARS) -> str:
    """``text`` with control and bidi characters escaped (``\\x00``), cut to ``limit`` characters."""
    clean = _CONTROL.sub(_escape, text)
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def storable(text: str | None) -> bool:
    """True if every store keeps ``text`` as it is (PostgreSQL refuses NUL in text)."""
    return text is None or "\x00" not in text


def _driver_error(exc: BaseException) -> BaseException | None:
    """The database driver's error behind ``exc`` (eventsourcing wraps them), if any."""
    seen: BaseException | None = exc
    wrapped: BaseException | None = None
    for _ in range(10):
        if seen is None:
            break
        if isinstance(seen, _DRIVER_ERRORS):
            return seen
        if wrapped is None and isinstance(seen, persistence.PersistenceError):
            wrapped = seen
        seen = seen.__cause__ or seen.__context__
    return wrapped


def _refuses_value(error: BaseException) -> bool:
    if isinstance(error, psycopg.DataError | sqlite3.DataError | persistence.DataError):
        return True
    if isinstance(error, psycopg.errors.NotNullViolation | psycopg.errors.CheckViolation):
        return True
    return isinstance(error, sqlite3.IntegrityError) and str(error).startswith(_REFUSED_CONSTRAINTS)
