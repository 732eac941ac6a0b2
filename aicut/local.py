"""``make run``: the whole cluster on one machine — embedded Valkey, the coordinator, and one local worker process.

Ctrl+C (or SIGTERM) is passed on to the worker, which runs in its own session so it hears each signal once: it
drains (running tasks may finish; a second Ctrl+C hands them back at once), then the coordinator stops and takes
its Valkey with it. The worker runs as its own process, as it would on another machine, so a crash
in one never takes the other down. If this process is killed outright, the worker is sent SIGTERM by the kernel
(and the Valkey server too), so nothing is left behind.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from aicut.config import Settings
from aicut.coordinator.app import CoordinatorApp
from aicut.store.embedded import _death_signal_hook

logger = logging.getLogger("aicut.run")


async def run_local(settings: Settings, machines: str | None) -> int:
    ws = settings.worker
    local = f"localhost:{ws.port}", f"127.0.0.1:{ws.port}"
    if not any(e.address in local for e in settings.workers):
        logger.warning("machines.yaml lists no worker at %s; the local worker will not get tasks", local[0])
    args = [sys.executable, "-m", "aicut", "worker"] + (["--machines", machines] if machines else [])
    # PR_SET_PDEATHSIG too, as for the embedded Valkey: if this process is killed outright (kill -9, OOM), the worker
    # gets SIGTERM and drains instead of lingering on its port.
    worker = await asyncio.create_subprocess_exec(*args, start_new_session=True, preexec_fn=_death_signal_hook())
    coordinator = CoordinatorApp(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        if not stop.is_set():
            logger.info("%s: stopping the cluster (the worker drains first)", sig.name)
        if worker.returncode is None:
            worker.send_signal(sig)  # the first drains, a second hands running tasks back
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        await coordinator.start()
        logger.info("🌐 cluster running: coordinator %s:%d, worker %s — Ctrl+C stops all three",
                    settings.coordinator.host, coordinator.port, local[0])
        waiter = asyncio.ensure_future(worker.wait())
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait((waiter, stopper), return_when=asyncio.FIRST_COMPLETED)
        if worker.returncode is not None and not stop.is_set():
            logger.error("the local worker exited with %s; stopping", worker.returncode)
        stopper.cancel()
    finally:
        if worker.returncode is None:
            if not stop.is_set():
                worker.send_signal(signal.SIGTERM)
            await worker.wait()
        await coordinator.shutdown()
    return 0 if worker.returncode in (0, -signal.SIGINT, -signal.SIGTERM) else 1
