"""The rule that tells a poison record (quarantine) from an infrastructure fault (retry)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

import orjson
import psycopg
import pytest
from eventsourcing import persistence
from psycopg import errors as pg

from projections.poison import (
    UnknownStream,
    Unstorable,
    check_storable,
    diagnose,
    is_poison,
    sanitise,
    storable,
)
from schemas.codec import CodecError


def wrapped(driver: BaseException, wrapper: type[Exception]) -> Exception:
    """``driver`` raised inside eventsourcing, which re-raises its own class ``from`` it."""
    try:
        try:
            raise driver
        except BaseException as exc:
            raise wrapper(str(exc)) from exc
    except Exception as outer:
        return outer


@pytest.mark.parametrize(
    "exc",
    [
        CodecError("not a gamify commit"),
        Unstorable("$.events[0].data.reason: text with a NUL character"),
        UnknownStream("unknown stream 'later'"),
        TypeError("unsupported operand type(s) for +: 'int' and 'str'"),
        KeyError("tier"),
        OverflowError("Python int too large to convert to SQLite INTEGER"),
        psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"),
        pg.NumericValueOutOfRange("bigint out of range"),
        pg.UntranslatableCharacter("unsupported Unicode escape sequence"),
        pg.NotNullViolation("null value in column"),
        wrapped(psycopg.DataError("NUL"), persistence.DataError),
        sqlite3.DataError("string or blob too big"),
        sqlite3.IntegrityError("NOT NULL constraint failed: participants.created_at"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_about_the_record_itself_are_poison(exc: BaseException) -> None:
    assert is_poison(exc)


@pytest.mark.parametrize(
    "exc",
    [
        psycopg.OperationalError("connection lost"),
        pg.AdminShutdown("terminating connection due to administrator command"),
        pg.DiskFull("could not extend file"),
        pg.LockNotAvailable("canceling statement due to lock timeout"),
        pg.QueryCanceled("canceling statement due to statement timeout"),
        pg.SerializationFailure("could not serialize access"),
        pg.UniqueViolation("duplicate key value"),
        pg.UndefinedTable('relation "participants" does not exist'),
        psycopg.InterfaceError("the connection is closed"),
        wrapped(
            psycopg.OperationalError("server closed the connection"), persistence.OperationalError
        ),
        sqlite3.OperationalError("database is locked"),
        sqlite3.OperationalError("database or disk is full"),
        sqlite3.OperationalError("no such table: points_ledger"),
        sqlite3.IntegrityError("UNIQUE constraint failed: points_ledger.tenant"),
        persistence.ConnectionPoolClosedError("pool closed"),
        persistence.OperationalError("lock timeout"),
        OSError(28, "No space left on device"),
        TimeoutError(),
        ConnectionResetError(),
        MemoryError(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_infrastructure_faults_are_retried_never_quarantined(exc: BaseException) -> None:
    assert not is_poison(exc)


def test_the_diagnosis_names_the_driver_error_behind_a_wrapper() -> None:
    info = diagnose(wrapped(psycopg.DataError("cannot contain NUL (0x00)"), persistence.DataError))
    assert (info.kind, info.error_type) == ("store", "psycopg.DataError")
    assert diagnose(CodecError("x")).kind == "decode"
    assert diagnose(Unstorable("x")).kind == "value"
    assert diagnose(TypeError("x")).kind == "engine"


@pytest.mark.parametrize(
    "value",
    [
        b'{"reason": "a\\u0000b"}',
        b'{"a\\u0000": 1}',
        b'{"amount": 9223372036854775808}',
        b'{"amount": 18446744073709551615}',
        b'{"list": [1, ["x\\u0000"]]}',
        b'{"amount": 123456789012345678901234567890}',  # orjson reads it as a float
        b'{"amount": -123456789012345678901234567890}',
        b'{"amount": -9223372036854775809}',
    ],
)
def test_values_no_store_can_hold_are_found_on_the_record(value: bytes) -> None:
    with pytest.raises(Unstorable):
        check_storable(value)


@pytest.mark.parametrize(
    "value",
    [
        b'{"reason": "a\\\\u0000b"}',  # an escaped backslash, then "u0000": no NUL
        b'{"amount": 9223372036854775807, "id": "1234567890123456789012"}',
        b'{"reason": "tab\\there"}',
        b"not json at all \\u0000",
    ],
)
def test_values_every_store_holds_pass_the_check(value: bytes) -> None:
    check_storable(value)


def test_sanitised_text_escapes_control_and_bidi_characters_and_is_bounded() -> None:
    assert sanitise("a\x00b\u202ec") == "a\\x00b\\u202ec"
    assert len(sanitise("x" * 1000, 50)) == 50
    assert storable("user\t123") and not storable("a\x00") and storable(None)


@pytest.mark.parametrize(
    "edit",
    [
        lambda raw: raw["events"][0]["data"].update(amount=2**63),
        lambda raw: raw["events"][0]["data"].update(amount=10**30),
        lambda raw: raw["events"][0]["data"].update(reason="a\x00b"),
        lambda raw: raw["events"][0]["data"].update(unknown_field="a\x00b"),  # the decoder skips it
        lambda raw: raw["causation"].update(unknown_field=-(2**70)),
        lambda raw: raw.update(extra={"deep": ["x", {"n\x00": 1}]}),
    ],
)
def test_a_record_the_decoder_reads_can_still_be_unstorable(edit: Callable[[dict], None]) -> None:
    from schemas.codec import decode, encode
    from schemas.events import Causation, Commit, PointsAwarded

    commit = Commit(
        "c-1", "acme", "u-1", 0, "2026-02-14T10:00:00Z", Causation("points.award"),
        (PointsAwarded("tx-1", 5, 5, None, {}, base_amount=5),),
    )  # fmt: skip
    raw = orjson.loads(encode(commit))
    edit(raw)
    value = _dumps(raw)
    decode(value)  # a commit: the codec does not judge what a store can hold
    with pytest.raises(Unstorable):
        check_storable(value)


def _dumps(raw: dict) -> bytes:
    """JSON of ``raw`` with integers of any size (orjson refuses those beyond 64 bits)."""
    return json.dumps(raw, separators=(",", ":")).encode()
