"""The worker's state: slots, running task processes, the outbox, and the status stream's subscribers.

Everything here runs on the event loop; media work happens in task processes (``aicut.worker.runner``). Every change
bumps ``seq`` and is pushed at once to each subscriber as a fresh snapshot; task events go through the outbox first.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import logging
import pickle
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format

from aicut import wire
from aicut.config import Settings
from aicut.errors import (InvalidTaskError, NotFoundError, TaskConflictError, WorkerFullError,
                          WorkerNotReadyError)
from aicut.models import Task, TaskState, WorkerState
from aicut.pipeline.task import options_from_settings
from aicut.worker.capabilities import Capabilities, Resources, sample_resources
from aicut.worker.outbox import Outbox
from aicut.worker.pool import TaskPool
from aicut.worker.runner import Outcome, TaskProcess
from generated.aicut.v1 import common_pb2 as pb
from generated.aicut.v1 import worker_pb2 as wpb

logger = logging.getLogger(__name__)

_TASK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,199}$")
_FINISHED_MEMORY = 4096     # finished (id, attempt) pairs remembered, so a late duplicate submit is not run again
_SUBSCRIBER_QUEUE = 10_000  # a subscriber this far behind is dropped; its client reconnects and gets a snapshot


def validate_task(task: Task) -> None:
    """Refuse a task that can never run, with a message saying what to fix."""
    if not _TASK_ID.match(task.id):
        raise InvalidTaskError(f"task id {task.id!r} is not valid: use 1–200 letters, digits and . _ : @ / -")
    if task.attempt < 1:
        raise InvalidTaskError(f"task {task.id}: attempt must be 1 or more, not {task.attempt}")
    if not task.spec.sources:
        raise InvalidTaskError(f"task {task.id} has no sources: give at least one video URL in spec.sources "
                               "(a bare thread URL is resolved by the coordinator's forum reader)")
    for source in task.spec.sources:
        if not source.url.strip():
            raise InvalidTaskError(f"task {task.id}: a source has an empty url")


class Subscriber:
    """One StreamStatus client: a queue of messages the worker pushes and the stream handler sends."""

    def __init__(self, peer: str) -> None:
        self.peer = peer
        self.queue: asyncio.Queue[wpb.StatusStreamMessage | None] = asyncio.Queue(maxsize=_SUBSCRIBER_QUEUE)
        self.dropped = False

    def push(self, msg: wpb.StatusStreamMessage | None) -> bool:
        try:
            self.queue.put_nowait(msg)
            return True
        except asyncio.QueueFull:
            self.dropped = True
            return False


@dataclass(slots=True)
class Running:
    task: Task
    task_pb: pb.Task
    process: TaskProcess
    started_ms: int
    state: TaskState = TaskState.RUNNING
    stage: str = "start"
    percent: float = 0.0
    handed_back: bool = False
    waiter: asyncio.Task[None] | None = None


class WorkerNode:
    """Slots, tasks and status of one worker; the gRPC servicer is a thin layer over this."""

    def __init__(self, settings: Settings, capabilities: Capabilities) -> None:
        self.settings = settings
        self.ws = settings.worker
        self.capabilities = capabilities
        self.worker_id = self.ws.name
        self.boot_id = uuid.uuid4().hex[:12]
        self.started_ms = int(time.time() * 1000)
        self.outbox = Outbox(self.ws.work_dir / "outbox.json")
        self.state = WorkerState.SERVING
        self.state_reason = ""
        self.running: dict[str, Running] = {}
        self.finished: collections.OrderedDict[tuple[str, int], TaskState] = collections.OrderedDict()
        self.subscribers: set[Subscriber] = set()
        self.seq = 0
        self.changed_ns = time.time_ns()
        self.resources: Resources = sample_resources(self.ws.work_dir)
        self.on_state: Callable[[WorkerState], Any] | None = None
        self.stats = collections.Counter[str]()
        self._resource_loop: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        # One long-lived task process per slot, the speech model loaded once in each.
        self.pool = TaskPool(self.ws.slots, self._warm_order(), prewarm=self.ws.prewarm,
                             on_trouble=lambda _reason: self._check_serving())

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        loaded = self.outbox.load()
        if loaded:
            logger.info("worker %s: %d unacknowledged task event(s) from the last run will be sent again",
                        self.worker_id, loaded)
        self._check_serving()
        self._resource_loop = asyncio.create_task(self._watch_resources(), name="worker-resources")
        await self.pool.start()

    async def drain(self, timeout_s: float, hurry: asyncio.Event | None = None) -> tuple[int, int]:
        """Stop taking tasks, let running ones finish for ``timeout_s`` (or until ``hurry`` is set), then hand the
        rest back as retryable failures. Returns (tasks finished meanwhile, tasks handed back)."""
        self._set_state(WorkerState.DRAINING, "shutting down: running tasks may finish, no new ones")
        before = self.stats["finished"]
        handed_back = 0
        if self.running:
            logger.info("worker %s: draining, waiting up to %.0fs for %d task(s)", self.worker_id, timeout_s,
                        len(self.running))
            waits = [asyncio.ensure_future(self._idle.wait())]
            if hurry is not None:
                waits.append(asyncio.ensure_future(hurry.wait()))
            await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()
            if self.running:
                handed_back = len(self.running)
                await asyncio.gather(*(self._stop(r, "the worker shut down before the task finished", True)
                                       for r in list(self.running.values())))
                await self._idle.wait()
        return self.stats["finished"] - before - handed_back, handed_back

    async def close(self) -> None:
        if self._resource_loop:
            self._resource_loop.cancel()
        for r in list(self.running.values()):
            await self._stop(r, "the worker is closing", True)
        await self.pool.close()
        for sub in list(self.subscribers):
            sub.push(None)

    # ----------------------------------------------------------------- requests
    async def submit(self, task: Task) -> tuple[bool, wpb.WorkerStatus]:
        """Start ``task``; returns (duplicate, status). Idempotent for the same id and attempt."""
        validate_task(task)
        current = self.running.get(task.id)
        if current is not None:
            if current.task.attempt == task.attempt:
                return True, self.status()
            raise TaskConflictError(f"task {task.id} attempt {current.task.attempt} is running here; cancel it "
                                    f"before sending attempt {task.attempt}")
        if task.key in self.finished:
            return True, self.status()
        if self.state is not WorkerState.SERVING:
            raise WorkerNotReadyError(f"worker {self.worker_id} is {self.state.value}: {self.state_reason}")
        if len(self.running) >= self.ws.slots:
            raise WorkerFullError(f"worker {self.worker_id} is full: {len(self.running)} of {self.ws.slots} slot(s) "
                                  "busy; try another worker or later")
        # From here to the first await nothing else runs, so the slot is ours.
        process = TaskProcess(self._job(task), lambda s, p, d: self._progress(task.id, s, p, d), self.pool)
        run = Running(task=task, task_pb=wire.task_to_pb(task), process=process, started_ms=int(time.time() * 1000))
        self.running[task.id] = run
        self._idle.clear()
        self.stats["accepted"] += 1
        logger.info("worker %s: task %s#%d accepted (%d source(s)), %d/%d slot(s) busy", self.worker_id, task.id,
                    task.attempt, len(task.spec.sources), len(self.running), self.ws.slots)
        self._changed()
        # On disk before the reply (a thread fsyncs it, grouped with any other accepted at the same time); a repeat
        # of this submit meanwhile finds the run above and is answered as a duplicate.
        await self._durable_event(task, accepted=pb.TaskAccepted(worker_id=self.worker_id))
        # Spawning takes milliseconds: do it after this reply, so the caller and the stream hear of the task first.
        run.waiter = asyncio.create_task(self._launch(run), name=f"task-{task.id}")
        return False, self.status()

    async def cancel(self, task_id: str, attempt: int, reason: str) -> int:
        """Cancel a running task (any attempt when ``attempt`` is 0); returns the attempt cancelled."""
        run = self.running.get(task_id)
        if run is None or (attempt and run.task.attempt != attempt):
            what = f"task {task_id}" + (f" attempt {attempt}" if attempt else "")
            raise NotFoundError(f"{what} is not running on worker {self.worker_id}")
        await self._stop(run, reason or "cancelled by request", False)
        if run.waiter:
            await asyncio.shield(run.waiter)
        return run.task.attempt

    def ack(self, seqs: list[int]) -> None:
        self.outbox.ack(seqs)

    def subscribe(self, peer: str) -> Subscriber:
        """A new status stream: it starts with a snapshot, then every unacknowledged event."""
        sub = Subscriber(peer)
        sub.push(wpb.StatusStreamMessage(status=self.status()))
        for event in self.outbox.pending():
            sub.push(wpb.StatusStreamMessage(event=event))
        self.subscribers.add(sub)
        logger.info("worker %s: status stream opened by %s (%d pending event(s))", self.worker_id, peer,
                    len(self.outbox))
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)
        logger.info("worker %s: status stream from %s closed", self.worker_id, sub.peer)

    # ----------------------------------------------------------------- status
    def status(self, *, fresh_resources: bool = False) -> wpb.WorkerStatus:
        if fresh_resources:
            self.resources = sample_resources(self.ws.work_dir)
        return wpb.WorkerStatus(
            worker_id=self.worker_id, state=wire.worker_state_pb(self.state), state_reason=self.state_reason,
            slots_total=self.ws.slots, slots_busy=len(self.running),
            tasks=[wpb.ActiveTask(task_id=r.task.id, attempt=r.task.attempt, state=wire.task_state_pb(r.state),
                                  stage=r.stage, percent=r.percent, started_unix_ms=r.started_ms,
                                  pid=r.process.pid) for r in self.running.values()],
            capabilities=wire.capabilities_to_pb(self.capabilities), resources=wire.resources_to_pb(self.resources),
            seq=self.seq, changed_unix_ns=self.changed_ns, sent_unix_ns=time.time_ns(),
            started_unix_ms=self.started_ms, boot_id=self.boot_id, labels=list(self.ws.labels),
        )

    def heartbeat(self) -> wpb.StatusStreamMessage:
        return wpb.StatusStreamMessage(heartbeat=wpb.Heartbeat(
            status_seq=self.seq, sent_unix_ns=time.time_ns(), state=wire.worker_state_pb(self.state),
            slots_busy=len(self.running)))

    # ----------------------------------------------------------------- internals
    def _options(self) -> str:
        options = options_from_settings(self.settings, machine=self.worker_id,
                                        nvenc_available=self.capabilities.nvenc)
        return base64.b64encode(pickle.dumps(options)).decode()

    def _job(self, task: Task) -> dict[str, Any]:
        return {"task": json_format.MessageToDict(wire.task_to_pb(task)), "log_level": self.settings.log_level,
                "options": self._options()}

    def _warm_order(self) -> dict[str, Any]:
        """What a fresh task process loads before its first task: the speech model these settings name."""
        return {"op": "warm", "log_level": self.settings.log_level, "options": self._options()}

    def _broadcast(self, msg: wpb.StatusStreamMessage) -> None:
        for sub in list(self.subscribers):
            if not sub.push(msg):
                logger.warning("worker %s: stream client %s fell %d messages behind; dropping it", self.worker_id,
                               sub.peer, _SUBSCRIBER_QUEUE)
                self.subscribers.discard(sub)

    def _changed(self) -> None:
        self.seq += 1
        self.changed_ns = time.time_ns()
        if self.subscribers:
            self._broadcast(wpb.StatusStreamMessage(status=self.status()))

    async def _durable_event(self, task: Task, **kind: Any) -> None:
        """``_event`` for the hot path: the fsync runs in a thread instead of on the event loop."""
        event = await self.outbox.put(pb.TaskEvent(task_id=task.id, attempt=task.attempt, at_unix_ns=time.time_ns(),
                                                   worker_id=self.worker_id, **kind))
        self._broadcast(wpb.StatusStreamMessage(event=event))

    def _event(self, task: Task, **kind: Any) -> None:
        event = self.outbox.add(pb.TaskEvent(task_id=task.id, attempt=task.attempt, at_unix_ns=time.time_ns(),
                                             worker_id=self.worker_id, **kind))
        self._broadcast(wpb.StatusStreamMessage(event=event))

    def _set_state(self, state: WorkerState, reason: str) -> None:
        if (state, reason) == (self.state, self.state_reason):
            return
        logger.info("worker %s: %s%s", self.worker_id, state.value, f" ({reason})" if reason else "")
        self.state, self.state_reason = state, reason
        self._changed()
        if self.on_state:
            self.on_state(state)

    def _progress(self, task_id: str, stage: str, percent: float, detail: str) -> None:
        run = self.running.get(task_id)
        if run is None:
            return
        run.stage, run.percent = stage, percent
        self._changed()
        self._event(run.task, progress=pb.TaskProgress(stage=stage, percent=percent, detail=detail))

    async def _launch(self, run: Running) -> None:
        try:
            await run.process.start()
        except OSError as exc:
            self._finish(run, Outcome("failed", code="TASK_CRASHED", retryable=True, stage="start",
                                      message=f"could not start the task's process: {exc}"))
            return
        if run.process.cancel_reason:  # cancelled while it was starting
            await run.process.cancel(run.process.cancel_reason, self.ws.cancel_grace_s)
        self._changed()  # the snapshot now carries the pid
        await self._follow(run)

    async def _follow(self, run: Running) -> None:
        try:
            outcome = await run.process.wait()
        except Exception as exc:  # never lose a slot to a bug in the follower
            logger.exception("worker %s: lost track of task %s", self.worker_id, run.task.id)
            outcome = Outcome("failed", code="INTERNAL", retryable=True, message=f"worker error: {exc}")
        self._finish(run, outcome)

    async def _stop(self, run: Running, reason: str, hand_back: bool) -> None:
        run.handed_back = hand_back
        await run.process.cancel(reason, self.ws.cancel_grace_s)

    def _finish(self, run: Running, outcome: Outcome) -> None:
        task = run.task
        if outcome.kind == "cancelled" and run.handed_back:
            outcome = Outcome("failed", code="INTERRUPTED", retryable=True, stage=outcome.stage,
                              message=f"{outcome.message}; it can run again on another worker")
        state = {"succeeded": TaskState.SUCCEEDED, "cancelled": TaskState.CANCELLED}.get(outcome.kind,
                                                                                         TaskState.FAILED)
        self.running.pop(task.id, None)
        self.finished[task.key] = state
        while len(self.finished) > _FINISHED_MEMORY:
            self.finished.popitem(last=False)
        self.stats["finished"] += 1
        self.stats[state.value.lower()] += 1
        if outcome.kind == "succeeded":
            logger.info("worker %s: task %s#%d succeeded", self.worker_id, task.id, task.attempt)
            self._event(task, succeeded=pb.TaskSucceeded(result=outcome.result))
        elif outcome.kind == "cancelled":
            logger.info("worker %s: task %s#%d cancelled: %s", self.worker_id, task.id, task.attempt, outcome.message)
            self._event(task, cancelled=pb.TaskCancelled(reason=outcome.message))
        else:
            logger.warning("worker %s: task %s#%d failed in %s [%s%s]: %s", self.worker_id, task.id, task.attempt,
                           outcome.stage or "?", outcome.code, ", retryable" if outcome.retryable else "",
                           outcome.message)
            self._event(task, failed=pb.TaskFailed(code=outcome.code, message=outcome.message,
                                                   retryable=outcome.retryable, stage=outcome.stage))
        if not self.running:
            self._idle.set()
        self._changed()

    def _check_serving(self) -> None:
        """NOT_SERVING while the disk is under its floor or task processes cannot be kept alive; else SERVING."""
        free, floor = self.resources.disk_free_bytes, self.ws.min_free_disk_bytes
        problem = (f"free disk {free / 1e9:.1f} GB under the {floor / 1e9:.1f} GB floor at {self.ws.work_dir}; "
                   "free some space") if free < floor else self.pool.trouble
        if problem and self.state in (WorkerState.SERVING, WorkerState.NOT_SERVING):
            self._set_state(WorkerState.NOT_SERVING, problem)
        elif not problem and self.state is WorkerState.NOT_SERVING:
            self._set_state(WorkerState.SERVING, "")

    async def _watch_resources(self) -> None:
        while True:
            await asyncio.sleep(self.ws.resource_interval_s)
            self.resources = await asyncio.to_thread(sample_resources, self.ws.work_dir)
            self._check_serving()
