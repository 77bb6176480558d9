"""Encode and decode commits to and from log record bytes, upcasting old event versions.

Encoding uses orjson. Decoding has two paths that give the same commit: a typed msgspec decoder
that builds the envelope and each current-version event straight from the bytes (~3x faster than
orjson into dicts, then dataclasses; bench/apply_profile.py --decode-only), and the generic path
(orjson, upcasters, then the dataclass) for everything else: older event versions, and any record
the typed decoder does not accept as it stands (which the generic path then reads or refuses with
a CodecError, exactly as before).

Personal fields are sealed before a commit is encoded (schemas/sealing.py: ``seal``, applied by
the event log) and opened here on decoding when ``keys`` are given: records written before
sealing existed hold them in clear and decode as they always did.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

import msgspec
import orjson

from schemas.events import EVENT_CLASSES, PARTICIPANT, Causation, Commit, Event
from schemas.sealing import DataKeys, SealError, open_personal

COMMIT_SCHEMA_VERSION = 1
HEADER_SCHEMA_VERSION = "gamify-schema-version"
HEADER_EVENT_TYPES = "gamify-event-types"


class CodecError(ValueError):
    """The bytes are not a commit this codec can read."""


def encode(commit: Commit) -> bytes:
    """Serialise a commit to the JSON bytes stored on the log."""
    return orjson.dumps(
        {
            "schema_version": COMMIT_SCHEMA_VERSION,
            "stream": commit.stream,
            "commit_id": commit.commit_id,
            "tenant": commit.tenant,
            "participant_id": commit.participant_id,
            "expected_version": commit.expected_version,
            "recorded_at": commit.recorded_at,
            "causation": {
                "command": commit.causation.command,
                "source": commit.causation.source,
                "request_id": commit.causation.request_id,
                "idempotency_key": commit.causation.idempotency_key,
                **_fingerprint(commit.causation),
                **({} if commit.causation.input is None else {"input": commit.causation.input}),
            },
            "events": [encode_event(e) for e in commit.events],
            **({} if commit.personal is None else {"personal": commit.personal}),
        }
    )


def encode_event(event: Event) -> dict[str, Any]:
    """The JSON object of one event: type, version and data."""
    data = {f.name: getattr(event, f.name) for f in fields(event)}
    return {"type": event.TYPE, "version": event.class_version, "data": data}


def events_json(events: Sequence[Event]) -> list[dict[str, Any]]:
    """``events`` as an answer shows them: JSON objects (type, version, data), JSON values only."""
    return orjson.loads(orjson.dumps([encode_event(e) for e in events]))  # type: ignore[no-any-return]


def _fingerprint(causation: Causation) -> dict[str, str]:
    # Written only when there is one, so commits without it keep their old bytes.
    return {} if causation.fingerprint is None else {"fingerprint": causation.fingerprint}


def fingerprint(fields_: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of a request's fields as canonical JSON (sorted keys), without its key.

    ``fields_`` is what the command was built from: the HTTP body plus path parameters, or an
    inbound message without ``command`` and ``tenant``; ``idempotency_key`` is left out.
    """
    payload = {k: v for k, v in fields_.items() if k != "idempotency_key"}
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


def headers(commit: Commit) -> list[tuple[str, bytes]]:
    """Record headers repeating the schema version and the event types, for routing and tooling."""
    types = ",".join(e.TYPE for e in commit.events)
    return [
        (HEADER_SCHEMA_VERSION, str(COMMIT_SCHEMA_VERSION).encode()),
        (HEADER_EVENT_TYPES, types.encode()),
    ]


class _RawEvent(msgspec.Struct):
    """An event as it is on the log; ``data`` stays bytes until its class is known."""

    type: str
    version: int
    data: msgspec.Raw


class _RawCausation(msgspec.Struct):
    command: str
    source: str | None = None
    request_id: str | None = None
    idempotency_key: str | None = None
    fingerprint: str | None = None
    input: dict[str, Any] | None = None  # not an object: a DecodeError, so the generic path says so


class _RawCommit(msgspec.Struct):
    """The commit envelope (participant_commit.v1.json); unknown keys are ignored."""

    commit_id: str
    tenant: str
    participant_id: str
    expected_version: int
    recorded_at: str
    causation: _RawCausation
    events: list[_RawEvent]
    stream: str | None = None
    personal: dict[str, Any] | None = None


_ENVELOPE = msgspec.json.Decoder(_RawCommit)
# Event type -> (current class version, a decoder of its data straight into the dataclass).
_DATA = {t: (cls.class_version, msgspec.json.Decoder(cls), cls) for t, cls in EVENT_CLASSES.items()}


def decode(value: bytes, keys: DataKeys | None = None) -> Commit:
    """Parse record bytes into a commit, upcasting every event to its current version.

    Sealed personal fields (``personal``) are opened with ``keys``; without keys, or once the
    participant's key is destroyed, they keep their empty values (the participant reads as
    erased). Raises CodecError when the bytes are not a commit this code can read, or its sealed
    part was altered (schemas.sealing.SealError is a CodecError's cause).
    """
    try:
        return _decode_typed(value, keys)
    except (msgspec.DecodeError, _NotTyped):
        return _decode_generic(value, keys)


class _NotTyped(Exception):
    """The typed path does not read this record (an older event version, an unknown type)."""


def _decode_typed(value: bytes, keys: DataKeys | None = None) -> Commit:
    raw = _ENVELOPE.decode(value)
    c = raw.causation
    fingerprint, input_ = c.fingerprint, c.input
    sealed: dict[int, Any] = {}
    if raw.personal is not None:
        plain = _open(raw.personal, raw.tenant, raw.participant_id, raw.commit_id, keys)
        if plain is not None:
            sealed = _sealed_events(plain)
            fingerprint = plain.get("f", fingerprint)
            input_ = _with_inputs(input_, plain)
    events = []
    for idx, e in enumerate(raw.events):
        current = _DATA.get(e.type)
        if current is None or current[0] != e.version:
            raise _NotTyped
        if idx in sealed:  # the clear fields and the opened ones, checked as one event
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


def _sealed_events(plain: dict[str, Any]) -> dict[int, Any]:
    try:
        return {int(idx): values for idx, values in plain.get("e", [])}
    except (TypeError, ValueError) as exc:
        raise CodecError(f"sealed personal data does not fit its events: {exc!r}") from exc


def _open(
    envelope: Any, tenant: str, participant_id: str, commit_id: str, keys: DataKeys | None
) -> dict[str, Any] | None:
    try:
        return open_personal(envelope, tenant, participant_id, commit_id, keys)
    except (SealError, orjson.JSONDecodeError) as exc:
        raise CodecError(f"commit {commit_id!r}: {exc}") from exc


def _with_inputs(input_: dict[str, Any] | None, plain: dict[str, Any]) -> dict[str, Any] | None:
    inputs = plain.get("i") or {}
    return input_ if not inputs or input_ is None else {**input_, **inputs}


def _decode_generic(value: bytes, keys: DataKeys | None = None) -> Commit:
    try:
        raw = orjson.loads(value)
        causation = raw["causation"]
        personal = raw.get("personal")
        if personal is not None:
            _unseal_raw(raw, keys)
        return Commit(
            commit_id=_str(raw["commit_id"]),
            tenant=_str(raw["tenant"]),
            participant_id=_str(raw["participant_id"]),
            expected_version=_int(raw["expected_version"]),
            recorded_at=_str(raw["recorded_at"]),
            causation=Causation(
                command=_str(causation["command"]),
                source=_str(causation.get("source") or "http"),
                request_id=causation.get("request_id"),
                idempotency_key=causation.get("idempotency_key"),
                fingerprint=causation.get("fingerprint"),
                input=_input(causation.get("input")),
            ),
            events=tuple(decode_event(e) for e in raw["events"]),
            stream=_str(raw.get("stream") or PARTICIPANT),
        )
    except CodecError:
        raise
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise CodecError(f"not a gamify commit: {exc!r}") from exc


def _unseal_raw(raw: dict[str, Any], keys: DataKeys | None) -> None:
    """Put a record's sealed values back into its raw JSON, before upcasting (any version)."""
    plain = _open(
        raw["personal"],
        _str(raw["tenant"]),
        _str(raw["participant_id"]),
        _str(raw["commit_id"]),
        keys,
    )
    if plain is None:
        return
    for idx, values in plain.get("e", []):
        raw["events"][idx]["data"].update(values)
    causation = raw["causation"]
    if "f" in plain:
        causation["fingerprint"] = plain["f"]
    causation["input"] = _with_inputs(causation.get("input"), plain)


def decode_event(raw: dict[str, Any]) -> Event:
    """Build the current event class from its JSON object, applying upcasters in order."""
    type_, version, data = raw["type"], _int(raw["version"]), dict(raw["data"])
    cls = EVENT_CLASSES.get(type_)
    if cls is None:
        raise CodecError(f"unknown event type {type_!r}")
    while version < cls.class_version:
        upcast = getattr(cls, f"upcast_v{version}_v{version + 1}", None)
        if upcast is None:
            raise CodecError(f"no upcaster for {type_} v{version}")
        upcast(data)
        version += 1
    if version != cls.class_version:
        raise CodecError(f"{type_} v{version} is newer than this code (v{cls.class_version})")
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known})


def _input(value: Any) -> dict[str, Any] | None:
    if value is not None and not isinstance(value, dict):
        raise TypeError(f"causation.input: expected an object, got {type(value).__name__}")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value
