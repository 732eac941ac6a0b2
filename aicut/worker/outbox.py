"""Task events the coordinator has not acknowledged yet: kept in memory and in a small file, sent after a reconnect.

Progress events are coalesced (only the newest per task attempt is kept, and only in memory: the next snapshot says
the same); every other event — accepted, succeeded, failed, cancelled — is written to the file and fsynced before it
is sent, so a result produced while the link was down survives a worker restart as well.

Two ways in, with the same guarantee:

- ``await put(event)`` (on the event loop): numbers and keeps the event at once, then returns when a save that holds
  it has been fsynced. The file is written by a thread, so the loop never waits on the disk; saves are group
  commits: every event kept while one save runs goes to disk in the next one, with one fsync for all of them.
- ``add(event)``: the same, synchronously: the fsync runs on the caller's thread (the loop, when called from it).

``ack`` rewrites the file without fsync (an acknowledgement lost in a crash only means the event is sent once more,
which the coordinator ignores): at once, or with the next group commit when one is running. Every save is a complete
snapshot with a version; a save never replaces a newer snapshot on disk, whichever thread gets there first.
Subclasses that keep no file (benchmarks) override ``_save`` (the synchronous saves) and ``_write`` (all of them).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import threading
import time
from pathlib import Path

from generated.aicut.v1 import common_pb2 as pb

logger = logging.getLogger(__name__)


class Outbox:
    """Unacknowledged task events, numbered by ``seq`` across restarts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._events: dict[int, pb.TaskEvent] = {}
        self._next_seq = 1
        self._version = 0                  # of the newest snapshot taken
        self._disk_version = 0             # of the snapshot in the file (guarded by _lock)
        self._disk_synced = True           # whether that snapshot was fsynced
        self._lock = threading.Lock()
        self._dirty = False                # a save is wanted
        self._dirty_durable = False        # … and it must be fsynced
        self._waiters: list[asyncio.Future[None]] = []
        self._writer: asyncio.Task[None] | None = None

    def load(self) -> int:
        """Read events left by an earlier run; returns how many."""
        if not self.path.is_file():
            return 0
        try:
            doc = json.loads(self.path.read_text())
            self._next_seq = max(int(doc.get("next_seq", 1)), self._next_seq)
            for raw in doc.get("events", ()):
                ev = pb.TaskEvent.FromString(base64.b64decode(raw))
                self._events[ev.seq] = ev
        except (ValueError, KeyError, TypeError) as exc:
            # A torn file must not stop the worker; the coordinator's lease recovers what was lost.
            logger.error("outbox %s is unreadable (%s); starting empty", self.path, exc)
            broken = self.path.with_suffix(f".broken-{int(time.time())}")
            self.path.rename(broken)
        return len(self._events)

    def add(self, event: pb.TaskEvent) -> pb.TaskEvent:
        """Number the event, keep it until acknowledged, and return it; a non-progress event is on disk (fsynced)
        when this returns. Blocks on the disk: on the event loop, prefer ``put``."""
        if self._keep(event):
            self._save(durable=True)
        return event

    async def put(self, event: pb.TaskEvent) -> pb.TaskEvent:
        """``add`` without blocking the loop: the event is numbered and kept at once (so seqs follow the call order),
        and this returns once a non-progress event is on disk (fsynced by a thread). Send it only after that."""
        if self._keep(event):
            await self._save_later(durable=True)
        return event

    def ack(self, seqs: list[int] | tuple[int, ...]) -> int:
        """Forget acknowledged events; returns how many were removed."""
        removed = [e for e in (self._events.pop(s, None) for s in seqs) if e is not None]
        if any(e.WhichOneof("event") != "progress" for e in removed):
            # No fsync: an acknowledgement lost in a crash only means the event is sent once more, which the
            # coordinator ignores; an fsync per ack would stall the event loop dozens of times a second.
            if self._writer is None:
                self._save(durable=False)     # no save runs in a thread: the lock is free, this is quick
            else:
                self._request_save(durable=False, wait=False)   # the running group commit takes it next
        return len(removed)

    def pending(self) -> list[pb.TaskEvent]:
        return [self._events[s] for s in sorted(self._events)]

    def __len__(self) -> int:
        return len(self._events)

    async def flush(self) -> None:
        """Wait until every save asked for so far is in the file (before a clean exit)."""
        if self._dirty or self._writer is not None:
            await self._save_later(durable=False)

    # ------------------------------------------------------------------ internals
    def _keep(self, event: pb.TaskEvent) -> bool:
        """Number and keep ``event``; whether it must be made durable (every kind but progress)."""
        event.seq = self._next_seq
        self._next_seq += 1
        if event.WhichOneof("event") != "progress":
            self._events[event.seq] = event
            return True
        for seq in [s for s, e in self._events.items() if e.WhichOneof("event") == "progress"
                    and e.task_id == event.task_id and e.attempt == event.attempt]:
            del self._events[seq]
        self._events[event.seq] = event
        return False

    def _snapshot(self) -> tuple[int, bytes]:
        """The file's next content, taken on the caller's thread (the loop owns ``_events``), and its version."""
        self._version += 1
        durable = [e for e in self.pending() if e.WhichOneof("event") != "progress"]
        doc = {"next_seq": self._next_seq,
               "events": [base64.b64encode(e.SerializeToString()).decode() for e in durable]}
        return self._version, json.dumps(doc).encode()

    def _save(self, durable: bool = True) -> None:
        """A save on the caller's thread."""
        version, data = self._snapshot()
        self._write(version, data, durable)

    def _request_save(self, durable: bool, wait: bool = True) -> asyncio.Future[None] | None:
        """Ask the writer task for a save (its snapshot is taken when it starts); with ``wait``, a future that is done
        once that save is in the file."""
        waiter: asyncio.Future[None] | None = None
        if wait:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
        self._dirty = True
        self._dirty_durable = self._dirty_durable or durable
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_behind(), name=f"outbox-{self.path.name}")
        return waiter

    async def _save_later(self, durable: bool) -> None:
        waiter = self._request_save(durable)
        assert waiter is not None
        await asyncio.shield(waiter)

    async def _write_behind(self) -> None:
        """Group commit: each round writes one snapshot holding everything kept so far, in a thread, and wakes
        the callers that asked before it was taken."""
        try:
            while self._dirty:
                waiters, self._waiters = self._waiters, []
                durable, self._dirty, self._dirty_durable = self._dirty_durable, False, False
                version, data = self._snapshot()
                try:
                    await asyncio.to_thread(self._write, version, data, durable)
                except Exception as exc:
                    logger.error("outbox %s: save failed: %s", self.path, exc)
                    _settle(waiters, exc)
                else:
                    _settle(waiters, None)
        finally:
            self._writer = None
            if self._waiters:  # cancelled with callers still waiting: a later call starts a new writer
                self._dirty = True

    def _write(self, version: int, data: bytes, durable: bool) -> None:
        """Put snapshot ``version`` in the file, fsynced when ``durable``; any thread. A newer snapshot already in
        the file holds every unacknowledged event of this one: then this only makes sure it is fsynced."""
        with self._lock:
            if version < self._disk_version:
                if durable and not self._disk_synced:
                    _fsync_path(self.path)
                    self._disk_synced = True
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            with open(tmp, "wb") as fh:
                fh.write(data)
                if durable:
                    fh.flush()
                    os.fsync(fh.fileno())
            os.replace(tmp, self.path)
            self._disk_version, self._disk_synced = version, durable


def _settle(waiters: list[asyncio.Future[None]], exc: BaseException | None) -> None:
    for waiter in waiters:
        if waiter.done():
            continue
        if exc is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(exc)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
