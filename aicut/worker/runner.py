"""One task attempt on a task process of the worker's pool (``aicut.worker.pool``): job out, progress and outcome in.

A crash in native code (PyAV, NVENC, CTranslate2), an out-of-memory kill or a kill -9 ends that process only; the
worker sees the exit status, reports the task as failed and retryable, and the pool starts a fresh process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format

from aicut.worker.pool import ServeProcess, TaskPool, describe_exit
from generated.aicut.v1 import common_pb2 as pb

logger = logging.getLogger(__name__)

ProgressFn = Callable[[str, float, str], None]

__all__ = ["Outcome", "ProgressFn", "TaskProcess", "describe_exit"]


@dataclass(slots=True)
class Outcome:
    """How a task attempt ended."""

    kind: str                          # "succeeded", "failed" or "cancelled"
    result: pb.TaskResult | None = None
    code: str = ""
    message: str = ""
    retryable: bool = False
    stage: str = ""


class TaskProcess:
    """Runs one task attempt on a pooled process and turns what it prints into progress and an :class:`Outcome`."""

    def __init__(self, job: dict[str, Any], on_progress: ProgressFn, pool: TaskPool) -> None:
        self.job = job
        self.on_progress = on_progress
        self.pool = pool
        self.proc: ServeProcess | None = None
        self.cancel_reason = ""
        self.stage = ""
        self._released = False

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc else 0

    async def start(self) -> None:
        """Take a process from the pool and hand it the job (raises OSError when none can be started)."""
        self.proc = await self.pool.acquire()
        await self.proc.send({"op": "run", **self.job})  # False when it died: wait() reports how

    async def wait(self) -> Outcome:
        """Follow the task to its last line, or the process to its end."""
        assert self.proc is not None
        final: Outcome | None = None
        while final is None and (msg := await self.proc.next_event()) is not None:
            final = self._line(msg)
        if self.cancel_reason:
            self._release(reuse=False)
            return Outcome("cancelled", message=self.cancel_reason, stage=self.stage)
        if final is not None:
            self._release(reuse=True)
            return final
        returncode = await self.proc.wait_exit()
        self._release(reuse=False)
        return Outcome("failed", code="TASK_CRASHED", retryable=True, stage=self.stage,
                       message=f"the task's process {describe_exit(returncode)} during {self.stage or 'start-up'}; "
                               "the worker is fine and another attempt may succeed")

    async def cancel(self, reason: str, grace_s: float) -> None:
        """Stop the task: its process gets SIGTERM, then SIGKILL after ``grace_s``; the pool replaces it."""
        self.cancel_reason = reason or "cancelled"
        if self.proc is None or self._released:
            return  # not started yet (the launcher sees cancel_reason and stops it), or over already
        await self.proc.stop(grace_s)

    def _release(self, reuse: bool) -> None:
        assert self.proc is not None
        self._released = True
        self.pool.release(self.proc, reuse)

    def _line(self, msg: dict[str, Any]) -> Outcome | None:
        kind = msg.get("event")
        if kind == "progress":
            self.stage = msg.get("stage", "")
            self.on_progress(self.stage, float(msg.get("percent", 0.0)), msg.get("detail", ""))
        elif kind == "succeeded":
            return Outcome("succeeded", result=json_format.ParseDict(msg.get("result", {}), pb.TaskResult()))
        elif kind == "failed":
            return Outcome("failed", code=msg.get("code", "INTERNAL"), message=msg.get("message", ""),
                           retryable=bool(msg.get("retryable")), stage=msg.get("stage", self.stage))
        return None
