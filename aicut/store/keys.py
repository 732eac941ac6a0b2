"""Every Redis key name, cap, timeout and default the store uses, in one place.

All keys live under one prefix (default ``aicut:``) so tests and benchmarks can share a server and still be isolated.
For Redis Cluster use a hash-tagged prefix such as ``{aicut}:``: the Lua scripts touch several keys at once and a
cluster only allows that when every key hashes to the same slot.

Layout (``P`` is the prefix):

===========================  ==========  =======================================================================
key                          type        content
===========================  ==========  =======================================================================
``P task:<id>``              hash        one TaskRecord, every field a string (see ``aicut.store.codec``)
``P ready``                  zset        ids of QUEUED tasks, scored by ready-at ms (a retry's backoff is a
                                         future score; due = score <= now)
``P state:<STATE>``          zset        one per TaskState: ids scored by created ms (paging and ZCARD counts)
``P tasks``                  zset        every task id scored by created ms
``P seen:<board>``           set         forum thread ids already taken from that board
``P flags``                  hash        switches that must survive restarts (``monitoring`` = "1"/"0")
``P events``                 stream      capped (XADD MAXLEN ~ EVENTS_MAXLEN) task and cluster events
``P counters``               hash        monotonically increasing counters (``created``, ``to:SUCCEEDED`` …)
===========================  ==========  =======================================================================
"""

from __future__ import annotations

from aicut.models import TaskState

DEFAULT_PREFIX = "aicut:"

# Stream cap. "~" lets Redis trim whole radix-tree nodes (100 entries each by default), so the length stays
# between EVENTS_MAXLEN and EVENTS_MAXLEN + 100 while XADD stays O(1).
EVENTS_MAXLEN = 10_000

# Flags (names in the flags hash).
FLAG_MONITORING = "monitoring"                            # "1" / "0": the operator's switch for the forum watcher
FLAG_MONITORING_LAST_CHECK = "monitoring:last_check_ms"   # when the watcher last finished looking at the forum
FLAG_MONITORING_LAST_ERROR = "monitoring:last_error"      # what went wrong then ("" when nothing)
FLAG_MONITORING_FAILURES = "monitoring:failures_after"    # event id up to which failed forum tasks were answered
FLAG_MONITORING_BASELINE = "monitoring:baseline:"         # + board key: the newest tid when first watched

# Counters (names in the counters hash). "to:<STATE>" counts every entry into a state, creation included.
COUNTER_CREATED = "created"
COUNTER_TO_PREFIX = "to:"

# Event stream entry kinds written by the store itself; free-form kinds come from Store.append_event.
EVENT_TASK = "task"           # a state change: id, attempt (after it), prev_attempt, from, to, worker, event, ts
                              # (creation: from "" to QUEUED, event "created", plus origin)
EVENT_PROGRESS = "progress"   # a RUNNING task entered a new stage: id, attempt, stage, percent, ts

# Connection and retry defaults.
RETRY_WINDOW_S = 30.0         # how long an operation keeps retrying while Redis is unreachable (a restart)
RETRY_BASE_S = 0.05           # first backoff; doubles per failure …
RETRY_CAP_S = 1.0             # … up to this, so recovery is noticed within about a second
SOCKET_TIMEOUT_S = 10.0       # one command's reply; a hung server is detected after this
SOCKET_CONNECT_TIMEOUT_S = 3.0
# Blocking stream reads are split into pieces this long so that no single read nears SOCKET_TIMEOUT_S.
BLOCK_CHUNK_MS = 5_000

# Paging.
DEFAULT_PAGE_LIMIT = 50
MAX_PAGE_LIMIT = 1_000
DEFAULT_DUE_LIMIT = 100
DEFAULT_EVENT_COUNT = 100

# Order of the per-state index keys in the Lua scripts' KEYS; derived from the enum so the two cannot drift.
STATES: tuple[TaskState, ...] = tuple(TaskState)


class Keys:
    """Key names under one prefix."""

    __slots__ = ("prefix", "ready", "tasks", "flags", "events", "counters", "_states")

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix = prefix
        self.ready = f"{prefix}ready"
        self.tasks = f"{prefix}tasks"
        self.flags = f"{prefix}flags"
        self.events = f"{prefix}events"
        self.counters = f"{prefix}counters"
        self._states = {s: f"{prefix}state:{s.value}" for s in STATES}

    def task(self, task_id: str) -> str:
        """The hash of one task."""
        return f"{self.prefix}task:{task_id}"

    def state(self, state: TaskState) -> str:
        """The index of the tasks in one state."""
        return self._states[TaskState(state)]

    def all_states(self) -> list[str]:
        """The per-state index keys, in ``STATES`` order."""
        return list(self._states.values())

    def seen(self, board: str) -> str:
        """The set of thread ids already taken from one forum board."""
        return f"{self.prefix}seen:{board}"

    def pattern(self) -> str:
        """A SCAN MATCH pattern for every key under the prefix (glob characters in the prefix escaped)."""
        escaped = "".join("\\" + c if c in "*?[]\\" else c for c in self.prefix)
        return escaped + "*"
