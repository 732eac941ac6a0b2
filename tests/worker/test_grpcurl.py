"""The real grpcurl binary against a real worker process with a cluster token."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.worker.conftest import TOKEN, WorkerProcess

GRPCURL = str(Path(sys.executable).parent / "grpcurl")


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc = WorkerProcess(tmp_path_factory.mktemp("grpcurl"))
    try:
        yield proc.wait_ready()
    finally:
        proc.close()


def grpcurl(*args: str, token: str | None = TOKEN) -> subprocess.CompletedProcess[str]:
    auth = ["-H", f"authorization: Bearer {token}"] if token else []
    return subprocess.run([GRPCURL, "-plaintext", *auth, *args], capture_output=True, text=True, timeout=60)


def test_list_shows_the_three_services(worker: str) -> None:
    out = grpcurl(worker, "list", token=None)
    assert out.returncode == 0, out.stderr
    services = set(out.stdout.split())
    assert {"aicut.v1.Worker", "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= services


def test_describe_worker(worker: str) -> None:
    out = grpcurl(worker, "describe", "aicut.v1.Worker", token=None)
    assert out.returncode == 0, out.stderr
    for rpc in ("SubmitTask", "StreamStatus", "Health", "CancelTask"):
        assert f"rpc {rpc}" in out.stdout
    assert "stream .aicut.v1.StatusStreamRequest" in out.stdout


def test_submit_task_with_a_json_body(worker: str, media_server) -> None:
    body = {"task": {"id": "grpcurl-1", "attempt": 1, "kind": "SMART_CUT",
                     "spec": {"title": "口播", "sources": [{"url": f"{media_server.base_url}/clip.mp4",
                                                             "name": "原片.mp4", "kind": "VIDEO"}]}}}
    out = grpcurl("-d", json.dumps(body, ensure_ascii=False), worker, "aicut.v1.Worker/SubmitTask")
    assert out.returncode == 0, out.stderr
    reply = json.loads(out.stdout)
    # grpcurl 1.8.6 prints the proto field names
    assert reply["task_id"] == "grpcurl-1" and reply["attempt"] == 1 and not reply.get("duplicate")
    assert reply["status"]["state"] == "SERVING"


def test_health_check_says_serving(worker: str) -> None:
    out = grpcurl(worker, "grpc.health.v1.Health/Check", token=None)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["status"] == "SERVING"


def test_worker_health_shows_capabilities(worker: str) -> None:
    out = grpcurl(worker, "aicut.v1.Worker/Health")
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)
    assert status["slots_total"] == 1 and "x264" in status["capabilities"]["encoders"]


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_calls_without_the_token_are_unauthenticated(worker: str, token: str | None) -> None:
    out = grpcurl(worker, "aicut.v1.Worker/Health", token=token)
    assert out.returncode != 0
    assert "Unauthenticated" in out.stderr
    assert TOKEN not in out.stderr + out.stdout
