"""How fast the coordinator notices a dead or hung worker: its status stream against the seed's polling.

Real worker processes (``python -m aicut worker``) on loopback. For each trial, a real
:class:`aicut.coordinator.links.WorkerLink` (the product's default :class:`~aicut.coordinator.links.LinkOptions`:
silence for ``dead_after_s`` marks a worker OFFLINE, and so does a broken stream) follows the worker, and so does the
baseline. Once both see the worker healthy, and after a random wait (so the fault lands anywhere in the polling
cycle), the worker is hit:

- **kill -9**: the process dies; its sockets are closed by the kernel. A fresh worker per trial.
- **SIGSTOP**: the process hangs with its sockets open (what a frozen machine looks like to a peer); it is resumed
  with SIGCONT after the trial and reused.

*Ours* is the time from the signal to the link's ``LinkHandler.on_offline`` callback. The *baseline* is the seed's
design: the coordinator polled each machine's status every 2 s with a 5 s request timeout and took a failed poll as
offline; here the unary ``Health`` RPC, called on that schedule (``--poll-interval``, ``--poll-timeout``), and the
time from the signal to the first failed poll. The issue's aims: under 1 s after kill -9, under 15 s after SIGSTOP.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from aicut import rpc
from aicut.config import WorkerEntry
from aicut.coordinator.links import LinkOptions, WorkerLink
from bench.common import (Row, TeardownNoise, WorkerProcess, exit_on_sigterm, load_note, new_token, summarize,
                          table)
from generated.aicut.v1 import common_pb2 as pb
from generated.aicut.v1 import worker_pb2 as wpb
from generated.aicut.v1 import worker_pb2_grpc

AIMS_S = {"kill -9": 1.0, "SIGSTOP": 15.0}
_DESCRIPTION = "Time to OFFLINE after kill -9 and SIGSTOP of a real worker: the status stream against polling."


@dataclass(frozen=True, slots=True)
class Options:
    kills: int
    stops: int
    poll_interval: float
    poll_timeout: float


def parse_args(argv: list[str]) -> Options:
    p = argparse.ArgumentParser(prog="python -m bench failure_detection", description=_DESCRIPTION)
    p.add_argument("--kills", type=int, default=5, help="kill -9 trials, a fresh worker each (default 5)")
    p.add_argument("--stops", type=int, default=4, help="SIGSTOP trials on one worker (default 4)")
    p.add_argument("--poll-interval", type=float, default=2.0, help="the baseline's polling interval (default 2)")
    p.add_argument("--poll-timeout", type=float, default=5.0, help="the baseline's request timeout (default 5)")
    a = p.parse_args(argv)
    return Options(kills=a.kills, stops=a.stops, poll_interval=a.poll_interval, poll_timeout=a.poll_timeout)


# --- ours: a real WorkerLink --------------------------------------------------------------------------------------


class Detector:
    """A LinkHandler that notes when the link says online and offline (monotonic ns)."""

    def __init__(self) -> None:
        self.online = asyncio.Event()
        self.offline_ns = 0
        self.reason = ""

    def on_online(self, link: WorkerLink) -> None:
        self.online.set()

    def on_offline(self, link: WorkerLink, reason: str) -> None:
        if not self.offline_ns:
            self.offline_ns, self.reason = time.monotonic_ns(), reason
        self.online.clear()

    def on_status(self, link: WorkerLink, status: wpb.WorkerStatus) -> None:
        pass

    async def on_event(self, link: WorkerLink, event: pb.TaskEvent) -> None:
        pass


# --- the baseline: the seed's monitor ------------------------------------------------------------------------------


class Poller:
    """Health every ``interval_s`` (a poll starts on a fixed schedule, or right after a slow one), ``timeout_s`` each;
    the first failed poll is the seed's "offline"."""

    def __init__(self, address: str, token: str, interval_s: float, timeout_s: float) -> None:
        self.channel = rpc.channel(address, token)
        self.stub = worker_pb2_grpc.WorkerStub(self.channel)
        self.interval_s, self.timeout_s = interval_s, timeout_s
        self.healthy = asyncio.Event()
        self.failed_ns = 0
        self.reason = ""
        self._task = asyncio.create_task(self._run(), name=f"poller-{address}")

    async def _run(self) -> None:
        start = time.monotonic()
        for k in range(10**9):
            await asyncio.sleep(max(0.0, start + k * self.interval_s - time.monotonic()))
            try:
                await self.stub.Health(wpb.HealthRequest(), timeout=self.timeout_s)
            except grpc.aio.AioRpcError as exc:
                if self.healthy.is_set():
                    self.failed_ns, self.reason = time.monotonic_ns(), exc.code().name
                    return
                continue  # not up yet
            self.healthy.set()

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self.channel.close()


# --- trials --------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Trials:
    ours_ns: list[int] = field(default_factory=list)
    base_ns: list[int] = field(default_factory=list)
    reasons: set[str] = field(default_factory=set)
    base_reasons: set[str] = field(default_factory=set)


async def trial(worker: WorkerProcess, token: str, sig: int, opts: Options, out: Trials) -> None:
    assert worker.proc is not None
    detector = Detector()
    link = WorkerLink(WorkerEntry(address=worker.address), token, detector, LinkOptions())
    link.start()
    poller = Poller(worker.address, token, opts.poll_interval, opts.poll_timeout)
    try:
        await asyncio.wait_for(asyncio.gather(detector.online.wait(), poller.healthy.wait()), 30)
        await asyncio.sleep(1.0 + random.uniform(0, opts.poll_interval))   # a random phase of the polling cycle
        hit_ns = time.monotonic_ns()
        os.kill(worker.proc.pid, sig)
        deadline = time.monotonic() + opts.poll_interval + opts.poll_timeout + 30
        while not (detector.offline_ns and poller.failed_ns):
            if time.monotonic() > deadline:
                raise RuntimeError(f"failure_detection: not detected after {signal.Signals(sig).name}: ours "
                                   f"{bool(detector.offline_ns)}, baseline {bool(poller.failed_ns)}")
            await asyncio.sleep(0.005)
        out.ours_ns.append(detector.offline_ns - hit_ns)
        out.base_ns.append(poller.failed_ns - hit_ns)
        out.reasons.add(detector.reason.split(":")[0])
        out.base_reasons.add(poller.reason)
    finally:
        await poller.close()
        await link.close()


async def run_trials(workers: list[WorkerProcess], stopped: WorkerProcess, token: str,
                     opts: Options, noise: TeardownNoise) -> tuple[Trials, Trials]:
    noise.install()
    kills, stops = Trials(), Trials()
    for worker in workers:
        await trial(worker, token, signal.SIGKILL, opts, kills)
        print(f"  kill -9 #{len(kills.ours_ns)}: ours {kills.ours_ns[-1] / 1e6:.1f} ms, baseline "
              f"{kills.base_ns[-1] / 1e6:.0f} ms", flush=True)
    assert stopped.proc is not None
    for _ in range(opts.stops):
        try:
            await trial(stopped, token, signal.SIGSTOP, opts, stops)
        finally:
            os.kill(stopped.proc.pid, signal.SIGCONT)
        print(f"  SIGSTOP #{len(stops.ours_ns)}: ours {stops.ours_ns[-1] / 1e6:.0f} ms, baseline "
              f"{stops.base_ns[-1] / 1e6:.0f} ms", flush=True)
    import gc

    gc.collect()   # let the closed links' leftovers be counted now, not printed at exit
    await asyncio.sleep(0.1)
    return kills, stops


def main(argv: list[str]) -> int:
    opts = parse_args(argv)
    exit_on_sigterm()
    token = new_token()
    print(f"failure_detection: {load_note()} at start", flush=True)
    with tempfile.TemporaryDirectory(prefix="aicut-bench-fail-") as tmp_name, ExitStack() as stack:
        tmp = Path(tmp_name)
        workers = [stack.enter_context(WorkerProcess(tmp / f"w{i}", token, slots=1))
                   for i in range(opts.kills + (1 if opts.stops else 0))]
        started = time.monotonic()
        for w in workers:
            w.wait_ready()
        link = LinkOptions()
        print(f"failure_detection: {len(workers)} real workers ready in {time.monotonic() - started:.1f}s "
              f"(heartbeat every {workers[0].settings['heartbeat_interval_s']:g} s); ours: a real WorkerLink "
              f"(dead_after_s {link.dead_after_s:g}, ping every {link.ping_interval_s:g} s, gRPC keepalive "
              f"{rpc.KEEPALIVE_TIME_MS / 1000:g} + {rpc.KEEPALIVE_TIMEOUT_MS / 1000:g} s); baseline: Health every "
              f"{opts.poll_interval:g} s with a {opts.poll_timeout:g} s timeout", flush=True)
        kill_workers = workers[:opts.kills]
        stop_worker = workers[-1] if opts.stops else workers[0]
        noise = TeardownNoise()
        kills, stops = asyncio.run(run_trials(kill_workers, stop_worker, token, opts, noise))
        rows = []
        if kills.ours_ns:
            rows.append(Row("kill -9 → OFFLINE", summarize(kills.ours_ns), summarize(kills.base_ns), [
                f"ours saw: {', '.join(sorted(kills.reasons))}; the baseline's failed poll: "
                f"{', '.join(sorted(kills.base_reasons))}",
                f"expected for the baseline: the next poll fails at once, so 0–{opts.poll_interval:g} s "
                f"(mean {opts.poll_interval / 2:g} s)"]))
        if stops.ours_ns:
            rows.append(Row("SIGSTOP → OFFLINE", summarize(stops.ours_ns), summarize(stops.base_ns), [
                f"ours saw: {', '.join(sorted(stops.reasons))}; the baseline's failed poll: "
                f"{', '.join(sorted(stops.base_reasons))}",
                f"expected for ours: silence for dead_after_s ({link.dead_after_s:g} s) after the last message "
                f"(heartbeats every 0.5 s), so {link.dead_after_s - 0.5:g}–{link.dead_after_s:g} s",
                f"expected for the baseline: the next poll starts within {opts.poll_interval:g} s and times out "
                f"after {opts.poll_timeout:g} s, so {opts.poll_timeout:g}–{opts.poll_timeout + opts.poll_interval:g}"
                f" s (mean {opts.poll_timeout + opts.poll_interval / 2:g} s)"]))
        print("\nfailure_detection: real workers, time to OFFLINE, ours vs the seed's polling  (times in ms)")
        print(table(rows))
        print("ours:     a real WorkerLink (StreamStatus), timed at LinkHandler.on_offline from the signal")
        print(f"baseline: the seed's monitor: unary Health every {opts.poll_interval:g} s, {opts.poll_timeout:g} s "
              f"timeout, the first failed poll; same workers, same faults")
        for r in rows:
            for note in r.notes:
                print(f"{r.metric}: {note}")
        if noise.count:
            print(noise.note())
        print("aim (issue): under 1 s after kill -9, under 15 s after SIGSTOP")
        for r, (name, aim_s) in zip(rows, [(k, v) for k, v in AIMS_S.items()
                                           if (k == "kill -9" and kills.ours_ns) or (k == "SIGSTOP" and
                                                                                    stops.ours_ns)]):
            verdict = "met" if r.ours.max_ms < aim_s * 1000 else "MISSED"
            print(f"  {r.metric}: worst of {r.ours.n} {r.ours.max_ms:.1f} ms: {verdict}")
        print(f"failure_detection: {load_note()} at the end")
    return 0
