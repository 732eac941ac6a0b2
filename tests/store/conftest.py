"""A real Valkey server for the session, and a Store per test isolated by a unique key prefix."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from aicut.models import TaskRecord, TaskState
from aicut.store import EmbeddedValkey, Store, Transition

StoreFactory = Callable[..., Awaitable[Store]]


@pytest.fixture(scope="session")
def valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedValkey]:
    """One embedded Valkey (appendfsync always, the product default) shared by the session's tests."""
    server = EmbeddedValkey(tmp_path_factory.mktemp("valkey"))
    # The server is a plain child process, not bound to any event loop, so it can outlive each test's loop.
    asyncio.run(server.start())
    yield server
    asyncio.run(server.close())


@pytest.fixture
async def store_factory(valkey: EmbeddedValkey) -> AsyncIterator[StoreFactory]:
    """Makes Stores on the session server, each under its own prefix; purged and closed after the test."""
    made: list[Store] = []

    async def make(**kwargs: object) -> Store:
        kwargs.setdefault("prefix", f"t{uuid.uuid4().hex[:10]}:")
        store = await Store.connect(valkey.url, **kwargs)  # type: ignore[arg-type]
        made.append(store)
        return store

    yield make
    for store in made:
        await store.purge()
        await store.close()


@pytest.fixture
async def store(store_factory: StoreFactory) -> Store:
    """A Store with a unique prefix."""
    return await store_factory()


async def make_finished(store: Store, n: int, *, failed_every: int = 10, base_ms: int = 1_000_000) -> None:
    """Create ``n`` tasks t00000… with increasing created_ms and finish them, pipelined (fast for thousands).

    Every ``failed_every``-th one ends FAILED, the rest SUCCEEDED; all go through the real Lua scripts.
    """
    recs = [TaskRecord(id=f"t{i:05d}", created_ms=base_ms + i) for i in range(n)]
    assert await store.create_tasks(recs) == n
    changes = [
        Transition(r.id, 1, (TaskState.QUEUED,), TaskState.FAILED if i % failed_every == 0 else TaskState.SUCCEEDED)
        for i, r in enumerate(recs)
    ]
    results = await store.transition_many(changes)
    assert all(results)
