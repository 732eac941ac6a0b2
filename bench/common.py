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
import shutil
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
# gRPC logs an INFO line whenever a process with live gRPC threads forks a helper; it says nothing about the numbers.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
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


# --- helper processes (fleets of workers, fake workers, the clip server, pollers) ---------------------------------

def _die_with_parent() -> list[str]:
    """An argv prefix asking Linux to SIGTERM the child when the benchmark dies, even by kill -9 (util-linux
    ``setpriv --pdeathsig``); empty where there is none. Not a ``preexec_fn``: that makes Python fork instead of
    vfork, and a fork while gRPC's threads run can crash the child before it execs (grpc/grpc#43055)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM"] if setpriv and sys.platform.startswith("linux") else []


class Helper:
    """A child process of the benchmark (``python -m bench._NAME …`` or ``python -m aicut …``), its output in a log
    file; :meth:`wait_for` waits for a line, :meth:`close` stops it and whatever it started (task processes)."""

    def __init__(self, argv: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self._offset = self._log.tell()
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            _die_with_parent() + argv, cwd=ROOT, env=full_env, stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT)
        self.pid = self.proc.pid

    def output(self) -> str:
        data = self.log_path.read_bytes()[self._offset:] if self.log_path.exists() else b""
        return data.decode("utf-8", "replace")

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def wait_for(self, pattern: str, timeout_s: float = 60.0) -> re.Match[str]:
        """Wait until the output has a line matching ``pattern``; raises if the process exits first."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        while True:
            if m := regex.search(self.output()):
                return m
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{' '.join(self.argv[1:4])} exited with status {self.proc.returncode}:\n"
                                   f"{self.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{' '.join(self.argv[1:4])}: no {pattern!r} after {timeout_s:.0f}s:\n"
                                   f"{self.tail()}")
            time.sleep(0.05)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def send(self, sig: int) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(sig)

    def close(self, timeout_s: float = 10.0, sig: int = signal.SIGTERM) -> int | None:
        """Signal the process, wait, then kill it and every descendant left; returns its exit status."""
        proc, self.proc = self.proc, None
        code = None
        if proc is not None:
            family = _descendants(proc.pid)
            if proc.poll() is None:
                try:
                    proc.send_signal(signal.SIGCONT)   # a stopped process cannot act on SIGTERM
                    proc.send_signal(sig)
                    proc.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            code = proc.returncode
            _kill_left([p for p in family if _alive(p)])
        if not self._log.closed:
            self._log.close()
        return code

    def __enter__(self) -> Helper:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def bench_module(name: str, *args: str) -> list[str]:
    """argv for ``python -m bench.<name> args…`` (a helper module of this package)."""
    return [sys.executable, "-m", f"bench.{name}", *args]


def exit_on_sigterm() -> None:
    """SIGTERM (``timeout``, a supervisor) ends a benchmark like Ctrl+C does, so what it started is stopped too."""

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def load_note() -> str:
    """The machine's load, for the report: benchmarks on a shared 2-core machine are only as quiet as it is."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPU(s)"


# --- rates ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RateRow:
    """One line of a throughput table: a rate (per second) for ours and for the baseline; higher is better."""

    metric: str
    ours: float
    baseline: float
    unit: str = "tasks/s"


def _rate(value: float) -> str:
    if math.isnan(value):
        return "—"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def rate_table(rows: Sequence[RateRow]) -> str:
    """Rates side by side with ours/baseline (higher is better, so the ratio is ours over the baseline)."""
    header = ("metric", "ours", "baseline", "ours/base", "unit")
    cells = [header] + [
        (r.metric, _rate(r.ours), _rate(r.baseline), _ratio(r.ours, r.baseline), r.unit) for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    out = ["  ".join([line[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(line[1:4], widths[1:4])),
                      line[4].ljust(widths[4])]).rstrip() for line in cells]
    out.insert(1, "-" * len(out[0]))
    return "\n".join(out)


def slow_clip_task(base_url: str, clip_size: int, task_id: str, seconds: float, name: str = "clip.mp4") -> pb.Task:
    """A task whose one source is file ``name`` of a :mod:`bench._clip_server` (``clip_size`` bytes) throttled to last
    about ``seconds``; the task id in the URL makes each one unique, so the worker's fetch cache misses."""
    bps = max(1, int(clip_size / seconds))
    url = f"{base_url}/slow/{name}?bps={bps}&n={task_id}"
    source = pb.Source(url=url, name=name, kind=pb.VIDEO)
    return pb.Task(id=task_id, attempt=1, kind=pb.SMART_CUT, spec=pb.TaskSpec(title="bench", sources=[source]))


def probe_capabilities_once(path: Path) -> Path:
    """Probe this machine's capabilities once (in a child, as a worker does) and keep them in ``path`` as JSON, so
    many in-process workers can share one probe."""
    import asyncio

    from aicut.worker.capabilities import capabilities_to_json, probe_in_subprocess

    path.write_text(capabilities_to_json(asyncio.run(probe_in_subprocess(""))))
    return path


class LoopLag:
    """How late this process's event loop wakes up: a task sleeps ``period_s`` again and again and records how much
    longer each sleep took. A busy or starved process shows here first (a diagnosis, not a result)."""

    def __init__(self, period_s: float = 0.005) -> None:
        self.period_s = period_s
        self.lags_ns: list[int] = []
        self._task: Any = None

    def start(self) -> None:
        import asyncio

        async def watch() -> None:
            while True:
                t0 = time.perf_counter_ns()
                await asyncio.sleep(self.period_s)
                self.lags_ns.append(time.perf_counter_ns() - t0 - int(self.period_s * 1e9))

        self._task = asyncio.get_running_loop().create_task(watch(), name="bench-loop-lag")

    async def stop(self) -> Summary:
        import asyncio

        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        return summarize(self.lags_ns)


def cpu_seconds(pids: Sequence[int], children: bool = True) -> float:
    """User + system CPU seconds used so far by these processes and, with ``children``, by their descendants (those
    alive, and those that ended and were waited for)."""
    total = 0.0
    for pid in pids:
        try:
            p = psutil.Process(pid)
            t = p.cpu_times()
            total += t.user + t.system
            if children:
                total += t.children_user + t.children_system
                for q in p.children(recursive=True):
                    try:
                        c = q.cpu_times()
                        total += c.user + c.system
                    except psutil.Error:
                        pass
        except psutil.Error:
            pass
    return total


class TeardownNoise:
    """Counts, instead of printing, the asyncio complaints a closed ``WorkerLink`` leaves behind: its request
    generator never ends, so after ``call.cancel()`` gRPC's task that feeds the stream stays parked on the link's
    queue until it is garbage-collected ("Task was destroyed but it is pending!", then "aclose(): asynchronous
    generator is already running"). Anything else goes to the default handler."""

    MARKERS = ("Task was destroyed but it is pending", "_consume_request_iterator",
               "asynchronous generator is already running")

    def __init__(self) -> None:
        self.count = 0

    def install(self) -> None:
        import asyncio

        loop = asyncio.get_running_loop()

        def handler(loop: Any, context: dict[str, Any]) -> None:
            text = f"{context.get('message', '')} {context.get('exception', '')} {context.get('task', '')}"
            if any(m in text for m in self.MARKERS):
                self.count += 1
                return
            loop.default_exception_handler(context)

        loop.set_exception_handler(handler)

    def note(self) -> str:
        return (f"{self.count} asyncio complaint(s) about WorkerLink request generators left pending after their "
                "stream ended were counted, not printed (a product wart: see bench/common.py TeardownNoise)"
                if self.count else "")


# --- a clip with real motion (render benchmark) --------------------------------------------------------------------


def make_motion_clip(path: Path, *, seconds: float = 30.0, width: int = 1280, height: int = 720, fps: int = 30,
                     sample_rate: int = 48000) -> Path:
    """An H.264/AAC MP4 that encodes like camera footage rather than a test pattern: a textured background that pans
    and sways, a bright "head" that moves and whose "mouth" changes every frame, film grain, and a voiced sound
    (harmonics on a wandering pitch, syllable-like loudness, pauses). Made with PyAV and numpy; deterministic."""
    import av
    import numpy as np

    rng = np.random.default_rng(7)
    pad = 96
    yy, xx = np.mgrid[0:height + 2 * pad, 0:width + 2 * pad].astype(np.float32)
    texture = (118 + 40 * np.sin(xx / 37.0) * np.cos(yy / 53.0) + 25 * np.sin((xx + 2 * yy) / 91.0)
               + rng.normal(0, 9, xx.shape)).astype(np.float32)
    grain = [rng.normal(0, 2.5, (height, width)).astype(np.float32) for _ in range(8)]
    hy, hx = np.mgrid[0:height, 0:width].astype(np.float32)
    cw, ch = width // 2, height // 2
    u_base = np.full((ch, cw), 118, np.uint8)
    v_base = np.full((ch, cw), 136, np.uint8)
    frames = int(round(seconds * fps))
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.options = {"preset": "veryfast", "crf": "18"}
        aus = out.add_stream("aac", rate=sample_rate, layout="mono")
        for i in range(frames):
            t = i / fps
            ox = int(pad + pad * 0.8 * math.sin(t * 0.35))
            oy = int(pad + pad * 0.3 * math.sin(t * 0.9 + 1.0))
            y = texture[oy:oy + height, ox:ox + width] + grain[i % len(grain)]
            cx = width * (0.5 + 0.04 * math.sin(t * 1.3))
            cy = height * (0.45 + 0.02 * math.sin(t * 2.1))
            # Only the head's bounding box is computed per frame: the clip is made in seconds, not minutes.
            x0, x1 = max(0, int(cx - width * 0.15)), min(width, int(cx + width * 0.15))
            y0, y1 = max(0, int(cy - height * 0.31)), min(height, int(cy + height * 0.31))
            bx, by = hx[y0:y1, x0:x1], hy[y0:y1, x0:x1]
            box = y[y0:y1, x0:x1]
            head = ((bx - cx) / (width * 0.14)) ** 2 + ((by - cy) / (height * 0.3)) ** 2 < 1
            box[head] = (170 + 12 * np.sin(bx / 9.0 + t) * np.cos(by / 11.0))[head]
            mouth = (((bx - cx) / (width * 0.04)) ** 2
                     + ((by - cy - height * 0.12) / (height * (0.005 + 0.02 * abs(math.sin(t * 9))))) ** 2 < 1)
            box[mouth] = 60
            u, v = u_base.copy(), v_base.copy()
            u[::2, ::2] = np.uint8(118 + 6 * math.sin(t))
            yuv = np.concatenate([np.clip(y, 16, 235).astype(np.uint8), u.reshape(-1, width), v.reshape(-1, width)])
            frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            frame.pts = i
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
        n = int(seconds * sample_rate)
        tt = np.arange(n) / sample_rate
        pitch = 140 + 30 * np.sin(2 * np.pi * 0.3 * tt)
        phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
        voice = sum(np.sin(k * phase) / k for k in range(1, 8))
        syllables = np.clip(np.sin(2 * np.pi * 4.0 * tt), 0, None) * (np.sin(2 * np.pi * 0.21 * tt) > -0.4)
        sound = (0.25 * voice * syllables + rng.normal(0, 0.003, n)).astype(np.float32)
        for start in range(0, n, 1024):
            chunk = sound[start:start + 1024].reshape(1, -1)
            aframe = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="mono")
            aframe.sample_rate, aframe.pts = sample_rate, start
            out.mux(aus.encode(aframe))
        out.mux(aus.encode(None))
    return path


# --- the talking-head clip with ground truth (plan quality, transcribe overhead, end to end) -----------------------

TALKING_HEAD_DIR = Path(os.environ.get("AICUT_BENCH_CLIP_DIR", "/tmp/aicut-bench-talking-head"))


def talking_head_clip(directory: Path | None = None) -> Any:
    """The ~64 s English benchmark clip (tests.support.talking_head.build_benchmark_clip) and its GroundTruth, built
    once into ``directory`` (default: $AICUT_BENCH_CLIP_DIR or /tmp/aicut-bench-talking-head) and reused after."""
    from tests.support.talking_head import GroundTruth, build_benchmark_clip

    directory = Path(directory or TALKING_HEAD_DIR)
    meta = directory / "talking_head_60s.json"
    if meta.is_file() and (directory / "talking_head_60s.mp4").is_file():
        return GroundTruth.load(meta)
    directory.mkdir(parents=True, exist_ok=True)
    return build_benchmark_clip(directory)


def machine_line() -> str:
    """CPUs and load averages, for every result line: the machine may be busy with other work."""
    one, five, fifteen = os.getloadavg()
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    return f"{cpus} CPUs, load average {one:.2f} {five:.2f} {fifteen:.2f}"
