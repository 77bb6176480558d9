"""Sealing personal fields with a participant's data key: round trip, tamper, erasure, migration."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from jsonschema import Draft202012Validator

from schemas import codec
from schemas.codec import CodecError, decode, encode
from schemas.events import (
    DEFINITION,
    BadgeEarned,
    Causation,
    Commit,
    DefinitionCreated,
    EventTracked,
    ParticipantProfileUpdated,
    ParticipantRegistered,
    PointsAwarded,
    PointsDeducted,
    TierChanged,
)
from schemas.sealing import has_personal, new_key, seal

SCHEMA_DIR = Path(codec.__file__).parent / "json"
SECRETS = ("Jane Doe", "jane@example.com", "https://cdn.example/jane.png", "birthday gift for Jane")


class FakeKeys:
    """DataKeys in a dict: what the data-key store does, without a database."""

    def __init__(self) -> None:
        self.keys: dict[tuple[str, str], tuple[str, bytes]] = {}
        self.created = 0

    def key_for_write(self, tenant: str, participant_id: str) -> tuple[str, bytes]:
        if (tenant, participant_id) not in self.keys:
            self.created += 1
            self.keys[(tenant, participant_id)] = (f"k{self.created}", new_key())
        return self.keys[(tenant, participant_id)]

    def key_for_read(self, tenant: str, participant_id: str, kid: str) -> bytes | None:
        found = self.keys.get((tenant, participant_id))
        return found[1] if found is not None and found[0] == kid else None

    def destroy(self, tenant: str, participant_id: str) -> None:
        self.keys.pop((tenant, participant_id), None)


COMMIT = Commit(
    commit_id="c-1",
    tenant="acme",
    participant_id="user_123",
    expected_version=0,
    recorded_at="2026-02-14T10:00:00Z",
    causation=Causation(
        "points.award",
        "http",
        "req-1",
        "order-1",
        "ab" * 32,
        {"participant_id": "user_123", "amount": 50, "reason": SECRETS[3], "metadata": {}},
    ),
    events=(
        ParticipantRegistered(SECRETS[0], SECRETS[2], {"email": SECRETS[1]}, auto_created=False),
        ParticipantProfileUpdated(
            {"display_name": SECRETS[0]}, False, {"email": SECRETS[1]}, ["x"]
        ),
        PointsAwarded("tx-1", 50, 50, SECRETS[3], {"note": SECRETS[0]}, base_amount=50),
        PointsDeducted("tx-2", 20, 30, None, {}),
        TierChanged("gold", "Gold", 2, reason=SECRETS[3]),
        BadgeEarned("vip", "VIP", manual=True, metadata={"by": SECRETS[0]}),
        EventTracked("e-1", "login", {"email": SECRETS[1]}, "2026-02-14T10:00:00Z"),
    ),
)


def test_a_sealed_commit_reads_back_unchanged_with_its_key() -> None:
    keys = FakeKeys()
    sealed = encode(seal(COMMIT, keys))
    assert decode(sealed, keys) == COMMIT


def test_the_log_bytes_of_a_sealed_commit_hold_no_personal_value() -> None:
    keys = FakeKeys()
    sealed = encode(seal(COMMIT, keys))
    for secret in SECRETS:
        assert secret.encode() not in sealed
    assert b"ab" * 32 not in sealed, "the request fingerprint is sealed with the fields"
    raw = orjson.loads(sealed)
    assert raw["personal"]["sealed"] == "v1"
    assert raw["events"][2]["data"]["amount"] == 50, "amounts and codes stay in clear"
    assert raw["causation"]["input"]["amount"] == 50


def test_a_sealed_commit_satisfies_the_published_commit_schema() -> None:
    schema = json.loads((SCHEMA_DIR / "participant_commit.v1.json").read_text())
    raw = orjson.loads(encode(seal(COMMIT, FakeKeys())))
    assert list(Draft202012Validator(schema).iter_errors(raw)) == []


def test_once_the_key_is_destroyed_personal_fields_read_as_empty_and_the_rest_stays() -> None:
    keys = FakeKeys()
    sealed = encode(seal(COMMIT, keys))
    keys.destroy("acme", "user_123")
    erased = decode(sealed, keys)
    registered, updated, awarded, deducted, tier, badge, tracked = erased.events
    assert registered == ParticipantRegistered(None, None, {}, auto_created=False)
    assert updated == ParticipantProfileUpdated({}, False, {}, [])
    assert (awarded.amount, awarded.reason, awarded.metadata) == (50, None, {})
    assert deducted == COMMIT.events[3]
    assert (tier.code, tier.reason) == ("gold", None)
    assert badge.metadata == {} and tracked.properties == {} and tracked.event_name == "login"
    assert erased.causation.fingerprint is None
    assert erased.causation.input == {"participant_id": "user_123", "amount": 50, "metadata": {}}


def test_a_new_key_after_erasure_does_not_open_what_the_old_key_sealed() -> None:
    keys = FakeKeys()
    sealed = encode(seal(COMMIT, keys))
    keys.destroy("acme", "user_123")
    keys.key_for_write("acme", "user_123")
    assert decode(sealed, keys).events[0].display_name is None


def test_an_altered_ciphertext_is_refused_not_read_as_erased() -> None:
    keys = FakeKeys()
    raw = orjson.loads(encode(seal(COMMIT, keys)))
    ct = raw["personal"]["ct"]
    raw["personal"]["ct"] = ("A" if ct[0] != "A" else "B") + ct[1:]
    with pytest.raises(CodecError, match="does not open"):
        decode(orjson.dumps(raw), keys)


def test_an_envelope_moved_to_another_participant_or_commit_does_not_open() -> None:
    keys = FakeKeys()
    sealed = orjson.loads(encode(seal(COMMIT, keys)))
    keys.keys[("acme", "user_999")] = keys.keys[("acme", "user_123")]  # same key, other AAD
    for field, value in (("participant_id", "user_999"), ("commit_id", "c-2")):
        moved = {**sealed, field: value}
        with pytest.raises(CodecError, match="does not open"):
            decode(orjson.dumps(moved), keys)


def test_without_keys_a_sealed_commit_reads_as_erased() -> None:
    sealed = encode(seal(COMMIT, FakeKeys()))
    assert decode(sealed).events[0].display_name is None


def test_a_commit_without_personal_values_is_not_sealed_and_creates_no_key() -> None:
    keys = FakeKeys()
    plain = replace(
        COMMIT,
        causation=Causation("points.award", "http", None, "k-1", "cd" * 32, {"amount": 5}),
        events=(PointsAwarded("tx-1", 5, 5, None, {}, base_amount=5),),
    )
    assert not has_personal(plain)
    assert seal(plain, keys) is plain
    assert keys.created == 0
    assert b"cd" * 32 in encode(plain), "a fingerprint of a request without personal data stays"


def test_definition_commits_are_never_sealed() -> None:
    definition = replace(
        COMMIT,
        stream=DEFINITION,
        participant_id="badge:vip",
        causation=Causation("badges.create"),
        events=(DefinitionCreated("badge", "b-1", "vip", {"name": "VIP"}),),
    )
    assert seal(definition, FakeKeys()) is definition


def test_records_written_before_sealing_still_read_in_clear() -> None:
    old = encode(COMMIT)  # no "personal": what existing logs hold
    assert decode(old, FakeKeys()) == COMMIT
    assert decode(old) == COMMIT


def test_an_older_event_version_is_opened_before_it_is_upcast() -> None:
    keys = FakeKeys()
    raw = orjson.loads(encode(seal(COMMIT, keys)))
    awarded = raw["events"][2]
    awarded["version"] = 2  # as if written by v2 code: the upcaster must see the opened fields
    for name in ("base_amount", "multiplier", "expires_at"):
        awarded["data"].pop(name)
    decoded = decode(orjson.dumps(raw), keys).events[2]
    assert (decoded.reason, decoded.metadata, decoded.base_amount) == (
        SECRETS[3],
        {"note": SECRETS[0]},
        50,
    )


class CachedFakeKeys(FakeKeys):
    def cached_write_key(self, tenant: str, participant_id: str) -> bool:
        return (tenant, participant_id) in self.keys


class ManyLog:
    """A log that takes several commits at once (as KafkaEventLog.append_many does)."""

    def __init__(self) -> None:
        self.written: list[Commit] = []

    async def append(self, commit: Commit) -> object:
        self.written.append(commit)
        return len(self.written) - 1

    async def append_many(self, commits: list[Commit]) -> list[object]:
        return [await self.append(commit) for commit in commits]


@pytest.mark.parametrize("method", ["append", "append_many"])
async def test_every_way_to_append_through_the_sealing_log_seals(method: str) -> None:
    """The inbound processor appends a wave with append_many: that path must seal too."""
    from services.adapters.sealing_event_log import SealingEventLog

    inner = ManyLog()
    log = SealingEventLog(inner, CachedFakeKeys())  # type: ignore[arg-type]
    second = replace(COMMIT, commit_id="c-2", expected_version=1)
    if method == "append":
        for commit in (COMMIT, second):
            await log.append(commit)
    else:
        await log.append_many([COMMIT, second])
    raw = b"".join(encode(commit) for commit in inner.written)
    assert len(inner.written) == 2
    assert not [secret for secret in SECRETS if secret.encode() in raw]


def test_the_sealing_log_refuses_to_pass_an_unknown_append_through() -> None:
    from services.adapters.sealing_event_log import SealingEventLog

    class Other(ManyLog):
        async def append_batch(self, commits: list[Commit]) -> None: ...

    log = SealingEventLog(Other(), CachedFakeKeys())  # type: ignore[arg-type]
    with pytest.raises(AttributeError, match="unsealed"):
        log.append_batch  # noqa: B018


def _resealed(value: bytes, keys: FakeKeys, plain: dict) -> bytes:
    """``value`` (a sealed COMMIT) with its envelope replaced by one sealing ``plain``."""
    from schemas.sealing import aad, encrypt

    raw = orjson.loads(value)
    kid, key = keys.key_for_write("acme", "user_123")
    raw["personal"] = encrypt(key, kid, orjson.dumps(plain), aad("acme", "user_123", "c-1"))
    return orjson.dumps(raw)


@pytest.mark.parametrize(
    "sealed_events",
    [
        [[2, {"reason": 5}]],  # not the field's type: the generic path reads it as it is
        [[2, {"reason": "r", "no_such_field": 1}]],  # an unknown field: ignored
    ],
)
def test_sealed_values_the_typed_path_refuses_are_read_as_before(sealed_events: list) -> None:
    keys = FakeKeys()
    value = _resealed(encode(seal(COMMIT, keys)), keys, {"e": sealed_events, "i": {}})
    got = decode(value, keys)
    assert got == codec._decode_generic(value, keys)  # noqa: SLF001
    assert got.events[2].reason == sealed_events[0][1]["reason"]
    assert got.events[3] == COMMIT.events[3]


def test_sealed_values_for_no_event_are_ignored_as_before() -> None:
    keys = FakeKeys()
    plain = {"e": [[9, {"reason": "r"}], [-1, {"reason": "r"}]], "i": {}}
    got = decode(_resealed(encode(seal(COMMIT, keys)), keys, plain), keys)
    assert got.events == decode(encode(seal(COMMIT, FakeKeys()))).events  # as if erased


@pytest.mark.parametrize("values", ["not an object", ["reason", "r"], 5])
def test_sealed_values_that_are_not_an_object_are_not_a_commit(values: object) -> None:
    keys = FakeKeys()
    value = _resealed(encode(seal(COMMIT, keys)), keys, {"e": [[2, values]], "i": {}})
    with pytest.raises(CodecError):
        decode(value, keys)


def test_an_opened_event_is_checked_again_as_a_whole() -> None:
    keys = FakeKeys()
    value = _resealed(encode(seal(COMMIT, keys)), keys, {"e": [[2, {"reason": "r"}]], "i": {}})
    awarded = decode(value, keys).events[2]
    assert type(awarded) is PointsAwarded
    assert (awarded.reason, awarded.metadata, awarded.amount) == ("r", {}, 50)


async def test_append_many_fetches_the_missing_keys_of_a_batch_in_one_call() -> None:
    """A wave of new participants: one keys_for_write for all of them, not a key write each."""
    from services.adapters.sealing_event_log import SealingEventLog

    class ManyKeys(CachedFakeKeys):
        calls: list[list[tuple[str, str]]] = []

        def keys_for_write(self, idents: list[tuple[str, str]]) -> None:
            self.calls.append(list(idents))
            for ident in idents:
                self.key_for_write(*ident)

    keys = ManyKeys()
    inner = ManyLog()
    log = SealingEventLog(inner, keys)  # type: ignore[arg-type]
    other = replace(COMMIT, commit_id="c-2", participant_id="p-2")
    await log.append_many([COMMIT, other])
    await log.append_many([replace(COMMIT, commit_id="c-3", expected_version=1)])
    assert keys.calls == [[(COMMIT.tenant, COMMIT.participant_id), (COMMIT.tenant, "p-2")]]
    raw = b"".join(encode(commit) for commit in inner.written)
    assert len(inner.written) == 3
    assert not [secret for secret in SECRETS if secret.encode() in raw]
