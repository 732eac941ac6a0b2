"""The ``aicut.v1.Worker`` servicer: convert, call :class:`WorkerNode`, convert back; errors leave as status codes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import grpc

from aicut import wire
from aicut.errors import (AicutError, InvalidTaskError, NotFoundError, TaskConflictError, WorkerFullError,
                          WorkerNotReadyError)
from aicut.worker.node import Subscriber, WorkerNode
from generated.aicut.v1 import worker_pb2 as wpb
from generated.aicut.v1 import worker_pb2_grpc

logger = logging.getLogger(__name__)

_CODES: tuple[tuple[type[AicutError], grpc.StatusCode], ...] = (
    (WorkerFullError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (WorkerNotReadyError, grpc.StatusCode.FAILED_PRECONDITION),
    (TaskConflictError, grpc.StatusCode.ALREADY_EXISTS),
    (InvalidTaskError, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
)


def status_code(exc: AicutError) -> grpc.StatusCode:
    """The gRPC status for an aicut error."""
    for cls, code in _CODES:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.INTERNAL


class WorkerService(worker_pb2_grpc.WorkerServicer):
    def __init__(self, node: WorkerNode) -> None:
        self.node = node

    async def SubmitTask(self, request: wpb.SubmitTaskRequest,
                         context: grpc.aio.ServicerContext) -> wpb.SubmitTaskReply:
        try:
            duplicate, status = await self.node.submit(wire.task_from_pb(request.task))
        except AicutError as exc:
            await context.abort(status_code(exc), exc.message)
        return wpb.SubmitTaskReply(task_id=request.task.id, attempt=request.task.attempt or 1, duplicate=duplicate,
                                   status=status)

    async def CancelTask(self, request: wpb.CancelTaskRequest,
                         context: grpc.aio.ServicerContext) -> wpb.CancelTaskReply:
        try:
            attempt = await self.node.cancel(request.task_id, request.attempt, request.reason)
        except AicutError as exc:
            await context.abort(status_code(exc), exc.message)
        return wpb.CancelTaskReply(cancelled=True, attempt=attempt)

    async def Health(self, request: wpb.HealthRequest, context: grpc.aio.ServicerContext) -> wpb.WorkerStatus:
        return self.node.status(fresh_resources=True)

    async def StreamStatus(self, request_iterator: AsyncIterator[wpb.StatusStreamRequest],
                           context: grpc.aio.ServicerContext) -> AsyncIterator[wpb.StatusStreamMessage]:
        sub = self.node.subscribe(context.peer())
        reader = asyncio.create_task(self._read(request_iterator, sub), name=f"stream-reader-{sub.peer}")
        interval = self.node.ws.heartbeat_interval_s
        next_beat = time.monotonic() + interval
        getter: asyncio.Future[wpb.StatusStreamMessage | None] | None = None
        try:
            while True:
                timeout = next_beat - time.monotonic()
                if timeout <= 0:
                    next_beat = time.monotonic() + interval
                    yield self.node.heartbeat()
                    continue
                # One get() stays pending across heartbeats (asyncio.wait does not cancel it), so no message is lost.
                getter = getter or asyncio.ensure_future(sub.queue.get())
                done, _ = await asyncio.wait((getter,), timeout=timeout)
                if not done:
                    continue
                msg, getter = getter.result(), None
                if msg is None:  # the worker is closing
                    return
                yield msg
        finally:
            if getter:
                getter.cancel()
            reader.cancel()
            self.node.unsubscribe(sub)

    async def _read(self, requests: AsyncIterator[wpb.StatusStreamRequest], sub: Subscriber) -> None:
        """Pings get pongs, acks empty the outbox; a client that half-closes keeps receiving."""
        try:
            async for req in requests:
                kind = req.WhichOneof("msg")
                if kind == "ping":
                    sub.push(wpb.StatusStreamMessage(pong=wpb.Pong(
                        nonce=req.ping.nonce, ping_sent_unix_ns=req.ping.sent_unix_ns, sent_unix_ns=time.time_ns())))
                elif kind == "ack":
                    self.node.ack(list(req.ack.event_seqs))
                elif kind == "hello":
                    sub.peer = f"{req.hello.peer} ({sub.peer})"
                    logger.info("worker %s: stream peer says it is %s", self.node.worker_id, sub.peer)
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            pass
