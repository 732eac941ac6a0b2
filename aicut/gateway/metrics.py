"""``GET /metrics`` in the Prometheus text exposition format (version 0.0.4), rendered by a pure function."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from aicut.gateway.facts import MachineFacts
from aicut.gateway.views import STATES

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def escape_label(value: str) -> str:
    """A label value as the text format wants it: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if value != value:  # NaN
        return "NaN"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str,
               samples: Iterable[tuple[Mapping[str, str], float]]) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            text = ",".join(f'{k}="{escape_label(v)}"' for k, v in labels.items())
            self.lines.append(f"{name}{{{text}}} {_number(value)}" if text else f"{name} {_number(value)}")


def render(*, counts: Mapping[str, int], counters: Mapping[str, int], machines: Sequence[MachineFacts],
           monitoring: bool, now_unix_ms: int, sse_clients: int = 0) -> str:
    """Every metric of the coordinator, one family after another, ending with a newline."""
    w = _Writer()
    w.family("aicut_tasks", "gauge", "Tasks in each state.", [({"state": s}, counts.get(s, 0)) for s in STATES])
    w.family("aicut_queue_length", "gauge", "Tasks waiting for a free worker (state QUEUED).",
             [({}, counts.get("QUEUED", 0))])
    w.family("aicut_tasks_created_total", "counter", "Tasks ever created.", [({}, counters.get("created", 0))])
    w.family("aicut_task_transitions_total", "counter", "Entries into each task state, retries included.",
             [({"state": s}, counters.get(f"to:{s}", 0)) for s in STATES])
    per = [(m, {"worker": m.address}) for m in machines]
    w.family("aicut_workers", "gauge", "Workers listed in machines.yaml.", [({}, len(machines))])
    w.family("aicut_worker_up", "gauge", "1 while the health stream to the worker is up.",
             [(lab, m.online) for m, lab in per])
    w.family("aicut_worker_busy", "gauge", "Tasks the worker is running or about to run.",
             [(lab, m.busy) for m, lab in per])
    w.family("aicut_worker_slots", "gauge", "Tasks the worker may run at once.", [(lab, m.slots) for m, lab in per])
    w.family("aicut_worker_priority", "gauge", "The worker's priority (1 is highest).",
             [(lab, m.priority) for m, lab in per])
    w.family("aicut_worker_rtt_seconds", "gauge", "Round trip of the latest ping on the health stream.",
             [(lab, m.rtt_ms / 1000) for m, lab in per])
    w.family("aicut_worker_heartbeat_age_seconds", "gauge", "Time since the worker's latest message.",
             [(lab, max(0, now_unix_ms - m.last_seen_unix_ms) / 1000) for m, lab in per if m.last_seen_unix_ms])
    w.family("aicut_worker_dispatched_total", "counter", "Tasks sent to the worker since the coordinator started.",
             [(lab, m.dispatched) for m, lab in per])
    w.family("aicut_worker_succeeded_total", "counter", "Tasks the worker finished since the coordinator started.",
             [(lab, m.succeeded) for m, lab in per])
    w.family("aicut_worker_failed_total", "counter", "Tasks that failed on the worker since the coordinator started.",
             [(lab, m.failed) for m, lab in per])
    w.family("aicut_worker_ejected", "gauge", "1 while the worker is ejected after repeated failures.",
             [(lab, m.ejected_until_unix_ms > now_unix_ms) for m, lab in per])
    w.family("aicut_worker_draining", "gauge", "1 while the worker takes no new tasks (DrainWorker or draining).",
             [(lab, m.cordoned or m.state == "DRAINING") for m, lab in per])
    w.family("aicut_worker_nvenc", "gauge", "1 when the worker can encode with NVENC.",
             [(lab, m.nvenc) for m, lab in per])
    w.family("aicut_monitoring_enabled", "gauge", "1 while forum monitoring is switched on.", [({}, monitoring)])
    w.family("aicut_gateway_event_clients", "gauge", "Browsers following /api/events.", [({}, sse_clients)])
    return "\n".join(w.lines) + "\n"
