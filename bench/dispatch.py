"""Dispatch throughput of the real coordinator: 100 workers, 10,000 tasks, none lost or run twice.

The coordinator is the real one, ``python -m aicut coordinator`` as a process of its own, with ``REDIS_URL`` pointing
at an embedded Valkey this benchmark starts (``appendfsync always``, the product default; ``--appendfsync everysec``
as well when asked) and a machines.yaml listing the 100 workers (``--slots`` each).

The workers are NOT real product workers: a real worker spawns a Python process per task (about 0.45 s of CPU), so
10,000 real tasks cannot run on 2 cores. They are :mod:`bench._fake_workers` — the product's own gRPC servicer and
worker node (slots, ``RESOURCE_EXHAUSTED``, idempotency, status snapshots on connect and on every change,
heartbeats, accepted/succeeded events kept until acknowledged) with the task replaced by a timer of ``--delay-ms``
and the outbox kept in memory — ``--per-process`` of them per process.

Two measurements of ours, one after the other on the same coordinator:

1. **dispatch only**: ``--tasks`` tasks bulk-created in the store (``Store.create_tasks``) before the coordinator
   starts; it dispatches them from the pre-filled queue. Rates come from each task's ``dispatched_ms`` and
   ``finished_ms`` in Redis (QUEUED→DISPATCHED and →SUCCEEDED), over the middle 80 % and over the whole run.
2. **end to end**: ``--tasks`` more through the real Coordinator ``SubmitTask`` RPC (``--submit-concurrency`` in
   flight), timed from the first submit to the last success.

Then every task is checked: SUCCEEDED exactly once, at attempt 1, never re-queued; the store's counters show exactly
one dispatch per task; every fake worker accepted each of its task ids exactly once and no id reached two workers.

Baseline, in the same run against the same fake workers (after the coordinator stopped): the seed's dispatcher,
which polled every worker's status every 2 s and gave each idle worker one task per poll. It is simulated here for
``--baseline-seconds`` (Health polled on every worker, one SubmitTask per idle SERVING worker, every
``--poll-interval`` s); its bound is workers ÷ interval. The issue's aim: at least 500 tasks a second on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import json
import math
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from google.protobuf import json_format

from aicut import rpc
from aicut.models import TaskRecord
from aicut.store.embedded import EmbeddedValkey
from aicut.store.tasks import Store
from bench.common import (TOKEN_ENV, Helper, RateRow, bench_module, cpu_seconds, exit_on_sigterm, load_note, new_token,
                          percentile, rate_table, write_machines)
from generated.aicut.v1 import common_pb2 as pb
from generated.aicut.v1 import coordinator_pb2 as cpb
from generated.aicut.v1 import coordinator_pb2_grpc
from generated.aicut.v1 import worker_pb2 as wpb
from generated.aicut.v1 import worker_pb2_grpc

AIM_PER_S = 500.0
_DESCRIPTION = "Dispatch throughput of the real coordinator with 100 workers and 10,000 tasks, against polling."
_URL = "http://127.0.0.1:9/bench/clip.mp4"   # never fetched: the fake workers do not download


@dataclass(frozen=True, slots=True)
class Options:
    workers: int
    per_process: int
    tasks: int
    e2e_tasks: int
    slots: int
    delay_ms: float
    submit_concurrency: int
    appendfsync: tuple[str, ...]
    poll_interval: float
    baseline_seconds: float
    profile: float
    stall_s: float
    coordinator_env: dict[str, str]


def parse_args(argv: list[str]) -> Options:
    p = argparse.ArgumentParser(prog="python -m bench dispatch", description=_DESCRIPTION)
    p.add_argument("--workers", type=int, default=100, help="fake workers (default 100)")
    p.add_argument("--per-process", type=int, default=25, help="fake workers per process (default 25)")
    p.add_argument("--tasks", type=int, default=10_000,
                   help="tasks in the dispatch-only run, from a pre-filled queue (default 10,000)")
    p.add_argument("--e2e-tasks", type=int, default=3_000,
                   help="tasks in the end-to-end run through SubmitTask (default 3,000, to keep the whole benchmark "
                        "within about 3 minutes at the rates this machine reaches; 0 skips it)")
    p.add_argument("--slots", type=int, default=4, help="each worker's slots in machines.yaml (default 4)")
    p.add_argument("--delay-ms", type=float, default=0.0, help="how long each fake task runs (default 0)")
    p.add_argument("--submit-concurrency", type=int, default=64,
                   help="SubmitTask calls in flight in the end-to-end run (default 64)")
    p.add_argument("--appendfsync", default="always",
                   help="Valkey fsync policies to run, comma-separated: always (the product default), everysec "
                        "(default always)")
    p.add_argument("--poll-interval", type=float, default=2.0, help="the baseline's polling interval (default 2)")
    p.add_argument("--baseline-seconds", type=float, default=10.0, help="how long the baseline runs (default 10)")
    p.add_argument("--profile", type=float, default=0.0, metavar="SECONDS",
                   help="sample the coordinator with py-spy for this long during the first dispatch-only run and "
                        "print where its time goes (needs py-spy in the environment)")
    p.add_argument("--stall-s", type=float, default=30.0, help="give up after this long without progress (30)")
    p.add_argument("--coordinator-env", action="append", default=[], metavar="NAME=VALUE",
                   help="extra environment for the coordinator process, for experiments (e.g. PYTHONPATH=…)")
    a = p.parse_args(argv)
    modes = tuple(m.strip() for m in a.appendfsync.split(",") if m.strip())
    if not modes or any(m not in ("always", "everysec") for m in modes):
        p.error("--appendfsync takes always, everysec or both")
    return Options(workers=a.workers, per_process=a.per_process, tasks=a.tasks, e2e_tasks=a.e2e_tasks, slots=a.slots,
                   delay_ms=a.delay_ms,
                   submit_concurrency=a.submit_concurrency, appendfsync=modes, poll_interval=a.poll_interval,
                   baseline_seconds=a.baseline_seconds, profile=a.profile, stall_s=a.stall_s,
                   coordinator_env=dict(e.split("=", 1) for e in a.coordinator_env))


# --- measurements --------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Timeline:
    """When each task of one run was dispatched and finished (wall-clock ms, from Redis)."""

    dispatched_ms: list[int]
    finished_ms: list[int]

    def rate(self, stamps: list[int], middle: bool) -> float:
        """Tasks per second: over the middle 80 % of the stamps (steady state), or first to last."""
        s = sorted(stamps)
        if len(s) < 2:
            return math.nan
        lo, hi = (len(s) // 10, len(s) - 1 - len(s) // 10) if middle else (0, len(s) - 1)
        span = (s[hi] - s[lo]) / 1000
        return (hi - lo) / span if span > 0 else math.inf


@dataclass(slots=True)
class Check:
    """What the end-of-run verification found."""

    ok: bool
    lines: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Run:
    """One measurement of ours."""

    name: str
    ids: list[str]
    timeline: Timeline
    started_ms: int                  # bulk: the coordinator's start; end to end: the first SubmitTask
    ended_ms: int                    # the last success
    coordinator_cpu: float           # cores
    valkey_cpu: float
    workers_cpu: float
    cpu_window_s: float
    submit_rate: float = math.nan
    submit_p50_ms: float = math.nan
    submit_p99_ms: float = math.nan
    create_rate: float = math.nan
    commands: dict[str, int] = field(default_factory=dict)   # Redis calls per command while it ran
    check: Check | None = None
    worker_of: dict[str, str] = field(default_factory=dict)   # task id → the worker the store says ran it


class Cpu:
    """CPU seconds of the coordinator, the Valkey server and the fake workers between two moments, as cores."""

    def __init__(self, coordinator: int, valkey: int, workers: list[int]) -> None:
        self.pids = (coordinator, valkey, workers)
        self.t0 = time.monotonic()
        self.c0 = self._now()

    def _now(self) -> tuple[float, float, float]:
        c, v, w = self.pids
        return cpu_seconds([c], children=False), cpu_seconds([v], children=False), cpu_seconds(w)

    def cores(self) -> tuple[float, float, float]:
        c1, dt = self._now(), time.monotonic() - self.t0
        self.seconds = dt
        return tuple((b - a) / dt for a, b in zip(self.c0, c1))  # type: ignore[return-value]


async def wait_succeeded(store: Store, target: int, stall_s: float, what: str) -> None:
    """Until the store has counted ``target`` entries into SUCCEEDED; fails after ``stall_s`` without progress."""
    last, last_change = -1, time.monotonic()
    while True:
        # One HGET, not Store.counters (HGETALL): the Redis command counts below should be the coordinator's.
        done = int(await store.client.hget(store.keys.counters, "to:SUCCEEDED") or 0)
        if done >= target:
            return
        if done != last:
            last, last_change = done, time.monotonic()
        elif time.monotonic() - last_change > stall_s:
            counters = await store.counters()
            states = await store.count_by_state()
            raise RuntimeError(f"dispatch: {what}: no progress for {stall_s:g}s at {done}/{target} succeeded; "
                               f"by state: { {s.value: n for s, n in states.items() if n} }; counters {counters}")
        await asyncio.sleep(0.1)


async def timeline_of(store: Store, ids: list[str]) -> tuple[Timeline, list[TaskRecord]]:
    recs: list[TaskRecord] = []
    for start in range(0, len(ids), 1000):
        recs += await store.get_tasks(ids[start:start + 1000])
    return Timeline([r.dispatched_ms for r in recs], [r.finished_ms for r in recs]), recs


async def command_calls(store: Store) -> dict[str, int]:
    """Calls per Redis command since the last CONFIG RESETSTAT (INFO commandstats)."""
    info = await store.client.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in info.items() if isinstance(v, dict)}


def check_records(recs: list[TaskRecord], ids: list[str], addresses: set[str]) -> list[str]:
    """Problems with the records of one run (empty when every task SUCCEEDED once, at attempt 1, on a worker)."""
    problems = []
    found = {r.id for r in recs}
    if missing := [i for i in ids if i not in found]:
        problems.append(f"{len(missing)} task(s) missing from the store, e.g. {missing[:3]}")
    states = collections.Counter(r.state.value for r in recs)
    if states.get("SUCCEEDED", 0) != len(ids):
        problems.append(f"states {dict(states)}, expected {len(ids)} SUCCEEDED")
    if bad := [r.id for r in recs if r.attempt != 1]:
        problems.append(f"{len(bad)} task(s) past attempt 1, e.g. {bad[:3]}")
    if bad := [r.id for r in recs if r.history]:
        problems.append(f"{len(bad)} task(s) with an earlier attempt in their history, e.g. {bad[:3]}")
    if bad := [r.id for r in recs if r.worker not in addresses]:
        problems.append(f"{len(bad)} task(s) without a known worker, e.g. {bad[:3]}")
    return problems


async def check_counters(store: Store, expected: int, coordinator: Helper) -> list[str]:
    """The store's counters after ``expected`` tasks: one entry into each state per task, no failure, no refusal."""
    problems = []
    counters = await store.counters()
    for name in ("created", "to:QUEUED", "to:DISPATCHED", "to:RUNNING", "to:SUCCEEDED"):
        if counters.get(name, 0) != expected:
            problems.append(f"counter {name} = {counters.get(name, 0)}, expected {expected}")
    if extra := {k: v for k, v in counters.items() if k in ("to:FAILED", "to:CANCELLED") and v}:
        problems.append(f"counters {extra}: expected none")
    if refused := coordinator.output().count("refused it"):
        problems.append(f"the coordinator logged {refused} refused dispatch(es)")
    return problems


def make_task(task_id: str) -> pb.Task:
    return pb.Task(id=task_id, attempt=1, kind=pb.SMART_CUT,
                   spec=pb.TaskSpec(title="bench", sources=[pb.Source(url=_URL, name="clip.mp4", kind=pb.VIDEO)]))


def bulk_records(ids: list[str]) -> list[TaskRecord]:
    now = int(time.time() * 1000)
    return [TaskRecord(id=i, attempt=1, task_json=json_format.MessageToJson(make_task(i), indent=None),
                       origin="bench", created_ms=now, updated_ms=now, queued_ms=now) for i in ids]


async def submit_all(address: str, token: str, ids: list[str], concurrency: int) -> tuple[float, list[float], int]:
    """SubmitTask for every id through the Coordinator API; returns (seconds, latencies in ms, first submit ms)."""
    latencies: list[float] = []
    queue = collections.deque(ids)
    first_ms = int(time.time() * 1000)
    async with rpc.channel(address, token) as channel:
        stub = coordinator_pb2_grpc.CoordinatorStub(channel)
        await channel.channel_ready()
        started = time.perf_counter()
        first_ms = int(time.time() * 1000)

        async def lane() -> None:
            while queue:
                task_id = queue.popleft()
                t0 = time.perf_counter()
                reply = await stub.SubmitTask(cpb.SubmitRequest(url=_URL, name="clip.mp4", id=task_id), timeout=30)
                latencies.append((time.perf_counter() - t0) * 1000)
                if reply.id != task_id:
                    raise RuntimeError(f"SubmitTask answered id {reply.id!r} for {task_id!r}")

        await asyncio.gather(*(lane() for _ in range(concurrency)))
        return time.perf_counter() - started, latencies, first_ms


# --- the coordinator process ---------------------------------------------------------------------------------------


def coordinator_machines(directory: Path, addresses: list[str], slots: int) -> Path:
    lines = ["workers:"] + [f'  - {{address: "{a}", priority: 1, slots: {slots}}}' for a in addresses]
    lines += ["coordinator:", "  host: 127.0.0.1", "  port: 0", f"  data_dir: {directory / 'coordinator-data'}"]
    path = directory / "coordinator-machines.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def start_coordinator(directory: Path, machines: Path, token: str, redis_url: str, name: str,
                      extra_env: dict[str, str]) -> tuple[Helper, str]:
    helper = Helper([sys.executable, "-m", "aicut", "coordinator", "--machines", str(machines), "--port", "0"],
                    directory / f"{name}.log", env={TOKEN_ENV: token, "REDIS_URL": redis_url, **extra_env})
    m = helper.wait_for(r"coordinator ready .* (\S+):(\d+) aicut", 60)
    return helper, f"127.0.0.1:{m.group(2)}"


def start_profile(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("dispatch: --profile needs py-spy (pip install py-spy); not profiling", flush=True)
        return None
    return subprocess.Popen([spy, "record", "--pid", str(pid), "--duration", str(int(max(1, seconds))), "--rate",
                             "200", "--format", "raw", "--output", str(out), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def profile_summary(path: Path, top: int = 18) -> list[str]:
    """Where the sampled time went: self time per function and inclusive time per function of aicut/grpc/redis."""
    if not path.exists():
        return ["(py-spy wrote no profile)"]
    own = collections.Counter[str]()
    inclusive = collections.Counter[str]()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[_frame(frames[-1])] += n
        for f in {_frame(f) for f in frames}:
            inclusive[f] += n
    if not total:
        return ["(no samples)"]
    out = [f"{total} samples; self time (top {top}):"]
    out += [f"  {100 * n / total:5.1f} %  {f}" for f, n in own.most_common(top)]
    ours = [(f, n) for f, n in inclusive.most_common() if n < 0.8 * total and any(
        k in f for k in ("aicut/", "redis/", "grpc/", "protobuf/"))]
    out.append(f"inclusive time, aicut / redis / grpc / protobuf frames under 80 % (top {top}):")
    out += [f"  {100 * n / total:5.1f} %  {f}" for f, n in ours[:top]]
    return out


def _frame(frame: str) -> str:
    # py-spy raw frames read "function (path/to/file.py:line)"; drop the line so a function counts once.
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/", "lib/python3"):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{name} ({where})"


# --- ours ----------------------------------------------------------------------------------------------------------


async def run_ours(mode: str, opts: Options, tmp: Path, token: str, addresses: list[str], fake_pids: list[int],
                   report: list[str]) -> list[Run]:
    valkey = EmbeddedValkey(tmp / f"valkey-{mode}", appendfsync=mode)
    await valkey.start()
    assert valkey.pid is not None
    store = await Store.connect(valkey.url)
    coordinator: Helper | None = None
    spy: subprocess.Popen[bytes] | None = None
    try:
        # 1. dispatch only: a pre-filled queue, then the coordinator starts.
        bulk_ids = [f"{mode}-bulk-{i:05d}" for i in range(opts.tasks)]
        recs = bulk_records(bulk_ids)
        t0 = time.perf_counter()
        created = await store.create_tasks(recs)
        create_rate = created / (time.perf_counter() - t0)
        if created != len(bulk_ids):
            raise RuntimeError(f"dispatch: created {created} of {len(bulk_ids)} tasks")
        await store.client.config_resetstat()
        machines = coordinator_machines(tmp, addresses, opts.slots)
        started_ms = int(time.time() * 1000)
        coordinator, address = await asyncio.to_thread(start_coordinator, tmp, machines, token, valkey.url,
                                                       f"coordinator-{mode}", opts.coordinator_env)
        cpu = Cpu(coordinator.pid, valkey.pid, fake_pids)
        if opts.profile and mode == opts.appendfsync[0]:
            # Steady state only: from the first dispatch on, past the coordinator's start-up.
            while not int(await store.client.hget(store.keys.counters, "to:DISPATCHED") or 0):
                await asyncio.sleep(0.02)
            spy = start_profile(coordinator.pid, opts.profile, tmp / "profile.txt")
        await wait_succeeded(store, opts.tasks, opts.stall_s, "dispatch only")
        ended_ms = int(time.time() * 1000)
        commands = await command_calls(store)
        c, v, w = cpu.cores()
        timeline, records = await timeline_of(store, bulk_ids)
        bulk = Run(f"dispatch only ({mode})", bulk_ids, timeline, started_ms, ended_ms, c, v, w, cpu.seconds,
                   create_rate=create_rate, commands=commands)
        bulk.check = Check(True, check_records(records, bulk_ids, set(addresses)))
        bulk.worker_of = {r.id: r.worker for r in records}
        if spy is not None:
            await asyncio.to_thread(spy.wait, opts.profile + 30)
            report += [f"py-spy of the coordinator ({opts.profile:g} s from its first dispatch, appendfsync {mode}):",
                       *profile_summary(tmp / "profile.txt")]
            spy = None

        bulk.check.lines += await check_counters(store, opts.tasks, coordinator)
        runs = [bulk]

        # 2. end to end: SubmitTask through the Coordinator API.
        if opts.e2e_tasks:
            e2e_ids = [f"{mode}-api-{i:05d}" for i in range(opts.e2e_tasks)]
            cpu = Cpu(coordinator.pid, valkey.pid, fake_pids)
            await store.client.config_resetstat()
            seconds, latencies, first_ms = await submit_all(address, token, e2e_ids, opts.submit_concurrency)
            await wait_succeeded(store, opts.tasks + opts.e2e_tasks, opts.stall_s, "end to end")
            ended_ms = int(time.time() * 1000)
            commands = await command_calls(store)
            c, v, w = cpu.cores()
            timeline, records = await timeline_of(store, e2e_ids)
            e2e = Run(f"end to end ({mode})", e2e_ids, timeline, first_ms, ended_ms, c, v, w, cpu.seconds,
                      submit_rate=len(e2e_ids) / seconds, submit_p50_ms=percentile(latencies, 50),
                      submit_p99_ms=percentile(latencies, 99), commands=commands)
            e2e.check = Check(True, check_records(records, e2e_ids, set(addresses)))
            e2e.check.lines += await check_counters(store, opts.tasks + opts.e2e_tasks, coordinator)
            e2e.worker_of = {r.id: r.worker for r in records}
            runs.append(e2e)
        return runs
    finally:
        if spy is not None and spy.poll() is None:
            spy.kill()
        if coordinator is not None:
            coordinator.close(timeout_s=15)
        await store.close()
        await valkey.close()


# --- the baseline: the seed's polling dispatcher -------------------------------------------------------------------


@dataclass(slots=True)
class Baseline:
    ids: list[str]
    seconds: float
    rounds: int
    busy_skips: int
    refused: collections.Counter[str]

    @property
    def rate(self) -> float:
        return len(self.ids) / self.seconds if self.seconds else math.nan


async def run_baseline(addresses: list[str], token: str, interval_s: float, seconds: float) -> Baseline:
    """Every ``interval_s``: poll every worker's Health, give each idle SERVING worker one task (SubmitTask)."""
    channels = [rpc.channel(a, token) for a in addresses]
    stubs = [worker_pb2_grpc.WorkerStub(c) for c in channels]
    ids: list[str] = []
    refused = collections.Counter[str]()
    counter = itertools.count()
    busy_skips = rounds = 0
    try:
        await asyncio.gather(*(c.channel_ready() for c in channels))
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            due = start + rounds * interval_s
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            rounds += 1

            async def poll(stub: worker_pb2_grpc.WorkerStub) -> wpb.WorkerStatus | None:
                try:
                    return await stub.Health(wpb.HealthRequest(), timeout=5)
                except grpc.aio.AioRpcError:
                    return None

            statuses = await asyncio.gather(*(poll(s) for s in stubs))

            async def give(stub: worker_pb2_grpc.WorkerStub) -> None:
                task_id = f"seed-{next(counter):05d}"
                try:
                    await stub.SubmitTask(wpb.SubmitTaskRequest(task=make_task(task_id)), timeout=5)
                    ids.append(task_id)
                except grpc.aio.AioRpcError as exc:
                    refused[exc.code().name] += 1

            idle = [stub for stub, st in zip(stubs, statuses)
                    if st is not None and st.state == wpb.SERVING and st.slots_busy == 0]
            busy_skips += len(stubs) - len(idle)
            await asyncio.gather(*(give(s) for s in idle))
        # Dispatches happen at the polls: the run lasts as many intervals as it polled.
        return Baseline(ids, rounds * interval_s, rounds, busy_skips, refused)
    finally:
        for c in channels:
            await c.close()


# --- the fake workers' own account ---------------------------------------------------------------------------------


def collect_reports(fakes: list[Helper], paths: list[Path]) -> dict[str, dict[str, dict[str, int]]]:
    for path in paths:
        path.unlink(missing_ok=True)
    for fake in fakes:
        fake.send(signal.SIGUSR1)
    doc: dict[str, dict[str, dict[str, int]]] = {}
    for fake, path in zip(fakes, paths):
        deadline = time.monotonic() + 30
        while not path.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"dispatch: a fake worker process wrote no report:\n{fake.tail()}")
            time.sleep(0.05)
        doc.update(json.loads(path.read_text()))
    return doc


def check_workers(doc: dict[str, dict[str, dict[str, int]]], runs: list[Run], baseline: Baseline,
                  worker_of: dict[str, str]) -> list[str]:
    """Each task id accepted exactly once, by one worker (the one the store names), and none unknown."""
    problems = []
    accepted: collections.Counter[str] = collections.Counter()
    where: dict[str, str] = {}
    duplicates = 0
    for address, counts in doc.items():
        for task_id, n in counts["accepted"].items():
            accepted[task_id] += n
            where[task_id] = address
        duplicates += sum(counts["duplicates"].values())
    expected = [i for r in runs for i in r.ids] + baseline.ids
    if twice := [i for i in expected if accepted[i] > 1]:
        problems.append(f"{len(twice)} task id(s) accepted more than once, e.g. {twice[:3]}")
    if never := [i for i in expected if accepted[i] == 0]:
        problems.append(f"{len(never)} task id(s) never accepted by any worker, e.g. {never[:3]}")
    if unknown := set(accepted) - set(expected):
        problems.append(f"{len(unknown)} task id(s) accepted that nobody sent, e.g. {sorted(unknown)[:3]}")
    if wrong := [i for i, w in worker_of.items() if where.get(i) != w]:
        problems.append(f"{len(wrong)} task(s) ran on another worker than the store says, e.g. {wrong[:3]}")
    summary = (f"workers' own count: {len(expected):,} task ids, each accepted exactly once by one worker "
               f"({duplicates} duplicate SubmitTask calls answered as duplicates)")
    return problems or [summary]


# --- report --------------------------------------------------------------------------------------------------------


def _fmt_rate(x: float) -> str:
    return "—" if math.isnan(x) else f"{x:,.0f}"


def describe(run: Run) -> list[str]:
    def per_task(cores: float) -> float:
        return 1000 * cores * run.cpu_window_s / len(run.ids)

    t = run.timeline
    whole = (run.ended_ms - run.started_ms) / 1000
    lines = [
        f"{run.name}: {len(run.ids):,} tasks; dispatched {_fmt_rate(t.rate(t.dispatched_ms, True))}/s "
        f"(middle 80 %), {_fmt_rate(t.rate(t.dispatched_ms, False))}/s (first to last dispatch); completed "
        f"{_fmt_rate(t.rate(t.finished_ms, True))}/s (middle 80 %); {whole:.1f} s from "
        f"{'the coordinator start' if math.isnan(run.submit_rate) else 'the first SubmitTask'} to the last success "
        f"({len(run.ids) / whole:,.0f}/s)",
        f"  CPU (cores): coordinator {run.coordinator_cpu:.2f}, valkey {run.valkey_cpu:.2f}, fake workers "
        f"{run.workers_cpu:.2f}; per task: coordinator {per_task(run.coordinator_cpu):.2f} ms, valkey "
        f"{per_task(run.valkey_cpu):.2f} ms, fake workers {per_task(run.workers_cpu):.2f} ms of CPU",
    ]
    if not math.isnan(run.create_rate):
        lines.append(f"  bulk create before it (Store.create_tasks, pipelined): {run.create_rate:,.0f} tasks/s")
    if run.commands:
        n = len(run.ids)
        c = run.commands
        lines.append(
            f"  Redis calls per task: {c.get('zrangebyscore', 0) / n:.2f} ZRANGEBYSCORE (= dispatch rounds: "
            f"{c.get('zrangebyscore', 0):,} for {n:,} tasks), {c.get('hgetall', 0) / n:.1f} HGETALL (whole task "
            f"records read), {c.get('evalsha', 0) / n:.2f} EVALSHA (guarded writes), {c.get('xadd', 0) / n:.2f} XADD")
    if not math.isnan(run.submit_rate):
        lines.append(f"  SubmitTask: {run.submit_rate:,.0f} calls/s, latency p50 {run.submit_p50_ms:.1f} / p99 "
                     f"{run.submit_p99_ms:.1f} ms")
    return lines


def main(argv: list[str]) -> int:
    opts = parse_args(argv)
    exit_on_sigterm()
    token = new_token()
    procs = -(-opts.workers // opts.per_process)
    print(f"dispatch: {load_note()} at start", flush=True)
    with tempfile.TemporaryDirectory(prefix="aicut-bench-dispatch-") as tmp_name, ExitStack() as stack:
        tmp = Path(tmp_name)
        # No pre-warmed task processes: the fake workers never start one (100 × slots of them would bury 2 cores).
        machines = write_machines(tmp, slots=opts.slots, work_dir=str(tmp / "fake-work"), prewarm=False)
        reports = [tmp / f"fakes{i}.json" for i in range(procs)]
        fakes = []
        for i in range(procs):
            count = min(opts.per_process, opts.workers - i * opts.per_process)
            fakes.append(stack.enter_context(Helper(
                bench_module("_fake_workers", "--count", str(count), "--machines", str(machines), "--delay-ms",
                             str(opts.delay_ms), "--report", str(reports[i])),
                tmp / f"fakes{i}.log", env={TOKEN_ENV: token, "AICUT_LOG_LEVEL": "WARNING"})))
        addresses = [a for f in fakes for a in f.wait_for(r"FAKES READY (.+)", 60).group(1).split()]
        if opts.coordinator_env:
            print(f"dispatch: EXPERIMENT: the coordinator runs with {opts.coordinator_env}", flush=True)
        print(f"dispatch: {len(addresses)} FAKE workers (the product's WorkerService + WorkerNode, each task a "
              f"{opts.delay_ms:g} ms timer instead of a process; see bench/_fake_workers.py) in {procs} processes, "
              f"{opts.slots} slots each; the REAL coordinator (python -m aicut coordinator) on an embedded Valkey; "
              f"{opts.tasks:,} tasks from a pre-filled queue, then {opts.e2e_tasks:,} through SubmitTask", flush=True)
        extra: list[str] = []
        runs: list[Run] = []
        for mode in opts.appendfsync:
            mine = asyncio.run(run_ours(mode, opts, tmp, token, addresses, [f.pid for f in fakes], extra))
            runs += mine
            for r in mine:
                print("\n".join(describe(r)), flush=True)
        base = asyncio.run(run_baseline(addresses, token, opts.poll_interval, opts.baseline_seconds))
        bound = len(addresses) / opts.poll_interval
        print(f"baseline (the seed's polling dispatcher): {len(base.ids)} tasks in {base.rounds} polls of "
              f"{len(addresses)} workers every {opts.poll_interval:g} s = {base.rate:.1f} tasks/s (bound: "
              f"{len(addresses)} workers ÷ {opts.poll_interval:g} s = {bound:.0f}/s); at that rate {opts.tasks:,} "
              f"tasks take {opts.tasks / base.rate:.0f} s; refused: {dict(base.refused) or 'none'}", flush=True)

        worker_of = {i: w for r in runs for i, w in r.worker_of.items()}
        doc = collect_reports(fakes, reports)
        problems = [p for r in runs for p in (r.check.lines if r.check else [])]
        worker_lines = check_workers(doc, runs, base, worker_of)

        rows = []
        for r in runs:
            mode = r.name.split("(")[1].rstrip(")")
            if r.name.startswith("dispatch only"):
                t = r.timeline
                rows.append(RateRow(f"dispatch only, pre-filled queue ({len(r.ids):,}), appendfsync {mode}",
                                    t.rate(t.dispatched_ms, True), base.rate))
            else:
                whole = (r.ended_ms - r.started_ms) / 1000
                rows.append(RateRow(f"end to end, SubmitTask → SUCCEEDED ({len(r.ids):,}), appendfsync {mode}",
                                    len(r.ids) / whole, base.rate))
        print(f"\ndispatch: {len(addresses)} fake workers × {opts.slots} slots, the real coordinator, ours vs the "
              f"seed's polling dispatcher  (tasks per second, higher is better)")
        print(rate_table(rows))
        print("ours:     dispatch only = QUEUED→DISPATCHED over the middle 80 % of a pre-filled queue; end to end = "
              "tasks ÷ (first SubmitTask → last SUCCEEDED)")
        print(f"baseline: the seed's design, simulated against the same workers: every {opts.poll_interval:g} s "
              f"poll each worker's Health, one task to each idle worker ({opts.baseline_seconds:g} s run)")
        for line in extra:
            print(line)
        verdict = "PASSED" if not problems and len(worker_lines) == 1 and worker_lines[0].startswith("workers'") \
            else "FAILED"
        print(f"verification {verdict}:")
        for r in runs:
            print(f"  {r.name}: " + ("; ".join(r.check.lines) if r.check and r.check.lines else
                                      f"all {len(r.ids):,} SUCCEEDED exactly once, attempt 1, never re-queued"))
        print("  store counters: one QUEUED, DISPATCHED, RUNNING and SUCCEEDED entry per task, no FAILED/CANCELLED"
              if not any("counter" in p for p in problems) else "  store counters: see above")
        for line in worker_lines:
            print(f"  {line}")
        print(f"aim (issue): at least {AIM_PER_S:g} tasks/s on 2 cores")
        for row in rows:
            print(f"  {row.metric}: {row.ours:,.0f}/s: {'met' if row.ours >= AIM_PER_S else 'MISSED'}")
        print(f"dispatch: {load_note()} at the end")
        return 0 if verdict == "PASSED" else 1
