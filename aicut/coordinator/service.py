"""The ``aicut.v1.Coordinator`` servicer: thin — convert, call the dispatcher or the store, convert back."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from urllib.parse import unquote, urlsplit

import grpc

from aicut import wire
from aicut.coordinator.dispatcher import Dispatcher
from aicut.coordinator.fleet import Member
from aicut.coordinator.watcher import ForumWatcher
from aicut.errors import AicutError, InvalidTaskError, NotFoundError, RefusedError
from aicut.forum import parse
from aicut.forum.tasks import is_thread_url, task_id_for
from aicut.models import TaskState, WorkerView
from aicut.store.tasks import Store
from generated.aicut.v1 import common_pb2 as pb
from generated.aicut.v1 import coordinator_pb2 as cpb
from generated.aicut.v1 import coordinator_pb2_grpc

logger = logging.getLogger(__name__)

_EVENT_ID = re.compile(r"\d+(-\d+)?")   # a stream entry id: ms-seq, or ms alone ("0": from the oldest kept)
_AUDIO = (".mp3", ".wav", ".m4a", ".aac", ".flac", ".amr", ".ogg", ".opus")


def task_from_submit(req: cpb.SubmitRequest) -> pb.Task:
    """The Task a SubmitRequest asks for: a media URL, or a forum thread URL that the worker resolves (logs in, reads
    the first post) — one task per thread, the same id the forum watcher would give it."""
    url = req.url.strip()
    if urlsplit(url).scheme not in ("http", "https"):
        raise InvalidTaskError(f"{url!r} is not an http(s) URL of a video or a forum thread")
    if is_thread_url(url):
        tid = parse.tid_from_url(url)
        if not tid:
            raise InvalidTaskError(f"cannot find the thread id (tid) in {url!r}")
        return pb.Task(id=req.id or task_id_for(url, tid), attempt=1, kind=pb.SMART_CUT, thread_url=url,
                       options=req.options, spec=pb.TaskSpec(tid=tid, title=req.title, cover=req.cover,
                                                             core_text=req.core_text))
    name = req.name or unquote(urlsplit(url).path.rsplit("/", 1)[-1]) or "video"
    kind = pb.AUDIO if name.lower().endswith(_AUDIO) else pb.VIDEO
    task_id = req.id or f"api-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    return pb.Task(id=task_id, attempt=1, kind=pb.SMART_CUT, options=req.options,
                   spec=pb.TaskSpec(title=req.title or name, sources=[pb.Source(url=url, name=name, kind=kind)],
                                    cover=req.cover, core_text=req.core_text))


def worker_info(member: Member, dispatcher: Dispatcher, view: WorkerView, now: float) -> cpb.WorkerInfo:
    """One worker as ListWorkers shows it; ``view`` is its scheduler view at ``now`` (built once per call)."""
    link = member.link
    until = dispatcher.outliers.ejected_until(member.entry.address)
    info = cpb.WorkerInfo(
        address=member.entry.address, priority=member.entry.priority, slots=view.slots, online=link.online,
        state=wire.worker_state_pb(view.state), busy=view.busy, cordoned=member.cordoned, ejected=until > now,
        ejected_until_unix_ms=int((time.time() + until - now) * 1000) if until > now else 0, rtt_ms=link.rtt_ms,
        last_seen_unix_ms=link.last_seen_unix_ms, last_error=link.last_error, dispatched=member.dispatched,
        succeeded=member.succeeded, failed=member.failed,
        consecutive_failures=dispatcher.outliers.consecutive_failures(member.entry.address))
    if link.status is not None:
        info.status.CopyFrom(link.status)
        info.state_reason = link.status.state_reason
    return info


class CoordinatorService(coordinator_pb2_grpc.CoordinatorServicer):
    def __init__(self, dispatcher: Dispatcher, store: Store, watcher: ForumWatcher) -> None:
        self.dispatcher = dispatcher
        self.store = store
        self.watcher = watcher

    async def _abort(self, context: grpc.aio.ServicerContext, exc: AicutError) -> None:
        code = {InvalidTaskError: grpc.StatusCode.INVALID_ARGUMENT, NotFoundError: grpc.StatusCode.NOT_FOUND,
                RefusedError: grpc.StatusCode.FAILED_PRECONDITION}
        for cls, status in code.items():
            if isinstance(exc, cls):
                await context.abort(status, exc.message)
        await context.abort(grpc.StatusCode.UNAVAILABLE if exc.retryable else grpc.StatusCode.INTERNAL, exc.message)

    async def _monitoring(self, enabled: bool) -> cpb.MonitoringStatus:
        state, changed = await self.watcher.set_enabled(enabled)
        # Saying whether it already was shows the persisted switch (there is no read-only call for it).
        was = "" if changed else " (it already was)"
        return cpb.MonitoringStatus(enabled=state.enabled, detail=state.detail + was,
                                    last_check_unix_ms=state.last_check_unix_ms, last_error=state.last_error)

    async def StartMonitoring(self, request: cpb.MonitoringRequest,
                              context: grpc.aio.ServicerContext) -> cpb.MonitoringStatus:
        return await self._monitoring(True)

    async def StopMonitoring(self, request: cpb.MonitoringRequest,
                             context: grpc.aio.ServicerContext) -> cpb.MonitoringStatus:
        return await self._monitoring(False)

    async def GetMonitoring(self, request: cpb.MonitoringRequest,
                            context: grpc.aio.ServicerContext) -> cpb.MonitoringStatus:
        state = await self.watcher.state()
        return cpb.MonitoringStatus(enabled=state.enabled, detail=state.detail,
                                    last_check_unix_ms=state.last_check_unix_ms, last_error=state.last_error)

    async def SubmitTask(self, request: cpb.SubmitRequest, context: grpc.aio.ServicerContext) -> cpb.TaskInfo:
        try:
            rec, _created = await self.dispatcher.submit(task_from_submit(request), origin="api")
        except AicutError as exc:
            await self._abort(context, exc)
        return wire.task_info(rec)

    async def GetTask(self, request: cpb.TaskRef, context: grpc.aio.ServicerContext) -> cpb.TaskInfo:
        try:
            return wire.task_info(await self.dispatcher.get(request.id))
        except AicutError as exc:
            await self._abort(context, exc)
        raise AssertionError("unreachable")

    async def ListTasks(self, request: cpb.ListTasksRequest, context: grpc.aio.ServicerContext) -> cpb.ListTasksReply:
        state = None if not request.state else TaskState(pb.TaskState.Name(request.state))
        limit = min(request.limit or 50, 500)
        recs, total = await self.store.list_tasks(state, offset=request.offset, limit=limit)
        return cpb.ListTasksReply(tasks=[wire.task_info(r, with_result=False) for r in recs], total=total)

    async def CancelTask(self, request: cpb.TaskRef, context: grpc.aio.ServicerContext) -> cpb.TaskInfo:
        try:
            return wire.task_info(await self.dispatcher.cancel(request.id, request.reason))
        except AicutError as exc:
            await self._abort(context, exc)
        raise AssertionError("unreachable")

    async def RetryTask(self, request: cpb.TaskRef, context: grpc.aio.ServicerContext) -> cpb.TaskInfo:
        try:
            return wire.task_info(await self.dispatcher.retry(request.id))
        except AicutError as exc:
            await self._abort(context, exc)
        raise AssertionError("unreachable")

    async def ListWorkers(self, request: cpb.ListWorkersRequest,
                          context: grpc.aio.ServicerContext) -> cpb.ListWorkersReply:
        now = time.monotonic()
        views = {v.name: v for v in self.dispatcher.fleet.views(now)}
        members = self.dispatcher.fleet.members
        return cpb.ListWorkersReply(workers=[worker_info(m, self.dispatcher, views[a], now)
                                             for a, m in members.items()])

    async def DrainWorker(self, request: cpb.DrainWorkerRequest, context: grpc.aio.ServicerContext) -> cpb.WorkerInfo:
        try:
            member = await self.dispatcher.cordon(request.address, request.undo)
        except AicutError as exc:
            await self._abort(context, exc)
        now = time.monotonic()
        view = next(v for v in self.dispatcher.fleet.views(now) if v.name == member.entry.address)
        return worker_info(member, self.dispatcher, view, now)

    async def WatchEvents(self, request: cpb.WatchEventsRequest,
                          context: grpc.aio.ServicerContext) -> AsyncIterator[cpb.ClusterEvent]:
        since = request.since_id.strip()
        if since and not _EVENT_ID.fullmatch(since):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"since_id {since!r} is not an event id: use \"\" (new events only), \"0\" (from the "
                                "oldest kept) or the id of an event already seen")
        try:
            # An explicit id, not "$": a read that comes back empty must not skip what arrives before the next one.
            last = since or await self.store.last_event_id()
            while True:
                entries = await self.store.read_events(last, block_ms=5_000, count=200)
                for entry_id, fields in entries:
                    last = entry_id
                    yield cluster_event(entry_id, fields)
        except AicutError as exc:   # Redis gone for longer than the store's retry window
            await self._abort(context, exc)


def cluster_event(entry_id: str, fields: dict[str, str]) -> cpb.ClusterEvent:
    """A stream entry (task transition or cluster event) as the API shows it."""
    def state(name: str) -> int:
        return pb.TaskState.Value(name) if name in pb.TaskState.keys() else 0

    # The store writes task entries (and progress entries) with the task in "id" and their text in "event"
    # (aicut.store.keys.EVENT_TASK); free-form entries from append_event use "task" and "text".
    known = {"kind", "id", "task", "attempt", "worker", "from", "to", "text", "event", "ts"}
    return cpb.ClusterEvent(
        id=entry_id, kind=fields.get("kind", "task"), at_unix_ms=int(fields.get("ts") or entry_id.split("-")[0]),
        task_id=fields.get("task") or fields.get("id", ""), attempt=int(fields.get("attempt") or 0),
        worker=fields.get("worker", ""), from_state=state(fields.get("from", "")), to_state=state(fields.get("to", "")),
        text=fields.get("text") or fields.get("event", ""),
        fields={k: v for k, v in fields.items() if k not in known})
