"""The test forum as a real process (``python -m tests.support.discuz``), for the acceptance tests."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.coordinator.conftest import cluster, valkey  # noqa: F401 — the real cluster, on its own Valkey
from tests.support.discuz import DiscuzServer, ForumConfig
from tests.support.procs import ROOT

BOT = {"FORUM_USERNAME": "aicut", "FORUM_PASSWORD": "botpass123"}   # an account of the test forum's default config


class ForumProcess:
    """A Discuz-compatible forum in its own process; ``hook`` drives its ``/_test/`` endpoints."""

    def __init__(self, directory: Path, **config: Any) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        cfg = directory / "forum.json"
        cfg.write_text(json.dumps(config, ensure_ascii=False))
        self.log_path = directory / "forum.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.support.discuz", "--port", "0", "--config",
                                      str(cfg)], cwd=ROOT, stdout=subprocess.PIPE, stderr=self.log, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("listening on "), f"forum did not start: {line!r} {self.log_path.read_text()}"
        self.url = line.split()[-1]

    def hook(self, name: str, body: dict[str, Any] | None = None) -> Any:
        if body is None:
            reply = requests.get(f"{self.url}_test/{name}", timeout=10)
        else:
            reply = requests.post(f"{self.url}_test/{name}", json=body, timeout=10)
        reply.raise_for_status()
        return reply.json()

    def post_thread(self, subject: str, message: str, typeid: int = 1, username: str = "alice") -> int:
        return int(self.hook("thread", {"username": username, "subject": subject, "message": message, "fid": 2,
                                        "typeid": typeid})["tid"])

    def thread(self, tid: int) -> dict[str, Any]:
        return next(t for t in self.hook("state")["threads"] if int(t["tid"]) == tid)

    def replies_by(self, tid: int, username: str = BOT["FORUM_USERNAME"]) -> list[dict[str, Any]]:
        return [p for p in self.thread(tid)["posts"] if p["author"] == username and not p.get("first")]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.log.close()


@pytest.fixture
def make_server() -> Iterator[Any]:
    """In-process test forums (a thread each, no flood control unless asked), closed after the test."""
    servers: list[DiscuzServer] = []

    def make(**config: Any) -> DiscuzServer:
        config.setdefault("floodctrl", 0)
        server = DiscuzServer(ForumConfig(**config))
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def forum_factory(tmp_path: Path) -> Iterator[Any]:
    made: list[ForumProcess] = []

    def make(**config: Any) -> ForumProcess:
        forum = ForumProcess(tmp_path / f"forum{len(made)}", **config)
        made.append(forum)
        return forum

    yield make
    for forum in made:
        forum.close()


def wait_for(check: Any, timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)
