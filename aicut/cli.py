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


def _cmd_coordinator(args: argparse.Namespace) -> int:
    from aicut.coordinator.app import serve

    settings = load_settings(args.machines, coordinator={"host": args.host, "port": args.port,
                                                         "http_port": args.http_port,
                                                         "insecure": args.insecure or None})
    setup_logging(settings.log_level)
    return asyncio.run(serve(settings))


def _cmd_run(args: argparse.Namespace) -> int:
    from aicut.local import run_local

    settings = load_settings(args.machines)
    setup_logging(settings.log_level)
    return asyncio.run(run_local(settings, args.machines))


def _cmd_submit(args: argparse.Namespace) -> int:
    from aicut.operator import submit

    return asyncio.run(submit(load_settings(args.machines), args))


def _cmd_status(args: argparse.Namespace) -> int:
    from aicut.operator import status

    return asyncio.run(status(load_settings(args.machines), args))


def _cmd_check(args: argparse.Namespace) -> int:
    from aicut.operator import check

    return asyncio.run(check(args.machines))


def _cmd_process(args: argparse.Namespace) -> int:
    from aicut.process import process

    settings = load_settings(args.machines)
    setup_logging(settings.log_level)
    return process(settings, args)


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

    c = sub.add_parser("coordinator", help="run the coordinator (gRPC aicut.v1.Coordinator, default port 8001)")
    c.add_argument("--machines", help="machines.yaml to read (default: the checkout's)")
    c.add_argument("--host", help="address of the gRPC API (default 127.0.0.1)")
    c.add_argument("--port", type=int, help="gRPC port (default 8001); 0 picks a free one")
    c.add_argument("--http-port", dest="http_port", type=int, help="dashboard and JSON gateway port (default 8000)")
    c.add_argument("--insecure", action="store_true", help="allow a non-loopback bind without AICUT_CLUSTER_TOKEN")
    c.set_defaults(func=_cmd_coordinator)

    r = sub.add_parser("run", help="the whole cluster on this machine: embedded Valkey, coordinator, one worker")
    r.add_argument("--machines", help="machines.yaml to read (default: the checkout's)")
    r.set_defaults(func=_cmd_run)

    for name, helptext, func in (("submit", "queue a video URL; prints the task id", _cmd_submit),
                                 ("status", "print workers and tasks", _cmd_status)):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--machines", help="machines.yaml to read (default: the checkout's)")
        p.add_argument("--coordinator", help="HOST:PORT of the coordinator (default from machines.yaml)")
        if name == "submit":
            p.add_argument("url", help="a video URL (http or https)")
            p.add_argument("--name", default="", help="original file name")
            p.add_argument("--id", default="", help="your own task id (makes the call idempotent)")
        else:
            p.add_argument("--state", default="", help="only tasks in this state (QUEUED, RUNNING, FAILED, …)")
            p.add_argument("--limit", type=int, default=20)
        p.set_defaults(func=func)

    x = sub.add_parser("process", help="cut one local video file or URL into --out, without a cluster")
    x.add_argument("source", help="a video file or an http(s) URL")
    x.add_argument("--out", required=True, help="directory for <name>_cut.mp4, .srt, _cover.jpg, edl.json, report.json")
    x.add_argument("--machines", help="machines.yaml with the stage settings (default: the checkout's)")
    x.add_argument("--name", default="", help="the original file name (default: from the source)")
    x.add_argument("--language", default="", help="speech language, e.g. zh or en (default from machines.yaml)")
    x.add_argument("--model", default="", help="speech model: base (default), tiny.en, or a CTranslate2 directory")
    x.add_argument("--encoder", default="", choices=["", "auto", "x264", "nvenc"], help="video encoder")
    x.add_argument("--burn", action="store_true", help="burn the subtitles into the picture too")
    x.add_argument("--top", default="", help="cover title, top line (封面标题上)")
    x.add_argument("--middle", default="", help="cover title, middle line (封面标题中)")
    x.add_argument("--bottom", default="", help="cover title, bottom line (封面标题下)")
    x.add_argument("--hotwords", default="", help="words the speech recogniser should expect (the post's text)")
    x.add_argument("--keep-work", dest="keep_work", action="store_true", help="keep the intermediate files")
    x.set_defaults(func=_cmd_process)

    k = sub.add_parser("check", help="check-only mode: configuration, Redis, workers, credentials; exit 1 on problems")
    k.add_argument("--machines", help="machines.yaml to read (default: the checkout's)")
    k.set_defaults(func=_cmd_check)
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
