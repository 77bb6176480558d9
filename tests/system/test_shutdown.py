"""SIGTERM: the in-flight request finishes, keep-alive clients see a clean close, the exit is bounded.

A `gamify serve` process (embedded log, read models in PostgreSQL behind a proxy the test
controls) holds three connections when it gets SIGTERM: an idle keep-alive connection; a
write that is being processed, held up by a stalled store (the proxy holds every byte) until
just after the signal; and a request whose body never completes. The write must answer 200
with ``Connection: close``; the idle connection must be closed with a FIN (no reset); and the
process must exit 0 within GAMIFY_SHUTDOWN_TIMEOUT_MS plus the workers' stop, whatever the
stuck request does. Before: aiohttp's default 60 s shutdown timeout held the stuck request.
(aiohttp reads no more request bytes once shutdown starts, so a body still uploading at the
signal is cut off at the timeout; requests whose body arrived finish.)
"""

from __future__ import annotations

import asyncio
import http.client
import json
import signal
import socket
import time
from typing import Any
from urllib.parse import urlsplit

from tests.system.faults import API, CuttableProxy, acall

SHUTDOWN_TIMEOUT_MS = 2000
EXIT_SLACK = 4.0  # workers' stop and interpreter exit, on a loaded machine
AWARD = {"participant_id": "u", "amount": 1}
BODY = json.dumps(AWARD).encode()


def _partial_post(port: int, key: str, body: bytes, sent: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = (
        f"POST {API}/points/award HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: k-acme\r\n"
        f"Idempotency-Key: {key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock.sendall(head + body[:sent])
    return sock


def _read_all(sock: socket.socket, timeout: float) -> tuple[bytes, str]:
    """Everything until the peer closes; and how it closed ("fin", "reset" or "open")."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        return data, "reset"
    except TimeoutError:
        return data, "open"
    return data, "fin"


def _keep_alive(port: int) -> http.client.HTTPConnection:
    idle = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for _ in range(2):  # two requests on one connection: it is kept alive
        idle.request("GET", "/healthz")
        reply = idle.getresponse()
        reply.read()
        assert reply.status == 200 and reply.getheader("Connection") != "close"
    return idle


async def test_sigterm_finishes_in_flight_requests_and_closes_keep_alive_cleanly(
    processes: Any, postgres_schema_url: str
) -> None:
    url = urlsplit(postgres_schema_url)
    proxy = await CuttableProxy(url.hostname or "127.0.0.1", url.port or 5432).start()
    server = processes(
        "serve",
        {
            "GAMIFY_API_KEYS": "acme:k-acme",
            "GAMIFY_DATABASE_URL": url._replace(
                netloc=f"{url.username}@127.0.0.1:{proxy.port}"
            ).geturl(),
            "GAMIFY_SHUTDOWN_TIMEOUT_MS": str(SHUTDOWN_TIMEOUT_MS),
            "GAMIFY_WRITE_TIMEOUT_MS": "10000",
        },
        "serve",
    )
    await asyncio.to_thread(server.start)
    try:
        warm = await acall(server.base_url, "POST", "/points/award", AWARD, key="warm-up")
        assert warm.status == 200, warm
        idle = await asyncio.to_thread(_keep_alive, server.port)
        stuck = await asyncio.to_thread(_partial_post, server.port, "stuck-1", BODY, 3)

        proxy.pause()  # the store stalls: the next write waits inside its handler
        slow = asyncio.create_task(
            acall(server.base_url, "POST", "/points/award", AWARD, key="slow-1")
        )
        await asyncio.sleep(0.5)
        assert not slow.done()
        assert server.proc is not None
        proc = server.proc
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        proxy.resume()

        answer = await slow
        assert answer.status == 200, answer
        assert answer.headers.get("Connection", "").lower() == "close", answer.headers
        assert answer.body["new_balance"] == 2
        _, idle_closed = await asyncio.to_thread(_read_all, idle.sock, 5.0)
        assert idle_closed == "fin", f"idle keep-alive connection: {idle_closed}"

        code = await asyncio.to_thread(proc.wait, SHUTDOWN_TIMEOUT_MS / 1000 + EXIT_SLACK + 10)
        took = time.monotonic() - signalled
        print(f"SIGTERM -> exit {code} in {took:.2f}s (shutdown timeout {SHUTDOWN_TIMEOUT_MS} ms)")
        assert code == 0, server.tail()
        assert took < SHUTDOWN_TIMEOUT_MS / 1000 + EXIT_SLACK, took
        stuck.close()
        idle.close()
    finally:
        await proxy.stop()
