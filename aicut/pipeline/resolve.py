"""resolve — the first stage: a task that names only a forum thread gets its request read from the thread itself.

A task from the forum watcher arrives already resolved (the coordinator parsed the first post); a thread URL
submitted by hand arrives bare, and the worker logs in and parses the thread, as the seed's workers did.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from aicut.errors import ConfigError, InvalidTaskError, RequestError
from aicut.forum import parse
from aicut.forum.models import ForumAccount, ForumSettings
from aicut.forum.tasks import problem_of
from aicut.models import CoverTitles, Source, SourceKind, Task

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ForumOptions:
    """What the resolve and publish stages need to reach the forum (settings from machines.yaml, login from .env)."""

    settings: ForumSettings = ForumSettings()
    account: ForumAccount = ForumAccount()
    cookie_file: str = ""                # "" = <work dir>/forum-cookies.json


def forum_base(task: Task, settings: ForumSettings) -> str:
    """The forum's base URL: from machines.yaml, else the directory of the task's thread URL."""
    if settings.base_url:
        return settings.base_url
    parts = urlsplit(task.thread_url)
    return f"{parts.scheme}://{parts.netloc}{parts.path.rsplit('/', 1)[0]}/"


def open_client(task: Task, options: ForumOptions, work_dir: Path):  # noqa: ANN201 — ForumClient, imported lazily
    """A logged-in-on-demand forum client for this task's forum."""
    from aicut.forum.client import ForumClient

    if not options.account:
        raise ConfigError("this worker has no forum account: set FORUM_USERNAME and FORUM_PASSWORD in its .env "
                          "(needed to read a thread and to reply)")
    settings = replace(options.settings, base_url=forum_base(task, options.settings))
    cookies = Path(options.cookie_file) if options.cookie_file else work_dir / "forum-cookies.json"
    return ForumClient(settings, options.account.username, options.account.password, cookie_file=cookies)


def needs_resolve(task: Task) -> bool:
    return not task.spec.sources and bool(task.thread_url)


def resolve(task: Task, client, settings: ForumSettings) -> Task:  # noqa: ANN001 — ForumClient
    """``task`` with its spec read from its thread; RequestError when the post cannot be processed."""
    tid = task.spec.tid or parse.tid_from_url(task.thread_url)
    if not tid:
        raise InvalidTaskError(f"cannot find the thread id in {task.thread_url!r}")
    page = client.read_thread(tid)
    request = parse.request_from_thread(page, forum_base(task, settings))
    problem = problem_of(request, settings)
    if problem is not None:
        code, message, fields = problem
        raise RequestError(message, code=code, fields=fields)
    kinds = {"video": SourceKind.VIDEO, "audio": SourceKind.AUDIO}
    spec = replace(
        task.spec, title=task.spec.title or request.subject, category=request.category, author=request.author,
        tid=request.tid or tid, fid=request.fid or task.spec.fid, core_text=task.spec.core_text or request.core_text,
        sources=tuple(Source(url=s.url, name=s.name, kind=kinds[s.kind]) for s in request.sources),
        cover=_cover(task.spec.cover, request.cover_top, request.cover_middle, request.cover_bottom))
    logger.info("thread %d: %d source(s), category %r", tid, len(spec.sources), spec.category or "-")
    return replace(task, spec=spec)


def _cover(given: CoverTitles, top: str, middle: str, bottom: str) -> CoverTitles:
    """Titles the submitter gave win over the post's lines."""
    if any((given.top, given.middle, given.bottom)):
        return given
    return CoverTitles(top=top, middle=middle, bottom=bottom)
