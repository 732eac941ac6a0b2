"""The capped event stream: appending, recent history, following with blocking reads."""

from __future__ import annotations

import asyncio

from aicut.models import TaskRecord
from aicut.store import Store

from tests.store.conftest import StoreFactory


async def test_append_and_recent_events_oldest_first(store: Store) -> None:
    ids = [await store.append_event("worker", name=f"w{i}", state="ONLINE") for i in range(5)]
    recent = await store.recent_events(3)
    assert [event_id for event_id, _ in recent] == ids[-3:]
    assert [e["name"] for _, e in recent] == ["w2", "w3", "w4"]
    assert all(e["kind"] == "worker" and e["state"] == "ONLINE" and int(e["ts"]) > 0 for _, e in recent)


async def test_the_stream_is_capped(store_factory: StoreFactory) -> None:
    store = await store_factory(events_maxlen=100)
    for i in range(400):
        if i % 100 == 0:
            await store.create_task(TaskRecord(id=f"t{i}"))    # the scripts' XADDs are capped too
        else:
            await store.append_event("tick", i=str(i))
    length = await store.client.xlen(store.keys.events)
    # "MAXLEN ~" trims whole stream nodes (100 entries each by default): the length stays near the cap.
    assert 100 <= length <= 200
    assert (await store.recent_events(1))[0][1]["i"] == "399"


async def test_read_after_an_id_and_follow_without_gaps(store: Store) -> None:
    first = await store.append_event("a")
    second = await store.append_event("b")
    assert [e["kind"] for _, e in await store.read_events("0-0")] == ["a", "b"]
    assert [i for i, _ in await store.read_events(first)] == [second]
    assert await store.read_events(second) == []                 # nothing newer, no wait
    assert await store.read_events("$") == []                     # "$" without waiting: nothing is newer than now
    assert await store.last_event_id() == second
    assert len(await store.read_events("0-0", count=1)) == 1


async def test_a_blocking_read_wakes_on_the_next_event(store: Store) -> None:
    await store.append_event("before")
    reader = asyncio.create_task(store.read_events("$", block_ms=5_000))
    await asyncio.sleep(0.2)
    assert not reader.done()
    await store.append_event("monitoring", state="started")
    events = await asyncio.wait_for(reader, 5)
    assert [(e["kind"], e["state"]) for _, e in events] == [("monitoring", "started")]


async def test_last_event_id_of_an_empty_stream(store: Store) -> None:
    assert await store.last_event_id() == "0-0"
    assert await store.read_events(await store.last_event_id()) == []


async def test_a_blocking_read_times_out_empty(store: Store) -> None:
    last = await store.append_event("x")
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await store.read_events(last, block_ms=300) == []
    assert loop.time() - started >= 0.25


async def test_a_follower_sees_task_events_in_order(store: Store) -> None:
    last = await store.append_event("start")
    seen: list[str] = []

    async def follow() -> None:
        nonlocal last
        while len(seen) < 3:
            for event_id, event in await store.read_events(last, block_ms=2_000):
                last = event_id
                seen.append(event.get("id", event["kind"]))

    follower = asyncio.create_task(follow())
    for task_id in ("a", "b", "c"):
        await store.create_task(TaskRecord(id=task_id))
    await asyncio.wait_for(follower, 5)
    assert seen == ["a", "b", "c"]
