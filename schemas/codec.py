"""Encode and decode commits to and from log record bytes, upcasting old event versions.

Encoding uses orjson. Decoding has two paths that give the same commit: a typed msgspec decoder
that reads the whole record in one pass, the envelope and every current-version event straight
into its dataclass (~4x faster than orjson into dicts, then dataclasses; bench/decode_ab.py), and
the generic path (orjson, upcasters, then the dataclass) for everything else: older event
versions, and any record the typed decoder does not accept as it stands (which the generic path
then reads or refuses with a CodecError, exactly as before). Neither judges whether a store can
hold the values (projections.poison.check_storable does, on the bytes).

Personal fields are sealed before a commit is encoded (schemas/sealing.py: ``seal``, applied by
the event log) and opened here on decoding when ``keys`` are given: records written before
sealing existed hold them in clear and decode as they always did.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, field, fields, make_dataclass
from typing import Any, Literal, Union

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


class _RawCausation(msgspec.Struct):
    command: str
    source: str | None = None
    request_id: str | None = None
    idempotency_key: str | None = None
    fingerprint: str | None = None
    input: dict[str, Any] | None = None  # not an object: a DecodeError, so the generic path says so


def _event_shape(cls: type[Event]) -> Any:
    """The typed shape of one event on the log: tagged by ``type``, only the current ``version``.

    ``data`` decodes straight into the event dataclass; an older version (or any other value)
    does not match ``Literal``, so the whole record goes to the generic path, which upcasts.
    """
    return msgspec.defstruct(
        f"_{cls.TYPE}Shape",
        [("version", Literal[cls.class_version]), ("data", cls)],  # type: ignore[valid-type]
        tag_field="type",
        tag=cls.TYPE,
        module=__name__,
    )


_AnyEvent = Union[tuple(_event_shape(cls) for cls in EVENT_CLASSES.values())]  # type: ignore[valid-type]  # noqa: UP007


class _TypedCommit(msgspec.Struct):
    """The commit envelope (participant_commit.v1.json) with its events typed; unknown keys are
    ignored. One msgspec pass reads the whole record."""

    commit_id: str
    tenant: str
    participant_id: str
    expected_version: int
    recorded_at: str
    causation: _RawCausation
    events: list[_AnyEvent]  # type: ignore[valid-type]
    stream: str | None = None
    personal: dict[str, Any] | None = None


_TYPED = msgspec.json.Decoder(_TypedCommit)


def decode(value: bytes, keys: DataKeys | None = None) -> Commit:
    """Parse record bytes into a commit, upcasting every event to its current version.

    Sealed personal fields (``personal``) are opened with ``keys``; without keys, or once the
    participant's key is destroyed, they keep their empty values (the participant reads as
    erased). Raises CodecError when the bytes are not a commit this code can read, or its sealed
    part was altered (schemas.sealing.SealError is a CodecError's cause).
    """
    try:
        return _decode_typed(value, keys)
    except (msgspec.DecodeError, _NotTyped):  # ValidationError is a DecodeError
        return _decode_generic(value, keys)


class _NotTyped(Exception):
    """The typed path does not read this record (sealed values that are not an object)."""


def _decode_typed(value: bytes, keys: DataKeys | None = None) -> Commit:
    raw = _TYPED.decode(value)
    c = raw.causation
    events = tuple([e.data for e in raw.events])
    fingerprint, input_ = c.fingerprint, c.input
    if raw.personal is not None:
        plain = _open(raw.personal, raw.tenant, raw.participant_id, raw.commit_id, keys)
        if plain is not None:
            events = _with_sealed(events, _sealed_events(plain))
            fingerprint = plain.get("f", fingerprint)
            input_ = _with_inputs(input_, plain)
    causation = _CausationTwin(
        c.command, c.source or "http", c.request_id, c.idempotency_key, fingerprint, input_
    )
    causation.__class__ = Causation  # see _twin
    commit = _CommitTwin(
        raw.commit_id,
        raw.tenant,
        raw.participant_id,
        raw.expected_version,
        raw.recorded_at,
        causation,
        events,
        raw.stream or PARTICIPANT,
    )
    commit.__class__ = Commit
    return commit  # type: ignore[no-any-return]


def _with_sealed(events: tuple[Event, ...], sealed: dict[int, Any]) -> tuple[Event, ...]:
    """``events`` with the opened values put back, each event checked again as a whole."""
    found = list(events)
    for idx, values in sealed.items():
        if not 0 <= idx < len(found):
            continue  # as before: a sealed index without its event is ignored
        if not isinstance(values, dict):
            raise _NotTyped
        event = found[idx]
        # to_builtins: the event's fields as a dict (JSON values: equal copies), read in C
        found[idx] = msgspec.convert({**msgspec.to_builtins(event), **values}, type(event))
    return tuple(found)


def _twin(cls: type) -> Any:
    """A mutable twin of the frozen slotted dataclass ``cls``: the same fields, defaults and slots.

    ``cls``'s generated __init__ sets each field through ``object.__setattr__`` (it is frozen),
    which costs more than reading the whole record; the twin's __init__ stores them directly.
    The decoder builds a twin, then gives it ``cls`` as its class (``__class__`` assignment, which
    Python allows between classes of the same layout): the object is then a ``cls`` like any
    other (equality, hash, repr, frozenness, ``dataclasses.replace``). TypeError at import if
    ``cls`` stops being one this works for.
    """
    twin = make_dataclass(
        f"_{cls.__name__}Twin",
        [(f.name, f.type, field(default=f.default)) for f in fields(cls)],
        slots=True,
        eq=False,
        repr=False,
    )
    if (
        twin.__slots__ != getattr(cls, "__slots__", None)
        or hasattr(cls, "__post_init__")
        or any(f.default_factory is not MISSING for f in fields(cls))
        or cls.__bases__ != (object,)
    ):
        raise TypeError(f"schemas.codec cannot build {cls.__name__} through a twin: update it")
    return twin


_CommitTwin, _CausationTwin = _twin(Commit), _twin(Causation)


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
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        # ValueError: orjson's, or sealed values that are not an object (dict.update)
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
