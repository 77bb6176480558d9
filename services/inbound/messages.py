"""Parse an inbound Kafka message into a command, or say exactly why it cannot be one."""

from __future__ import annotations

import re
from collections.abc import Container
from dataclasses import dataclass
from typing import Any

import orjson

from schemas.codec import fingerprint
from services.participants.commands import Command, from_body
from services.validation import (
    IDEMPOTENCY_KEY_PATTERN,
    ValidationFailed,
    normalize_timestamp,
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
)

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


def parse(value: bytes | None, tenants: Container[str]) -> InboundCommand:
    """Validate ``value`` with the same JSON Schemas as the HTTP API; raise Rejected if invalid."""
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
    if not isinstance(body.get("participant_id"), str):
        raise Rejected("schema", "participant_id: a string is required")
    if name == "rewards.claim" and not isinstance(body.get("reward_id"), str):
        raise Rejected("schema", "reward_id: a string is required")
    try:
        validate(name, body, location="message")
        body = normalize_timestamp(body, location="message")
    except ValidationFailed as exc:
        raise Rejected("schema", "; ".join(_describe(e) for e in exc.errors)) from None
    key = body.get("idempotency_key")
    if key is not None and not _KEY.match(key):
        raise Rejected("schema", f"idempotency_key: must match {IDEMPOTENCY_KEY_PATTERN}")
    fields = {k: v for k, v in body.items() if k not in ("command", "tenant")}
    return InboundCommand(tenant, name, from_body(name, body), key, fingerprint(fields))


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(p) for p in error["loc"][1:]) or "message"
    return f"{where}: {error['msg']}"
