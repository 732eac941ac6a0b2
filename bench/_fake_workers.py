"""Light workers that speak the real ``aicut.v1.Worker`` protocol: ``python -m bench._fake_workers --count N …``.

A real worker spawns a Python process per task (about 0.45 s of CPU), so 10,000 real tasks cannot run on a 2-core
machine in a benchmark's minutes. These workers are the product's own code with only the task itself replaced:

- the gRPC layer is the real :class:`aicut.worker.service.WorkerService` on the real :class:`aicut.rpc.Server` (token
  check, health, reflection): ``SubmitTask``, ``StreamStatus`` (a snapshot at once and on every change, heartbeats
  every ``heartbeat_interval_s``, pongs, events until acknowledged), ``Health``, ``CancelTask``;
- the state is the real :class:`aicut.worker.node.WorkerNode`: slots and ``RESOURCE_EXHAUSTED``, idempotency per task
  id and attempt (``duplicate``), ``ALREADY_EXISTS`` for another attempt, draining, status snapshots, the outbox's
  numbering, coalescing and acknowledgements;
- what differs: no task process is spawned — a task is accepted (status change + ``accepted`` event), "starts"
  (status change, as the real worker's pid update), and after ``--delay-ms`` succeeds (``succeeded`` event + status
  change); and the outbox lives in memory only (a real worker fsyncs its outbox file on every accepted/succeeded
  event: 100 workers on one shared disk would measure that disk, not the coordinator).

Each worker counts the tasks it accepted (new, not duplicates) per task id; SIGUSR1 writes every worker's counts to
``--report`` (``{address: {"accepted": {id: n}, "duplicates": {id: n}}}``) and prints ``REPORT WRITTEN``. Prints
``FAKES READY <address> …`` once all listen; SIGTERM or SIGINT stops them. The token comes from
``AICUT_CLUSTER_TOKEN``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path

from aicut.cli import setup_logging
from aicut.config import Settings, load_settings
from aicut.models import Task
from aicut.rpc import Server
from aicut.worker.app import SERVICE
from aicut.worker.capabilities import Capabilities
from aicut.worker.node import Running, WorkerNode
from aicut.worker.outbox import Outbox
from aicut.worker.runner import Outcome
from aicut.worker.service import WorkerService
from generated.aicut.v1 import common_pb2 as pb
from generated.aicut.v1 import worker_pb2_grpc

# What a CPU-only machine of this project reports (x264, no GPU): the same message shape a real worker sends.
CAPABILITIES = Capabilities(
    nvenc=False, nvenc_reason="no NVIDIA driver (bench fake)", nvdec=False, nvdec_reason="no NVIDIA driver",
    gpus=(), cpu_count=2, speech_model_ready=False, speech_model="", speech_model_reason="bench fake",
    encoders=("x264",), version="bench")


class MemoryOutbox(Outbox):
    """The real outbox (numbering, progress coalescing, acks) without its file."""

    def _save(self, durable: bool = True) -> None:
        pass

    def _write(self, version: int, data: bytes, durable: bool) -> None:
        pass


class FakeNode(WorkerNode):
    """The real worker node; a task is a timer instead of a process."""

    def __init__(self, settings: Settings, delay_s: float) -> None:
        super().__init__(settings, CAPABILITIES)
        self.outbox = MemoryOutbox(self.ws.work_dir / "outbox.json")
        self.delay_s = delay_s
        self.accepted = collections.Counter[str]()
        self.duplicates = collections.Counter[str]()

    async def submit(self, task: Task) -> tuple[bool, object]:  # type: ignore[override]
        duplicate, status = await super().submit(task)
        (self.duplicates if duplicate else self.accepted)[task.id] += 1
        return duplicate, status

    def _job(self, task: Task) -> dict[str, object]:
        return {}

    async def _launch(self, run: Running) -> None:
        self._changed()                       # the real worker's snapshot with the task's pid
        if self.delay_s > 0:
            await asyncio.sleep(self.delay_s)
        if run.process.cancel_reason:
            self._finish(run, Outcome("cancelled", message=run.process.cancel_reason))
            return
        self._finish(run, Outcome("succeeded", result=pb.TaskResult(machine=self.worker_id,
                                                                    stage_seconds={"fake": self.delay_s})))

    async def _stop(self, run: Running, reason: str, hand_back: bool) -> None:
        # The "task" sees this when its timer ends, as a task process sees SIGTERM.
        run.handed_back = hand_back
        run.process.cancel_reason = reason or "cancelled"


async def run(count: int, machines: str, delay_s: float, report: Path) -> int:
    base = load_settings(machines)
    setup_logging(base.log_level)
    token = base.secrets.cluster_token
    work_dir = base.worker.work_dir
    work_dir.mkdir(parents=True, exist_ok=True)
    nodes: list[FakeNode] = []
    servers: list[Server] = []
    for _ in range(count):
        settings = replace(base, worker=replace(base.worker, port=0))
        node = FakeNode(settings, delay_s)
        server = Server("127.0.0.1", 0, token=token)
        server.add(worker_pb2_grpc.add_WorkerServicer_to_server, WorkerService(node), SERVICE)
        port = await server.start()
        node.worker_id = f"fake-{port}"
        await node.start()
        await server.set_serving(("", SERVICE), True)
        nodes.append(node)
        servers.append(server)
    addresses = [f"127.0.0.1:{s.port}" for s in servers]

    def write_report() -> None:
        doc = {a: {"accepted": dict(n.accepted), "duplicates": dict(n.duplicates)} for a, n in zip(addresses, nodes)}
        tmp = report.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, report)
        print("REPORT WRITTEN", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, write_report)
    print("FAKES READY " + " ".join(addresses), flush=True)
    try:
        await stop.wait()
    finally:
        for node in nodes:
            await node.close()
        await asyncio.gather(*(s.stop(0.5) for s in servers), return_exceptions=True)
    return 0


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench._fake_workers")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--machines", required=True, help="machines.yaml with the worker: section (slots, heartbeats)")
    p.add_argument("--delay-ms", type=float, default=0.0, help="how long each task 'runs' (default 0)")
    p.add_argument("--report", required=True, type=Path)
    a = p.parse_args(argv)
    return asyncio.run(run(a.count, a.machines, a.delay_ms / 1000, a.report))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
