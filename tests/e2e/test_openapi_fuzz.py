"""Property-based run over the served OpenAPI document (schemathesis) against a real server.

A real ``gamify serve`` process on the embedded log; schemathesis loads the document the server
serves and, for every operation, sends generated requests (valid and invalid ones, a bounded and
deterministic set) with an admin key on ``/admin/...`` and a standard key elsewhere. Each answer
must be no server error and inside the document: a documented status, content type, body schema
and headers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.api.openapi import document
from tests.e2e.conftest import ACME_KEY, ADMIN_KEY, API, Server

pytestmark = pytest.mark.e2e

# Per operation, in the fuzzing phase (the examples and coverage phases add their own, bounded
# cases); GAMIFY_FUZZ_EXAMPLES raises it for a deeper run by hand.
MAX_EXAMPLES = int(os.environ.get("GAMIFY_FUZZ_EXAMPLES", "12"))
SEED = int(os.environ.get("GAMIFY_FUZZ_SEED", "20261129"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@pytest.fixture(scope="module")
def fuzzed_server(server_factory: Callable[[str], Server]) -> Iterator[Server]:
    srv = server_factory("embedded").start()
    served = requests.get(f"{srv.base_url}{API}/openapi.json", timeout=10)
    assert served.json() == document(), "the server serves another document than the one fuzzed"
    yield srv
    srv.stop()


# Loaded at collection (schemathesis's lazy fixture loader does not work with pytest 9); the
# fixture above checks that the server serves exactly this document.
schema = schemathesis.openapi.from_dict(document())
schema.config.seed = SEED
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    max_examples=MAX_EXAMPLES,
    deterministic=True,
    with_security_parameters=False,
    database="none",
)


@dataclass(frozen=True)
class Known:
    """A server error another branch fixes: what, whose, a minimal example, and which cases."""

    kind: str
    example: str
    matches: Callable[[Any], bool]


def _timestamp_before_1970(case: Any) -> bool:
    """A body ``timestamp`` that parses as ISO-8601 but lies before 1970 (years 1-999 included)."""
    raw = case.body.get("timestamp") if isinstance(case.body, dict) else None
    if not isinstance(raw, str):
        return False
    try:
        return datetime.fromisoformat(raw).year < 1970
    except ValueError:
        return False


# Server errors in other helpers' areas, found by this run and excused ONLY for cases that match;
# every other answer of the same operation is still checked. The lead removes an entry once the
# branch that fixes it is merged (then the run holds the operation to 0 server errors again).
# Server errors the run found that are not fixed yet (none since the validation boundary).
KNOWN_SERVER_ERRORS: list[Known] = []


def known_server_error(case: Any) -> Known | None:
    return next((k for k in KNOWN_SERVER_ERRORS if k.matches(case)), None)


def key_for(path: str) -> str:
    return ADMIN_KEY if path.startswith(f"{API}/admin/") else ACME_KEY


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_answer_is_documented_and_no_server_error(
    case: Any, fuzzed_server: Server, http: requests.Session
) -> None:
    headers = {"X-API-Key": key_for(case.path)}
    response = case.call(base_url=fuzzed_server.base_url, session=http, headers=headers)
    if response.status_code >= 500 and known_server_error(case) is not None:
        return
    case.validate_response(response, checks=CHECKS, headers=headers)
