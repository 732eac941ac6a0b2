"""Issue 3's command line: ``python -m aicut submit | status | check | run`` as an operator types them."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from aicut import rpc
from aicut.store.embedded import EmbeddedValkey
from generated.aicut.v1 import common_pb2 as pb
from generated.aicut.v1 import coordinator_pb2 as cpb
from generated.aicut.v1 import coordinator_pb2_grpc
from tests.coordinator.conftest import Cluster
from tests.support.procs import ROOT, TOKEN, WorkerProcess, free_port, write_machines

# Secrets a developer's .env might hold are blanked, so each test says exactly what is set.
CLEAN_ENV = {"AICUT_CLUSTER_TOKEN": TOKEN, "REDIS_URL": "", "FORUM_USERNAME": "", "FORUM_PASSWORD": "",
             "AICUT_ADMIN_USERNAME": "", "AICUT_ADMIN_PASSWORD": "", "AICUT_MACHINES": "", "PYTHONUNBUFFERED": "1"}


def aicut(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m aicut ARGS`` to completion; stdout and stderr captured apart."""
    full = {**os.environ, **CLEAN_ENV, **(env or {})}
    return subprocess.run([sys.executable, "-m", "aicut", *args], cwd=ROOT, env=full, capture_output=True,
                          text=True, timeout=timeout)


async def aicut_async(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(aicut, *args, env=env)


def still_running(procs: list[psutil.Process]) -> list[psutil.Process]:
    """Those of ``procs`` that still run (a zombie waiting for a parent that never reaps it does not count)."""
    out = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except psutil.NoSuchProcess:
            pass
    return out


async def wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until none of ``procs`` runs; returns those still running after ``timeout``."""
    deadline = time.monotonic() + timeout
    while (alive := still_running(procs)) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    return alive


# --------------------------------------------------------------------------------------------------- submit, status

async def test_submit_prints_the_task_id_and_status_prints_workers_and_tasks(cluster: Cluster, media_server) -> None:
    a = cluster.add_worker("a", slots=1)
    await cluster.start_coordinator()
    machines = str(cluster.machines())
    where = ("--coordinator", cluster.address, "--machines", machines)

    out = await aicut_async("submit", f"{media_server.base_url}/speech.mp4", *where)
    assert out.returncode == 0, out
    task_id = out.stdout.strip()
    assert re.fullmatch(r"\S+", task_id) and len(out.stdout.splitlines()) == 1, out.stdout
    done = await cluster.wait_task(task_id)
    assert done.state == pb.SUCCEEDED and done.worker == a

    mine = [await aicut_async("submit", f"{media_server.base_url}/speech.mp4", "--id", "cli-own-id", *where)
            for _ in range(2)]
    assert [(o.returncode, o.stdout.strip()) for o in mine] == [(0, "cli-own-id")] * 2
    await cluster.wait_task("cli-own-id")

    bad = await aicut_async("submit", "ftp://example.com/a.mp4", *where)
    assert bad.returncode == 1 and "INVALID_ARGUMENT" in bad.stdout and "http(s)" in bad.stdout, bad

    out = await aicut_async("status", *where)
    assert out.returncode == 0, out
    lines = out.stdout.splitlines()
    header = lines[0].split()
    assert header[:6] == ["WORKER", "STATE", "PRIO", "BUSY", "RTT", "SEEN"], lines
    worker_line = next(line for line in lines if line.startswith(a))
    assert worker_line.split()[1:4] == ["SERVING", "1", "0/1"], worker_line
    assert "2 task(s); newest first:" in out.stdout
    rows = {line.split()[0]: line.split() for line in lines if line.startswith((task_id, "cli-own-id"))}
    assert set(rows) == {task_id, "cli-own-id"}
    assert all(r[1:4] == ["SUCCEEDED", "1", a] for r in rows.values()), rows
    table = lines[lines.index(next(line for line in lines if line.startswith("TASK"))):]
    assert [line.split()[0] for line in table[1:]] == ["cli-own-id", task_id]   # newest first

    only = await aicut_async("status", "--state", "failed", *where)
    assert only.returncode == 0 and "0 task(s) in FAILED" in only.stdout
    unknown = await aicut_async("status", "--state", "lost", *where)
    assert unknown.returncode == 2 and "unknown state" in unknown.stdout


async def test_submit_and_status_say_what_is_wrong(cluster: Cluster) -> None:
    await cluster.start_coordinator()
    machines = str(cluster.machines())
    refused = await aicut_async("status", "--coordinator", cluster.address, "--machines", machines,
                                env={"AICUT_CLUSTER_TOKEN": "not-the-token-31"})
    assert refused.returncode == 1 and "UNAUTHENTICATED" in refused.stdout, refused
    assert "not-the-token-31" not in refused.stdout + refused.stderr
    nobody = f"127.0.0.1:{free_port()}"
    down = await aicut_async("submit", "https://a.example.com/a.mp4", "--coordinator", nobody, "--machines", machines)
    assert down.returncode == 1 and "UNAVAILABLE" in down.stdout and "is the coordinator running?" in down.stdout


# --------------------------------------------------------------------------------------------------- check

async def test_check_passes_on_a_good_setup_and_shows_no_secret(tmp_path: Path, valkey: EmbeddedValkey) -> None:
    (tmp_path / "w").mkdir()
    worker = WorkerProcess(tmp_path / "w", port=free_port())
    try:
        await asyncio.to_thread(worker.wait_ready)
        machines = write_machines(tmp_path, workers=[f"127.0.0.1:{worker.port}:1"])
        out = await aicut_async("check", "--machines", str(machines),
                                env={"REDIS_URL": valkey.url, "FORUM_USERNAME": "aicut-bot",
                                     "FORUM_PASSWORD": "forum-pw-good-5150"})
    finally:
        worker.close()
    assert out.returncode == 0, out
    lines = out.stdout.splitlines()
    assert not any(line.startswith("❌") for line in lines), out.stdout
    ticks = [line for line in lines if line.startswith("✅")]
    assert any("configuration" in t and "valid" in t and "1 worker" in t for t in ticks), ticks
    assert any("Redis from REDIS_URL answers" in t for t in ticks), ticks
    assert any(f"worker 127.0.0.1:{worker.port}: SERVING" in t and "encoders" in t for t in ticks), ticks
    assert any("forum credentials are set" in t for t in ticks), ticks
    assert "all checks passed" in out.stdout
    assert "forum-pw-good-5150" not in out.stdout + out.stderr and TOKEN not in out.stdout + out.stderr


async def test_check_lists_every_problem_exits_1_and_never_shows_a_secret(tmp_path: Path) -> None:
    (tmp_path / "w").mkdir()
    worker = WorkerProcess(tmp_path / "w", port=free_port())   # alive, but the check brings the wrong token
    secrets = {"AICUT_CLUSTER_TOKEN": "wrong-token-8d7c6b", "FORUM_USERNAME": "",
               "FORUM_PASSWORD": "forum-pw-bad-4242", "REDIS_URL": f"redis://:redis-pw-1717@127.0.0.1:{free_port()}/0"}
    try:
        await asyncio.to_thread(worker.wait_ready)
        live, dead = f"127.0.0.1:{worker.port}", f"127.0.0.1:{free_port()}"
        machines = write_machines(tmp_path, workers=[f"{live}:1", f"{dead}:2"])
        out = await aicut_async("check", "--machines", str(machines), env=secrets)
    finally:
        worker.close()
    assert out.returncode == 1, out
    problems = [line for line in out.stdout.splitlines() if line.startswith("❌")]
    assert any(line.startswith(f"❌ worker {live}:") and "AICUT_CLUSTER_TOKEN differs" in line for line in problems)
    assert any(line.startswith(f"❌ worker {dead}:") and "not reachable" in line for line in problems), problems
    assert any("forum credentials missing" in line and "FORUM_PASSWORD" in line for line in problems), problems
    assert any("Redis from REDIS_URL" in line for line in problems), problems
    assert len(problems) == 4 and "4 problem(s) found" in out.stdout, out.stdout
    assert any(line.startswith("✅ configuration") for line in out.stdout.splitlines())
    for secret in ("wrong-token-8d7c6b", "forum-pw-bad-4242", "redis-pw-1717", TOKEN):
        assert secret not in out.stdout + out.stderr, secret

    for text, why in (("workers: [\n", "not valid YAML"), ("workers: ['no-port-here']\n", "host:port"),
                      ("coordinator: {appendfsync: sometimes}\n", "appendfsync")):
        machines.write_text(text)
        out = await aicut_async("check", "--machines", str(machines), env=secrets)
        assert out.returncode == 1 and out.stdout.startswith("❌ configuration") and why in out.stdout, (text, out)
        assert not any(s in out.stdout + out.stderr for s in secrets.values() if s), out
    missing = await aicut_async("check", "--machines", str(tmp_path / "nowhere.yaml"), env=secrets)
    assert missing.returncode == 1 and "❌ configuration" in missing.stdout and "does not exist" in missing.stdout

    # A coordinator told to listen beyond loopback without a token would refuse to start: the check says so first.
    (tmp_path / "open").mkdir()
    open_bind = write_machines(tmp_path / "open", coordinator={"host": "0.0.0.0"})
    out = await aicut_async("check", "--machines", str(open_bind),
                            env={"AICUT_CLUSTER_TOKEN": "", "FORUM_USERNAME": "u",
                                 "FORUM_PASSWORD": "forum-pw-bad-4242"})
    problems = [line for line in out.stdout.splitlines() if line.startswith("❌")]
    assert out.returncode == 1 and len(problems) == 1, out.stdout
    assert "coordinator.host" in problems[0] and "refusing to listen on 0.0.0.0" in problems[0], problems
    assert "forum-pw-bad-4242" not in out.stdout + out.stderr


# --------------------------------------------------------------------------------------------------- run

async def test_run_brings_up_the_whole_cluster_and_ctrl_c_stops_all_three(tmp_path: Path, media_server) -> None:
    worker_port, coordinator_port = free_port(), free_port()
    machines = write_machines(tmp_path, workers=[f"127.0.0.1:{worker_port}:1"], port=worker_port,
                              coordinator={"port": coordinator_port, "http_port": 0,
                                           "data_dir": str(tmp_path / "data")})
    log_path = tmp_path / "run.log"
    with open(log_path, "w") as log:
        # Its own process group, as a terminal gives it: Ctrl+C is SIGINT to that whole group.
        run = subprocess.Popen([sys.executable, "-m", "aicut", "run", "--machines", str(machines)], cwd=ROOT,
                               env={**os.environ, **CLEAN_ENV}, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    address = f"127.0.0.1:{coordinator_port}"
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 60
        while "cluster running" not in log_path.read_text():
            assert run.poll() is None and time.monotonic() < deadline, log_path.read_text()
            await asyncio.sleep(0.1)
        children = psutil.Process(run.pid).children(recursive=True)
        names = " ".join(" ".join(c.cmdline()) for c in children)
        assert "valkey-server" in names and "aicut worker" in names, names
        assert (tmp_path / "data" / "appendonlydir").is_dir()    # the embedded Valkey keeps its files there

        async with rpc.channel(address, TOKEN) as channel:
            stub = coordinator_pb2_grpc.CoordinatorStub(channel)
            for _ in range(300):
                workers = (await stub.ListWorkers(cpb.ListWorkersRequest(), timeout=10)).workers
                if workers and workers[0].online:
                    break
                await asyncio.sleep(0.1)
            assert [(w.address, w.online) for w in workers] == [(f"127.0.0.1:{worker_port}", True)]
            task_id = (await stub.SubmitTask(cpb.SubmitRequest(url=f"{media_server.base_url}/speech.mp4"),
                                             timeout=10)).id
            for _ in range(600):
                info = await stub.GetTask(cpb.TaskRef(id=task_id), timeout=10)
                if info.state in (pb.SUCCEEDED, pb.FAILED, pb.CANCELLED):
                    break
                await asyncio.sleep(0.1)
            assert info.state == pb.SUCCEEDED, info

        os.killpg(run.pid, signal.SIGINT)                                     # Ctrl+C
        code = await asyncio.to_thread(run.wait, 60)
        output = log_path.read_text()
        assert code == 0, output
        alive = await wait_gone(children, 10)
        assert not alive, [(p.pid, p.cmdline()) for p in alive]
        assert "coordinator stopped" in output and "Traceback" not in output, output
        for port in (worker_port, coordinator_port):   # nothing listens any more
            assert not any(c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN
                           for c in psutil.net_connections("tcp")), port
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(10)
        for child in still_running(children):
            child.kill()


async def test_run_killed_outright_leaves_no_process_behind(tmp_path: Path) -> None:
    worker_port, coordinator_port = free_port(), free_port()
    machines = write_machines(tmp_path, workers=[f"127.0.0.1:{worker_port}:1"], port=worker_port,
                              coordinator={"port": coordinator_port, "http_port": 0,
                                           "data_dir": str(tmp_path / "data")})
    log_path = tmp_path / "run.log"
    with open(log_path, "w") as log:
        run = subprocess.Popen([sys.executable, "-m", "aicut", "run", "--machines", str(machines)], cwd=ROOT,
                               env={**os.environ, **CLEAN_ENV}, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 60
        while "cluster running" not in log_path.read_text():
            assert run.poll() is None and time.monotonic() < deadline, log_path.read_text()
            await asyncio.sleep(0.1)
        children = psutil.Process(run.pid).children(recursive=True)
        assert len(children) == 2, [c.cmdline() for c in children]          # the worker and valkey-server
        run.kill()                                                          # kill -9, out of memory, …
        run.wait(10)
        alive = await wait_gone(children, 20)
        assert not alive, [(p.pid, p.cmdline()) for p in alive]            # the kernel told them (PDEATHSIG)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait(10)
        for child in still_running(children):
            child.kill()
