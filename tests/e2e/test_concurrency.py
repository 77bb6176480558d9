"""Concurrent writes to one participant over one HTTP session (embedded log and Kafka)."""

from __future__ import annotations

import asyncio
import uuid


async def test_50_concurrent_awards_all_apply_once(api, pid):
    replies = await asyncio.gather(*(api.award(pid, 1, reason=f"c{i}") for i in range(50)))
    assert [r.status for r in replies] == [200] * 50, [r for r in replies if r.status != 200]
    tx_ids = {r.body["transaction_id"] for r in replies}
    assert len(tx_ids) == 50
    # each answer saw a distinct balance: the 50 writes were serialized, none lost
    assert sorted(r.body["new_balance"] for r in replies) == list(range(1, 51))

    points = await api.points(pid)
    assert points["balance"] == 50 and points["total_earned"] == 50, points
    ledger = await api.ledger(pid, page_size=100)
    assert ledger["total"] == 50
    assert {e["id"] for e in ledger["transactions"]} == tx_ids
    assert sorted(e["reason"] for e in ledger["transactions"]) == sorted(f"c{i}" for i in range(50))


async def test_concurrent_deducts_never_overdraw(api, pid):
    assert (await api.award(pid, 10)).status == 200
    replies = await asyncio.gather(*(api.deduct(pid, 1) for _ in range(25)))
    ok = [r for r in replies if r.status == 200]
    refused = [r for r in replies if r.status != 200]
    assert len(ok) == 10, replies
    assert all(
        r.status == 400 and r.body["detail"].startswith("Insufficient points. Available: 0")
        for r in refused
    ), refused
    points = await api.points(pid)
    assert points["balance"] == 0 and points["total_spent"] == 10, points
    assert (await api.ledger(pid))["total"] == 11


async def test_concurrent_retries_of_one_key_apply_once(api, pid):
    key = f"op-{uuid.uuid4().hex}"
    replies = await asyncio.gather(*(api.award(pid, 7, idem=key) for _ in range(20)))
    assert [r.status for r in replies] == [200] * 20, replies
    assert len({r.body["transaction_id"] for r in replies}) == 1
    assert (await api.points(pid))["balance"] == 7
    assert (await api.ledger(pid))["total"] == 1


async def test_concurrent_writes_to_many_participants(api):
    pids = [f"m-{uuid.uuid4().hex[:10]}" for _ in range(10)]
    replies = await asyncio.gather(*(api.award(p, 2) for p in pids for _ in range(5)))
    assert all(r.status == 200 for r in replies), [r for r in replies if r.status != 200]
    balances = await asyncio.gather(*(api.points(p) for p in pids))
    assert [b["balance"] for b in balances] == [10] * 10
