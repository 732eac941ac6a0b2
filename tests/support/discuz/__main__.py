"""``python -m tests.support.discuz [--port 0] [--host 127.0.0.1] [--config FILE.json] [--charset gbk] ...``

Prints one line ``listening on http://127.0.0.1:PORT/`` and serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from .config import ForumConfig
from .server import DiscuzServer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.support.discuz", description=__doc__)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--config", help="JSON file with ForumConfig fields")
    p.add_argument("--charset", choices=("utf-8", "gbk"))
    p.add_argument("--version", dest="discuz_version", choices=("X3.4", "X3.5"))
    p.add_argument("--captcha", action="store_true", default=None)
    p.add_argument("--rewrite", action="store_true", default=None)
    p.add_argument("--no-mobile-api", dest="mobile_api", action="store_false", default=None)
    p.add_argument("--floodctrl", type=int)
    return p.parse_args(argv)


def make_config(args: argparse.Namespace) -> ForumConfig:
    config = ForumConfig.from_json(args.config) if args.config else ForumConfig()
    for key, value in (("charset", args.charset), ("version", args.discuz_version), ("captcha", args.captcha),
                       ("rewrite", args.rewrite), ("mobile_api", args.mobile_api), ("floodctrl", args.floodctrl)):
        if value is not None:
            setattr(config, key, value)
    config.__post_init__()
    return config


async def serve(args: argparse.Namespace) -> None:
    server = DiscuzServer(make_config(args), port=args.port, host=args.host)
    url = await server.start_async()
    sys.stdout.write(f"listening on {url}\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.close_async()


def main(argv: list[str] | None = None) -> int:
    asyncio.run(serve(parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
