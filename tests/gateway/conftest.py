"""Fixtures for the gateway: an in-process gateway on a real Valkey, and real clusters (reused from the coordinator's
tests) whose coordinator serves the gateway on a free port."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from aicut.coordinator.dispatcher import Dispatcher
from aicut.gateway.app import Gateway
from aicut.store.embedded import EmbeddedValkey
from aicut.store.tasks import Store
from tests.coordinator.conftest import Cluster, cluster, valkey  # noqa: F401 — the fixtures are reused here
from tests.support.procs import TOKEN, free_port

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
FORUM_PASSWORD = "forum-Pw!7qZ-猫-9183"
ADMIN_PASSWORD = "admin-Pw-4410-xyz"
SECRETS = (TOKEN, FORUM_PASSWORD, ADMIN_PASSWORD)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    text: str


@dataclass
class Http:
    """A tiny client that keeps every answer it got, so a test can search them all for secrets."""

    base: str
    session: aiohttp.ClientSession
    seen: list[str] = field(default_factory=list)

    async def request(self, method: str, path: str, headers: dict[str, str] | None = None) -> Answer:
        async with self.session.request(method, self.base + path, headers=headers,
                                        timeout=aiohttp.ClientTimeout(total=30)) as r:
            text = await r.text()
            self.seen.append(text)
            self.seen.extend(f"{k}: {v}" for k, v in r.headers.items())
            return Answer(r.status, dict(r.headers), text)

    async def get(self, path: str) -> Answer:
        return await self.request("GET", path)

    async def json(self, path: str) -> Any:
        answer = await self.get(path)
        assert answer.status == 200, (path, answer.status, answer.text)
        assert answer.headers["Content-Type"].startswith("application/json")
        import json

        return json.loads(answer.text)

    async def events(self, seconds: float, *, headers: dict[str, str] | None = None,
                     until: Any = None) -> list[dict[str, str]]:
        """Server-sent events read from /api/events for ``seconds`` (or until ``until(events)`` is true)."""
        out: list[dict[str, str]] = []
        buf = ""
        deadline = time.monotonic() + seconds
        async with self.session.get(self.base + "/api/events", headers=headers) as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
            while time.monotonic() < deadline and not (until and until(out)):
                try:
                    chunk = await asyncio.wait_for(r.content.readany(), max(0.01, deadline - time.monotonic()))
                except asyncio.TimeoutError:
                    break
                if not chunk:
                    break
                text = chunk.decode()
                self.seen.append(text)
                buf += text
                while "\n\n" in buf:
                    block, buf = buf.split("\n\n", 1)
                    event: dict[str, str] = {}
                    for line in block.splitlines():
                        if line.startswith(":"):
                            continue
                        name, _, value = line.partition(": ")
                        event[name] = event.get(name, "") + value if name == "data" else value
                    if "data" in event:
                        out.append(event)
        return out


@dataclass
class Local:
    gateway: Gateway
    store: Store
    http: Http
    valkey: EmbeddedValkey


@pytest.fixture
async def fast_valkey(tmp_path: Path) -> AsyncIterator[EmbeddedValkey]:
    """A Valkey that fsyncs once a second: bulk fixtures (10,000 tasks) load in a moment."""
    server = EmbeddedValkey(tmp_path / "valkey", port=free_port(), appendfsync="everysec")
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def local(fast_valkey: EmbeddedValkey) -> AsyncIterator[Local]:
    """The gateway in this process, over a real Store and a dispatcher with no workers."""
    store = await Store.connect(fast_valkey.url, retry_window_s=3)
    dispatcher = Dispatcher(store, TOKEN)
    gateway = Gateway(store, dispatcher, secrets=SECRETS, version="test", keepalive_s=1.0, store_timeout_s=1.0)
    port = await gateway.start("127.0.0.1", 0)
    assert port > 0
    async with aiohttp.ClientSession() as session:
        yield Local(gateway, store, Http(gateway.url, session), fast_valkey)
    await gateway.close()
    await store.close()


def dashboard_url(c: Cluster) -> str:
    """The gateway's URL, from the coordinator's start-up line."""
    assert c.coordinator is not None
    m = re.search(r"dashboard (http://\S+):(\d+)", c.coordinator.output())
    assert m, c.coordinator.output()
    return f"{m.group(1)}:{m.group(2)}"


@pytest.fixture
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
