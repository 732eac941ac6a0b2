"""A worker's status stream against the seed's polling: how fresh a client's view is, and what a round trip costs.

One real worker process on loopback (``python -m aicut worker``) has its slots kept busy by tasks that download a
clip slowly from a local HTTP server; each task's progress changes the worker's status about ten times a second, and
accepting and finishing tasks change it too. Side by side, in the same run, against that same worker:

1. **Freshness**: the time from a status change on the worker (the snapshot's ``changed_unix_ns``) to a client
   holding it. *Ours* is a ``StreamStatus`` client: the worker pushes every change. The *baseline* is the seed's
   design, whose monitor fetched each machine's HTTP status endpoint at a fixed interval: here the unary ``Health``
   RPC (the same snapshot) called every ``--poll-interval`` seconds. Two views of the same window:
   *new snapshot* times each snapshot newer than the client had (for a poller only the newest at poll time, so
   the changes it never saw, the ``seq`` gaps, are counted too); *every change* times each change until the client
   held a snapshot at least that new, which is what a scheduler waiting on a freed slot feels. Worker and client
   share a machine and its clock, so no clock sync is needed.
2. **Round trip**: *ours* is a Ping answered by a Pong over the open stream (how the coordinator times a worker);
   the *baseline* is one unary ``Health`` call, the request/response the seed's HTTP status GET was. The two
   alternate on one channel while the load runs, so both meet the same busy worker.

The stream client acknowledges every task event, as a coordinator does. The issue's aim is p99 under 5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import grpc

from aicut import rpc
from bench.common import (ClipServer, Row, Seen, WorkerProcess, in_window, new_token, newly_seen, print_report,
                          summarize, visible_after_ns)
from generated.aicut.v1 import common_pb2 as pb
from generated.aicut.v1 import worker_pb2 as wpb
from generated.aicut.v1 import worker_pb2_grpc

AIM_P99_MS = 5.0
_DESCRIPTION = "Status freshness and round trips of a real worker: its status stream against Health polling."
_FINAL_EVENTS = frozenset({"succeeded", "failed", "cancelled"})


@dataclass(frozen=True, slots=True)
class Options:
    seconds: float
    poll_interval: float
    pings: int
    slots: int
    task_seconds: float
    ack: bool


def parse_args(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench worker_stream", description=_DESCRIPTION)
    parser.add_argument("--seconds", type=float, default=15.0, help="how long to measure freshness (default 15)")
    parser.add_argument("--poll-interval", type=float, default=1.0,
                        help="the baseline's Health polling interval in seconds (default 1.0)")
    parser.add_argument("--pings", type=int, default=1000, help="sequential round trips of each kind (default 1000)")
    parser.add_argument("--slots", type=int, default=4, help="the worker's slots, all kept busy (default 4)")
    parser.add_argument("--task-seconds", type=float, default=3.0,
                        help="how long each task's throttled download lasts (default 3)")
    parser.add_argument("--no-ack", dest="ack", action="store_false",
                        help="do not acknowledge task events (leaves out the worker's outbox writes on acks)")
    a = parser.parse_args(argv)
    return Options(seconds=a.seconds, poll_interval=a.poll_interval, pings=a.pings, slots=a.slots,
                   task_seconds=a.task_seconds, ack=a.ack)


# --- ours: the status stream --------------------------------------------------------------------------------------


class StatusStream:
    """One StreamStatus call read as a coordinator reads it: acks events (unless told not to), times snapshots and
    pongs."""

    def __init__(self, stub: worker_pb2_grpc.WorkerStub, on_event: Callable[[pb.TaskEvent], None],
                 ack: bool = True) -> None:
        self.on_event = on_event
        self.ack = ack
        self.recording = False
        self.seen: list[Seen] = []  # each new snapshot while recording
        self.missed = 0             # changes skipped while recording (seq gaps); a stream should have none
        self.last_seq: int | None = None
        self._outgoing: asyncio.Queue[wpb.StatusStreamRequest | None] = asyncio.Queue()
        self._pongs: dict[int, asyncio.Future[int]] = {}
        self._nonces = itertools.count(1)
        self.call = stub.StreamStatus(self._requests())
        self._reader = asyncio.create_task(self._read(), name="bench-stream-reader")

    async def _requests(self) -> AsyncIterator[wpb.StatusStreamRequest]:
        yield wpb.StatusStreamRequest(hello=wpb.Hello(peer="bench worker_stream"))
        while (req := await self._outgoing.get()) is not None:
            yield req

    async def _read(self) -> None:
        while True:
            msg = await self.call.read()
            now_ns, now_perf = time.time_ns(), time.perf_counter_ns()
            if msg is grpc.aio.EOF:
                return
            kind = msg.WhichOneof("msg")
            if kind == "status":
                self._on_status(msg.status, now_ns)
            elif kind == "pong":
                waiter = self._pongs.pop(msg.pong.nonce, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(now_perf)
            elif kind == "event":
                if self.ack:
                    self._outgoing.put_nowait(wpb.StatusStreamRequest(ack=wpb.Ack(event_seqs=[msg.event.seq])))
                self.on_event(msg.event)

    def _on_status(self, status: wpb.WorkerStatus, now_ns: int) -> None:
        if self.last_seq is not None and status.seq <= self.last_seq:
            return
        # The snapshot sent when the stream opens describes the past, not a change: never recorded.
        if self.recording and self.last_seq is not None:
            self.seen.append(Seen(status.seq, status.changed_unix_ns, now_ns))
            self.missed += status.seq - self.last_seq - 1
        self.last_seq = status.seq

    async def ping(self, timeout_s: float = 5.0) -> int:
        """One Ping/Pong round trip in nanoseconds."""
        nonce = next(self._nonces)
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pongs[nonce] = waiter
        sent = time.perf_counter_ns()
        self._outgoing.put_nowait(wpb.StatusStreamRequest(ping=wpb.Ping(nonce=nonce, sent_unix_ns=time.time_ns())))
        return await asyncio.wait_for(waiter, timeout_s) - sent

    async def close(self) -> None:
        self._outgoing.put_nowait(None)
        self.call.cancel()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)


# --- the baseline: polling Health ---------------------------------------------------------------------------------


async def poll_health(stub: worker_pb2_grpc.WorkerStub, interval_s: float, seconds: float) -> list[Seen]:
    """Call Health on a fixed schedule (no drift) for ``seconds``; every poll's snapshot, in order."""
    polls: list[Seen] = []
    start = time.monotonic()
    for k in itertools.count():
        due = start + k * interval_s
        if due - start > seconds:
            return polls
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        status = await stub.Health(wpb.HealthRequest(), timeout=5)
        polls.append(Seen(status.seq, status.changed_unix_ns, time.time_ns()))
    return polls  # pragma: no cover - the loop returns


async def health_rtt(stub: worker_pb2_grpc.WorkerStub) -> int:
    """One unary Health round trip in nanoseconds."""
    sent = time.perf_counter_ns()
    await stub.Health(wpb.HealthRequest(), timeout=5)
    return time.perf_counter_ns() - sent


# --- load: slots kept busy with slow downloads --------------------------------------------------------------------


class Load:
    """Keeps every slot busy with a throttled download; a slot is refilled when its task's final event arrives."""

    def __init__(self, stub: worker_pb2_grpc.WorkerStub, clips: ClipServer, slots: int, task_seconds: float) -> None:
        self.stub, self.clips, self.task_seconds = stub, clips, task_seconds
        self.outcomes = collections.Counter[str]()
        self.failures = collections.Counter[str]()
        self._free = asyncio.Semaphore(slots)
        self._mine: set[str] = set()
        self._ids = itertools.count(1)
        self._run_id = new_token()[:6]
        self._filler: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._filler = asyncio.create_task(self._fill(), name="bench-load")

    async def _fill(self) -> None:
        while True:
            await self._free.acquire()
            task_id = f"bench-{self._run_id}-{next(self._ids)}"
            self._mine.add(task_id)
            try:
                await self.stub.SubmitTask(wpb.SubmitTaskRequest(task=self.clips.slow_task(task_id,
                                                                                           self.task_seconds)),
                                           timeout=10)
                self.outcomes["submitted"] += 1
            except grpc.aio.AioRpcError as exc:
                self.outcomes[f"refused ({exc.code().name})"] += 1
                self._mine.discard(task_id)
                self._free.release()
                await asyncio.sleep(0.1)

    def on_event(self, event: pb.TaskEvent) -> None:
        kind = event.WhichOneof("event")
        if kind not in _FINAL_EVENTS or event.task_id not in self._mine:
            return
        self._mine.discard(event.task_id)
        self.outcomes[kind] += 1
        if kind == "failed":
            self.failures[f"{event.failed.code}: {event.failed.message[:120]}"] += 1
        self._free.release()

    async def stop(self) -> None:
        if self._filler is not None:
            self._filler.cancel()
            await asyncio.gather(self._filler, return_exceptions=True)

    def describe(self) -> str:
        return ", ".join(f"{n} {k}" for k, n in self.outcomes.items()) or "nothing submitted"


# --- the run ------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Measured:
    stream: StatusStream
    polls: list[Seen]
    ping_ns: list[int]
    health_ns: list[int]
    load: Load


async def _wait_busy(load: Load, slots: int, timeout_s: float = 10.0) -> None:
    """Let the load fill every slot before measuring."""
    deadline = time.monotonic() + timeout_s
    while load.outcomes["submitted"] < slots and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # past the task processes' start-up


async def _catch_up(stream: StatusStream, seq: int, timeout_s: float = 2.0) -> None:
    """Keep recording until the stream has delivered every change the last poll saw, so both cover one window."""
    deadline = time.monotonic() + timeout_s
    while (stream.last_seq or 0) < seq and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


async def _round_trips(stream: StatusStream, stub: worker_pb2_grpc.WorkerStub, n: int) -> tuple[list[int], list[int]]:
    """``n`` stream pings and ``n`` Health calls, alternating, each waiting for its answer."""
    pings: list[int] = []
    healths: list[int] = []
    for _ in range(n):
        pings.append(await stream.ping())
        healths.append(await health_rtt(stub))
    return pings, healths


async def measure(address: str, token: str, clips: ClipServer, opts: Options) -> Measured:
    """Load the worker; time the stream and the poller over the same window, then the round trips."""
    channel = rpc.channel(address, token)
    stub = worker_pb2_grpc.WorkerStub(channel)
    load = Load(stub, clips, opts.slots, opts.task_seconds)
    stream = StatusStream(stub, load.on_event, ack=opts.ack)
    try:
        await channel.channel_ready()
        load.start()
        await _wait_busy(load, opts.slots)
        stream.recording = True
        polls = await poll_health(stub, opts.poll_interval, opts.seconds)
        await _catch_up(stream, polls[-1].seq if polls else 0)
        stream.recording = False
        pings, healths = await _round_trips(stream, stub, opts.pings)
        return Measured(stream, polls, pings, healths, load)
    finally:
        await load.stop()
        await stream.close()
        await channel.close()


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "—"


def _rows(m: Measured) -> list[Row]:
    fresh = newly_seen(m.polls)
    changes = m.polls[-1].seq - m.polls[0].seq if m.polls else 0
    never = changes - len(fresh)
    streamed = len(m.stream.seen)
    missed = (f"polling never saw {never} of {changes} changes ({_share(never, changes)}) in {len(m.polls)} polls; "
              f"the stream missed {m.stream.missed} of {streamed + m.stream.missed}")
    snapshots = Row("freshness, new snapshot", summarize([s.age_ns for s in m.stream.seen]),
                    summarize([p.age_ns for p in fresh]), [missed])
    window = in_window(m.stream.seen, m.polls)
    every = Row("freshness, every change", summarize([c.age_ns for c in window]),
                summarize(visible_after_ns(window, m.polls)), [
        "each change in the polling window, timed until the client held a snapshot at least that new",
    ])
    ours, base = summarize(m.ping_ns), summarize(m.health_ns)
    ping = Row("round trip", ours, base, [f"max: ours {ours.max_ms:.3f} ms, baseline {base.max_ms:.3f} ms"])
    return [snapshots, every, ping]


def _legend(opts: Options) -> list[str]:
    acks = "acks every task event" if opts.ack else "acks nothing (--no-ack)"
    return [
        f"ours:     freshness = StreamStatus, pushed on every change ({acks}); round trip = Ping/Pong on the stream",
        (f"baseline: freshness = unary Health polled every {opts.poll_interval:g} s (the seed's monitor polled "
         "each machine's HTTP status);"),
        "          round trip = one unary Health call (the seed's status GET); both alternate on one channel under load",
    ]


def main(argv: list[str]) -> int:
    opts = parse_args(argv)
    token = new_token()
    with tempfile.TemporaryDirectory(prefix="aicut-bench-") as tmp, ExitStack() as stack:
        clips = stack.enter_context(ClipServer(Path(tmp) / "media"))
        worker = stack.enter_context(WorkerProcess(Path(tmp) / "worker", token, slots=opts.slots,
                                                   heartbeat_interval_s=0.5))
        started = time.monotonic()
        address = worker.wait_ready()
        print(f"worker_stream: worker on {address} ready in {time.monotonic() - started:.1f}s; {opts.slots} slots "
              f"kept busy with {opts.task_seconds:g} s downloads; freshness measured for {opts.seconds:g} s with "
              f"Health polled every {opts.poll_interval:g} s; then {opts.pings} round trips of each kind",
              flush=True)
        m = asyncio.run(measure(address, token, clips, opts))
        print(f"load: {m.load.describe()}")
        for failure, n in m.load.failures.most_common(3):
            print(f"  {n}× failed: {failure}")
        print_report("worker_stream: one real worker on loopback, ours vs the seed's polling", _rows(m),
                     _legend(opts), AIM_P99_MS)
    return 0
