"""The forum's data (threads, posts, attachments, object storage, login failures) behind one lock."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Post:
    pid: int
    tid: int
    fid: int
    first: bool
    authorid: int
    author: str
    dateline: int
    subject: str
    message: str  # stored BBCode, exactly as posted
    invisible: int = 0  # 0 visible, -2 awaiting moderation
    attachments: list[int] = field(default_factory=list)


@dataclass
class Thread:
    tid: int
    fid: int
    typeid: int
    subject: str
    authorid: int
    author: str
    dateline: int
    displayorder: int = 0  # 1..4 sticky, -2 moderated
    closed: bool = False
    views: int = 0
    posts: list[Post] = field(default_factory=list)

    def visible_posts(self) -> list[Post]:
        return [p for p in self.posts if p.invisible == 0]

    @property
    def replies(self) -> int:
        return max(0, len(self.visible_posts()) - 1)

    @property
    def lastpost(self) -> int:
        return max(p.dateline for p in self.visible_posts()) if self.visible_posts() else self.dateline

    @property
    def lastposter(self) -> str:
        posts = self.visible_posts()
        return max(posts, key=lambda p: (p.dateline, p.pid)).author if posts else self.author


@dataclass
class Attachment:
    aid: int
    uid: int
    filename: str
    data: bytes
    dateline: int
    isimage: bool = False
    tid: int = 0
    pid: int = 0
    description: str = ""


@dataclass
class CosObject:
    key: str
    filename: str
    data: bytes
    uid: int
    aid: int


class ForumState:
    """Thread-safe store; every public method takes the lock (handlers and test code share it)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.threads: dict[int, Thread] = {}
        self.attachments: dict[int, Attachment] = {}
        self.cos: dict[str, CosObject] = {}
        self.login_failures: dict[str, list[float]] = {}  # username -> failure times (monotonic-free: unix)
        self.login_attempts: dict[str, int] = {}
        self.last_post_at: dict[int, float] = {}  # uid -> unix time of the last post (flood control)
        self._next_tid = 1
        self._next_pid = 1
        self._next_aid = 1

    # --- ids ---------------------------------------------------------------------------------------------------

    def new_aid(self) -> int:
        with self.lock:
            aid, self._next_aid = self._next_aid, self._next_aid + 1
            return aid

    # --- threads and posts -------------------------------------------------------------------------------------

    def add_thread(self, *, fid: int, typeid: int, subject: str, message: str, authorid: int, author: str,
                   dateline: int | None = None, displayorder: int = 0) -> Thread:
        with self.lock:
            tid, self._next_tid = self._next_tid, self._next_tid + 1
            when = int(time.time()) if dateline is None else int(dateline)
            thread = Thread(tid, fid, typeid, subject, authorid, author, when, displayorder)
            self.threads[tid] = thread
            self._add_post(thread, authorid, author, message, when, first=True, subject=subject)
            return thread

    def add_post(self, tid: int, *, authorid: int, author: str, message: str, subject: str = "",
                 invisible: int = 0, dateline: int | None = None) -> Post:
        with self.lock:
            thread = self.threads[tid]
            when = int(time.time()) if dateline is None else int(dateline)
            return self._add_post(thread, authorid, author, message, when, first=False, subject=subject,
                                  invisible=invisible)

    def _add_post(self, thread: Thread, authorid: int, author: str, message: str, when: int, *, first: bool,
                  subject: str, invisible: int = 0) -> Post:
        pid, self._next_pid = self._next_pid, self._next_pid + 1
        post = Post(pid, thread.tid, thread.fid, first, authorid, author, when, subject, message, invisible)
        thread.posts.append(post)
        return post

    def thread(self, tid: int) -> Thread | None:
        with self.lock:
            t = self.threads.get(tid)
            return t if t is not None and t.displayorder >= 0 else None

    def board_threads(self, fid: int) -> list[Thread]:
        with self.lock:
            return [t for t in self.threads.values() if t.fid == fid and t.displayorder >= 0]

    def bind_attachments(self, post: Post, uid: int, aids: list[int], descriptions: dict[int, str]) -> None:
        """Move the poster's unused uploads (``attachnew[AID]``) onto ``post``."""
        with self.lock:
            for aid in aids:
                att = self.attachments.get(aid)
                if att is None or att.uid != uid or att.pid:
                    continue
                att.tid, att.pid = post.tid, post.pid
                att.description = descriptions.get(aid, "")
                post.attachments.append(aid)

    # --- login failures ----------------------------------------------------------------------------------------

    def failures(self, username: str, window: float = 900.0) -> int:
        with self.lock:
            now = time.time()
            recent = [t for t in self.login_failures.get(username, []) if now - t < window]
            self.login_failures[username] = recent
            return len(recent)

    def add_failure(self, username: str) -> None:
        with self.lock:
            self.login_failures.setdefault(username, []).append(time.time())

    def count_attempt(self, username: str) -> None:
        with self.lock:
            self.login_attempts[username] = self.login_attempts.get(username, 0) + 1

    # --- views -------------------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything as plain JSON-able data (GET /_test/state)."""
        with self.lock:
            per_user: dict[str, int] = {}
            threads = []
            for t in sorted(self.threads.values(), key=lambda t: t.tid):
                posts = []
                for p in t.posts:
                    per_user[p.author] = per_user.get(p.author, 0) + 1
                    posts.append({"pid": p.pid, "first": p.first, "authorid": p.authorid, "author": p.author,
                                  "dateline": p.dateline, "subject": p.subject, "message": p.message,
                                  "invisible": p.invisible, "attachments": list(p.attachments)})
                threads.append({"tid": t.tid, "fid": t.fid, "typeid": t.typeid, "subject": t.subject,
                                "authorid": t.authorid, "author": t.author, "dateline": t.dateline,
                                "displayorder": t.displayorder, "closed": t.closed, "replies": t.replies,
                                "posts": posts})
            return {
                "threads": threads,
                "login_attempts": dict(self.login_attempts),
                "login_failures": {u: len(v) for u, v in self.login_failures.items()},
                "posts_per_user": per_user,
                "attachments": [{"aid": a.aid, "uid": a.uid, "filename": a.filename, "size": len(a.data),
                                 "tid": a.tid, "pid": a.pid, "description": a.description}
                                for a in sorted(self.attachments.values(), key=lambda a: a.aid)],
                "cos": [{"key": o.key, "filename": o.filename, "size": len(o.data), "uid": o.uid, "aid": o.aid}
                        for o in self.cos.values()],
            }
