"""The reference's JSON examples, parsed out of docs/reference/participants-api.md, and a
recursive key-set comparison, so the reference itself is what tests compare answers with."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

PARTICIPANTS_API = (
    Path(__file__).resolve().parents[1] / "docs" / "reference" / "participants-api.md"
)

# A comment: "//" after whitespace, to the end of the line ("https://" has no whitespace before).
_COMMENT = re.compile(r"\s+//.*$")


def json_blocks(text: str) -> list[dict[str, Any]]:
    """Every top-level JSON object of the page: a line ``{`` up to its line ``}``, comments cut."""
    blocks: list[dict[str, Any]] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if current is None and line.strip() == "{" and not line.startswith(" "):
            current = []
        if current is not None:
            current.append(_COMMENT.sub("", line))
            if line.rstrip() == "}":
                blocks.append(json.loads("\n".join(current)))
                current = None
    return blocks


def participants_examples(path: Path = PARTICIPANTS_API) -> dict[str, dict[str, Any]]:
    """The answers of participants-api.md by name: ``created`` (POST), ``profile`` (GET, and
    PATCH "same shape as GET"), ``state`` (GET /state)."""
    found: dict[str, dict[str, Any]] = {}
    for block in json_blocks(path.read_text()):
        if "created_at" in block:
            found["created"] = block
        elif "first_seen_at" in block:
            found["profile"] = block
        elif "challenges" in block:
            found["state"] = block
    assert set(found) == {"created", "profile", "state"}, f"examples found: {sorted(found)}"
    return found


# Free JSON the client chooses (its keys are data, not shape).
FREE = frozenset({"$.attributes"})


def shape_differences(expected: Any, actual: Any, where: str = "$") -> list[str]:
    """Where ``actual``'s keys differ from ``expected``'s, recursively.

    An object must be an object with exactly the same keys; a non-empty list must be a non-empty
    list whose every item has the shape of the example's first item; other values (scalars,
    null, empty lists) and the free maps of ``FREE`` are not compared.
    """
    if where in FREE:
        return []
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, got {json.dumps(actual)[:80]}"]
        diffs = []
        if missing := sorted(expected.keys() - actual.keys()):
            diffs.append(f"{where}: missing {missing}")
        if extra := sorted(actual.keys() - expected.keys()):
            diffs.append(f"{where}: not in the reference {extra}")
        for key in expected.keys() & actual.keys():
            diffs += shape_differences(expected[key], actual[key], f"{where}.{key}")
        return diffs
    if isinstance(expected, list) and expected:
        if not isinstance(actual, list) or not actual:
            return [f"{where}: expected a non-empty list, got {json.dumps(actual)[:80]}"]
        return [
            diff
            for i, item in enumerate(actual)
            for diff in shape_differences(expected[0], item, f"{where}[{i}]")
        ]
    return []
