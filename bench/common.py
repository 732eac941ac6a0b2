"""What the benchmarks share: a real worker process, a local server with a slow clip, freshness arithmetic for
snapshots that carry ``seq`` and ``changed_unix_ns``, percentiles and the table.

Everything that starts something is a context manager, so a benchmark cleans up on errors and Ctrl+C alike. The
cluster token is made fresh per run and only ever handed to processes through their environment, never printed.
"""

from __future__ import annotations

import bisect
import math
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil

from generated.aicut.v1 import common_pb2 as pb
from tests.support.httpserver import MediaServer
from tests.support.media import make_clip

ROOT = Path(__file__).resolve().parent.parent
TOKEN_ENV = "AICUT_CLUSTER_TOKEN"
_READY = re.compile(r"worker ready .* (\S+):(\d+) aicut\.v1\.Worker")

# How a benchmark's worker runs unless a benchmark says otherwise: fast heartbeats, a short drain, fetches allowed
# from the local media server only.
WORKER_DEFAULTS: dict[str, Any] = {
    "host": "127.0.0.1", "port": 0, "slots": 4, "heartbeat_interval_s": 0.5, "drain_timeout_s": 1,
    "cancel_grace_s": 1, "min_free_disk_bytes": 0,
}
FETCH_SETTINGS: dict[str, Any] = {
    "allow_hosts": "['127.0.0.1']", "max_bytes": "50MB", "retries": 0, "connect_timeout_s": 5, "read_timeout_s": 10,
}


def new_token() -> str:
    """A cluster token for one run; it never leaves this process except in a child's environment."""
    return secrets.token_urlsafe(24)


# --- a worker process ---------------------------------------------------------------------------------------------


def write_machines(directory: Path, **worker: Any) -> Path:
    """A machines.yaml with :data:`WORKER_DEFAULTS` (overridden by ``worker``) and :data:`FETCH_SETTINGS`."""
    lines = ["workers: []", "worker:"]
    lines += [f"  {key}: {value}" for key, value in {**WORKER_DEFAULTS, **worker}.items()]
    lines += ["fetch:"] + [f"  {key}: {value}" for key, value in FETCH_SETTINGS.items()]
    path = directory / "machines.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


class WorkerProcess:
    """``python -m aicut worker`` as a real process on 127.0.0.1, its log in ``directory/worker.log``."""

    def __init__(self, directory: Path, token: str, **worker: Any) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.settings = {**WORKER_DEFAULTS, **worker, "work_dir": str(directory / "work")}
        self.machines = write_machines(directory, **self.settings)
        self.log_path = directory / "worker.log"
        self._token = token
        self._log: Any = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.address = ""

    def start(self) -> None:
        env = {**os.environ, TOKEN_ENV: self._token, "PYTHONUNBUFFERED": "1"}
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "aicut", "worker", "--machines", str(self.machines)],
                                     cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout_s: float = 60.0) -> str:
        """Wait for the "worker ready" line; returns ``127.0.0.1:<port>``."""
        assert self.proc is not None, "start() first"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if m := _READY.search(self.output()):
                self.address = f"127.0.0.1:{m.group(2)}"
                return self.address
            if self.proc.poll() is not None:
                raise RuntimeError(f"the worker exited with status {self.proc.returncode}:\n{self.tail()}")
            time.sleep(0.05)
        raise RuntimeError(f"the worker was not ready after {timeout_s:.0f}s:\n{self.tail()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def close(self, timeout_s: float = 5.0) -> None:
        """Drain and stop the worker (a second SIGTERM hands tasks back at once); kill whatever is left."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            family = _descendants(proc.pid)
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.05)
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            _kill_left(family)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> WorkerProcess:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return list(psutil.Process(pid).children(recursive=True))
    except psutil.Error:
        return []


def _kill_left(processes: list[psutil.Process]) -> None:
    """Task processes live in their own sessions; any the worker did not stop are ended here."""
    for p in processes:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(processes, timeout=3)


# --- slow media ---------------------------------------------------------------------------------------------------


class ClipServer:
    """A real clip served by the tests' :class:`MediaServer` on 127.0.0.1; ``slow_task`` makes tasks that fetch it."""

    def __init__(self, directory: Path) -> None:
        self.clip = make_clip(directory / "clip.mp4")
        self.size = self.clip.stat().st_size
        self.server = MediaServer(directory)

    def slow_url(self, seconds: float, tag: str) -> str:
        """The clip throttled to last about ``seconds``; ``tag`` makes the URL unique, so the fetch cache misses."""
        bps = max(1, int(self.size / seconds))
        return self.server.url("/slow/clip.mp4", bps=bps, n=tag)

    def slow_task(self, task_id: str, seconds: float) -> pb.Task:
        source = pb.Source(url=self.slow_url(seconds, task_id), name="clip.mp4", kind=pb.VIDEO)
        return pb.Task(id=task_id, attempt=1, kind=pb.SMART_CUT, spec=pb.TaskSpec(title="bench", sources=[source]))

    def close(self) -> None:
        self.server.close()

    def __enter__(self) -> ClipServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


# --- freshness of status snapshots ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Seen:
    """A status snapshot as a client got it: its ``seq``, when it changed on the worker, when it arrived."""

    seq: int
    changed_ns: int
    recv_ns: int

    @property
    def age_ns(self) -> int:
        return self.recv_ns - self.changed_ns


def newly_seen(polls: list[Seen]) -> list[Seen]:
    """The polls that brought a newer snapshot than the poller had (the first poll only sets the start)."""
    fresh: list[Seen] = []
    last = polls[0].seq if polls else 0
    for p in polls[1:]:
        if p.seq > last:
            fresh.append(p)
            last = p.seq
    return fresh


def in_window(changes: list[Seen], polls: list[Seen]) -> list[Seen]:
    """The changes made after the first poll and seen by the last one: those the poller had a chance to see."""
    if not polls:
        return []
    return [c for c in changes if polls[0].seq < c.seq <= polls[-1].seq]


def visible_after_ns(changes: list[Seen], polls: list[Seen]) -> list[int]:
    """For each change, how long until the poller held a snapshot at least that new. Snapshots are whole states,
    so a later one carries an earlier change's effect even when the poller never saw that change's own ``seq``."""
    poll_seqs = [p.seq for p in polls]
    ages: list[int] = []
    for c in in_window(changes, polls):
        first = bisect.bisect_left(poll_seqs, c.seq)
        ages.append(polls[first].recv_ns - c.changed_ns)
    return ages


# --- numbers ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Summary:
    """Percentiles of one sample set, in milliseconds (NaN where there were no samples)."""

    n: int
    p50_ms: float
    p99_ms: float
    max_ms: float


def percentile(samples: Sequence[float], p: int) -> float:
    """The ``p``-th percentile (1–99), interpolated between the samples as ``statistics.quantiles`` does."""
    if not samples:
        return math.nan
    if len(samples) == 1:
        return float(samples[0])
    return statistics.quantiles(samples, n=100, method="inclusive")[p - 1]


def summarize(samples_ns: Sequence[int]) -> Summary:
    ms = [s / 1e6 for s in samples_ns]
    return Summary(n=len(ms), p50_ms=percentile(ms, 50), p99_ms=percentile(ms, 99),
                   max_ms=max(ms) if ms else math.nan)


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table: a metric measured for ours and for the baseline."""

    metric: str
    ours: Summary
    baseline: Summary
    notes: list[str] = field(default_factory=list)


def _ms(value: float) -> str:
    if math.isnan(value):
        return "—"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def _ratio(baseline: float, ours: float) -> str:
    if math.isnan(baseline) or math.isnan(ours) or ours <= 0:
        return "—"
    r = baseline / ours
    return f"{r:.2f}×" if r < 10 else f"{r:.0f}×"


_HEADER = ("metric", "ours p50", "ours p99", "base p50", "base p99", "base/ours p50", "base/ours p99", "n ours",
           "n base")


def table(rows: Sequence[Row]) -> str:
    """The rows as an aligned text table (milliseconds), one line per row."""
    cells = [_HEADER] + [
        (r.metric, _ms(r.ours.p50_ms), _ms(r.ours.p99_ms), _ms(r.baseline.p50_ms), _ms(r.baseline.p99_ms),
         _ratio(r.baseline.p50_ms, r.ours.p50_ms), _ratio(r.baseline.p99_ms, r.ours.p99_ms), str(r.ours.n),
         str(r.baseline.n))
        for r in rows
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(_HEADER))]
    out = []
    for line in cells:
        first = line[0].ljust(widths[0])
        out.append("  ".join([first, *(c.rjust(w) for c, w in zip(line[1:], widths[1:]))]).rstrip())
    out.insert(1, "-" * len(out[0]))
    return "\n".join(out)


def print_report(title: str, rows: Sequence[Row], legend: Sequence[str], aim_p99_ms: float | None = None) -> None:
    """The title, the table (all times in ms), the legend, each row's notes and, given an aim, whether ours met it."""
    print(f"\n{title}  (times in ms)")
    print(table(rows))
    for line in legend:
        print(line)
    for r in rows:
        for note in r.notes:
            print(f"{r.metric}: {note}")
    if aim_p99_ms is not None:
        print(f"aim (issue): p99 under {aim_p99_ms:g} ms for ours")
        width = max(len(r.metric) for r in rows)
        for r in rows:
            verdict = "met" if r.ours.p99_ms < aim_p99_ms else "MISSED"
            print(f"  {r.metric.ljust(width)}  p99 {_ms(r.ours.p99_ms)} ms: {verdict}")
