"""Find (or start) the PostgreSQL server the tests use, and make fresh schemas on it."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
ENV_URL = "GAMIFY_TEST_POSTGRES_URL"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL could be reached or started: integration tests must fail, not skip."""


def _connectable(url: str) -> str | None:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return None
    except psycopg.Error as exc:
        return str(exc).strip()


def _start_local_cluster() -> str:
    """Start the machine's Debian PostgreSQL cluster if it is installed but stopped."""
    if shutil.which("pg_lsclusters") is None or shutil.which("pg_ctlcluster") is None:
        return "pg_lsclusters/pg_ctlcluster not installed"
    listing = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=False)
    for line in listing.stdout.splitlines():
        version, cluster, _port, status, *_ = line.split()
        if status != "online":
            done = subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", version, cluster, "start"],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                return f"pg_ctlcluster {version} {cluster} start failed: {done.stderr.strip()}"
    return "started local clusters"


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield a URL of a reachable PostgreSQL; raise PostgresUnavailable with the reason if none.

    Order: $GAMIFY_TEST_POSTGRES_URL; the local server at 127.0.0.1:5432 (started with
    pg_ctlcluster when installed but stopped); testcontainers' PostgreSQL where Docker runs.
    """
    url = os.environ.get(ENV_URL)
    if url:
        error = _connectable(url)
        if error:
            raise PostgresUnavailable(f"{ENV_URL}={url} is not reachable: {error}")
        yield url
        return
    error = _connectable(DEFAULT_URL)
    if error:
        attempt = _start_local_cluster()
        deadline = time.monotonic() + 20
        while error and time.monotonic() < deadline:
            time.sleep(0.5)
            error = _connectable(DEFAULT_URL)
        if error:
            from tests.kafka_broker import docker_available

            if docker_available():
                from testcontainers.postgres import PostgresContainer

                with PostgresContainer("postgres:16-alpine", driver=None) as pg:
                    yield pg.get_connection_url()
                return
            raise PostgresUnavailable(
                f"PostgreSQL is not reachable at {DEFAULT_URL} ({error}); tried: {attempt}. "
                f"Start it (pg_ctlcluster --skip-systemctl-redirect 15 main start) or set {ENV_URL}."
            )
    yield DEFAULT_URL


def new_schema(url: str) -> str:
    """Create a uniquely named schema and return its name."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    return name


def drop_schema(url: str, name: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
