"""The `gamify` command line: run all roles in one process, or each role on its own."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from services.api.app import create_app
from services.api.auth import KeyRing, development_keys
from services.api.serving import run_server
from services.config import ConfigError, Settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gamify", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in SERVER_COMMANDS.items():
        sub = commands.add_parser(name, help=help_text[0])
        sub.add_argument("--host", help="listen address (default: GAMIFY_HTTP_HOST or 127.0.0.1)")
        sub.add_argument("--port", type=int, help="listen port (default: GAMIFY_HTTP_PORT or 8080)")
    _add_replay_parser(commands)
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
    return replay_command(settings, args)


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
    settings = dataclasses.replace(
        settings,
        http_host=host or settings.http_host,
        http_port=settings.http_port if port is None else port,
    )
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
    return run_server(
        app,
        host=settings.http_host,
        port=settings.http_port,
        shutdown_timeout=settings.shutdown_timeout,
        print=lambda line: print(line, flush=True),
        access_log=None,
    )


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


def _add_replay_parser(commands: Any) -> None:
    replay = commands.add_parser(
        "replay",
        help="rebuild read models from the log",
        description="Rebuild read models from the start of the log (embedded or Kafka). By default"
        " into shadow tables, then swapped in atomically while the service keeps serving.",
    )
    replay.add_argument(
        "--read-model",
        action="append",
        dest="read_models",
        metavar="NAME",
        help="only this read model (repeatable; default: all)",
    )
    replay.add_argument("--tenant", help="repair only this tenant's rows")
    replay.add_argument("--participant", help="repair only this participant's rows")
    replay.add_argument(
        "--into", metavar="URL", help="build into another store (sqlite:///... or postgresql://...)"
    )
    mode = replay.add_mutually_exclusive_group()
    mode.add_argument(
        "--verify",
        action="store_true",
        help="compare the rebuilt copy with the live read models at the same log "
        "positions; exit 1 on any difference",
    )
    mode.add_argument(
        "--no-swap",
        action="store_true",
        help="build the shadow copy and leave the live read models as they are",
    )
    mode.add_argument(
        "--swap", action="store_true", help="catch the existing shadow copy up and swap it in"
    )


def replay_command(settings: Settings, args: argparse.Namespace) -> int:
    from projections.replay import FAILED, USAGE, ReplayOptions, replay

    if args.participant is not None and args.into:
        print(
            "gamify replay: --participant/--tenant repair the live store; drop --into",
            file=sys.stderr,
        )
        return USAGE
    new_source, end_offsets, close = _replay_log(settings)
    opts = ReplayOptions(
        database_url=settings.read_model_url,
        topic=settings.participant_events_topic,
        new_source=new_source,
        end_offsets=end_offsets,
        into_url=args.into,
        tenant=args.tenant,
        participant=args.participant,
        verify=args.verify,
        swap=not args.no_swap,
        resume=args.swap or args.verify,
    )
    if args.read_models:
        opts.read_models = tuple(args.read_models)

    async def run() -> Any:
        try:
            return await replay(opts)
        finally:
            await close()

    try:
        result = asyncio.run(run())
    except ValueError as exc:
        print(f"gamify replay: {exc}", file=sys.stderr)
        return USAGE
    except Exception as exc:  # the CLI's last word: ReplayError, an unreachable log or store
        print(f"gamify replay: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return FAILED
    for difference in result.differences[:50]:
        print(difference.describe())
    if len(result.differences) > 50:
        print(f"... and {len(result.differences) - 50} more differences")
    verdict = f"{len(result.differences)} differences" if args.verify else "done"
    print(
        f"gamify replay: {result.events} events in {result.seconds:.1f}s; {verdict}",
        file=sys.stderr,
    )
    return result.exit_code


def _replay_log(settings: Settings) -> tuple[Any, Any, Any]:
    """A factory of group-less log sources, an end-offsets probe, and how to close it."""
    topic = settings.participant_events_topic
    if settings.kafka_bootstrap_servers:
        from projections.sources.kafka import KafkaEndOffsets, KafkaLogSource

        bootstrap = settings.kafka_bootstrap_servers
        probe = KafkaEndOffsets(bootstrap, topic)
        return (
            lambda: KafkaLogSource(bootstrap, topic, group_id=None, client_id="gamify-replay"),
            probe,
            probe.stop,
        )
    from projections.sources.sqlite import SqliteLogSource

    if not Path(settings.log_path).exists():
        raise SystemExit(f"gamify replay: no embedded log at {settings.log_path}")
    reader = SqliteLogSource(settings.log_path, topic)

    async def close() -> None:
        reader.close()

    return (lambda: reader, reader.end_offsets, close)
