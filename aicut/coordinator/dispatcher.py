"""The coordinator's engine: the ready queue → the best worker, worker events → task states, leases → re-queues.

Scheduling is event-driven: the loop runs when a task becomes ready (submitted, re-queued, a delayed retry falls
due) or when a worker's status could have freed capacity — never on a polling timer. The choice itself is the pure
``scheduler.choose_worker``; every state write goes through ``Store.transition``, guarded by the attempt number.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from typing import Any

import grpc
from google.protobuf import json_format

from aicut.config import WorkerEntry
from aicut.coordinator.fleet import Fleet, Member
from aicut.coordinator.links import LinkOptions, WorkerLink
from aicut.coordinator.scheduler import OutlierOptions, Outliers, choose_worker
from aicut.errors import InvalidTaskError, NotFoundError, RefusedError
from aicut.models import TaskRecord, TaskState, WorkerState, WorkerView
from aicut.store.tasks import QueuedTask, Store, Transition
from generated.aicut.v1 import common_pb2 as pb
from generated.aicut.v1 import worker_pb2 as wpb

logger = logging.getLogger(__name__)

ACTIVE = (TaskState.DISPATCHED, TaskState.RUNNING)
_REQUEUE_SAME_ATTEMPT = {  # the worker refused before starting: the attempt never ran, send it elsewhere
    grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.CANCELLED,
    grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.ALREADY_EXISTS,
}


@dataclass(frozen=True, slots=True)
class DispatchOptions:
    grace_s: float = 5.0              # a task its worker stopped reporting is re-queued after this long
    max_attempts: int = 4             # retryable failures and lost workers count; then FAILED for good
    retry_backoff_s: float = 2.0      # before attempt n+1: backoff × 2^(n-1), capped below
    retry_backoff_max_s: float = 60.0
    submit_timeout_s: float = 10.0
    batch: int = 200                  # ready tasks read per round
    sweep_interval_s: float = 1.0     # how often leases are checked (recovery only; dispatch never waits on it)
    progress_interval_s: float = 0.5  # progress written to Redis at most this often per task (stage changes: at once)


def retry_delay_s(attempt: int, options: DispatchOptions) -> float:
    """Backoff before the attempt after ``attempt``."""
    return min(options.retry_backoff_s * 2 ** max(0, attempt - 1), options.retry_backoff_max_s)


def free_slots(views: list[WorkerView], now: float) -> int:
    """Slots that could take a task now (an upper bound: capabilities are checked per task)."""
    return sum(max(0, v.slots - v.busy) for v in views
               if v.online and v.state is WorkerState.SERVING and not v.cordoned and now >= v.ejected_until)


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(slots=True)
class Claim:
    """The coordinator's belief that ``worker`` runs ``attempt`` of a task, last confirmed at ``seen``."""

    worker: str
    attempt: int
    seen: float


class Dispatcher:
    """Owns the fleet and the task lifecycle; the Coordinator servicer calls its public methods."""

    def __init__(self, store: Store, token: str, options: DispatchOptions = DispatchOptions(),
                 outliers: OutlierOptions = OutlierOptions(), link_options: LinkOptions = LinkOptions()) -> None:
        self.store = store
        self.options = options
        self.outliers = Outliers(outliers)
        self.fleet = Fleet(token, self, self.outliers, link_options)
        self.claims: dict[str, Claim] = {}
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._inflight: set[asyncio.Task[Any]] = set()
        self._cancelling: set[tuple[str, str, int]] = set()
        self._progress_at: dict[str, tuple[str, float]] = {}
        self._capacity: dict[str, tuple[int, int, bool]] = {}

    # ------------------------------------------------------------------ lifecycle
    async def start(self, workers: tuple[WorkerEntry, ...]) -> None:
        """Reload leases from Redis, connect to every worker, start the loop."""
        now = time.monotonic()
        for rec in await self.store.active_tasks():
            # Until its worker reports it (adopted) or the grace period ends (re-queued).
            self.claims[rec.id] = Claim(rec.worker, rec.attempt, now)
        if self.claims:
            logger.info("dispatcher: %d task(s) were running before the restart; waiting %.0fs for their workers",
                        len(self.claims), self.options.grace_s)
        await self.reconcile(workers)
        self._tasks = [asyncio.create_task(self._loop(), name="dispatch-loop"),
                       asyncio.create_task(self._sweep(), name="lease-sweeper")]
        self.wake()

    async def reconcile(self, workers: tuple[WorkerEntry, ...]) -> None:
        added, removed = await self.fleet.reconcile(workers)
        for address in added:
            member = self.fleet.get(address)
            if member is not None:  # DrainWorker survives a coordinator restart
                member.cordoned = await self.store.get_flag(f"cordon:{address}") == "1"
        if added or removed:
            logger.info("dispatcher: workers added %s, removed %s", added or "none", removed or "none")
            await self.store.append_event("workers", text=f"added {added}, removed {removed}")
        self.wake()

    async def close(self) -> None:
        pending = [*self._tasks, *self._inflight]
        for task in pending:
            task.cancel()
        if pending:
            # Bounded: a cancellation that lands while redis-py awaits a reply can be swallowed by it.
            await asyncio.wait(pending, timeout=5)
        await self.fleet.close()

    def wake(self) -> None:
        self._wake.set()

    # ------------------------------------------------------------------ operator requests
    async def submit(self, task: pb.Task, origin: str = "api") -> tuple[TaskRecord, bool]:
        """Queue ``task``; returns (record, created). An existing id returns the existing record."""
        if not task.id:
            raise InvalidTaskError("a task needs an id")
        if not task.spec.sources and not task.thread_url:
            raise InvalidTaskError(f"task {task.id} has no source to process and no forum thread to read one from")
        t = now_ms()
        rec = TaskRecord(id=task.id, attempt=1, task_json=json_format.MessageToJson(task, indent=None),
                         origin=origin, created_ms=t, updated_ms=t, queued_ms=t)
        created = await self.store.create_task(rec)
        if created:
            logger.info("task %s: queued (%s)", task.id, origin)
            self.wake()
            return rec, True
        existing = await self.store.get_task(task.id)
        assert existing is not None
        return existing, False

    async def reject(self, task: pb.Task, code: str, message: str, origin: str) -> tuple[TaskRecord, bool]:
        """Record ``task`` as FAILED at once (a request that cannot run, e.g. an unsupported forum category), so the
        operator sees it and its reason; returns (record, created). It is never dispatched: it is created with a ready
        time far ahead and failed in the same breath."""
        t = now_ms()
        rec = TaskRecord(id=task.id, attempt=1, task_json=json_format.MessageToJson(task, indent=None),
                         origin=origin, created_ms=t, updated_ms=t, queued_ms=t)
        if not await self.store.create_task(rec, ready_at_ms=t + 24 * 3600 * 1000):
            existing = await self.store.get_task(task.id)
            assert existing is not None
            return existing, False
        done = await self.store.transition(
            task.id, 1, (TaskState.QUEUED,), TaskState.FAILED, event=f"rejected: {code}",
            fields={"error_code": code, "error_message": message, "retryable": False})
        logger.info("task %s: rejected (%s)", task.id, code)
        return (done or rec), True

    async def get(self, task_id: str) -> TaskRecord:
        rec = await self.store.get_task(task_id)
        if rec is None:
            raise NotFoundError(f"no task {task_id!r}; `python -m aicut status` lists them")
        return rec

    async def cancel(self, task_id: str, reason: str) -> TaskRecord:
        for _ in range(3):  # the state may move between the read and the guarded write
            rec = await self.get(task_id)
            if rec.state.finished:
                raise RefusedError(f"task {task_id} is already {rec.state.value}")
            done = await self.store.transition(
                task_id, rec.attempt, (TaskState.QUEUED, *ACTIVE), TaskState.CANCELLED,
                fields={"error_message": reason or "cancelled by the operator", "finished_ms": now_ms()},
                event=reason or "cancelled")
            if done is None:
                continue
            self.claims.pop(task_id, None)
            member = self.fleet.get(rec.worker)
            if rec.state in ACTIVE and member is not None:
                member.pending.discard(task_id)
                self._cancel_on(member, task_id, rec.attempt, reason or "cancelled by the operator")
            return done
        raise RefusedError(f"task {task_id} kept changing state; try again")

    async def retry(self, task_id: str) -> TaskRecord:
        rec = await self.get(task_id)
        if rec.state not in (TaskState.FAILED, TaskState.CANCELLED):
            raise RefusedError(f"task {task_id} is {rec.state.value}; only FAILED or CANCELLED tasks can be retried")
        done = await self.store.transition(
            task_id, rec.attempt, (TaskState.FAILED, TaskState.CANCELLED), TaskState.QUEUED,
            new_attempt=rec.attempt + 1, fields=self._requeue_fields(rec, "retried by the operator"),
            event="retried by the operator")
        if done is None:
            raise RefusedError(f"task {task_id} changed state meanwhile; try again")
        self.wake()
        return done

    async def cordon(self, address: str, undo: bool) -> Member:
        member = self.fleet.get(address)
        if member is None:
            known = ", ".join(self.fleet.members) or "none"
            raise NotFoundError(f"no worker {address!r} in machines.yaml (known: {known})")
        member.cordoned = not undo
        await self.store.set_flag(f"cordon:{address}", "0" if undo else "1")
        await self.store.append_event("worker", worker=address, text="back in rotation" if undo else "draining")
        self.wake()
        return member

    # ------------------------------------------------------------------ dispatch loop
    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                delay = await self._dispatch_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("dispatcher: dispatch round failed; retrying in 1s")
                delay = 1.0
            if not self._wake.is_set():
                try:
                    await asyncio.wait_for(self._wake.wait(), delay)
                except asyncio.TimeoutError:
                    pass

    async def _dispatch_due(self) -> float | None:
        """Dispatch every due task a worker can take; returns seconds until the next delayed task falls due.

        Choices for a whole batch are made in memory (each one counting the ones before it), then written in one
        pipelined round of guarded transitions, then sent concurrently.
        """
        while True:
            t = now_ms()
            now = time.monotonic()
            views = self.fleet.views(now)
            free = free_slots(views, now)
            if not free:
                # Nothing can take a task: don't read the queue. A status change wakes us, or an ejection's end.
                release = self.outliers.next_release()
                return None if release is None else max(0.05, release - now)
            ids = await self.store.due_tasks(t, min(self.options.batch, free))
            if not ids:
                nxt = await self.store.next_due_ms()
                return None if nxt is None else max(0.0, (nxt - now_ms()) / 1000)
            chosen: list[tuple[QueuedTask, str]] = []
            full = False
            for rec in await self.store.queued_tasks(ids):
                choice = choose_worker(views, now)
                if choice is None:
                    full = True
                    break
                chosen.append((rec, choice.name))
                views = [v if v.name != choice.name else replace(v, busy=v.busy + 1, last_dispatch=now)
                         for v in views]
            applied = await self.store.transition_many([
                Transition(rec.id, rec.attempt, (TaskState.QUEUED,), TaskState.DISPATCHED,
                           fields={"worker": worker, "dispatched_ms": t, "stage": "", "percent": 0.0},
                           event=f"to {worker}") for rec, worker in chosen])
            for (rec, worker), ok in zip(chosen, applied):
                member = self.fleet.get(worker)
                if not ok or member is None:
                    continue
                member.pending.add(rec.id)
                member.last_dispatch = now
                member.dispatched += 1
                self.claims[rec.id] = Claim(worker, rec.attempt, now)
                self._spawn(self._send(member, rec))
            if full:
                # Every worker is full or out: a status change wakes us, or the end of an ejection.
                release = self.outliers.next_release()
                return None if release is None else max(0.05, release - now)

    async def _send(self, member: Member, rec: QueuedTask) -> None:
        task = json_format.Parse(rec.task_json, pb.Task())
        task.attempt = rec.attempt
        try:
            await member.link.submit(task, self.options.submit_timeout_s)
            return
        except grpc.aio.AioRpcError as exc:
            code, details = exc.code(), exc.details() or ""
        member.pending.discard(rec.id)
        self.claims.pop(rec.id, None)
        member.link.last_error = f"SubmitTask: {code.name}: {details}"
        if code == grpc.StatusCode.ALREADY_EXISTS:
            # It still runs an older attempt of this task: that one is stale now.
            self._cancel_on(member, rec.id, 0, "superseded by a newer attempt")
        if code in _REQUEUE_SAME_ATTEMPT:
            logger.info("task %s#%d: %s refused it (%s: %s); back to the queue", rec.id, rec.attempt,
                        member.entry.address, code.name, details)
            await self.store.transition(rec.id, rec.attempt, (TaskState.DISPATCHED,), TaskState.QUEUED,
                                        fields={"worker": ""}, ready_at_ms=now_ms() + (
                                            1000 if code == grpc.StatusCode.ALREADY_EXISTS else 0),
                                        event=f"{member.entry.address} refused: {code.name}", want_record=False)
        else:
            await self.store.transition(rec.id, rec.attempt, (TaskState.DISPATCHED,), TaskState.FAILED,
                                        fields={"error_code": code.name, "error_message": details,
                                                "retryable": False, "finished_ms": now_ms()},
                                        event=f"refused: {details}", want_record=False)
        self.wake()

    # ------------------------------------------------------------------ link events (LinkHandler)
    def on_online(self, link: WorkerLink) -> None:
        self._spawn(self.store.append_event("worker", worker=link.address, text="online"))
        self.wake()

    def on_offline(self, link: WorkerLink, reason: str) -> None:
        member = self.fleet.get(link.address)
        if member is not None:
            # Dispatches in flight to it will fail or be re-queued by the sweeper; nothing is reserved any more.
            member.pending.clear()
        self._capacity.pop(link.address, None)
        self._spawn(self.store.append_event("worker", worker=link.address, text=f"offline: {reason}"))

    def on_status(self, link: WorkerLink, status: wpb.WorkerStatus) -> None:
        member = self.fleet.get(link.address)
        if member is None:
            return
        now = time.monotonic()
        reported = {(t.task_id, t.attempt) for t in status.tasks}
        member.pending -= {task_id for task_id, _ in reported}
        for task_id, attempt in reported:
            claim = self.claims.get(task_id)
            if claim is not None and claim.worker == link.address and claim.attempt == attempt:
                claim.seen = now  # adopted / still alive
            else:
                self._cancel_on(member, task_id, attempt, "this attempt was superseded or the task is finished")
        key = (member.busy(), status.state, link.online)
        before = self._capacity.get(link.address)
        self._capacity[link.address] = key
        if before is None or key[0] < before[0] or key[1:] != before[1:]:
            self.wake()

    async def on_event(self, link: WorkerLink, event: pb.TaskEvent) -> None:
        kind = event.WhichOneof("event")
        member = self.fleet.get(link.address)
        if kind == "progress":
            await self._progress(event)
            return
        if member is not None:
            member.pending.discard(event.task_id)
        if kind == "accepted":
            claim = self.claims.get(event.task_id)
            if claim is not None and claim.attempt == event.attempt:
                claim.seen = time.monotonic()
            await self.store.transition(event.task_id, event.attempt, (TaskState.DISPATCHED,), TaskState.RUNNING,
                                        fields={"started_ms": event.at_unix_ns // 1_000_000},
                                        event=f"running on {link.address}", want_record=False)
            return
        self._release_claim(event.task_id, event.attempt)
        if kind == "succeeded":
            done = await self.store.transition(
                event.task_id, event.attempt, ACTIVE, TaskState.SUCCEEDED,
                fields={"result_json": json_format.MessageToJson(event.succeeded.result, indent=None),
                        "finished_ms": event.at_unix_ns // 1_000_000, "stage": "done", "percent": 100.0,
                        "error_code": "", "error_message": "", "retryable": False},
                event=f"succeeded on {link.address}", want_record=False)
            if done:
                self._record(link.address, ok=True)
                if member:
                    member.succeeded += 1
        elif kind == "failed":
            await self._failed(link.address, member, event)
        elif kind == "cancelled":
            await self.store.transition(event.task_id, event.attempt, ACTIVE, TaskState.CANCELLED,
                                        fields={"error_message": event.cancelled.reason,
                                                "finished_ms": event.at_unix_ns // 1_000_000},
                                        event=f"cancelled on {link.address}", want_record=False)
        self.wake()

    # ------------------------------------------------------------------ internals
    async def _progress(self, event: pb.TaskEvent) -> None:
        claim = self.claims.get(event.task_id)
        if claim is not None and claim.attempt == event.attempt:
            claim.seen = time.monotonic()
        stage, percent = event.progress.stage, event.progress.percent
        last = self._progress_at.get(event.task_id)
        now = time.monotonic()
        if last is not None and last[0] == stage and now - last[1] < self.options.progress_interval_s:
            return
        self._progress_at[event.task_id] = (stage, now)
        await self.store.update_progress(event.task_id, event.attempt, stage, percent)

    async def _failed(self, address: str, member: Member | None, event: pb.TaskEvent) -> None:
        f = event.failed
        rec = await self.store.get_task(event.task_id)
        if rec is None or rec.attempt != event.attempt or rec.state not in ACTIVE:
            return  # a late report from an old attempt
        if f.retryable:
            self._record(address, ok=False)
        if member:
            member.failed += 1
        line = f"{event.attempt} {address} FAILED {f.code}: {f.message}"
        if f.retryable and event.attempt < self.options.max_attempts:
            delay = retry_delay_s(event.attempt, self.options)
            logger.info("task %s#%d failed on %s [%s], retrying in %.0fs: %s", event.task_id, event.attempt,
                        address, f.code, delay, f.message)
            await self.store.transition(event.task_id, event.attempt, ACTIVE, TaskState.QUEUED,
                                        new_attempt=event.attempt + 1, ready_at_ms=now_ms() + int(delay * 1000),
                                        fields={**self._requeue_fields(rec, line), "error_code": f.code,
                                                "error_message": f.message, "retryable": True},
                                        event=f"failed on {address} ({f.code}); retry {event.attempt + 1}",
                                        want_record=False)
        else:
            why = f.message if not f.retryable else f"{f.message} (gave up after {event.attempt} attempts)"
            logger.warning("task %s#%d failed for good on %s [%s]: %s", event.task_id, event.attempt, address,
                           f.code, why)
            await self.store.transition(event.task_id, event.attempt, ACTIVE, TaskState.FAILED,
                                        fields={"error_code": f.code, "error_message": why,
                                                "retryable": f.retryable, "history": self._history(rec, line),
                                                "finished_ms": event.at_unix_ns // 1_000_000},
                                        event=f"failed on {address}: {f.code}", want_record=False)

    @staticmethod
    def _history(rec: TaskRecord, line: str) -> str:
        return f"{rec.history}\n{line}".strip()

    def _requeue_fields(self, rec: TaskRecord, line: str) -> dict[str, Any]:
        return {"worker": "", "stage": "", "percent": 0.0, "queued_ms": now_ms(), "dispatched_ms": 0,
                "started_ms": 0, "finished_ms": 0, "history": self._history(rec, line)}

    def _record(self, address: str, ok: bool) -> None:
        ejected = self.outliers.record(address, ok, time.monotonic(), total_workers=len(self.fleet.members))
        if ejected:
            until = self.outliers.ejected_until(ejected) - time.monotonic()
            logger.warning("worker %s: ejected for %.0fs after repeated failures", ejected, until)
            self._spawn(self.store.append_event("worker", worker=ejected, text=f"ejected for {until:.0f}s"))

    def _release_claim(self, task_id: str, attempt: int) -> None:
        claim = self.claims.get(task_id)
        if claim is not None and claim.attempt == attempt:
            del self.claims[task_id]
        self._progress_at.pop(task_id, None)

    def _cancel_on(self, member: Member, task_id: str, attempt: int, reason: str) -> None:
        key = (member.entry.address, task_id, attempt)
        if key in self._cancelling:
            return
        self._cancelling.add(key)
        logger.info("task %s#%s: cancelling it on %s (%s)", task_id, attempt or "*", member.entry.address, reason)

        async def cancel() -> None:
            try:
                await member.link.cancel(task_id, attempt, reason, timeout=10)
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.NOT_FOUND:
                    logger.warning("task %s: cancel on %s failed: %s", task_id, member.entry.address, exc.details())
            finally:
                self._cancelling.discard(key)

        self._spawn(cancel())

    def _spawn(self, coro: Any) -> None:
        job = asyncio.ensure_future(coro)
        self._inflight.add(job)
        job.add_done_callback(self._inflight.discard)

    async def _sweep(self) -> None:
        """Re-queue tasks whose worker stopped reporting them for longer than the grace period."""
        while True:
            await asyncio.sleep(self.options.sweep_interval_s)
            try:
                await self._expire_leases(time.monotonic())
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("dispatcher: lease sweep failed")

    async def _expire_leases(self, now: float) -> None:
        for task_id, claim in list(self.claims.items()):
            member = self.fleet.get(claim.worker)
            if member is not None and member.link.online and (task_id in member.reported()
                                                              or task_id in member.pending):
                claim.seen = now
                continue
            if now - claim.seen < self.options.grace_s:
                continue
            rec = await self.store.get_task(task_id)
            self.claims.pop(task_id, None)
            if rec is None or rec.attempt != claim.attempt or rec.state not in ACTIVE:
                continue
            state = "offline" if member is None or not member.link.online else "no longer reporting it"
            line = f"{claim.attempt} {claim.worker} LOST: worker {state} for {self.options.grace_s:.0f}s"
            self._record(claim.worker, ok=False)
            if claim.attempt < self.options.max_attempts:
                logger.warning("task %s#%d: %s; re-queued as attempt %d", task_id, claim.attempt, line,
                               claim.attempt + 1)
                await self.store.transition(task_id, claim.attempt, ACTIVE, TaskState.QUEUED,
                                            new_attempt=claim.attempt + 1,
                                            fields={**self._requeue_fields(rec, line), "error_code": "WORKER_LOST",
                                                    "error_message": line, "retryable": True},
                                            event=f"lost on {claim.worker}; attempt {claim.attempt + 1}",
                                            want_record=False)
            else:
                await self.store.transition(task_id, claim.attempt, ACTIVE, TaskState.FAILED,
                                            fields={"error_code": "WORKER_LOST", "retryable": True,
                                                    "error_message": f"lost on {claim.attempt} workers; last: {line}",
                                                    "history": self._history(rec, line), "finished_ms": now_ms()},
                                            event="lost too often", want_record=False)
            self.wake()
