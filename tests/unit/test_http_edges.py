"""HTTP edges: parser errors as JSON, read timeouts, disconnects, request ids, the access log,
404/405 answers, keys never echoed or logged, and Idempotency-Key fingerprints.

Parser errors, timeouts and disconnects are tested over raw sockets against the real server
(``GamifyAppRunner`` on a TCP port, as ``gamify serve`` runs it); the rest through TestClient.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import time
import zlib
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from schemas.codec import decode, encode, fingerprint
from schemas.events import Causation
from services import metrics
from services.adapters.memory_event_log import InMemoryEventLog
from services.api.app import create_app
from services.api.server import BACKLOG, GamifyAppRunner
from services.config import ConfigError, Settings, parse_api_keys
from tests.builders import award_commit

BASE = "/api/v1/gamify"
KEY = "k-acme"
ACME = {"X-API-Key": KEY}
READ_TIMEOUT = 0.5


def settings(tmp_path: Path) -> Settings:
    return Settings(
        api_keys=parse_api_keys(f"acme:{KEY}"), data_dir=tmp_path, http_read_timeout=READ_TIMEOUT
    )


@pytest.fixture
async def port(tmp_path: Path) -> AsyncIterator[int]:
    """A real server on a free port, served as `gamify serve` serves it."""
    runner = GamifyAppRunner(
        create_app(settings(tmp_path), event_log=InMemoryEventLog()), read_timeout=READ_TIMEOUT
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=BACKLOG)
    await site.start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


@pytest.fixture
def log() -> InMemoryEventLog:
    return InMemoryEventLog()


@pytest.fixture
async def client(tmp_path: Path, log: InMemoryEventLog) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(settings(tmp_path), event_log=log))) as c:
        yield c


class Answer:
    """A raw HTTP answer: status, headers (lower-case names) and body."""

    def __init__(self, raw: bytes) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {
            k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])
        }

    def json(self) -> object:
        return orjson.loads(self.body)


async def exchange(port: int, data: bytes, timeout: float = 5.0) -> Answer:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(timeout):
            return Answer(await reader.read())  # the server closes after an error
    finally:
        writer.close()


def assert_json_error(answer: Answer, status: int) -> None:
    assert answer.status == status, answer.body
    assert answer.headers["content-type"].startswith("application/json")
    assert set(answer.json()) == {"detail"}  # type: ignore[arg-type]
    assert answer.headers["server"] == "Gamify"
    assert answer.headers["x-request-id"]


def logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)


# --------------------------------------------------------------------------------------------
# Parser-level errors, over raw sockets


async def test_a_header_over_8_kb_answers_431_json_and_the_key_is_neither_echoed_nor_logged(
    port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "gmf_" + "s3cr3t" * 1500  # ~9 KB
    answer = await exchange(
        port,
        f"GET {BASE}/participants/u1 HTTP/1.1\r\nHost: x\r\nX-API-Key: {secret}\r\n\r\n".encode(),
    )
    assert_json_error(answer, 431)
    assert b"s3cr3t" not in answer.body and "s3cr3t" not in str(answer.headers)
    assert "s3cr3t" not in logged(caplog)


async def test_too_many_headers_answer_431_json(port: int) -> None:
    headers = "".join(f"X-H{i}: v\r\n" for i in range(200))
    answer = await exchange(port, f"GET /healthz HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
    assert_json_error(answer, 431)


async def test_a_request_target_over_8_kb_answers_414_json(port: int) -> None:
    answer = await exchange(port, f"GET /{'a' * 9000} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert_json_error(answer, 414)
    assert b"aaaa" not in answer.body


async def test_a_malformed_request_answers_400_json(port: int) -> None:
    assert_json_error(await exchange(port, b"NOT HTTP AT ALL\r\n\r\n"), 400)
    bad_header = b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: \x01\r\n\r\n"
    assert_json_error(await exchange(port, bad_header), 400)


async def test_an_unknown_method_answers_400_json_naming_the_method_as_the_fault(port: int) -> None:
    answer = await exchange(port, f"FROBNICATE {BASE}/participants/u1 HTTP/1.1\r\n\r\n".encode())
    assert_json_error(answer, 400)
    assert answer.json() == {"detail": "Request method not recognised"}
    assert b"FROBNICATE" not in answer.body


# --------------------------------------------------------------------------------------------
# Read timeouts


async def trickle(port: int, data: bytes, every: float) -> tuple[float, bytes]:
    """Send ``data`` a byte at a time until the server closes; (seconds until closed, answer)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    answer = asyncio.ensure_future(reader.read())
    try:
        for byte in data:
            if answer.done():
                break
            writer.write(bytes([byte]))
            await asyncio.sleep(every)
        async with asyncio.timeout(10):
            received = await answer
        return time.monotonic() - started, received
    finally:
        writer.close()


async def test_slow_headers_are_answered_408_and_closed_within_the_read_timeout(
    tmp_path: Path,
) -> None:
    """Slowloris: 1,000 connections sending headers a byte every 0.1 s are all closed in time.

    Its own server with a 2 s read timeout: with 1,000 clients on one loop a loaded machine can
    delay a client's first byte past a 0.5 s timeout, and the server rightly closes a connection
    that sent nothing unanswered (the next test)."""
    timeout = 2.0
    runner = GamifyAppRunner(
        create_app(settings(tmp_path), event_log=InMemoryEventLog()), read_timeout=timeout
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=BACKLOG)
    await site.start()
    port = int(runner.addresses[0][1])
    request = f"GET {BASE}/participants/u1 HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n"
    request += "X-Padding: " + "p" * 40 + "\r\n\r\n"  # still arriving after 2 s at 0.1 s a byte
    try:
        results = await asyncio.gather(*[trickle(port, request.encode(), 0.1) for _ in range(1000)])
    finally:
        await runner.cleanup()
    slowest = max(took for took, _ in results)
    assert slowest < timeout + 2.0, f"slowest connection closed after {slowest:.2f}s"
    for _, received in results:
        answer = Answer(received)
        assert_json_error(answer, 408)
        assert answer.headers["connection"] == "close"


async def test_a_connection_that_sends_nothing_is_closed_within_the_read_timeout(
    port: int,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    async with asyncio.timeout(READ_TIMEOUT + 2.0):
        assert await reader.read() == b""
    assert time.monotonic() - started >= READ_TIMEOUT * 0.9
    writer.close()


async def test_a_slow_body_is_answered_408_and_the_connection_closed(port: int) -> None:
    head = (
        f"POST {BASE}/points/award HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n"
        "Content-Type: application/json\r\nContent-Length: 200\r\n\r\n"
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head.encode() + b'{"participant_id": ')
    started = time.monotonic()

    async def drip() -> None:
        while not writer.is_closing():
            writer.write(b" ")
            await asyncio.sleep(0.1)

    dripping = asyncio.ensure_future(drip())
    try:
        async with asyncio.timeout(READ_TIMEOUT + 4.0):
            received = await reader.read()
        took = time.monotonic() - started
    finally:
        dripping.cancel()
        writer.close()
    answer = Answer(received)
    assert_json_error(answer, 408)
    assert answer.json() == {"detail": "Request body not received within 500 ms"}
    assert took < READ_TIMEOUT + 3.0


def requests_with_status(status: str) -> float:
    return sum(
        s.value
        for m in metrics.HTTP_REQUESTS.collect()
        for s in m.samples
        if s.name.endswith("_total") and s.labels.get("status") == status
    )


async def test_dropped_uploads_are_logged_at_debug_and_never_counted_as_5xx(
    port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    errors_before = requests_with_status("500")
    closed_before = requests_with_status("499")
    head = (
        f"POST {BASE}/points/award HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n"
        "Content-Type: application/json\r\nContent-Length: 10000\r\n\r\n"
    )

    async def drop() -> None:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head.encode() + b'{"participant_id": "u1", "amount": ')
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()

    await asyncio.gather(*[drop() for _ in range(50)])
    deadline = time.monotonic() + 5
    while requests_with_status("499") < closed_before + 50 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert requests_with_status("499") == closed_before + 50
    assert requests_with_status("500") == errors_before
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], logged(caplog)
    dropped = [r for r in caplog.records if r.name == "gamify.access" and " 499 " in r.message]
    assert len(dropped) == 50 and all(r.levelno == logging.DEBUG for r in dropped)


# --------------------------------------------------------------------------------------------
# Through the app: 404, 405, request ids, Server header, the access log


async def test_an_unknown_path_answers_404_json_even_without_a_key(client: TestClient) -> None:
    for headers in ({}, ACME):
        resp = await client.get(f"{BASE}/no-such-thing", headers=headers)
        assert resp.status == 404
        assert await resp.json() == {"detail": "Not Found"}
    assert (await client.get("/favicon.ico")).status == 404
    # A path that exists still needs a key.
    assert (await client.get(f"{BASE}/participants/u1")).status == 401


async def test_a_wrong_method_answers_405_with_allow(client: TestClient) -> None:
    resp = await client.delete(f"{BASE}/points/award", headers=ACME)
    assert resp.status == 405
    assert resp.headers["Allow"] == "POST"
    assert await resp.json() == {"detail": "Method Not Allowed"}
    resp = await client.put(f"{BASE}/participants/u1")
    assert resp.status == 405
    assert set(resp.headers["Allow"].split(",")) == {"GET", "HEAD", "PATCH"}


async def test_admin_paths_with_their_own_routes_allow_only_their_own_methods(
    client: TestClient,
) -> None:
    """/admin/participants, /admin/api-keys and /admin/webhooks are not definition resources:
    a method they lack is 405 naming what they serve, never the generic definition routes'
    methods (which answered 404 "Unknown admin resource" when tried)."""
    cases = {
        ("PATCH", "/admin/participants/u1"): {"DELETE"},
        ("POST", "/admin/participants"): {"GET", "HEAD"},
        ("PATCH", "/admin/api-keys/k1"): {"DELETE"},
        ("PUT", "/admin/webhooks/w1"): {"GET", "HEAD", "PATCH", "DELETE"},
        ("PUT", "/admin/tiers/gold"): {"GET", "HEAD", "PATCH", "DELETE"},
    }
    for (method, path), allowed in cases.items():
        resp = await client.request(method, f"{BASE}{path}", headers=ACME)
        assert resp.status == 405, (method, path)
        assert set(resp.headers["Allow"].split(",")) == allowed, (method, path)
    assert (await client.get(f"{BASE}/admin/no-such-kind", headers=ACME)).status == 404
    # evaluate exists for tiers and badges only: other kinds' paths do not exist at all
    resp = await client.put(f"{BASE}/admin/badges/b1/evaluate", headers=ACME)
    assert resp.status == 405 and resp.headers["Allow"] == "POST"
    for method in ("GET", "POST", "PUT"):
        resp = await client.request(method, f"{BASE}/admin/rules/r1/evaluate", headers=ACME)
        assert resp.status == 404, method


async def test_every_answer_carries_a_request_id_and_a_server_header_without_versions(
    client: TestClient,
) -> None:
    mine = {"X-Request-ID": "trace-0af7651916cd43dd8448eb211c80319c"}
    for resp in (
        await client.get("/healthz", headers=mine),
        await client.get(f"{BASE}/participants/u1", headers=mine),  # 401
        await client.get(f"{BASE}/nothing", headers=mine),  # 404
    ):
        assert resp.headers["X-Request-ID"] == mine["X-Request-ID"]
        assert resp.headers["Server"] == "Gamify"
    for unsafe in ("has space", "x" * 129, "new\\nline", ""):
        resp = await client.get("/healthz", headers={"X-Request-ID": unsafe})
        assert resp.headers["X-Request-ID"] != unsafe
        assert len(resp.headers["X-Request-ID"]) == 32
    a, b = await client.get("/healthz"), await client.get("/healthz")
    assert a.headers["X-Request-ID"] != b.headers["X-Request-ID"]


def route_count(metric: str, route: str, status: str | None = None) -> float:
    """The GET samples of ``metric`` (requests or latency observations) for one route."""
    family = metrics.HTTP_REQUESTS if metric == "requests" else metrics.HTTP_LATENCY
    suffix = "_total" if metric == "requests" else "_count"
    return sum(
        s.value
        for m in family.collect()
        for s in m.samples
        if s.name.endswith(suffix)
        and s.labels.get("method") == "GET"
        and s.labels.get("route") == route
        and (status is None or s.labels.get("status") == status)
    )


async def test_answers_are_counted_by_route_and_status_with_their_latency(
    client: TestClient,
) -> None:
    route = f"{BASE}/participants/{{participant_id}}"
    counted = {s: route_count("requests", route, s) for s in ("401", "404")}
    observed = route_count("latency", route)
    unmatched = route_count("requests", "unmatched", "404")
    assert (await client.get(f"{BASE}/participants/u1")).status == 401
    assert (await client.get(f"{BASE}/participants/nobody", headers=ACME)).status == 404
    assert (await client.get(f"{BASE}/nothing", headers=ACME)).status == 404
    assert route_count("requests", route, "401") == counted["401"] + 1
    assert route_count("requests", route, "404") == counted["404"] + 1
    assert route_count("latency", route) == observed + 2
    assert route_count("requests", "unmatched", "404") == unmatched + 1


async def test_the_request_id_goes_into_the_commits_causation(
    client: TestClient, log: InMemoryEventLog
) -> None:
    resp = await client.post(
        f"{BASE}/points/award",
        headers={**ACME, "X-Request-ID": "req-42"},
        json={"participant_id": "u1", "amount": 5},
    )
    assert resp.status == 200
    assert decode(log.values[-1]).causation.request_id == "req-42"


async def test_the_access_log_has_one_info_line_per_request_and_never_the_key(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await client.post(
        f"{BASE}/points/award?token=secret-query",
        headers={**ACME, "X-Request-ID": "rid-1"},
        json={"participant_id": "u1", "amount": 5},
    )
    await client.get(f"{BASE}/participants/u1", headers={"X-API-Key": "k-wrong-key"})
    lines = [r for r in caplog.records if r.name == "gamify.access"]
    assert [r.levelno for r in lines] == [logging.INFO, logging.INFO]
    method, path, status, took, rid = lines[0].getMessage().split()
    assert (method, path, status, rid) == ("POST", f"{BASE}/points/award", "200", "rid=rid-1")
    assert took.endswith("ms") and float(took[:-2]) >= 0
    assert lines[1].getMessage().startswith(f"GET {BASE}/participants/u1 401 ")
    text = logged(caplog)
    assert KEY not in text and "k-wrong-key" not in text and "secret-query" not in text


# --------------------------------------------------------------------------------------------
# Idempotency-Key: the request's fingerprint is kept beside the key


async def award(client: TestClient, key: str, **body: object) -> tuple[int, dict[str, object]]:
    resp = await client.post(
        f"{BASE}/points/award",
        headers={**ACME, "Idempotency-Key": key},
        json={"participant_id": "u1", **body},  # unless body names another
    )
    replayed = resp.headers.get("Idempotent-Replayed") == "true"
    return resp.status, {**(await resp.json()), "replayed": replayed}


async def test_a_key_reused_with_another_body_answers_422(client: TestClient) -> None:
    status, first = await award(client, "order-1", amount=10, reason="quest")
    assert (status, first["replayed"]) == (200, False)
    # The same request again, fields in another order: a retry, answered as the first time.
    status, again = await award(client, "order-1", reason="quest", amount=10)
    assert (status, again["replayed"], again["transaction_id"]) == (
        200,
        True,
        first["transaction_id"],
    )
    status, other = await award(client, "order-1", amount=11, reason="quest")
    assert status == 422
    assert "different body" in str(other["detail"])
    # Another command under the key stays 409.
    resp = await client.post(
        f"{BASE}/points/deduct",
        headers={**ACME, "Idempotency-Key": "order-1"},
        json={"participant_id": "u1", "amount": 1},
    )
    assert resp.status == 409
    points = await (await client.get(f"{BASE}/participants/u1/points", headers=ACME)).json()
    assert points["balance"] == 10


async def test_the_legacy_body_key_gets_a_fingerprint_too(client: TestClient) -> None:
    body = {"participant_id": "u2", "amount": 3, "idempotency_key": "legacy-1"}
    assert (await client.post(f"{BASE}/points/award", headers=ACME, json=body)).status == 200
    changed = {**body, "amount": 4}
    assert (await client.post(f"{BASE}/points/award", headers=ACME, json=changed)).status == 422


async def test_a_key_recorded_without_a_fingerprint_never_answers_422(
    client: TestClient, log: InMemoryEventLog
) -> None:
    """Commits written before fingerprints existed replay as before, whatever the body."""
    old = award_commit("u3", 0, 7, 7, cid="old-commit", key="old-key", tenant="acme")
    assert old.causation.fingerprint is None
    await log.append(old)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        status, answer = await award(client, "old-key", participant_id="u3", amount=99)
        if answer.get("replayed"):
            break
        await asyncio.sleep(0.02)
    assert (status, answer["replayed"], answer["amount"]) == (200, True, 7)


async def test_the_legacy_body_key_is_held_to_the_header_pattern(client: TestClient) -> None:
    for bad in ("has space", "x" * 256, "ключ"):
        resp = await client.post(
            f"{BASE}/points/award",
            headers=ACME,
            json={"participant_id": "u1", "amount": 1, "idempotency_key": bad},
        )
        assert resp.status == 422, bad
        assert (await resp.json())["detail"][0]["loc"] == ["body", "idempotency_key"]


def test_the_fingerprint_ignores_key_order_and_the_key_itself() -> None:
    a = fingerprint({"participant_id": "u", "amount": 1, "idempotency_key": "k1"})
    assert a == fingerprint({"amount": 1, "participant_id": "u", "idempotency_key": "k2"})
    assert a != fingerprint({"participant_id": "u", "amount": 2})
    assert len(a) == 64


def test_the_fingerprint_travels_in_the_causation_and_old_records_still_decode() -> None:
    commit = award_commit("u", 0, 1, 1, cid="c1", key="k")
    old_bytes = encode(commit)
    assert b"fingerprint" not in old_bytes  # commits without one keep their old shape
    assert decode(old_bytes).causation.fingerprint is None
    stamped = replace(
        commit, causation=Causation("points.award", idempotency_key="k", fingerprint="ab" * 32)
    )
    assert decode(encode(stamped)).causation.fingerprint == "ab" * 32


# --------------------------------------------------------------------------------------------
# Configuration errors


def test_a_bad_api_key_item_is_named_by_position_not_text() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_api_keys("acme:k1, gmf_live_topsecret ,globex:k2")
    assert "item 2" in str(raised.value)
    assert "topsecret" not in str(raised.value)


async def test_a_body_with_a_broken_encoding_answers_400_json(port: int) -> None:
    for head, body in (
        ("Content-Encoding: gzip\r\nContent-Length: 5", b"abcde"),
        ("Transfer-Encoding: chunked", b"ZZZ\r\nabc\r\n0\r\n\r\n"),
    ):
        request = (
            f"POST {BASE}/points/award HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n"
            f"Content-Type: application/json\r\n{head}\r\n\r\n"
        )
        assert_json_error(await exchange(port, request.encode() + body), 400)


@pytest.mark.parametrize("coding", ["gzip, gzip", "compress", "x-gzip", "br", "zstd", "x-\x7ffoo"])
async def test_a_content_coding_gamify_does_not_decode_answers_415_json(
    port: int, coding: str
) -> None:
    """Only identity, gzip and deflate are decoded; any other coding (or a list of codings)
    would reach the JSON parser still encoded. br/zstd are refused by the parser, the rest by
    the app; both answer the same status in the same shape, never quoting control bytes."""
    body = gzip.compress(b'{"participant_id": "u1", "amount": 5, "reason": "r"}')
    request = (
        f"POST {BASE}/points/award HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Encoding: {coding}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    answer = await exchange(port, request.encode("latin-1") + body)
    if answer.status == 400:  # the parser may refuse a control byte in a header first
        assert "\x7f" in coding
        return
    assert_json_error(answer, 415)
    detail = answer.json()["detail"]  # type: ignore[index]
    assert "send the body plain, gzip or deflate" in detail
    assert "\x7f" not in detail


@pytest.mark.parametrize("coding", ["gzip", "GZIP", "deflate", "identity"])
async def test_the_content_codings_gamify_decodes_are_accepted(port: int, coding: str) -> None:
    raw = b'{"participant_id": "u1", "amount": 5, "reason": "r"}'
    body = {"identity": raw, "deflate": zlib.compress(raw)}.get(coding, gzip.compress(raw))
    request = (
        f"POST {BASE}/points/award HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Encoding: {coding}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    answer = await exchange(port, request.encode() + body)
    assert answer.status == 200, answer.body
    assert answer.json()["new_balance"] == 5  # type: ignore[index]


async def test_a_broken_gzip_body_is_400_and_never_an_error_traceback_in_the_log(
    port: int, caplog: pytest.LogCaptureFixture
) -> None:
    """aiohttp drains the rest of a body after the answer and logs a broken encoding it meets
    there as an unhandled ERROR: a client could flood the log. It is logged at debug."""
    caplog.set_level(logging.DEBUG)
    good = gzip.compress(b'{"participant_id": "u1", "amount": 5, "reason": "r"}')
    for body in (b"not gzip at all", good[:10] + b"\x00garbage\x00" + good[10:], good + b"tail"):
        request = (
            f"POST {BASE}/points/award HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Encoding: gzip\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        answer = await exchange(port, request.encode() + body)
        assert answer.status == 400, (body, answer.body)
    await asyncio.sleep(0.1)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
