"""API keys: the pure decisions and the fold of api_key-stream commits."""

from __future__ import annotations

import pytest

from projections.api_keys.projector import ApiKeyRow, apply_api_key
from schemas.events import API_KEY, ApiKeyIssued, ApiKeyRevoked, Causation, Commit, Event
from services.api.auth import KeyRing, StoredKey, digest
from services.keys.domain import (
    ApiKeyExists,
    ApiKeyState,
    NewKey,
    decide_issue,
    decide_revoke,
    key_digest,
)

NEW = NewKey("key-1", "ab" * 32, "gmf_live_ab12", "Backend", "admin", 500)


def commit(version: int, *events: Event, at: str = "2026-02-14T10:00:00Z") -> Commit:
    return Commit(f"c{version}", "acme", "key-1", version, at, Causation("x"), events, API_KEY)


def test_issuing_records_the_digest_and_never_the_key() -> None:
    [event] = decide_issue(None, NEW)
    assert event == ApiKeyIssued("key-1", "ab" * 32, "gmf_live_ab12", "Backend", "admin", 500)
    with pytest.raises(ApiKeyExists):
        decide_issue(ApiKeyState(1, "key-1", False), NEW)


def test_revoking_twice_changes_nothing() -> None:
    assert decide_revoke(ApiKeyState(1, "key-1", False)) == [ApiKeyRevoked()]
    assert decide_revoke(ApiKeyState(2, "key-1", True)) == []


def test_the_fold_issues_then_revokes_and_refuses_a_stale_commit() -> None:
    status, row = apply_api_key(None, commit(0, *decide_issue(None, NEW)))
    assert status == "applied" and row is not None
    assert (row.tenant, row.id, row.scope, row.rate_limit, row.version) == (
        "acme", "key-1", "admin", 500, 1,
    )  # fmt: skip
    assert row.is_active and row.created_at == "2026-02-14T10:00:00Z"
    status, same = apply_api_key(row, commit(0, ApiKeyRevoked()))
    assert status == "conflict" and same == row
    status, revoked = apply_api_key(row, commit(1, ApiKeyRevoked(), at="2026-02-15T09:00:00Z"))
    assert status == "applied" and revoked is not None
    assert not revoked.is_active and revoked.revoked_at == "2026-02-15T09:00:00Z"
    assert "key_hash" not in revoked.as_json()


def test_issued_and_configured_keys_share_one_digest() -> None:
    assert digest("k-1").hex() == key_digest("k-1")
    ring = KeyRing([StoredKey("acme", digest("k-1"), False)])
    found = ring.authenticate("k-1")
    assert found is not None and found.key_id == "cfg-" + key_digest("k-1")[:16]
    assert ApiKeyRow("acme", "x").as_json()["last_used_at"] is None
