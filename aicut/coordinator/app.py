"""A coordinator process: state in Redis (or its own Valkey), links to every worker, the Coordinator API."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from urllib.parse import urlsplit

from aicut import __version__
from aicut.config import Settings, load_settings
from aicut.coordinator.dispatcher import DispatchOptions, Dispatcher
from aicut.coordinator.links import LinkOptions
from aicut.coordinator.service import CoordinatorService
from aicut.coordinator.watcher import ForumWatcher
from aicut.errors import AicutError
from aicut.gateway.app import Gateway
from aicut.rpc import Server, is_loopback
from aicut.store.embedded import EmbeddedValkey
from aicut.store.tasks import Store
from generated.aicut.v1 import coordinator_pb2, coordinator_pb2_grpc

logger = logging.getLogger("aicut.coordinator")

SERVICE = coordinator_pb2.DESCRIPTOR.services_by_name["Coordinator"].full_name


class CoordinatorApp:
    """Everything one coordinator process runs; ``start()`` then ``shutdown()``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.valkey: EmbeddedValkey | None = None
        self.store: Store | None = None
        self.dispatcher: Dispatcher | None = None
        self.server: Server | None = None
        self.gateway: Gateway | None = None
        self.watcher: ForumWatcher | None = None
        self.port = 0
        self.http_port = 0              # the dashboard's real port; 0 when it could not listen
        self._watcher: asyncio.Task[None] | None = None

    async def start(self) -> int:
        cs = self.settings.coordinator
        token = self.settings.secrets.cluster_token
        server = Server(cs.host, cs.port, token=token, insecure=cs.insecure)  # refuses an unsafe bind first
        logger.info("🚀 aicut coordinator %s starting", __version__)
        url = self.settings.secrets.redis_url
        if not url:
            self.valkey = EmbeddedValkey(cs.data_dir, appendfsync=cs.appendfsync)
            await self.valkey.start()
            url = self.valkey.url
            logger.info("🗄️  embedded Valkey on %s (append-only files in %s)", url, cs.data_dir)
        else:
            logger.info("🗄️  Redis from REDIS_URL")
        self.store = await Store.connect(url)
        self.dispatcher = Dispatcher(
            self.store, token,
            DispatchOptions(grace_s=cs.grace_s, max_attempts=cs.max_attempts, retry_backoff_s=cs.retry_backoff_s),
            link_options=LinkOptions(dead_after_s=cs.dead_after_s))
        await self.dispatcher.start(self.settings.workers)
        logger.info("📋 %d worker(s) from %s:", len(self.settings.workers), self.settings.machines_path)
        for entry in self.settings.workers:
            logger.info("   - %s (priority %d%s)", entry.address, entry.priority,
                        f", {entry.slots} slot(s)" if entry.slots else "")
        secrets = self.settings.secrets
        self.gateway = Gateway(self.store, self.dispatcher, version=__version__,
                               secrets=(secrets.cluster_token, secrets.forum_password,
                                        _password_in(secrets.redis_url)))
        self.http_port = await self.gateway.start(cs.host, cs.http_port)
        if self.http_port:
            logger.info("📊 dashboard %s", self.gateway.url)
        self.watcher = ForumWatcher(self.settings, self.store, self.dispatcher)
        await self.watcher.start()
        forum = self.settings.forum
        if forum.base_url:
            logger.info("📰 forum %s, boards %s, every %.0f s — monitoring %s", forum.base_url,
                        ", ".join(map(str, forum.boards)), forum.poll_interval_s,
                        "on" if (await self.watcher.state()).enabled else "off (StartMonitoring switches it on)")
        server.add(coordinator_pb2_grpc.add_CoordinatorServicer_to_server,
                   CoordinatorService(self.dispatcher, self.store, self.watcher), SERVICE)
        self.port = await server.start()
        self.server = server
        where = f"{cs.host}:{self.port}"
        auth = "token required" if token else ("no token: loopback only" if is_loopback(cs.host) else "--insecure")
        header = " -H \"authorization: Bearer $AICUT_CLUSTER_TOKEN\"" if token else ""
        logger.info("🔗 gRPC aicut.v1.Coordinator on %s (%s)", where, auth)
        logger.info("✅ coordinator ready — try: grpcurl -plaintext%s %s aicut.v1.Coordinator/ListWorkers", header,
                    where)
        self._watcher = asyncio.create_task(self._watch_config(self.settings.machines_path), name="config-watch")
        return self.port

    async def _watch_config(self, path: Path) -> None:
        """Pick up machines.yaml edits: workers are added and removed without a restart."""
        last = path.stat().st_mtime_ns if path.exists() else 0
        while True:
            await asyncio.sleep(self.settings.coordinator.watch_config_s)
            mtime = path.stat().st_mtime_ns if path.exists() else 0
            if mtime == last:
                continue
            last = mtime
            try:
                fresh = load_settings(path)
            except AicutError as exc:
                logger.error("machines.yaml changed but cannot be used (%s); keeping the old worker list", exc)
                continue
            assert self.dispatcher is not None
            await self.dispatcher.reconcile(fresh.workers)

    async def shutdown(self) -> None:
        if self._watcher:
            self._watcher.cancel()
        if self.gateway:
            await self.gateway.close()
        if self.watcher:
            await self.watcher.close()
        if self.server:
            await self.server.stop(1.0)
        if self.dispatcher:
            await self.dispatcher.close()
        if self.store:
            await self.store.close()
        if self.valkey:
            await self.valkey.close()
        logger.info("👋 coordinator stopped; tasks stay in Redis and resume at the next start")


def _password_in(url: str) -> str:
    """The password of a Redis URL, or ""."""
    if "://" not in url:
        return ""
    try:
        return urlsplit(url).password or ""
    except ValueError:
        return ""


async def serve(settings: Settings) -> int:
    """Run a coordinator until SIGINT or SIGTERM."""
    app = CoordinatorApp(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await app.start()
        await stop.wait()
    finally:
        await app.shutdown()
    return 0
