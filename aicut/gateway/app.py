"""The read-only HTTP gateway: aiohttp's server on the coordinator's own event loop (AppRunner + TCPSite).

aiohttp, because it is an asyncio server that runs *inside* the loop the coordinator already runs — the handlers
read the dispatcher's in-memory fleet and await the same redis.asyncio client, with no thread, no second loop and no
locking — and it streams responses, which server-sent events need. (A WSGI server would need a thread and copies of
the state; the stdlib's http.server blocks.)

GET and HEAD only: a middleware answers 405 to every other method on every path, before routing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from aicut.coordinator.dispatcher import Dispatcher
from aicut.errors import AicutError
from aicut.gateway import metrics, views
from aicut.gateway.facts import collect
from aicut.gateway.live import Hub, already_sent, dumps, sse
from aicut.gateway.redact import Redactor
from aicut.models import TaskState
from aicut.store import keys as K
from aicut.store.tasks import Store

logger = logging.getLogger(__name__)

T = TypeVar("T")
STATIC = Path(__file__).resolve().parent / "static"
ALLOWED = ("GET", "HEAD")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200            # a page is never bigger, whatever ?limit= asks
RECENT_EVENTS = 20         # events in /api/cluster/status
REPLAY_MAX = 1000          # stream entries replayed to a client that reconnects with Last-Event-ID
SECURITY_HEADERS = {
    # Everything the page uses comes from here: no CDN can be loaded even by mistake.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class StoreUnavailable(Exception):
    """Redis did not answer in time: the endpoint answers 503."""


def _now_ms() -> int:
    return int(time.time() * 1000)


class Gateway:
    """Routes, middlewares and the server; ``start(host, port)`` then ``close()``."""

    def __init__(self, store: Store, dispatcher: Dispatcher, *, secrets: Iterable[str] = (), version: str = "",
                 store_timeout_s: float = 5.0, sample_interval_s: float = 0.25, keepalive_s: float = 15.0) -> None:
        self.store = store
        self.dispatcher = dispatcher
        self.version = version
        self.redact = Redactor(secrets)
        self.store_timeout_s = store_timeout_s
        self.keepalive_s = keepalive_s
        self.started_ms = _now_ms()
        self.hub = Hub(store, self._machines_sample, redact=self.redact, interval_s=sample_interval_s)
        self.runner: web.AppRunner | None = None
        self.host = ""
        self.port = 0
        self.app = self._build()

    # ------------------------------------------------------------------ lifecycle
    def _build(self) -> web.Application:
        app = web.Application(middlewares=[self._read_only, self._errors])
        r = app.router
        r.add_get("/", self.index)
        r.add_get("/api/machines/status", self.machines_status)
        r.add_get("/api/cluster/status", self.cluster_status)
        r.add_get("/api/tasks", self.tasks)
        r.add_get("/api/tasks/{task_id}", self.task)
        r.add_get("/api/events", self.events)
        r.add_get("/metrics", self.metrics)
        r.add_get("/healthz", self.healthz)
        r.add_get("/favicon.ico", self.favicon)
        r.add_static("/static/", STATIC, follow_symlinks=False)
        app.on_response_prepare.append(self._headers)
        app.on_shutdown.append(lambda _app: self.hub.close())
        return app

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0 picks a free port); returns the port, or 0 when it could not listen."""
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            logger.error("📊 the dashboard cannot listen on %s:%d (%s); the coordinator runs on without it — "
                         "free the port or pick another with --http-port (0 picks a free one)", host, port,
                         exc.strerror or exc)
            return 0
        self.runner, self.host = runner, host
        self.port = int(runner.addresses[0][1])
        return self.port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def close(self) -> None:
        """End event streams, then stop the server (in-flight requests get up to 2 s)."""
        await self.hub.close()
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    # ------------------------------------------------------------------ middlewares and helpers
    @web.middleware
    async def _read_only(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method not in ALLOWED:
            return self._json({"error": "this gateway is read-only: GET and HEAD only; use the gRPC API to change "
                                        "anything"}, status=405, headers={"Allow": ", ".join(ALLOWED)})
        return await handler(request)

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except StoreUnavailable:
            return self._json({"error": "Redis is not answering; try again shortly"}, status=503)

    async def _headers(self, request: web.Request, response: web.StreamResponse) -> None:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.path.startswith(("/api/", "/metrics", "/healthz")):
            response.headers.setdefault("Cache-Control", "no-store")
        else:
            response.headers.setdefault("Cache-Control", "no-cache")

    def _json(self, payload: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
        return web.Response(text=self.redact(dumps(payload)), status=status, headers=headers,
                            content_type="application/json", charset="utf-8")

    async def _q(self, call: Awaitable[T]) -> T:
        """A store call, bounded: the store itself retries for 30 s, a browser should not wait that long."""
        try:
            return await asyncio.wait_for(call, self.store_timeout_s)
        except (asyncio.TimeoutError, AicutError) as exc:
            raise StoreUnavailable() from exc

    def _machines_sample(self) -> tuple[Any, Callable[[], dict[str, Any]]]:
        """The fleet's signature now, and a builder of its full view (only called when the signature changed)."""
        now = _now_ms()
        facts = collect(self.dispatcher, now_unix_ms=now)
        return views.machines_signature(facts, now), lambda: views.machines_status(facts, now)

    async def _counts(self) -> dict[str, int]:
        return {s.value: n for s, n in (await self._q(self.store.count_by_state())).items()}

    async def _monitoring(self) -> dict[str, Any]:
        on, last, error = await self._q(self.store.get_flags(K.FLAG_MONITORING, K.FLAG_MONITORING_LAST_CHECK,
                                                             K.FLAG_MONITORING_LAST_ERROR))
        return views.monitoring_view(on == "1", int(last) if last else None, error or None)

    # ------------------------------------------------------------------ endpoints
    async def index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html", headers={"Content-Type": "text/html; charset=utf-8"})

    async def favicon(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "favicon.svg", headers={"Content-Type": "image/svg+xml"})

    async def machines_status(self, request: web.Request) -> web.Response:
        return self._json(self._machines_sample()[1]())

    async def cluster_status(self, request: web.Request) -> web.Response:
        counts, counters, monitoring, recent = await asyncio.gather(
            self._counts(), self._q(self.store.counters()), self._monitoring(),
            self._q(self.store.recent_events(RECENT_EVENTS)))
        now = _now_ms()
        return self._json(views.cluster_status(
            version=self.version, started_unix_ms=self.started_ms, now_unix_ms=now, counts=counts,
            counters=counters, machines=collect(self.dispatcher, now_unix_ms=now), monitoring=monitoring,
            recent=recent))

    async def tasks(self, request: web.Request) -> web.Response:
        q = request.query
        state = (q.get("state") or "").strip().upper() or None
        if state is not None and state not in views.STATES:
            return self._json({"error": f"unknown state {state!r}; one of {', '.join(views.STATES)}"}, status=400)
        try:
            offset = int(q.get("offset") or 0)
            limit = min(int(q.get("limit") or DEFAULT_LIMIT), MAX_LIMIT)
        except ValueError:
            return self._json({"error": "offset and limit must be whole numbers"}, status=400)
        if offset < 0 or limit < 0:
            return self._json({"error": "offset and limit must not be negative"}, status=400)
        recs, total = await self._q(self.store.list_tasks(TaskState(state) if state else None, offset=offset,
                                                          limit=limit))
        return self._json(views.tasks_page(recs, total=total, state=state, offset=offset, limit=limit))

    async def task(self, request: web.Request) -> web.Response:
        task_id = request.match_info["task_id"]
        rec = await self._q(self.store.get_task(task_id))
        if rec is None:
            return self._json({"error": f"no task {task_id!r}"}, status=404)
        return self._json(views.task_detail(rec))

    async def metrics(self, request: web.Request) -> web.Response:
        counts, counters, monitoring = await asyncio.gather(
            self._counts(), self._q(self.store.counters()), self._monitoring())
        now = _now_ms()
        text = metrics.render(counts=counts, counters=counters, machines=collect(self.dispatcher, now_unix_ms=now),
                              monitoring=monitoring["enabled"], now_unix_ms=now,
                              sse_clients=len(self.hub.subscribers))
        return web.Response(body=self.redact(text).encode(), headers={"Content-Type": metrics.CONTENT_TYPE})

    async def healthz(self, request: web.Request) -> web.Response:
        try:
            await asyncio.wait_for(self.store.ping(), min(2.0, self.store_timeout_s))
        except (asyncio.TimeoutError, AicutError):
            return self._json({"ok": False, "store": "unreachable"}, status=503)
        return self._json({"ok": True, "store": "ok"})

    async def events(self, request: web.Request) -> web.StreamResponse:
        headers = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-store",
                   "X-Accel-Buffering": "no"}
        if request.method == "HEAD":
            return web.Response(headers=headers)
        since = request.headers.get("Last-Event-ID") or request.query.get("since") or ""
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)
        sub = self.hub.subscribe()   # before the replay: nothing that arrives meanwhile is lost
        try:
            await response.write(b"retry: 2000\n\n" + self.hub.machines_message())
            if views.valid_event_id(since):
                sub.after = views.event_order(since)
                for entry_id, fields in await self._q(self.store.read_events(since, count=REPLAY_MAX)):
                    await response.write(self.hub.entry_message(entry_id, fields).body)
                    sub.after = max(sub.after, views.event_order(entry_id))
            while True:
                try:
                    message = await asyncio.wait_for(sub.queue.get(), self.keepalive_s)
                except asyncio.TimeoutError:
                    await response.write(b": keepalive\n\n")   # also how a closed browser is noticed
                    continue
                if message is None:
                    break
                if not already_sent(sub, message):
                    await response.write(message.body)
        except (ConnectionError, StoreUnavailable):
            pass   # the browser went away (it reconnects by itself), or Redis did (it retries after 2 s)
        finally:
            self.hub.unsubscribe(sub)
        return response


__all__ = ["Gateway", "sse"]
