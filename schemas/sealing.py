"""Personal fields of a commit, sealed with the participant's data key (crypto-shredding).

A participant commit's personal fields (``PERSONAL``: display name, avatar, attributes and the
free text a client sends) never reach the log in clear. ``seal`` moves their values out of the
events (which keep the fields' empty defaults) and out of ``causation.input``, together with the
request fingerprint, into one AES-256-GCM envelope per commit, ``Commit.personal``::

    {"sealed": "v1", "kid": "<data key id>", "nonce": "<base64, 12 bytes>", "ct": "<base64>"}

The plaintext is JSON ``{"e": [[event index, {field: value}], ...], "i": {input key: value},
"f": fingerprint}``; the additional data binds it to the tenant, the participant and the commit
(``aad``), so an envelope copied to another participant or commit does not open. ``open_personal``
gives the plaintext back, or None when the key is gone (erased): the fields then keep their empty
defaults, which is how a participant reads once erased, in every replay. docs/erasure.md.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable
from dataclasses import fields
from operator import attrgetter
from typing import Any, Protocol

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from schemas.events import (
    PARTICIPANT,
    BadgeEarned,
    Commit,
    Event,
    EventTracked,
    ParticipantProfileUpdated,
    ParticipantRegistered,
    PointsAwarded,
    PointsDeducted,
    TierChanged,
)

SEALED_VERSION = "v1"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # GCM's standard nonce; random per envelope (one key seals < 2**32 commits)

# Event type -> its personal fields (sealed on the log, emptied when the key is destroyed).
PERSONAL: dict[str, tuple[str, ...]] = {
    ParticipantRegistered.TYPE: ("display_name", "avatar_url", "attributes"),
    ParticipantProfileUpdated.TYPE: ("changes", "attributes_set", "attributes_removed"),
    PointsAwarded.TYPE: ("reason", "metadata"),
    PointsDeducted.TYPE: ("reason", "metadata"),
    TierChanged.TYPE: ("reason",),
    BadgeEarned.TYPE: ("metadata",),
    EventTracked.TYPE: ("properties",),
}
# Keys of ``causation.input`` (the command's recorded input) that hold personal data.
PERSONAL_INPUT = frozenset(
    {"display_name", "avatar_url", "attributes", "reason", "metadata", "properties"}
)


class SealError(ValueError):
    """A sealed envelope is malformed, or was altered, or belongs to another participant/commit."""


class DataKeys(Protocol):
    """Where data keys live: per (tenant, participant) one random AES-256 key, outside the log."""

    def key_for_write(self, tenant: str, participant_id: str) -> tuple[str, bytes]:
        """The participant's current (kid, key), created on first use."""
        ...

    def key_for_read(self, tenant: str, participant_id: str, kid: str) -> bytes | None:
        """The key ``kid`` of the participant, or None if it was destroyed (erased)."""
        ...


def new_key() -> bytes:
    """A fresh random data key (AES-256)."""
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def aad(tenant: str, participant_id: str, commit_id: str) -> bytes:
    """Additional authenticated data of a commit's envelope: ids never contain NUL."""
    return b"\x00".join(
        (
            b"gamify.personal." + SEALED_VERSION.encode(),
            *(s.encode() for s in (tenant, participant_id, commit_id)),
        )
    )


def _cipher(key: bytes) -> AESGCM:
    # Not cached here: a destroyed key must not outlive the key store's cache (its TTL) in memory.
    return AESGCM(key)


_SHAPES: dict[type, tuple[Callable[[Any], tuple[Any, ...]], dict[str, int]]] = {}


def rebuilt(obj: Any, values: dict[str, Any]) -> Any:
    """``dataclasses.replace(obj, **values)`` for our plain frozen dataclasses, several times
    faster (sealing and opening call it per commit). TypeError for a field the class lacks."""
    cls = type(obj)
    shape = _SHAPES.get(cls)
    if shape is None:
        names = [f.name for f in fields(cls)]
        shape = _SHAPES[cls] = (attrgetter(*names), {n: i for i, n in enumerate(names)})
    get, index = shape
    args = list(get(obj))
    try:
        for name, value in values.items():
            args[index[name]] = value
    except KeyError as exc:
        raise TypeError(f"{cls.__name__} has no field {exc}") from None
    return cls(*args)


def encrypt(key: bytes, kid: str, plaintext: bytes, additional: bytes) -> dict[str, str]:
    """One envelope (module docstring) of ``plaintext`` under ``key``."""
    nonce = os.urandom(NONCE_BYTES)
    ct = _cipher(key).encrypt(nonce, plaintext, additional)
    return {"sealed": SEALED_VERSION, "kid": kid, "nonce": _b64(nonce), "ct": _b64(ct)}


def decrypt(key: bytes, envelope: dict[str, Any], additional: bytes) -> bytes:
    """The plaintext of ``envelope``; SealError if it is malformed, altered or not bound to ``additional``."""
    try:
        nonce = binascii.a2b_base64(envelope["nonce"], strict_mode=True)
        ct = binascii.a2b_base64(envelope["ct"], strict_mode=True)
        return _cipher(key).decrypt(nonce, ct, additional)
    except (InvalidTag, KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise SealError(f"sealed personal data does not open: {type(exc).__name__}") from exc


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _empty(value: Any) -> bool:
    return value is None or value == {} or value == [] or value == ""


def has_personal(commit: Commit) -> bool:
    """True when ``seal`` would seal something: a participant commit with a personal value."""
    if commit.stream != PARTICIPANT or commit.personal is not None:
        return False
    for event in commit.events:
        for name in PERSONAL.get(event.TYPE, ()):
            if not _empty(getattr(event, name)):
                return True
    given = commit.causation.input
    return bool(given) and any(k in PERSONAL_INPUT and not _empty(v) for k, v in given.items())


def seal(commit: Commit, keys: DataKeys) -> Commit:
    """``commit`` with its personal values moved into one envelope (``Commit.personal``).

    Unchanged (and no key is created) when the commit has no personal value: only commits that
    carry personal data pay for a key lookup and an encryption. Only participant streams hold
    personal data; definition, reward-stock and API-key commits pass through.
    """
    if commit.stream != PARTICIPANT or commit.personal is not None:
        return commit
    sealed_events: list[list[Any]] = []
    events: list[Event] = []
    for idx, event in enumerate(commit.events):
        names = PERSONAL.get(event.TYPE, ())
        values = {n: getattr(event, n) for n in names if not _empty(getattr(event, n))}
        if values:
            sealed_events.append([idx, values])
            event = rebuilt(event, {n: _default(event, n) for n in values})
        events.append(event)
    given = commit.causation.input or {}
    inputs = {k: v for k, v in given.items() if k in PERSONAL_INPUT and not _empty(v)}
    if not sealed_events and not inputs:
        return commit
    plain: dict[str, Any] = {"e": sealed_events, "i": inputs}
    causation = commit.causation
    if causation.fingerprint is not None:
        plain["f"] = causation.fingerprint
    kept = None if causation.input is None else {k: v for k, v in given.items() if k not in inputs}
    causation = rebuilt(causation, {"fingerprint": None, "input": kept})
    kid, key = keys.key_for_write(commit.tenant, commit.participant_id)
    envelope = encrypt(
        key, kid, orjson.dumps(plain), aad(commit.tenant, commit.participant_id, commit.commit_id)
    )
    return rebuilt(commit, {"events": tuple(events), "causation": causation, "personal": envelope})


def _default(event: Event, name: str) -> Any:
    value = getattr(event, name)
    if isinstance(value, dict):
        return {}
    if isinstance(value, list):
        return []
    return None


def open_personal(
    envelope: Any, tenant: str, participant_id: str, commit_id: str, keys: DataKeys | None
) -> dict[str, Any] | None:
    """The plaintext of a commit's envelope, or None when its key is gone (or no ``keys``).

    Raises SealError when the envelope is malformed, altered, or bound to another commit: a
    record that was tampered with is refused (the projector quarantines it), never read as erased.
    """
    if not isinstance(envelope, dict) or envelope.get("sealed") != SEALED_VERSION:
        raise SealError(f"unknown sealed envelope {str(envelope)[:40]!r}")
    kid = envelope.get("kid")
    if not isinstance(kid, str):
        raise SealError("sealed envelope without a key id")
    key = None if keys is None else keys.key_for_read(tenant, participant_id, kid)
    if key is None:
        return None
    plain = orjson.loads(decrypt(key, envelope, aad(tenant, participant_id, commit_id)))
    if not isinstance(plain, dict):
        raise SealError("sealed personal data is not an object")
    return plain
