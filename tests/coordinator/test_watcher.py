"""The forum watcher against a real Valkey and the real dispatcher, with the forum replaced by an in-memory fake.

The fake stands in for ``ForumClient`` only (HTTP); listing order, baseline, one task per thread, rejections,
outages and the on/off switch are the watcher's own logic. The whole path with a real forum is in
``tests/forum/test_acceptance.py``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable

import pytest

from aicut.config import Settings
from aicut.coordinator.dispatcher import Dispatcher
from aicut.coordinator.watcher import MAX_BACKOFF_S, ForumWatcher, jittered, retry_delay_s
from aicut.errors import ConfigError, ForumConfigError, ForumError, ForumRefusedError
from aicut.forum.replies import find_marker
from aicut.forum.models import ForumSettings, Post, PublishSettings, ReplyResult, ThreadPage, ThreadRow
from aicut.models import TaskState
from generated.aicut.v1 import common_pb2 as pb
from aicut.store import Store

BASE = "http://bbs.example.com/"
VIDEO_POST = ('<a href="https://b.cos.ap-guangzhou.myqcloud.com/u/%E5%8E%9F%E7%89%87.mp4" target="_blank">'
              '原片.mp4</a><br />封面标题上：第一行<br />今天讲讲剪辑')


class FakeForum:
    """Threads on board 2, as the client would return them; counts calls; fails on demand."""

    uid = 99
    charset = "utf-8"

    def __init__(self) -> None:
        self.threads: dict[int, tuple[str, str, str]] = {}   # tid -> (subject, category, first post html)
        self.replies: list[tuple[int, str]] = []
        self.list_calls = 0
        self.hidden: set[int] = set()                          # readable threads the listing does not show
        self.fail: BaseException | None = None

    def post(self, tid: int, subject: str = "请剪辑", category: str = "智能剪口播", html: str = VIDEO_POST) -> None:
        self.threads[tid] = (subject, category, html)

    def list_threads(self, fid: int, page: int = 1) -> list[ThreadRow]:
        self.list_calls += 1
        if self.fail is not None:
            raise self.fail
        rows = [ThreadRow(tid=t, fid=fid, subject=s, dateline=1_700_000_000 + t, category=c)
                for t, (s, c, _) in sorted(self.threads.items(), reverse=True) if t not in self.hidden]
        return rows[(page - 1) * self.page_size: page * self.page_size]

    page_size = 20

    def read_thread(self, tid: int) -> ThreadPage:
        if tid not in self.threads:
            raise ForumRefusedError("thread_nonexistence", message_id="thread_nonexistence")
        subject, category, html = self.threads[tid]
        posts = (Post(pid=tid * 10, author="alice", author_id=3, message_html=html, first=True),
                 *(Post(pid=tid * 10 + i + 1, author="aicut", author_id=self.uid, message_html=m)
                   for i, (t, m) in enumerate(self.replies) if t == tid))
        return ThreadPage(tid=tid, fid=2, subject=subject, category=category, author="alice", author_id=3,
                          posts=posts)

    def posts_by(self, tid: int, author_id: int, max_pages: int = 5) -> list[Post]:
        return [p for p in self.read_thread(tid).posts if p.author_id == author_id]

    def reply(self, fid: int, tid: int, message: str, *, attach_ids: tuple[int, ...] = ()) -> ReplyResult:
        self.replies.append((tid, message))
        return ReplyResult(pid=tid * 10 + len(self.replies))

    def thread_url(self, tid: int) -> str:
        return f"{BASE}forum.php?mod=viewthread&tid={tid}"

    def close(self) -> None:
        pass


Make = Callable[..., ForumWatcher]


@pytest.fixture
async def rig(store: Store) -> AsyncIterator[tuple[FakeForum, Make, Store]]:
    forum = FakeForum()
    dispatcher = Dispatcher(store, token="")
    await dispatcher.start(())
    made: list[ForumWatcher] = []

    def make(**forum_settings: object) -> ForumWatcher:
        settings = Settings(forum=ForumSettings(base_url=BASE, boards=(2,), poll_interval_s=0.05,
                                                **forum_settings),  # type: ignore[arg-type]
                            publish=PublishSettings(flood_wait_s=0))
        watcher = ForumWatcher(settings, store, dispatcher, client_factory=lambda: forum)
        made.append(watcher)
        return watcher

    yield forum, make, store
    for w in made:
        await w.close()
    await dispatcher.close()


async def _forum_tasks(store: Store) -> dict[str, object]:
    recs, _ = await store.list_tasks(None, limit=100)
    return {r.id: r for r in recs}


async def test_the_first_check_takes_existing_threads_as_seen_and_later_ones_become_one_task_each(rig) -> None:
    forum, make, store = rig
    forum.post(1)
    forum.post(2)
    watcher = make()
    assert await watcher.check_once() == 0
    assert await _forum_tasks(store) == {}          # baseline: threads from before the first start are ignored
    forum.post(3, subject="新视频")
    assert await watcher.check_once() == 1
    assert await watcher.check_once() == 0          # seen: not taken twice
    tasks = await _forum_tasks(store)
    assert list(tasks) == ["forum-bbs.example.com-3"]
    rec = tasks["forum-bbs.example.com-3"]
    assert rec.state is TaskState.QUEUED and rec.origin == "forum"
    spec = json.loads(rec.task_json)["spec"]
    assert spec["tid"] == "3" and spec["fid"] == 2 and spec["category"] == "智能剪口播", spec
    assert [s["name"] for s in spec["sources"]] == ["原片.mp4"] and spec["cover"]["top"] == "第一行", spec
    assert forum.replies == []                      # a good request is answered by the worker, not here


async def test_threads_older_than_the_baseline_stay_ignored_when_deletions_bring_them_into_view(rig) -> None:
    forum, make, store = rig
    for tid in range(1, 26):            # 25 threads; the listing shows the newest 20
        forum.post(tid)
    watcher = make()
    await watcher.check_once()
    for tid in (25, 24, 23):            # a moderator deletes three: threads 3–5 move onto the first page
        del forum.threads[tid]
    forum.post(26)
    assert await watcher.check_once() == 1
    assert list(await _forum_tasks(store)) == ["forum-bbs.example.com-26"]


async def test_a_burst_larger_than_a_listing_page_is_read_over_the_next_pages(rig) -> None:
    forum, make, store = rig
    forum.post(1)
    watcher = make()
    await watcher.check_once()
    for tid in range(2, 48):            # 46 new threads between two checks: more than two pages of 20
        forum.post(tid)
    assert await watcher.check_once() == 46
    assert len(await _forum_tasks(store)) == 46


async def test_without_baseline_the_threads_already_there_are_processed_too(rig) -> None:
    forum, make, store = rig
    forum.post(1)
    forum.post(2)
    assert await make(baseline=False).check_once() == 2
    assert set(await _forum_tasks(store)) == {"forum-bbs.example.com-1", "forum-bbs.example.com-2"}


async def test_a_restart_that_missed_marking_a_thread_seen_still_makes_no_second_task(rig) -> None:
    forum, make, store = rig
    first = make()
    await first.check_once()
    forum.post(5)
    assert await first.check_once() == 1
    # A second watcher (a restarted coordinator) that sees the thread as new again: the id is derived from the
    # forum and the tid, so creating its task is a no-op.
    second = make()
    second_seen = await second._take(forum, 2, "bbs.example.com:2", ThreadRow(tid=5, fid=2, subject="x"))
    assert second_seen == 0
    assert len(await _forum_tasks(store)) == 1


@pytest.mark.parametrize(("category", "html", "code"), [
    ("音色克隆", VIDEO_POST, "UNSUPPORTED_CATEGORY"),
    ("智能剪口播", "只有文字，没有视频链接", "NO_SOURCE"),
    ("智能剪口播", '<a href="https://x.example.com/a.mp3">a.mp3</a>', "NO_SOURCE"),
])
async def test_a_request_that_cannot_run_is_recorded_failed_with_its_reason_and_answered_once(
        rig, category: str, html: str, code: str) -> None:
    forum, make, store = rig
    watcher = make()
    await watcher.check_once()
    forum.post(7, category=category, html=html)
    assert await watcher.check_once() == 1
    rec = (await _forum_tasks(store))["forum-bbs.example.com-7"]
    assert rec.state is TaskState.FAILED and rec.error_code == code and not rec.retryable
    assert rec.error_message
    assert len(forum.replies) == 1 and forum.replies[0][0] == 7
    assert "forum-bbs.example.com-7" in forum.replies[0][1]            # the task marker
    # Taken again (a restart before it was marked seen): no second task, no second reply.
    await make()._take(forum, 2, "bbs.example.com:2", ThreadRow(tid=7, fid=2, subject="x"))
    assert len(forum.replies) == 1


async def test_polite_replies_can_be_switched_off(rig) -> None:
    forum, make, store = rig
    watcher = make(polite_replies=False)
    await watcher.check_once()
    forum.post(8, category="制作AI声音")
    await watcher.check_once()
    assert (await _forum_tasks(store))["forum-bbs.example.com-8"].error_code == "UNSUPPORTED_CATEGORY"
    assert forum.replies == []


async def test_a_deleted_thread_is_skipped_for_good(rig) -> None:
    forum, make, store = rig
    watcher = make()
    await watcher.check_once()
    forum.post(9)
    original = forum.read_thread
    forum.read_thread = lambda tid: (_ for _ in ()).throw(ForumRefusedError("gone", message_id="thread_nonexistence"))
    assert await watcher.check_once() == 0
    forum.read_thread = original
    assert await watcher.check_once() == 0          # marked seen: not read again
    assert await _forum_tasks(store) == {}


async def _wait(cond: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await cond() if asyncio.iscoroutinefunction(cond) else not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_the_switch_starts_and_stops_the_loop_and_outages_are_shown_then_cleared(rig) -> None:
    forum, make, store = rig
    watcher = make()
    state, changed = await watcher.set_enabled(True)
    assert state.enabled and changed
    await _wait(lambda: watcher.checks >= 2)
    forum.fail = ForumError("the forum answered HTTP 502 (Bad Gateway); retrying")
    calls = forum.list_calls

    async def error_shown() -> bool:
        return "502" in (await watcher.state()).last_error
    await _wait(error_shown)
    assert forum.list_calls > calls                 # still polling through the outage: the watcher never dies
    forum.fail = None
    await watcher.set_enabled(True)                 # StartMonitoring again: look now, not after the backoff

    async def cleared() -> bool:
        return (await watcher.state()).last_error == ""
    await _wait(cleared, timeout=20)
    assert (await watcher.state()).last_check_unix_ms > 0
    state, changed = await watcher.set_enabled(False)
    assert not state.enabled and changed
    calls = forum.list_calls
    await asyncio.sleep(0.3)
    assert forum.list_calls == calls                # stopped means stopped
    # The switch is in Redis: a new watcher (a restarted coordinator) resumes only when it was left on.
    again = make()
    await again.start()
    await asyncio.sleep(0.2)
    assert forum.list_calls == calls
    await watcher.set_enabled(True)
    resumed = make()
    await watcher.close()
    await resumed.start()
    await _wait(lambda: forum.list_calls > calls + 1)


async def test_a_forum_task_that_fails_for_good_through_no_fault_of_the_member_gets_one_apology(rig) -> None:
    forum, make, store = rig
    watcher = make()
    await watcher.check_once()
    await watcher.set_enabled(True)
    forum.post(11)
    forum.post(12)
    await _wait(lambda: watcher.taken >= 2)
    crashed, bad_file = "forum-bbs.example.com-11", "forum-bbs.example.com-12"
    for task_id, code in ((crashed, "TASK_CRASHED"), (bad_file, "NOT_MEDIA")):
        assert await store.transition(task_id, 1, (TaskState.QUEUED,), TaskState.FAILED,
                                      fields={"error_code": code, "error_message": "x"})
    # A thread URL submitted by hand: the record knows the tid but not the board, which is read from the thread.
    forum.hidden.add(13)
    forum.post(13)
    bare = "forum-bbs.example.com-13"
    _, created = await watcher.dispatcher.submit(pb.Task(id=bare, attempt=1, thread_url=forum.thread_url(13),
                                                         spec=pb.TaskSpec(tid=13)), origin="api")
    assert created
    assert await store.transition(bare, 1, (TaskState.QUEUED,), TaskState.FAILED,
                                  fields={"error_code": "WORKER_LOST", "error_message": "x"})
    await _wait(lambda: {tid for tid, _ in forum.replies} >= {11, 13})
    await asyncio.sleep(0.3)
    assert sorted(tid for tid, _ in forum.replies) == [11, 13]   # NOT_MEDIA: the worker answers that one itself
    text = next(m for tid, m in forum.replies if tid == 11)
    assert "不是您的问题" in text and find_marker(text, crashed + ".failed")
    assert not find_marker(text, crashed)     # so a successful RetryTask still posts its result reply
    # A restarted coordinator starts after the failures it already looked at: no second apology.
    await watcher.set_enabled(False)
    again = make()
    await again.set_enabled(True)
    await asyncio.sleep(0.5)
    assert len(forum.replies) == 2


def test_backoff_grows_for_outages_and_goes_to_the_longest_wait_for_what_only_the_operator_can_fix() -> None:
    assert retry_delay_s(0, 15, None) == 15
    assert retry_delay_s(1, 15, ForumError("x")) == 30
    assert retry_delay_s(3, 15, ForumError("x")) == 120
    assert retry_delay_s(30, 15, ForumError("x")) == MAX_BACKOFF_S
    for exc in (ForumConfigError("captcha"), ConfigError("no base_url")):
        assert retry_delay_s(1, 15, exc) == MAX_BACKOFF_S
    assert all(12 <= jittered(15, 0.2, rng) <= 18 for rng in (lambda: 0.0, lambda: 0.5, lambda: 0.999))
