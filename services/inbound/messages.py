"""Parse an inbound Kafka message into a command, or say exactly why it cannot be one."""

from __future__ import annotations

import re
from collections.abc import Container
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from schemas.codec import fingerprint
from services.participants.commands import Command, from_body
from services.validation import (
    IDEMPOTENCY_KEY_PATTERN,
    ValidationFailed,
    validate,
)

COMMANDS = (
    "participants.register",
    "participants.update",
    "points.award",
    "points.deduct",
    "events.track",
    "badges.award",
    "tiers.assign",
    "streaks.record",
    "rewards.claim",
    "points.award_batch",
)
BATCH_ITEM = {
    "points.award_batch": ("awards", "points.award")
}  # batch -> (list field, item command)
MAX_BATCH = 100

_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


class Rejected(Exception):
    """A message that goes to the dead-letter topic; ``kind`` is a stable machine-readable code."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True, slots=True)
class InboundCommand:
    """A valid inbound message: the tenant, the command and its idempotency key, if it has one."""

    tenant: str
    name: str
    command: Command
    idempotency_key: str | None
    fingerprint: str | None = None  # schemas.codec.fingerprint of the command's fields


@dataclass(frozen=True, slots=True)
class InboundBatch:
    """A batch message: each item a command of its own, or the Rejected that item is (by index)."""

    tenant: str
    name: str
    items: tuple[InboundCommand | Rejected, ...]


def parse(
    value: bytes | None, tenants: Container[str], *, now: datetime
) -> InboundCommand | InboundBatch:
    """Validate ``value`` with the same boundary as the HTTP API (``now``: the server clock);
    raise Rejected if invalid.

    A batch command (``points.award_batch``) parses into an InboundBatch whose invalid items are
    Rejected one by one: the other items still run.
    """
    try:
        body: Any = orjson.loads(value or b"")
    except orjson.JSONDecodeError as exc:
        raise Rejected("invalid_json", f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise Rejected("invalid_json", "the message must be a JSON object")
    name = body.get("command")
    if name not in COMMANDS:
        raise Rejected(
            "unknown_command", f"unknown command {name!r}; one of: {', '.join(COMMANDS)}"
        )
    tenant = body.get("tenant")
    if not isinstance(tenant, str) or not tenant:
        raise Rejected("schema", "tenant: a non-empty string is required")
    if tenant not in tenants:
        raise Rejected("unknown_tenant", f"unknown tenant {tenant!r}")
    if name in BATCH_ITEM:
        return _batch(body, tenant, name, now)
    return _single(body, tenant, name, "message", now)


def _batch(body: dict[str, Any], tenant: str, name: str, now: datetime) -> InboundBatch:
    field, item_command = BATCH_ITEM[name]
    items = body.get(field)
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
        raise Rejected("schema", f"{field}: must be a list of 1 to {MAX_BATCH} items")
    parsed: list[InboundCommand | Rejected] = []
    for index, item in enumerate(items):
        where = f"{field}[{index}]"
        if not isinstance(item, dict):
            parsed.append(Rejected("schema", f"{where}: must be an object"))
            continue
        try:
            parsed.append(_single(item, tenant, item_command, where, now))
        except Rejected as rejected:
            parsed.append(rejected)
    return InboundBatch(tenant, name, tuple(parsed))


def _single(
    body: dict[str, Any], tenant: str, name: str, where: str, now: datetime
) -> InboundCommand:
    """One command's fields (a message, or one item of a batch ``where``) into its command."""
    prefix = "" if where == "message" else f"{where}."
    if not isinstance(body.get("participant_id"), str):
        raise Rejected("schema", f"{prefix}participant_id: a string is required")
    if name == "rewards.claim" and not isinstance(body.get("reward_id"), str):
        raise Rejected("schema", "reward_id: a string is required")
    try:
        body = validate(name, body, now=now, location=where)
    except ValidationFailed as exc:
        raise Rejected("schema", "; ".join(_describe(e) for e in exc.errors)) from None
    key = body.get("idempotency_key")
    if key is not None and not _KEY.match(key):
        raise Rejected("schema", f"{prefix}idempotency_key: must match {IDEMPOTENCY_KEY_PATTERN}")
    fields = {k: v for k, v in body.items() if k not in ("command", "tenant")}
    return InboundCommand(tenant, name, from_body(name, body), key, fingerprint(fields))


def _describe(error: dict[str, Any]) -> str:
    head = "" if error["loc"][0] == "message" else f"{error['loc'][0]}."
    where = ".".join(str(p) for p in error["loc"][1:]) or "message"
    return f"{head}{where}: {error['msg']}"
