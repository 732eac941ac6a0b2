"""Several real workers in one process: ``python -m bench._worker_fleet --count N --machines F --work-dir D``.

Each is a real :class:`aicut.worker.app.WorkerApp` (its own gRPC server on 127.0.0.1, port 0, its own work dir and
outbox, real task processes) on one shared asyncio loop, all sharing one capabilities probe (read from
``--capabilities`` when given, else probed once here). Prints ``FLEET READY <address> …`` when every one listens;
SIGTERM or SIGINT drains them all (a second signal hands running tasks back at once), as a worker process does.
SIGUSR1 prints ``FLEET LAG <p50 ms> <p99 ms> <max ms> <n>``, how late this process's event loop woke up since the last
SIGUSR1 (a diagnosis: a starved process delays every status it sends), and starts counting afresh.
The cluster token comes from the environment (``AICUT_CLUSTER_TOKEN``), as for ``python -m aicut worker``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from dataclasses import replace
from pathlib import Path

from aicut.cli import setup_logging
from aicut.config import load_settings
from aicut.worker.app import WorkerApp
from aicut.worker.capabilities import capabilities_from_json, probe_in_subprocess
from bench.common import LoopLag, summarize


async def run(count: int, machines: str, work_dir: Path, capabilities: str, log_level: str) -> int:
    base = load_settings(machines)
    setup_logging(log_level)
    if capabilities:
        caps = capabilities_from_json(Path(capabilities).read_text())
    else:
        caps = await probe_in_subprocess(base.worker.speech_model_dir)
    apps: list[WorkerApp] = []
    stop, hurry = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        (hurry if stop.is_set() else stop).set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    lag = LoopLag()
    lag.start()

    def report_lag() -> None:
        s, lag.lags_ns[:] = summarize(lag.lags_ns), []
        print(f"FLEET LAG {s.p50_ms:.3f} {s.p99_ms:.3f} {s.max_ms:.3f} {s.n}", flush=True)

    loop.add_signal_handler(signal.SIGUSR1, report_lag)
    try:
        for i in range(count):
            ws = replace(base.worker, port=0, work_dir=(work_dir / f"w{i:02d}").resolve())
            app = WorkerApp(replace(base, worker=ws), caps)
            apps.append(app)
            await app.start()
        print("FLEET READY " + " ".join(f"127.0.0.1:{a.port}" for a in apps), flush=True)
        await stop.wait()
    finally:
        await asyncio.gather(*(a.shutdown(hurry) for a in apps), return_exceptions=True)
    return 0


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench._worker_fleet")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--machines", required=True, help="machines.yaml with the worker: and fetch: sections")
    p.add_argument("--work-dir", required=True, type=Path)
    p.add_argument("--capabilities", default="", help="a file holding capabilities_to_json output")
    p.add_argument("--log-level", default="INFO")
    a = p.parse_args(argv)
    return asyncio.run(run(a.count, a.machines, a.work_dir, a.capabilities, a.log_level))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
