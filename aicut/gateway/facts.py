"""What the coordinator knows of each worker right now, copied into plain values the views can be built from."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from aicut.coordinator.dispatcher import Dispatcher
from generated.aicut.v1 import common_pb2 as pb
from generated.aicut.v1 import worker_pb2 as wpb


@dataclass(frozen=True, slots=True)
class ActiveTaskFacts:
    """One task a worker reports running."""

    task_id: str
    attempt: int
    state: str
    stage: str
    percent: float
    started_unix_ms: int


@dataclass(frozen=True, slots=True)
class MachineFacts:
    """One worker of machines.yaml as the coordinator sees it at one moment (no secrets: none are copied)."""

    address: str
    priority: int
    slots: int
    busy: int
    online: bool
    state: str                       # SERVING, DRAINING, NOT_SERVING, or OFFLINE when unreachable
    worker_id: str = ""
    state_reason: str = ""
    cordoned: bool = False           # DrainWorker from the operator
    ejected_until_unix_ms: int = 0   # 0: not ejected
    consecutive_failures: int = 0
    rtt_ms: float = 0.0
    last_seen_unix_ms: int = 0       # 0: never heard from
    last_error: str = ""
    dispatched: int = 0              # since the coordinator started
    succeeded: int = 0
    failed: int = 0
    nvenc: bool = False
    nvenc_reason: str = ""
    nvdec: bool = False
    gpus: tuple[str, ...] = ()
    cpu_count: int = 0
    encoders: tuple[str, ...] = ()
    speech_model_ready: bool = False
    labels: tuple[str, ...] = ()
    version: str = ""
    started_unix_ms: int = 0         # when the worker process started
    memory_total_bytes: int = 0
    memory_available_bytes: int = 0
    disk_total_bytes: int = 0
    disk_free_bytes: int = 0
    load_avg_1m: float = 0.0
    tasks: tuple[ActiveTaskFacts, ...] = ()


def collect(dispatcher: Dispatcher, now_mono: float | None = None,
            now_unix_ms: int | None = None) -> list[MachineFacts]:
    """Every worker of the fleet, in machines.yaml order (reads memory only: no I/O, safe on the event loop)."""
    now_mono = time.monotonic() if now_mono is None else now_mono
    now_unix_ms = int(time.time() * 1000) if now_unix_ms is None else now_unix_ms
    views = {v.name: v for v in dispatcher.fleet.views(now_mono)}
    out = []
    for address, member in list(dispatcher.fleet.members.items()):
        view = views.get(address)
        if view is None:
            continue
        link, status = member.link, member.link.status
        until = dispatcher.outliers.ejected_until(address)
        ejected_ms = now_unix_ms + int((until - now_mono) * 1000) if until > now_mono else 0
        facts = MachineFacts(
            address=address, priority=member.entry.priority, slots=view.slots, busy=view.busy, online=link.online,
            state=view.state.value, cordoned=member.cordoned, ejected_until_unix_ms=ejected_ms,
            consecutive_failures=dispatcher.outliers.consecutive_failures(address), rtt_ms=link.rtt_ms,
            last_seen_unix_ms=link.last_seen_unix_ms, last_error=link.last_error, dispatched=member.dispatched,
            succeeded=member.succeeded, failed=member.failed, labels=tuple(member.entry.labels))
        if status is not None:
            caps, res = status.capabilities, status.resources
            tasks = tuple(ActiveTaskFacts(task_id=t.task_id, attempt=t.attempt, state=pb.TaskState.Name(t.state),
                                          stage=t.stage, percent=float(t.percent), started_unix_ms=t.started_unix_ms)
                          for t in status.tasks) if link.online else ()
            facts = _with_status(facts, status.worker_id, status.state_reason, caps, res, tasks,
                                 tuple(dict.fromkeys((*member.entry.labels, *status.labels))),
                                 status.started_unix_ms)
        out.append(facts)
    return out


def _with_status(f: MachineFacts, worker_id: str, reason: str, caps: wpb.Capabilities, res: wpb.Resources,
                 tasks: tuple[ActiveTaskFacts, ...], labels: tuple[str, ...], started_ms: int) -> MachineFacts:
    """``f`` completed with what the worker's latest status snapshot says."""
    return replace(
        f, worker_id=worker_id, state_reason=reason if f.online else "", nvenc=caps.nvenc,
        nvenc_reason=caps.nvenc_reason, nvdec=caps.nvdec, gpus=tuple(g.name for g in caps.gpus),
        cpu_count=caps.cpu_count, encoders=tuple(caps.encoders), speech_model_ready=caps.speech_model_ready,
        version=caps.version, labels=labels, started_unix_ms=started_ms, memory_total_bytes=res.memory_total_bytes,
        memory_available_bytes=res.memory_available_bytes, disk_total_bytes=res.disk_total_bytes,
        disk_free_bytes=res.disk_free_bytes, load_avg_1m=float(res.load_avg_1m), tasks=tasks)
