"""One long-lived ``StreamStatus`` call per worker, reconnected with exponential backoff and jitter.

The link turns the stream into facts the coordinator acts on: online/offline (a broken stream, or silence longer
than ``dead_after_s``, marks the worker OFFLINE at once), the latest status snapshot, the round-trip time from
pings, and task events, which are acknowledged only after the coordinator has handled (persisted) them — in one
``Ack`` per batch: the events that arrived while the previous batch was being handled.

Calls to the worker carry the token as per-call metadata on a channel without interceptors (``submit``, ``cancel``
and the stream itself): a client interceptor costs every call several Python frames.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import grpc

from aicut import rpc
from aicut.config import WorkerEntry
from generated.aicut.v1 import common_pb2 as pb
from generated.aicut.v1 import worker_pb2 as wpb
from generated.aicut.v1 import worker_pb2_grpc

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LinkOptions:
    ping_interval_s: float = 1.0
    dead_after_s: float = 3.0        # no message (heartbeats come every 0.5 s) for this long → OFFLINE
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 5.0
    peer_name: str = "coordinator"


class LinkHandler(Protocol):
    def on_online(self, link: WorkerLink) -> None: ...
    def on_offline(self, link: WorkerLink, reason: str) -> None: ...
    def on_status(self, link: WorkerLink, status: wpb.WorkerStatus) -> None: ...
    async def on_event(self, link: WorkerLink, event: pb.TaskEvent) -> None: ...


class WorkerLink:
    """The coordinator's connection to one worker."""

    def __init__(self, entry: WorkerEntry, token: str, handler: LinkHandler,
                 options: LinkOptions = LinkOptions()) -> None:
        self.entry = entry
        self.address = entry.address
        self.handler = handler
        self.options = options
        self.channel = rpc.bare_channel(entry.address)
        self.stub = worker_pb2_grpc.WorkerStub(self.channel)   # calls on it need metadata=self.metadata
        self.metadata = rpc.token_metadata(token)
        self.online = False
        self.status: wpb.WorkerStatus | None = None
        self.status_at = 0.0          # monotonic time of the latest snapshot
        self.last_seen = 0.0          # monotonic time of the latest message of any kind
        self.last_seen_unix_ms = 0
        self.rtt_ms = 0.0
        self.last_error = ""
        self._outgoing: asyncio.Queue[wpb.StatusStreamRequest | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._nonce = 0
        self._pings: dict[int, float] = {}

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"link-{self.address}")

    async def close(self) -> None:
        self._closed = True
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        await self.channel.close()

    async def submit(self, task: pb.Task, timeout: float) -> wpb.SubmitTaskReply:
        """``SubmitTask`` on this worker, with the token."""
        return await self.stub.SubmitTask(wpb.SubmitTaskRequest(task=task), timeout=timeout,
                                          metadata=self.metadata)

    async def cancel(self, task_id: str, attempt: int, reason: str, timeout: float) -> wpb.CancelTaskReply:
        """``CancelTask`` on this worker, with the token."""
        return await self.stub.CancelTask(wpb.CancelTaskRequest(task_id=task_id, attempt=attempt, reason=reason),
                                          timeout=timeout, metadata=self.metadata)

    # ------------------------------------------------------------------ internals
    async def _run(self) -> None:
        backoff = self.options.backoff_initial_s
        while not self._closed:
            started = time.monotonic()
            reason = "stream ended"
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as exc:
                reason = f"{exc.code().name}: {exc.details()}"
            except asyncio.TimeoutError:
                reason = f"no message for {self.options.dead_after_s:.1f}s (hung or cut off)"
            except Exception as exc:  # a bug must not end the link for good
                logger.exception("link %s: unexpected error", self.address)
                reason = f"{type(exc).__name__}: {exc}"
            self.last_error = reason
            self._set_offline(reason)
            if time.monotonic() - started > 10:
                backoff = self.options.backoff_initial_s
            delay = backoff * random.uniform(0.5, 1.5)
            backoff = min(backoff * 2, self.options.backoff_max_s)
            await asyncio.sleep(delay)

    async def _requests(self) -> AsyncIterator[wpb.StatusStreamRequest]:
        outgoing = self._outgoing   # this stream's queue; a reconnect makes a new one
        yield wpb.StatusStreamRequest(hello=wpb.Hello(peer=self.options.peer_name))
        while (req := await outgoing.get()) is not None:
            yield req

    async def _pinger(self) -> None:
        while True:
            await asyncio.sleep(self.options.ping_interval_s)
            self._nonce += 1
            self._pings[self._nonce] = time.perf_counter()
            if len(self._pings) > 16:  # pongs lost with a broken stream; keep the table small
                self._pings.pop(min(self._pings))
            self._outgoing.put_nowait(wpb.StatusStreamRequest(ping=wpb.Ping(nonce=self._nonce,
                                                                             sent_unix_ns=time.time_ns())))

    async def _session(self) -> None:
        self._outgoing = asyncio.Queue()  # acks for an old stream mean nothing to a new one
        call = self.stub.StreamStatus(self._requests(), metadata=self.metadata)
        pinger = asyncio.create_task(self._pinger())
        # Task events are handled (persisted) in order by their own task, so a slow Redis write never holds up the
        # status snapshots and heartbeats behind it; they are acknowledged once handled, a batch at a time.
        events: asyncio.Queue[pb.TaskEvent] = asyncio.Queue()
        handler = asyncio.create_task(self._handle_events(events))
        try:
            while True:
                msg = await asyncio.wait_for(call.read(), self.options.dead_after_s)
                if msg is grpc.aio.EOF:
                    return
                now = time.monotonic()
                self.last_seen, self.last_seen_unix_ms = now, int(time.time() * 1000)
                kind = msg.WhichOneof("msg")
                if kind == "status":
                    self.status, self.status_at = msg.status, now
                    if not self.online:
                        self.online = True
                        self.last_error = ""
                        logger.info("link %s: online (%s, %s)", self.address, msg.status.worker_id,
                                    wpb.WorkerState.Name(msg.status.state))
                        self.handler.on_online(self)
                    self.handler.on_status(self, msg.status)
                elif kind == "event":
                    events.put_nowait(msg.event)
                elif kind == "pong":
                    sent = self._pings.pop(msg.pong.nonce, None)
                    if sent is not None:
                        self.rtt_ms = (time.perf_counter() - sent) * 1000
        finally:
            pinger.cancel()
            handler.cancel()   # what it had not handled is not acknowledged: the worker sends it again
            self._outgoing.put_nowait(None)   # ends this stream's request generator
            call.cancel()

    async def _handle_events(self, events: asyncio.Queue[pb.TaskEvent]) -> None:
        outgoing = self._outgoing
        while True:
            batch = await _take_all(events)
            seqs = await self._handle_batch(batch)
            if seqs and outgoing is self._outgoing:
                outgoing.put_nowait(wpb.StatusStreamRequest(ack=wpb.Ack(event_seqs=seqs)))

    async def _handle_batch(self, batch: list[pb.TaskEvent]) -> list[int]:
        """Handle each event in order; the seqs of those handled (an event that failed is not acknowledged: the
        worker sends it again after the next reconnect)."""
        seqs: list[int] = []
        for event in batch:
            try:
                await self.handler.on_event(self, event)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("link %s: handling task event %d failed", self.address, event.seq)
                continue
            seqs.append(event.seq)
        return seqs

    def _set_offline(self, reason: str) -> None:
        if self.online:
            self.online = False
            logger.warning("link %s: OFFLINE (%s)", self.address, reason)
            self.handler.on_offline(self, reason)


async def _take_all(queue: asyncio.Queue[pb.TaskEvent]) -> list[pb.TaskEvent]:
    """Wait for one item, then take every item already queued behind it."""
    items = [await queue.get()]
    while not queue.empty():
        items.append(queue.get_nowait())
    return items
