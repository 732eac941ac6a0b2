"""The event hub on its own: fan-out, slow clients, replay de-duplication, and stopping for sure."""

from __future__ import annotations

import asyncio
from typing import Any

from aicut.gateway.live import Hub, Message, Subscriber, already_sent, sse


class FakeStore:
    """An event stream in memory; ``swallow`` mimics redis-py 8 losing a cancel while it reads a reply."""

    def __init__(self, swallow: bool = False) -> None:
        self.entries: list[tuple[str, dict[str, str]]] = []
        self.swallow = swallow
        self.reads = 0

    async def last_event_id(self) -> str:
        return self.entries[-1][0] if self.entries else "0-0"

    async def read_events(self, last: str, *, block_ms: int = 0, count: int = 100) -> list[Any]:
        self.reads += 1
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            if not self.swallow:
                raise
        after = tuple(map(int, last.split("-")))
        return [(i, f) for i, f in self.entries if tuple(map(int, i.split("-"))) > after][:count]


def fleet(state: dict[str, Any]) -> Any:
    return lambda: (state["sig"], lambda: {"sig": state["sig"]})


async def drain(sub: Subscriber, n: int, timeout: float = 3.0) -> list[Message | None]:
    return [await asyncio.wait_for(sub.queue.get(), timeout) for _ in range(n)]


def test_sse_framing() -> None:
    assert sse('{"a":1}', event="machines") == b'event: machines\ndata: {"a":1}\n\n'
    assert sse("{}", event_id="5-1") == b"id: 5-1\ndata: {}\n\n"


async def test_stream_entries_and_fleet_changes_reach_every_subscriber_once() -> None:
    store, state = FakeStore(), {"sig": 1}
    hub = Hub(store, fleet(state), interval_s=0.02)   # type: ignore[arg-type]
    one, two = hub.subscribe(), hub.subscribe()
    await asyncio.sleep(0.1)
    store.entries.append(("7-0", {"kind": "worker", "worker": "a:1", "text": "online"}))
    state["sig"] = 2
    for sub in (one, two):
        got = await drain(sub, 2)
        bodies = sorted(m.body for m in got if m is not None)
        assert bodies[0].startswith(b"event: machines") and b'"sig":2' in bodies[0]
        assert bodies[1].startswith(b"id: 7-0\n") and b'"text":"online"' in bodies[1]
    await asyncio.sleep(0.1)
    assert one.queue.empty() and two.queue.empty()    # no change, nothing sent
    await hub.close()
    assert await one.queue.get() is None


async def test_the_last_subscriber_out_stops_the_reader_even_when_a_cancel_is_lost() -> None:
    store = FakeStore(swallow=True)
    hub = Hub(store, fleet({"sig": 0}), interval_s=0.02)   # type: ignore[arg-type]
    sub = hub.subscribe()
    tasks = list(hub._tasks)
    await asyncio.sleep(0.12)
    hub.unsubscribe(sub)
    await asyncio.wait(tasks, timeout=1.0)
    assert all(t.done() for t in tasks)
    reads = store.reads
    await asyncio.sleep(0.2)
    assert store.reads == reads


async def test_close_is_bounded_and_a_closed_hub_ends_new_streams_at_once() -> None:
    hub = Hub(FakeStore(swallow=True), fleet({"sig": 0}))   # type: ignore[arg-type]
    hub.subscribe()
    await asyncio.sleep(0.06)
    await asyncio.wait_for(hub.close(), 3)
    late = hub.subscribe()
    assert await late.queue.get() is None and not hub.subscribers


def test_a_client_that_falls_behind_is_ended_to_resume_later() -> None:
    sub = Subscriber(queue=asyncio.Queue(maxsize=3))
    assert all(sub.offer(Message(b"x")) for _ in range(3))
    assert not sub.offer(Message(b"y"))
    assert sub.queue.qsize() == 1 and sub.queue.get_nowait() is None


def test_replayed_entries_are_not_sent_twice() -> None:
    sub = Subscriber()
    sub.after = (10, 2)
    assert already_sent(sub, Message(b"", "10-2")) and already_sent(sub, Message(b"", "9-9"))
    assert not already_sent(sub, Message(b"", "10-3")) and not already_sent(sub, Message(b"machines"))
