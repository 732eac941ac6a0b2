"""The embedded Valkey and the Store's behaviour when the server crashes, restarts or is not there."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from aicut.errors import StoreError
from aicut.models import TaskRecord, TaskState
from aicut.store import EmbeddedValkey, Store, now_ms
from aicut.store.embedded import free_port

Q, D, R, OK = TaskState.QUEUED, TaskState.DISPATCHED, TaskState.RUNNING, TaskState.SUCCEEDED
ROOT = Path(__file__).resolve().parents[2]


def gone(pid: int) -> bool:
    """Whether the process has exited (a zombie nobody reaped yet counts as exited)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def test_kill_9_and_restart_on_the_same_dir_loses_nothing(tmp_path: Path) -> None:
    server = EmbeddedValkey(tmp_path / "valkey")       # appendfsync always, the default
    await server.start()
    url, old_pid = server.url, server.pid
    store = await Store.connect(url)
    try:
        await store.create_tasks([TaskRecord(id=f"t{i:03d}", task_json=f'{{"n": {i}}}') for i in range(300)])
        for i in range(0, 300, 3):
            assert await store.transition(f"t{i:03d}", 1, [Q], D, fields={"worker": "w1"})
        retry_at = now_ms() + 3_600_000
        assert await store.transition("t000", 1, [D], Q, new_attempt=2, ready_at_ms=retry_at)
        assert await store.transition("t003", 1, [D], R)
        assert await store.transition("t003", 1, [R], OK, fields={"result_json": '{"ok": true}'})
        await store.mark_seen("41", ["9001", "9002"])
        await store.set_flag("monitoring", "1")
        # The last write before the crash must survive too.
        assert await store.create_task(TaskRecord(id="last"))
        before_tasks, total = await store.list_tasks(limit=1000)
        before = {
            "counts": await store.count_by_state(), "due": await store.due_tasks(retry_at, limit=1000),
            "counters": await store.counters(), "events": await store.recent_events(1000),
        }
    finally:
        await store.close()

    assert old_pid is not None
    os.kill(old_pid, signal.SIGKILL)
    await asyncio.sleep(0.05)
    assert not server.running
    await server.start()                                # same dir, same port, same URL
    assert server.url == url and server.pid != old_pid

    store = await Store.connect(url)
    try:
        after_tasks, after_total = await store.list_tasks(limit=1000)
        assert (after_tasks, after_total) == (before_tasks, total) and total == 301
        assert await store.count_by_state() == before["counts"]
        assert before["counts"][Q] == 202 and before["counts"][D] == 98 and before["counts"][OK] == 1
        assert await store.due_tasks(retry_at, limit=1000) == before["due"]
        assert await store.next_due_ms() is not None and "t000" not in await store.due_tasks(now_ms(), limit=1000)
        assert await store.counters() == before["counters"]
        assert await store.recent_events(1000) == before["events"]
        assert await store.is_seen("41", "9002") and await store.get_flag("monitoring") == "1"
        rec = await store.get_task("t000")
        assert rec is not None and (rec.state, rec.attempt) == (Q, 2)
        # The scripts are gone from the restarted server's cache; redis-py loads them again on NOSCRIPT.
        assert await store.transition("t000", 2, [Q], D)
    finally:
        await store.close()
        await server.close()
    assert not server.running


async def test_a_store_rides_out_a_restart_of_its_server(tmp_path: Path) -> None:
    server = EmbeddedValkey(tmp_path / "valkey")
    await server.start()
    store = await Store.connect(server.url)
    try:
        assert await store.create_task(TaskRecord(id="a"))
        await server.kill()
        # Calls made while the server is down wait for it instead of failing.
        pending = [
            asyncio.create_task(store.get_task("a")),
            asyncio.create_task(store.create_task(TaskRecord(id="b"))),
            asyncio.create_task(store.transition("a", 1, [Q], D, fields={"worker": "w1"})),
            asyncio.create_task(store.count_by_state()),
        ]
        await asyncio.sleep(1.0)
        assert not any(task.done() for task in pending)
        await server.start()
        got, created, moved, counts = await asyncio.wait_for(asyncio.gather(*pending), 10)
        assert got is not None and got.id == "a"
        assert created is True and moved is not None and moved.state == D
        assert sum(counts.values()) in (1, 2)          # counted before or after b was created
        assert (await store.count_by_state())[Q] == 1
    finally:
        await store.close()
        await server.close()


async def test_nothing_listening_is_a_clear_store_error_without_the_password() -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(StoreError) as info:
        await Store.connect(f"redis://:s3cret-pw@127.0.0.1:{port}/0", retry_window_s=0.5)
    assert time.monotonic() - started < 5
    err = info.value
    assert err.code == "STORE" and err.retryable
    assert f"127.0.0.1:{port}" in err.message and "unreachable" in err.message and "REDIS_URL" in err.message
    assert "s3cret-pw" not in err.message and "s3cret-pw" not in repr(err)


async def test_wrong_credentials_are_reported_at_once_and_not_retried(store: Store) -> None:
    await store.client.execute_command("ACL", "SETUSER", "aicut-test", "on", ">right-pw", "~*", "+@all")
    try:
        host_port = store.url.split("//", 1)[1]
        started = time.monotonic()
        with pytest.raises(StoreError) as info:
            await Store.connect(f"redis://aicut-test:wrong-pw@{host_port}")
        assert time.monotonic() - started < 5            # not the 30 s retry window
        assert not info.value.retryable and "password" in info.value.message
        assert "wrong-pw" not in info.value.message
    finally:
        await store.client.execute_command("ACL", "DELUSER", "aicut-test")


async def test_a_server_that_cannot_start_says_why(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))       # bound, not listening: the server's bind fails, connects are refused
        port = taken.getsockname()[1]
        server = EmbeddedValkey(tmp_path / "valkey", port=port)
        with pytest.raises(StoreError) as info:
            await server.start()
    assert "exited" in info.value.message and "Address already in use" in info.value.message
    assert not server.running


async def test_two_servers_never_share_a_data_dir(tmp_path: Path) -> None:
    async with EmbeddedValkey(tmp_path / "valkey") as first:
        second = EmbeddedValkey(tmp_path / "valkey", stop_timeout_s=0.3)
        with pytest.raises(StoreError) as info:
            await second.start()
        assert f"pid {first.pid}" in info.value.message and not second.running
    assert not first.running


def test_the_server_stops_when_the_process_that_started_it_is_killed(tmp_path: Path) -> None:
    """A coordinator killed with -9 must not leave its Valkey holding the port and the data dir."""
    code = (
        "import asyncio, sys\n"
        "from aicut.store import EmbeddedValkey\n"
        "async def main():\n"
        "    server = EmbeddedValkey(sys.argv[1])\n"
        "    await server.start()\n"
        "    print(server.pid, flush=True)\n"
        "    await asyncio.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "valkey")], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        valkey_pid = int(parent.stdout.readline())
        assert not gone(valkey_pid)
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()  # type: ignore[union-attr]
    deadline = time.monotonic() + 10
    while not gone(valkey_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(valkey_pid)
    # And its successor starts on the same data dir.
    successor = EmbeddedValkey(tmp_path / "valkey")
    asyncio.run(successor.start())
    asyncio.run(successor.close())
