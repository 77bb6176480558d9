"""API keys over HTTP against a real server (embedded log and Kafka): issue, use, list, revoke,
and both the key and its revoke surviving a restart (they are streams on the log)."""

from __future__ import annotations

from typing import Any

ADMIN = "key-admin"  # configured by conftest


async def issue(api, **body: Any) -> dict[str, Any]:
    reply = await api.post("/admin/api-keys", body, key=ADMIN)
    assert reply.status == 201, reply
    return reply.body  # type: ignore[no-any-return]


async def test_an_issued_key_works_until_revoked_across_a_restart(api, server, pid) -> None:
    kept = await issue(api, name="Kept")
    revoked = await issue(api, name="Revoked", scope="admin")
    for key in (kept["key"], revoked["key"]):
        reply = await api.post("/points/award", {"participant_id": pid, "amount": 3}, key=key)
        assert reply.status == 200, reply
    assert (await api.get("/admin/badges", key=revoked["key"])).status == 200
    assert (await api.get("/admin/badges", key=kept["key"])).status == 403

    reply = await api.request("DELETE", f"/admin/api-keys/{revoked['id']}", key=ADMIN)
    assert reply.status == 200 and reply.body["is_active"] is False, reply
    assert (await api.get(f"/participants/{pid}", key=revoked["key"])).status == 401

    server.restart()
    assert (await api.get(f"/participants/{pid}", key=kept["key"])).status == 200
    assert (await api.get(f"/participants/{pid}", key=revoked["key"])).status == 401
    listing = await api.get("/admin/api-keys", key=ADMIN, params={"page_size": "200"})
    assert listing.status == 200
    shown = {k["id"]: k for k in listing.body["api_keys"]}
    assert shown[kept["id"]]["is_active"] and not shown[revoked["id"]]["is_active"]
    assert kept["key"] not in listing.text and revoked["key"] not in listing.text
