"""Real workers for the tests: in-process (``make_worker``) or as a process (``WorkerProcess``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from aicut import rpc
from aicut.config import Settings, load_settings
from aicut.worker.app import WorkerApp
from aicut.worker.capabilities import Capabilities, probe_capabilities
from generated.aicut.v1 import common_pb2 as pb
from generated.aicut.v1 import worker_pb2 as wpb
from generated.aicut.v1 import worker_pb2_grpc

from tests.support.procs import ROOT, TOKEN, WorkerProcess, write_machines  # noqa: F401 (re-exported)


def task(task_id: str, *urls: str, attempt: int = 1) -> pb.Task:
    return pb.Task(id=task_id, attempt=attempt, kind=pb.SMART_CUT,
                   spec=pb.TaskSpec(title="测试", sources=[pb.Source(url=u, name=f"源{i}.mp4", kind=pb.VIDEO)
                                                          for i, u in enumerate(urls)]))


@pytest.fixture(scope="session")
def capabilities() -> Capabilities:
    """Probed once for the session; in-process workers reuse it instead of probing again."""
    return probe_capabilities("")


class Client:
    """A token-carrying Worker stub and a status-stream reader."""

    def __init__(self, address: str, token: str = TOKEN) -> None:
        self.address = address
        self.channel = rpc.channel(address, token)
        self.stub = worker_pb2_grpc.WorkerStub(self.channel)

    async def submit(self, t: pb.Task) -> wpb.SubmitTaskReply:
        return await self.stub.SubmitTask(wpb.SubmitTaskRequest(task=t), timeout=10)

    async def health(self) -> wpb.WorkerStatus:
        return await self.stub.Health(wpb.HealthRequest(), timeout=10)

    async def close(self) -> None:
        await self.channel.close()


class Stream:
    """An open StreamStatus call: send pings and acks, collect what arrives."""

    def __init__(self, client: Client) -> None:
        self.outgoing: asyncio.Queue[wpb.StatusStreamRequest | None] = asyncio.Queue()
        self.call = client.stub.StreamStatus(self._requests())
        self.received: list[tuple[float, wpb.StatusStreamMessage]] = []

    async def _requests(self) -> AsyncIterator[wpb.StatusStreamRequest]:
        yield wpb.StatusStreamRequest(hello=wpb.Hello(peer="test"))
        while (req := await self.outgoing.get()) is not None:
            yield req

    async def next(self, want: str | None = None, where: Callable[[wpb.StatusStreamMessage], bool] = lambda m: True,
                   timeout: float = 20.0) -> wpb.StatusStreamMessage:
        """The next message of kind ``want`` (status, heartbeat, pong, event) for which ``where`` holds."""
        async def read() -> wpb.StatusStreamMessage:
            while True:
                msg = await self.call.read()
                assert msg is not grpc.aio.EOF, "the worker ended the stream"
                self.received.append((time.monotonic(), msg))
                if (want is None or msg.WhichOneof("msg") == want) and where(msg):
                    return msg
        return await asyncio.wait_for(read(), timeout)

    async def event(self, task_id: str, kind: str, timeout: float = 30.0) -> pb.TaskEvent:
        msg = await self.next("event", lambda m: m.event.task_id == task_id and m.event.WhichOneof("event") == kind,
                              timeout)
        return msg.event

    async def close(self) -> None:
        await self.outgoing.put(None)
        self.call.cancel()


MakeWorker = Callable[..., Awaitable[tuple[WorkerApp, Client]]]


@pytest.fixture
async def make_worker(tmp_path: Path, capabilities: Capabilities) -> AsyncIterator[MakeWorker]:
    """Start in-process workers on 127.0.0.1:0 (token required); all are shut down after the test."""
    made: list[tuple[WorkerApp, Client]] = []

    async def create(work_dir: Path | None = None, token: str = TOKEN, **worker: Any) -> tuple[WorkerApp, Client]:
        base = work_dir or tmp_path / f"w{len(made)}"
        base.mkdir(parents=True, exist_ok=True)
        settings: Settings = load_settings(write_machines(base, work_dir=str(base / "work"), **worker),
                                           env_file=base / "none.env", environ={"AICUT_CLUSTER_TOKEN": token})
        app = WorkerApp(settings, capabilities)
        await app.start()
        client = Client(f"127.0.0.1:{app.port}", token)
        made.append((app, client))
        return app, client

    yield create
    for app, client in made:
        await client.close()
        app.settings = app.settings  # keep mypy calm about reuse
        hurry = asyncio.Event()
        hurry.set()
        await app.shutdown(hurry)
