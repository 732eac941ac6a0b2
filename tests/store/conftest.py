"""A real Valkey server for the session, and a Store per test isolated by a unique key prefix."""

from __future__ import annotations

from aicut.models import TaskRecord, TaskState
from aicut.store import Store, Transition
from tests.conftest import StoreFactory  # noqa: F401 — re-exported for the store tests


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
