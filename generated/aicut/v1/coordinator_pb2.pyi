from generated.aicut.v1 import common_pb2 as _common_pb2
from generated.aicut.v1 import worker_pb2 as _worker_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MonitoringRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class MonitoringStatus(_message.Message):
    __slots__ = ("enabled", "detail", "last_check_unix_ms", "last_error")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    LAST_CHECK_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    detail: str
    last_check_unix_ms: int
    last_error: str
    def __init__(self, enabled: _Optional[bool] = ..., detail: _Optional[str] = ..., last_check_unix_ms: _Optional[int] = ..., last_error: _Optional[str] = ...) -> None: ...

class SubmitRequest(_message.Message):
    __slots__ = ("url", "name", "title", "id", "options", "cover", "core_text")
    URL_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    COVER_FIELD_NUMBER: _ClassVar[int]
    CORE_TEXT_FIELD_NUMBER: _ClassVar[int]
    url: str
    name: str
    title: str
    id: str
    options: _common_pb2.TaskOptions
    cover: _common_pb2.CoverTitles
    core_text: str
    def __init__(self, url: _Optional[str] = ..., name: _Optional[str] = ..., title: _Optional[str] = ..., id: _Optional[str] = ..., options: _Optional[_Union[_common_pb2.TaskOptions, _Mapping]] = ..., cover: _Optional[_Union[_common_pb2.CoverTitles, _Mapping]] = ..., core_text: _Optional[str] = ...) -> None: ...

class TaskRef(_message.Message):
    __slots__ = ("id", "reason")
    ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    id: str
    reason: str
    def __init__(self, id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class TaskInfo(_message.Message):
    __slots__ = ("id", "attempt", "state", "worker", "stage", "percent", "task", "result", "error_code", "error_message", "retryable", "origin", "created_unix_ms", "updated_unix_ms", "queued_unix_ms", "dispatched_unix_ms", "started_unix_ms", "finished_unix_ms", "history")
    ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    QUEUED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    DISPATCHED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    STARTED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    id: str
    attempt: int
    state: _common_pb2.TaskState
    worker: str
    stage: str
    percent: float
    task: _common_pb2.Task
    result: _common_pb2.TaskResult
    error_code: str
    error_message: str
    retryable: bool
    origin: str
    created_unix_ms: int
    updated_unix_ms: int
    queued_unix_ms: int
    dispatched_unix_ms: int
    started_unix_ms: int
    finished_unix_ms: int
    history: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., attempt: _Optional[int] = ..., state: _Optional[_Union[_common_pb2.TaskState, str]] = ..., worker: _Optional[str] = ..., stage: _Optional[str] = ..., percent: _Optional[float] = ..., task: _Optional[_Union[_common_pb2.Task, _Mapping]] = ..., result: _Optional[_Union[_common_pb2.TaskResult, _Mapping]] = ..., error_code: _Optional[str] = ..., error_message: _Optional[str] = ..., retryable: _Optional[bool] = ..., origin: _Optional[str] = ..., created_unix_ms: _Optional[int] = ..., updated_unix_ms: _Optional[int] = ..., queued_unix_ms: _Optional[int] = ..., dispatched_unix_ms: _Optional[int] = ..., started_unix_ms: _Optional[int] = ..., finished_unix_ms: _Optional[int] = ..., history: _Optional[_Iterable[str]] = ...) -> None: ...

class ListTasksRequest(_message.Message):
    __slots__ = ("state", "offset", "limit")
    STATE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    state: _common_pb2.TaskState
    offset: int
    limit: int
    def __init__(self, state: _Optional[_Union[_common_pb2.TaskState, str]] = ..., offset: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class ListTasksReply(_message.Message):
    __slots__ = ("tasks", "total")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[TaskInfo]
    total: int
    def __init__(self, tasks: _Optional[_Iterable[_Union[TaskInfo, _Mapping]]] = ..., total: _Optional[int] = ...) -> None: ...

class ListWorkersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WorkerInfo(_message.Message):
    __slots__ = ("address", "priority", "slots", "online", "state", "state_reason", "busy", "cordoned", "ejected", "ejected_until_unix_ms", "rtt_ms", "last_seen_unix_ms", "last_error", "status", "dispatched", "succeeded", "failed", "consecutive_failures")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    ONLINE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_REASON_FIELD_NUMBER: _ClassVar[int]
    BUSY_FIELD_NUMBER: _ClassVar[int]
    CORDONED_FIELD_NUMBER: _ClassVar[int]
    EJECTED_FIELD_NUMBER: _ClassVar[int]
    EJECTED_UNTIL_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    RTT_MS_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DISPATCHED_FIELD_NUMBER: _ClassVar[int]
    SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    CONSECUTIVE_FAILURES_FIELD_NUMBER: _ClassVar[int]
    address: str
    priority: int
    slots: int
    online: bool
    state: _worker_pb2.WorkerState
    state_reason: str
    busy: int
    cordoned: bool
    ejected: bool
    ejected_until_unix_ms: int
    rtt_ms: float
    last_seen_unix_ms: int
    last_error: str
    status: _worker_pb2.WorkerStatus
    dispatched: int
    succeeded: int
    failed: int
    consecutive_failures: int
    def __init__(self, address: _Optional[str] = ..., priority: _Optional[int] = ..., slots: _Optional[int] = ..., online: _Optional[bool] = ..., state: _Optional[_Union[_worker_pb2.WorkerState, str]] = ..., state_reason: _Optional[str] = ..., busy: _Optional[int] = ..., cordoned: _Optional[bool] = ..., ejected: _Optional[bool] = ..., ejected_until_unix_ms: _Optional[int] = ..., rtt_ms: _Optional[float] = ..., last_seen_unix_ms: _Optional[int] = ..., last_error: _Optional[str] = ..., status: _Optional[_Union[_worker_pb2.WorkerStatus, _Mapping]] = ..., dispatched: _Optional[int] = ..., succeeded: _Optional[int] = ..., failed: _Optional[int] = ..., consecutive_failures: _Optional[int] = ...) -> None: ...

class ListWorkersReply(_message.Message):
    __slots__ = ("workers",)
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    workers: _containers.RepeatedCompositeFieldContainer[WorkerInfo]
    def __init__(self, workers: _Optional[_Iterable[_Union[WorkerInfo, _Mapping]]] = ...) -> None: ...

class DrainWorkerRequest(_message.Message):
    __slots__ = ("address", "undo")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    UNDO_FIELD_NUMBER: _ClassVar[int]
    address: str
    undo: bool
    def __init__(self, address: _Optional[str] = ..., undo: _Optional[bool] = ...) -> None: ...

class WatchEventsRequest(_message.Message):
    __slots__ = ("since_id",)
    SINCE_ID_FIELD_NUMBER: _ClassVar[int]
    since_id: str
    def __init__(self, since_id: _Optional[str] = ...) -> None: ...

class ClusterEvent(_message.Message):
    __slots__ = ("id", "kind", "at_unix_ms", "task_id", "attempt", "worker", "from_state", "to_state", "text", "fields")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    FROM_STATE_FIELD_NUMBER: _ClassVar[int]
    TO_STATE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: str
    at_unix_ms: int
    task_id: str
    attempt: int
    worker: str
    from_state: _common_pb2.TaskState
    to_state: _common_pb2.TaskState
    text: str
    fields: _containers.ScalarMap[str, str]
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[str] = ..., at_unix_ms: _Optional[int] = ..., task_id: _Optional[str] = ..., attempt: _Optional[int] = ..., worker: _Optional[str] = ..., from_state: _Optional[_Union[_common_pb2.TaskState, str]] = ..., to_state: _Optional[_Union[_common_pb2.TaskState, str]] = ..., text: _Optional[str] = ..., fields: _Optional[_Mapping[str, str]] = ...) -> None: ...
