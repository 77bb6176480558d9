"""GET /admin/participants over a real server, on both logs: search, filters, sort, pages, the
answer's shape, the admin scope and 422s for bad parameters.

The tests work in a tenant of their own (keys added to the server below); each names its
participants with a tag of its own and searches for it, so they never see each other's.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.conftest import ACME_KEY, ADMIN_KEY, MODES, Api, Server

ADMIN, MEMBER = "key-roster-admin", "key-roster"
PATH = "/admin/participants"
ITEM_KEYS = {
    "participant_id",
    "display_name",
    "avatar_url",
    "attributes",
    "points",
    "tier",
    "rewards_claimed",
    "total_events",
    "first_seen_at",
    "last_seen_at",
    "is_active",
}


@pytest.fixture(scope="module", params=MODES)
def server(
    request: pytest.FixtureRequest, server_factory: Callable[[str], Server]
) -> Iterator[Server]:
    srv = server_factory(request.param)
    srv.env["GAMIFY_API_KEYS"] += f",roster:{ADMIN}:admin,roster:{MEMBER}"
    srv.start()
    yield srv
    srv.stop()


def tag() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


async def listing(api: Api, **params: Any) -> dict[str, Any]:
    reply = await api.get(PATH, key=ADMIN, params={k: str(v) for k, v in params.items()})
    assert reply.status == 200, reply
    assert set(reply.body) == {"participants", "total", "page", "page_size"}, reply
    return reply.body  # type: ignore[no-any-return]


async def ids(api: Api, **params: Any) -> list[str]:
    return [p["participant_id"] for p in (await listing(api, **params))["participants"]]


async def people(api: Api, t: str) -> dict[str, str]:
    """Five participants of tag ``t``; returns short name -> participant id."""
    made = {
        "ann": (f"{t}-ann", "Ann Ångström", {"plan": "pro", "age": 30}, 150),
        "bob": (f"{t}-bob_1", "Bob 100% Real", {"plan": "free", "age": "30"}, 40),
        "cy": (f"{t}-bobx1", "ΣΙΣΥΦΟΣ", {"plan": "pro", "vip": True}, 40),
        "dee": (f"{t}-dee", "back\\slash", {"plan": "pro", "nested": {"a": 1}}, 0),
        "eve": (f"{t}-eve", None, {}, 90),
    }
    for pid, name, attrs, amount in made.values():
        reply = await api.register(pid, key=MEMBER, display_name=name, attributes=attrs)
        assert reply.status == 201, reply
        if amount:
            assert (await api.award(pid, amount, key=MEMBER)).status == 200
    return {short: value[0] for short, value in made.items()}


async def test_search_filters_sort_and_pages(api: Api) -> None:
    t = tag()
    gold = {"code": f"gold-{t}", "name": "Gold", "level": 1, "criteria_config": {"min_points": 100}}
    assert (await api.post("/admin/tiers", gold, key=ADMIN)).status == 201
    p = await people(api, t)

    everyone = await listing(api, search=t.upper())
    assert (everyone["total"], everyone["page"], everyone["page_size"]) == (5, 1, 50)
    ann = next(i for i in everyone["participants"] if i["participant_id"] == p["ann"])
    assert set(ann) == ITEM_KEYS
    assert ann["points"] == {"balance": 150, "total_earned": 150, "total_spent": 0}
    assert ann["tier"] == {"code": f"gold-{t}", "name": "Gold", "level": 1}
    assert (ann["display_name"], ann["attributes"]) == ("Ann Ångström", {"plan": "pro", "age": 30})

    by_id = {"sort": "participant_id", "order": "asc"}
    assert await ids(api, search="ångSTRÖM") == [p["ann"]]  # Unicode, any case
    assert await ids(api, search="σισυφοσ") == [p["cy"]]
    assert await ids(api, search=f"{t}-bob_") == [p["bob"]]  # "_" is not a wildcard
    assert await ids(api, search="100%") == [p["bob"]]  # nor is "%"
    assert await ids(api, search="k\\s") == [p["dee"]]
    assert await ids(api, search=t, tier=f"gold-{t}") == [p["ann"]]
    assert await ids(api, search=t, is_active="false") == []
    assert await ids(api, search=t, **{"attribute.plan": "pro", **by_id}) == [
        p["ann"],
        p["cy"],
        p["dee"],
    ]
    both = {"attribute.plan": "pro", "attribute.age": "30"}
    assert await ids(api, search=t, **both) == [p["ann"]]
    assert await ids(api, search=t, **{"attribute.age": "30", **by_id}) == [p["ann"], p["bob"]]
    assert await ids(api, search=t, **{"attribute.vip": "true"}) == [p["cy"]]
    assert await ids(api, search=t, **{"attribute.nested": '{"a":1}'}) == []

    by_balance = [p["ann"], p["eve"], p["cy"], p["bob"], p["dee"]]  # ties: id, same direction
    assert await ids(api, search=t, sort="balance") == by_balance
    assert await ids(api, search=t, sort="balance", order="asc") == by_balance[::-1]
    pages = [await listing(api, search=t, sort="balance", page=n, page_size=2) for n in (1, 2, 3)]
    assert [i["participant_id"] for page in pages for i in page["participants"]] == by_balance
    assert [(page["total"], page["page"], page["page_size"]) for page in pages] == [
        (5, 1, 2),
        (5, 2, 2),
        (5, 3, 2),
    ]


async def test_another_tenant_sees_none_of_them(api: Api) -> None:
    t = tag()
    await people(api, t)
    assert len(await ids(api, search=t)) == 5
    reply = await api.get(PATH, key=ADMIN_KEY, params={"search": t})
    assert reply.status == 200, reply
    assert (reply.body["participants"], reply.body["total"]) == ([], 0)


async def test_the_list_needs_an_admin_key(api: Api) -> None:
    assert (await api.get(PATH, key=None)).status == 401
    assert (await api.get(PATH, key="not-a-key")).status == 401
    assert (await api.get(PATH, key=MEMBER)).status == 403
    assert (await api.get(PATH, key=ACME_KEY)).status == 403


@pytest.mark.parametrize(
    ("params", "bad"),
    [
        ({"sort": "age"}, ["sort"]),
        ({"order": "up"}, ["order"]),
        ({"page": "0"}, ["page"]),
        ({"page_size": "201"}, ["page_size"]),
        ({"is_active": "maybe"}, ["is_active"]),
        ({"search": "x" * 256}, ["search"]),
        ({"search": "a\x00b"}, ["search"]),
        ({"tier": "g\x01"}, ["tier"]),
        ({"attribute.": "x"}, ["attribute."]),
        ({f"attribute.k{i}": "v" for i in range(11)}, ["attribute"]),
        ({"sort": "age", "order": "up", "page_size": "0"}, ["sort", "order", "page_size"]),
    ],
)
async def test_bad_parameters_are_422_naming_each(
    api: Api, params: dict[str, str], bad: list[str]
) -> None:
    reply = await api.get(PATH, key=ADMIN, params=params)
    assert reply.status == 422, reply
    detail = reply.body["detail"]
    assert [e["loc"] for e in detail] == [["query", name] for name in bad], reply
    assert all(set(e) == {"loc", "msg", "type"} for e in detail), reply
