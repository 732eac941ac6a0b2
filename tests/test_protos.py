"""The committed generated/ code matches protos/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_generated_code_is_current() -> None:
    proc = subprocess.run([sys.executable, "scripts/gen_protos.py", "--check"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_enum_names_read_like_the_states() -> None:
    from generated.aicut.v1 import common_pb2, worker_pb2

    assert [common_pb2.TaskState.Name(i) for i in range(1, 7)] == [
        "QUEUED", "DISPATCHED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"]
    assert [worker_pb2.WorkerState.Name(i) for i in range(1, 5)] == ["SERVING", "DRAINING", "NOT_SERVING", "OFFLINE"]
