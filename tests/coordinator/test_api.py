"""Issue 3's Coordinator API end to end: real workers, a real coordinator, real Valkey and, where natural, grpcurl.

Each test starts its own small cluster (at most two workers) and keeps tasks short. A task that must succeed runs the
whole cut on ``/speech.mp4`` (a few seconds of synthesized speech); one that never gets that far (it waits, is refused
or cancelled) uses the silent test clip, throttled where it must still be running when the test acts on it.
"""

from __future__ import annotations

import asyncio
import time
import shutil
import signal
import uuid
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from aicut.config import WorkerEntry, load_settings
from aicut.errors import ConfigError
from generated.aicut.v1 import common_pb2 as pb
from generated.aicut.v1 import coordinator_pb2 as cpb
from generated.aicut.v1 import worker_pb2 as wpb
from tests.coordinator.conftest import (
    Cluster,
    EventWatcher,
    accepted_count,
    grpcurl_error,
    grpcurl_run,
    json_stream,
    task_states,
)
from tests.support.procs import TOKEN, AicutProcess, WorkerProcess

API = "aicut.v1.Coordinator/"
LONG_BPS = 3000      # the 58 KB clip then takes about 20 s to download: still running whenever the test acts on it


def task_processes(worker: AicutProcess) -> list[psutil.Process]:
    """The worker's task processes (``python -m aicut.worker.taskproc``) alive now."""
    out = []
    for child in psutil.Process(worker.proc.pid).children(recursive=True):
        try:
            if "aicut.worker.taskproc" in " ".join(child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                out.append(child)
        except psutil.NoSuchProcess:
            pass
    return out


async def eventually(check: Callable[[], bool], timeout: float = 20, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def restart_coordinator(cluster: Cluster, hard: bool = True, embedded: bool = False) -> None:
    """kill -9 (or SIGTERM) the coordinator and start it again on the same state."""
    assert cluster.coordinator is not None
    if hard:
        cluster.coordinator.kill()
    else:
        cluster.coordinator.signal(signal.SIGTERM)
        await asyncio.to_thread(cluster.coordinator.proc.wait, 30)
    await cluster.start_coordinator(embedded=embedded)


# --------------------------------------------------------------------------------------------------- SubmitTask

async def test_submit_gives_a_task_id_and_an_own_id_is_idempotent(cluster: Cluster, media_server) -> None:
    a = cluster.add_worker("a")
    await cluster.start_coordinator()
    speech = f"{media_server.base_url}/speech.mp4"

    given = cluster.grpcurl(API + "SubmitTask", {"url": speech})
    assert given["id"] and given["state"] == "QUEUED" and given["attempt"] == 1 and given["origin"] == "api"
    source = given["task"]["spec"]["sources"][0]
    assert source["url"] == speech and source["name"] == "speech.mp4"

    first = cluster.grpcurl(API + "SubmitTask", {"url": speech, "id": "mine-1"})
    second = cluster.grpcurl(API + "SubmitTask", {"url": speech, "id": "mine-1"})
    assert first["id"] == second["id"] == "mine-1"
    assert second["created_unix_ms"] == first["created_unix_ms"]
    done = await cluster.wait_task("mine-1")
    assert done.state == pb.SUCCEEDED and done.attempt == 1 and done.worker == a
    # Once finished, the same id still answers with that task: nothing is queued again.
    third = cluster.grpcurl(API + "SubmitTask", {"url": speech, "id": "mine-1"})
    assert third["state"] == "SUCCEEDED" and third["attempt"] == 1
    assert (await cluster.wait_task(given["id"])).state == pb.SUCCEEDED
    await asyncio.sleep(0.5)
    assert accepted_count(cluster.workers["a"], "mine-1") == 1
    assert len(await cluster.all_tasks()) == 2


async def test_submit_refuses_what_it_cannot_run_and_unknown_ids_are_not_found(cluster: Cluster) -> None:
    await cluster.start_coordinator()   # no worker needed: nothing here reaches one
    for url in ("ftp://files.example.com/a.mp4", "file:///etc/passwd", "just words"):
        code, message = grpcurl_error(grpcurl_run(cluster.address, API + "SubmitTask", {"url": url}))
        assert code == "INVALID_ARGUMENT", (url, code, message)
        assert url in message and "http(s)" in message, message
    code, message = grpcurl_error(grpcurl_run(cluster.address, API + "SubmitTask",
                                              {"url": "https://bbs.example.com/forum.php?mod=viewthread&tid=x"}))
    assert code == "INVALID_ARGUMENT" and "thread id" in message, message
    # A thread URL becomes the thread's one task, whichever style names it; the worker reads the thread itself.
    for url, task_id in (("https://tts.lrtcai.com/forum.php?mod=viewthread&tid=121", "forum-tts.lrtcai.com-121"),
                         ("https://bbs.example.com:8080/thread-121-1-1.html", "forum-bbs.example.com-8080-121"),
                         ("https://bbs.example.com:8080/forum.php?mod=viewthread&tid=121&extra=page%3D1",
                          "forum-bbs.example.com-8080-121")):
        info = cluster.grpcurl(API + "SubmitTask", {"url": url})
        assert info["id"] == task_id and info["task"]["spec"]["tid"] == "121", info
        assert info["task"]["thread_url"] == url or "extra=" in url, info   # the third is the second's thread again
    for method in ("GetTask", "CancelTask", "RetryTask"):
        code, message = grpcurl_error(grpcurl_run(cluster.address, API + method, {"id": "no-such-task"}))
        assert code == "NOT_FOUND" and "no-such-task" in message, (method, code, message)
    code, message = grpcurl_error(grpcurl_run(cluster.address, API + "DrainWorker", {"address": "10.9.9.9:8005"}))
    assert code == "NOT_FOUND" and "10.9.9.9:8005" in message
    code, message = grpcurl_error(grpcurl_run(cluster.address, API + "WatchEvents", {"since_id": "yesterday"}, TOKEN,
                                              "-max-time", "10"))
    assert code == "INVALID_ARGUMENT" and "'yesterday' is not an event id" in message, message
    assert cluster.grpcurl(API + "ListTasks", {}).get("total", 0) == 2   # the two threads; nothing refused was stored


# --------------------------------------------------------------------------------------------------- ListTasks

async def test_list_tasks_filters_by_state_and_pages_with_a_total(cluster: Cluster, media_server) -> None:
    await cluster.start_coordinator()   # no worker: every task stays QUEUED unless cancelled
    ids = [await cluster.submit(f"{media_server.base_url}/clip.mp4", f"t{i}") for i in range(7)]
    assert cluster.stub is not None
    for tid in ("t1", "t4"):
        assert (await cluster.stub.CancelTask(cpb.TaskRef(id=tid), timeout=10)).state == pb.CANCELLED

    everything = await cluster.stub.ListTasks(cpb.ListTasksRequest(), timeout=10)
    assert everything.total == 7 and {t.id for t in everything.tasks} == set(ids)
    created = [t.created_unix_ms for t in everything.tasks]
    assert created == sorted(created, reverse=True)          # newest first

    queued = await cluster.stub.ListTasks(cpb.ListTasksRequest(state=pb.QUEUED), timeout=10)
    assert queued.total == 5 and {t.id for t in queued.tasks} == set(ids) - {"t1", "t4"}
    assert all(t.state == pb.QUEUED for t in queued.tasks)
    cancelled = cluster.grpcurl(API + "ListTasks", {"state": "CANCELLED"})
    assert cancelled["total"] == 2 and {t["id"] for t in cancelled["tasks"]} == {"t1", "t4"}
    assert (await cluster.stub.ListTasks(cpb.ListTasksRequest(state=pb.SUCCEEDED), timeout=10)).total == 0

    pages = [await cluster.stub.ListTasks(cpb.ListTasksRequest(offset=o, limit=3), timeout=10) for o in (0, 3, 6, 9)]
    assert [len(p.tasks) for p in pages] == [3, 3, 1, 0] and {p.total for p in pages} == {7}
    paged = [t.id for p in pages for t in p.tasks]
    assert paged == [t.id for t in everything.tasks]          # the same order, no gap, no duplicate
    two = await cluster.stub.ListTasks(cpb.ListTasksRequest(state=pb.QUEUED, offset=4, limit=2), timeout=10)
    assert two.total == 5 and [t.id for t in two.tasks] == [t.id for t in queued.tasks][4:]


# --------------------------------------------------------------------------------------------------- CancelTask

async def test_cancel_a_queued_task_and_a_running_one(cluster: Cluster, media_server) -> None:
    a = cluster.add_worker("a", slots=1)
    await cluster.start_coordinator()
    worker = cluster.workers["a"]
    assert cluster.stub is not None
    await cluster.submit(f"{media_server.base_url}/slow/clip.mp4?bps={LONG_BPS}", "long")
    running = await cluster.wait_task("long", (pb.RUNNING,))
    assert running.worker == a
    await cluster.submit(f"{media_server.base_url}/clip.mp4", "waiting")   # the only slot is taken: it waits
    assert (await cluster.task("waiting")).state == pb.QUEUED

    info = await cluster.stub.CancelTask(cpb.TaskRef(id="waiting", reason="not needed after all"), timeout=10)
    assert info.state == pb.CANCELLED and info.error_message == "not needed after all"

    await eventually(lambda: len(task_processes(worker)) == 1, what="the task's process")
    procs = task_processes(worker)
    info = cluster.grpcurl(API + "CancelTask", {"id": "long"})
    assert info["state"] == "CANCELLED" and info["worker"] == a
    # The worker stops the task's process and frees its slot.
    gone, alive = await asyncio.to_thread(psutil.wait_procs, procs, 15)
    assert not alive, alive
    await eventually(lambda: "task long#1 cancelled" in worker.output(), what="the worker to report the cancel")
    await cluster.until(lambda ws: ws[0].busy == 0 and not ws[0].status.tasks, 15, "the slot to be free")

    # The freed slot goes to the next task; the cancelled one never ran.
    await cluster.submit(f"{media_server.base_url}/speech.mp4", "after")
    assert (await cluster.wait_task("after")).state == pb.SUCCEEDED
    assert accepted_count(worker, "waiting") == 0 and accepted_count(worker, "long") == 1
    final = await cluster.task("long")
    assert final.state == pb.CANCELLED and final.attempt == 1
    assert (await cluster.task("waiting")).state == pb.CANCELLED

    for tid, state in (("after", "SUCCEEDED"), ("long", "CANCELLED")):
        code, message = grpcurl_error(grpcurl_run(cluster.address, API + "CancelTask", {"id": tid}))
        assert code == "FAILED_PRECONDITION" and state in message, (tid, message)


# ------------------------------------------------------------------------------------------------ failures, RetryTask

async def test_a_final_failure_stays_visible_and_retry_runs_it_again(cluster: Cluster, media_server,
                                                                     clip_path: Path) -> None:
    a = cluster.add_worker("a")
    await cluster.start_coordinator()
    name = f"later-{uuid.uuid4().hex[:8]}.mp4"
    tid = await cluster.submit(f"{media_server.base_url}/{name}")   # not there yet: 404, a final error
    failed = await cluster.wait_task(tid)
    assert failed.state == pb.FAILED and not failed.retryable and failed.attempt == 1 and failed.worker == a
    assert "404" in failed.error_message and failed.error_code, failed
    await asyncio.sleep(1.0)                                  # no retry of a final error
    again = await cluster.task(tid)
    assert again.state == pb.FAILED and again.attempt == 1 and len(media_server.requests(f"/{name}")) == 1

    later = clip_path.parent / name
    shutil.copyfile(clip_path.parent / "speech.mp4", later)
    try:
        retried = cluster.grpcurl(API + "RetryTask", {"id": tid})
        assert retried["attempt"] == 2 and retried["state"] in ("QUEUED", "DISPATCHED", "RUNNING", "SUCCEEDED")
        done = await cluster.wait_task(tid)
        assert done.state == pb.SUCCEEDED and done.attempt == 2, done
        assert any(line.startswith("1 ") and "404" in line for line in done.history), done.history
        assert not done.error_message
    finally:
        later.unlink()
    code, message = grpcurl_error(grpcurl_run(cluster.address, API + "RetryTask", {"id": tid}))
    assert code == "FAILED_PRECONDITION" and "SUCCEEDED" in message


async def test_a_retryable_failure_is_retried_with_backoff_then_fails_with_its_reason(cluster: Cluster,
                                                                                     media_server) -> None:
    cluster.add_worker("a")
    cluster.coordinator_options = {"max_attempts": 3, "retry_backoff_s": 0.5}
    await cluster.start_coordinator()
    tid = await cluster.submit(f"{media_server.base_url}/status/503")   # 5xx: retryable, never succeeds
    failed = await cluster.wait_task(tid, timeout=60)
    assert failed.state == pb.FAILED and failed.retryable and failed.attempt == 3, failed
    assert "503" in failed.error_message and "gave up after 3 attempts" in failed.error_message
    assert [line.split()[0] for line in failed.history] == ["1", "2", "3"], failed.history
    hits = [r.at for r in media_server.requests("/status/503")]
    assert len(hits) == 3, hits                                # one download per attempt, then no more
    gaps = [b - a for a, b in zip(hits, hits[1:])]
    assert gaps[0] >= 0.45 and gaps[1] >= 0.9, gaps            # backoff 0.5 s, then 1 s
    await asyncio.sleep(1.5)
    assert len(media_server.requests("/status/503")) == 3


# --------------------------------------------------------------------------------------------------- DrainWorker

async def test_a_drained_worker_gets_no_new_tasks_until_undone_and_the_drain_survives_a_restart(
        cluster: Cluster, media_server) -> None:
    a = cluster.add_worker("a", priority=1)
    b = cluster.add_worker("b", priority=2)
    await cluster.start_coordinator()
    speech = f"{media_server.base_url}/speech.mp4"

    drained = cluster.grpcurl(API + "DrainWorker", {"address": a})
    assert drained["address"] == a and drained["cordoned"] is True
    done = await cluster.wait_task(await cluster.submit(speech))   # "a" is idle and first by priority, yet skipped
    assert done.state == pb.SUCCEEDED and done.worker == b
    assert {w.address: w.cordoned for w in await cluster.workers_info()} == {a: True, b: False}

    back = cluster.grpcurl(API + "DrainWorker", {"address": a, "undo": True})
    assert not back.get("cordoned")
    assert (await cluster.wait_task(await cluster.submit(speech))).worker == a

    cluster.grpcurl(API + "DrainWorker", {"address": a})
    await restart_coordinator(cluster)
    assert {w.address: w.cordoned for w in await cluster.workers_info()} == {a: True, b: False}
    assert (await cluster.wait_task(await cluster.submit(speech))).worker == b
    assert cluster.workers["a"].output().count(" accepted (") == 1   # only the task sent while undrained


# --------------------------------------------------------------------------------------------------- monitoring switch

async def test_the_monitoring_switch_is_persisted_across_a_restart(cluster: Cluster) -> None:
    await cluster.start_coordinator(embedded=True)   # the coordinator's own Valkey, append-only in its data_dir
    # No forum in this machines.yaml: the switch still works, and the watcher says what is missing.
    unset = "no forum configured (machines.yaml forum.base_url)"
    on = cluster.grpcurl(API + "StartMonitoring", {})
    assert on["enabled"] is True and on["detail"] == f"forum monitoring is on: {unset}", on
    deadline = time.monotonic() + 20
    while True:   # the watcher's first check runs in the background; it records what it found
        again = cluster.grpcurl(API + "StartMonitoring", {})
        assert again["detail"] == f"forum monitoring is on: {unset} (it already was)", again
        if again.get("last_error") or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert "forum.base_url" in again.get("last_error", "") and int(again["last_check_unix_ms"]) > 0, again

    await restart_coordinator(cluster, embedded=True)   # kill -9: the switch must already be on disk
    still = cluster.grpcurl(API + "StartMonitoring", {})
    assert still["enabled"] is True and still["detail"].endswith("(it already was)"), still
    off = cluster.grpcurl(API + "StopMonitoring", {})
    assert not off.get("enabled") and off["detail"] == f"forum monitoring is off: {unset}"

    await restart_coordinator(cluster, hard=False, embedded=True)
    still = cluster.grpcurl(API + "StopMonitoring", {})
    assert not still.get("enabled") and still["detail"] == f"forum monitoring is off: {unset} (it already was)", still
    assert cluster.stub is not None
    watcher = EventWatcher(cluster.stub, since_id="0")   # only real changes were logged
    try:
        await watcher.wait_for(lambda ev: len([e for e in ev if e.kind == "monitoring"]) >= 2, 15, "the switches")
        await asyncio.sleep(0.3)
        assert [e.text for e in watcher.events if e.kind == "monitoring"] == ["started", "stopped"], watcher.events
    finally:
        await watcher.close()


# --------------------------------------------------------------------------------------------------- WatchEvents

async def test_watch_events_shows_task_transitions_and_workers_in_order(cluster: Cluster, media_server) -> None:
    a = cluster.add_worker("a")
    await cluster.start_coordinator()
    assert cluster.stub is not None
    watcher = EventWatcher(cluster.stub)              # since_id "": only what happens from now on
    try:
        await asyncio.sleep(0.5)                       # let the stream settle on its starting point
        tid = await cluster.submit(f"{media_server.base_url}/speech.mp4")
        events = await watcher.wait_for(lambda ev: "SUCCEEDED" in task_states(ev, tid), what="the task's events")
        assert task_states(events, tid) == ["QUEUED", "DISPATCHED", "RUNNING", "SUCCEEDED"], events
        mine = [e for e in events if e.kind == "task" and e.task_id == tid]
        assert all(e.worker == a for e in mine[1:]) and all(e.text for e in mine), mine   # who and why
        assert not any(e.kind == "worker" and "online" in e.text for e in events)   # that was before we asked

        port = int(a.rsplit(":", 1)[1])
        cluster.workers["a"].kill()
        await watcher.wait_for(lambda ev: any(e.kind == "worker" and e.worker == a and "offline" in e.text
                                              for e in ev), what="the offline event")
        cluster.workers["a"].close()
        cluster.workers["a"] = WorkerProcess(cluster.tmp / "a", port=port, name="a")
        await asyncio.to_thread(cluster.workers["a"].wait_ready)
        events = await watcher.wait_for(
            lambda ev: [e.text.split(":")[0] for e in ev if e.kind == "worker" and e.worker == a][-1:] == ["online"],
            what="the online event")
    finally:
        await watcher.close()
    order = [e.text.split(":")[0] if e.kind == "worker" else pb.TaskState.Name(e.to_state)
             for e in events if e.kind == "worker" or (e.kind == "task" and e.task_id == tid)]
    assert order == ["QUEUED", "DISPATCHED", "RUNNING", "SUCCEEDED", "offline", "online"], order
    stamps = [tuple(map(int, e.id.split("-"))) for e in events]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)

    # since_id "0" replays from the oldest kept: the worker coming online at start-up, then the same story.
    out = grpcurl_run(cluster.address, API + "WatchEvents", {"since_id": "0"}, TOKEN, "-max-time", "5")
    replay = json_stream(out.stdout)
    story = [e.get("text", "").split(":")[0] if e["kind"] == "worker" else e.get("to_state")
             for e in replay if e["kind"] == "worker" or (e["kind"] == "task" and e.get("task_id") == tid)]
    assert story == ["online", "QUEUED", "DISPATCHED", "RUNNING", "SUCCEEDED", "offline", "online"], replay
    assert [e["id"] for e in replay][-len(events):] == [e.id for e in events]


# --------------------------------------------------------------------------------------------------- ListWorkers

async def test_list_workers_shows_state_load_slots_priority_rtt_and_capabilities(cluster: Cluster,
                                                                                  media_server) -> None:
    a = cluster.add_worker("a", priority=1, slots=2)
    b = cluster.add_worker("b", priority=3, slots=1)
    await cluster.start_coordinator()
    await cluster.submit(f"{media_server.base_url}/slow/clip.mp4?bps={LONG_BPS}", "long")
    await cluster.wait_task("long", (pb.RUNNING,))
    await cluster.until(lambda ws: all(w.rtt_ms > 0 for w in ws), 20, "round trips measured by the pings")

    workers = {w["address"]: w for w in cluster.grpcurl(API + "ListWorkers", {})["workers"]}
    assert set(workers) == {a, b}
    wa, wb = workers[a], workers[b]
    assert wa["online"] is True and wa["state"] == "SERVING" and wa["busy"] == 1 and wa["slots"] == 2
    assert wa["priority"] == 1 and wa["rtt_ms"] > 0 and wa["dispatched"] == "1"
    assert [t["task_id"] for t in wa["status"]["tasks"]] == ["long"]
    caps = wa["status"]["capabilities"]
    assert caps["encoders"] and caps["cpu_count"] >= 1 and caps["version"] and "nvenc_reason" in caps
    assert wb["online"] is True and wb.get("busy", 0) == 0 and wb["slots"] == 1 and wb["priority"] == 3
    assert wb["rtt_ms"] > 0 and wb["status"]["capabilities"]["encoders"]

    cluster.workers["b"].kill()
    await cluster.until(lambda ws: not {w.address: w for w in ws}[b].online, 15, "b offline")
    info = {w.address: w for w in await cluster.workers_info()}
    assert info[b].state == wpb.OFFLINE and info[b].last_error and info[a].online and info[a].busy == 1
    assert cluster.stub is not None
    await cluster.stub.CancelTask(cpb.TaskRef(id="long"), timeout=10)


# --------------------------------------------------------------------------------------------------- machines file

async def test_machines_yaml_edits_add_and_remove_workers_without_a_restart(cluster: Cluster, media_server) -> None:
    a = cluster.add_worker("a", priority=2)
    await cluster.start_coordinator()
    b = cluster.add_worker("b", priority=1)            # running, but not in machines.yaml yet
    await asyncio.sleep(1.0)
    assert [w.address for w in await cluster.workers_info()] == [a]

    cluster.machines()                                  # now it is
    await cluster.until(lambda ws: any(w.address == b and w.online for w in ws), 15, "b added and online")
    speech = f"{media_server.base_url}/speech.mp4"
    assert (await cluster.wait_task(await cluster.submit(speech))).worker == b   # idle and first by priority

    machines = cluster.machines()
    good = machines.read_text()
    machines.write_text("workers: [\n")                # a broken edit keeps the old list
    coordinator = cluster.coordinator
    assert coordinator is not None
    await eventually(lambda: "cannot be used" in coordinator.output(), what="the broken edit to be noticed")
    assert {w.address for w in await cluster.workers_info()} == {a, b}
    machines.write_text(good)

    cluster.entries.remove(f"{b}:1")
    cluster.machines()
    await cluster.until(lambda ws: [w.address for w in ws] == [a], 15, "b removed")
    assert (await cluster.wait_task(await cluster.submit(speech))).worker == a


def test_the_seeds_machines_txt_is_read(tmp_path: Path) -> None:
    txt = tmp_path / "machines.txt"
    txt.write_text("# 处理机器列表 (格式: IP地址:端口:优先级)\n"
                   "localhost:8005:1    # 本地高性能GPU机器\n"
                   "\n"
                   "localhost:8006:2    # 本地普通处理机器\n"
                   "192.168.1.100:8005:1\n", encoding="utf-8")
    s = load_settings(txt, environ={})
    assert s.workers == (WorkerEntry("localhost:8005", 1), WorkerEntry("localhost:8006", 2),
                         WorkerEntry("192.168.1.100:8005", 1))
    assert s.machines_path == txt and s.coordinator.port == 8001   # everything else: the defaults
    txt.write_text("localhost:8005:1\nnot-an-address\n")
    with pytest.raises(ConfigError, match=r"machines.txt line 2: .*'not-an-address' must be host:port"):
        load_settings(txt, environ={})


async def test_a_coordinator_runs_from_the_seeds_machines_txt_and_follows_its_edits(cluster: Cluster,
                                                                                    media_server) -> None:
    a = cluster.add_worker("a")
    b = cluster.add_worker("b")
    txt = cluster.tmp / "machines.txt"
    txt.write_text(f"# 处理机器列表 (格式: IP地址:端口:优先级)\n{a}:2    # 本地普通处理机器\n", encoding="utf-8")
    # The coordinator settings are the defaults then: only the ports are chosen here, and Redis is the test's.
    await cluster.start_coordinator(machines=txt, args=("--port", "0", "--http-port", "0"))
    await cluster.until(lambda ws: [(w.address, w.priority, w.online) for w in ws] == [(a, 2, True)], 15,
                        "a from machines.txt")
    txt.write_text(txt.read_text(encoding="utf-8") + f"{b}:1    # 本地高性能GPU机器\n", encoding="utf-8")
    await cluster.until(lambda ws: any(w.address == b and w.online and w.priority == 1 for w in ws), 15,
                        "b added to machines.txt")
    assert (await cluster.wait_task(await cluster.submit(f"{media_server.base_url}/speech.mp4"))).worker == b


# --------------------------------------------------------------------------------------------------- token, binds

async def test_the_token_is_required_and_an_open_bind_needs_a_token_or_insecure(cluster: Cluster) -> None:
    await cluster.start_coordinator()
    code, message = grpcurl_error(grpcurl_run(cluster.address, API + "ListWorkers", {}, None))
    assert code == "UNAUTHENTICATED" and "authorization" in message
    code, message = grpcurl_error(grpcurl_run(cluster.address, API + "SubmitTask",
                                              {"url": "https://a.example.com/a.mp4"}, "wrong-token"))
    assert code == "UNAUTHENTICATED" and "does not match" in message
    stream = grpcurl_run(cluster.address, API + "WatchEvents", {"since_id": "0"}, None, "-max-time", "20")
    assert grpcurl_error(stream)[0] == "UNAUTHENTICATED" and not stream.stdout.strip()
    assert cluster.grpcurl(API + "ListTasks", {}).get("total", 0) == 0   # the refused submit stored nothing
    # Health and reflection stay open.
    health = grpcurl_run(cluster.address, "grpc.health.v1.Health/Check", {}, None)
    assert health.returncode == 0 and "SERVING" in health.stdout, health.stderr
    listed = grpcurl_run(cluster.address, "list", None, None)
    assert listed.returncode == 0 and "aicut.v1.Coordinator" in listed.stdout

    machines = cluster.machines()
    refused = AicutProcess(cluster.tmp / "open", "coordinator", "--machines", str(machines), "--host", "0.0.0.0",
                           token="", env={"REDIS_URL": cluster.valkey.url}, name="refused")
    try:
        code_ = await asyncio.to_thread(refused.proc.wait, 30)
        assert code_ != 0
        assert "refusing to listen on 0.0.0.0 without a cluster token" in refused.output()
        assert "--insecure" in refused.output()
    finally:
        refused.close()
    insecure = AicutProcess(cluster.tmp / "open", "coordinator", "--machines", str(machines), "--host", "0.0.0.0",
                            "--insecure", token="", env={"REDIS_URL": cluster.valkey.url}, name="insecure")
    try:
        address = await asyncio.to_thread(insecure.wait_ready)
        assert grpcurl_run(address, API + "ListWorkers", {}, None).returncode == 0   # open, as asked
    finally:
        insecure.close()

