"""The gateway's JSON answers, built by pure functions from plain values; every field is named here, by hand.

Nothing is dumped wholesale (no settings, no raw Redis hashes, no ``vars()``): a field reaches a browser only if a
line below names it, which is how secrets stay out. The README's "Gateway" section documents each shape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from google.protobuf import json_format

from aicut.gateway.facts import MachineFacts
from aicut.models import TaskRecord, TaskState
from generated.aicut.v1 import common_pb2 as pb

STATES: tuple[str, ...] = tuple(s.value for s in TaskState)
ACTIVE: tuple[str, ...] = (TaskState.DISPATCHED.value, TaskState.RUNNING.value)
FINISHED: tuple[str, ...] = tuple(s.value for s in TaskState if s.finished)
# The pipeline's stages in the order they run; stages not listed follow in name order.
STAGE_ORDER: tuple[str, ...] = ("resolve", "fetch", "probe", "transcribe", "plan", "render", "subtitles", "cover",
                                "publish")
_HISTORY = re.compile(r"^(\d+) (\S+) ([A-Z_]+):? ?(.*)$")
_EVENT_ID = re.compile(r"^\d+-\d+$")


# ---------------------------------------------------------------------------------------------------------- machines

def machine_view(m: MachineFacts, now_unix_ms: int) -> dict[str, Any]:
    """One worker: identity, state, load, capabilities, liveness and its dispatch counts."""
    ejected = m.ejected_until_unix_ms > now_unix_ms
    return {
        "address": m.address,
        "worker_id": m.worker_id,
        "priority": m.priority,
        "online": m.online,
        "state": m.state,
        "state_reason": m.state_reason,
        "busy": m.busy > 0,
        "slots_used": m.busy,
        "slots_total": m.slots,
        "cordoned": m.cordoned,
        "draining": m.cordoned or m.state == "DRAINING",
        "ejected": ejected,
        "ejected_until_unix_ms": m.ejected_until_unix_ms if ejected else 0,
        "consecutive_failures": m.consecutive_failures,
        "nvenc": m.nvenc,
        "nvenc_reason": m.nvenc_reason,
        "nvdec": m.nvdec,
        "gpus": list(m.gpus),
        "cpu_count": m.cpu_count,
        "encoders": list(m.encoders),
        "speech_model_ready": m.speech_model_ready,
        "labels": list(m.labels),
        "version": m.version,
        "rtt_ms": round(m.rtt_ms, 3),
        "last_seen_unix_ms": m.last_seen_unix_ms,
        "heartbeat_age_s": round(max(0, now_unix_ms - m.last_seen_unix_ms) / 1000, 3) if m.last_seen_unix_ms else None,
        "last_error": m.last_error,
        "dispatched": m.dispatched,
        "succeeded": m.succeeded,
        "failed": m.failed,
        "started_unix_ms": m.started_unix_ms,
        "resources": {
            "memory_total_bytes": m.memory_total_bytes,
            "memory_available_bytes": m.memory_available_bytes,
            "disk_total_bytes": m.disk_total_bytes,
            "disk_free_bytes": m.disk_free_bytes,
            "load_avg_1m": round(m.load_avg_1m, 2),
        },
        "tasks": [{"id": t.task_id, "attempt": t.attempt, "state": t.state, "stage": t.stage,
                   "percent": round(t.percent, 1), "started_unix_ms": t.started_unix_ms} for t in m.tasks],
    }


def machines_summary(machines: Sequence[MachineFacts], now_unix_ms: int) -> dict[str, int]:
    """Counts over the fleet: how many are online, busy, draining, ejected; slots in use and in all."""
    online = [m for m in machines if m.online]
    return {
        "total": len(machines),
        "online": len(online),
        "offline": len(machines) - len(online),
        "busy": sum(1 for m in online if m.busy > 0),
        "idle": sum(1 for m in online if m.busy == 0),
        "draining": sum(1 for m in machines if m.cordoned or m.state == "DRAINING"),
        "ejected": sum(1 for m in machines if m.ejected_until_unix_ms > now_unix_ms),
        "slots_total": sum(m.slots for m in online),
        "slots_used": sum(m.busy for m in online),
    }


def machines_status(machines: Sequence[MachineFacts], now_unix_ms: int) -> dict[str, Any]:
    """``GET /api/machines/status`` and the SSE ``machines`` event."""
    return {"generated_unix_ms": now_unix_ms, "summary": machines_summary(machines, now_unix_ms),
            "machines": [machine_view(m, now_unix_ms) for m in machines]}


def _rtt_bucket(rtt_ms: float) -> float:
    """Round trips rounded so ping jitter is not a change: whole ms below 10 ms, two significant digits above."""
    if rtt_ms < 10:
        return round(rtt_ms)
    return float(f"{rtt_ms:.2g}")


def _late_s(m: MachineFacts, now_unix_ms: int) -> int:
    """Whole seconds since an online worker's latest message (0 while heartbeats flow; -1 offline or never seen)."""
    if not (m.online and m.last_seen_unix_ms):
        return -1
    return min(60, max(0, now_unix_ms - m.last_seen_unix_ms) // 1000)


def machines_signature(machines: Sequence[MachineFacts], now_unix_ms: int) -> tuple[Any, ...]:
    """What the dashboard shows of the fleet at the resolution it shows it: equal signatures need no new event.

    Heartbeats and pings arrive every second or faster, so their clocks are left out; a worker whose heartbeats stop
    changes the signature once a second (its growing heartbeat age) until it is declared offline.
    """
    return tuple(
        (m.address, m.online, m.state, m.busy, m.slots, m.cordoned, m.ejected_until_unix_ms > now_unix_ms,
         m.priority, m.nvenc, m.last_error, m.dispatched, m.succeeded, m.failed, _rtt_bucket(m.rtt_ms),
         _late_s(m, now_unix_ms),
         tuple((t.task_id, t.attempt, t.state, t.stage, round(t.percent, 1)) for t in m.tasks))
        for m in machines)


# ---------------------------------------------------------------------------------------------------------- cluster

def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def dispatch_stats(counts: Mapping[str, int], machines: Sequence[MachineFacts]) -> dict[str, Any]:
    """Success and failure rates of finished tasks, and how dispatches spread over the machines."""
    ok, bad, cancelled = (counts.get(s, 0) for s in ("SUCCEEDED", "FAILED", "CANCELLED"))
    dispatched = sum(m.dispatched for m in machines)
    return {
        "finished": ok + bad + cancelled,
        "succeeded": ok,
        "failed": bad,
        "cancelled": cancelled,
        "success_rate": _rate(ok, ok + bad),
        "failure_rate": _rate(bad, ok + bad),
        "attempts_since_start": {"dispatched": dispatched, "succeeded": sum(m.succeeded for m in machines),
                                 "failed": sum(m.failed for m in machines)},
        "per_machine": [{"address": m.address, "dispatched": m.dispatched, "succeeded": m.succeeded,
                         "failed": m.failed, "share": _rate(m.dispatched, dispatched) or 0.0,
                         "success_rate": _rate(m.succeeded, m.succeeded + m.failed)} for m in machines],
    }


def monitoring_view(enabled: bool, last_check_unix_ms: int | None = None,
                    last_error: str | None = None) -> dict[str, Any]:
    """Forum monitoring: the persisted switch, when the watcher last looked at the forum and what went wrong then."""
    return {"enabled": enabled, "last_check_unix_ms": last_check_unix_ms, "last_error": last_error}


def counters_view(counters: Mapping[str, int]) -> dict[str, Any]:
    """The store's counters that mean something here: tasks created, and entries into each state."""
    return {"created": int(counters.get("created", 0)),
            "entered": {s: int(counters.get(f"to:{s}", 0)) for s in STATES}}


def cluster_status(*, version: str, started_unix_ms: int, now_unix_ms: int, counts: Mapping[str, int],
                   counters: Mapping[str, int], machines: Sequence[MachineFacts], monitoring: Mapping[str, Any],
                   recent: Iterable[tuple[str, Mapping[str, str]]]) -> dict[str, Any]:
    """``GET /api/cluster/status``: task counts, queue, fleet summary, dispatch statistics, monitoring, events."""
    by_state = {s: int(counts.get(s, 0)) for s in STATES}
    return {
        "generated_unix_ms": now_unix_ms,
        "version": version,
        "started_unix_ms": started_unix_ms,
        "uptime_s": round(max(0, now_unix_ms - started_unix_ms) / 1000, 1),
        "tasks": {"by_state": by_state, "total": sum(by_state.values()), "queued": by_state["QUEUED"],
                  "active": sum(by_state[s] for s in ACTIVE), "finished": sum(by_state[s] for s in FINISHED)},
        "queue_length": by_state["QUEUED"],
        "machines": machines_summary(machines, now_unix_ms),
        "dispatch": dispatch_stats(by_state, machines),
        "monitoring": dict(monitoring),
        "counters": counters_view(counters),
        "recent_events": [event_view(i, f) for i, f in recent],
    }


# ---------------------------------------------------------------------------------------------------------- tasks

def safe_url(url: str) -> str:
    """``url`` without user:password@ (a source URL may carry credentials; the rest is what the operator needs)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _task_pb(rec: TaskRecord) -> pb.Task:
    task = pb.Task()
    if rec.task_json:
        try:
            json_format.Parse(rec.task_json, task, ignore_unknown_fields=True)
        except json_format.ParseError:
            pass
    return task


def _result(rec: TaskRecord) -> tuple[pb.TaskResult, dict[str, Any]]:
    """The result as the proto knows it, and as raw JSON (for fields newer than this gateway, like a plan)."""
    result, raw = pb.TaskResult(), {}
    if rec.result_json:
        try:
            raw = json.loads(rec.result_json)
            json_format.ParseDict(raw, result, ignore_unknown_fields=True)
        except (ValueError, json_format.ParseError):
            pass
    return result, raw if isinstance(raw, dict) else {}


def error_view(rec: TaskRecord) -> dict[str, Any] | None:
    """The task's error (a final one, or the last before a retry), or None."""
    if not (rec.error_code or rec.error_message):
        return None
    return {"code": rec.error_code, "message": rec.error_message, "retryable": rec.retryable}


def task_summary(rec: TaskRecord, task: pb.Task | None = None) -> dict[str, Any]:
    """One task in a list: state, where and how far, times, title and the reason it failed."""
    task = _task_pb(rec) if task is None else task
    spec = task.spec
    title = spec.title or next((s.name for s in spec.sources if s.name), "")
    return {
        "id": rec.id,
        "attempt": rec.attempt,
        "state": rec.state.value,
        "origin": rec.origin,
        "title": title,
        "sources": len(spec.sources),
        "worker": rec.worker,
        "stage": rec.stage,
        "percent": round(rec.percent, 1),
        "created_unix_ms": rec.created_ms,
        "updated_unix_ms": rec.updated_ms,
        "queued_unix_ms": rec.queued_ms,
        "dispatched_unix_ms": rec.dispatched_ms,
        "started_unix_ms": rec.started_ms,
        "finished_unix_ms": rec.finished_ms,
        "error": error_view(rec),
    }


def tasks_page(recs: Iterable[TaskRecord], *, total: int, state: str | None, offset: int,
               limit: int) -> dict[str, Any]:
    """``GET /api/tasks``: one page, newest first, and the total that matches the filter."""
    return {"state": state, "offset": offset, "limit": limit, "total": total,
            "tasks": [task_summary(r) for r in recs]}


def _stages(stage_seconds: Mapping[str, float]) -> list[dict[str, Any]]:
    known = [s for s in STAGE_ORDER if s in stage_seconds]
    rest = sorted(s for s in stage_seconds if s not in STAGE_ORDER)
    return [{"name": s, "seconds": round(float(stage_seconds[s]), 3)} for s in (*known, *rest)]


def _seconds(a_ms: int, b_ms: int) -> float | None:
    return round((b_ms - a_ms) / 1000, 3) if a_ms and b_ms and b_ms >= a_ms else None


def _plan_summary(plan: Any) -> dict[str, Any] | None:
    """The headline numbers of an edit plan (``EditPlan.to_dict`` shape, snake or camel case), or None."""
    if not isinstance(plan, Mapping):
        return None

    def pick(*names: str) -> Any:
        return next((plan[n] for n in names if n in plan), None)

    source, output = pick("source_duration", "sourceDuration"), pick("output_duration", "outputDuration")
    removed = pick("removed_by_reason", "removedByReason")
    cuts, keeps = pick("cuts"), pick("keeps")
    if source is None and removed is None and cuts is None:
        return None
    by_reason = {str(k): round(float(v), 3) for k, v in removed.items()} if isinstance(removed, Mapping) else {}
    return {
        "source_duration_s": round(float(source), 3) if isinstance(source, (int, float)) else None,
        "output_duration_s": round(float(output), 3) if isinstance(output, (int, float)) else None,
        "removed_s": round(sum(by_reason.values()), 3),
        "removed_by_reason": by_reason,
        "cuts": len(cuts) if isinstance(cuts, list) else None,
        "keeps": len(keeps) if isinstance(keeps, list) else None,
        "flagged": bool(pick("flagged")),
        "flag_reason": str(pick("flag_reason", "flagReason") or ""),
    }


def plan_summaries(raw_result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Edit-plan summaries found in a result: ``plan``/``edl``/``report`` at the top or in each source."""
    holders = [raw_result, *[s for s in raw_result.get("sources", []) if isinstance(s, Mapping)]]
    out = []
    for holder in holders:
        for key in ("plan", "edl", "report"):
            summary = _plan_summary(holder.get(key))
            if summary is not None:
                out.append(summary)
                break
    return out


def history_view(history: str) -> list[dict[str, Any]]:
    """The attempt history, one entry per line: ``"1 host:8005 FAILED CODE: message"`` split into its parts."""
    out = []
    for line in (x.strip() for x in history.splitlines()):
        if not line:
            continue
        m = _HISTORY.match(line)
        if m:
            out.append({"attempt": int(m.group(1)), "worker": m.group(2), "outcome": m.group(3),
                        "detail": m.group(4), "line": line})
        else:
            out.append({"attempt": None, "worker": "", "outcome": "", "detail": line, "line": line})
    return out


def task_detail(rec: TaskRecord) -> dict[str, Any]:
    """``GET /api/tasks/{id}``: the summary plus the request, timeline, stage times, plan, outputs, error, history."""
    task = _task_pb(rec)
    result, raw = _result(rec)
    spec = task.spec
    steps = (("created", rec.created_ms), ("queued", rec.queued_ms), ("dispatched", rec.dispatched_ms),
             ("started", rec.started_ms), ("finished", rec.finished_ms))
    return {
        "task": task_summary(rec, task),
        "spec": {
            "kind": pb.TaskKind.Name(task.kind),
            "thread_url": safe_url(task.thread_url),
            "title": spec.title,
            "category": spec.category,
            "author": spec.author,
            "tid": spec.tid,
            "fid": spec.fid,
            "cover": {"top": spec.cover.top, "middle": spec.cover.middle, "bottom": spec.cover.bottom},
            "sources": [{"name": s.name, "url": safe_url(s.url), "kind": pb.SourceKind.Name(s.kind)}
                        for s in spec.sources],
        },
        "timeline": [{"step": name, "at_unix_ms": at} for name, at in steps if at],
        "durations": {"waiting_s": _seconds(rec.queued_ms, rec.dispatched_ms),
                      "running_s": _seconds(rec.started_ms, rec.finished_ms),
                      "total_s": _seconds(rec.created_ms, rec.finished_ms)},
        "stages": _stages(result.stage_seconds),
        "current": {"stage": rec.stage, "percent": round(rec.percent, 1)},
        "machine": result.machine or rec.worker,
        "media": [{"name": s.source.name, "url": safe_url(s.source.url), "container": s.media.container,
                   "duration_s": round(s.media.duration_s, 3), "size_bytes": s.media.size_bytes,
                   "video": [{"codec": v.codec, "width": v.width, "height": v.height, "fps": round(v.fps, 3)}
                             for v in s.media.video],
                   "audio": [{"codec": a.codec, "sample_rate": a.sample_rate, "channels": a.channels}
                             for a in s.media.audio]} for s in result.sources],
        "outputs": [{"name": o.name, "kind": o.kind, "url": safe_url(o.url), "path": o.path,
                     "size_bytes": o.size_bytes} for o in result.outputs],
        "plans": plan_summaries(raw),
        "error": error_view(rec),
        "history": history_view(rec.history),
    }


# ---------------------------------------------------------------------------------------------------------- events

def valid_event_id(value: str) -> bool:
    """Whether ``value`` looks like a Redis stream id (``ms-seq``)."""
    return bool(_EVENT_ID.match(value))


def event_order(entry_id: str) -> tuple[int, int]:
    """A stream id as a sortable pair."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def event_view(entry_id: str, fields: Mapping[str, str]) -> dict[str, Any]:
    """One entry of the event stream (a task transition, a progress stage, a worker or monitoring event)."""
    def number(name: str) -> float | None:
        try:
            return float(fields[name]) if fields.get(name) else None
        except ValueError:
            return None

    ts = fields.get("ts") or entry_id.split("-", 1)[0]
    percent = number("percent")
    return {
        "id": entry_id,
        "kind": fields.get("kind", "task"),
        "at_unix_ms": int(ts) if ts.isdigit() else 0,
        "task_id": fields.get("id") or fields.get("task") or "",   # the store writes "id"
        "attempt": int(fields.get("attempt") or 0) if (fields.get("attempt") or "0").isdigit() else 0,
        "worker": fields.get("worker", ""),
        "from": fields.get("from", ""),
        "to": fields.get("to", ""),
        "stage": fields.get("stage", ""),
        "percent": round(percent, 1) if percent is not None else None,
        "text": fields.get("text") or fields.get("event") or "",
    }
