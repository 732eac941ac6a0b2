"""Issue 5's acceptance: the coordinator, a worker and the test forum as real processes.

A thread posted on the forum is picked up at the next poll, cut, and answered with exactly one reply linking the
output (uploaded through the site's upload plugin); threads from before the first start are ignored; a restart
processes nothing twice; requests the member can fix are answered politely, once; a captcha stops logins at once
and is shown to the operator; the forum password and session cookies appear in no log, record or API answer.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from aicut.forum.tasks import task_id_for
from generated.aicut.v1 import common_pb2 as pb
from tests.coordinator.conftest import GRPCURL, Cluster
from tests.forum.conftest import BOT, ForumProcess, wait_for
from tests.support.httpserver import MediaServer
from tests.support.procs import TOKEN, ROOT

API = "aicut.v1.Coordinator/"
POLL_S = 1.0


def forum_sections(forum: ForumProcess, **forum_options: Any) -> dict[str, dict[str, Any]]:
    return {"forum": {"base_url": forum.url, "boards": [2], "poll_interval_s": POLL_S, "baseline": True,
                      **forum_options},
            "publish": {"kind": "plugin", "flood_wait_s": 0.5}}


def request_message(media: MediaServer) -> str:
    return (f"[url={media.url('speech.mp4')}]我的口播 第一期.mp4[/url]\n"
            "封面标题上：第一期\n封面标题中：自动剪辑\n封面标题下：测试\n懒人智能剪辑\n"
            "大家好，今天测试一下。")


def monitoring(cluster: Cluster) -> dict[str, Any]:
    return cluster.grpcurl(API + "GetMonitoring", {})


def completed_checks_after(cluster: Cluster, since_ms: int, n: int) -> None:
    """Wait until the watcher has finished ``n`` checks that started after ``since_ms`` — counted by the changes of
    its last-check time, not by the clock."""
    seen: set[int] = set()

    def done() -> bool:
        last = int(monitoring(cluster).get("last_check_unix_ms") or 0)
        if last > since_ms:
            seen.add(last)
        return len(seen) > n   # the first one seen may have started before since_ms

    wait_for(done, 60, f"{n} forum check(s)", interval=0.2)


async def start(cluster: Cluster, forum: ForumProcess, **forum_options: Any) -> None:
    sections = forum_sections(forum, **forum_options)
    cluster.add_worker("w", env=BOT, sections=sections)
    cluster.sections = sections
    cluster.coordinator_env = dict(BOT)
    await cluster.start_coordinator()


async def test_a_new_thread_is_cut_and_answered_once_old_ones_are_ignored_and_restarts_do_nothing_twice(
        cluster: Cluster, forum_factory: Any, media_server: MediaServer) -> None:
    forum: ForumProcess = forum_factory(floodctrl=0)
    old = forum.post_thread("以前的帖子", request_message(media_server))
    await start(cluster, forum)
    on = cluster.grpcurl(API + "StartMonitoring", {})
    assert on["enabled"] is True and forum.url in on["detail"], on
    wait_for(lambda: int(monitoring(cluster).get("last_check_unix_ms") or 0) > 0, 60, "the first check")
    assert not monitoring(cluster).get("last_error"), monitoring(cluster)

    posted_ms = int(time.time() * 1000)
    video = forum.post_thread("请帮我剪一下", request_message(media_server))
    voice = forum.post_thread("克隆我的声音", f"[url={media_server.url('speech.mp4')}]声音.mp4[/url]", typeid=2)
    empty = forum.post_thread("没有链接", "我忘了贴视频链接，大家好")
    # Picked up within one poll interval: by the end of the second check that started after the posts.
    completed_checks_after(cluster, posted_ms, 1)
    ids = {t["id"] for t in cluster.grpcurl(API + "ListTasks", {}).get("tasks", [])}
    vid, vcid, eid = (task_id_for(forum.url, t) for t in (video, voice, empty))
    assert ids == {vid, vcid, eid}, ids                               # nothing for the old thread

    done = await cluster.wait_task(vid, timeout=180)
    assert done.state == pb.SUCCEEDED, done
    assert done.result.reply_note == "posted" and f"ptid={video}" in done.result.reply_url, done.result
    cut = next(o for o in done.result.outputs if o.kind == "video")
    assert cut.url.startswith(forum.url) and "/cos/" in cut.url, cut
    body = requests.get(cut.url, timeout=10).content
    assert body[4:8] == b"ftyp", body[:16]                            # the linked file is the MP4 we made

    replies = forum.replies_by(video)
    assert len(replies) == 1, replies
    text = replies[0]["message"]
    assert cut.url in text and f"任务 {vid}" in text, text
    for tid, code in ((voice, "UNSUPPORTED_CATEGORY"), (empty, "NO_SOURCE")):
        info = await cluster.wait_task(task_id_for(forum.url, tid), timeout=30)
        assert info.state == pb.FAILED and info.error_code == code and not info.retryable, info
        wait_for(lambda tid=tid: len(forum.replies_by(tid)) == 1, 30, f"the polite reply in thread {tid}")
    assert "「音色克隆」" in forum.replies_by(voice)[0]["message"]
    assert "没有找到视频" in forum.replies_by(empty)[0]["message"]
    assert forum.replies_by(old) == [] and len(forum.thread(old)["posts"]) == 1

    # kill -9 the coordinator and start it again: same Redis, monitoring still on, nothing taken twice.
    restarted_ms = int(time.time() * 1000)
    await cluster.start_coordinator()
    completed_checks_after(cluster, restarted_ms, 2)
    tasks = cluster.grpcurl(API + "ListTasks", {}).get("tasks", [])
    assert sorted(t["id"] for t in tasks) == sorted([vid, vcid, eid])
    assert all(t["attempt"] == 1 for t in tasks), tasks
    assert [len(forum.replies_by(t)) for t in (video, voice, empty, old)] == [1, 1, 1, 0]

    # The forum goes down for a while: the watcher shows it, keeps polling, and recovers on its own.
    forum.hook("fail", {"count": 4, "status": 502})
    wait_for(lambda: "502" in monitoring(cluster).get("last_error", ""), 60, "the outage to be shown")
    wait_for(lambda: not monitoring(cluster).get("last_error"), 90, "the watcher to recover", interval=0.3)
    assert len(cluster.grpcurl(API + "ListTasks", {}).get("tasks", [])) == 3

    # Nothing secret anywhere: logs, task records, the gateway, the CLI.
    cookies = _cookie_values(cluster)
    assert cookies, "the coordinator and the worker should have kept their forum sessions"
    secrets = [BOT["FORUM_PASSWORD"], *cookies]
    places = {"coordinator log": cluster.coordinator.output(), "worker log": cluster.workers["w"].output(),
              "ListTasks": json.dumps(cluster.grpcurl(API + "ListTasks", {}), ensure_ascii=False),
              "GetTask": json.dumps(cluster.grpcurl(API + "GetTask", {"id": vid}), ensure_ascii=False),
              "GetMonitoring": json.dumps(monitoring(cluster), ensure_ascii=False),
              "reply": text}
    base = re.findall(r"dashboard (http://\S+:\d+)", cluster.coordinator.output())[-1]   # the restarted one
    for path in ("/api/tasks", f"/api/tasks/{vid}", f"/api/tasks/{vcid}", "/api/cluster/status",
                 "/api/machines/status", "/metrics"):
        places[path] = requests.get(base + path, timeout=10).text
    out = subprocess.run([sys.executable, "-m", "aicut", "status", "--coordinator", cluster.address], cwd=ROOT,
                         capture_output=True, text=True, timeout=60, env=_env())
    places["aicut status"] = out.stdout + out.stderr
    for where, content in places.items():
        for secret in secrets:
            assert secret not in content, f"a forum secret ({secret[:2]}…) appears in {where}"


def _cookie_values(cluster: Cluster) -> list[str]:
    values = []
    for path in (cluster.tmp / "coord" / "forum-cookies.json", cluster.tmp / "w" / "work" / "forum-cookies.json"):
        if path.is_file():
            values += [c["value"] for c in json.loads(path.read_text())["cookies"] if len(c["value"]) >= 6]
    return values


def _env() -> dict[str, str]:
    return {**os.environ, "AICUT_CLUSTER_TOKEN": TOKEN}


async def test_a_captcha_on_the_forum_is_reported_to_the_operator_and_logins_stay_bounded(
        cluster: Cluster, forum_factory: Any, media_server: MediaServer, tmp_path: Path) -> None:
    forum: ForumProcess = forum_factory(captcha=True, floodctrl=0)
    await start(cluster, forum, poll_interval_s=0.3)
    cluster.grpcurl(API + "StartMonitoring", {})
    error = wait_for(lambda: monitoring(cluster).get("last_error"), 60, "the captcha to be reported")
    assert re.search("captcha|验证码", error, re.I), error
    since = int(monitoring(cluster)["last_check_unix_ms"])
    forum.post_thread("新帖", request_message(media_server))
    # Many poll intervals later the watcher is still backing off: no storm of logins, and no task.
    time.sleep(3)
    state = forum.hook("state")
    attempts = sum(int(v) for v in state["login_attempts"].values())
    assert attempts <= 2, state["login_attempts"]
    assert int(monitoring(cluster)["last_check_unix_ms"]) == since     # backed off to the longest wait
    assert cluster.grpcurl(API + "ListTasks", {}).get("total", 0) == 0
    # The operator sees it in `aicut status` and `aicut check` too.
    status = subprocess.run([sys.executable, "-m", "aicut", "status", "--coordinator", cluster.address], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, env=_env())
    assert re.search("captcha|验证码", status.stdout, re.I), status.stdout + status.stderr
    check = subprocess.run([sys.executable, "-m", "aicut", "check", "--machines", str(cluster.machines())],
                           cwd=ROOT, capture_output=True, text=True, timeout=120, env={**_env(), **BOT})
    assert check.returncode == 1 and re.search(r"❌ forum .*(captcha|验证码)", check.stdout, re.I), check.stdout
    assert BOT["FORUM_PASSWORD"] not in check.stdout + status.stdout
