"""Participants API over HTTP against a real server (embedded log and Kafka): shapes of the
reference, upsert, PATCH merge, state sections, auth, and input validation."""

from __future__ import annotations

import json
import re
import uuid

import pytest

ACME, GLOBEX, ADMIN = "key-acme", "key-globex", "key-admin"  # keys configured by conftest
ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
PROFILE_KEYS = {
    "participant_id",
    "display_name",
    "avatar_url",
    "attributes",
    "points",
    "tier",
    "badges",
    "streaks",
    "rewards_claimed",
    "total_events",
    "first_seen_at",
    "last_seen_at",
    "is_active",
}
CREATED_KEYS = PROFILE_KEYS - {"first_seen_at", "last_seen_at"} | {"created_at"}
ALL_SECTIONS = ["points", "tier", "badges", "streaks", "challenges", "rewards"]


def pid_() -> str:
    return f"u-{uuid.uuid4().hex[:12]}"


def assert_loc(reply, field: str) -> None:
    assert reply.status == 422, reply
    detail = reply.body["detail"]
    assert isinstance(detail, list) and detail, reply
    assert any(field in err["loc"] for err in detail), reply
    for err in detail:
        assert set(err) >= {"loc", "msg", "type"}, reply


# ---------------------------------------------------------------------------------------------
# create / upsert / get


async def test_create_returns_reference_shape(api, pid):
    body = {
        "participant_id": pid,
        "display_name": "Jane Doe",
        "avatar_url": "https://example.com/avatar.png",
        "attributes": {"plan": "premium", "signup_source": "referral"},
    }
    reply = await api.post("/participants", body)
    assert reply.status == 201, reply
    got = reply.body
    expected = {
        "participant_id": pid,
        "display_name": "Jane Doe",
        "avatar_url": "https://example.com/avatar.png",
        "attributes": {"plan": "premium", "signup_source": "referral"},
        "points": {"balance": 0, "total_earned": 0, "total_spent": 0},
        "tier": None,
        "badges": [],
        "streaks": None,
        "rewards_claimed": 0,
        "total_events": 0,
        "is_active": True,
    }
    for key, value in expected.items():
        assert key in got, f"missing {key!r} in {got}"
        assert got[key] == value, f"{key}: {got[key]!r} != {value!r}"
    assert isinstance(got["created_at"], str) and ISO_Z.match(got["created_at"]), got
    assert set(got) == CREATED_KEYS, set(got) ^ CREATED_KEYS


async def test_create_with_only_an_id(api, pid):
    reply = await api.register(pid)
    assert reply.status == 201, reply
    assert reply.body["participant_id"] == pid
    assert reply.body["display_name"] is None
    assert reply.body["avatar_url"] is None
    assert reply.body["attributes"] == {}
    assert reply.body["points"] == {"balance": 0, "total_earned": 0, "total_spent": 0}


async def test_repeat_post_upserts_the_same_participant(api, pid):
    first = await api.register(pid, display_name="Jane", attributes={"plan": "free"})
    assert first.status == 201, first
    award = await api.award(pid, 40)
    assert award.status == 200, award

    second = await api.register(pid, display_name="Jane Smith", attributes={"plan": "pro"})
    assert second.status in (200, 201), second
    assert second.body["participant_id"] == pid
    assert second.body["display_name"] == "Jane Smith"
    assert second.body["attributes"] == {"plan": "pro"}
    # still the same participant: its points and creation time survive the upsert
    assert second.body["points"] == {"balance": 40, "total_earned": 40, "total_spent": 0}
    assert second.body["created_at"] == first.body["created_at"]

    got = await api.get(f"/participants/{pid}")
    assert got.status == 200, got
    assert got.body["display_name"] == "Jane Smith"
    assert got.body["points"]["balance"] == 40
    ledger = await api.ledger(pid)
    assert ledger["total"] == 1


async def test_get_profile_matches_create(api, pid):
    created = await api.register(
        pid, display_name="Ann", avatar_url="https://x.test/a.png", attributes={"team": "red"}
    )
    assert created.status == 201, created
    got = await api.get(f"/participants/{pid}")
    assert got.status == 200, got
    assert set(got.body) == PROFILE_KEYS, set(got.body) ^ PROFILE_KEYS
    same = PROFILE_KEYS & CREATED_KEYS
    assert {k: got.body[k] for k in same} == {k: created.body[k] for k in same}
    assert got.body["first_seen_at"] == created.body["created_at"]
    assert ISO_Z.match(got.body["first_seen_at"]) and ISO_Z.match(got.body["last_seen_at"])


async def test_get_unknown_participant_is_404(api):
    reply = await api.get(f"/participants/{pid_()}")
    assert reply.status == 404, reply
    assert isinstance(reply.body["detail"], str)


# ---------------------------------------------------------------------------------------------
# PATCH


async def test_patch_merges_attributes_and_returns_full_profile(api, pid):
    created = await api.register(
        pid,
        display_name="Jane Doe",
        attributes={"plan": "premium", "source": "referral", "seg": "a"},
    )
    assert created.status == 201, created
    reply = await api.patch(
        f"/participants/{pid}",
        {
            "display_name": "Jane Smith",
            "attributes": {"plan": "enterprise", "team_id": "team_42", "seg": None},
        },
    )
    assert reply.status == 200, reply
    assert set(reply.body) == PROFILE_KEYS
    assert reply.body["participant_id"] == pid
    assert reply.body["display_name"] == "Jane Smith"
    assert reply.body["attributes"] == {
        "plan": "enterprise",
        "source": "referral",
        "team_id": "team_42",
    }
    assert reply.body["points"] == {"balance": 0, "total_earned": 0, "total_spent": 0}
    got = await api.get(f"/participants/{pid}")
    assert got.status == 200, got
    assert got.body["display_name"] == "Jane Smith"
    assert got.body["attributes"] == reply.body["attributes"]


async def test_patch_without_attributes_keeps_them(api, pid):
    await api.register(pid, display_name="A", attributes={"k": 1})
    reply = await api.patch(f"/participants/{pid}", {"avatar_url": "https://x.test/b.png"})
    assert reply.status == 200, reply
    assert reply.body["attributes"] == {"k": 1}
    assert reply.body["display_name"] == "A"
    assert reply.body["avatar_url"] == "https://x.test/b.png"


async def test_patch_unknown_participant_is_404(api):
    pid = pid_()
    reply = await api.patch(f"/participants/{pid}", {"display_name": "Ghost"})
    assert reply.status == 404, reply
    assert isinstance(reply.body["detail"], str)
    # and PATCH did not create it
    assert (await api.get(f"/participants/{pid}")).status == 404


# ---------------------------------------------------------------------------------------------
# state


async def test_state_all_sections(api, pid):
    await api.award(pid, 7)
    for path in (f"/participants/{pid}/state", f"/state/{pid}"):
        reply = await api.get(path)
        assert reply.status == 200, reply
        assert list(reply.body) == ["participant_id", *ALL_SECTIONS], reply
        assert reply.body["participant_id"] == pid
        assert reply.body["points"] == {"balance": 7, "total_earned": 7, "total_spent": 0}


async def test_state_selected_sections(api, pid):
    await api.award(pid, 3)
    reply = await api.get(f"/participants/{pid}/state", params={"include": "points,tier,badges"})
    assert reply.status == 200, reply
    assert set(reply.body) == {"participant_id", "points", "tier", "badges"}, reply
    assert reply.body["points"]["balance"] == 3
    assert reply.body["tier"] is None and reply.body["badges"] == []


async def test_state_unknown_section_is_422(api, pid):
    await api.register(pid)
    reply = await api.get(f"/participants/{pid}/state", params={"include": "points,bogus"})
    assert_loc(reply, "include")


async def test_state_of_unknown_participant_is_404(api):
    reply = await api.get(f"/participants/{pid_()}/state")
    assert reply.status == 404, reply


# ---------------------------------------------------------------------------------------------
# auth


async def test_missing_key_is_401(api, pid):
    for method, path, body in (
        ("GET", f"/participants/{pid}", None),
        ("POST", "/participants", {"participant_id": pid}),
        ("POST", "/points/award", {"participant_id": pid, "amount": 1}),
    ):
        reply = await api.request(method, path, key=None, json_body=body)
        assert reply.status == 401, reply
        assert isinstance(reply.body["detail"], str)
    assert (await api.get(f"/participants/{pid}")).status == 404  # nothing was written


async def test_wrong_key_is_401(api, pid):
    reply = await api.register(pid, key="not-a-key")
    assert reply.status == 401, reply
    assert isinstance(reply.body["detail"], str)
    reply = await api.get(f"/participants/{pid}", key="KEY-ACME")  # near miss
    assert reply.status == 401, reply
    assert (await api.get(f"/participants/{pid}")).status == 404


async def test_bearer_token_authenticates(api, pid):
    reply = await api.request(
        "POST",
        "/participants",
        key=None,
        json_body={"participant_id": pid, "display_name": "B"},
        headers={"Authorization": f"Bearer {ACME}"},
    )
    assert reply.status == 201, reply
    got = await api.get(
        f"/participants/{pid}", key=None, headers={"Authorization": f"Bearer {ACME}"}
    )
    assert got.status == 200 and got.body["display_name"] == "B", got
    bad = await api.get(f"/participants/{pid}", key=None, headers={"Authorization": "Bearer nope"})
    assert bad.status == 401, bad


async def test_admin_key_belongs_to_its_tenant(api, pid):
    await api.register(pid, display_name="A", key=ACME)
    assert (await api.get(f"/participants/{pid}", key=ADMIN)).status == 200
    assert (await api.get(f"/participants/{pid}", key=GLOBEX)).status == 404


# ---------------------------------------------------------------------------------------------
# validation


async def test_missing_participant_id_is_422(api):
    reply = await api.post("/participants", {"display_name": "x"})
    assert_loc(reply, "participant_id")


async def test_participant_id_too_long_is_422(api):
    reply = await api.register("x" * 256)
    assert_loc(reply, "participant_id")
    ok = await api.register("y" * 255)
    assert ok.status == 201, ok


async def test_path_participant_id_too_long_is_422(api):
    reply = await api.get(f"/participants/{'x' * 256}")
    assert_loc(reply, "participant_id")


async def test_display_name_too_long_is_422(api, pid):
    reply = await api.register(pid, display_name="n" * 256)
    assert_loc(reply, "display_name")
    assert (await api.get(f"/participants/{pid}")).status == 404
    await api.register(pid)
    reply = await api.patch(f"/participants/{pid}", {"display_name": "n" * 256})
    assert_loc(reply, "display_name")


@pytest.mark.parametrize("raw", [b"{not json", b"[]", b'[{"participant_id": "a"}]', b'"str"'])
async def test_non_object_body_is_400(api, raw):
    reply = await api.request("POST", "/participants", data=raw)
    assert reply.status == 400, reply
    assert isinstance(reply.body["detail"], str)


async def test_empty_body_is_400(api):
    reply = await api.request("POST", "/participants", data=b"")
    assert reply.status == 400, reply


async def test_wrong_types_are_422(api, pid):
    reply = await api.register(pid, attributes=["not", "an", "object"])
    assert_loc(reply, "attributes")
    reply = await api.request("POST", "/participants", json_body={"participant_id": 12345})
    assert_loc(reply, "participant_id")


async def test_oversized_body_is_413(api, pid):
    big = json.dumps({"participant_id": pid, "attributes": {"blob": "a" * (300 * 1024)}})
    reply = await api.request("POST", "/participants", data=big)
    assert reply.status == 413, reply
    assert isinstance(reply.body["detail"], str)
    assert (await api.get(f"/participants/{pid}")).status == 404


async def test_unknown_route_is_404_with_detail(api):
    reply = await api.get("/no-such-endpoint")
    assert reply.status == 404, reply
