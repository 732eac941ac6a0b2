"""Pure decisions between a forum request and a task: the task id, the Task message, and whether it can run."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from aicut.forum.models import ForumRequest, ForumSettings
from generated.aicut.v1 import common_pb2 as pb

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

# Failures the member can fix by posting again: the worker (or the watcher) answers them with what to do. Any other
# failure for good gets the coordinator's apology (``failure_key``).
MEMBER_FIXABLE = frozenset({"NO_SOURCE", "UNSUPPORTED_CATEGORY", "NOT_MEDIA", "NO_VIDEO", "NO_AUDIO", "NO_SPEECH",
                            "EMPTY_MEDIA", "UNREADABLE_MEDIA", "TOO_LARGE", "URL_NOT_ALLOWED", "HTTP_STATUS"})


def failure_key(task_id: str) -> str:
    """The marker key of the coordinator's "could not process" reply: not the task's own id, so an operator's later
    RetryTask that succeeds still posts its result reply (which looks for the task id alone)."""
    return f"{task_id}.failed"


def forum_host(url: str) -> str:
    """The forum's host (and port when not the default) as a task id part: ``bbs.example.com``, ``127.0.0.1-8080``."""
    parts = urlsplit(url)
    host = (parts.hostname or "forum").lower()
    if parts.port and parts.port not in (80, 443):
        host = f"{host}-{parts.port}"
    return _UNSAFE.sub("-", host)


def is_thread_url(url: str) -> bool:
    """Discuz thread links in both styles: forum.php?mod=viewthread&tid=N and thread-N-1-1.html."""
    parts = urlsplit(url)
    return ("mod=viewthread" in parts.query and "tid=" in parts.query) or (
        parts.path.rsplit("/", 1)[-1].startswith("thread-") and parts.path.endswith(".html"))


def task_id_for(base_url: str, tid: int) -> str:
    """One task per thread per forum, whoever submits it and however often: ``forum-<host>-<tid>``."""
    return f"forum-{forum_host(base_url)}-{int(tid)}"


def board_key(base_url: str, fid: int) -> str:
    """The seen-threads set of one board of one forum."""
    return f"{forum_host(base_url)}:{int(fid)}"


def problem_of(request: ForumRequest, settings: ForumSettings) -> tuple[str, str, dict[str, str]] | None:
    """Why a request cannot be processed, as (code, a sentence for the operator, the fields of the member's polite
    reply); None if it can."""
    category = request.category.strip()
    if category and not any(k in category for k in settings.video_categories):
        kinds = "、".join(f"“{k}”" for k in settings.video_categories)
        return ("UNSUPPORTED_CATEGORY",
                f"thread category {category!r} is not a video job; aicut cuts talking-head videos (categories "
                f"containing {' / '.join(settings.video_categories)}, or none)",
                {"category": category, "supported": f"口播视频剪辑（分类含{kinds}，或不选分类）"})
    if not request.videos:
        audio = len(request.sources)
        found = f" (found {audio} audio file(s) but no video)" if audio else ""
        return ("NO_SOURCE", f"the first post has no video link{found}; post the video as a [url=…]name.mp4[/url] "
                             "link, a [media] player or an attachment", {})
    return None


def task_from_request(request: ForumRequest, thread_url: str, base_url: str) -> pb.Task:
    """The Task the coordinator queues for a forum request (the spec is already parsed: the worker need not)."""
    kinds = {"video": pb.VIDEO, "audio": pb.AUDIO}
    return pb.Task(
        id=task_id_for(base_url, request.tid), attempt=1, kind=pb.SMART_CUT, thread_url=thread_url,
        spec=pb.TaskSpec(
            title=request.subject, core_text=request.core_text, category=request.category, author=request.author,
            tid=request.tid, fid=request.fid,
            sources=[pb.Source(url=s.url, name=s.name, kind=kinds[s.kind]) for s in request.sources],
            cover=pb.CoverTitles(top=request.cover_top, middle=request.cover_middle, bottom=request.cover_bottom)))
