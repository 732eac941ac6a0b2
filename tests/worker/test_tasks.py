"""Tasks on a real worker: results, slots, idempotency, cancel, crash isolation and every named failure path."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import av

import grpc
import pytest

from tests.worker.conftest import MakeWorker, Stream, task
from generated.aicut.v1 import worker_pb2 as wpb


async def test_a_task_runs_the_whole_cut(make_worker: MakeWorker, media_server) -> None:
    app, client = await make_worker()
    stream = Stream(client)
    reply = await client.submit(task("t-ok", f"{media_server.base_url}/speech.mp4"))
    assert not reply.duplicate and reply.status.slots_busy == 1
    done = await stream.event("t-ok", "succeeded", timeout=90)
    result = done.succeeded.result
    src = result.sources[0]
    assert src.source.name == "源0.mp4"
    assert (src.media.video[0].codec, src.media.video[0].width, src.media.video[0].height) == ("h264", 160, 120)
    assert src.media.audio[0].codec == "aac"
    assert os.path.getsize(src.local_path) == src.media.size_bytes > 0 and len(src.sha256) == 64
    outputs = {o.kind: o for o in result.outputs}
    assert set(outputs) == {"video", "subtitles", "cover", "edl", "report"}
    assert outputs["video"].name == "源0_cut.mp4" and outputs["cover"].name == "源0_cover.jpg"
    with av.open(outputs["video"].path) as cut:
        cut_duration = float(cut.duration or 0) / av.time_base
    assert 0 < cut_duration < src.media.duration_s - 0.8   # the 1.5 s pause was shortened
    report = json.loads(Path(outputs["report"].path).read_text(encoding="utf-8"))
    assert report["encoder"] == "x264" and "nvenc" in report["encoder_reason"].lower()
    assert report["plan"] and report["words"] >= 8
    assert "test" in Path(outputs["subtitles"].path).read_text(encoding="utf-8").lower()
    assert {"fetch", "probe", "transcribe", "render"} <= set(result.stage_seconds)
    stages = [m.event.progress.stage for _, m in stream.received
              if m.WhichOneof("msg") == "event" and m.event.WhichOneof("event") == "progress"]
    assert {"fetch", "probe", "transcribe", "render"} <= set(stages)
    percents = [m.event.progress.percent for _, m in stream.received
                if m.WhichOneof("msg") == "event" and m.event.WhichOneof("event") == "progress"]
    assert percents == sorted(percents)
    await stream.close()


async def test_slots_are_never_exceeded(make_worker: MakeWorker, media_server) -> None:
    _app, client = await make_worker(slots=2)
    slow = f"{media_server.base_url}/slow/clip.mp4?bps=20000"
    await client.submit(task("t-a", slow))
    await client.submit(task("t-b", slow))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await client.submit(task("t-c", slow))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "2 of 2 slot(s) busy" in err.value.details()
    health = await client.health()
    assert health.slots_busy == 2 and {t.task_id for t in health.tasks} == {"t-a", "t-b"}


async def test_same_task_and_attempt_is_accepted_once(make_worker: MakeWorker, media_server) -> None:
    app, client = await make_worker()
    stream = Stream(client)
    t = task("t-dup", f"{media_server.base_url}/slow/speech.mp4?bps=50000")
    first = await client.submit(t)
    second = await client.submit(t)
    assert (first.duplicate, second.duplicate) == (False, True)
    assert app.node.stats["accepted"] == 1
    # Another attempt of a task that is still running here is refused, not run beside it.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await client.submit(task("t-dup", f"{media_server.base_url}/clip.mp4", attempt=2))
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    await stream.close()


async def test_a_finished_attempt_is_not_run_again(make_worker: MakeWorker, media_server) -> None:
    app, client = await make_worker()
    stream = Stream(client)
    t = task("t-once", f"{media_server.base_url}/speech.mp4")
    await client.submit(t)
    await stream.event("t-once", "succeeded")
    assert (await client.submit(t)).duplicate
    assert app.node.stats["accepted"] == 1
    await stream.close()


async def test_cancel_stops_the_process_and_frees_the_slot(make_worker: MakeWorker, media_server) -> None:
    _app, client = await make_worker()
    stream = Stream(client)
    await client.submit(task("t-cancel", f"{media_server.base_url}/slow/clip.mp4?bps=10000"))
    running = await stream.next("status", lambda m: any(t.pid for t in m.status.tasks))
    pid = running.status.tasks[0].pid
    reply = await client.stub.CancelTask(wpb.CancelTaskRequest(task_id="t-cancel", reason="operator said so"))
    assert reply.cancelled and reply.attempt == 1
    ev = await stream.event("t-cancel", "cancelled")
    assert "operator said so" in ev.cancelled.reason
    assert (await client.health()).slots_busy == 0
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await client.stub.CancelTask(wpb.CancelTaskRequest(task_id="t-cancel"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    await stream.close()


async def test_a_killed_task_process_fails_retryable_and_the_worker_keeps_serving(make_worker: MakeWorker,
                                                                                   media_server) -> None:
    _app, client = await make_worker()
    stream = Stream(client)
    await client.submit(task("t-crash", f"{media_server.base_url}/slow/clip.mp4?bps=10000"))
    running = await stream.next("status", lambda m: any(t.pid for t in m.status.tasks))
    os.kill(running.status.tasks[0].pid, signal.SIGKILL)
    failed = await stream.event("t-crash", "failed")
    assert failed.failed.code == "TASK_CRASHED" and failed.failed.retryable
    assert "SIGKILL" in failed.failed.message
    # The worker is unharmed: the next task runs.
    await client.submit(task("t-after", f"{media_server.base_url}/speech.mp4"))
    await stream.event("t-after", "succeeded")
    assert (await client.health()).state == wpb.SERVING
    await stream.close()


@pytest.mark.parametrize("path, code, words", [
    ("ftp://127.0.0.1/clip.mp4", "URL_NOT_ALLOWED", "http"),
    ("file:///etc/passwd", "URL_NOT_ALLOWED", "http"),
    ("http://files.example.org/clip.mp4", "URL_NOT_ALLOWED", "files.example.org"),
    ("LOCALHOST/clip.mp4", "URL_NOT_ALLOWED", "localhost"),     # loopback under a name that is not listed
    ("/status/404", "HTTP_STATUS", "404"),
    ("/html", "NOT_MEDIA", "HTML"),
    ("/big", "TOO_LARGE", "MB"),
    ("/endless", "TOO_LARGE", "MB"),
])
async def test_bad_sources_end_with_a_clear_final_error(make_worker: MakeWorker, media_server, path: str, code: str,
                                                        words: str) -> None:
    _app, client = await make_worker()
    stream = Stream(client)
    port = media_server.base_url.rsplit(":", 1)[1]
    url = (path.replace("LOCALHOST", f"http://localhost:{port}") if path.startswith("LOCALHOST")
           else path if "://" in path else f"{media_server.base_url}{path}")
    await client.submit(task("t-bad", url))
    failed = (await stream.event("t-bad", "failed")).failed
    assert failed.code == code, failed
    assert not failed.retryable
    assert words.lower() in failed.message.lower(), failed.message
    assert failed.stage == "fetch"
    await stream.close()


async def test_unreadable_media_is_a_final_error(make_worker: MakeWorker, media_server) -> None:
    _app, client = await make_worker()
    stream = Stream(client)
    await client.submit(task("t-corrupt", f"{media_server.base_url}/corrupt.mp4"))
    failed = (await stream.event("t-corrupt", "failed")).failed
    assert failed.code == "UNREADABLE_MEDIA" and not failed.retryable and failed.stage == "probe"
    await stream.close()


@pytest.mark.parametrize("bad, words", [
    (task("", "http://127.0.0.1/x.mp4"), "task id"),
    (task("t/../x y", "http://127.0.0.1/x.mp4"), "task id"),
    (task("t-nosrc"), "no sources"),
])
async def test_invalid_tasks_are_refused(make_worker: MakeWorker, bad, words: str) -> None:
    _app, client = await make_worker()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await client.submit(bad)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and words in err.value.details()


async def test_low_disk_turns_the_worker_not_serving(make_worker: MakeWorker, media_server) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    _app, client = await make_worker(min_free_disk_bytes="1000000TB")
    status = await client.health()
    assert status.state == wpb.NOT_SERVING and "free disk" in status.state_reason
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await client.submit(task("t-disk", f"{media_server.base_url}/speech.mp4"))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "free disk" in err.value.details()
    check = await health_pb2_grpc.HealthStub(client.channel).Check(health_pb2.HealthCheckRequest(service=""))
    assert check.status == health_pb2.HealthCheckResponse.NOT_SERVING


async def test_no_nvidia_driver_means_nvenc_off_with_a_reason(make_worker: MakeWorker) -> None:
    _app, client = await make_worker()
    caps = (await client.health()).capabilities
    if caps.gpus:
        pytest.skip("this machine has an NVIDIA GPU")
    assert not caps.nvenc and "driver" in caps.nvenc_reason
    assert list(caps.encoders) == ["x264"] and caps.cpu_count >= 1
    assert (await client.health()).state == wpb.SERVING
