"""The dispatcher's small pure decisions: how many tasks to read, how long to wait before a retry."""

from __future__ import annotations

from aicut.coordinator.dispatcher import DispatchOptions, free_slots, retry_delay_s
from aicut.models import WorkerState, WorkerView


def view(name: str, slots: int = 2, busy: int = 0, **kw: object) -> WorkerView:
    base = {"online": True, "state": WorkerState.SERVING}
    return WorkerView(name=name, slots=slots, busy=busy, **{**base, **kw})  # type: ignore[arg-type]


def test_free_slots_count_only_workers_that_could_take_a_task() -> None:
    views = [view("a", 2, 0), view("b", 4, 3), view("c", 1, 1), view("d", 3, 0, online=False),
             view("e", 3, 0, state=WorkerState.DRAINING), view("f", 3, 0, cordoned=True),
             view("g", 3, 0, ejected_until=100.0), view("h", 2, 5)]
    assert free_slots(views, now=50.0) == 2 + 1
    assert free_slots(views, now=100.0) == 2 + 1 + 3      # g's ejection is over
    assert free_slots([], now=0.0) == 0


def test_retry_backoff_doubles_and_is_capped() -> None:
    o = DispatchOptions(retry_backoff_s=2.0, retry_backoff_max_s=60.0)
    assert [retry_delay_s(n, o) for n in (1, 2, 3, 4, 5, 6, 7)] == [2, 4, 8, 16, 32, 60, 60]
