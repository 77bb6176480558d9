"""Tools of the fault tests: a cuttable TCP proxy, plain HTTP calls, timing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

API = "/api/v1/gamify"


class CuttableProxy:
    """Forwards a local port to ``target``; ``cut()`` drops every connection and refuses new ones.

    Stands in for a server that goes away (a PostgreSQL restart, a network cut) without
    touching the shared server itself; ``pause()`` holds every byte (a stalled server) until
    ``resume()``.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.is_cut = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()

    async def start(self) -> CuttableProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def cut(self) -> None:
        self.is_cut = True
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def restore(self) -> None:
        self.is_cut = False

    def pause(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.is_cut:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self._flowing.wait()
                if self.is_cut:
                    break
                writer.write(data)
                await writer.drain()
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.transport.abort()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any
    seconds: float


def call(
    base_url: str,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    key: str | None = None,
    api_key: str = "k-acme",
    timeout: float = 30.0,
) -> Answer:
    """One HTTP request (blocking; run it with asyncio.to_thread from async tests)."""
    headers = {"X-API-Key": api_key, "Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    data = None if body is None else json.dumps(body).encode()
    url = base_url + (
        path if path.startswith("/readyz") or path.startswith("/healthz") else API + path
    )
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310
            status, raw, got = reply.status, reply.read(), dict(reply.headers)
    except urllib.error.HTTPError as exc:
        status, raw, got = exc.code, exc.read(), dict(exc.headers)
    took = time.monotonic() - started
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return Answer(status, got, parsed, took)


async def acall(base_url: str, method: str, path: str, body: Any = None, **kw: Any) -> Answer:
    return await asyncio.to_thread(call, base_url, method, path, body, **kw)


def balance(base_url: str, pid: str) -> int:
    answer = call(base_url, "GET", f"/participants/{pid}/points")
    return int(answer.body["balance"]) if answer.status == 200 else 0
