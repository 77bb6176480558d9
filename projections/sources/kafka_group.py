"""Take a crashed predecessor's place in a consumer group at once, not after its session timeout.

A member killed without a LeaveGroup (SIGKILL, OOM, a lost host) stays in its group until its
session timeout passes, and the group cannot rebalance until then: a restarted projector sat
~20 s without partitions on tansu (10 s session). A restarted process has the same client id
as the one it replaces (the id names the host and the HTTP port, which no two live processes
share), so before joining it looks for members with its own client id (brokers also begin
member ids with it), which can only be dead predecessors, and asks the coordinator to remove them (LeaveGroup on their behalf, as a
member leaving on shutdown would). Best effort: any failure is logged and the join goes on.
"""

from __future__ import annotations

import logging
from typing import Any

from aiokafka.client import AIOKafkaClient, CoordinationType
from aiokafka.protocol.admin import DescribeGroupsRequest
from aiokafka.protocol.group import LeaveGroupRequest

logger = logging.getLogger(__name__)


async def remove_predecessors(
    bootstrap_servers: str, group_id: str, client_id: str, **client_kwargs: Any
) -> list[str]:
    """Remove every member of ``group_id`` whose client id is ``client_id``; their member ids.

    Call it before this process joins the group: until then, no member with this client id
    can be alive. Never raises (a failure only means waiting out the session timeout).
    """
    client = AIOKafkaClient(
        bootstrap_servers=bootstrap_servers, client_id=client_id, **client_kwargs
    )
    removed: list[str] = []
    try:
        await client.bootstrap()
        node = await client.coordinator_lookup(CoordinationType.GROUP, group_id)
        described = await client.send(node, DescribeGroupsRequest([group_id]))
        for member_id in _members_with(described.to_object(), client_id):
            answer = await client.send(node, LeaveGroupRequest(group_id, member_id))
            if answer.error_code == 0:
                removed.append(member_id)
        if removed:
            logger.info(
                "removed %d dead member(s) of %s from group %s", len(removed), client_id, group_id
            )
    except Exception as exc:
        logger.warning("could not look for dead members of group %s: %r", group_id, exc)
    finally:
        await client.close()
    return removed


def _members_with(described: dict[str, Any], client_id: str) -> list[str]:
    """Member ids of ``client_id``: by the reported client id, or by the member id, which
    brokers make ``<client id>-<uuid>`` (tansu reports no client id)."""
    return [
        str(member["member_id"])
        for group in described.get("groups", [])
        for member in group.get("members", [])
        if member.get("client_id") == client_id
        or str(member.get("member_id", "")).startswith(f"{client_id}-")
    ]
