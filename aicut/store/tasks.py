"""The coordinator's state in Redis/Valkey: tasks, the ready queue, seen threads, flags, events and counters.

Every method is one or two round trips (pipelined where it reads many keys) and every task write is one Lua script,
so the store holds no state of its own and any number of calls may run concurrently.

Failures: while Redis is unreachable (a restart, a failover) each call retries with exponential backoff and jitter
for up to ``retry_window_s`` (30 s by default), then raises ``StoreError`` naming the server without its password.
The retry lives here and not in redis-py's ``Retry``: redis-py nests its own connect retry inside its command retry,
so a count there does not give a predictable time window. A retried write cannot apply twice: task scripts carry a
per-call token (see ``aicut.store.scripts``). ``incr`` and ``append_event`` have no token; a reply lost at the very
moment of a connection reset can count or log once more (at-least-once), which suits counters and an event log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, overload
from urllib.parse import urlsplit, urlunsplit

from redis import exceptions as rex
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from aicut.errors import ConfigError, StoreError
from aicut.models import TaskRecord, TaskState
from aicut.store import keys as K
from aicut.store import scripts
from aicut.store.codec import (
    encode_value,
    pairs_to_dict,
    parse_stream_entries,
    record_from_hash,
    record_to_hash,
    transition_fields,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Errors worth waiting out: the server is down, restarting, loading its data, or a replica during a failover.
# Credentials errors are ConnectionError subclasses in redis-py but waiting never fixes them.
_FATAL_CONNECTION_ERRORS = (rex.AuthenticationError, rex.AuthorizationError)
_TRANSIENT_ERRORS = (rex.ConnectionError, rex.TimeoutError, rex.ReadOnlyError)


def now_ms() -> int:
    """Wall-clock milliseconds, the unit of every timestamp and ready-queue score."""
    return time.time_ns() // 1_000_000


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, fit for messages and logs."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port else ""
        netloc = f"{parts.username or ''}:***@{host}{port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    except ValueError:
        return "<unparseable Redis URL>"


def backoff_s(failures: int, base: float = K.RETRY_BASE_S, cap: float = K.RETRY_CAP_S) -> float:
    """Exponential backoff with equal jitter: between half and all of min(cap, base * 2**(failures-1))."""
    ceiling = min(cap, base * 2 ** max(0, failures - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


@dataclass(frozen=True, slots=True)
class Transition:
    """One guarded state change, the arguments of ``Store.transition`` as a value (for ``transition_many``)."""

    task_id: str
    attempt: int
    from_states: tuple[TaskState, ...]
    to: TaskState
    fields: Mapping[str, object] = field(default_factory=dict)
    new_attempt: int | None = None
    ready_at_ms: int | None = None
    event: str = ""


@dataclass(frozen=True, slots=True)
class QueuedTask:
    """What dispatching a QUEUED task needs of its record, and no more (read with HMGET, not HGETALL)."""

    id: str
    attempt: int
    task_json: str


class Store:
    """Task state, ready queue, seen threads, flags, events and counters in one Redis/Valkey database."""

    def __init__(
        self,
        client: Redis,
        url: str,
        *,
        prefix: str = K.DEFAULT_PREFIX,
        retry_window_s: float = K.RETRY_WINDOW_S,
        events_maxlen: int = K.EVENTS_MAXLEN,
    ) -> None:
        self._r = client
        self._url = redact_url(url)
        self._password = _password_of(url)
        self._window = retry_window_s
        self._maxlen = str(events_maxlen)
        self.keys = K.Keys(prefix)
        self._create = client.register_script(scripts.CREATE)
        self._transition = client.register_script(scripts.TRANSITION)
        self._progress = client.register_script(scripts.PROGRESS)

    # ---------------------------------------------------------------- connection

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        prefix: str = K.DEFAULT_PREFIX,
        retry_window_s: float = K.RETRY_WINDOW_S,
        events_maxlen: int = K.EVENTS_MAXLEN,
    ) -> Store:
        """Connect to ``url`` and wait (up to ``retry_window_s``) until it answers PING."""
        try:
            client = Redis.from_url(
                url,
                decode_responses=True,
                socket_timeout=K.SOCKET_TIMEOUT_S,
                socket_connect_timeout=K.SOCKET_CONNECT_TIMEOUT_S,
                # One try per call inside redis-py; Store._run owns retrying (see the module docstring).
                retry=Retry(NoBackoff(), 0),
            )
        except ValueError as exc:
            raise ConfigError(
                f"REDIS_URL {redact_url(url)} is not a valid Redis URL ({_scrub(str(exc), url)}); "
                "expected redis://[:password@]host:port/db, rediss://… or unix:///path"
            ) from None
        store = cls(client, url, prefix=prefix, retry_window_s=retry_window_s, events_maxlen=events_maxlen)
        try:
            await store.ping()
        except BaseException:
            await client.aclose()
            raise
        logger.info("store connected to %s (prefix %r)", store.url, prefix)
        return store

    @property
    def url(self) -> str:
        """The server's URL, password redacted."""
        return self._url

    @property
    def client(self) -> Redis:
        """The underlying redis.asyncio client (for tests and tools; product code goes through the methods)."""
        return self._r

    async def close(self) -> None:
        """Close every connection."""
        await self._r.aclose()

    async def ping(self) -> None:
        """Check that the server answers."""
        await self._run("ping", self._r.ping)

    # ---------------------------------------------------------------- tasks

    async def create_task(self, rec: TaskRecord, *, ready_at_ms: int | None = None) -> bool:
        """Create ``rec`` as QUEUED and ready now (or at ``ready_at_ms``), unless a task with its id exists (then False
        and no change)."""
        keys, args = self._create_call(rec, now_ms(), ready_at_ms)
        return bool(await self._run("create_task", lambda: self._create(keys, args)))

    async def create_tasks(self, recs: Iterable[TaskRecord], *, batch: int = 1000) -> int:
        """Create many tasks in pipelined batches (imports, benchmarks, tests); returns how many were new."""
        now = now_ms()
        calls = [self._create_call(rec, now) for rec in recs]
        chunks = [calls[start : start + batch] for start in range(0, len(calls), batch)]
        # Two batches in flight: the next one is encoded while the server runs (and fsyncs) the previous one.
        # Safe here because creations of different ids commute; transition_many stays sequential.
        gate = asyncio.Semaphore(2)

        async def one(chunk: list[tuple[list[str], list[str]]]) -> int:
            async with gate:
                replies = await self._run("create_tasks", lambda: self._pipe(self._create, chunk))
            return sum(map(bool, replies))

        return sum(await asyncio.gather(*(one(chunk) for chunk in chunks)))

    async def get_task(self, task_id: str) -> TaskRecord | None:
        """The task with this id, or None."""
        data = await self._run("get_task", lambda: self._r.hgetall(self.keys.task(task_id)))
        return self._decode(data) if data else None

    async def get_tasks(self, ids: list[str]) -> list[TaskRecord]:
        """The tasks with these ids that exist, in the order given (one pipeline)."""
        return await self._run("get_tasks", lambda: self._fetch(ids))

    async def queued_tasks(self, ids: list[str]) -> list[QueuedTask]:
        """Of these ids, the tasks that are QUEUED now, in the order given (one pipeline of HMGETs).

        The dispatcher's read: three fields per task instead of the whole record. What it reads can change before the
        guarded transition that follows; the guard (attempt and state) is what makes the dispatch safe.
        """
        return await self._run("queued_tasks", lambda: self._fetch_queued(ids))

    async def list_tasks(
        self,
        state: TaskState | None = None,
        *,
        offset: int = 0,
        limit: int = K.DEFAULT_PAGE_LIMIT,
        newest_first: bool = True,
    ) -> tuple[list[TaskRecord], int]:
        """One page of tasks (all, or those in ``state``) ordered by creation, and the total that matches."""
        if offset < 0 or limit < 0 or limit > K.MAX_PAGE_LIMIT:
            raise ValueError(f"need offset >= 0 and 0 <= limit <= {K.MAX_PAGE_LIMIT}, got {offset=} {limit=}")
        index = self.keys.tasks if state is None else self.keys.state(state)

        async def page() -> tuple[list[TaskRecord], int]:
            # MULTI so the page and the total describe the same moment.
            async with self._r.pipeline(transaction=True) as pipe:
                pipe.zcard(index)
                if limit:
                    pipe.zrange(index, offset, offset + limit - 1, desc=newest_first)
                replies = await pipe.execute()
            ids = replies[1] if limit else []
            return await self._fetch(ids), int(replies[0])

        return await self._run("list_tasks", page)

    async def count_by_state(self) -> dict[TaskState, int]:
        """How many tasks are in each state (every state present, zeros included)."""

        async def counts() -> list[int]:
            # MULTI: one consistent snapshot, so a task moving between states is never counted twice or not at all.
            async with self._r.pipeline(transaction=True) as pipe:
                for key in self.keys.all_states():
                    pipe.zcard(key)
                return await pipe.execute()

        replies = await self._run("count_by_state", counts)
        return {state: int(n) for state, n in zip(K.STATES, replies)}

    @overload
    async def transition(
        self, task_id: str, attempt: int, from_states: Iterable[TaskState], to: TaskState, *,
        fields: Mapping[str, object] = ..., new_attempt: int | None = ..., ready_at_ms: int | None = ...,
        event: str = ..., want_record: Literal[True] = ...,
    ) -> TaskRecord | None: ...

    @overload
    async def transition(
        self, task_id: str, attempt: int, from_states: Iterable[TaskState], to: TaskState, *,
        fields: Mapping[str, object] = ..., new_attempt: int | None = ..., ready_at_ms: int | None = ...,
        event: str = ..., want_record: Literal[False],
    ) -> bool: ...

    async def transition(
        self,
        task_id: str,
        attempt: int,
        from_states: Iterable[TaskState],
        to: TaskState,
        *,
        fields: Mapping[str, object] = {},  # noqa: B006 — never mutated
        new_attempt: int | None = None,
        ready_at_ms: int | None = None,
        event: str = "",
        want_record: bool = True,
    ) -> TaskRecord | bool | None:
        """Move a task to ``to`` if it is at ``attempt`` and in one of ``from_states``; None (no change) otherwise.

        Stamps the entered state's timestamp (queued_ms, dispatched_ms, started_ms or finished_ms) unless ``fields``
        sets it, re-queues with score ``ready_at_ms`` (default now) when ``to`` is QUEUED, appends a ``task`` event
        and counts ``to:<STATE>`` — all in one Lua script.

        With ``want_record=False`` it answers only whether the change applied (True/False) and the script skips
        reading the whole record back (an HGETALL and 40 strings to parse): for callers that only check success.
        """
        change = Transition(task_id, attempt, tuple(from_states), to, fields, new_attempt, ready_at_ms, event)
        keys, args = self._transition_call(change, now_ms(), want_record=want_record)
        reply = await self._run("transition", lambda: self._transition(keys, args))
        if not want_record:
            return bool(reply)
        return self._decode(pairs_to_dict(reply)) if reply else None

    async def transition_many(self, changes: Iterable[Transition], *, batch: int = 1000) -> list[bool]:
        """Apply many guarded transitions in pipelined batches, each atomic on its own; which ones applied, in order.

        Answers booleans rather than records to keep bulk work cheap (recovery, benchmarks); fetch the records with
        ``get_tasks`` when they are needed.
        """
        now = now_ms()
        calls = [self._transition_call(c, now, want_record=False) for c in changes]
        results: list[bool] = []
        for start in range(0, len(calls), batch):
            chunk = calls[start : start + batch]
            replies = await self._run("transition_many", lambda c=chunk: self._pipe(self._transition, c))
            results += [bool(reply) for reply in replies]
        return results

    async def update_progress(self, task_id: str, attempt: int, stage: str, percent: float) -> bool:
        """Record progress of a RUNNING attempt; False if the task is not RUNNING at that attempt.

        The event stream gets a ``progress`` entry only when the stage changes, never per percent.
        """
        now = now_ms()
        keys = [self.keys.task(task_id), self.keys.events]
        args = [task_id, str(attempt), stage, encode_value(float(percent)), str(now), self._maxlen]
        return bool(await self._run("update_progress", lambda: self._progress(keys, args)))

    async def due_tasks(self, now_ms: int, limit: int = K.DEFAULT_DUE_LIMIT) -> list[str]:
        """Ids in the ready queue whose ready time is <= ``now_ms``, the earliest first."""
        return await self._run(
            "due_tasks", lambda: self._r.zrangebyscore(self.keys.ready, "-inf", now_ms, start=0, num=limit)
        )

    async def next_due_ms(self) -> int | None:
        """The earliest ready time in the queue (possibly in the past), or None when it is empty."""
        head = await self._run("next_due_ms", lambda: self._r.zrange(self.keys.ready, 0, 0, withscores=True))
        return int(head[0][1]) if head else None

    async def active_tasks(self) -> list[TaskRecord]:
        """Every DISPATCHED or RUNNING task (what a restarted coordinator must account for)."""

        async def active() -> list[TaskRecord]:
            async with self._r.pipeline(transaction=True) as pipe:
                pipe.zrange(self.keys.state(TaskState.DISPATCHED), 0, -1)
                pipe.zrange(self.keys.state(TaskState.RUNNING), 0, -1)
                dispatched, running = await pipe.execute()
            return await self._fetch([*dispatched, *running])

        return await self._run("active_tasks", active)

    # ---------------------------------------------------------------- forum, flags, counters

    async def mark_seen(self, board: str, thread_ids: Iterable[str]) -> int:
        """Remember these thread ids of ``board``; returns how many were not seen before."""
        ids = [str(t) for t in thread_ids]
        if not ids:
            return 0
        return int(await self._run("mark_seen", lambda: self._r.sadd(self.keys.seen(board), *ids)))

    async def is_seen(self, board: str, thread_id: str) -> bool:
        """Whether this thread id of ``board`` was marked seen."""
        return bool(await self._run("is_seen", lambda: self._r.sismember(self.keys.seen(board), str(thread_id))))

    async def set_flag(self, name: str, value: str) -> None:
        """Persist a switch (e.g. ``monitoring``)."""
        await self._run("set_flag", lambda: self._r.hset(self.keys.flags, name, value))

    async def set_flags(self, values: Mapping[str, str]) -> None:
        """Persist several switches at once."""
        await self._run("set_flags", lambda: self._r.hset(self.keys.flags, mapping=dict(values)))

    async def get_flag(self, name: str, default: str = "") -> str:
        """A persisted switch, or ``default`` when never set."""
        value = await self._run("get_flag", lambda: self._r.hget(self.keys.flags, name))
        return default if value is None else value

    async def get_flags(self, *names: str) -> list[str | None]:
        """Several persisted switches in one round trip (None for one never set)."""
        return list(await self._run("get_flags", lambda: self._r.hmget(self.keys.flags, list(names))))

    async def counters(self) -> dict[str, int]:
        """Every counter."""
        data = await self._run("counters", lambda: self._r.hgetall(self.keys.counters))
        return {name: int(value) for name, value in data.items()}

    async def incr(self, name: str, by: int = 1) -> None:
        """Add ``by`` to a counter."""
        await self._run("incr", lambda: self._r.hincrby(self.keys.counters, name, by))

    # ---------------------------------------------------------------- events

    async def append_event(self, kind: str, **fields: str) -> str:
        """Append a free-form cluster event (worker online, ejected, monitoring started …); returns its id."""
        entry = {"kind": kind, "ts": str(now_ms()), **{k: str(v) for k, v in fields.items()}}
        return await self._run(
            "append_event",
            lambda: self._r.xadd(self.keys.events, entry, maxlen=int(self._maxlen), approximate=True),
        )

    async def read_events(
        self, last_id: str = "$", *, block_ms: int = 0, count: int = K.DEFAULT_EVENT_COUNT
    ) -> list[tuple[str, dict[str, str]]]:
        """Events after ``last_id`` (``"$"``: after the newest now), waiting up to ``block_ms`` for the first one.

        ``block_ms=0`` does not wait (unlike Redis, where BLOCK 0 waits forever). Feed the last returned id back in
        to follow the stream without gaps.
        """
        if last_id == "$":
            # Resolve "$" once: repeating it in each wait chunk below would skip entries added between chunks.
            # (A caller that loops should do the same: start from last_event_id(), not from "$" on every call.)
            last_id = await self.last_event_id()
            if block_ms <= 0:
                return []
        deadline = time.monotonic() + block_ms / 1000
        while True:
            wait = max(0, min(K.BLOCK_CHUNK_MS, int((deadline - time.monotonic()) * 1000)))
            entries = await self._run("read_events", lambda w=wait: self._xread(last_id, count, w))
            if entries or wait <= 0:
                return entries

    async def last_event_id(self) -> str:
        """The id of the newest event ("0-0" when there is none): a gap-free starting point for ``read_events``."""
        newest = await self._run("last_event_id", lambda: self._r.xrevrange(self.keys.events, count=1))
        return newest[0][0] if newest else "0-0"

    async def recent_events(self, count: int = K.DEFAULT_EVENT_COUNT) -> list[tuple[str, dict[str, str]]]:
        """The newest ``count`` events, oldest first (so a follower can continue from the last id)."""
        entries = await self._run("recent_events", lambda: self._r.xrevrange(self.keys.events, count=count))
        return list(reversed(parse_stream_entries(entries)))

    # ---------------------------------------------------------------- maintenance

    async def purge(self) -> int:
        """Delete every key under this store's prefix (tests and benchmarks); returns how many."""

        async def purge_keys() -> int:
            deleted = 0
            batch: list[str] = []
            async for key in self._r.scan_iter(match=self.keys.pattern(), count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    deleted += await self._r.unlink(*batch)
                    batch.clear()
            if batch:
                deleted += await self._r.unlink(*batch)
            return deleted

        return await self._run("purge", purge_keys)

    # ---------------------------------------------------------------- internals

    def _create_call(self, rec: TaskRecord, now: int,
                     ready_at_ms: int | None = None) -> tuple[list[str], list[str]]:
        created = rec.created_ms or now
        data = record_to_hash(rec)
        data.update(
            state=TaskState.QUEUED.value,
            created_ms=str(created),
            updated_ms=str(now),
            queued_ms=str(now),
            op=uuid.uuid4().hex,
        )
        keys = [
            self.keys.task(rec.id),
            self.keys.ready,
            self.keys.tasks,
            self.keys.state(TaskState.QUEUED),
            self.keys.events,
            self.keys.counters,
        ]
        ready = str(ready_at_ms if ready_at_ms is not None else now)
        args = [rec.id, data["op"], str(now), str(created), self._maxlen, data["attempt"], rec.origin, _json(data),
                ready]
        return keys, args

    def _transition_call(self, c: Transition, now: int, *, want_record: bool = True) -> tuple[list[str], list[str]]:
        to = TaskState(c.to)
        from_states = [TaskState(s).value for s in c.from_states]
        if not from_states:
            raise ValueError("transition needs at least one from-state")
        if c.ready_at_ms is not None and to is not TaskState.QUEUED:
            raise ValueError(f"ready_at_ms only applies to a transition to QUEUED, not to {to.value}")
        keys = [self.keys.task(c.task_id), self.keys.ready, self.keys.events, self.keys.counters]
        keys += self.keys.all_states()
        args = [
            c.task_id,
            str(c.attempt),
            uuid.uuid4().hex,
            str(now),
            to.value,
            "" if c.new_attempt is None else str(c.new_attempt),
            "" if c.ready_at_ms is None else str(int(c.ready_at_ms)),
            c.event,
            self._maxlen,
            ",".join(from_states),
            "1" if want_record else "0",
            _json(transition_fields(to, now, c.fields)),
        ]
        return keys, args

    async def _pipe(self, script: Any, calls: list[tuple[list[str], list[str]]]) -> list[Any]:
        async with self._r.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                await script(keys, args, client=pipe)
            return await pipe.execute()

    async def _fetch(self, ids: list[str]) -> list[TaskRecord]:
        if not ids:
            return []
        async with self._r.pipeline(transaction=False) as pipe:
            for task_id in ids:
                pipe.hgetall(self.keys.task(task_id))
            replies = await pipe.execute()
        # An id can sit in an index without its hash only if someone deleted keys by hand: skip it.
        return [self._decode(data) for data in replies if data]

    async def _fetch_queued(self, ids: list[str]) -> list[QueuedTask]:
        if not ids:
            return []
        async with self._r.pipeline(transaction=False) as pipe:
            for task_id in ids:
                pipe.hmget(self.keys.task(task_id), "state", "attempt", "task_json")
            replies = await pipe.execute()
        return [QueuedTask(task_id, int(attempt), task_json or "")
                for task_id, (state, attempt, task_json) in zip(ids, replies)
                if state == TaskState.QUEUED.value and attempt]

    async def _xread(self, last_id: str, count: int, block_ms: int) -> list[tuple[str, dict[str, str]]]:
        reply = await self._r.xread({self.keys.events: last_id}, count=count, block=block_ms or None)
        # RESP2 answers [[stream, entries]], RESP3 {stream: [entries]}: one stream was asked for either way.
        if isinstance(reply, dict):
            entries = next(iter(reply.values()), [[]])[0]
        else:
            entries = reply[0][1] if reply else []
        return parse_stream_entries(entries)

    async def _run(self, op: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run ``call``, retrying transient failures until the retry window closes; translate redis errors."""
        deadline = time.monotonic() + self._window
        failures = 0
        while True:
            try:
                result = await call()
            except _FATAL_CONNECTION_ERRORS as exc:
                raise StoreError(
                    f"Redis at {self._url} refused the credentials ({self._scrub(exc)}); "
                    "check the user and password in REDIS_URL",
                    retryable=False,
                ) from None
            except _TRANSIENT_ERRORS as exc:
                failures += 1
                delay = backoff_s(failures)
                if time.monotonic() + delay > deadline:
                    raise StoreError(
                        f"Redis at {self._url} is unreachable ({op} failed {failures} times over "
                        f"{self._window:g} s: {self._scrub(exc)}); check REDIS_URL and that the server is running"
                    ) from None
                if failures == 1:
                    logger.warning(
                        "Redis at %s unreachable during %s (%s); retrying for up to %g s",
                        self._url, op, self._scrub(exc), self._window,
                    )
                await asyncio.sleep(delay)
                continue
            except rex.ResponseError as exc:
                raise StoreError(
                    f"Redis at {self._url} answered an error to {op}: {self._scrub(exc)}; "
                    "check the server's log and that it is Redis >= 6.2 or Valkey",
                    retryable=False,
                ) from None
            except rex.RedisError as exc:
                raise StoreError(f"Redis at {self._url} failed during {op}: {self._scrub(exc)}") from None
            if failures:
                logger.info("Redis at %s answered again after %d failed tries of %s", self._url, failures, op)
            return result

    def _decode(self, data: Mapping[str, str]) -> TaskRecord:
        try:
            return record_from_hash(data)
        except ValueError as exc:
            raise StoreError(
                f"a task hash under {self.keys.prefix!r} in Redis at {self._url} is corrupt ({exc}); "
                "it was written by something other than aicut's store",
                retryable=False,
            ) from None

    def _scrub(self, exc: BaseException) -> str:
        return _scrub(str(exc) or type(exc).__name__, None, self._password)


def _json(data: Mapping[str, str]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _password_of(url: str | None) -> str | None:
    try:
        return urlsplit(url).password if url and "://" in url else None
    except ValueError:
        return None


def _scrub(text: str, url: str | None, password: str | None = None) -> str:
    """``text`` with the password (given, or taken from ``url``) replaced by ``***``."""
    password = password or _password_of(url)
    return text.replace(password, "***") if password else text
