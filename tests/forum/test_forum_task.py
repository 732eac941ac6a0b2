"""The worker's side of a forum task, through ``run_task`` (the task process's body) with the real forum client
against the in-process test forum: resolve a bare thread URL, publish, never a second reply on a retry, a polite
reply for a file the member can fix."""

from __future__ import annotations

from typing import Any
from dataclasses import replace
from pathlib import Path

import pytest

from aicut.errors import ConfigError, MediaError, RequestError
from aicut.forum.models import ForumAccount, ForumSettings, PublishSettings
from aicut.forum.tasks import task_id_for
from aicut.models import Task, TaskOptions, TaskSpec
from aicut.pipeline.fetch import FetchOptions
from aicut.pipeline.resolve import ForumOptions
from aicut.pipeline.task import PipelineOptions, run_task
from aicut.pipeline.transcribe import TranscribeOptions, Transcriber
from tests.support.discuz import DiscuzServer
from tests.support.httpserver import MediaServer

BOT = ForumAccount("aicut", "botpass123")


@pytest.fixture
def forum(make_server: Any) -> DiscuzServer:
    return make_server()


@pytest.fixture(scope="module")
def transcriber() -> Transcriber:
    return Transcriber(TranscribeOptions(model="tiny.en", language="en"))


def _options(tmp: Path, forum: DiscuzServer, **publish: object) -> PipelineOptions:
    return PipelineOptions(
        work_dir=tmp, transcribe=TranscribeOptions(model="tiny.en", language="en"),
        fetch=FetchOptions(allow_hosts=("127.0.0.1",), retries=0, connect_timeout_s=5, read_timeout_s=10),
        forum=ForumOptions(settings=ForumSettings(base_url=forum.url), account=BOT),
        publish=PublishSettings(**{"kind": "directory", "path": str(tmp / "pub"), "base_url": "https://cdn.example.com/v",
                                   "flood_wait_s": 0.1, **publish}), machine="test-1:8005")


def _bot_replies(forum: DiscuzServer, tid: int) -> list[str]:
    thread = next(t for t in forum.snapshot()["threads"] if int(t["tid"]) == tid)
    return [p["message"] for p in thread["posts"] if p["author"] == "aicut"]


def _bare(forum: DiscuzServer, tid: int, attempt: int = 1) -> Task:
    """A task for a thread URL alone, as SubmitTask makes it: the worker reads the request from the thread."""
    url = f"{forum.url}forum.php?mod=viewthread&tid={tid}"
    return Task(id=task_id_for(url, tid), attempt=attempt, thread_url=url, spec=TaskSpec(tid=tid),
                options=TaskOptions(language="en"))


def test_a_bare_thread_is_resolved_cut_published_and_a_retry_posts_nothing_again(
        tmp_path: Path, forum: DiscuzServer, media_server: MediaServer, transcriber: Transcriber) -> None:
    message = (f"[url={media_server.url('speech.mp4')}]口播 原片.mp4[/url]\n封面标题上：第一期\n封面标题下：测试\n"
               "懒人智能剪辑\nhello and welcome")
    tid = forum.create_thread(subject="帮我剪一下", message=message, username="alice", typeid=1).tid
    options = _options(tmp_path, forum)
    stages: list[str] = []
    first = run_task(_bare(forum, tid), options, lambda stage, pct, detail: stages.append(stage), transcriber)
    assert stages[0] == "resolve" and "publish" in stages and stages[-1] == "done"
    assert first.reply_note == "posted" and f"ptid={tid}" in first.reply_url
    video = next(o for o in first.outputs if o.kind == "video")
    assert video.name == "口播 原片_cut.mp4" and video.url.startswith("https://cdn.example.com/v/")
    published = list((tmp_path / "pub").rglob("*_cut.mp4"))
    assert len(published) == 1 and published[0].stat().st_size == video.size_bytes
    replies = _bot_replies(forum, tid)
    assert len(replies) == 1 and video.url in replies[0]

    # The worker died after posting and before reporting: the coordinator runs attempt 2 of the same task.
    second = run_task(_bare(forum, tid, attempt=2), options, lambda *a: None, transcriber)
    assert second.reply_note == "already posted by an earlier attempt", second.reply_note
    assert _bot_replies(forum, tid) == replies


def test_a_file_the_member_can_fix_gets_one_polite_reply_and_the_task_fails_for_good(
        tmp_path: Path, forum: DiscuzServer, media_server: MediaServer) -> None:
    tid = forum.create_thread(subject="坏文件", message=f"[url={media_server.url('corrupt.mp4')}]坏.mp4[/url]",
                              username="alice", typeid=1).tid
    options = _options(tmp_path, forum)
    for attempt in (1, 2):
        with pytest.raises(MediaError) as caught:
            run_task(_bare(forum, tid, attempt), options, lambda *a: None)
        assert not caught.value.retryable
    replies = _bot_replies(forum, tid)
    assert len(replies) == 1 and "aicut" in replies[0], replies


def test_an_unsupported_category_is_refused_at_resolve_with_a_polite_reply(
        tmp_path: Path, forum: DiscuzServer, media_server: MediaServer) -> None:
    tid = forum.create_thread(subject="克隆声音", message=f"[url={media_server.url('speech.mp4')}]a.mp4[/url]",
                              username="alice", typeid=2).tid
    with pytest.raises(RequestError) as caught:
        run_task(_bare(forum, tid), _options(tmp_path, forum), lambda *a: None)
    assert caught.value.code == "UNSUPPORTED_CATEGORY" and "音色克隆" in caught.value.message
    assert ["「音色克隆」" in m for m in _bot_replies(forum, tid)] == [True]


def test_a_forum_task_on_a_worker_without_a_forum_account_fails_at_once_and_says_what_to_set(
        tmp_path: Path, forum: DiscuzServer) -> None:
    options = replace(_options(tmp_path, forum), forum=ForumOptions(settings=ForumSettings(base_url=forum.url)))
    with pytest.raises(ConfigError) as caught:
        run_task(_bare(forum, 1), options, lambda *a: None)
    assert "FORUM_USERNAME" in caught.value.message and not caught.value.retryable
