"""Long-lived task processes: reuse with the speech model kept, replacement after a crash, a kill or a cancel, back-off
when they keep dying, recycling, and no process left behind when the worker ends (even by kill -9)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from aicut.pipeline.transcribe import TranscribeOptions
from aicut.worker import pool as pool_module
from aicut.worker.pool import ServeProcess, TaskPool
from aicut.worker.taskproc import Models
from generated.aicut.v1 import worker_pb2 as wpb
from tests.worker.conftest import Client, MakeWorker, Stream, WorkerProcess, task

TINY = dict(model="tiny.en", language="en")


async def eventually(check: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    """Poll ``check`` until it holds; a deadline, not a sleep, decides when to give up."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def gone(pid: int) -> bool:
    """The process has ended (a zombie waiting for a reaper counts as ended)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def task_pids(worker_pid: int) -> set[int]:
    """Live ``aicut.worker.taskproc`` processes under ``worker_pid``."""
    out = set()
    for child in psutil.Process(worker_pid).children(recursive=True):
        try:
            if "aicut.worker.taskproc" in " ".join(child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                out.add(child.pid)
        except psutil.NoSuchProcess:
            pass
    return out


def idle_ready(pool: TaskPool) -> ServeProcess | None:
    """The pool's idle process once it has loaded its speech model."""
    return next((p for p in pool.idle if p.alive and p.warm), None)


def details(stream: Stream, task_id: str) -> list[str]:
    return [m.event.progress.detail for _, m in stream.received
            if m.WhichOneof("msg") == "event" and m.event.task_id == task_id
            and m.event.WhichOneof("event") == "progress"]


async def run_pid(stream: Stream, task_id: str) -> int:
    running = await stream.next("status", lambda m: any(t.task_id == task_id and t.pid for t in m.status.tasks))
    return next(t.pid for t in running.status.tasks if t.task_id == task_id)


# ------------------------------------------------------------------------------------------------ on a worker

async def test_two_tasks_in_a_row_share_one_process_and_load_the_model_once(make_worker: MakeWorker,
                                                                             media_server) -> None:
    app, client = await make_worker(prewarm="true")
    stream = Stream(client)
    await client.submit(task("t-1", f"{media_server.base_url}/speech.mp4"))
    first_pid = await run_pid(stream, "t-1")
    await stream.event("t-1", "succeeded", timeout=90)
    assert any("speech model" in d for d in details(stream, "t-1"))

    await client.submit(task("t-2", f"{media_server.base_url}/speech.mp4"))
    assert await run_pid(stream, "t-2") == first_pid
    done = await stream.event("t-2", "succeeded", timeout=90)
    assert "speech model already loaded (task 2 in this process)" in details(stream, "t-2")
    assert done.succeeded.result.stage_seconds["model_load"] == 0.0
    assert app.node.pool.spawned == 1
    await stream.close()


async def test_a_task_process_killed_mid_task_is_replaced_and_the_next_task_runs(make_worker: MakeWorker,
                                                                                media_server) -> None:
    app, client = await make_worker(prewarm="true")
    stream = Stream(client)
    await client.submit(task("t-crash", f"{media_server.base_url}/slow/clip.mp4?bps=10000"))
    pid = await run_pid(stream, "t-crash")
    os.kill(pid, signal.SIGKILL)
    failed = (await stream.event("t-crash", "failed")).failed
    assert failed.code == "TASK_CRASHED" and failed.retryable and "SIGKILL" in failed.message
    await eventually(lambda: idle_ready(app.node.pool), "a fresh task process with its model loaded")
    await client.submit(task("t-next", f"{media_server.base_url}/speech.mp4"))
    assert await run_pid(stream, "t-next") != pid
    await stream.event("t-next", "succeeded", timeout=90)
    assert (await client.health()).state == wpb.SERVING
    await stream.close()


async def test_an_idle_task_process_killed_is_replaced_and_the_next_task_runs(make_worker: MakeWorker,
                                                                             media_server) -> None:
    app, client = await make_worker(prewarm="true")
    stream = Stream(client)
    await eventually(lambda: idle_ready(app.node.pool), "the pre-warmed task process")
    victim = idle_ready(app.node.pool)
    assert victim is not None
    os.kill(victim.pid, signal.SIGKILL)
    await eventually(lambda: (p := idle_ready(app.node.pool)) and p.pid != victim.pid, "a replacement")
    assert gone(victim.pid)
    replacement = idle_ready(app.node.pool)
    assert replacement is not None
    await client.submit(task("t-after-idle-kill", f"{media_server.base_url}/speech.mp4"))
    assert await run_pid(stream, "t-after-idle-kill") == replacement.pid
    await stream.event("t-after-idle-kill", "succeeded", timeout=90)
    assert (await client.health()).state == wpb.SERVING and app.node.pool.deaths == 0
    await stream.close()


async def test_cancel_kills_the_process_and_a_fresh_one_takes_the_slot(make_worker: MakeWorker,
                                                                       media_server) -> None:
    app, client = await make_worker(prewarm="true")
    stream = Stream(client)
    await client.submit(task("t-cancel", f"{media_server.base_url}/slow/clip.mp4?bps=10000"))
    pid = await run_pid(stream, "t-cancel")
    await client.stub.CancelTask(wpb.CancelTaskRequest(task_id="t-cancel", reason="no longer wanted"))
    await stream.event("t-cancel", "cancelled")
    assert gone(pid)
    await eventually(lambda: idle_ready(app.node.pool), "a fresh task process")
    assert [p.pid for p in app.node.pool.processes] != [pid] and len(app.node.pool.processes) == 1
    await stream.close()


async def test_processes_that_keep_dying_turn_the_worker_not_serving_until_one_lives(
        make_worker: MakeWorker, monkeypatch: pytest.MonkeyPatch) -> None:
    real = pool_module.ARGV
    monkeypatch.setattr(pool_module, "ARGV", (sys.executable, "-c", "import sys; sys.exit(3)"))
    app, client = await make_worker(prewarm="true")
    await eventually(lambda: app.node.state.value == "NOT_SERVING", "NOT_SERVING")
    status = await client.health()
    assert status.state == wpb.NOT_SERVING and "keep dying" in status.state_reason
    assert "exited with status 3" in status.state_reason
    assert re.search(r"next try in [1-9]\d*s", status.state_reason), status.state_reason  # pauses, not a spin
    app.node.pool.argv = real
    await eventually(lambda: app.node.state.value == "SERVING", "SERVING again once a process loads its model")
    assert (await client.health()).state == wpb.SERVING


# ------------------------------------------------------------------------------------------------ worker process

@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
async def test_no_task_process_outlives_the_worker(tmp_path: Path, media_server, how: str) -> None:
    proc = WorkerProcess(tmp_path, slots=2, drain_timeout_s=1, prewarm="true")
    try:
        client = Client(proc.wait_ready())
        stream = Stream(client)
        await client.submit(task("t-long", f"{media_server.base_url}/slow/clip.mp4?bps=3000"))
        busy = await run_pid(stream, "t-long")
        await eventually(lambda: len(task_pids(proc.proc.pid)) == 2, "a busy and an idle task process")
        pids = task_pids(proc.proc.pid)
        assert busy in pids
        await stream.close()
        await client.close()
        proc.signal(getattr(signal, how))  # SIGTERM: the task is handed back after the 1 s drain
        await asyncio.to_thread(proc.proc.wait, 60)
        await eventually(lambda: all(gone(p) for p in pids), "the task processes to end", timeout=20)
    finally:
        proc.close()


# ------------------------------------------------------------------------------------------------ the pool itself

async def test_a_process_is_replaced_after_max_tasks() -> None:
    pool = TaskPool(1, None, prewarm=True, max_tasks=2)
    await pool.start()
    try:
        await eventually(lambda: pool.idle and pool.idle[0].ready, "the first process")
        first = await pool.acquire()
        pool.release(first, reuse=True)
        assert pool.idle == [first]
        again = await pool.acquire()
        assert again is first
        pool.release(again, reuse=True)          # its second task: retired, a new one started
        await eventually(lambda: pool.idle and pool.idle[0] is not first and pool.idle[0].ready, "a replacement")
        await eventually(lambda: gone(first.pid), "the old process to leave")
    finally:
        await pool.close()
    assert not pool.processes


async def test_close_ends_idle_and_busy_processes() -> None:
    pool = TaskPool(2, None, prewarm=False)
    await pool.start()
    a, b = await pool.acquire(), await pool.acquire()
    pool.release(a, reuse=True)
    assert pool.idle == [a] and pool.busy == {b} and pool.spawned == 2
    await pool.close()
    assert gone(a.pid) and gone(b.pid) and a.returncode is not None and b.returncode is not None


def test_models_are_kept_per_options() -> None:
    models = Models()
    tiny = TranscribeOptions(**TINY)
    first = models.get(tiny)
    assert models.get(TranscribeOptions(**TINY)) is first and models.loads == 1 and models.cached(tiny)
    other = models.get(TranscribeOptions(**TINY, beam_size=1))   # another key replaces the one before
    assert other is not first and other.options.beam_size == 1 and models.loads == 2
    assert not models.cached(tiny)
