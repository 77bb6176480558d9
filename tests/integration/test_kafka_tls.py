"""TLS end to end: Gamify's own producer, consumers and admin client through a TLS proxy.

The broker is tansu behind stunnel (tests/tls.py), whatever broker the session uses: the
proxy, not the broker, speaks TLS, and it requires a client certificate signed by the test CA.
A missing stunnel fails these tests with how to install it (``make test`` does).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError

from projections.sources.kafka import KafkaEndOffsets, KafkaLogSource
from schemas import codec
from services.adapters.kafka_clients import client_options
from services.adapters.kafka_event_log import KafkaEventLog
from services.config import ConfigError, kafka_security
from tests.integration.test_kafka_event_log import make_commit
from tests.kafka_broker import free_port
from tests.tls import Certificates, Stunnel, StunnelMissing, TlsBroker, tls_tansu

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    try:
        with tls_tansu(tmp_path_factory.mktemp("tls")) as broker:
            yield broker
    except StunnelMissing as exc:
        pytest.fail(str(exc), pytrace=False)


def options(env: dict[str, str]) -> dict[str, Any]:
    return client_options(kafka_security(env))


async def test_a_commit_goes_through_tls_and_comes_back(tls_broker: TlsBroker) -> None:
    topic = f"gamify-tls-{uuid.uuid4().hex[:8]}"
    connection = options(tls_broker.env)
    log = KafkaEventLog(
        tls_broker.bootstrap, topic, partitions=2, idempotence=False, connection=connection
    )
    await log.start()
    try:
        commit = make_commit("p-tls", 0)
        position = await log.append(commit)
    finally:
        await log.stop()
    source = KafkaLogSource(
        tls_broker.bootstrap, topic, group_id=None, topic_wait=10, connection=connection
    )

    async def from_start(partitions: list[int]) -> dict[int, int]:
        return dict.fromkeys(partitions, 0)

    await source.start(from_start)
    try:
        records: list[Any] = []
        deadline = time.monotonic() + 15
        while not records and time.monotonic() < deadline:
            batch = await source.read(10, 0.5)
            records = [r for rs in batch.values() for r in rs]
    finally:
        await source.stop()
    assert [(r.partition, r.offset) for r in records] == [(position.partition, position.offset)]
    assert codec.decode(records[0].value).commit_id == commit.commit_id
    end_offsets = KafkaEndOffsets(tls_broker.bootstrap, topic, connection=connection)
    try:
        assert await end_offsets() == {
            position.partition: position.offset + 1,
            1 - position.partition: 0,
        }
    finally:
        await end_offsets.stop()


async def connects(bootstrap: str, connection: dict[str, Any]) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000, **connection)
    try:
        await admin.start()
        await admin.list_topics()
        return True
    except (KafkaConnectionError, OSError):
        return False
    finally:
        await admin.close()


async def test_the_proxy_refuses_plaintext_and_unverified_clients(
    tls_broker: TlsBroker, tmp_path: Path
) -> None:
    assert await connects(tls_broker.bootstrap, options(tls_broker.env))
    assert not await connects(tls_broker.bootstrap, {})  # plaintext
    no_client_cert = {
        k: v for k, v in tls_broker.env.items() if "CERTFILE" not in k and "KEYFILE" not in k
    }
    assert not await connects(tls_broker.bootstrap, options(no_client_cert))
    other_ca = Certificates.generate(tmp_path)  # the broker's certificate is not signed by it
    assert not await connects(
        tls_broker.bootstrap,
        options({**tls_broker.env, "GAMIFY_KAFKA_SSL_CAFILE": str(other_ca.ca)}),
    )


async def test_the_hostname_check_is_on_unless_turned_off(
    tls_broker: TlsBroker, tmp_path: Path
) -> None:
    # A second proxy whose certificate (same CA) names another host. With the check off the
    # client bootstraps through it, then follows the broker to the proxy it advertises.
    elsewhere = Stunnel(
        tls_broker.certs,
        free_port(),
        tls_broker.broker_port,
        tmp_path,
        server=tls_broker.certs.server_for(tmp_path, "kafka.elsewhere.example"),
    )
    try:
        bootstrap = f"127.0.0.1:{elsewhere.port}"
        assert not await connects(bootstrap, options(tls_broker.env))
        unchecked = {**tls_broker.env, "GAMIFY_KAFKA_SSL_CHECK_HOSTNAME": "false"}
        assert await connects(bootstrap, options(unchecked))
    finally:
        elsewhere.stop()


def test_a_bad_tls_file_stops_the_process_with_one_line(
    tls_broker: TlsBroker, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        **tls_broker.env,
        "GAMIFY_KAFKA_SSL_CAFILE": str(tmp_path / "missing-ca.pem"),
        "GAMIFY_KAFKA_BOOTSTRAP_SERVERS": tls_broker.bootstrap,
        "GAMIFY_DATA_DIR": str(tmp_path),
        "GAMIFY_API_KEYS": "acme:key-acme",
        "GAMIFY_HTTP_PORT": str(free_port()),
    }
    done = subprocess.run(
        [sys.executable, "-m", "services", "project"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    stderr = done.stderr.decode()
    assert done.returncode == 2, stderr
    assert stderr.strip().splitlines() == [
        f"gamify project: cannot start: GAMIFY_KAFKA_SSL_CAFILE={tmp_path / 'missing-ca.pem'}: "
        "cannot load the CA: No such file or directory"
    ]


def test_config_error_names_the_file_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="GAMIFY_KAFKA_SSL_CAFILE"):
        options({"GAMIFY_KAFKA_SECURITY_PROTOCOL": "SSL", "GAMIFY_KAFKA_SSL_CAFILE": str(tmp_path)})


async def test_gamify_serves_through_tls(tls_broker: TlsBroker, tmp_path: Path) -> None:
    """A whole `gamify serve` on the TLS broker: a write is produced, consumed and read back."""
    import aiohttp

    port = free_port()
    env = {
        **os.environ,
        **tls_broker.env,
        "GAMIFY_KAFKA_BOOTSTRAP_SERVERS": tls_broker.bootstrap,
        "GAMIFY_KAFKA_TOPIC_PREFIX": f"gamify-tls-{uuid.uuid4().hex[:8]}.",
        "GAMIFY_KAFKA_IDEMPOTENCE": "false",
        "GAMIFY_KAFKA_SESSION_TIMEOUT_MS": "2000",
        "GAMIFY_DATA_DIR": str(tmp_path),
        "GAMIFY_API_KEYS": "acme:key-acme",
        "GAMIFY_HTTP_PORT": str(port),
        "GAMIFY_LOG_LEVEL": "WARNING",
    }
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "services", "serve"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(headers={"X-API-Key": "key-acme"}) as http:
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, (tmp_path / "serve.log").read_text()
                try:
                    async with http.get(f"{base}/readyz") as ready:
                        if ready.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
                await asyncio.sleep(0.1)
            body = {"participant_id": "p-tls", "display_name": "TLS"}
            async with http.post(f"{base}/api/v1/gamify/participants", json=body) as created:
                assert created.status == 201, await created.text()
            async with http.get(f"{base}/api/v1/gamify/participants/p-tls") as read:
                assert read.status == 200
                assert (await read.json())["display_name"] == "TLS"
        # The inbound consumer and the dead-letter producer connect through TLS too.
        prefix = env["GAMIFY_KAFKA_TOPIC_PREFIX"]
        await produce(tls_broker, f"{prefix}inbound", b"not json")
        assert await first_value(tls_broker, f"{prefix}inbound-dlq") == b"not json"
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


async def produce(broker: TlsBroker, topic: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, **options(broker.env))
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=b"p-tls")
    finally:
        await producer.stop()


async def first_value(broker: TlsBroker, topic: str, timeout: float = 30) -> bytes | None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest", **options(broker.env)
    )
    await consumer.start()
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                return records[0].value
        return None
    finally:
        await consumer.stop()
