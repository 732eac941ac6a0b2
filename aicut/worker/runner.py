"""One task in its own process: ``python -m aicut.worker.taskproc`` with the job on stdin and JSON lines on stdout.

A crash in native code (PyAV, NVENC, CTranslate2), an out-of-memory kill or a kill -9 ends that process only; the
worker sees the exit status and reports the task as failed and retryable.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format

from generated.aicut.v1 import common_pb2 as pb

logger = logging.getLogger(__name__)

ProgressFn = Callable[[str, float, str], None]


@dataclass(slots=True)
class Outcome:
    """How a task process ended."""

    kind: str                          # "succeeded", "failed" or "cancelled"
    result: pb.TaskResult | None = None
    code: str = ""
    message: str = ""
    retryable: bool = False
    stage: str = ""


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


class TaskProcess:
    """Runs one task attempt in a child process and turns what it prints into progress and an :class:`Outcome`."""

    def __init__(self, job: dict[str, Any], on_progress: ProgressFn) -> None:
        self.job = job
        self.on_progress = on_progress
        self.proc: asyncio.subprocess.Process | None = None
        self.cancel_reason = ""
        self.stage = ""

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc else 0

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "aicut.worker.taskproc",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=16 * 1024 * 1024,
            # Own process group: Ctrl+C in the worker's terminal reaches the worker, which decides what to do.
            start_new_session=True,
        )
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(self.job).encode() + b"\n")
        await self.proc.stdin.drain()
        self.proc.stdin.close()

    async def wait(self) -> Outcome:
        """Follow the process to its end."""
        assert self.proc is not None and self.proc.stdout is not None
        final: Outcome | None = None
        async for raw in self.proc.stdout:
            try:
                msg = json.loads(raw)
            except ValueError:
                logger.warning("task process %s printed a line that is not JSON: %.200r", self.pid, raw)
                continue
            kind = msg.get("event")
            if kind == "progress":
                self.stage = msg.get("stage", "")
                self.on_progress(self.stage, float(msg.get("percent", 0.0)), msg.get("detail", ""))
            elif kind == "succeeded":
                final = Outcome("succeeded", result=json_format.ParseDict(msg.get("result", {}), pb.TaskResult()))
            elif kind == "failed":
                final = Outcome("failed", code=msg.get("code", "INTERNAL"), message=msg.get("message", ""),
                                retryable=bool(msg.get("retryable")), stage=msg.get("stage", self.stage))
        returncode = await self.proc.wait()
        if self.cancel_reason:
            return Outcome("cancelled", message=self.cancel_reason, stage=self.stage)
        if final is not None and returncode == 0:
            return final
        return Outcome("failed", code="TASK_CRASHED", retryable=True, stage=self.stage,
                       message=f"the task's process {describe_exit(returncode)} during {self.stage or 'start-up'}; "
                               "the worker is fine and another attempt may succeed")

    async def cancel(self, reason: str, grace_s: float) -> None:
        """Stop the process: SIGTERM, then SIGKILL after ``grace_s``."""
        self.cancel_reason = reason or "cancelled"
        if self.proc is None or self.proc.returncode is not None:
            return  # not started yet: the launcher sees cancel_reason and stops it
        try:
            self.proc.terminate()
            await asyncio.wait_for(asyncio.shield(self.proc.wait()), grace_s)
        except ProcessLookupError:
            return
        except asyncio.TimeoutError:
            logger.warning("task process %s ignored SIGTERM for %.1fs; killing it", self.pid, grace_s)
            self.proc.kill()
