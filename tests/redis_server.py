"""The Redis server of the integration tests (127.0.0.1:6379, or GAMIFY_TEST_REDIS_URL)."""

from __future__ import annotations

import os

import redis

DEFAULT_URL = "redis://127.0.0.1:6379/0"


class RedisUnavailable(RuntimeError):
    """No Redis answers where the tests expect one."""


def redis_url() -> str:
    """The URL of a Redis that answered PING; RedisUnavailable with the reason otherwise."""
    url = os.environ.get("GAMIFY_TEST_REDIS_URL", DEFAULT_URL)
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise RedisUnavailable(
            f"Redis at {url} does not answer ({exc}); start one (redis-server) or set "
            "GAMIFY_TEST_REDIS_URL"
        ) from exc
    finally:
        client.close()
    return url


def delete_prefix(url: str, prefix: str) -> None:
    """Remove every key a test made under ``prefix``."""
    client = redis.Redis.from_url(url)
    try:
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
    finally:
        client.close()
