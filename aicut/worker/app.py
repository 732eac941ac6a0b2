"""A worker process: probe capabilities, serve ``aicut.v1.Worker`` with health and reflection, drain on a signal."""

from __future__ import annotations

import asyncio
import logging
import signal
import time

from aicut import __version__
from aicut.config import Settings
from aicut.models import WorkerState
from aicut.rpc import Server, is_loopback
from aicut.worker.capabilities import Capabilities, probe_in_subprocess
from aicut.worker.node import WorkerNode
from aicut.worker.service import WorkerService
from generated.aicut.v1 import worker_pb2, worker_pb2_grpc

logger = logging.getLogger("aicut.worker")

SERVICE = worker_pb2.DESCRIPTOR.services_by_name["Worker"].full_name


def describe_capabilities(c: Capabilities) -> str:
    """One line an operator reads at start-up."""
    gpus = ", ".join(f"{g.name} {g.memory_total_bytes / 2**30:.0f} GiB" for g in c.gpus) or "none"
    nvenc = "yes" if c.nvenc else f"no ({c.nvenc_reason})"
    nvdec = "yes" if c.nvdec else "no"
    speech = "ready" if c.speech_model_ready else f"not ready ({c.speech_model_reason})"
    return (f"GPU {gpus} · NVENC {nvenc} · NVDEC {nvdec} · CPU {c.cpu_count} · encoders "
            f"{', '.join(c.encoders) or 'none'} · speech model {speech}")


class WorkerApp:
    """Everything one worker process runs; ``start()`` then ``shutdown()``."""

    def __init__(self, settings: Settings, capabilities: Capabilities | None = None) -> None:
        self.settings = settings
        self._capabilities = capabilities
        self.node: WorkerNode | None = None
        self.server: Server | None = None
        self.port = 0

    async def start(self) -> int:
        ws = self.settings.worker
        token = self.settings.secrets.cluster_token
        server = Server(ws.host, ws.port, token=token, insecure=ws.insecure)  # refuses an unsafe bind first
        ws.work_dir.mkdir(parents=True, exist_ok=True)
        logger.info("🚀 aicut worker %s starting: %s, %d slot(s), work dir %s", __version__, ws.name, ws.slots,
                    ws.work_dir)
        caps = self._capabilities or await probe_in_subprocess(ws.speech_model_dir)
        logger.info("🔧 %s", describe_capabilities(caps))
        self.node = node = WorkerNode(self.settings, caps)
        server.add(worker_pb2_grpc.add_WorkerServicer_to_server, WorkerService(node), SERVICE)
        self.port = await server.start()
        self.server = server
        node.worker_id = ws.name_for(self.port)
        node.on_state = lambda state: asyncio.ensure_future(
            server.set_serving(("", SERVICE), state is WorkerState.SERVING))
        await node.start()
        await server.set_serving(("", SERVICE), node.state is WorkerState.SERVING)
        where = f"{ws.host}:{self.port}"
        auth = ("token required (authorization: Bearer $AICUT_CLUSTER_TOKEN)" if token else
                "no token" + (": loopback only" if is_loopback(ws.host) else ", --insecure"))
        logger.info("🔗 gRPC aicut.v1.Worker, grpc.health.v1.Health and reflection on %s; %s", where, auth)
        header = " -H \"authorization: Bearer $AICUT_CLUSTER_TOKEN\"" if token else ""
        logger.info("✅ worker ready (%s) — try: grpcurl -plaintext%s %s aicut.v1.Worker/Health", node.state.value,
                    header, where)
        if node.state is not WorkerState.SERVING:
            logger.warning("⚠️  worker is %s: %s", node.state.value, node.state_reason)
        return self.port

    async def shutdown(self, hurry: asyncio.Event | None = None) -> str:
        """Drain, close and stop; returns the closing line."""
        t0 = time.monotonic()
        finished = handed_back = 0
        if self.node:
            finished, handed_back = await self.node.drain(self.settings.worker.drain_timeout_s, hurry)
            # Give a connected coordinator a moment to acknowledge the last events; unacknowledged ones stay on disk.
            deadline = time.monotonic() + 2.0
            while len(self.node.outbox) and self.node.subscribers and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await self.node.close()
        if self.server:
            await self.server.stop(1.0)
        left = len(self.node.outbox) if self.node else 0
        name = self.node.worker_id if self.node else self.settings.worker.name
        return (f"👋 worker {name} stopped after draining for {time.monotonic() - t0:.1f}s: "
                f"{finished} task(s) finished, {handed_back} handed back, {left} event(s) kept for the coordinator")


async def serve(settings: Settings) -> int:
    """Run a worker until SIGINT or SIGTERM, then drain; a second signal hands running tasks back at once."""
    app = WorkerApp(settings)
    stop, hurry = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set():
            logger.warning("%s again: handing running tasks back now", sig.name)
            hurry.set()
        else:
            logger.info("%s: draining (running tasks may finish within %.0fs; signal again to stop sooner)",
                        sig.name, settings.worker.drain_timeout_s)
            stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        await app.start()
    except BaseException:
        await app.shutdown(hurry)
        raise
    await stop.wait()
    logger.info(await app.shutdown(hurry))
    return 0
