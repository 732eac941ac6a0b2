"""Domain dataclasses and enums. ``aicut.wire`` converts them to and from the protobuf messages."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class TaskState(str, enum.Enum):
    QUEUED = "QUEUED"
    DISPATCHED = "DISPATCHED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def finished(self) -> bool:
        return self in (TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED)


class WorkerState(str, enum.Enum):
    SERVING = "SERVING"
    DRAINING = "DRAINING"
    NOT_SERVING = "NOT_SERVING"
    OFFLINE = "OFFLINE"


class SourceKind(str, enum.Enum):
    VIDEO = "VIDEO"
    AUDIO = "AUDIO"


@dataclass(frozen=True, slots=True)
class Source:
    url: str
    name: str = ""
    kind: SourceKind = SourceKind.VIDEO


@dataclass(frozen=True, slots=True)
class CoverTitles:
    top: str = ""
    middle: str = ""
    bottom: str = ""


@dataclass(frozen=True, slots=True)
class TaskSpec:
    title: str = ""
    sources: tuple[Source, ...] = ()
    cover: CoverTitles = CoverTitles()
    core_text: str = ""
    category: str = ""
    author: str = ""
    tid: int = 0
    fid: int = 0


@dataclass(frozen=True, slots=True)
class TaskOptions:
    language: str = ""
    burn_subtitles: bool = False
    encoder: str = ""
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Task:
    id: str
    attempt: int = 1
    kind: str = "SMART_CUT"
    thread_url: str = ""
    spec: TaskSpec = TaskSpec()
    options: TaskOptions = TaskOptions()

    @property
    def key(self) -> tuple[str, int]:
        return (self.id, self.attempt)


@dataclass(frozen=True, slots=True)
class VideoStreamInfo:
    codec: str
    width: int
    height: int
    fps: float
    rotation: int = 0
    pix_fmt: str = ""
    bit_rate: int = 0


@dataclass(frozen=True, slots=True)
class AudioStreamInfo:
    codec: str
    sample_rate: int
    channels: int
    bit_rate: int = 0


@dataclass(frozen=True, slots=True)
class MediaInfo:
    container: str
    duration_s: float
    size_bytes: int
    video: tuple[VideoStreamInfo, ...] = ()
    audio: tuple[AudioStreamInfo, ...] = ()


@dataclass(frozen=True, slots=True)
class SourceResult:
    source: Source
    media: MediaInfo
    local_path: str = ""
    sha256: str = ""


@dataclass(frozen=True, slots=True)
class Output:
    name: str
    kind: str
    path: str = ""
    url: str = ""
    size_bytes: int = 0


@dataclass(frozen=True, slots=True)
class TaskResult:
    sources: tuple[SourceResult, ...] = ()
    outputs: tuple[Output, ...] = ()
    stage_seconds: dict[str, float] = field(default_factory=dict)
    machine: str = ""
    reply_url: str = ""          # the forum reply with the results, when the task came from a thread
    reply_note: str = ""


@dataclass(slots=True)
class TaskRecord:
    """A task as the coordinator keeps it (one Redis hash per task)."""

    id: str
    attempt: int = 1
    state: TaskState = TaskState.QUEUED
    task_json: str = ""          # the aicut.v1.Task message as JSON (proto field names), attempt excluded
    origin: str = "api"          # "api", "forum", "cli"
    worker: str = ""             # the worker of the current attempt
    stage: str = ""
    percent: float = 0.0
    created_ms: int = 0
    updated_ms: int = 0
    queued_ms: int = 0
    dispatched_ms: int = 0
    started_ms: int = 0
    finished_ms: int = 0
    result_json: str = ""        # aicut.v1.TaskResult as JSON once SUCCEEDED
    error_code: str = ""
    error_message: str = ""
    retryable: bool = False
    history: str = ""            # one line per finished attempt: "1 vm:8005 FAILED TASK_CRASHED"


@dataclass(frozen=True, slots=True)
class WorkerView:
    """What the scheduler knows of one worker at one moment: a pure value, built from the status stream."""

    name: str                    # the address from machines.yaml, "host:port"
    priority: int = 1            # 1 is highest
    slots: int = 1
    busy: int = 0                # active tasks, including dispatches not yet confirmed
    online: bool = False
    state: WorkerState = WorkerState.OFFLINE
    cordoned: bool = False       # DrainWorker from the operator: no new tasks
    ejected_until: float = 0.0   # monotonic seconds; ejected while now < ejected_until
    capabilities: frozenset[str] = frozenset()   # "nvenc", "x264", "speech", labels …
    last_dispatch: float = 0.0   # monotonic seconds of the latest dispatch to it, for least-recently-used ties
