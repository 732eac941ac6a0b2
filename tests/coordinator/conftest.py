"""A real cluster for the tests: Valkey, worker processes, a coordinator process, and a client for its API."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from aicut import rpc
from aicut.store.embedded import EmbeddedValkey
from generated.aicut.v1 import common_pb2 as pb
from generated.aicut.v1 import coordinator_pb2 as cpb
from generated.aicut.v1 import coordinator_pb2_grpc
from tests.support.procs import TOKEN, AicutProcess, WorkerProcess, free_port, write_machines

GRPCURL = str(Path(sys.executable).parent / "grpcurl")
FINISHED = (pb.SUCCEEDED, pb.FAILED, pb.CANCELLED)


class Cluster:
    """Valkey + workers + one coordinator, each a real process; torn down by the fixture."""

    def __init__(self, tmp: Path, valkey: EmbeddedValkey) -> None:
        self.tmp = tmp
        self.valkey = valkey
        self.workers: dict[str, WorkerProcess] = {}
        self.entries: list[str] = []
        self.coordinator: AicutProcess | None = None
        self.address = ""
        self.channel: grpc.aio.Channel | None = None
        self.stub: coordinator_pb2_grpc.CoordinatorStub | None = None
        self.coordinator_options: dict[str, Any] = {}
        self.sections: dict[str, dict[str, Any]] = {}   # more machines.yaml sections for the coordinator (forum: …)
        self.coordinator_env: dict[str, str] = {}

    def add_worker(self, name: str, priority: int = 1, slots: int = 1, fetch: dict[str, Any] | None = None,
                   **worker: Any) -> str:
        port = free_port()
        directory = self.tmp / name
        directory.mkdir(parents=True, exist_ok=True)
        self.workers[name] = WorkerProcess(directory, port=port, slots=slots, fetch=fetch, name=name, **worker)
        self.workers[name].wait_ready()
        address = f"127.0.0.1:{port}"
        self.entries.append(f"{address}:{priority}")
        return address

    def machines(self) -> Path:
        return write_machines(self.tmp, workers=self.entries, coordinator=self.coordinator_options,
                              sections=self.sections)

    async def start_coordinator(self, *, embedded: bool = False, machines: Path | None = None,
                                args: tuple[str, ...] = ()) -> str:
        """Start (or restart) the coordinator on the test's Valkey, or with ``embedded`` on its own Valkey (in
        machines.yaml's ``data_dir``); ``machines`` replaces the generated machines.yaml (then no worker is awaited)."""
        directory = self.tmp / "coordinator"
        if self.coordinator is not None:
            self.coordinator.close()
        path = machines or self.machines()
        self.coordinator = AicutProcess(directory, "coordinator", "--machines", str(path), *args,
                                        env={"REDIS_URL": "" if embedded else self.valkey.url,
                                             **self.coordinator_env})
        self.address = await asyncio.to_thread(self.coordinator.wait_ready)
        if self.channel is not None:
            await self.channel.close()
        self.channel = rpc.channel(self.address, TOKEN)
        self.stub = coordinator_pb2_grpc.CoordinatorStub(self.channel)
        if machines is None:
            await self.wait_workers_online(len(self.entries))
        return self.address

    async def wait_workers_online(self, n: int, timeout: float = 30) -> None:
        await self.until(lambda ws: sum(w.online for w in ws) >= n, timeout, what=f"{n} worker(s) online")

    async def workers_info(self) -> list[cpb.WorkerInfo]:
        assert self.stub is not None
        return list((await self.stub.ListWorkers(cpb.ListWorkersRequest(), timeout=10)).workers)

    async def until(self, check: Callable[[list[cpb.WorkerInfo]], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if check(await self.workers_info()):
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}: {await self.workers_info()}")

    async def submit(self, url: str, task_id: str = "") -> str:
        assert self.stub is not None
        return (await self.stub.SubmitTask(cpb.SubmitRequest(url=url, id=task_id), timeout=10)).id

    async def task(self, task_id: str) -> cpb.TaskInfo:
        assert self.stub is not None
        return await self.stub.GetTask(cpb.TaskRef(id=task_id), timeout=10)

    async def wait_task(self, task_id: str, states: tuple[int, ...] = FINISHED, timeout: float = 60,
                        where: Callable[[cpb.TaskInfo], bool] = lambda t: True) -> cpb.TaskInfo:
        deadline = time.monotonic() + timeout
        info = None
        while time.monotonic() < deadline:
            try:
                info = await self.task(task_id)
                if info.state in states and where(info):
                    return info
            except grpc.aio.AioRpcError:
                pass  # the coordinator may be restarting
            await asyncio.sleep(0.1)
        raise AssertionError(f"task {task_id} did not reach {states} in {timeout}s: {info}")

    async def all_tasks(self) -> list[cpb.TaskInfo]:
        assert self.stub is not None
        reply = await self.stub.ListTasks(cpb.ListTasksRequest(limit=500), timeout=10)
        return list(reply.tasks)

    def grpcurl(self, method: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        args = [GRPCURL, "-plaintext", "-H", f"authorization: Bearer {TOKEN}"]
        if body is not None:
            args += ["-d", json.dumps(body)]
        out = subprocess.run([*args, self.address, method], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout) if out.stdout.strip() else {}

    async def close(self) -> None:
        if self.channel is not None:
            await self.channel.close()
        if self.coordinator is not None:
            self.coordinator.close()
        for w in self.workers.values():
            w.close()


@pytest.fixture
async def valkey(tmp_path: Path) -> AsyncIterator[EmbeddedValkey]:
    server = EmbeddedValkey(tmp_path / "valkey", port=free_port())
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def cluster(tmp_path: Path, valkey: EmbeddedValkey) -> AsyncIterator[Cluster]:
    c = Cluster(tmp_path, valkey)
    yield c
    await c.close()


# ---------------------------------------------------------------------------------------------------------------------
# Helpers for the API and CLI tests (test_api.py, test_cli.py).

def grpcurl_run(address: str, method: str, body: dict[str, Any] | None = None, token: str | None = TOKEN,
                *extra: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Real grpcurl against ``address``; ``token=None`` sends no authorization header. Errors come back as JSON."""
    args = [GRPCURL, "-plaintext", "-format-error", *extra]
    if token is not None:
        args += ["-H", f"authorization: Bearer {token}"]
    if body is not None:
        args += ["-d", json.dumps(body)]
    return subprocess.run([*args, address, method], capture_output=True, text=True, timeout=timeout)


def grpcurl_error(out: subprocess.CompletedProcess[str]) -> tuple[str, str]:
    """(status code name, message) of a failed grpcurl call."""
    assert out.returncode != 0, out.stdout
    err = json.loads(out.stderr[out.stderr.index("{"):])   # -format-error: {"code": N, "message": "…"}
    return {c.value[0]: c.name for c in grpc.StatusCode}[err["code"]], err.get("message", "")


def json_stream(text: str) -> list[dict[str, Any]]:
    """The JSON objects grpcurl prints one after another for a server stream."""
    decoder, out, pos = json.JSONDecoder(), [], 0
    text = text.strip()
    while pos < len(text):
        obj, pos = decoder.raw_decode(text, pos)
        out.append(obj)
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


class EventWatcher:
    """A WatchEvents client running in the background; ``events`` grows as they arrive."""

    def __init__(self, stub: coordinator_pb2_grpc.CoordinatorStub, since_id: str = "") -> None:
        self.events: list[cpb.ClusterEvent] = []
        self.call = stub.WatchEvents(cpb.WatchEventsRequest(since_id=since_id))
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for event in self.call:
                self.events.append(event)
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            pass

    async def wait_for(self, check: Callable[[list[cpb.ClusterEvent]], bool], timeout: float = 30,
                       what: str = "events") -> list[cpb.ClusterEvent]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check(self.events):
                return self.events
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}: {self.events}")

    async def close(self) -> None:
        self.call.cancel()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def task_states(events: list[cpb.ClusterEvent], task_id: str) -> list[str]:
    """The states a task entered, in order, as WatchEvents told them."""
    return [pb.TaskState.Name(e.to_state) for e in events if e.kind == "task" and e.task_id == task_id]


def accepted_count(worker: AicutProcess, task_id: str, attempt: int = 1) -> int:
    """How many times the worker's log says it accepted this attempt."""
    return worker.output().count(f"task {task_id}#{attempt} accepted")
