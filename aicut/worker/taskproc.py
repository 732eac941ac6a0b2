"""The body of a task process (see ``aicut.worker.runner``): job JSON on stdin, one JSON line per event on stdout.

Progress goes out at most ten times a second (every stage change at once); the last line is the result or the
failure with its code and whether a retry can help.
"""

from __future__ import annotations

import base64
import json
import logging
import pickle
import sys
import time
from typing import Any

from google.protobuf import json_format

from aicut import wire
from aicut.errors import AicutError
from aicut.pipeline.task import PipelineOptions, run_task
from generated.aicut.v1 import common_pb2 as pb

logger = logging.getLogger("aicut.task")


def _emit(msg: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(msg, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def main() -> int:
    job = json.loads(sys.stdin.readline())
    task = wire.task_from_pb(json_format.ParseDict(job["task"], pb.Task()))
    logging.basicConfig(level=job.get("log_level", "INFO"), stream=sys.stderr,
                        format=f"%(asctime)s %(levelname)s task {task.id}#{task.attempt} %(name)s: %(message)s")
    # Pickled by our own parent process (the worker) over a pipe: the options are frozen dataclasses.
    options: PipelineOptions = pickle.loads(base64.b64decode(job["options"]))
    stage = ""
    last = 0.0

    def report(new_stage: str, percent: float, detail: str = "") -> None:
        nonlocal stage, last
        now = time.monotonic()
        # Progress at most ten times a second, but every stage change at once.
        if new_stage == stage and now - last < 0.1 and percent < 100:
            return
        stage, last = new_stage, now
        _emit({"event": "progress", "stage": stage, "percent": round(percent, 2), "detail": detail})

    try:
        result = run_task(task, options, report)
    except AicutError as exc:
        logger.warning("failed in %s: %s", stage, exc.message)
        _emit({"event": "failed", "code": exc.code, "message": exc.message, "retryable": exc.retryable,
               "stage": stage})
        return 0
    except Exception as exc:  # a bug, not bad input: report it and let the coordinator's retry policy decide
        logger.exception("unexpected error in %s", stage)
        _emit({"event": "failed", "code": "INTERNAL", "retryable": True, "stage": stage,
               "message": f"internal error in {stage or 'the task'}: {type(exc).__name__}: {exc}"})
        return 0
    _emit({"event": "succeeded", "result": json_format.MessageToDict(wire.result_to_pb(result))})
    return 0


if __name__ == "__main__":
    sys.exit(main())
