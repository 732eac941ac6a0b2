from generated.aicut.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WorkerState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WORKER_STATE_UNSPECIFIED: _ClassVar[WorkerState]
    SERVING: _ClassVar[WorkerState]
    DRAINING: _ClassVar[WorkerState]
    NOT_SERVING: _ClassVar[WorkerState]
    OFFLINE: _ClassVar[WorkerState]
WORKER_STATE_UNSPECIFIED: WorkerState
SERVING: WorkerState
DRAINING: WorkerState
NOT_SERVING: WorkerState
OFFLINE: WorkerState

class Gpu(_message.Message):
    __slots__ = ("index", "name", "memory_total_bytes", "memory_free_bytes")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MEMORY_TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FREE_BYTES_FIELD_NUMBER: _ClassVar[int]
    index: int
    name: str
    memory_total_bytes: int
    memory_free_bytes: int
    def __init__(self, index: _Optional[int] = ..., name: _Optional[str] = ..., memory_total_bytes: _Optional[int] = ..., memory_free_bytes: _Optional[int] = ...) -> None: ...

class Capabilities(_message.Message):
    __slots__ = ("nvenc", "nvenc_reason", "nvdec", "nvdec_reason", "gpus", "cpu_count", "speech_model_ready", "speech_model", "speech_model_reason", "encoders", "version")
    NVENC_FIELD_NUMBER: _ClassVar[int]
    NVENC_REASON_FIELD_NUMBER: _ClassVar[int]
    NVDEC_FIELD_NUMBER: _ClassVar[int]
    NVDEC_REASON_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    CPU_COUNT_FIELD_NUMBER: _ClassVar[int]
    SPEECH_MODEL_READY_FIELD_NUMBER: _ClassVar[int]
    SPEECH_MODEL_FIELD_NUMBER: _ClassVar[int]
    SPEECH_MODEL_REASON_FIELD_NUMBER: _ClassVar[int]
    ENCODERS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    nvenc: bool
    nvenc_reason: str
    nvdec: bool
    nvdec_reason: str
    gpus: _containers.RepeatedCompositeFieldContainer[Gpu]
    cpu_count: int
    speech_model_ready: bool
    speech_model: str
    speech_model_reason: str
    encoders: _containers.RepeatedScalarFieldContainer[str]
    version: str
    def __init__(self, nvenc: _Optional[bool] = ..., nvenc_reason: _Optional[str] = ..., nvdec: _Optional[bool] = ..., nvdec_reason: _Optional[str] = ..., gpus: _Optional[_Iterable[_Union[Gpu, _Mapping]]] = ..., cpu_count: _Optional[int] = ..., speech_model_ready: _Optional[bool] = ..., speech_model: _Optional[str] = ..., speech_model_reason: _Optional[str] = ..., encoders: _Optional[_Iterable[str]] = ..., version: _Optional[str] = ...) -> None: ...

class Resources(_message.Message):
    __slots__ = ("memory_total_bytes", "memory_available_bytes", "disk_total_bytes", "disk_free_bytes", "load_avg_1m")
    MEMORY_TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_AVAILABLE_BYTES_FIELD_NUMBER: _ClassVar[int]
    DISK_TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    DISK_FREE_BYTES_FIELD_NUMBER: _ClassVar[int]
    LOAD_AVG_1M_FIELD_NUMBER: _ClassVar[int]
    memory_total_bytes: int
    memory_available_bytes: int
    disk_total_bytes: int
    disk_free_bytes: int
    load_avg_1m: float
    def __init__(self, memory_total_bytes: _Optional[int] = ..., memory_available_bytes: _Optional[int] = ..., disk_total_bytes: _Optional[int] = ..., disk_free_bytes: _Optional[int] = ..., load_avg_1m: _Optional[float] = ...) -> None: ...

class ActiveTask(_message.Message):
    __slots__ = ("task_id", "attempt", "state", "stage", "percent", "started_unix_ms", "pid")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    STARTED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    attempt: int
    state: _common_pb2.TaskState
    stage: str
    percent: float
    started_unix_ms: int
    pid: int
    def __init__(self, task_id: _Optional[str] = ..., attempt: _Optional[int] = ..., state: _Optional[_Union[_common_pb2.TaskState, str]] = ..., stage: _Optional[str] = ..., percent: _Optional[float] = ..., started_unix_ms: _Optional[int] = ..., pid: _Optional[int] = ...) -> None: ...

class WorkerStatus(_message.Message):
    __slots__ = ("worker_id", "state", "state_reason", "slots_total", "slots_busy", "tasks", "capabilities", "resources", "seq", "changed_unix_ns", "sent_unix_ns", "started_unix_ms", "boot_id", "labels")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_REASON_FIELD_NUMBER: _ClassVar[int]
    SLOTS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    SLOTS_BUSY_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    CHANGED_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    SENT_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    STARTED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    BOOT_ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    state: WorkerState
    state_reason: str
    slots_total: int
    slots_busy: int
    tasks: _containers.RepeatedCompositeFieldContainer[ActiveTask]
    capabilities: Capabilities
    resources: Resources
    seq: int
    changed_unix_ns: int
    sent_unix_ns: int
    started_unix_ms: int
    boot_id: str
    labels: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, worker_id: _Optional[str] = ..., state: _Optional[_Union[WorkerState, str]] = ..., state_reason: _Optional[str] = ..., slots_total: _Optional[int] = ..., slots_busy: _Optional[int] = ..., tasks: _Optional[_Iterable[_Union[ActiveTask, _Mapping]]] = ..., capabilities: _Optional[_Union[Capabilities, _Mapping]] = ..., resources: _Optional[_Union[Resources, _Mapping]] = ..., seq: _Optional[int] = ..., changed_unix_ns: _Optional[int] = ..., sent_unix_ns: _Optional[int] = ..., started_unix_ms: _Optional[int] = ..., boot_id: _Optional[str] = ..., labels: _Optional[_Iterable[str]] = ...) -> None: ...

class SubmitTaskRequest(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: _common_pb2.Task
    def __init__(self, task: _Optional[_Union[_common_pb2.Task, _Mapping]] = ...) -> None: ...

class SubmitTaskReply(_message.Message):
    __slots__ = ("task_id", "attempt", "duplicate", "status")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    attempt: int
    duplicate: bool
    status: WorkerStatus
    def __init__(self, task_id: _Optional[str] = ..., attempt: _Optional[int] = ..., duplicate: _Optional[bool] = ..., status: _Optional[_Union[WorkerStatus, _Mapping]] = ...) -> None: ...

class CancelTaskRequest(_message.Message):
    __slots__ = ("task_id", "attempt", "reason")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    attempt: int
    reason: str
    def __init__(self, task_id: _Optional[str] = ..., attempt: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class CancelTaskReply(_message.Message):
    __slots__ = ("cancelled", "attempt")
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    cancelled: bool
    attempt: int
    def __init__(self, cancelled: _Optional[bool] = ..., attempt: _Optional[int] = ...) -> None: ...

class HealthRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Hello(_message.Message):
    __slots__ = ("peer",)
    PEER_FIELD_NUMBER: _ClassVar[int]
    peer: str
    def __init__(self, peer: _Optional[str] = ...) -> None: ...

class Ping(_message.Message):
    __slots__ = ("nonce", "sent_unix_ns")
    NONCE_FIELD_NUMBER: _ClassVar[int]
    SENT_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    nonce: int
    sent_unix_ns: int
    def __init__(self, nonce: _Optional[int] = ..., sent_unix_ns: _Optional[int] = ...) -> None: ...

class Pong(_message.Message):
    __slots__ = ("nonce", "ping_sent_unix_ns", "sent_unix_ns")
    NONCE_FIELD_NUMBER: _ClassVar[int]
    PING_SENT_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    SENT_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    nonce: int
    ping_sent_unix_ns: int
    sent_unix_ns: int
    def __init__(self, nonce: _Optional[int] = ..., ping_sent_unix_ns: _Optional[int] = ..., sent_unix_ns: _Optional[int] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("event_seqs",)
    EVENT_SEQS_FIELD_NUMBER: _ClassVar[int]
    event_seqs: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, event_seqs: _Optional[_Iterable[int]] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("status_seq", "sent_unix_ns", "state", "slots_busy")
    STATUS_SEQ_FIELD_NUMBER: _ClassVar[int]
    SENT_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SLOTS_BUSY_FIELD_NUMBER: _ClassVar[int]
    status_seq: int
    sent_unix_ns: int
    state: WorkerState
    slots_busy: int
    def __init__(self, status_seq: _Optional[int] = ..., sent_unix_ns: _Optional[int] = ..., state: _Optional[_Union[WorkerState, str]] = ..., slots_busy: _Optional[int] = ...) -> None: ...

class StatusStreamRequest(_message.Message):
    __slots__ = ("hello", "ping", "ack")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    ping: Ping
    ack: Ack
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., ping: _Optional[_Union[Ping, _Mapping]] = ..., ack: _Optional[_Union[Ack, _Mapping]] = ...) -> None: ...

class StatusStreamMessage(_message.Message):
    __slots__ = ("status", "heartbeat", "pong", "event")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    PONG_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    status: WorkerStatus
    heartbeat: Heartbeat
    pong: Pong
    event: _common_pb2.TaskEvent
    def __init__(self, status: _Optional[_Union[WorkerStatus, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., pong: _Optional[_Union[Pong, _Mapping]] = ..., event: _Optional[_Union[_common_pb2.TaskEvent, _Mapping]] = ...) -> None: ...
