"""The body of a task process (see ``aicut.worker.pool`` and ``aicut.worker.runner``): JSON lines in, JSON lines out.

``python -m aicut.worker.taskproc --serve --parent PID`` is a long-lived process that runs one job after another.
Lines it reads on stdin:

- ``{"op": "warm", "options": …}`` — load the speech model for these pipeline options now, so a task that comes
  later does not wait for it (and look up the CJK font);
- ``{"op": "run", "task": …, "options": …, "log_level": …}`` — run one task; the next job comes after its last line;
- end of input — exit.

Lines it writes on stdout: ``{"event": "ready"}`` once the pipeline is imported; ``{"event": "warm", "ok": …}``
when a model load ends; per job, progress at most ten times a second (every stage change at once) and then one
``succeeded`` or ``failed`` line with the error's code and whether a retry can help.

Without ``--serve`` it runs the one job on stdin and exits (the old one-process-per-task form).

Speech models are kept per process, keyed by their options (at most one: a task with other options replaces it).
The process dies with its worker: ``PR_SET_PDEATHSIG`` on Linux, a parent check elsewhere, and end of input.
"""

from __future__ import annotations

import argparse
import base64
import ctypes
import json
import logging
import os
import pickle
import sys
import threading
import time
from dataclasses import dataclass
from typing import IO, Any

from google.protobuf import json_format

from aicut import wire
from aicut.errors import AicutError
from aicut.pipeline.task import PipelineOptions, run_task
from aicut.pipeline.transcribe import TranscribeOptions, Transcriber
from generated.aicut.v1 import common_pb2 as pb

logger = logging.getLogger("aicut.task")

_PR_SET_PDEATHSIG = 1
_out: IO[str] = sys.stdout


def _emit(msg: dict[str, Any]) -> None:
    _out.write(json.dumps(msg, ensure_ascii=False) + "\n")
    _out.flush()


def _own_stdout() -> None:
    """Keep the real stdout for events; anything else printing (a native library, a stray print) goes to stderr."""
    global _out
    _out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr


def _die_with_parent(parent: int) -> None:
    """End this process when the worker that started it ends, even by kill -9."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, 9, 0, 0, 0) != 0:  # SIGKILL
            logger.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
    else:
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="parent-watch").start()
    if parent and os.getppid() != parent:  # the worker died before the line above took effect
        os._exit(0)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _configure_logging(level: str, label: str) -> None:
    fmt = logging.Formatter(f"%(asctime)s %(levelname)s {label} %(name)s: %(message)s")
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stderr))
    for handler in root.handlers:
        handler.setFormatter(fmt)
    root.setLevel(level or "INFO")


class Models:
    """Speech models loaded in this process, keyed by their options; the latest key replaces the one before.

    Loads happen on the thread that asks, never in a background thread: a CTranslate2 model built in a thread that
    then ends transcribed 4-9x slower (in CPU seconds) than one built on the thread that goes on to use it."""

    def __init__(self) -> None:
        self._key: TranscribeOptions | None = None
        self._model: Transcriber | None = None
        self.loads = 0
        self.load_s = 0.0

    def cached(self, options: TranscribeOptions) -> bool:
        return self._model is not None and self._key == options

    def get(self, options: TranscribeOptions) -> Transcriber:
        """The model for ``options``, loaded now unless it is loaded already (raises TranscribeError)."""
        if self._model is None or self._key != options:
            self._key, self._model = None, None  # the old one goes before the new one loads: one in memory
            self.loads += 1
            t0 = time.monotonic()
            try:
                self._model = Transcriber(options)
            finally:
                self.load_s = time.monotonic() - t0
            self._key = options
        return self._model


class LazyModel:
    """The task's speech model: loaded (or taken from the cache) on entering the transcribe stage, so fetch and
    probe do not wait for it and the stage's clock does not count it; a load error is raised by ``transcribe``."""

    def __init__(self, models: Models, options: TranscribeOptions) -> None:
        self.models, self.options = models, options
        self.was_cached = models.cached(options)
        self._model: Transcriber | None = None
        self._error: BaseException | None = None

    def load(self) -> float:
        """Load it if needed; returns the seconds that took (0.0 when it was loaded before this task)."""
        t0 = time.monotonic()
        try:
            self._model = self.models.get(self.options)
        except Exception as exc:  # noqa: BLE001 — raised again inside the transcribe stage, with its name
            self._error = exc
        return 0.0 if self.was_cached else round(time.monotonic() - t0, 3)

    def transcribe(self, *args: Any, **kwargs: Any) -> Any:
        if self._model is None and self._error is None:
            self.load()
        if self._error is not None:
            raise self._error
        assert self._model is not None
        return self._model.transcribe(*args, **kwargs)


def warm(msg: dict[str, Any], models: Models) -> None:
    """Load the speech model (and look up the CJK font) for the options in ``msg`` before any task; says how it went."""
    options: PipelineOptions = pickle.loads(base64.b64decode(msg["options"]))
    try:
        models.get(options.transcribe)
    except Exception as exc:  # noqa: BLE001 — the process lives on; a task that needs the model reports the error
        message = getattr(exc, "message", str(exc))
        logger.warning("speech model not loaded ahead of tasks: %s", message)
        _emit({"event": "warm", "ok": False, "seconds": round(models.load_s, 3), "message": message})
    else:
        _emit({"event": "warm", "ok": True, "seconds": round(models.load_s, 3), "message": ""})
    _warm_font(options.font)


def _warm_font(configured: str) -> None:
    from aicut.pipeline.fonts import find_cjk_font  # cached per process; covers and burned-in subtitles need it

    try:
        find_cjk_font(configured)
    except AicutError as exc:
        logger.debug("no CJK font yet: %s", exc.message)


@dataclass(slots=True)
class _JobState:
    stage: str = ""
    last: float = 0.0
    waited: float | None = None  # seconds the task spent loading the speech model; None before the transcribe stage


def run_job(job: dict[str, Any], models: Models, number: int) -> None:
    """Run one task and print its progress and outcome; never raises for the task's own failures."""
    task = wire.task_from_pb(json_format.ParseDict(job["task"], pb.Task()))
    _configure_logging(job.get("log_level", "INFO"), f"task {task.id}#{task.attempt}")
    # Pickled by our own parent process (the worker) over a pipe: the options are frozen dataclasses.
    options: PipelineOptions = pickle.loads(base64.b64decode(job["options"]))
    model = LazyModel(models, options.transcribe)
    state = _JobState()

    def report(stage: str, percent: float, detail: str = "") -> None:
        if stage == "transcribe" and state.waited is None:
            state.waited = _load_model(model, models, number, percent)
        now = time.monotonic()
        # Progress at most ten times a second, but every stage change at once.
        if stage == state.stage and now - state.last < 0.1 and percent < 100:
            return
        state.stage, state.last = stage, now
        _emit({"event": "progress", "stage": stage, "percent": round(percent, 2), "detail": detail})

    try:
        result = run_task(task, options, report, transcriber=model)  # type: ignore[arg-type]
    except AicutError as exc:
        logger.warning("failed in %s: %s", state.stage, exc.message)
        _emit({"event": "failed", "code": exc.code, "message": exc.message, "retryable": exc.retryable,
               "stage": state.stage})
        return
    except Exception as exc:  # a bug, not bad input: report it and let the coordinator's retry policy decide
        logger.exception("unexpected error in %s", state.stage)
        _emit({"event": "failed", "code": "INTERNAL", "retryable": True, "stage": state.stage,
               "message": f"internal error in {state.stage or 'the task'}: {type(exc).__name__}: {exc}"})
        return
    if state.waited is not None:
        result.stage_seconds["model_load"] = state.waited
    _emit({"event": "succeeded", "result": json_format.MessageToDict(wire.result_to_pb(result))})


def _load_model(model: LazyModel, models: Models, number: int, percent: float) -> float:
    """Load the speech model before the transcribe stage's clock starts; says on a progress line how it went.
    Returns the seconds spent (0.0 when it was loaded before this task came)."""
    seconds = model.load()
    if model.was_cached:
        detail = f"speech model already loaded (task {number} in this process)"
    else:
        detail = f"speech model loaded in {seconds:.1f}s (task {number} in this process)"
    _emit({"event": "progress", "stage": "transcribe", "percent": round(percent, 2), "detail": detail})
    return seconds


def serve(parent: int) -> None:
    """Run jobs from stdin until it ends."""
    _die_with_parent(parent)
    _configure_logging("INFO", f"task process {os.getpid()}")
    models = Models()
    _emit({"event": "ready", "pid": os.getpid()})
    number = 0
    for line in sys.stdin:
        msg = json.loads(line)
        if msg.get("op") == "warm":
            _configure_logging(msg.get("log_level", "INFO"), f"task process {os.getpid()}")
            warm(msg, models)
        else:
            number += 1
            run_job(msg, models, number)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m aicut.worker.taskproc")
    parser.add_argument("--serve", action="store_true", help="run jobs one after another until stdin ends")
    parser.add_argument("--parent", type=int, default=0, help="the worker's pid: exit when it is gone")
    args = parser.parse_args(argv)
    _own_stdout()
    if args.serve:
        serve(args.parent)
    else:
        run_job(json.loads(sys.stdin.readline()), Models(), 1)
    _out.flush()
    os._exit(0)  # quick: no interpreter teardown of the pipeline's native libraries


if __name__ == "__main__":
    main()
