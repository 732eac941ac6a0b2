"""The gateway of a real coordinator with real workers: documented shapes, read-only, no secrets — and the dashboard
in a real headless Chromium, following a worker going offline and a task's progress live, without a reload."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import aiohttp
import pytest

from generated.aicut.v1 import common_pb2 as pb
from tests.coordinator.conftest import Cluster
from tests.gateway import promtext, shapes
from tests.gateway.conftest import ADMIN_PASSWORD, ARTIFACTS, FORUM_PASSWORD, SECRETS, Http, dashboard_url
from tests.support.httpserver import MediaServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]   # real cuts (speech recognition) on a busy machine

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def with_secrets(monkeypatch: pytest.MonkeyPatch, cluster: Cluster) -> None:
    """Forum credentials in the coordinator's environment (the cluster token is set by the harness), and a free
    port for the gateway."""
    monkeypatch.setenv("FORUM_USERNAME", "operator")
    monkeypatch.setenv("FORUM_PASSWORD", FORUM_PASSWORD)
    monkeypatch.setenv("AICUT_ADMIN_PASSWORD", ADMIN_PASSWORD)
    cluster.coordinator_options = {"http_port": 0}


async def test_every_endpoint_of_a_real_coordinator_has_its_shape_and_no_secret(
        cluster: Cluster, media_server: MediaServer, monkeypatch: pytest.MonkeyPatch) -> None:
    with_secrets(monkeypatch, cluster)
    a = cluster.add_worker("a")
    await cluster.start_coordinator()
    async with aiohttp.ClientSession() as session:
        http = Http(dashboard_url(cluster), session)
        follower = asyncio.create_task(http.events(
            240, until=lambda evs: sum('"to":"SUCCEEDED"' in e["data"] or '"to":"FAILED"' in e["data"]
                                      for e in evs) >= 2))
        await asyncio.sleep(0.5)   # the follower is listening
        ok = await cluster.submit(media_server.url("/speech.mp4"), "ok-1")   # real speech: the whole cut runs
        bad = await cluster.submit(f"{media_server.base_url}/status/404", "bad-1")
        assert (await cluster.wait_task(ok, timeout=240)).state == pb.SUCCEEDED
        assert (await cluster.wait_task(bad)).state == pb.FAILED
        cluster.grpcurl("aicut.v1.Coordinator/StartMonitoring", {})
        events = await asyncio.wait_for(follower, 240)

        machines = await http.json("/api/machines/status")
        shapes.check(machines, shapes.MACHINES_STATUS)
        (m,) = machines["machines"]
        assert m["address"] == a and m["online"] and not m["busy"] and m["slots_total"] == 1
        assert m["dispatched"] == 2 and m["succeeded"] == 1 and m["failed"] == 1
        assert m["heartbeat_age_s"] is not None and m["heartbeat_age_s"] < 5 and m["cpu_count"] > 0
        assert "x264" in m["encoders"]

        status = await http.json("/api/cluster/status")
        shapes.check(status, shapes.CLUSTER_STATUS)
        assert status["tasks"]["by_state"]["SUCCEEDED"] == 1 and status["tasks"]["by_state"]["FAILED"] == 1
        assert status["dispatch"]["success_rate"] == 0.5 and status["monitoring"]["enabled"] is True
        assert status["dispatch"]["per_machine"][0]["share"] == 1.0

        page = await http.json("/api/tasks")
        shapes.check(page, shapes.TASKS_PAGE)
        assert [t["id"] for t in page["tasks"]] == ["bad-1", "ok-1"] and page["total"] == 2
        failed = await http.json("/api/tasks?state=FAILED")
        assert [t["id"] for t in failed["tasks"]] == ["bad-1"] and failed["tasks"][0]["error"]["code"]

        done = await http.json("/api/tasks/ok-1")
        shapes.check(done, shapes.TASK_DETAIL)
        assert [s["name"] for s in done["stages"]][:3] == ["fetch", "probe", "transcribe"]
        assert {"render", "cover"} <= {s["name"] for s in done["stages"]}
        assert {o["kind"] for o in done["outputs"]} >= {"video", "subtitles", "cover", "edl", "report"}
        assert [s["step"] for s in done["timeline"]] == ["created", "queued", "dispatched", "started", "finished"]
        assert done["media"][0]["video"][0]["width"] == 160 and done["error"] is None and done["machine"]
        lost = await http.json("/api/tasks/bad-1")
        shapes.check(lost, shapes.TASK_DETAIL)
        assert lost["error"]["code"] and not lost["error"]["retryable"]
        assert lost["history"][0]["outcome"] == "FAILED" and lost["history"][0]["worker"] == a

        text = (await http.get("/metrics")).text
        families = promtext.parse(text)
        assert all(f.typed and f.help for f in families.values())
        assert ({"worker": a}, 1.0) in families["aicut_worker_up"].samples
        assert ({"worker": a}, 2.0) in families["aicut_worker_dispatched_total"].samples
        assert ({"state": "FAILED"}, 1.0) in families["aicut_tasks"].samples
        assert families["aicut_monitoring_enabled"].samples == [({}, 1.0)]
        assert json.loads((await http.get("/healthz")).text) == {"ok": True, "store": "ok"}

        # Live events: the fleet first, then every transition of both tasks, with their ids.
        assert events[0]["event"] == "machines"
        entries = [json.loads(e["data"]) for e in events if "id" in e]
        for e in entries:
            shapes.check(e, shapes.EVENT)
        assert {"QUEUED", "DISPATCHED", "RUNNING", "SUCCEEDED"} <= {e["to"] for e in entries if e["task_id"] == ok}
        assert "FAILED" in {e["to"] for e in entries if e["task_id"] == bad}

        for path in ("/", "/static/dashboard.js", "/static/dashboard.css", "/api/tasks/nope", "/nope"):
            await http.get(path)
        for path in ("/", "/api/machines/status", "/api/cluster/status", "/api/tasks", "/api/tasks/ok-1",
                     "/api/events", "/metrics", "/healthz", "/static/dashboard.js"):
            for method in ("POST", "PUT", "DELETE", "PATCH"):
                assert (await http.request(method, path)).status == 405, (method, path)
            head = await http.request("HEAD", path)
            assert head.status == 200 and head.text == "", path

        everything = "\n".join(http.seen)
        assert len(everything) > 10_000
        for secret in SECRETS:
            assert secret not in everything, "a secret reached a gateway answer"
        assert "operator" not in everything   # not a secret, but nothing shows the forum account either


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run installs it)")
    return found


def font_config(tmp: Path) -> dict[str, str]:
    """A fontconfig setup adding the CJK font that a project dependency ships, so Chinese labels are drawn."""
    try:
        import manimgx_fonts_cjk
    except ImportError:
        return {}
    conf = tmp / "fonts.conf"
    conf.write_text('<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n'
                    f"  <dir>{Path(manimgx_fonts_cjk.__file__).parent}</dir>\n"
                    '  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>\n'
                    f"  <cachedir>{tmp / 'fontcache'}</cachedir>\n</fontconfig>\n")
    return {"FONTCONFIG_FILE": str(conf)}


async def test_dashboard_in_chromium_follows_progress_and_a_worker_going_offline_without_reloading(
        cluster: Cluster, media_server: MediaServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    chromium = chromium_path()
    from playwright.async_api import async_playwright

    with_secrets(monkeypatch, cluster)
    a = cluster.add_worker("a", priority=1)
    b = cluster.add_worker("b", priority=2)
    await cluster.start_coordinator()
    url = dashboard_url(cluster) + "/"
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS,
                                          env={**os.environ, **font_config(tmp_path)})
        try:
            page = await browser.new_page(viewport={"width": 1440, "height": 1100})
            navigations: list[str] = []
            problems: list[str] = []
            page.on("framenavigated", lambda f: navigations.append(f.url) if f == page.main_frame else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            outside: list[str] = []
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(url[:-1]) else None)

            await page.goto(url)
            for address in (a, b):
                await page.wait_for_selector(f'tr[data-address="{address}"][data-online="true"]', timeout=20_000)
            await page.wait_for_selector('#conn[data-state="live"]', timeout=20_000)
            await page.evaluate("window.__sameDocument = 'yes'")

            task_id = await cluster.submit(f"{media_server.base_url}/slow/speech.mp4?bps=4000", "slow-1")
            bar = f'#running-list .bar[data-task-id="{task_id}"]'
            moved = ("([sel, p]) => { const b = document.querySelector(sel); "
                     "return !!b && Number(b.dataset.percent) > p; }")
            await page.wait_for_function(moved, arg=[bar, 0], timeout=30_000)
            first = float(await page.get_attribute(bar, "data-percent") or 0)
            await page.wait_for_function(moved, arg=[bar, first + 5], timeout=30_000)
            second = float(await page.get_attribute(bar, "data-percent") or 0)
            assert second > first + 5
            row = f'#running-list .run[data-task-id="{task_id}"]'
            assert a in await page.inner_text(row)

            cluster.workers["b"].kill()
            await page.wait_for_selector(f'tr[data-address="{b}"][data-online="false"]', timeout=20_000)
            assert "离线 Offline" in await page.inner_text(f'tr[data-address="{b}"]')
            assert "在线 Online" in await page.inner_text(f'tr[data-address="{a}"]')
            await page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

            # The task ends: the running list empties and the task table shows it succeeded, still no reload.
            await cluster.wait_task(task_id, timeout=240)
            await page.wait_for_selector(f'#task-rows tr[data-task-id="{task_id}"] .badge.SUCCEEDED', timeout=20_000)
            await page.click(f'#task-rows tr[data-task-id="{task_id}"] button.link')
            await page.wait_for_selector("#detail[open] h3", timeout=10_000)
            detail = await page.inner_text("#detail")
            assert "各阶段耗时 Stage times" in detail and "fetch" in detail
            await page.screenshot(path=str(ARTIFACTS / "dashboard-detail.png"), full_page=False)

            assert await page.evaluate("window.__sameDocument") == "yes"
            assert navigations == [url], navigations
            assert problems == [], problems
            assert outside == [], outside
            html = await page.content()
            for secret in SECRETS:
                assert secret not in html
        finally:
            await browser.close()
