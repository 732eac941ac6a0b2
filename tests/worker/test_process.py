"""A worker as a real process: drain on SIGTERM, refusal of an unsafe bind, start-up lines."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import grpc
import pytest

from tests.worker.conftest import ROOT, Client, Stream, WorkerProcess, task
from generated.aicut.v1 import worker_pb2 as wpb


async def test_sigterm_drains_lets_the_task_finish_and_exits_0(tmp_path, media_server) -> None:
    proc = WorkerProcess(tmp_path)
    try:
        client = Client(proc.wait_ready())
        stream = Stream(client)
        await client.submit(task("t-drain", f"{media_server.base_url}/slow/speech.mp4?bps=60000"))
        await stream.next("status", lambda m: any(t.pid for t in m.status.tasks))
        proc.signal(signal.SIGTERM)
        draining = await stream.next("status", lambda m: m.status.state == wpb.DRAINING)
        assert draining.status.slots_busy == 1
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await client.submit(task("t-late", f"{media_server.base_url}/speech.mp4"))
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "DRAINING" in err.value.details()
        done = await stream.event("t-drain", "succeeded", timeout=60)
        await stream.outgoing.put(wpb.StatusStreamRequest(ack=wpb.Ack(event_seqs=[done.seq])))
        assert await asyncio.to_thread(proc.proc.wait, 30) == 0
        last = proc.output().strip().splitlines()[-1]
        assert "stopped after draining" in last and "1 task(s) finished, 0 handed back" in last
        await client.close()
    finally:
        proc.close()


async def test_a_task_past_the_drain_deadline_is_handed_back_retryable(tmp_path, media_server) -> None:
    proc = WorkerProcess(tmp_path, drain_timeout_s=1)
    try:
        client = Client(proc.wait_ready())
        stream = Stream(client)
        await client.submit(task("t-slow", f"{media_server.base_url}/slow/clip.mp4?bps=5000"))
        running = await stream.next("status", lambda m: any(t.pid for t in m.status.tasks))
        pid = running.status.tasks[0].pid
        proc.signal(signal.SIGTERM)
        failed = await stream.event("t-slow", "failed", timeout=30)
        assert failed.failed.code == "INTERRUPTED" and failed.failed.retryable
        assert await asyncio.to_thread(proc.proc.wait, 30) == 0
        assert "0 task(s) finished, 1 handed back" in proc.output().strip().splitlines()[-1]
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        await client.close()
    finally:
        proc.close()


def test_start_up_lines_tell_port_capabilities_and_how_to_reach_it(tmp_path) -> None:
    proc = WorkerProcess(tmp_path)
    try:
        address = proc.wait_ready()
        out = proc.output()
        assert f"on {address}" in out and "NVENC" in out and "encoders x264" in out
        assert "grpcurl -plaintext" in out and "authorization: Bearer $AICUT_CLUSTER_TOKEN" in out
        assert "test-token" not in out  # the token itself is never logged
    finally:
        proc.close()


def test_refuses_a_public_bind_without_a_token(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "AICUT_CLUSTER_TOKEN"}
    (tmp_path / "m.yaml").write_text(f"worker: {{work_dir: {tmp_path / 'w'}}}\n")
    out = subprocess.run([sys.executable, "-m", "aicut", "worker", "--machines", str(tmp_path / "m.yaml"),
                          "--host", "0.0.0.0", "--port", "0"], cwd=ROOT, env={**env, "AICUT_CLUSTER_TOKEN": ""},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "AICUT_CLUSTER_TOKEN" in out.stderr and "--insecure" in out.stderr


def test_insecure_flag_allows_a_public_bind(tmp_path) -> None:
    proc = WorkerProcess(tmp_path, "--host", "0.0.0.0", "--insecure", token="")
    try:
        proc.wait_ready()
        assert "--insecure" in proc.output()
    finally:
        proc.close()
