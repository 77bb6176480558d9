"""The `gamify` command line: run all roles in one process, or each role on its own."""

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
    for name, help_text in SERVER_COMMANDS.items():
        sub = commands.add_parser(name, help=help_text[0])
        sub.add_argument("--host", help="listen address (default: GAMIFY_HTTP_HOST or 127.0.0.1)")
        sub.add_argument("--port", type=int, help="listen port (default: GAMIFY_HTTP_PORT or 8080)")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as exc:
        print(f"gamify: configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # aiokafka narrates every group join at INFO; keep its warnings and errors.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, logging.root.level))
    if args.command in SERVER_COMMANDS:
        return serve_command(settings, args.command, args.host, args.port)
    return 2


SERVER_COMMANDS: dict[str, tuple[str, frozenset[str]]] = {
    "serve": (
        "run the API, the projector and the inbound processor in one process",
        frozenset({"api", "projector", "inbound"}),
    ),
    "api": ("run only the HTTP API (read models shared with a projector)", frozenset({"api"})),
    "project": (
        "run only the projector (participant events -> read models)",
        frozenset({"projector"}),
    ),
    "inbound": (
        "run only the inbound processor (inbound topic -> commands)",
        frozenset({"inbound"}),
    ),
}


def serve_command(settings: Settings, command: str, host: str | None, port: int | None) -> int:
    roles = SERVER_COMMANDS[command][1]
    if command == "inbound" and not settings.kafka_bootstrap_servers:
        print("gamify: the inbound processor needs GAMIFY_KAFKA_BOOTSTRAP_SERVERS", file=sys.stderr)
        return 2
    key_ring = _key_ring(settings)
    mode = (
        f"Kafka at {settings.kafka_bootstrap_servers}"
        if settings.kafka_bootstrap_servers
        else f"embedded log in {settings.log_path}"
    )
    print(
        f"gamify {command} ({', '.join(sorted(roles))}): {mode}; "
        f"read models in {_redacted(settings.read_model_url)}",
        flush=True,
    )
    app = create_app(settings, key_ring=key_ring, roles=roles)
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
