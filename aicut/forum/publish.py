"""Publishing a task's result back into its thread: upload the files, then reply exactly once per task id.

What the worker's publish stage and the coordinator's watcher call:

- ``publish_result`` — a finished cut: files through the configured publisher, then the result reply;
- ``publish_problem`` — a problem the member can fix (no video link, unreadable file …): a polite reply;
- ``reply_once`` — the one way aicut posts: our own posts in the thread are read first, and a reply that already
  carries this task's marker is never posted again (also re-checked before every retry after flood control).

The texts are in ``aicut.forum.replies`` (pure), the publishers in ``aicut.forum.publishers``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from aicut.errors import ForumError, ForumFloodError
from aicut.forum.models import Post, PublishSettings, ReplyResult
from aicut.forum.publishers import (
    AttachmentPublisher, DirectoryPublisher, OutputFile, PluginPublisher, PublishedFile, Publisher, make_publisher,
    select_outputs,
)
from aicut.forum.replies import (
    DEFAULT_TEMPLATES, compose_problem_reply, compose_result_reply, find_marker, marker, pad_message, with_marker,
)
from aicut.models import Output

logger = logging.getLogger(__name__)

__all__ = [
    "AttachmentPublisher", "DEFAULT_TEMPLATES", "DirectoryPublisher", "OutputFile", "PluginPublisher",
    "PublishOutcome", "PublishedFile", "Publisher", "ReplyOutcome", "compose_problem_reply", "compose_result_reply",
    "find_marker", "find_reply", "load_reports", "make_publisher", "marker", "pad_message", "publish_problem",
    "publish_result", "reply_once",
]


class ReplyClient(Protocol):
    """The part of ``aicut.forum.client.ForumClient`` replying uses."""

    uid: int
    charset: str

    def posts_by(self, tid: int, author_id: int, max_pages: int = 5) -> list[Post]: ...

    def reply(self, fid: int, tid: int, message: str, *, attach_ids: Sequence[int] = ()) -> ReplyResult: ...


@dataclass(frozen=True, slots=True)
class ReplyOutcome:
    pid: int = 0                 # the reply's post id; 0 while it waits for a moderator
    already: bool = False        # an earlier attempt had replied: nothing was posted now
    moderated: bool = False      # posted, but held for moderation (invisible, so the marker check cannot see it)
    attempts: int = 0            # replies sent now (0 when already)
    message: str = ""            # the forum's own words about the last reply


@dataclass(frozen=True, slots=True)
class PublishOutcome:
    files: tuple[PublishedFile, ...] = ()    # empty when the thread already had this task's reply
    reply: ReplyOutcome = ReplyOutcome()


def find_reply(client: ReplyClient, tid: int, task_id: str) -> Post | None:
    """Our own post in thread ``tid`` carrying the marker of ``task_id``, or None."""
    for post in client.posts_by(tid, own_uid(client)):
        if find_marker(post.message_html, task_id):
            return post
    return None


def own_uid(client: ReplyClient) -> int:
    """The account's uid, logging in first when the client has not yet (uid 0 would read everyone's posts)."""
    if not client.uid:
        login = getattr(client, "login", None)
        if callable(login):
            login()
    if not client.uid:
        raise ForumError("cannot tell which posts in the thread are ours (the forum client knows no uid); not "
                         "replying blind", code="FORUM_LOGIN", retryable=True)
    return client.uid


def reply_once(client: ReplyClient, fid: int, tid: int, task_id: str, message: str, *,
               attach_ids: Sequence[int] = (), settings: PublishSettings,
               sleep: Callable[[float], None] = time.sleep) -> ReplyOutcome:
    """Post ``message`` in thread ``tid`` unless a reply for ``task_id`` is already there; returns what happened.

    The marker is added when missing and the message padded to ``settings.min_message_bytes`` in the site's charset.
    After ``post_flood_ctrl`` it waits (at least ``settings.flood_wait_s``), looks for the marker again — some sites
    answer flood control after the post landed — and tries again, ``settings.flood_retries`` times at most; then the
    ``ForumFloodError`` goes to the caller. Other forum errors go to the caller at once."""
    text = pad_message(with_marker(message, task_id), settings.min_message_bytes, client.charset or "utf-8")
    attempts = 0
    while True:
        found = find_reply(client, tid, task_id)
        if found is not None:
            logger.info("forum: thread %d already has the reply for task %s (pid %d); not posting again",
                        tid, task_id, found.pid)
            return ReplyOutcome(pid=found.pid, already=True, attempts=attempts)
        attempts += 1
        try:
            result = client.reply(fid, tid, text, attach_ids=tuple(attach_ids))
        except ForumFloodError as exc:
            if attempts > settings.flood_retries:
                logger.warning("forum: thread %d: still flood-controlled after %d tries for task %s", tid, attempts,
                               task_id)
                raise
            wait = max(exc.wait_s, settings.flood_wait_s)
            logger.info("forum: thread %d: flood control, waiting %.1fs before try %d for task %s", tid, wait,
                        attempts + 1, task_id)
            sleep(wait)
            continue
        if result.moderated:
            logger.warning("forum: thread %d: the reply for task %s waits for a moderator (invisible until approved)",
                           tid, task_id)
        else:
            logger.info("forum: thread %d: replied for task %s (pid %d)", tid, task_id, result.pid)
        return ReplyOutcome(pid=result.pid, moderated=result.moderated, attempts=attempts, message=result.message)


def publish_result(client: ReplyClient, publisher: Publisher, *, fid: int, tid: int, task_id: str,
                   files: Sequence[Output], report: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
                   settings: PublishSettings, machine: str = "", thread_subject: str = "",
                   processing_s: float | None = None, sleep: Callable[[float], None] = time.sleep) -> PublishOutcome:
    """Publish a finished task: unless the thread already has its reply, upload the kinds ``settings.files`` names
    and reply with links and the cut's numbers. ``report`` is the report.json content (one mapping, or one per
    source); None reads the ``report`` outputs among ``files``."""
    found = find_reply(client, tid, task_id)
    if found is not None:       # an earlier attempt finished the job: no second upload either
        logger.info("forum: thread %d already has the reply for task %s (pid %d); nothing to publish",
                    tid, task_id, found.pid)
        return PublishOutcome(reply=ReplyOutcome(pid=found.pid, already=True))
    reports = load_reports(files) if report is None else report
    published = publisher.publish(task_id, select_outputs(files, settings.files))
    message = compose_result_reply(task_id, reports, published, thread_subject=thread_subject, machine=machine,
                                   processing_s=processing_s)
    attach_ids = [p.aid for p in published if p.aid and not p.url]
    outcome = reply_once(client, fid, tid, task_id, message, attach_ids=attach_ids, settings=settings, sleep=sleep)
    return PublishOutcome(files=tuple(published), reply=outcome)


def publish_problem(client: ReplyClient, *, fid: int, tid: int, task_id: str, code: str,
                    detail: str | Mapping[str, Any] = "", settings: PublishSettings,
                    templates: Mapping[str, str] | None = None,
                    sleep: Callable[[float], None] = time.sleep) -> ReplyOutcome:
    """Answer a request the member can fix (``code``: NO_SOURCE, UNSUPPORTED_CATEGORY, or a media/fetch error code)
    with a polite reply, once per task id."""
    message = compose_problem_reply(task_id, code, detail, templates)
    return reply_once(client, fid, tid, task_id, message, settings=settings, sleep=sleep)


def load_reports(files: Sequence[Output]) -> list[dict[str, Any]]:
    """The report.json of every source among ``files`` (unreadable ones are skipped with a warning)."""
    reports = []
    for f in files:
        if f.kind != "report" or not f.path:
            continue
        try:
            reports.append(json.loads(Path(f.path).read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            logger.warning("publish: cannot read %s: %s", f.name, exc)
    return reports
