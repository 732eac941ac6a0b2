"""aicut processes for tests: a worker or a coordinator started with ``python -m aicut``, ready when it says so."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-token-9f8e7d"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def yaml_lines(section: str, values: dict[str, Any]) -> list[str]:
    return [f"{section}:"] + [f"  {k}: {v}" for k, v in values.items()]


def write_machines(directory: Path, workers: list[str] | None = None, coordinator: dict[str, Any] | None = None,
                   fetch: dict[str, Any] | None = None, sections: dict[str, dict[str, Any]] | None = None,
                   **worker: Any) -> Path:
    """A machines.yaml for tests: workers fetch from the local test server (127.0.0.1 only); ``sections`` adds more
    (``forum:``, ``publish:`` …), values written as YAML flow (lists as ``[2]``)."""
    # No pre-warmed task processes: most test workers never run a task, and a model loaded per worker costs the
    # 2-core CI box about a CPU-second each (tests/worker/test_pool.py covers pre-warming).
    w = {"host": "127.0.0.1", "port": 0, "heartbeat_interval_s": 0.2, "drain_timeout_s": 30, "prewarm": "false",
         "min_free_disk_bytes": 0, "cancel_grace_s": 2, "work_dir": str(directory / "work"), **worker}
    c = {"host": "127.0.0.1", "port": 0, "http_port": 0, "data_dir": str(directory / "coord"), "grace_s": 2,
         "retry_backoff_s": 0.2, "dead_after_s": 2, "watch_config_s": 0.3, **(coordinator or {})}
    f = {"allow_hosts": "['127.0.0.1']", "max_bytes": "50MB", "retries": 0, "connect_timeout_s": 5,
         "read_timeout_s": 10, **(fetch or {})}
    lines = ["workers:"] + [f"  - {entry!r}" for entry in workers or []]
    if not workers:
        lines[0] = "workers: []"
    lines += yaml_lines("worker", w) + yaml_lines("coordinator", c) + yaml_lines("fetch", f)
    # English fixtures and the small English model keep tasks that run the whole cut quick.
    lines += yaml_lines("transcribe", {"model": "tiny.en", "language": "en", "cache_dir": str(directory / "models")})
    for name, values in (sections or {}).items():
        lines += yaml_lines(name, {k: json.dumps(v, ensure_ascii=False) for k, v in values.items()})
    path = directory / "machines.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


class AicutProcess:
    """``python -m aicut <command> …`` with its output in a log file."""

    READY = {"worker": r"worker ready .* (\S+):(\d+) aicut", "coordinator": r"coordinator ready .* (\S+):(\d+) aicut"}

    def __init__(self, directory: Path, command: str, *args: str, token: str = TOKEN,
                 env: dict[str, str] | None = None, name: str = "") -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.command = command
        self.log_path = directory / f"{name or command}.log"
        self.log = open(self.log_path, "a+")
        self._seen = self.log.tell()  # a restarted process appends: only what it writes counts
        full_env = {**os.environ, "AICUT_CLUSTER_TOKEN": token, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen([sys.executable, "-m", "aicut", command, *args], cwd=ROOT, env=full_env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.port = 0

    def wait_ready(self, timeout: float = 60.0) -> str:
        """Block until the process says it is ready; returns 127.0.0.1:PORT."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = self.log_path.read_bytes()[self._seen:]  # byte offsets: the log has CJK and emoji
            if m := re.search(self.READY[self.command].encode(), data):
                self._seen += m.end()
                self.port = int(m.group(2).decode())
                return f"127.0.0.1:{self.port}"
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.command} exited with {self.proc.returncode}:\n{self.output()}")
            time.sleep(0.05)
        raise AssertionError(f"{self.command} not ready after {timeout}s:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text()

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()


class WorkerProcess(AicutProcess):
    """A worker on a test machines.yaml; ``port`` may be fixed so a coordinator can list it beforehand."""

    def __init__(self, tmp: Path, *args: str, token: str = TOKEN, port: int = 0, fetch: dict[str, Any] | None = None,
                 name: str = "worker", env: dict[str, str] | None = None,
                 sections: dict[str, dict[str, Any]] | None = None, **worker: Any) -> None:
        machines = write_machines(tmp, fetch=fetch, port=port, sections=sections, **worker)
        super().__init__(tmp, "worker", "--machines", str(machines), *args, token=token, name=name, env=env)
