"""The reads baseline: a bare aiohttp server returning a stored JSON body, in its own process.

Any GET whose path ends in ``/state`` gets the stored state body, any other the stored profile
body: the same URLs, sizes and client as against Gamify, with no auth, database or shaping.

    python -m bench.bare_server --port 9000 --profile profile.json --state state.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aiohttp import web


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--profile", type=Path, required=True)
    parser.add_argument("--state", type=Path, required=True)
    args = parser.parse_args(argv)
    profile, state = args.profile.read_bytes(), args.state.read_bytes()

    async def handle(request: web.Request) -> web.Response:
        body = state if request.path.endswith("/state") else profile
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
