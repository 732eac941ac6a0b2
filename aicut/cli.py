"""Command line: ``python -m aicut worker | coordinator | run | check | submit | status``.

Argument parsing, logging set-up and ``asyncio.run`` only; the work is done elsewhere.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from aicut import __version__
from aicut.config import Settings, load_settings
from aicut.errors import AicutError


def setup_logging(level: str) -> None:
    """The only place that configures log handlers."""
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("urllib3", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.machines, host=getattr(args, "host", None), port=getattr(args, "port", None),
                         slots=getattr(args, "slots", None), insecure=getattr(args, "insecure", None) or None,
                         worker_id=getattr(args, "worker_id", None), work_dir=getattr(args, "work_dir", None))


def _cmd_worker(args: argparse.Namespace) -> int:
    from aicut.worker.app import serve

    settings = _settings(args)
    setup_logging(settings.log_level)
    return asyncio.run(serve(settings))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aicut", description="aicut: cut talking-head videos posted on a forum.")
    parser.add_argument("--version", action="version", version=f"aicut {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    w = sub.add_parser("worker", help="run a worker (gRPC aicut.v1.Worker, default port 8005)")
    w.add_argument("--machines", help="machines.yaml to read (default: the checkout's)")
    w.add_argument("--host", help="address to listen on (default from machines.yaml `worker.host`, 127.0.0.1)")
    w.add_argument("--port", type=int, help="port to listen on; 0 picks a free one (default 8005)")
    w.add_argument("--slots", type=int, help="tasks run at once (max_concurrent_tasks, default 1)")
    w.add_argument("--worker-id", dest="worker_id", help="name shown to the coordinator (default host:port)")
    w.add_argument("--work-dir", dest="work_dir", help="where downloads and outputs go (default var/worker)")
    w.add_argument("--insecure", action="store_true",
                   help="allow listening beyond loopback without AICUT_CLUSTER_TOKEN (trusted LAN only)")
    w.set_defaults(func=_cmd_worker)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except AicutError as exc:
        print(f"aicut {args.command}: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
