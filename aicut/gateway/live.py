"""Server-sent events for every browser from one reader: the Redis event stream and the fleet's changes.

One follower task reads the store's event stream (a blocking read, continuing from the last id it saw) and one
watcher samples the fleet a few times a second and builds a ``machines`` message only when what the dashboard shows
has changed. Each message is encoded once and queued to every subscriber. Both tasks run only while someone listens.

Both loops also stop on a run number, not only on cancellation: redis-py 8's asyncio client can lose a cancel that
arrives while a command's reply is being read (the command then returns normally), so a loop that relied on
``CancelledError`` alone could outlive its hub.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aicut.errors import AicutError
from aicut.gateway.views import event_order, event_view
from aicut.store.tasks import Store

logger = logging.getLogger(__name__)

READ_BLOCK_MS = 5_000
READ_COUNT = 200


def sse(data: str, *, event: str = "", event_id: str = "") -> bytes:
    """One server-sent event; ``data`` is a single line of JSON."""
    head = (f"event: {event}\n" if event else "") + (f"id: {event_id}\n" if event_id else "")
    return f"{head}data: {data}\n\n".encode()


def dumps(payload: Any) -> str:
    """Compact JSON on one line (SSE data and HTTP bodies alike)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


@dataclass(eq=False, slots=True)
class Message:
    """An encoded event and, for stream entries, its id (to skip what a subscriber already replayed)."""

    body: bytes
    entry_id: str = ""


@dataclass(eq=False, slots=True)
class Subscriber:
    """One browser's queue. ``None`` in the queue ends its stream (shutdown, or it fell too far behind)."""

    queue: asyncio.Queue[Message | None] = field(default_factory=lambda: asyncio.Queue(maxsize=1000))
    after: tuple[int, int] = (0, 0)   # stream entries at or before this id were already sent

    def offer(self, message: Message | None) -> bool:
        """Queue ``message``; False (and the stream ends) when the browser cannot keep up."""
        try:
            self.queue.put_nowait(message)
            return True
        except asyncio.QueueFull:
            while not self.queue.empty():   # it reconnects with Last-Event-ID and replays from Redis
                self.queue.get_nowait()
            self.queue.put_nowait(None)
            return False


class Hub:
    """Fans the event stream and fleet changes out to every subscriber."""

    def __init__(self, store: Store, machines: Callable[[], tuple[Any, Callable[[], Any]]], *,
                 redact: Callable[[str], str] = lambda s: s, interval_s: float = 0.25) -> None:
        self.store = store
        self.machines = machines   # () -> (signature, payload builder): built and sent when the signature changes
        self.redact = redact
        self.interval_s = interval_s
        self.subscribers: set[Subscriber] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._run = 0                     # the background tasks of an older run stop at their next turn
        self._closed = False

    def subscribe(self) -> Subscriber:
        """A new subscriber; starts the reader and the watcher if they are not running."""
        sub = Subscriber()
        if self._closed:
            sub.offer(None)
            return sub
        self.subscribers.add(sub)
        if not self._tasks:
            # The newcomer is sent the fleet as it is now: the watcher reports changes from here on.
            self._run += 1
            self._tasks = [asyncio.create_task(self._follow(self._run), name="gateway-events"),
                           asyncio.create_task(self._watch(self._run, self.machines()[0]), name="gateway-machines")]
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        """Forget ``sub``; the last one out stops the background tasks."""
        self.subscribers.discard(sub)
        if not self.subscribers:
            self._stop()

    def _stop(self) -> list[asyncio.Task[None]]:
        self._run += 1
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        return tasks

    def _current(self, run: int) -> bool:
        return run == self._run and not self._closed

    def machines_message(self) -> bytes:
        """The fleet as one ``machines`` event, now."""
        return sse(self.redact(dumps(self.machines()[1]())), event="machines")

    def entry_message(self, entry_id: str, fields: dict[str, str]) -> Message:
        """A stream entry as a default (``message``) event with its id, so EventSource can resume after it."""
        return Message(sse(self.redact(dumps(event_view(entry_id, fields))), event_id=entry_id), entry_id)

    async def close(self) -> None:
        """End every stream and stop the background tasks."""
        self._closed = True
        for sub in list(self.subscribers):
            sub.offer(None)
        self.subscribers.clear()
        tasks = self._stop()
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)   # bounded: see the module docstring

    def _broadcast(self, message: Message) -> None:
        for sub in list(self.subscribers):
            if not sub.offer(message):
                logger.info("gateway: an event-stream client fell behind; its stream was ended to resume later")
                self.subscribers.discard(sub)

    async def _follow(self, run: int) -> None:
        last = ""
        while self._current(run):
            try:
                if not last:
                    last = await self.store.last_event_id()
                entries = await self.store.read_events(last, block_ms=READ_BLOCK_MS, count=READ_COUNT)
            except asyncio.CancelledError:
                raise
            except AicutError as exc:
                logger.warning("gateway: reading the event stream failed (%s); retrying in 1s", exc.message)
                await asyncio.sleep(1.0)
                continue
            if not self._current(run):
                return
            for entry_id, fields in entries:
                last = entry_id
                self._broadcast(self.entry_message(entry_id, fields))

    async def _watch(self, run: int, previous: Any) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            if not self._current(run):
                return
            try:
                signature, build = self.machines()
                if signature != previous:
                    previous = signature
                    self._broadcast(Message(sse(self.redact(dumps(build())), event="machines")))
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug here must not stop live updates for good
                logger.exception("gateway: sampling the fleet failed")


def already_sent(sub: Subscriber, message: Message) -> bool:
    """Whether ``message`` is a stream entry the subscriber got in its replay."""
    return bool(message.entry_id) and event_order(message.entry_id) <= sub.after
