"""The `gamify` command line: `gamify serve` runs API, projector (and later inbound) in one process."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from aiohttp import web

from services.api.app import create_app
from services.api.auth import KeyRing, development_keys
from services.config import ConfigError, Settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gamify", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the API and the projector in one process")
    serve.add_argument("--host", help="listen address (default: GAMIFY_HTTP_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default: GAMIFY_HTTP_PORT or 8080)")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as exc:
        print(f"gamify: configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command == "serve":
        return serve_command(settings, args.host, args.port)
    return 2


def serve_command(settings: Settings, host: str | None, port: int | None) -> int:
    key_ring = _key_ring(settings)
    mode = (
        f"Kafka at {settings.kafka_bootstrap_servers}"
        if settings.kafka_bootstrap_servers
        else f"embedded log in {settings.log_path}"
    )
    print(f"gamify: {mode}; read models in {_redacted(settings.read_model_url)}", flush=True)
    app = create_app(settings, key_ring=key_ring)
    web.run_app(
        app,
        host=host or settings.http_host,
        port=settings.http_port if port is None else port,
        print=lambda line: print(line, flush=True),
        access_log=None,
    )
    return 0


def _key_ring(settings: Settings) -> KeyRing:
    if settings.api_keys:
        return KeyRing.from_specs(settings.api_keys)
    ring, created = development_keys(settings.data_dir)
    if created:
        print(
            "gamify: no GAMIFY_API_KEYS set; created a development API key for tenant 'default' "
            f"(admin scope). It is shown only this once:\n\n    X-API-Key: {created}\n",
            flush=True,
        )
    else:
        print(
            f"gamify: using the development key stored hashed in {settings.data_dir}/api_keys.json"
            " (delete that file to make a new one)",
            flush=True,
        )
    return ring


if __name__ == "__main__":
    sys.exit(main())


def _redacted(url: str) -> str:
    """The URL without its password, for logs."""
    head, at, tail = url.rpartition("@")
    if not at or ":" not in head.split("//", 1)[-1]:
        return url
    scheme, _, user_pw = head.partition("//")
    return f"{scheme}//{user_pw.split(':', 1)[0]}:***@{tail}"
