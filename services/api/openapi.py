"""The OpenAPI document, built from a hand-written skeleton and the JSON Schemas the API validates with.

One source per contract: ``services/api/openapi.skeleton.json`` holds paths, parameters, response
shapes, examples and prose; every request-body schema comes from ``schemas/json`` through
``services.validation.validator`` (the very dict the API validates with), so the served document
cannot drift from validation. ``python -m services.api.openapi [FILE]`` writes the built document.
"""

from __future__ import annotations

import copy
import importlib.resources
import posixpath
import sys
from collections.abc import Iterator
from functools import cache
from typing import Any

import orjson

from services.api.representations import STATE_SECTIONS
from services.definitions.domain import KINDS
from services.validation import validator

SKELETON = "openapi.skeleton.json"
SCHEMAS = "#/components/schemas/"
RESPONSES = "#/components/responses/"
PARTIAL = ".partial"
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})

# The errors an operation may answer whatever it does (components/responses names); 404 and 409
# depend on the operation and are written in the skeleton where they can happen.
KEYED_ERRORS = {
    "401": "Unauthorized",
    "422": "ValidationFailed",
    "429": "TooManyRequests",  # services/api/rate_limits.py: every keyed request counts
    "503": "Unavailable",
}
ADMIN_ERRORS = {"403": "Forbidden"}
WRITE_ERRORS = {"422": "UnprocessableWrite"}  # a validation list, or a key reused with another body
WRITES = frozenset({"post", "put", "patch", "delete"})
BODY_ERRORS = {"400": "BadRequest", "413": "PayloadTooLarge", "415": "UnsupportedMediaType"}


class SkeletonError(Exception):
    """The skeleton names a schema that is neither its own nor a file under schemas/json."""


def component_name(path: str) -> str:
    """``definitions/tier.v1.json`` -> ``definitions.tier.v1`` (the file's path under schemas/json)."""
    return path.removesuffix(".json").replace("/", ".")


@cache
def schema_files() -> dict[str, str]:
    """Component name -> path under schemas/json, for every schema file."""
    root = importlib.resources.files("schemas").joinpath("json")
    found: dict[str, str] = {}
    stack = [("", root)]
    while stack:
        prefix, folder = stack.pop()
        for entry in folder.iterdir():
            if entry.is_dir():
                stack.append((f"{prefix}{entry.name}/", entry))
            elif entry.name.endswith(".json"):
                found[component_name(prefix + entry.name)] = prefix + entry.name
    return found


def _file_schema(path: str, partial: bool) -> dict[str, Any]:
    """The schema the API validates with (services.validation), or the raw file for a $ref target."""
    if path.endswith(".v1.json"):
        return copy.deepcopy(validator(path.removesuffix(".v1.json"), partial).schema)
    text = importlib.resources.files("schemas").joinpath("json", *path.split("/")).read_bytes()
    schema: dict[str, Any] = orjson.loads(text)
    if partial:
        schema.pop("required", None)
    return schema


def embedded(name: str) -> tuple[dict[str, Any], set[str]]:
    """Component ``name`` as an OpenAPI 3.1 schema, and the components its $refs need.

    ``$schema`` and ``$id`` are dropped (the document is one resource); ``$ref``s are rewritten
    from file-relative (``common.v1.json#/$defs/id``, ``#/$defs/id``) to ``#/components/schemas/...``.
    A name ending in ``.partial`` is the file's schema without its top-level ``required`` (PATCH).
    """
    base = name.removesuffix(PARTIAL)
    path = schema_files().get(base)
    if path is None:
        raise SkeletonError(f"#/components/schemas/{name}: no schemas/json file of that name")
    schema = _file_schema(path, partial=name.endswith(PARTIAL))
    schema.pop("$schema", None)
    schema.pop("$id", None)
    needs: set[str] = set()
    return rebased(schema, path, name, needs), needs


def rebased(node: Any, path: str, name: str, needs: set[str]) -> Any:
    """``node`` (from file ``path``, embedded as ``name``) with its $refs pointing into the document.

    Adds the component names of other files it refers to into ``needs``.
    """
    if isinstance(node, list):
        return [rebased(item, path, name, needs) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: rebased(v, path, name, needs) for k, v in node.items() if k != "$ref"}
    if isinstance(node.get("$ref"), str):
        target, _, fragment = node["$ref"].partition("#")
        if target:
            joined = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
            target_name = component_name(joined)
            needs.add(target_name)
        else:
            target_name = name
        out["$ref"] = f"{SCHEMAS}{target_name}{fragment}"
    return out


def refs(node: Any) -> Iterator[str]:
    """Every ``$ref`` string under ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def build(skeleton: dict[str, Any]) -> dict[str, Any]:
    """The full document: the skeleton plus every schemas/json schema it names, and the errors.

    Raises SkeletonError if the skeleton names a schema nobody defines, or defines one itself
    that schemas/json holds.
    """
    doc = copy.deepcopy(skeleton)
    _definition_kinds(doc)
    doc["components"]["parameters"]["include"]["schema"]["pattern"] = include_pattern()
    schemas = doc["components"]["schemas"]
    shadowed = sorted(set(schemas) & set(schema_files()))
    if shadowed:
        raise SkeletonError(f"the skeleton defines schemas that come from schemas/json: {shadowed}")
    wanted = [r.removeprefix(SCHEMAS) for r in refs(doc) if r.startswith(SCHEMAS)]
    while wanted:
        name = wanted.pop()
        top = name.split("/")[0]
        if top in schemas:
            continue
        schemas[top], needs = embedded(top)
        wanted.extend(needs)
    for item in doc["paths"].values():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                _add_errors(doc, method, operation)
    return doc


def include_pattern() -> str:
    """What ``?include=`` accepts: comma-separated STATE_SECTIONS, blanks around, empty items."""
    section = "(?:" + "|".join(STATE_SECTIONS) + ")"
    return rf"^\s*(?:{section}\s*)?(?:,\s*(?:{section}\s*)?)*$"


def _definition_kinds(doc: dict[str, Any]) -> None:
    """Admin bodies and the ``resource`` parameter follow services.definitions.domain.KINDS."""
    doc["components"]["parameters"]["resource"]["schema"]["enum"] = list(KINDS)
    admin = doc["paths"]["/api/v1/gamify/admin/{resource}"]["post"]["requestBody"]
    one = doc["paths"]["/api/v1/gamify/admin/{resource}/{id}"]["patch"]["requestBody"]
    kinds = KINDS.values()
    admin["content"]["application/json"]["schema"] = {
        "anyOf": [{"$ref": f"{SCHEMAS}definitions.{k}.v1"} for k in kinds],
        "description": "The schema of the resource's kind: "
        + ", ".join(f"{r} -> definitions.{k}.v1" for r, k in KINDS.items()),
    }
    one["content"]["application/json"]["schema"] = {
        "anyOf": [{"$ref": f"{SCHEMAS}definitions.{k}.v1{PARTIAL}"} for k in kinds],
        "description": "The kind's schema without `required`: any subset of its fields.",
    }


def _add_errors(doc: dict[str, Any], method: str, operation: dict[str, Any]) -> None:
    """Document the errors any keyed operation can answer, unless the skeleton has its own.

    401 (no or unknown key), 422 (path, query or header validation; on a write also an
    Idempotency-Key reused with another body), 503 (a store that cannot be used, or a write that
    may be on the log: Retry-After), 429 (over a rate limit); 403 with the admin scope; with a
    body, 400 (not a JSON object), 413 (over GAMIFY_MAX_BODY_BYTES) and 415 (a Content-Encoding
    other than identity, gzip or deflate).
    """
    security = operation.get("security", doc["security"])
    if security == []:
        return
    errors = dict(KEYED_ERRORS)
    if any(scopes for requirement in security for scopes in requirement.values()):
        errors |= ADMIN_ERRORS
    if method in WRITES:
        errors |= WRITE_ERRORS
    if "requestBody" in operation:
        errors |= BODY_ERRORS
    responses = operation["responses"]
    for status, name in errors.items():
        responses.setdefault(status, {"$ref": f"{RESPONSES}{name}"})
    operation["responses"] = dict(sorted(responses.items()))


@cache
def skeleton() -> dict[str, Any]:
    text = importlib.resources.files("services.api").joinpath(SKELETON).read_bytes()
    return orjson.loads(text)  # type: ignore[no-any-return]


@cache
def document() -> dict[str, Any]:
    """The built document (cached: do not mutate it)."""
    return build(skeleton())


@cache
def document_bytes() -> bytes:
    """The built document as JSON bytes, what ``GET /api/v1/gamify/openapi.json`` serves."""
    return orjson.dumps(document(), option=orjson.OPT_INDENT_2) + b"\n"


def main(argv: list[str]) -> int:
    """Write the built document to the file named in argv (stdout without one)."""
    if argv:
        with open(argv[0], "wb") as out:
            out.write(document_bytes())
    else:
        sys.stdout.buffer.write(document_bytes())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
