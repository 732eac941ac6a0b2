"""Long-lived task processes, at most one per slot: each loads the speech model once and runs task after task.

A :class:`ServeProcess` is one ``python -m aicut.worker.taskproc --serve`` child (see that module for the lines it
reads and writes). :class:`TaskPool` hands them to tasks (``aicut.worker.runner.TaskProcess``) and takes them back:

- with ``prewarm`` it starts one per slot at once and tells each to load the speech model, so the first task does
  not wait for it; without, a process starts with the first task that needs one and stays for the next;
- a process that ended a task cleanly goes back to the idle list; one that crashed or was cancelled is retired and,
  with ``prewarm``, replaced at once; one that ran ``max_tasks`` tasks is replaced too, which bounds any leak;
- an idle process that dies is replaced, after a growing pause when they keep dying (a broken install, a model that
  crashes native code on load); from the third death in a row the pool reports trouble (``on_trouble``) until a
  replacement loads its model;
- ``close`` ends them all: end of input for idle ones, SIGKILL for any still there after the grace.

Every child is in its own session (Ctrl+C reaches the worker only) and dies with the worker (``--parent``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

logger = logging.getLogger(__name__)

ARGV: tuple[str, ...] = (sys.executable, "-m", "aicut.worker.taskproc", "--serve")
MAX_TASKS = 50            # tasks one process runs before it is replaced
TROUBLE_AFTER = 3         # idle deaths in a row before the pool reports trouble
BACKOFF_FIRST_S = 0.5     # the pause before the second replacement in a row; doubles each time after
BACKOFF_MAX_S = 60.0
CLOSE_GRACE_S = 5.0       # an idle process gets this long to leave after end of input, then SIGKILL
_LINE_LIMIT = 16 * 1024 * 1024


def describe_exit(returncode: int) -> str:
    """A person's reading of a process exit status."""
    if returncode < 0:
        sig = -returncode
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        hint = {signal.SIGKILL: " (killed: out of memory, or by an operator)",
                signal.SIGSEGV: " (a crash in native code)", signal.SIGABRT: " (aborted by native code)"}
        return f"was killed by {name}{hint.get(sig, '')}"
    return f"exited with status {returncode} without a result"


class ServeProcess:
    """One long-lived task process: a line writer, a line reader and its exit status."""

    def __init__(self, argv: Sequence[str], notify: Callable[[ServeProcess], None]) -> None:
        self.argv = tuple(argv)
        self.proc: asyncio.subprocess.Process | None = None
        self.events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()  # a job's lines; None at exit
        self.tasks = 0                  # tasks handed to it so far
        self.ready = False              # it has imported the pipeline
        self.warm: bool | None = None   # None until a model load ends, then whether it worked
        self.warm_message = ""
        self.returncode: int | None = None
        self._notify = notify
        self._exited = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc else 0

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.returncode is None and self.proc.returncode is None

    async def start(self, first: dict[str, Any] | None = None) -> None:
        """Spawn it (raises OSError when it cannot be); ``first`` is its first line, e.g. the warm order."""
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, "--parent", str(os.getpid()),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=_LINE_LIMIT,
            # Own session: Ctrl+C in the worker's terminal reaches the worker, which decides what to do.
            start_new_session=True,
        )
        self._reader = asyncio.create_task(self._read(), name=f"taskproc-{self.proc.pid}")
        if first is not None:
            await self.send(first)

    async def send(self, msg: dict[str, Any]) -> bool:
        """Write one line; False when the process is gone (its reader reports how it ended)."""
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(msg).encode() + b"\n")
            await self.proc.stdin.drain()
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    async def next_event(self) -> dict[str, Any] | None:
        """The next line of the running job; None once the process has ended."""
        return await self.events.get()

    async def wait_exit(self) -> int:
        await self._exited.wait()
        assert self.returncode is not None
        return self.returncode

    async def stop(self, grace_s: float) -> None:
        """Stop it now, mid-task: SIGTERM, then SIGKILL after ``grace_s``."""
        if not self.alive or self.proc is None:
            return
        try:
            self.proc.terminate()
            await asyncio.wait_for(asyncio.shield(self.proc.wait()), grace_s)
        except ProcessLookupError:
            return
        except asyncio.TimeoutError:
            logger.warning("task process %s ignored SIGTERM for %.1fs; killing it", self.pid, grace_s)
            self._kill()

    def close(self, grace_s: float = CLOSE_GRACE_S) -> asyncio.Task[None]:
        """End its input so it leaves, SIGKILL after ``grace_s``; the task ends when it is reaped. Idempotent."""
        if self._closing is None:
            self._closing = asyncio.create_task(self._close(grace_s), name=f"taskproc-close-{self.pid}")
        return self._closing

    async def _close(self, grace_s: float) -> None:
        if self.proc is None:
            return
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()
        if not self.ready:  # still importing: nothing to finish, no reason to wait for it
            self._kill()
        try:
            await asyncio.wait_for(asyncio.shield(self._exited.wait()), grace_s)
        except asyncio.TimeoutError:
            logger.warning("task process %s did not leave within %.1fs of end of input; killing it", self.pid,
                           grace_s)
            self._kill()
            await self._exited.wait()

    def _kill(self) -> None:
        try:
            if self.proc is not None:
                self.proc.kill()
        except ProcessLookupError:
            pass

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        try:
            async for raw in self.proc.stdout:
                self._line(raw)
        except (ValueError, asyncio.LimitOverrunError) as exc:  # a line past the limit: the protocol is broken
            logger.error("task process %s wrote a line too long to read (%s); stopping it", self.pid, exc)
            self._kill()
        self.returncode = await self.proc.wait()
        self.events.put_nowait(None)
        self._exited.set()
        self._notify(self)

    def _line(self, raw: bytes) -> None:
        try:
            msg = json.loads(raw)
        except ValueError:
            logger.warning("task process %s printed a line that is not JSON: %.200r", self.pid, raw)
            return
        kind = msg.get("event")
        if kind == "ready":
            self.ready = True
            self._notify(self)
        elif kind == "warm":
            self.warm, self.warm_message = bool(msg.get("ok")), str(msg.get("message", ""))
            self._notify(self)
        else:
            self.events.put_nowait(msg)


class TaskPool:
    """Up to ``size`` task processes; ``acquire`` one for a task, ``release`` it after."""

    def __init__(self, size: int, warm: dict[str, Any] | None = None, *, prewarm: bool = True,
                 max_tasks: int = MAX_TASKS, argv: Sequence[str] | None = None,
                 on_trouble: Callable[[str], None] | None = None) -> None:
        self.size = size
        self.warm = warm
        self.prewarm = prewarm
        self.max_tasks = max(1, max_tasks)
        self.argv = tuple(argv or ARGV)   # the command, less ``--parent PID``
        self.on_trouble = on_trouble
        self.idle: list[ServeProcess] = []
        self.busy: set[ServeProcess] = set()
        self.trouble = ""               # why task processes cannot be kept alive; "" when all is well
        self.deaths = 0                 # idle processes that died in a row
        self.spawned = 0
        self.closed = False
        self._fillers: set[asyncio.Task[None]] = set()
        self._retired: set[ServeProcess] = set()

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        if self.prewarm:
            self._fill()

    async def close(self) -> None:
        """End every process and wait until all are reaped; a task still holding one loses it."""
        self.closed = True
        for filler in list(self._fillers):
            filler.cancel()
        await asyncio.gather(*self._fillers, return_exceptions=True)
        for p in [*self.idle, *self.busy]:
            self._retire(p)
        self.idle.clear()
        await asyncio.gather(*(p.close() for p in list(self._retired)), return_exceptions=True)
        self._retired.clear()

    # ----------------------------------------------------------------- tasks
    async def acquire(self) -> ServeProcess:
        """A process for one task: an idle one (the latest used first) or a new one. Raises OSError."""
        while self.idle:
            p = self.idle.pop()
            if p.alive:
                return self._take(p)
        return self._take(await self._spawn())

    def release(self, p: ServeProcess, reuse: bool) -> None:
        """Take ``p`` back after a task; ``reuse`` when the task ended cleanly (no crash, no cancel)."""
        self.busy.discard(p)
        if reuse and p.alive and not self.closed and p.tasks < self.max_tasks:
            self._healthy()
            self.idle.append(p)
            return
        if reuse and p.alive and p.tasks >= self.max_tasks:
            logger.info("task process %s ran %d tasks; replacing it", p.pid, p.tasks)
        self._retire(p)
        if self.prewarm and not self.closed:
            self._fill()

    @property
    def processes(self) -> list[ServeProcess]:
        """Every process kept now, idle and busy."""
        return [*self.idle, *self.busy]

    # ----------------------------------------------------------------- internals
    def _take(self, p: ServeProcess) -> ServeProcess:
        p.tasks += 1
        self.busy.add(p)
        return p

    async def _spawn(self) -> ServeProcess:
        p = ServeProcess(self.argv, self._notify)
        try:
            await p.start(self.warm)
        except asyncio.CancelledError:  # the pool is closing: a process half started goes too
            self._retire(p)
            raise
        self.spawned += 1
        return p

    def _retire(self, p: ServeProcess) -> None:
        if p in self._retired:
            return
        self._retired.add(p)
        p.close().add_done_callback(lambda _t: self._retired.discard(p))

    def _fill(self, delay: float = 0.0) -> None:
        """Start processes in the background until there is one per slot."""
        for _ in range(self.size - len(self.idle) - len(self.busy) - len(self._fillers)):
            filler = asyncio.create_task(self._fill_one(delay), name="taskproc-spawn")
            self._fillers.add(filler)
            filler.add_done_callback(self._fillers.discard)

    async def _fill_one(self, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        if self.closed or len(self.idle) + len(self.busy) >= self.size:
            return
        try:
            p = await self._spawn()
        except OSError as exc:
            self._fillers.discard(asyncio.current_task())  # type: ignore[arg-type]
            self._died(f"could not be started: {exc}")
            return
        self._fillers.discard(asyncio.current_task())  # type: ignore[arg-type]
        if self.closed or len(self.idle) + len(self.busy) >= self.size:  # a task spawned its own meanwhile
            self._retire(p)
        elif not p.alive:
            self._died(describe_exit(p.returncode if p.returncode is not None else -1))
        else:
            self.idle.append(p)

    def _notify(self, p: ServeProcess) -> None:
        """A process said it is ready, finished loading the model, or ended."""
        if p.returncode is not None:
            if p in self.idle:
                self.idle.remove(p)
                logger.warning("idle task process %s %s", p.pid, describe_exit(p.returncode))
                self._died(describe_exit(p.returncode))
            return
        if p.warm is False:
            logger.warning("task process %s could not load the speech model ahead of tasks: %s", p.pid,
                           p.warm_message)
        elif p.warm or (p.ready and self.warm is None):
            self._healthy()

    def _died(self, how: str) -> None:
        """An idle process ended (or could not start): replace it, pausing longer each time in a row."""
        if self.closed:
            return
        self.deaths += 1
        delay = 0.0 if self.deaths <= 1 else min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (self.deaths - 2))
        if self.deaths >= TROUBLE_AFTER:
            self._set_trouble(f"task processes keep dying before any task: {self.deaths} in a row, the last "
                              f"{how}; see the worker's log (next try in {delay:.0f}s)")
        if self.prewarm:
            logger.info("starting another task process%s", f" in {delay:.1f}s" if delay else "")
            self._fill(delay)

    def _healthy(self) -> None:
        self.deaths = 0
        if self.trouble:
            logger.info("task processes start again")
            self._set_trouble("")

    def _set_trouble(self, reason: str) -> None:
        if reason:
            logger.error("%s", reason)
        self.trouble = reason
        if self.on_trouble is not None:
            self.on_trouble(reason)
