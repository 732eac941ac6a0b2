"""The coordinator's view of 50 real workers: its status streams against the seed's polling.

Fifty real workers (:class:`aicut.worker.app.WorkerApp`, ``--per-process`` of them on one asyncio loop in each of a
few processes, one shared capabilities probe) serve on loopback. The coordinator side runs in this process and is
the real one: :class:`aicut.coordinator.dispatcher.Dispatcher` with its :class:`~aicut.coordinator.fleet.Fleet` of
:class:`~aicut.coordinator.links.WorkerLink` s (one ``StreamStatus`` call per worker) and a
:class:`~aicut.store.tasks.Store` on an embedded Valkey (``appendfsync always``, the product default). The only
addition is a recorder in ``on_status``: for every snapshot, the time it reached the coordinator minus the time the
change happened on the worker (``changed_unix_ns``; one machine, one clock).

Real state changes: about ``--concurrent`` tasks run at once, submitted through the dispatcher, which sends them to
workers as it would any task. Each downloads a file from a local HTTP server throttled to last about
``--task-seconds`` (± 25 %; the first ones are submitted one by one over that time, so that task processes, about
0.7 s of CPU each to start, do not all start at once); the worker reports progress about ten times a second, so its
status changes that often. The file is MP4-looking
bytes that are not a video, so each task then fails at once at probe (a final ``MediaError``): the rest of the smart
cut (transcription, rendering) would cost seconds of CPU per task on a 2-core machine and measure that instead. When
one ends, another is submitted.

Baseline, in the same run against the same workers: the seed's design, whose coordinator polled each machine's HTTP
status endpoint at an interval. Here a separate process (as the seed's monitor was) calls each worker's unary
``Health`` RPC (the same snapshot) every ``--poll-interval`` seconds (2 s, the seed's monitor interval), the workers
staggered across the interval. For every change, the time until the poller held a snapshot at least that new, and
the share of changes it never saw. The issue's aim: p99 under 10 ms for ours.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import json
import logging
import os
import random
import re
import signal
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aicut.config import WorkerEntry
from aicut.coordinator.dispatcher import Dispatcher
from aicut.coordinator.fleet import Fleet
from aicut.coordinator.links import WorkerLink
from aicut.coordinator.scheduler import Outliers, choose_worker
from aicut.store.embedded import EmbeddedValkey
from aicut.store.tasks import Store
from bench.common import (TOKEN_ENV, Helper, LoopLag, Row, Seen, Summary, TeardownNoise, bench_module, cpu_seconds,
                          exit_on_sigterm, in_window, load_note, new_token, newly_seen, print_report,
                          probe_capabilities_once, slow_clip_task, summarize, visible_after_ns, write_machines)
from generated.aicut.v1 import common_pb2 as pb
from generated.aicut.v1 import worker_pb2 as wpb

AIM_P99_MS = 10.0
_DESCRIPTION = "Worker state change → the coordinator's view, 50 real workers: status streams against polling."
_FINAL = frozenset({"succeeded", "failed", "cancelled"})


@dataclass(frozen=True, slots=True)
class Options:
    workers: int
    per_process: int
    seconds: float
    poll_interval: float
    poll_timeout: float
    concurrent: int
    task_seconds: float
    slots: int
    coordinator: str
    appendfsync: str
    dump: str


def parse_args(argv: list[str]) -> Options:
    p = argparse.ArgumentParser(prog="python -m bench coordinator_freshness", description=_DESCRIPTION)
    p.add_argument("--workers", type=int, default=50, help="real workers (default 50)")
    p.add_argument("--per-process", type=int, default=10, help="workers per process (default 10)")
    p.add_argument("--seconds", type=float, default=30.0, help="how long both are measured (default 30)")
    p.add_argument("--poll-interval", type=float, default=2.0,
                   help="the baseline's polling interval in seconds (default 2, the seed's monitor)")
    p.add_argument("--poll-timeout", type=float, default=5.0, help="the baseline's request timeout (default 5)")
    p.add_argument("--concurrent", type=int, default=10, help="tasks kept running at once (default 10)")
    p.add_argument("--task-seconds", type=float, default=12.0,
                   help="how long each task's throttled download lasts (default 12)")
    p.add_argument("--slots", type=int, default=2, help="each worker's slots (default 2)")
    p.add_argument("--coordinator", choices=("dispatcher", "links"), default="dispatcher",
                   help="dispatcher (default): the real Dispatcher with its Store; links: the real Fleet and "
                        "WorkerLinks with a handler that only records, to separate the streams from the handlers")
    p.add_argument("--appendfsync", choices=("always", "everysec"), default="always",
                   help="the embedded Valkey's fsync policy with --coordinator dispatcher (default always, the "
                        "product default)")
    p.add_argument("--dump", default="", metavar="FILE",
                   help="write every recorded snapshot (address, seq, changed ns, received ns) as JSON, for analysis")
    a = p.parse_args(argv)
    return Options(workers=a.workers, per_process=a.per_process, seconds=a.seconds, poll_interval=a.poll_interval,
                   poll_timeout=a.poll_timeout, concurrent=a.concurrent, task_seconds=a.task_seconds, slots=a.slots,
                   coordinator=a.coordinator, appendfsync=a.appendfsync, dump=a.dump)


# --- ours: the real links, with a recorder on the status callback -------------------------------------------------


@dataclass(slots=True)
class Track:
    """What the coordinator got from one worker's stream."""

    last_seq: int | None = None
    seen: list[Seen] = field(default_factory=list)   # every new snapshot while recording
    behind: list[bool] = field(default_factory=list)  # per snapshot: read right after an event handler blocked
    missed: int = 0                                   # changes skipped while recording (seq gaps)
    block_end_ns: int = 0                             # when the last event handler returned, and how long it took
    block_ns: int = 0
    task_ids: frozenset[str] = frozenset()            # the tasks the previous snapshot listed


class Recorder:
    """Notes when each snapshot arrived, and how long each task event held the link's read loop."""

    def __init__(self) -> None:
        self.tracks: dict[str, Track] = collections.defaultdict(Track)
        self.recording = False
        self.blocks: list[tuple[int, int]] = []   # (when an event handler returned, how long it held the loop)
        self.by_kind: dict[str, list[tuple[int, int]]] = collections.defaultdict(list)  # (received, age) by change
        self.on_final: Callable[[pb.TaskEvent], None] | None = None

    def status(self, address: str, status: wpb.WorkerStatus) -> None:
        now_ns = time.time_ns()
        track = self.tracks[address]
        if track.last_seq is not None and status.seq <= track.last_seq:
            return
        # The snapshot that opens a stream describes the past, not a change: never recorded.
        if self.recording and track.last_seq is not None:
            track.seen.append(Seen(status.seq, status.changed_unix_ns, now_ns))
            # "Behind an event": read within 1 ms of an event handler that had held the read loop for over 1 ms.
            track.behind.append(track.block_ns > 1_000_000 and now_ns - track.block_end_ns < 1_000_000)
            track.missed += status.seq - track.last_seq - 1
            ids = frozenset(t.task_id for t in status.tasks)
            kind = ("task accepted" if ids - track.task_ids else "task finished" if track.task_ids - ids
                    else "progress or other")
            self.by_kind[kind].append((now_ns, now_ns - status.changed_unix_ns))
        track.task_ids = frozenset(t.task_id for t in status.tasks)
        track.last_seq = status.seq

    def event(self, address: str, event: pb.TaskEvent, started_ns: int) -> None:
        now_ns = time.time_ns()
        track = self.tracks[address]
        track.block_end_ns, track.block_ns = now_ns, now_ns - started_ns
        if self.recording:
            self.blocks.append((now_ns, track.block_ns))
        if event.WhichOneof("event") in _FINAL and self.on_final is not None:
            self.on_final(event)


class RecordingDispatcher(Dispatcher):
    """The product's dispatcher (a LinkHandler), with the recorder around its ``on_status`` and ``on_event``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rec = Recorder()

    def on_status(self, link: WorkerLink, status: wpb.WorkerStatus) -> None:
        self.rec.status(link.address, status)
        super().on_status(link, status)

    async def on_event(self, link: WorkerLink, event: pb.TaskEvent) -> None:
        started = time.time_ns()
        await super().on_event(link, event)
        self.rec.event(link.address, event, started)


class RecordingLinks:
    """``--coordinator links``: the real Fleet and WorkerLinks with a handler that only records (no Redis, no
    dispatcher), to tell the streams' own latency from what the dispatcher's handlers add to it. Tasks go to the
    worker the real scheduler (``choose_worker``) picks, sent by the bench over the link's channel."""

    def __init__(self, token: str) -> None:
        self.rec = Recorder()
        self.fleet = Fleet(token, self, Outliers())

    def on_online(self, link: WorkerLink) -> None:
        pass

    def on_offline(self, link: WorkerLink, reason: str) -> None:
        pass

    def on_status(self, link: WorkerLink, status: wpb.WorkerStatus) -> None:
        self.rec.status(link.address, status)
        member = self.fleet.get(link.address)
        if member is not None:
            member.pending -= {t.task_id for t in status.tasks}

    async def on_event(self, link: WorkerLink, event: pb.TaskEvent) -> None:
        started = time.time_ns()
        member = self.fleet.get(link.address)
        if member is not None:
            member.pending.discard(event.task_id)
        self.rec.event(link.address, event, started)

    async def submit(self, task: pb.Task) -> None:
        for _ in range(200):
            choice = choose_worker(self.fleet.views(), time.monotonic())
            member = self.fleet.get(choice.name) if choice is not None else None
            if member is not None:
                member.pending.add(task.id)
                member.last_dispatch = time.monotonic()
                await member.link.submit(task, timeout=10)
                return
            await asyncio.sleep(0.05)
        raise RuntimeError("coordinator_freshness: no worker had a free slot for 10 s")

    async def close(self) -> None:
        await self.fleet.close()


class Load:
    """Keeps ``concurrent`` slow-download tasks in the cluster: a new one is submitted when one finishes."""

    def __init__(self, submit: Callable[[pb.Task], Awaitable[Any]], rec: Recorder, base_url: str, clip_size: int,
                 opts: Options) -> None:
        self.submit = submit
        self.base_url, self.clip_size, self.opts = base_url, clip_size, opts
        self.outcomes = collections.Counter[str]()
        self.failures = collections.Counter[str]()
        self._ids = itertools.count(1)
        self._run_id = new_token()[:6]
        self._random = random.Random(1)
        self._mine: set[str] = set()
        self._stopped = False
        self._jobs: set[asyncio.Task[None]] = set()
        rec.on_final = self._on_final

    async def start(self) -> None:
        # Spread out, so that task processes start (about 0.7 s of CPU each) one at a time rather than in a burst.
        for _ in range(self.opts.concurrent):
            await self._submit()
            await asyncio.sleep(self.opts.task_seconds / self.opts.concurrent)

    async def _submit(self) -> None:
        if self._stopped:
            return
        task_id = f"fresh-{self._run_id}-{next(self._ids)}"
        self._mine.add(task_id)
        seconds = self.opts.task_seconds * self._random.uniform(0.75, 1.25)   # no two end together
        await self.submit(slow_clip_task(self.base_url, self.clip_size, task_id, seconds, name="notvideo.mp4"))
        self.outcomes["submitted"] += 1

    def _on_final(self, event: pb.TaskEvent) -> None:
        if event.task_id not in self._mine:
            return
        self._mine.discard(event.task_id)
        kind = event.WhichOneof("event")
        self.outcomes[kind] += 1
        if kind == "failed":
            self.failures[f"{event.failed.code}: {event.failed.message[:120]}"] += 1
        job = asyncio.create_task(self._submit())
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)

    async def stop(self) -> None:
        self._stopped = True
        await asyncio.gather(*self._jobs, return_exceptions=True)

    def describe(self) -> str:
        return ", ".join(f"{n} {k}" for k, n in self.outcomes.items()) or "nothing submitted"


# --- the run ------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Measured:
    tracks: dict[str, Track]
    polls: dict[str, list[Seen]]
    poll_errors: list[str]
    blocks: list[tuple[int, int]]
    by_kind: dict[str, list[tuple[int, int]]]
    lag: Summary
    fleet_lag: list[tuple[float, float, float]]
    cpu: dict[str, float]
    load: str
    failures: collections.Counter[str]
    running_at_start: int


async def _until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"coordinator_freshness: timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def measure(addresses: list[str], token: str, base_url: str, clip_size: int, tmp: Path, opts: Options,
                  fleets: list[Helper], noise: TeardownNoise) -> Measured:
    fleet_pids = [f.pid for f in fleets]
    noise.install()
    entries = tuple(WorkerEntry(address=a, priority=1) for a in addresses)
    valkey: EmbeddedValkey | None = None
    store: Store | None = None
    coordinator: RecordingDispatcher | RecordingLinks
    if opts.coordinator == "dispatcher":
        valkey = EmbeddedValkey(tmp / "valkey", appendfsync=opts.appendfsync)
        await valkey.start()
        store = await Store.connect(valkey.url)
        dispatcher = coordinator = RecordingDispatcher(store, token)
        load = Load(lambda task: dispatcher.submit(task, origin="bench"), dispatcher.rec, base_url, clip_size, opts)
    else:
        links = coordinator = RecordingLinks(token)
        load = Load(links.submit, links.rec, base_url, clip_size, opts)
    rec = coordinator.rec
    try:
        if isinstance(coordinator, RecordingDispatcher):
            await coordinator.start(entries)
        else:
            await coordinator.fleet.reconcile(entries)
        members = coordinator.fleet.members
        await _until(lambda: all(m.link.online for m in members.values()), 60, "every worker online")
        await load.start()
        # Warm up: every task started (its process spawned), the status streams busy.
        await _until(lambda: sum(len(m.reported()) for m in members.values()) >= opts.concurrent, 60,
                     f"{opts.concurrent} tasks running")
        await asyncio.sleep(2.0)   # past the last one's process start-up
        running = sum(len(m.reported()) for m in members.values())
        out = tmp / "polls.json"
        lag = LoopLag()
        lag.start()
        fleet_lags = FleetLags(fleets)   # starts their count afresh
        cpu0 = _cpu(fleet_pids, valkey)
        t0 = time.monotonic()
        rec.recording = True
        poller = Helper(bench_module("_poller", "--addresses", ",".join(addresses), "--interval",
                                     str(opts.poll_interval), "--timeout", str(opts.poll_timeout), "--seconds",
                                     str(opts.seconds), "--out", str(out)),
                        tmp / "poller.log", env={TOKEN_ENV: token})
        try:
            await asyncio.to_thread(poller.wait_for, r"POLLER DONE", opts.seconds + 60)
        finally:
            poller.close()
        doc = json.loads(out.read_text())
        polls = {a: [Seen(*p) for p in doc.get(a, [])] for a in addresses}
        # Keep recording until the streams have delivered every change the last polls saw: one window for both.
        want = {a: p[-1].seq for a, p in polls.items() if p}
        await _until(lambda: all((rec.tracks[a].last_seq or 0) >= s for a, s in want.items()), 5,
                     "the streams to catch up with the last polls")
        rec.recording = False
        cpu1, elapsed = _cpu(fleet_pids, valkey), time.monotonic() - t0
        cpu = {k: (cpu1[k] - cpu0[k]) / elapsed for k in cpu0}
        return Measured(tracks=dict(rec.tracks), polls=polls, poll_errors=list(doc.get("_errors", [])),
                        blocks=rec.blocks, by_kind=dict(rec.by_kind), lag=await lag.stop(),
                        fleet_lag=await asyncio.to_thread(fleet_lags.read), cpu=cpu, load=load.describe(),
                        failures=load.failures, running_at_start=running)
    finally:
        await load.stop()
        await coordinator.close()
        if store is not None:
            await store.close()
        if valkey is not None:
            await valkey.close()
        import gc

        gc.collect()   # the closed links' leftovers are counted now, not printed at exit
        await asyncio.sleep(0.1)


class FleetLags:
    """The worker processes' own event-loop lag over the window (SIGUSR1 to each, at the start and at the end)."""

    def __init__(self, fleets: list[Helper]) -> None:
        self.fleets = fleets
        self.seen = [f.output().count("FLEET LAG") for f in fleets]
        for f in fleets:
            f.send(signal.SIGUSR1)
        self.seen = [n + 1 for n in self.seen]

    def read(self) -> list[tuple[float, float, float]]:
        for f in self.fleets:
            f.send(signal.SIGUSR1)
        out = []
        for f, n in zip(self.fleets, self.seen):
            deadline = time.monotonic() + 10
            while True:
                lines = re.findall(r"FLEET LAG (\S+) (\S+) (\S+)", f.output())
                if len(lines) > n:
                    out.append(tuple(float(x) for x in lines[n]))
                    break
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        return out  # type: ignore[return-value]


def _cpu(fleet_pids: list[int], valkey: EmbeddedValkey | None) -> dict[str, float]:
    return {"coordinator (this process)": cpu_seconds([os.getpid()], children=False),
            "workers and their task processes": cpu_seconds(fleet_pids),
            "valkey": cpu_seconds([valkey.pid] if valkey is not None and valkey.pid else [])}


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "—"


def _rows(m: Measured) -> list[Row]:
    # Everything of ours is counted over the polling window only: from the first poll to the last.
    first = min((p[0].recv_ns for p in m.polls.values() if p), default=0)
    last = max((p[-1].recv_ns for p in m.polls.values() if p), default=0)

    def inside(recv_ns: int) -> bool:
        return first <= recv_ns <= last

    ours_all: list[int] = []
    ours_window: list[int] = []
    base_fresh: list[int] = []
    base_every: list[int] = []
    behind: list[int] = []
    clear: list[int] = []
    changes = never = streamed = missed = 0
    for address, polls in m.polls.items():
        track = m.tracks.get(address, Track())
        ours_all += [s.age_ns for s in track.seen if inside(s.recv_ns)]
        for s, b in zip(track.seen, track.behind):
            if inside(s.recv_ns):
                (behind if b else clear).append(s.age_ns)
        streamed += len(track.seen)
        missed += track.missed
        if not polls:
            continue
        fresh = newly_seen(polls)
        base_fresh += [p.age_ns for p in fresh]
        n = polls[-1].seq - polls[0].seq
        changes += n
        never += n - len(fresh)
        window = in_window(track.seen, polls)
        ours_window += [c.age_ns for c in window]
        base_every += visible_after_ns(window, polls)
    npolls = sum(len(p) for p in m.polls.values())
    snapshots = Row("freshness, new snapshot", summarize(ours_all), summarize(base_fresh), [
        f"polling never saw {never} of {changes} changes ({_share(never, changes)}) in {npolls} polls "
        f"({len(m.poll_errors)} failed); the streams missed {missed} of {streamed + missed}"])
    held = summarize([ns for at, ns in m.blocks if inside(at)])
    b, c = summarize(behind), summarize(clear)
    snapshots.notes.append(
        f"ours split: {b.n} snapshots read right after a task event's handler had held the link's read loop for "
        f"over 1 ms: p50 {b.p50_ms:.2f} / p99 {b.p99_ms:.2f} ms; the other {c.n}: p50 {c.p50_ms:.2f} / "
        f"p99 {c.p99_ms:.2f} ms")
    kinds = {k: summarize([age for at, age in v if inside(at)]) for k, v in sorted(m.by_kind.items())}
    snapshots.notes.append("ours by what changed: " + "; ".join(
        f"{k} {v.n}: p50 {v.p50_ms:.2f} / p99 {v.p99_ms:.2f} ms" for k, v in kinds.items()))
    snapshots.notes.append(
        f"the link awaits each task event's handler before reading on: {held.n} events held it p50 "
        f"{held.p50_ms:.2f} / p99 {held.p99_ms:.2f} / max {held.max_ms:.1f} ms")
    every = Row("freshness, every change", summarize(ours_window), summarize(base_every), [
        "each change in the polling window, timed until the coordinator held a snapshot at least that new"])
    return [snapshots, every]


def _ours(opts: Options) -> str:
    if opts.coordinator == "dispatcher":
        return f"the real Dispatcher, WorkerLinks and Store (embedded Valkey, appendfsync {opts.appendfsync})"
    return "the real Fleet and WorkerLinks with a recording handler (no Redis, no dispatcher)"


def main(argv: list[str]) -> int:
    opts = parse_args(argv)
    exit_on_sigterm()
    token = new_token()
    procs = -(-opts.workers // opts.per_process)
    print(f"coordinator_freshness: {load_note()} at start", flush=True)
    with tempfile.TemporaryDirectory(prefix="aicut-bench-fresh-") as tmp_name, ExitStack() as stack:
        tmp = Path(tmp_name)
        # The coordinator's own log (links, dispatches, the tasks' expected failures) goes to a file, as it would.
        logging.basicConfig(filename=tmp / "coordinator.log", level=logging.INFO,
                            format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        started = time.monotonic()
        clips = stack.enter_context(Helper(bench_module("_clip_server", str(tmp / "media")), tmp / "clips.log"))
        caps = probe_capabilities_once(tmp / "capabilities.json")
        # No pre-warmed task processes (one per slot, the speech model loaded, at start): 50 workers × slots of them
        # would bury 2 cores before the first change is measured; a slot starts its process with its first task.
        machines = write_machines(tmp, slots=opts.slots, prewarm=False)
        fleets = []
        for i in range(procs):
            count = min(opts.per_process, opts.workers - i * opts.per_process)
            fleets.append(stack.enter_context(Helper(
                bench_module("_worker_fleet", "--count", str(count), "--machines", str(machines), "--work-dir",
                             str(tmp / f"fleet{i}"), "--capabilities", str(caps)),
                tmp / f"fleet{i}.log", env={TOKEN_ENV: token})))
        m = clips.wait_for(r"CLIPS READY (\S+) (\d+) (\d+)")
        base_url, clip_size = m.group(1), int(m.group(3))
        addresses = [a for f in fleets for a in f.wait_for(r"FLEET READY (.+)", 120).group(1).split()]
        print(f"coordinator_freshness: {len(addresses)} real workers in {procs} processes ready in "
              f"{time.monotonic() - started:.1f}s ({opts.slots} slots each); {_ours(opts)} in this process; "
              f"{opts.concurrent} tasks kept running ({opts.task_seconds:g} s throttled downloads of a file that then "
              f"fails probing); measured for {opts.seconds:g} s with Health polled every {opts.poll_interval:g} s",
              flush=True)
        noise = TeardownNoise()
        result = asyncio.run(measure(addresses, token, base_url, clip_size, tmp, opts, fleets, noise))
        if opts.dump:
            Path(opts.dump).write_text(json.dumps({
                "addresses": addresses, "per_process": opts.per_process,
                "seen": {a: [[s.seq, s.changed_ns, s.recv_ns] for s in t.seen] for a, t in result.tracks.items()},
                "polls": {a: [[s.seq, s.changed_ns, s.recv_ns] for s in p] for a, p in result.polls.items()}}))
        print(f"load: {result.load}; {result.running_at_start} running when measuring began")
        print("CPU while measuring (cores): " + ", ".join(f"{k} {v:.2f}" for k, v in result.cpu.items()))
        print(f"the coordinator's event loop woke late by p50 {result.lag.p50_ms:.2f} / p99 {result.lag.p99_ms:.2f} / "
              f"max {result.lag.max_ms:.1f} ms (a 5 ms sleep, over and over: how busy or starved this process was)")
        if result.fleet_lag:
            print(f"the worker processes' event loops woke late by p50 "
                  f"{statistics.median(x[0] for x in result.fleet_lag):.2f} / p99 "
                  f"{max(x[1] for x in result.fleet_lag):.2f} (worst process) / max "
                  f"{max(x[2] for x in result.fleet_lag):.1f} ms: a status waits that long before it is even sent")
        for failure, n in result.failures.most_common(3):
            print(f"  {n}× failed: {failure}")
        legend = [
            f"ours:     {_ours(opts)}: one StreamStatus per worker, pushed on every change, timed in on_status",
            (f"baseline: the seed's design: each worker's unary Health polled every {opts.poll_interval:g} s "
             f"(timeout {opts.poll_timeout:g} s), staggered, from a separate process"),
        ]
        print_report(f"coordinator_freshness: {len(addresses)} real workers, the coordinator's view, ours vs the "
                     f"seed's polling", _rows(result), legend, AIM_P99_MS)
        if noise.count:
            print(noise.note())
        print(f"coordinator_freshness: {load_note()} at the end")
    return 0
