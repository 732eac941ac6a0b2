from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TaskState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_STATE_UNSPECIFIED: _ClassVar[TaskState]
    QUEUED: _ClassVar[TaskState]
    DISPATCHED: _ClassVar[TaskState]
    RUNNING: _ClassVar[TaskState]
    SUCCEEDED: _ClassVar[TaskState]
    FAILED: _ClassVar[TaskState]
    CANCELLED: _ClassVar[TaskState]

class TaskKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_KIND_UNSPECIFIED: _ClassVar[TaskKind]
    SMART_CUT: _ClassVar[TaskKind]

class SourceKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SOURCE_KIND_UNSPECIFIED: _ClassVar[SourceKind]
    VIDEO: _ClassVar[SourceKind]
    AUDIO: _ClassVar[SourceKind]
TASK_STATE_UNSPECIFIED: TaskState
QUEUED: TaskState
DISPATCHED: TaskState
RUNNING: TaskState
SUCCEEDED: TaskState
FAILED: TaskState
CANCELLED: TaskState
TASK_KIND_UNSPECIFIED: TaskKind
SMART_CUT: TaskKind
SOURCE_KIND_UNSPECIFIED: SourceKind
VIDEO: SourceKind
AUDIO: SourceKind

class Source(_message.Message):
    __slots__ = ("url", "name", "kind")
    URL_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    url: str
    name: str
    kind: SourceKind
    def __init__(self, url: _Optional[str] = ..., name: _Optional[str] = ..., kind: _Optional[_Union[SourceKind, str]] = ...) -> None: ...

class CoverTitles(_message.Message):
    __slots__ = ("top", "middle", "bottom")
    TOP_FIELD_NUMBER: _ClassVar[int]
    MIDDLE_FIELD_NUMBER: _ClassVar[int]
    BOTTOM_FIELD_NUMBER: _ClassVar[int]
    top: str
    middle: str
    bottom: str
    def __init__(self, top: _Optional[str] = ..., middle: _Optional[str] = ..., bottom: _Optional[str] = ...) -> None: ...

class TaskSpec(_message.Message):
    __slots__ = ("title", "sources", "cover", "core_text", "category", "author", "tid", "fid")
    TITLE_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    COVER_FIELD_NUMBER: _ClassVar[int]
    CORE_TEXT_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    TID_FIELD_NUMBER: _ClassVar[int]
    FID_FIELD_NUMBER: _ClassVar[int]
    title: str
    sources: _containers.RepeatedCompositeFieldContainer[Source]
    cover: CoverTitles
    core_text: str
    category: str
    author: str
    tid: int
    fid: int
    def __init__(self, title: _Optional[str] = ..., sources: _Optional[_Iterable[_Union[Source, _Mapping]]] = ..., cover: _Optional[_Union[CoverTitles, _Mapping]] = ..., core_text: _Optional[str] = ..., category: _Optional[str] = ..., author: _Optional[str] = ..., tid: _Optional[int] = ..., fid: _Optional[int] = ...) -> None: ...

class TaskOptions(_message.Message):
    __slots__ = ("language", "burn_subtitles", "encoder", "extra")
    class ExtraEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    BURN_SUBTITLES_FIELD_NUMBER: _ClassVar[int]
    ENCODER_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    language: str
    burn_subtitles: bool
    encoder: str
    extra: _containers.ScalarMap[str, str]
    def __init__(self, language: _Optional[str] = ..., burn_subtitles: _Optional[bool] = ..., encoder: _Optional[str] = ..., extra: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Task(_message.Message):
    __slots__ = ("id", "attempt", "kind", "thread_url", "spec", "options")
    ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    THREAD_URL_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    id: str
    attempt: int
    kind: TaskKind
    thread_url: str
    spec: TaskSpec
    options: TaskOptions
    def __init__(self, id: _Optional[str] = ..., attempt: _Optional[int] = ..., kind: _Optional[_Union[TaskKind, str]] = ..., thread_url: _Optional[str] = ..., spec: _Optional[_Union[TaskSpec, _Mapping]] = ..., options: _Optional[_Union[TaskOptions, _Mapping]] = ...) -> None: ...

class VideoStreamInfo(_message.Message):
    __slots__ = ("codec", "width", "height", "fps", "rotation", "pix_fmt", "bit_rate")
    CODEC_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    ROTATION_FIELD_NUMBER: _ClassVar[int]
    PIX_FMT_FIELD_NUMBER: _ClassVar[int]
    BIT_RATE_FIELD_NUMBER: _ClassVar[int]
    codec: str
    width: int
    height: int
    fps: float
    rotation: int
    pix_fmt: str
    bit_rate: int
    def __init__(self, codec: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., fps: _Optional[float] = ..., rotation: _Optional[int] = ..., pix_fmt: _Optional[str] = ..., bit_rate: _Optional[int] = ...) -> None: ...

class AudioStreamInfo(_message.Message):
    __slots__ = ("codec", "sample_rate", "channels", "bit_rate")
    CODEC_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    BIT_RATE_FIELD_NUMBER: _ClassVar[int]
    codec: str
    sample_rate: int
    channels: int
    bit_rate: int
    def __init__(self, codec: _Optional[str] = ..., sample_rate: _Optional[int] = ..., channels: _Optional[int] = ..., bit_rate: _Optional[int] = ...) -> None: ...

class MediaInfo(_message.Message):
    __slots__ = ("container", "duration_s", "size_bytes", "video", "audio")
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    container: str
    duration_s: float
    size_bytes: int
    video: _containers.RepeatedCompositeFieldContainer[VideoStreamInfo]
    audio: _containers.RepeatedCompositeFieldContainer[AudioStreamInfo]
    def __init__(self, container: _Optional[str] = ..., duration_s: _Optional[float] = ..., size_bytes: _Optional[int] = ..., video: _Optional[_Iterable[_Union[VideoStreamInfo, _Mapping]]] = ..., audio: _Optional[_Iterable[_Union[AudioStreamInfo, _Mapping]]] = ...) -> None: ...

class SourceResult(_message.Message):
    __slots__ = ("source", "media", "local_path", "sha256")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    LOCAL_PATH_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    source: Source
    media: MediaInfo
    local_path: str
    sha256: str
    def __init__(self, source: _Optional[_Union[Source, _Mapping]] = ..., media: _Optional[_Union[MediaInfo, _Mapping]] = ..., local_path: _Optional[str] = ..., sha256: _Optional[str] = ...) -> None: ...

class Output(_message.Message):
    __slots__ = ("name", "kind", "path", "url", "size_bytes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    path: str
    url: str
    size_bytes: int
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., path: _Optional[str] = ..., url: _Optional[str] = ..., size_bytes: _Optional[int] = ...) -> None: ...

class TaskResult(_message.Message):
    __slots__ = ("sources", "outputs", "stage_seconds", "machine", "reply_url", "reply_note")
    class StageSecondsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    STAGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MACHINE_FIELD_NUMBER: _ClassVar[int]
    REPLY_URL_FIELD_NUMBER: _ClassVar[int]
    REPLY_NOTE_FIELD_NUMBER: _ClassVar[int]
    sources: _containers.RepeatedCompositeFieldContainer[SourceResult]
    outputs: _containers.RepeatedCompositeFieldContainer[Output]
    stage_seconds: _containers.ScalarMap[str, float]
    machine: str
    reply_url: str
    reply_note: str
    def __init__(self, sources: _Optional[_Iterable[_Union[SourceResult, _Mapping]]] = ..., outputs: _Optional[_Iterable[_Union[Output, _Mapping]]] = ..., stage_seconds: _Optional[_Mapping[str, float]] = ..., machine: _Optional[str] = ..., reply_url: _Optional[str] = ..., reply_note: _Optional[str] = ...) -> None: ...

class TaskAccepted(_message.Message):
    __slots__ = ("worker_id",)
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    def __init__(self, worker_id: _Optional[str] = ...) -> None: ...

class TaskProgress(_message.Message):
    __slots__ = ("stage", "percent", "detail")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    stage: str
    percent: float
    detail: str
    def __init__(self, stage: _Optional[str] = ..., percent: _Optional[float] = ..., detail: _Optional[str] = ...) -> None: ...

class TaskSucceeded(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: TaskResult
    def __init__(self, result: _Optional[_Union[TaskResult, _Mapping]] = ...) -> None: ...

class TaskFailed(_message.Message):
    __slots__ = ("code", "message", "retryable", "stage")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    retryable: bool
    stage: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., retryable: _Optional[bool] = ..., stage: _Optional[str] = ...) -> None: ...

class TaskCancelled(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class TaskEvent(_message.Message):
    __slots__ = ("seq", "task_id", "attempt", "at_unix_ns", "worker_id", "accepted", "progress", "succeeded", "failed", "cancelled")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    AT_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    seq: int
    task_id: str
    attempt: int
    at_unix_ns: int
    worker_id: str
    accepted: TaskAccepted
    progress: TaskProgress
    succeeded: TaskSucceeded
    failed: TaskFailed
    cancelled: TaskCancelled
    def __init__(self, seq: _Optional[int] = ..., task_id: _Optional[str] = ..., attempt: _Optional[int] = ..., at_unix_ns: _Optional[int] = ..., worker_id: _Optional[str] = ..., accepted: _Optional[_Union[TaskAccepted, _Mapping]] = ..., progress: _Optional[_Union[TaskProgress, _Mapping]] = ..., succeeded: _Optional[_Union[TaskSucceeded, _Mapping]] = ..., failed: _Optional[_Union[TaskFailed, _Mapping]] = ..., cancelled: _Optional[_Union[TaskCancelled, _Mapping]] = ...) -> None: ...
