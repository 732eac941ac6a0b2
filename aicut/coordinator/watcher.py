"""The forum watcher: polls the configured Discuz boards and turns each new video thread into exactly one task.

Exactly once, across restarts: a thread's task id is derived from the forum host and its tid (``forum-<host>-<tid>``)
and task creation is idempotent by id, so a thread seen twice — after a crash between creating its task and marking
it seen, or by two coordinators — still has one task. The seen set only saves work.

On the first start for a board (``forum.baseline``, default on) every thread already on it is marked seen and only
threads that appear afterwards are processed, as the old system did. The watcher never dies: forum outages and
refusals are retried with backoff and shown as ``last_error``; a configuration problem only the operator can fix
(captcha on, wrong password, no credentials) backs off to the longest wait so it never becomes a storm of logins.

The forum client is synchronous (requests); every call runs in a thread so the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from aicut.config import Settings
from aicut.coordinator.dispatcher import Dispatcher
from aicut.errors import AicutError, ConfigError, ForumConfigError, ForumLoginError, ForumRefusedError
from aicut.forum import parse
from aicut.forum.models import ThreadPage, ThreadRow
from aicut.forum.tasks import MEMBER_FIXABLE, board_key, failure_key, problem_of, task_from_request
from aicut.models import TaskState
from aicut.store import keys as K
from aicut.store.tasks import Store

logger = logging.getLogger(__name__)

MAX_BACKOFF_S = 300.0
MAX_PAGES = 5                               # listing pages read in one check when every thread on a page is new


class ForumReader(Protocol):
    """What the watcher needs of ``aicut.forum.client.ForumClient`` (a fake in unit tests)."""

    def list_threads(self, fid: int, page: int = 1) -> list[ThreadRow]: ...
    def read_thread(self, tid: int) -> ThreadPage: ...
    def thread_url(self, tid: int) -> str: ...
    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class MonitoringState:
    enabled: bool
    last_check_unix_ms: int = 0
    last_error: str = ""
    detail: str = ""


def retry_delay_s(failures: int, poll_s: float, exc: BaseException | None) -> float:
    """How long to wait after ``failures`` failed checks in a row (0: a good check → the poll interval)."""
    if failures <= 0:
        return poll_s
    if isinstance(exc, (ForumConfigError, ForumLoginError, ConfigError)):
        return MAX_BACKOFF_S          # only the operator can fix it: never a storm of logins
    return min(MAX_BACKOFF_S, poll_s * 2 ** min(failures, 16))


def jittered(delay_s: float, jitter: float, rng: Callable[[], float] = random.random) -> float:
    """``delay_s`` ± ``jitter`` (a fraction), so many coordinators or restarts do not poll in step."""
    return max(0.05, delay_s * (1 + jitter * (2 * rng() - 1)))


class ForumWatcher:
    """Start/stop-able poller of the forum's boards; state in Redis flags so the switch survives a restart."""

    def __init__(self, settings: Settings, store: Store, dispatcher: Dispatcher,
                 client_factory: Callable[[], ForumReader] | None = None) -> None:
        self.settings = settings
        self.forum = settings.forum
        self.store = store
        self.dispatcher = dispatcher
        self._factory = client_factory or self._default_client
        self._client: ForumReader | None = None
        self._task: asyncio.Task[None] | None = None
        self._failures: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._client_lock = asyncio.Lock()
        self.checks = 0                      # completed checks since start (tests and the bench wait on it)
        self.taken = 0                       # threads turned into tasks since start

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Resume watching if the operator left it switched on."""
        if await self.store.get_flag(K.FLAG_MONITORING, "0") == "1":
            self._spawn()

    async def close(self) -> None:
        await self._stop_loop()
        if self._client is not None:
            client, self._client = self._client, None
            await asyncio.to_thread(client.close)

    async def set_enabled(self, enabled: bool) -> tuple[MonitoringState, bool]:
        """Switch watching on or off (persisted); returns the state and whether it changed."""
        before = await self.store.get_flag(K.FLAG_MONITORING, "0") == "1"
        if enabled != before:
            await self.store.set_flag(K.FLAG_MONITORING, "1" if enabled else "0")
            await self.store.append_event("monitoring", text="started" if enabled else "stopped")
            logger.info("forum monitoring %s", "started" if enabled else "stopped")
        if enabled:
            self._spawn()
            self._wake.set()                 # check now, not after a poll interval
        else:
            await self._stop_loop()
        return await self.state(), enabled != before

    async def state(self) -> MonitoringState:
        on, last, error = await self.store.get_flags(K.FLAG_MONITORING, K.FLAG_MONITORING_LAST_CHECK,
                                                     K.FLAG_MONITORING_LAST_ERROR)
        on, last, error = on == "1", int(last or 0), error or ""
        where = self.forum.base_url or "no forum configured (machines.yaml forum.base_url)"
        boards = ", ".join(str(b) for b in self.forum.boards)
        detail = f"forum monitoring is {'on' if on else 'off'}: {where}" + (f" boards {boards}" if
                                                                             self.forum.base_url else "")
        return MonitoringState(enabled=on, last_check_unix_ms=last, last_error=error, detail=detail)

    def _spawn(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name="forum-watcher")
        if self.forum.polite_replies and (self._failures is None or self._failures.done()):
            self._failures = asyncio.create_task(self._follow_failures(), name="forum-failures")

    async def _stop_loop(self) -> None:
        for task in (self._task, self._failures):
            # Cancel until it is done: Python 3.11's wait_for can swallow a cancel that lands as its timer fires.
            while task is not None and not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=0.5)
        self._task = self._failures = None

    # ------------------------------------------------------------------ the loop
    async def _loop(self) -> None:
        failures = 0
        while True:
            self._wake.clear()
            error: BaseException | None = None
            try:
                await self.check_once()
                failures = 0
                await self._record("")
            except asyncio.CancelledError:
                raise
            except AicutError as exc:
                failures, error = failures + 1, exc
                logger.warning("forum check failed (%s): %s", exc.code, exc.message)
                await self._record(exc.message)
            except Exception as exc:     # noqa: BLE001 — the watcher must outlive any bug in one check
                failures, error = failures + 1, exc
                logger.exception("forum check failed unexpectedly")
                await self._record(f"internal error: {type(exc).__name__}: {exc}")
            delay = jittered(retry_delay_s(failures, self.forum.poll_interval_s, error), self.forum.poll_jitter)
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except TimeoutError:
                pass

    async def _follow_failures(self) -> None:
        """Tell the member when their forum task failed for good for a reason that is not theirs to fix (a crash, a
        worker fault, retries used up): one apology per task, after the operator's own record. Problems the member can
        fix were answered by the worker or the watcher already. Follows the event stream from where it left off."""
        after = await self.store.get_flag(K.FLAG_MONITORING_FAILURES, "") or await self.store.last_event_id()
        while True:
            try:
                entries = await self.store.read_events(after, block_ms=5_000, count=200)
                for entry_id, fields in entries:
                    if (fields.get("kind", "task") == "task" and fields.get("to") == TaskState.FAILED.value
                            and fields.get("id", "").startswith("forum-")
                            and not fields.get("event", "").startswith("rejected")):
                        await self._apologise(fields["id"])
                    after = entry_id
                if entries:
                    await self.store.set_flag(K.FLAG_MONITORING_FAILURES, after)
            except asyncio.CancelledError:
                raise
            except AicutError as exc:     # Redis away or the forum refusing: try again shortly, from the same place
                logger.warning("following failed forum tasks: %s", exc.message)
                await asyncio.sleep(5)
            except Exception:             # noqa: BLE001 — a bug here must not stop the watcher
                logger.exception("following failed forum tasks failed unexpectedly")
                await asyncio.sleep(5)

    async def _apologise(self, task_id: str) -> None:
        rec = await self.store.get_task(task_id)
        if rec is None or rec.state is not TaskState.FAILED or rec.error_code in MEMBER_FIXABLE:
            return
        spec = json.loads(rec.task_json or "{}").get("spec", {})
        tid, fid = int(spec.get("tid") or 0), int(spec.get("fid") or 0)
        if not tid:
            return
        client = await self._reader()
        if not fid:   # a thread URL submitted by hand: its board is only known from the thread itself
            fid = (await asyncio.to_thread(client.read_thread, tid)).fid
        await self._reply_problem(client, fid, tid, task_id, "TASK_FAILED", "", key=failure_key(task_id))

    async def _record(self, error: str) -> None:
        try:
            await self.store.set_flags({K.FLAG_MONITORING_LAST_CHECK: str(int(time.time() * 1000)),
                                        K.FLAG_MONITORING_LAST_ERROR: error})
        except AicutError as exc:         # Redis away: the next check records again
            logger.warning("could not record the forum check: %s", exc.message)

    def _default_client(self) -> ForumReader:
        if not self.forum.base_url:
            raise ConfigError("forum monitoring is on but no forum is configured: set forum.base_url and "
                              "forum.boards in machines.yaml")
        secrets = self.settings.secrets
        if not (secrets.forum_username and secrets.forum_password):
            raise ConfigError("forum monitoring needs the forum account: set FORUM_USERNAME and FORUM_PASSWORD "
                              "in .env")
        from aicut.forum.client import ForumClient   # requests and lxml only where a forum is watched

        cookies = Path(self.forum.cookie_file) if self.forum.cookie_file else \
            self.settings.coordinator.data_dir / "forum-cookies.json"
        return ForumClient(self.forum, secrets.forum_username, secrets.forum_password, cookie_file=cookies)

    async def _reader(self) -> ForumReader:
        async with self._client_lock:   # the poll loop and the failure follower share one session
            if self._client is None:
                self._client = await asyncio.to_thread(self._factory)
            return self._client

    # ------------------------------------------------------------------ one check
    async def check_once(self) -> int:
        """Look at every board once; returns how many new threads became tasks."""
        client = await self._reader()
        new = 0
        for fid in self.forum.boards:
            rows = await asyncio.to_thread(client.list_threads, fid)
            key = board_key(self.forum.base_url, fid)
            # The baseline is a high-water mark: the newest tid on the board at the first start. Older threads are
            # never processed, even when deletions bring ones beyond the first listing page into view later.
            mark = await self.store.get_flag(K.FLAG_MONITORING_BASELINE + key, "")
            if not mark:
                newest = max((r.tid for r in rows), default=0) if self.forum.baseline else 0
                await self.store.set_flag(K.FLAG_MONITORING_BASELINE + key, str(newest))
                if self.forum.baseline:
                    await self.store.mark_seen(key, [str(r.tid) for r in rows])
                    await self.store.append_event("monitoring", text=f"board {fid}: {len(rows)} existing thread(s) "
                                                                     f"marked as seen (baseline, up to tid {newest})")
                    logger.info("board %d: %d existing thread(s) marked as seen (baseline)", fid, len(rows))
                    continue
                mark = "0"
            oldest_new = int(mark) + 1
            fresh = await self._fresh(client, fid, key, rows, oldest_new)
            # Oldest first, so tasks queue in the order members posted.
            for row in sorted(fresh, key=lambda r: (r.dateline, r.tid)):
                new += await self._take(client, fid, key, row)
        self.checks += 1
        return new

    async def _fresh(self, client: ForumReader, fid: int, key: str, rows: list[ThreadRow],
                     oldest_new: int) -> list[ThreadRow]:
        """The threads of ``rows`` not taken yet; while a whole page is new (a burst between two checks), the next
        page too, up to MAX_PAGES — so a burst larger than a page is not lost below the first page."""
        fresh: list[ThreadRow] = []
        page = 1
        while True:
            seen_one = False
            for row in rows:
                if row.tid < oldest_new or await self.store.is_seen(key, str(row.tid)):
                    seen_one = seen_one or not row.sticky
                elif all(r.tid != row.tid for r in fresh):
                    fresh.append(row)
            if seen_one or page >= MAX_PAGES or len(rows) < self.forum.page_size:
                return fresh
            page += 1
            rows = await asyncio.to_thread(client.list_threads, fid, page)

    async def _take(self, client: ForumReader, fid: int, key: str, row: ThreadRow) -> int:
        """Turn one new thread into its task (or a recorded rejection); then mark it seen."""
        try:
            page = await asyncio.to_thread(client.read_thread, row.tid)
        except ForumRefusedError as exc:   # deleted, moved out of reach, no permission: nothing to do, ever
            await self.store.mark_seen(key, [str(row.tid)])
            await self.store.append_event("monitoring", text=f"thread {row.tid} skipped: {exc.message}")
            return 0
        base = self.forum.base_url
        request = parse.request_from_thread(page, base)
        if not request.fid:
            request = replace(request, fid=fid)
        task = task_from_request(request, client.thread_url(row.tid), base)
        problem = problem_of(request, self.forum)
        if problem is None:
            _rec, created = await self.dispatcher.submit(task, origin="forum")
            text = f"thread {row.tid} → task {task.id}" + ("" if created else " (already known)")
        else:
            code, message, fields = problem
            _rec, created = await self.dispatcher.reject(task, code, message, origin="forum")
            text = f"thread {row.tid} → task {task.id} not processed: {code}"
            if created and self.forum.polite_replies:
                await self._reply_problem(client, request.fid or fid, row.tid, task.id, code, fields or message)
        await self.store.mark_seen(key, [str(row.tid)])
        await self.store.append_event("monitoring", task=task.id, text=text)
        logger.info("%s", text)
        self.taken += int(created)
        return int(created)

    async def _reply_problem(self, client: Any, fid: int, tid: int, task_id: str, code: str,
                             detail: str | dict[str, str], key: str = "") -> None:
        """One polite reply about ``code`` in thread ``tid``; ``key`` (default the task id) is its marker."""
        from aicut.forum.publish import publish_problem

        try:
            outcome = await asyncio.to_thread(publish_problem, client, fid=fid, tid=tid, task_id=key or task_id,
                                              code=code, detail=detail, settings=self.settings.publish)
            note = "already answered" if getattr(outcome, "already", False) else "answered"
            await self.store.append_event("monitoring", task=task_id, text=f"thread {tid}: member {note} ({code})")
        except AicutError as exc:         # the task stays FAILED with its reason; the operator sees both
            logger.warning("thread %d: could not post the reply about %s: %s", tid, code, exc.message)
            await self.store.append_event("monitoring", task=task_id,
                                          text=f"thread {tid}: reply about {code} failed: {exc.message}")
