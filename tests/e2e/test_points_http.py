"""Points API over HTTP against a real server (embedded log and Kafka): award/deduct shapes,
balances, the ledger, insufficient balance, idempotent retries, tenant isolation, validation."""

from __future__ import annotations

import uuid

import pytest

ACME, GLOBEX, ADMIN = "key-acme", "key-globex", "key-admin"  # keys configured by conftest
AWARD_KEYS = {
    "transaction_id",
    "participant_id",
    "amount",
    "new_balance",
    "tier_upgrade",
    "badges_unlocked",
}


def pid_() -> str:
    return f"u-{uuid.uuid4().hex[:12]}"


def idem_() -> str:
    return f"op-{uuid.uuid4().hex}"


def assert_loc(reply, field: str) -> None:
    assert reply.status == 422, reply
    detail = reply.body["detail"]
    assert isinstance(detail, list) and detail, reply
    assert any(field in err["loc"] for err in detail), reply


async def assert_untouched(api, pid: str, points: dict, ledger_total: int, key: str = ACME):
    got = await api.points(pid, key=key)
    assert {k: got[k] for k in ("balance", "total_earned", "total_spent")} == points, got
    assert (await api.ledger(pid, key=key))["total"] == ledger_total


# ---------------------------------------------------------------------------------------------
# award / deduct / reads


async def test_first_award_creates_the_participant(api, pid):
    assert (await api.get(f"/participants/{pid}")).status == 404
    reply = await api.award(pid, 100, reason="signup bonus", metadata={"order_id": "o1"})
    assert reply.status == 200, reply
    assert set(reply.body) == AWARD_KEYS, reply
    assert reply.body["participant_id"] == pid
    assert reply.body["amount"] == 100
    assert reply.body["new_balance"] == 100
    assert reply.body["tier_upgrade"] is None
    uuid.UUID(reply.body["transaction_id"])

    profile = await api.get(f"/participants/{pid}")
    assert profile.status == 200, profile
    assert profile.body["points"] == {"balance": 100, "total_earned": 100, "total_spent": 0}
    assert profile.body["is_active"] is True

    second = await api.award(pid, 25)
    assert second.status == 200 and second.body["new_balance"] == 125, second
    assert second.body["transaction_id"] != reply.body["transaction_id"]


async def test_deduct_and_points(api, pid):
    assert (await api.award(pid, 100)).status == 200
    reply = await api.deduct(pid, 30, reason="redeem")
    assert reply.status == 200, reply
    assert {"transaction_id", "participant_id", "amount", "new_balance"} <= set(reply.body)
    assert reply.body["participant_id"] == pid
    assert reply.body["amount"] == 30
    assert reply.body["new_balance"] == 70
    points = await api.points(pid)
    assert points == {
        "participant_id": pid,
        "balance": 70,
        "total_earned": 100,
        "total_spent": 30,
        "expiring_soon": [],
    }
    # the whole balance may be spent
    last = await api.deduct(pid, 70)
    assert last.status == 200 and last.body["new_balance"] == 0, last
    assert (await api.points(pid))["total_spent"] == 100


async def test_transactions_newest_first_and_paginated(api, pid):
    a1 = await api.award(pid, 10, reason="first")
    a2 = await api.award(pid, 20, reason="second", metadata={"k": "v"})
    d1 = await api.deduct(pid, 5, reason="spend")
    assert a1.status == a2.status == d1.status == 200

    ledger = await api.ledger(pid)
    assert ledger["participant_id"] == pid
    assert ledger["total"] == 3
    entries = ledger["transactions"]
    assert [e["id"] for e in entries] == [
        d1.body["transaction_id"],
        a2.body["transaction_id"],
        a1.body["transaction_id"],
    ]
    assert [e["type"] for e in entries] == ["deduct", "award", "award"]
    assert [e["amount"] for e in entries] == [-5, 20, 10]
    assert [e["balance_after"] for e in entries] == [25, 30, 10]
    assert [e["reason"] for e in entries] == ["spend", "second", "first"]
    assert entries[1]["metadata"] == {"k": "v"}

    page1 = await api.ledger(pid, page=1, page_size=2)
    page2 = await api.ledger(pid, page=2, page_size=2)
    page3 = await api.ledger(pid, page=3, page_size=2)
    assert (page1["page"], page1["page_size"], page1["total"]) == (1, 2, 3)
    assert [e["id"] for e in page1["transactions"]] == [e["id"] for e in entries[:2]]
    assert [e["id"] for e in page2["transactions"]] == [entries[2]["id"]]
    assert page2["total"] == 3
    assert page3["transactions"] == [] and page3["total"] == 3


async def test_transactions_bad_paging_is_422(api, pid):
    await api.award(pid, 1)
    for params, field in (
        ({"page": 0}, "page"),
        ({"page_size": 101}, "page_size"),
        ({"page_size": "x"}, "page_size"),
    ):
        reply = await api.get(f"/participants/{pid}/points/transactions", params=params)
        assert_loc(reply, field)


async def test_points_of_unknown_participant_is_404(api):
    pid = pid_()
    assert (await api.get(f"/participants/{pid}/points")).status == 404
    assert (await api.get(f"/participants/{pid}/points/transactions")).status == 404


async def test_insufficient_balance_is_400_and_debits_nothing(api, pid):
    assert (await api.award(pid, 30)).status == 200
    reply = await api.deduct(pid, 50)
    assert reply.status == 400, reply
    assert reply.body == {"detail": "Insufficient points. Available: 30, requested: 50"}
    await assert_untouched(api, pid, {"balance": 30, "total_earned": 30, "total_spent": 0}, 1)

    # with an Idempotency-Key, and retried: refused the same way, still nothing debited
    key = idem_()
    for _ in range(2):
        again = await api.deduct(pid, 31, idem=key)
        assert again.status == 400, again
        assert again.body == {"detail": "Insufficient points. Available: 30, requested: 31"}
    await assert_untouched(api, pid, {"balance": 30, "total_earned": 30, "total_spent": 0}, 1)


# ---------------------------------------------------------------------------------------------
# idempotency


async def test_same_idempotency_key_header_applies_once(api, pid):
    key = idem_()
    first = await api.award(pid, 15, idem=key)
    second = await api.award(pid, 15, idem=key)
    assert first.status == second.status == 200, (first, second)
    assert second.body["transaction_id"] == first.body["transaction_id"]
    assert second.body["new_balance"] == first.body["new_balance"] == 15
    await assert_untouched(api, pid, {"balance": 15, "total_earned": 15, "total_spent": 0}, 1)

    # a different key is a different write
    third = await api.award(pid, 15, idem=idem_())
    assert third.status == 200 and third.body["new_balance"] == 30, third


async def test_legacy_body_idempotency_key_applies_once(api, pid):
    key = idem_()
    first = await api.award(pid, 9, body_idem=key)
    second = await api.award(pid, 9, body_idem=key)
    assert first.status == second.status == 200, (first, second)
    assert second.body["transaction_id"] == first.body["transaction_id"]
    # header and legacy body key name the same operation
    third = await api.award(pid, 9, idem=key)
    assert third.status == 200 and third.body["transaction_id"] == first.body["transaction_id"]
    await assert_untouched(api, pid, {"balance": 9, "total_earned": 9, "total_spent": 0}, 1)


async def test_idempotent_deduct_retry(api, pid):
    await api.award(pid, 50)
    key = idem_()
    first = await api.deduct(pid, 20, idem=key)
    second = await api.deduct(pid, 20, idem=key)
    assert first.status == second.status == 200, (first, second)
    assert second.body["transaction_id"] == first.body["transaction_id"]
    assert second.body["new_balance"] == 30
    await assert_untouched(api, pid, {"balance": 30, "total_earned": 50, "total_spent": 20}, 2)


async def test_key_reused_for_a_different_command_is_409(api, pid):
    key = idem_()
    assert (await api.award(pid, 40, idem=key)).status == 200
    reply = await api.deduct(pid, 10, idem=key)
    assert reply.status == 409, reply
    assert isinstance(reply.body["detail"], str)
    await assert_untouched(api, pid, {"balance": 40, "total_earned": 40, "total_spent": 0}, 1)


# ---------------------------------------------------------------------------------------------
# tenants


async def test_tenants_are_isolated(api, pid):
    acme = await api.award(pid, 10, key=ACME)
    globex = await api.award(pid, 25, key=GLOBEX)
    assert acme.status == globex.status == 200
    assert acme.body["new_balance"] == 10
    assert globex.body["new_balance"] == 25  # not 35: another participant
    assert (await api.points(pid, key=ACME))["balance"] == 10
    assert (await api.points(pid, key=GLOBEX))["balance"] == 25
    assert (await api.ledger(pid, key=ACME))["total"] == 1
    assert (await api.ledger(pid, key=GLOBEX))["total"] == 1
    assert (await api.points(pid, key=ADMIN))["balance"] == 10  # admin key is acme's

    only_acme = pid_()
    assert (await api.register(only_acme, key=ACME, display_name="A")).status == 201
    for path in (
        f"/participants/{only_acme}",
        f"/participants/{only_acme}/points",
        f"/participants/{only_acme}/state",
        f"/participants/{only_acme}/points/transactions",
    ):
        reply = await api.get(path, key=GLOBEX)
        assert reply.status == 404, (path, reply)
    reply = await api.patch(f"/participants/{only_acme}", {"display_name": "X"}, key=GLOBEX)
    assert reply.status == 404, reply
    assert (await api.get(f"/participants/{only_acme}", key=ACME)).body["display_name"] == "A"


async def test_idempotency_keys_are_per_tenant(api, pid):
    key = idem_()
    acme = await api.award(pid, 5, key=ACME, idem=key)
    globex = await api.award(pid, 6, key=GLOBEX, idem=key)
    assert acme.status == globex.status == 200
    assert acme.body["transaction_id"] != globex.body["transaction_id"]
    assert (await api.points(pid, key=GLOBEX))["balance"] == 6


# ---------------------------------------------------------------------------------------------
# validation


@pytest.mark.parametrize("kind", ["award", "deduct"])
@pytest.mark.parametrize("amount", [0, -5, 1_000_001, 1.5, "10", None])
async def test_bad_amount_is_422(api, kind, amount):
    pid = pid_()
    if kind == "deduct":
        await api.award(pid, 100)
    reply = await api.post(f"/points/{kind}", {"participant_id": pid, "amount": amount})
    assert_loc(reply, "amount")
    if kind == "award":
        assert (await api.get(f"/participants/{pid}")).status == 404
    else:
        assert (await api.points(pid))["balance"] == 100


async def test_amount_bounds_are_inclusive(api, pid):
    assert (await api.award(pid, 1)).status == 200
    reply = await api.award(pid, 1_000_000)
    assert reply.status == 200 and reply.body["new_balance"] == 1_000_001, reply


async def test_missing_fields_are_422(api):
    assert_loc(await api.post("/points/award", {"amount": 5}), "participant_id")
    assert_loc(await api.post("/points/award", {"participant_id": pid_()}), "amount")


async def test_participant_id_too_long_is_422(api):
    reply = await api.award("x" * 256, 5)
    assert_loc(reply, "participant_id")


@pytest.mark.parametrize("raw", [b"{oops", b"[1, 2]", b"null", b""])
async def test_non_object_body_is_400(api, raw):
    reply = await api.request("POST", "/points/award", data=raw)
    assert reply.status == 400, reply
    assert isinstance(reply.body["detail"], str)


@pytest.mark.parametrize("header", ["has space", "a" * 256, "semi;colon", "ünï"])
async def test_bad_idempotency_key_header_is_422(api, pid, header):
    reply = await api.post(
        "/points/award", {"participant_id": pid, "amount": 5}, headers={"Idempotency-Key": header}
    )
    assert_loc(reply, "Idempotency-Key")
    assert (await api.get(f"/participants/{pid}")).status == 404


async def test_oversized_award_is_413(api, pid):
    body = {"participant_id": pid, "amount": 5, "metadata": {"blob": "b" * (260 * 1024)}}
    reply = await api.post("/points/award", body)
    assert reply.status == 413, reply
    assert (await api.get(f"/participants/{pid}")).status == 404
