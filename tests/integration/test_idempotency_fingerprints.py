"""Idempotency fingerprints in the read model, on SQLite and PostgreSQL: kept beside the key."""

from __future__ import annotations

from dataclasses import replace

from projections.participants.queries import ParticipantQueries
from projections.participants.store import ParticipantStore
from tests.builders import TOPIC, award_commit, records

PRINT = "ab" * 32


def test_the_fingerprint_of_a_keys_first_commit_is_kept_beside_the_key(
    store: ParticipantStore, queries: ParticipantQueries
) -> None:
    first = award_commit("u1", 0, 10, 10, cid="a", key="k")
    first = replace(first, causation=replace(first.causation, fingerprint=PRINT))
    again = award_commit("u1", 1, 10, 20, cid="b", key="k")
    again = replace(again, causation=replace(again.causation, fingerprint="cd" * 32))
    store.apply_batch(TOPIC, 0, records(first, again))
    assert queries.outcome("b").status == "duplicate"  # type: ignore[union-attr]
    original = queries.idempotent("t", "u1", "k")
    assert original is not None and (original.commit_id, original.fingerprint) == ("a", PRINT)


def test_a_key_recorded_without_a_fingerprint_reads_none(
    store: ParticipantStore, queries: ParticipantQueries
) -> None:
    store.apply_batch(TOPIC, 0, records(award_commit("u1", 0, 10, 10, cid="a", key="old")))
    original = queries.idempotent("t", "u1", "old")
    assert original is not None and original.fingerprint is None
