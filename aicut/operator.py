"""What an operator runs against a live cluster: ``submit``, ``status`` and the check-only mode."""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path


import grpc

from aicut import rpc
from aicut.config import Settings, load_settings
from aicut.errors import AicutError
from generated.aicut.v1 import common_pb2 as pb
from generated.aicut.v1 import coordinator_pb2 as cpb
from generated.aicut.v1 import coordinator_pb2_grpc
from generated.aicut.v1 import worker_pb2 as wpb
from generated.aicut.v1 import worker_pb2_grpc


def _address(settings: Settings, given: str | None) -> str:
    cs = settings.coordinator
    host = "127.0.0.1" if cs.host in ("0.0.0.0", "::", "") else cs.host
    return given or f"{host}:{cs.port}"


def _rpc_error(what: str, exc: grpc.aio.AioRpcError) -> int:
    print(f"{what}: {exc.code().name}: {exc.details()}")
    if exc.code() == grpc.StatusCode.UNAVAILABLE:
        print("  is the coordinator running? (make run-coordinator)")
    return 1


async def submit(settings: Settings, args: argparse.Namespace) -> int:
    """Queue one URL and print the task id."""
    address = _address(settings, args.coordinator)
    async with rpc.channel(address, settings.secrets.cluster_token) as channel:
        stub = coordinator_pb2_grpc.CoordinatorStub(channel)
        try:
            info = await stub.SubmitTask(cpb.SubmitRequest(url=args.url, name=args.name, id=args.id), timeout=10)
        except grpc.aio.AioRpcError as exc:
            return _rpc_error("submit", exc)
    print(info.id)
    return 0


def _age(unix_ms: int) -> str:
    if not unix_ms:
        return "-"
    s = max(0.0, time.time() - unix_ms / 1000)
    return f"{s:.1f}s" if s < 60 else f"{s / 60:.0f}m" if s < 3600 else f"{s / 3600:.0f}h"


async def status(settings: Settings, args: argparse.Namespace) -> int:
    """Print workers and tasks."""
    address = _address(settings, args.coordinator)
    async with rpc.channel(address, settings.secrets.cluster_token) as channel:
        stub = coordinator_pb2_grpc.CoordinatorStub(channel)
        try:
            workers = (await stub.ListWorkers(cpb.ListWorkersRequest(), timeout=10)).workers
            state = pb.TaskState.Value(args.state.upper()) if args.state else 0
            tasks = await stub.ListTasks(cpb.ListTasksRequest(state=state, limit=args.limit), timeout=10)
            monitoring = await stub.GetMonitoring(cpb.MonitoringRequest(), timeout=10)
        except grpc.aio.AioRpcError as exc:
            return _rpc_error("status", exc)
        except ValueError:
            print(f"status: unknown state {args.state!r}; use one of {', '.join(pb.TaskState.keys()[1:])}")
            return 2
    print(f"{'WORKER':24} {'STATE':12} {'PRIO':>4} {'BUSY':>6} {'RTT':>8} {'SEEN':>6}  NOTES")
    for w in workers:
        notes = [n for n, on in (("draining", w.cordoned), ("ejected", w.ejected)) if on]
        if w.status.capabilities.nvenc:
            notes.append("NVENC")
        if w.last_error and not w.online:
            notes.append(w.last_error[:60])
        print(f"{w.address:24} {wpb.WorkerState.Name(w.state):12} {w.priority:>4} {w.busy:>3}/{w.slots:<2} "
              f"{w.rtt_ms:>6.1f}ms {_age(w.last_seen_unix_ms):>6}  {', '.join(notes)}")
    checked = f", last check {_age(monitoring.last_check_unix_ms)} ago" if monitoring.last_check_unix_ms else ""
    print(f"\n{monitoring.detail}{checked}")
    if monitoring.last_error:
        print(f"❌ forum: {monitoring.last_error}")
    print(f"\n{tasks.total} task(s){' in ' + args.state.upper() if args.state else ''}; newest first:")
    print(f"{'TASK':34} {'STATE':10} {'TRY':>3} {'WORKER':22} {'STAGE':10} {'AGE':>6}  ERROR")
    for t in tasks.tasks:
        stage = f"{t.stage} {t.percent:.0f}%" if t.stage else ""
        print(f"{t.id:34} {pb.TaskState.Name(t.state):10} {t.attempt:>3} {t.worker:22} {stage:10} "
              f"{_age(t.created_unix_ms):>6}  {t.error_message[:70]}")
    return 0


def _check_forum(settings: Settings, ok: list[str], problems: list[str]) -> None:
    """Log in to the forum as the watcher would and say what the site is; a captcha, a wrong password or an outage
    becomes one readable problem line. One login attempt at most (the cookie jar is a throwaway)."""
    from aicut.forum.client import ForumClient

    forum = settings.forum
    with tempfile.TemporaryDirectory() as tmp:
        client = ForumClient(forum, settings.secrets.forum_username, settings.secrets.forum_password,
                             cookie_file=Path(tmp) / "cookies.json")
        try:
            site = client.check()
            ok.append(f"forum {forum.base_url}: Discuz {site.version or '?'} ({site.charset}), mobile API "
                      f"{'on' if site.mobile_api else 'off'}, logged in as {site.username} (uid {site.uid}); "
                      f"boards {', '.join(map(str, forum.boards))}")
        except AicutError as exc:
            problems.append(f"forum {forum.base_url}: {exc.message}")
        finally:
            client.close()


async def check(machines: str | None) -> int:
    """The check-only mode: every problem found, readably; non-zero when there is one. Secrets are never shown."""
    problems: list[str] = []
    ok: list[str] = []
    try:
        settings = load_settings(machines)
    except AicutError as exc:
        print(f"❌ configuration: {exc.message}")
        return 1
    ok.append(f"configuration {settings.machines_path} is valid ({len(settings.workers)} worker(s))")
    secrets = settings.secrets
    if secrets.redis_url:
        from aicut.store.tasks import Store

        try:
            store = await asyncio.wait_for(Store.connect(secrets.redis_url, retry_window_s=2), 10)
            await store.ping()
            await store.close()
            ok.append("Redis from REDIS_URL answers")
        except (AicutError, asyncio.TimeoutError) as exc:
            problems.append(f"Redis from REDIS_URL: {getattr(exc, 'message', 'no answer in 10s')}")
    else:
        from aicut.store.embedded import valkey_binary

        try:
            ok.append(f"no REDIS_URL: the coordinator will start its own Valkey ({valkey_binary()})")
        except AicutError as exc:
            problems.append(exc.message)
        data = settings.coordinator.data_dir
        data.mkdir(parents=True, exist_ok=True)
        if not os.access(data, os.W_OK):
            problems.append(f"the coordinator's data dir {data} is not writable")
    for entry in settings.workers:
        try:
            async with rpc.channel(entry.address, secrets.cluster_token) as channel:
                st = await worker_pb2_grpc.WorkerStub(channel).Health(wpb.HealthRequest(), timeout=3)
            caps = st.capabilities
            line = (f"worker {entry.address}: {wpb.WorkerState.Name(st.state)}, {st.slots_busy}/{st.slots_total} busy,"
                    f" encoders {', '.join(caps.encoders) or 'none'}, NVENC {'yes' if caps.nvenc else 'no'}, speech "
                    f"{'ready' if caps.speech_model_ready else 'not ready'}")
            (ok if st.state == wpb.SERVING else problems).append(
                line if st.state == wpb.SERVING else f"{line}: {st.state_reason}")
        except grpc.aio.AioRpcError as exc:
            hint = {grpc.StatusCode.UNAUTHENTICATED: "AICUT_CLUSTER_TOKEN differs from the worker's",
                    grpc.StatusCode.UNAVAILABLE: "not reachable: is `make run-worker` running there?",
                    grpc.StatusCode.DEADLINE_EXCEEDED: "no answer within 3s"}.get(exc.code(), exc.details())
            problems.append(f"worker {entry.address}: {hint}")
    if secrets.forum_username and secrets.forum_password:
        ok.append("forum credentials are set (FORUM_USERNAME / FORUM_PASSWORD)")
        if settings.forum.base_url:
            await asyncio.to_thread(_check_forum, settings, ok, problems)
    else:
        problems.append("forum credentials missing: set FORUM_USERNAME and FORUM_PASSWORD in .env")
    if settings.publish.kind == "directory" and settings.publish.path:
        target = Path(settings.publish.path)
        if not (target.is_dir() and os.access(target, os.W_OK)):
            problems.append(f"publish.path {target} is not a writable directory")
    for name, host, insecure in (("coordinator", settings.coordinator.host, settings.coordinator.insecure),
                                 ("worker", settings.worker.host, settings.worker.insecure)):
        try:  # the refusal the server itself would meet at start-up
            rpc.check_bind(host, secrets.cluster_token, insecure)
        except AicutError as exc:
            problems.append(f"{name}.host in {settings.machines_path.name}: {exc.message}")
    if not secrets.cluster_token:
        ok.append("no AICUT_CLUSTER_TOKEN: servers will listen on loopback only")
    for line in ok:
        print(f"✅ {line}")
    for line in problems:
        print(f"❌ {line}")
    print(f"\n{'all checks passed' if not problems else f'{len(problems)} problem(s) found'}")
    return 1 if problems else 0



