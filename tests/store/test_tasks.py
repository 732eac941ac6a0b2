"""Tasks in a real Valkey: creation, guarded transitions, the ready queue, listing, progress."""

from __future__ import annotations

import time

import pytest

from aicut.errors import StoreError
from aicut.models import TaskRecord, TaskState
from aicut.store import Store, Transition, now_ms

from tests.store.conftest import make_finished

Q, D, R, OK, FAIL, X = (TaskState.QUEUED, TaskState.DISPATCHED, TaskState.RUNNING, TaskState.SUCCEEDED,
                        TaskState.FAILED, TaskState.CANCELLED)


async def running(store: Store, task_id: str = "a", worker: str = "w1") -> TaskRecord:
    """A task created and taken to RUNNING on ``worker`` at attempt 1."""
    assert await store.create_task(TaskRecord(id=task_id, task_json='{"id": "%s"}' % task_id))
    assert await store.transition(task_id, 1, [Q], D, fields={"worker": worker})
    rec = await store.transition(task_id, 1, [D], R)
    assert rec is not None
    return rec


async def test_create_is_idempotent_by_id(store: Store) -> None:
    before = now_ms()
    assert await store.create_task(TaskRecord(id="a", task_json="first", origin="forum", state=FAIL)) is True
    assert await store.create_task(TaskRecord(id="a", task_json="second")) is False
    rec = await store.get_task("a")
    assert rec is not None
    assert (rec.task_json, rec.origin, rec.state, rec.attempt) == ("first", "forum", Q, 1)
    assert rec.created_ms >= before and rec.queued_ms == rec.created_ms == rec.updated_ms
    assert await store.due_tasks(now_ms()) == ["a"]
    assert (await store.count_by_state())[Q] == 1
    assert await store.counters() == {"created": 1, "to:QUEUED": 1}
    events = await store.recent_events()
    assert [(e["kind"], e["id"], e["to"], e["event"]) for _, e in events] == [("task", "a", "QUEUED", "created")]


async def test_get_tasks_keeps_order_and_skips_missing(store: Store) -> None:
    for task_id in "abc":
        await store.create_task(TaskRecord(id=task_id))
    assert [r.id for r in await store.get_tasks(["c", "nope", "a"])] == ["c", "a"]
    assert await store.get_tasks([]) == []
    assert await store.get_task("nope") is None


async def test_transition_moves_state_indexes_stamps_and_logs(store: Store) -> None:
    rec = await running(store)
    assert rec.state == R and rec.worker == "w1" and rec.dispatched_ms and rec.started_ms
    assert await store.due_tasks(now_ms()) == []              # not ready any more once dispatched
    done = await store.transition("a", 1, [R], OK, fields={"result_json": '{"outputs": []}', "percent": 100.0},
                                  event="finished")
    assert done is not None and done.state == OK and done.finished_ms >= done.started_ms
    assert done.result_json == '{"outputs": []}' and done.percent == 100.0
    counts = await store.count_by_state()
    assert counts[OK] == 1 and sum(counts.values()) == 1
    assert (await store.counters())["to:SUCCEEDED"] == 1
    last = (await store.recent_events(1))[0][1]
    assert {k: last[k] for k in ("kind", "id", "attempt", "from", "to", "worker", "event")} == {
        "kind": "task", "id": "a", "attempt": "1", "from": "RUNNING", "to": "SUCCEEDED", "worker": "w1",
        "event": "finished"}


async def test_guard_refuses_wrong_attempt_wrong_state_and_missing_task(store: Store) -> None:
    await running(store)
    before = await store.get_task("a")
    events_before = await store.recent_events()
    assert await store.transition("a", 2, [R], OK) is None          # no such attempt yet
    assert await store.transition("a", 1, [Q, D], OK) is None       # not in an allowed state
    assert await store.transition("nope", 1, [Q], D) is None
    assert await store.get_task("a") == before
    assert await store.recent_events() == events_before
    assert "to:SUCCEEDED" not in await store.counters()
    with pytest.raises(ValueError):
        await store.transition("a", 1, [], OK)
    with pytest.raises(ValueError):
        await store.transition("a", 1, [R], OK, fields={"state": "FAILED"})


async def test_a_late_report_from_an_old_attempt_never_overwrites_the_new_one(store: Store) -> None:
    await running(store, worker="w1")
    # w1 goes offline: the coordinator re-queues the task as attempt 2, and w2 takes it.
    requeued = await store.transition("a", 1, [D, R], Q, new_attempt=2,
                                      fields={"worker": "", "history": "1 w1 FAILED WORKER_LOST"}, event="lost")
    assert requeued is not None and requeued.attempt == 2 and requeued.worker == ""
    assert await store.transition("a", 2, [Q], D, fields={"worker": "w2"})
    assert await store.transition("a", 2, [D], R)
    assert await store.update_progress("a", 2, "render", 40.0)
    current = await store.get_task("a")
    # w1 comes back and reports attempt 1 as finished, then as progressing: both are refused, nothing changes.
    assert await store.transition("a", 1, [D, R], OK, fields={"result_json": "stale", "worker": "w1"}) is None
    assert await store.transition("a", 1, [R], FAIL, fields={"error_code": "STALE"}) is None
    assert await store.update_progress("a", 1, "publish", 99.0) is False
    assert await store.get_task("a") == current
    final = await store.transition("a", 2, [R], OK, fields={"result_json": "real"})
    assert final is not None and (final.attempt, final.worker, final.result_json) == (2, "w2", "real")
    assert final.history == "1 w1 FAILED WORKER_LOST"
    assert (await store.counters())["to:SUCCEEDED"] == 1


async def test_requeue_with_a_future_ready_time(store: Store) -> None:
    await running(store, "a")
    await store.create_task(TaskRecord(id="b"))
    now = now_ms()
    retry_at = now + 60_000
    rec = await store.transition("a", 1, [R], Q, new_attempt=2, ready_at_ms=retry_at, event="retry in 60 s")
    assert rec is not None and rec.state == Q and rec.attempt == 2 and rec.queued_ms >= now
    assert await store.due_tasks(now_ms()) == ["b"]                  # a is queued but not due yet
    assert await store.due_tasks(retry_at) == ["b", "a"]             # oldest ready time first
    assert await store.due_tasks(retry_at, limit=1) == ["b"]
    assert await store.transition("b", 1, [Q], D)
    assert await store.next_due_ms() == retry_at                     # what to sleep until
    assert await store.transition("a", 2, [Q], X, event="cancelled by operator")
    assert await store.next_due_ms() is None
    assert await store.due_tasks(retry_at) == []


async def test_progress_is_guarded_and_logs_only_stage_changes(store: Store) -> None:
    await store.create_task(TaskRecord(id="q"))
    assert await store.update_progress("q", 1, "fetch", 1.0) is False    # not RUNNING
    await running(store, "a")
    marks = [("fetch", 10.0), ("fetch", 20.0), ("fetch", 30.5), ("transcribe", 50.0), ("transcribe", 60.0)]
    for stage, percent in marks:
        assert await store.update_progress("a", 1, stage, percent)
    rec = await store.get_task("a")
    assert rec is not None and (rec.stage, rec.percent) == ("transcribe", 60.0)
    progress = [e for _, e in await store.recent_events() if e["kind"] == "progress"]
    assert [(e["stage"], e["percent"], e["attempt"]) for e in progress] == [("fetch", "10.0", "1"),
                                                                            ("transcribe", "50.0", "1")]
    assert await store.update_progress("missing", 1, "fetch", 1.0) is False


async def test_active_tasks_are_the_dispatched_and_running_ones(store: Store) -> None:
    await running(store, "r")
    for task_id in ("d", "q", "done"):
        await store.create_task(TaskRecord(id=task_id))
    await store.transition("d", 1, [Q], D, fields={"worker": "w2"})
    await store.transition("done", 1, [Q], OK)
    active = await store.active_tasks()
    assert sorted((r.id, r.state, r.worker) for r in active) == [("d", D, "w2"), ("r", R, "w1")]


async def test_transition_without_the_record_answers_only_whether_it_applied(store: Store) -> None:
    await store.create_task(TaskRecord(id="a"))
    assert await store.transition("a", 1, [Q], D, fields={"worker": "w1"}, want_record=False) is True
    assert await store.transition("a", 1, [Q], D, want_record=False) is False       # wrong state
    assert await store.transition("a", 2, [D], R, want_record=False) is False       # wrong attempt
    assert await store.transition("nope", 1, [Q], D, want_record=False) is False    # missing
    assert await store.transition("a", 1, [D], R, want_record=False) is True
    rec = await store.get_task("a")
    assert rec is not None and (rec.state, rec.worker) == (R, "w1") and rec.started_ms
    assert (await store.counters())["to:RUNNING"] == 1


async def test_queued_tasks_reads_only_what_dispatching_needs(store: Store) -> None:
    await store.create_tasks([TaskRecord(id=i, task_json=f'{{"id": "{i}"}}') for i in ("a", "b", "c")])
    await store.transition("b", 1, [Q], D, want_record=False)
    await store.transition("c", 1, [Q], X, want_record=False)
    await store.transition("c", 1, [X], Q, new_attempt=2, want_record=False)
    got = await store.queued_tasks(["c", "b", "nope", "a"])
    assert [(t.id, t.attempt, t.task_json) for t in got] == [("c", 2, '{"id": "c"}'), ("a", 1, '{"id": "a"}')]
    assert await store.queued_tasks([]) == []


async def test_transition_many_applies_each_guard_on_its_own(store: Store) -> None:
    await store.create_tasks([TaskRecord(id=i) for i in ("a", "b", "c")])
    results = await store.transition_many([
        Transition("a", 1, (Q,), D),
        Transition("b", 7, (Q,), D),                 # stale attempt
        Transition("c", 1, (Q,), X, event="bulk"),
        Transition("zz", 1, (Q,), D),                # missing
    ])
    assert results == [True, False, True, False]
    assert [r.state for r in await store.get_tasks(["a", "b", "c"])] == [D, Q, X]
    assert await store.transition_many([]) == []
    assert await store.create_tasks([TaskRecord(id="a"), TaskRecord(id="new")]) == 1


async def test_a_retried_call_whose_reply_was_lost_is_not_applied_twice(store: Store) -> None:
    """The client retries after a connection reset; the scripts recognise their own earlier success."""
    await store.create_task(TaskRecord(id="a"))
    keys, args = store._transition_call(Transition("a", 1, (Q,), D, fields={"worker": "w1"}), now_ms())
    first = await store._transition(keys, args)
    again = await store._transition(keys, args)                    # the same call, as the retry sends it
    assert first and again == first
    assert (await store.counters())["to:DISPATCHED"] == 1
    assert len([e for _, e in await store.recent_events() if e.get("to") == "DISPATCHED"]) == 1
    create_keys, create_args = store._create_call(TaskRecord(id="b"), now_ms())
    assert await store._create(create_keys, create_args) == 1
    assert await store._create(create_keys, create_args) == 1      # replay: still "created"
    assert await store.create_task(TaskRecord(id="b")) is False     # a different call: "exists"
    assert (await store.counters())["created"] == 2


async def test_listing_pages_and_totals_with_ten_thousand_finished_tasks(store: Store) -> None:
    started = time.perf_counter()
    await make_finished(store, 10_000)                 # t00000 … t09999, every 10th FAILED
    await store.create_tasks([TaskRecord(id="live", created_ms=2_000_000)])
    setup_s = time.perf_counter() - started

    counts = await store.count_by_state()
    assert counts == {Q: 1, D: 0, R: 0, OK: 9_000, FAIL: 1_000, X: 0}

    started = time.perf_counter()
    page, total = await store.list_tasks(OK, offset=0, limit=50)
    page_s = time.perf_counter() - started
    assert total == 9_000 and len(page) == 50
    succeeded_newest_first = [f"t{i:05d}" for i in range(9_999, -1, -1) if i % 10]
    assert [r.id for r in page] == succeeded_newest_first[:50] and all(r.state == OK for r in page)

    page, total = await store.list_tasks(OK, offset=8_990, limit=50)       # the last, partial page
    assert total == 9_000 and [r.id for r in page] == succeeded_newest_first[8_990:]
    assert [r.id for r in page][-2:] == ["t00002", "t00001"]
    page, _ = await store.list_tasks(FAIL, offset=0, limit=3, newest_first=False)
    assert [r.id for r in page] == ["t00000", "t00010", "t00020"]
    page, total = await store.list_tasks(offset=0, limit=2)
    assert total == 10_001 and [r.id for r in page] == ["live", "t09999"]
    page, total = await store.list_tasks(X)
    assert (page, total) == ([], 0)
    page, total = await store.list_tasks(OK, limit=0)
    assert (page, total) == ([], 9_000)
    with pytest.raises(ValueError):
        await store.list_tasks(offset=-1)
    print(f"\n10,000 finished tasks made in {setup_s:.2f} s; one page of 50 listed in {page_s * 1000:.1f} ms")


async def test_seen_threads_per_board(store: Store) -> None:
    assert await store.mark_seen("41", ["100", "101"]) == 2
    assert await store.mark_seen("41", ["101", "102", "102"]) == 1
    assert await store.mark_seen("41", []) == 0
    assert await store.is_seen("41", "102") and not await store.is_seen("41", "103")
    assert not await store.is_seen("42", "100")                     # boards are separate


async def test_flags_and_counters(store: Store) -> None:
    assert await store.get_flag("monitoring") == "" and await store.get_flag("monitoring", "0") == "0"
    await store.set_flag("monitoring", "1")
    assert await store.get_flag("monitoring", "0") == "1"
    await store.incr("replies_posted")
    await store.incr("replies_posted", 4)
    assert await store.counters() == {"replies_posted": 5}


async def test_a_server_error_becomes_a_store_error_that_says_what_to_check(store: Store) -> None:
    await store.client.set(store.keys.flags, "not a hash")
    with pytest.raises(StoreError) as info:
        await store.get_flag("monitoring")
    assert info.value.code == "STORE" and info.value.retryable is False
    assert "WRONGTYPE" in info.value.message and store.url in info.value.message


async def test_misuse_is_refused_before_anything_is_sent(store: Store) -> None:
    await store.create_task(TaskRecord(id="a"))
    with pytest.raises(ValueError):
        await store.transition("a", 1, [Q], D, ready_at_ms=now_ms())      # a ready time only means something in QUEUED
    with pytest.raises(ValueError):
        await store.transition("a", 1, [Q], D, fields={"no_such_field": 1})
    rec = await store.get_task("a")
    assert rec is not None and rec.state == Q


async def test_a_corrupt_task_hash_is_a_store_error(store: Store) -> None:
    await store.client.hset(store.keys.task("bad"), mapping={"id": "bad", "attempt": "one"})
    with pytest.raises(StoreError) as info:
        await store.get_task("bad")
    assert "corrupt" in info.value.message and "attempt" in info.value.message
