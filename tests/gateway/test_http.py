"""The gateway in this process over a real Valkey: methods, HEAD, pagination at 10,000 tasks, 503s, SSE resume."""

from __future__ import annotations

import json
import re

import pytest

from aicut.models import TaskRecord, TaskState
from aicut.store.tasks import Transition
from tests.gateway import shapes
from tests.gateway.conftest import SECRETS, Local

PATHS = ("/", "/api/machines/status", "/api/cluster/status", "/api/tasks", "/api/tasks?state=FAILED",
         "/api/tasks/t-1", "/api/events", "/metrics", "/healthz", "/static/dashboard.js", "/static/dashboard.css",
         "/no/such/path")
WRITES = ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND")
BASE_MS = 1_700_000_000_000


async def seed(local: Local, n: int, failed_every: int = 10) -> None:
    """``n`` finished tasks: every ``failed_every``-th FAILED with a reason, the rest SUCCEEDED."""
    recs = [TaskRecord(id=f"t-{i}", created_ms=BASE_MS + i,
                       task_json=json.dumps({"id": f"t-{i}", "spec": {"title": f"口播 {i}", "sources": [
                           {"url": f"https://cos.example.com/{i}.mp4", "name": f"{i}.mp4"}]}}))
            for i in range(n)]
    assert await local.store.create_tasks(recs) == n
    changes = [Transition(r.id, 1, (TaskState.QUEUED,), TaskState.FAILED if i % failed_every == 0 else
                          TaskState.SUCCEEDED,
                          fields={"worker": "127.0.0.1:8005", "finished_ms": BASE_MS + n + i,
                                  **({"error_code": "NOT_MEDIA", "error_message": f"task {i}: not a video"}
                                     if i % failed_every == 0 else {})})
               for i, r in enumerate(recs)]
    assert all(await local.store.transition_many(changes))


async def test_every_other_method_is_405_on_every_path(local: Local) -> None:
    await seed(local, 2)
    for path in PATHS:
        for method in WRITES:
            answer = await local.http.request(method, path)
            assert answer.status == 405, (method, path, answer.status)
            assert answer.headers["Allow"] == "GET, HEAD"
            assert "read-only" in json.loads(answer.text)["error"]


async def test_head_answers_every_endpoint_without_a_body(local: Local) -> None:
    await seed(local, 2)
    for path in PATHS[:-1]:
        answer = await local.http.request("HEAD", path)
        assert answer.status == 200, (path, answer.status)
        assert answer.text == ""
    assert (await local.http.request("HEAD", "/api/events")).headers["Content-Type"].startswith("text/event-stream")
    assert (await local.http.request("HEAD", "/no/such/path")).status == 404


@pytest.mark.timeout(300)
async def test_ten_thousand_finished_tasks_are_paginated_and_every_answer_stays_small(local: Local) -> None:
    await seed(local, 10_000)
    http = local.http

    page = await http.json("/api/tasks")
    shapes.check(page, shapes.TASKS_PAGE)
    assert page["total"] == 10_000 and page["limit"] == 50 and len(page["tasks"]) == 50
    assert [t["id"] for t in page["tasks"][:3]] == ["t-9999", "t-9998", "t-9997"]   # newest first

    huge = await http.get("/api/tasks?limit=100000")
    capped = json.loads(huge.text)
    assert capped["limit"] == 200 and len(capped["tasks"]) == 200 and capped["total"] == 10_000
    assert len(huge.text) < 200 * 1_000, len(huge.text)

    tail = await http.json("/api/tasks?offset=9990&limit=25")
    assert [t["id"] for t in tail["tasks"]] == [f"t-{i}" for i in range(9, -1, -1)]
    assert (await http.json("/api/tasks?offset=10000"))["tasks"] == []

    failed = await http.json("/api/tasks?state=failed&limit=5&offset=5")
    assert failed["state"] == "FAILED" and failed["total"] == 1_000
    assert [t["id"] for t in failed["tasks"]] == ["t-9940", "t-9930", "t-9920", "t-9910", "t-9900"]
    assert failed["tasks"][0]["error"] == {"code": "NOT_MEDIA", "message": "task 9940: not a video",
                                           "retryable": False}
    ids = set()
    for offset in range(0, 400, 200):   # consecutive pages neither overlap nor skip
        ids |= {t["id"] for t in (await http.json(f"/api/tasks?offset={offset}&limit=200"))["tasks"]}
    assert len(ids) == 400

    cluster = await http.get("/api/cluster/status")
    status = json.loads(cluster.text)
    shapes.check(status, shapes.CLUSTER_STATUS)
    assert status["tasks"]["by_state"]["SUCCEEDED"] == 9_000 and status["tasks"]["by_state"]["FAILED"] == 1_000
    assert status["dispatch"]["success_rate"] == 0.9 and status["dispatch"]["failure_rate"] == 0.1
    assert len(status["recent_events"]) == 20
    assert len(cluster.text) < 20_000, len(cluster.text)

    index = await http.get("/")
    assert index.status == 200 and len(index.text) < 20_000
    metrics = await http.get("/metrics")
    assert 'aicut_tasks{state="SUCCEEDED"} 9000' in metrics.text and len(metrics.text) < 20_000
    detail = await http.json("/api/tasks/t-5000")
    shapes.check(detail, shapes.TASK_DETAIL)


async def test_bad_queries_answer_400_and_unknown_tasks_404(local: Local) -> None:
    for query in ("state=NOPE", "offset=-1", "limit=abc", "offset=1.5"):
        answer = await local.http.get(f"/api/tasks?{query}")
        assert answer.status == 400, query
        shapes.check(json.loads(answer.text), shapes.ERROR_ANSWER)
    missing = await local.http.get("/api/tasks/nope")
    assert missing.status == 404 and json.loads(missing.text) == {"error": "no task 'nope'"}


async def test_healthz_is_503_and_data_endpoints_503_while_redis_is_down(local: Local) -> None:
    assert json.loads((await local.http.get("/healthz")).text) == {"ok": True, "store": "ok"}
    await local.valkey.close()
    health = await local.http.get("/healthz")
    assert health.status == 503 and json.loads(health.text) == {"ok": False, "store": "unreachable"}
    for path in ("/api/tasks", "/api/cluster/status", "/metrics"):
        answer = await local.http.get(path)
        assert answer.status == 503, path
        assert "Redis" in json.loads(answer.text)["error"]
    assert (await local.http.get("/api/machines/status")).status == 200   # memory only: still answers
    assert (await local.http.get("/")).status == 200


async def test_events_resume_after_last_event_id_without_gaps_or_repeats(local: Local) -> None:
    store = local.store
    first = await store.append_event("worker", worker="a:1", text="online")
    for i in range(3):
        await store.append_event("worker", worker="a:1", text=f"note {i}")
    events = await local.http.events(3, headers={"Last-Event-ID": first},
                                     until=lambda evs: sum("id" in e for e in evs) >= 3)
    assert events[0]["event"] == "machines"
    shapes.check(json.loads(events[0]["data"]), shapes.MACHINES_STATUS)
    replayed = [json.loads(e["data"]) for e in events if "id" in e]
    assert [e["text"] for e in replayed] == ["note 0", "note 1", "note 2"]
    for e in replayed:
        shapes.check(e, shapes.EVENT)

    # A live follower sees new entries as they arrive, each once.
    import asyncio

    async def later() -> None:
        await asyncio.sleep(0.5)
        await store.create_task(TaskRecord(id="live-1"))

    pusher = asyncio.create_task(later())
    live = await local.http.events(8, until=lambda evs: any("live-1" in e["data"] for e in evs))
    await pusher
    created = [json.loads(e["data"]) for e in live if "live-1" in e["data"]]
    assert len(created) == 1 and created[0]["task_id"] == "live-1" and created[0]["to"] == "QUEUED"
    assert local.gateway.hub.subscribers == set() or len(local.gateway.hub.subscribers) <= 1


async def test_page_and_assets_are_all_local_and_locked_down(local: Local) -> None:
    index = await local.http.get("/")
    assert index.headers["Content-Type"].startswith("text/html")
    csp = index.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    referenced = re.findall(r'(?:src|href)="([^"]+)"', index.text)
    assert referenced and all(ref.startswith("/static/") for ref in referenced), referenced
    for asset in referenced:
        body = (await local.http.get(asset)).text
        assert not re.search(r'(?<!xmlns=")https?://|//cdn|@import|fonts\.googleapis', body), asset
    assert "innerHTML" not in (await local.http.get("/static/dashboard.js")).text
    for text in local.http.seen:
        for secret in SECRETS:
            assert secret not in text


async def test_close_ends_open_event_streams_at_once(local: Local) -> None:
    import asyncio
    import time

    follower = asyncio.create_task(local.http.events(30))
    deadline = time.monotonic() + 10
    while not local.gateway.hub.subscribers and not follower.done() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert local.gateway.hub.subscribers, "the event stream never subscribed"
    started = time.monotonic()
    await local.gateway.close()
    events = await asyncio.wait_for(follower, 10)
    assert time.monotonic() - started < 3 and events[0]["event"] == "machines"


async def test_a_taken_port_is_logged_and_the_gateway_stays_off(local: Local, caplog) -> None:
    from aicut.gateway.app import Gateway

    second = Gateway(local.store, local.gateway.dispatcher)
    assert await second.start("127.0.0.1", local.gateway.port) == 0
    assert "cannot listen" in caplog.text and "--http-port" in caplog.text
    await second.close()
