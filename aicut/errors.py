"""The one exception tree of aicut. Third-party errors (requests, av, grpc, redis) are translated at the boundary.

AicutError                       root; ``code`` is stable and machine-readable, ``retryable`` says whether trying
│                                again can help, the message tells a person what failed and what to do
├── ConfigError                  settings, machines.yaml, .env, refusing an unsafe bind
├── InvalidTaskError             a task that can never run as sent   → INVALID_ARGUMENT
├── NotFoundError                no such task here                   → NOT_FOUND
├── StoreError                   Redis/Valkey unreachable or answering errors (retryable)
├── RefusedError                 a request the worker will not take now
│   ├── WorkerFullError          every slot is busy                  → RESOURCE_EXHAUSTED
│   ├── WorkerNotReadyError      draining or unhealthy               → FAILED_PRECONDITION
│   └── TaskConflictError        another attempt of it runs here     → ALREADY_EXISTS
└── TaskError                    ends one task
    ├── FetchError               a download failed (network: retryable)
    │   ├── UrlNotAllowedError   scheme, host or address refused by the fetch policy (final)
    │   ├── HttpStatusError      4xx final, 5xx and 429 retryable
    │   ├── NotMediaError        the bytes are not a video or audio file (final)
    │   ├── TooLargeError        over the size cap (final)
    │   └── FetchTimeoutError    connect, read or total time exceeded (retryable)
    ├── MediaError               the file cannot be used (final)
    │   ├── NoVideoStreamError
    │   ├── NoAudioStreamError
    │   ├── EmptyMediaError
    │   └── NoSpeechError        nobody speaks in it, so there is nothing to cut by
    ├── TranscribeError          speech recognition failed (runtime and GPU faults retryable, a bad model not)
    ├── RenderError              cutting, encoding or writing the output failed (an NVENC fault retryable)
    ├── TaskCrashedError         the task's process died (retryable)
    ├── TaskInterruptedError     cancelled, or handed back when the worker drained
    └── ForumError               the Discuz forum refused or could not be reached (outage: retryable)
        ├── ForumLoginError      wrong password, login_strike, inactive account (final until the operator acts)
        │   └── ForumConfigError a captcha, security question or frozen account a bot cannot pass (final)
        ├── ForumFloodError      post_flood_ctrl: wait ``wait_s`` and post again (retryable)
        ├── ForumRefusedError    the forum answered a message id other than success (``message_id``)
        └── RequestError         the member's post cannot be processed: no video link, unsupported category
                                 (final; the member gets a polite reply)
"""

from __future__ import annotations


class AicutError(Exception):
    """Root of every error aicut raises on purpose."""

    code = "INTERNAL"
    retryable = False

    def __init__(self, message: str, *, code: str | None = None, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if retryable is not None:
            self.retryable = retryable

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, retryable={self.retryable}, message={self.message!r})"


class ConfigError(AicutError):
    code = "CONFIG"


class InvalidTaskError(AicutError):
    code = "INVALID_TASK"


class NotFoundError(AicutError):
    code = "NOT_FOUND"


class StoreError(AicutError):
    """Redis/Valkey cannot be reached or answered an error; the message names the server and what to check."""

    code = "STORE"
    retryable = True


class RefusedError(AicutError):
    code = "REFUSED"


class TaskConflictError(RefusedError):
    code = "TASK_CONFLICT"


class WorkerFullError(RefusedError):
    code = "WORKER_FULL"
    retryable = True


class WorkerNotReadyError(RefusedError):
    code = "WORKER_NOT_READY"
    retryable = True


class TaskError(AicutError):
    code = "TASK_FAILED"


class FetchError(TaskError):
    code = "FETCH_FAILED"
    retryable = True


class UrlNotAllowedError(FetchError):
    code = "URL_NOT_ALLOWED"
    retryable = False


class HttpStatusError(FetchError):
    code = "HTTP_STATUS"

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message, retryable=status >= 500 or status in (408, 429))
        self.status = status


class NotMediaError(FetchError):
    code = "NOT_MEDIA"
    retryable = False


class TooLargeError(FetchError):
    code = "TOO_LARGE"
    retryable = False


class FetchTimeoutError(FetchError):
    code = "FETCH_TIMEOUT"
    retryable = True


class MediaError(TaskError):
    code = "UNREADABLE_MEDIA"
    retryable = False


class NoVideoStreamError(MediaError):
    code = "NO_VIDEO"


class NoAudioStreamError(MediaError):
    code = "NO_AUDIO"


class EmptyMediaError(MediaError):
    code = "EMPTY_MEDIA"


class NoSpeechError(MediaError):
    code = "NO_SPEECH"


class TranscribeError(TaskError):
    code = "TRANSCRIBE_FAILED"


class RenderError(TaskError):
    code = "RENDER_FAILED"


class TaskCrashedError(TaskError):
    code = "TASK_CRASHED"
    retryable = True


class TaskInterruptedError(TaskError):
    code = "INTERRUPTED"
    retryable = True


class ForumError(TaskError):
    """The forum could not be reached or refused what we asked; ``message_id`` is Discuz's id when it said one."""

    code = "FORUM"
    retryable = True

    def __init__(self, message: str, *, code: str | None = None, retryable: bool | None = None,
                 message_id: str = "") -> None:
        super().__init__(message, code=code, retryable=retryable)
        self.message_id = message_id


class ForumLoginError(ForumError):
    code = "FORUM_LOGIN"
    retryable = False


class ForumConfigError(ForumLoginError):
    """Something only the operator can fix on the forum: captcha on, security question, frozen account."""

    code = "FORUM_CONFIG"


class ForumFloodError(ForumError):
    code = "FORUM_FLOOD"
    retryable = True

    def __init__(self, message: str, *, wait_s: float = 15.0, message_id: str = "post_flood_ctrl") -> None:
        super().__init__(message, message_id=message_id)
        self.wait_s = wait_s


class ForumRefusedError(ForumError):
    code = "FORUM_REFUSED"
    retryable = False


class RequestError(TaskError):
    """A request the member can fix (no video link, unsupported category): final, answered politely; ``fields`` fill
    the polite reply's template (e.g. the category)."""

    code = "BAD_REQUEST"
    retryable = False

    def __init__(self, message: str, *, code: str | None = None, fields: dict[str, str] | None = None) -> None:
        super().__init__(message, code=code)
        self.fields = dict(fields or {})
