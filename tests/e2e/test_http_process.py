"""`gamify serve` as a process: parser-level errors, read timeouts, the access log and the
shutdown line, checked on the bytes a client receives and the lines the process writes."""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Callable

import orjson

from tests.e2e.conftest import ACME_KEY, API, Server


def send(server: Server, data: bytes, timeout: float = 10.0) -> bytes:
    """Send ``data`` on a new connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def status_and_body(raw: bytes) -> tuple[int, object]:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"application/json" in head, head
    assert b"\r\nServer: Gamify\r\n" in head, head
    return int(head.split()[1]), orjson.loads(body)


def test_parser_errors_timeouts_access_log_and_shutdown_line(
    server_factory: Callable[[str], Server],
) -> None:
    server = server_factory("embedded")
    server.env.update({"GAMIFY_LOG_LEVEL": "INFO", "GAMIFY_HTTP_READ_TIMEOUT_MS": "500"})
    server.start()
    secret = "gmf_" + "topsecret" * 1000
    big_key = f"GET {API}/participants/u1 HTTP/1.1\r\nHost: x\r\nX-API-Key: {secret}\r\n\r\n"
    assert status_and_body(send(server, big_key.encode()))[0] == 431
    long_target = f"GET /{'a' * 9000} HTTP/1.1\r\nHost: x\r\n\r\n"
    assert status_and_body(send(server, long_target.encode()))[0] == 414

    started = time.monotonic()
    slow = send(server, b"GET /healthz HTTP/1.1\r\nHost: x")  # the headers never end
    assert time.monotonic() - started < 3.0
    assert status_and_body(slow)[0] == 408

    ok = f"GET {API}/participants/nobody HTTP/1.1\r\nHost: x\r\nX-API-Key: {ACME_KEY}\r\n"
    status, body = status_and_body(
        send(server, f"{ok}X-Request-ID: e2e-rid-1\r\nConnection: close\r\n\r\n".encode())
    )
    assert (status, body) == (404, {"detail": "Participant not found: nobody"})

    assert server.stop(signal.SIGTERM) == 0
    out, err = (p.read_text() for p in server._paths())
    logs = out + err
    assert f"GET {API}/participants/nobody 404 " in logs and "rid=e2e-rid-1" in logs
    assert "- - 431 " in logs and "- - 414 " in logs and "- - 408 " in logs
    assert "stopping on SIGTERM" in logs and "stopped serving on http://127.0.0.1:" in logs
    assert "topsecret" not in logs and ACME_KEY not in logs
    assert "Traceback" not in logs
