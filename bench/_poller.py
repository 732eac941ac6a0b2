"""The seed's monitor, as a process of its own: ``python -m bench._poller --addresses A,B,… --interval 2 …``.

The seed's coordinator fetched each machine's HTTP status endpoint at a fixed interval. Here each worker's unary
``Health`` RPC (the same status snapshot the stream carries) is called every ``--interval`` seconds, the workers'
schedules staggered evenly across the interval, each call with a ``--timeout``. After ``--seconds`` it writes every
poll to ``--out`` as JSON ``{address: [[seq, changed_unix_ns, received_unix_ns], …]}`` (failed polls are counted in
``"_errors"``) and prints ``POLLER DONE``. A process of its own, as the seed's monitor was, so its work and the
coordinator's do not share an event loop. The token comes from ``AICUT_CLUSTER_TOKEN``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

import grpc

from aicut import rpc
from generated.aicut.v1 import worker_pb2 as wpb
from generated.aicut.v1 import worker_pb2_grpc


async def poll_one(address: str, token: str, offset_s: float, interval_s: float, timeout_s: float, t0: float,
                   end: float, errors: list[str]) -> list[list[int]]:
    polls: list[list[int]] = []
    async with rpc.channel(address, token) as channel:
        stub = worker_pb2_grpc.WorkerStub(channel)
        k = 0
        while True:
            due = t0 + offset_s + k * interval_s
            k += 1
            if due > end:
                return polls
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            try:
                status = await stub.Health(wpb.HealthRequest(), timeout=timeout_s)
            except grpc.aio.AioRpcError as exc:
                errors.append(f"{address}: {exc.code().name}")
                continue
            polls.append([status.seq, status.changed_unix_ns, time.time_ns()])


async def run(addresses: list[str], interval_s: float, timeout_s: float, seconds: float, out: str) -> None:
    token = os.environ.get("AICUT_CLUSTER_TOKEN", "")
    t0 = time.monotonic() + 0.2
    end = t0 + seconds
    errors: list[str] = []
    print(f"POLLER STARTED {time.time_ns() + 200_000_000}", flush=True)
    n = len(addresses)
    results = await asyncio.gather(*(poll_one(a, token, i * interval_s / n, interval_s, timeout_s, t0, end, errors)
                                     for i, a in enumerate(addresses)))
    doc: dict[str, object] = dict(zip(addresses, results))
    doc["_errors"] = errors
    with open(out, "w") as fh:
        json.dump(doc, fh)
    print("POLLER DONE", flush=True)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench._poller")
    p.add_argument("--addresses", required=True, help="comma-separated host:port list")
    p.add_argument("--interval", type=float, default=2.0)
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    asyncio.run(run(a.addresses.split(","), a.interval, a.timeout, a.seconds, a.out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
