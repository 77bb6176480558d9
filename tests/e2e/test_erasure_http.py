"""DELETE /admin/participants/{pid} over a real `gamify serve`, on both logs (docs/erasure.md).

Admin key required; 404 for a participant that never existed; 204, also for a second DELETE.
Afterwards the participant answers as anonymised with its points and rank intact, after a
restart and after `gamify replay` from the log alike.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import ADMIN_KEY, PROJECT_ROOT, Api, Server

_SCRIPT = Path(sys.executable).parent / "gamify"
GAMIFY = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "services"]
NAME, SECRET = "Erin Erasable", "erin.erasable@example.org"


def gamify_replay(server: Server) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAMIFY_")}
    env.update(server.env)
    env["GAMIFY_DATA_DIR"] = str(server.data_dir)
    return subprocess.run(  # noqa: S603
        [*GAMIFY, "replay"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_delete_erases_a_participant_which_stays_anonymised_with_its_points(
    api: Api, server: Server, pid: str
) -> None:
    r = await api.register(pid, display_name=NAME, attributes={"email": SECRET})
    assert r.status == 201, r
    r = await api.award(pid, 40, reason=f"welcome {NAME}", metadata={"email": SECRET})
    assert r.status == 200, r
    r = await api.post(
        "/events", {"participant_id": pid, "event_name": "x", "properties": {"e": SECRET}}
    )
    assert r.status in (200, 201), r
    path = f"/admin/participants/{pid}"

    assert (await api.request("DELETE", path)).status == 403, "needs the admin scope"
    assert (await api.request("DELETE", path, key=None)).status == 401
    r = await api.request("DELETE", f"/admin/participants/never-{pid}", key=ADMIN_KEY)
    assert (r.status, r.body["detail"]) == (404, f"Participant not found: never-{pid}"), r
    r = await api.request("DELETE", path, key=ADMIN_KEY)
    assert (r.status, r.text) == (204, ""), r
    assert (await api.request("DELETE", path, key=ADMIN_KEY)).status == 204, "idempotent"

    async def anonymised() -> None:
        profile = await api.get(f"/participants/{pid}")
        assert profile.status == 200, profile
        body = profile.body
        assert (body["display_name"], body["avatar_url"], body["attributes"]) == (None, None, {})
        assert await api.points(pid) == {**await api.points(pid), "balance": 40}
        ledger = await api.get(f"/participants/{pid}/points/transactions")
        assert [(t["amount"], t["reason"], t["metadata"]) for t in ledger.body["transactions"]] == [
            (40, None, {})
        ], ledger
        events = await api.get(f"/participants/{pid}/events")
        assert SECRET not in events.text and NAME not in profile.text, events

    await anonymised()
    server.restart()
    await anonymised()
    done = gamify_replay(server)
    assert done.returncode == 0, done.stderr
    await anonymised()


async def test_an_idempotent_replay_shows_the_sealed_fields_until_erasure(
    api: Api, pid: str
) -> None:
    """The outcome keeps no copy of the events: a replayed answer reads the commit back from the
    log, where display name and attributes are sealed. It opens them with the data keys (not
    null), and after erasure shows them empty."""
    body = {"participant_id": pid, "display_name": NAME, "attributes": {"email": SECRET}}
    headers = {"Idempotency-Key": f"create-{pid}"}
    first = await api.post("/participants", body, headers=headers)
    assert first.status == 201, first
    again = await api.post("/participants", body, headers=headers)
    assert (again.status, again.body) == (first.status, first.body), again
    assert again.body["display_name"] == NAME and again.body["attributes"] == {"email": SECRET}

    assert (await api.request("DELETE", f"/admin/participants/{pid}", key=ADMIN_KEY)).status == 204
    after = await api.post("/participants", body, headers=headers)
    assert after.status in (200, 201), after
    assert NAME not in after.text and SECRET not in after.text, after


async def test_an_id_off_the_participant_id_rule_is_422_not_404(api: Api) -> None:
    """DELETE holds the path id to the same rule as GET and PATCH (no echo of a bidi char)."""
    for bad in ("a" * 256, "a%E2%80%AEb", "a%00b"):
        r = await api.request("DELETE", f"/admin/participants/{bad}", key=ADMIN_KEY)
        assert r.status == 422, (bad, r)
        assert "\u202e" not in r.text, r
