"""The JSON shapes the README documents for the gateway, as checkable schemas (key → type or nested schema)."""

from __future__ import annotations

from typing import Any

NUM = (int, float)
OPT_NUM = (int, float, type(None))
OPT_STR = (str, type(None))

RESOURCES = {"memory_total_bytes": int, "memory_available_bytes": int, "disk_total_bytes": int,
             "disk_free_bytes": int, "load_avg_1m": NUM}
ACTIVE_TASK = {"id": str, "attempt": int, "state": str, "stage": str, "percent": NUM, "started_unix_ms": int}
MACHINE = {
    "address": str, "worker_id": str, "priority": int, "online": bool, "state": str, "state_reason": str,
    "busy": bool, "slots_used": int, "slots_total": int, "cordoned": bool, "draining": bool, "ejected": bool,
    "ejected_until_unix_ms": int, "consecutive_failures": int, "nvenc": bool, "nvenc_reason": str, "nvdec": bool,
    "gpus": [str], "cpu_count": int, "encoders": [str], "speech_model_ready": bool, "labels": [str],
    "version": str, "rtt_ms": NUM, "last_seen_unix_ms": int, "heartbeat_age_s": OPT_NUM, "last_error": str,
    "dispatched": int, "succeeded": int, "failed": int, "started_unix_ms": int, "resources": RESOURCES,
    "tasks": [ACTIVE_TASK],
}
MACHINES_SUMMARY = {"total": int, "online": int, "offline": int, "busy": int, "idle": int, "draining": int,
                    "ejected": int, "slots_total": int, "slots_used": int}
MACHINES_STATUS = {"generated_unix_ms": int, "summary": MACHINES_SUMMARY, "machines": [MACHINE]}

STATES = ("QUEUED", "DISPATCHED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED")
EVENT = {"id": str, "kind": str, "at_unix_ms": int, "task_id": str, "attempt": int, "worker": str, "from": str,
         "to": str, "stage": str, "percent": OPT_NUM, "text": str}
CLUSTER_STATUS = {
    "generated_unix_ms": int, "version": str, "started_unix_ms": int, "uptime_s": NUM,
    "tasks": {"by_state": {s: int for s in STATES}, "total": int, "queued": int, "active": int, "finished": int},
    "queue_length": int,
    "machines": MACHINES_SUMMARY,
    "dispatch": {"finished": int, "succeeded": int, "failed": int, "cancelled": int, "success_rate": OPT_NUM,
                 "failure_rate": OPT_NUM,
                 "attempts_since_start": {"dispatched": int, "succeeded": int, "failed": int},
                 "per_machine": [{"address": str, "dispatched": int, "succeeded": int, "failed": int, "share": NUM,
                                  "success_rate": OPT_NUM}]},
    "monitoring": {"enabled": bool, "last_check_unix_ms": (int, type(None)), "last_error": OPT_STR},
    "counters": {"created": int, "entered": {s: int for s in STATES}},
    "recent_events": [EVENT],
}

ERROR = {"code": str, "message": str, "retryable": bool}
TASK = {"id": str, "attempt": int, "state": str, "origin": str, "title": str, "sources": int, "worker": str,
        "stage": str, "percent": NUM, "created_unix_ms": int, "updated_unix_ms": int, "queued_unix_ms": int,
        "dispatched_unix_ms": int, "started_unix_ms": int, "finished_unix_ms": int, "error": (ERROR, None)}
TASKS_PAGE = {"state": OPT_STR, "offset": int, "limit": int, "total": int, "tasks": [TASK]}
PLAN = {"source_duration_s": OPT_NUM, "output_duration_s": OPT_NUM, "removed_s": NUM, "removed_by_reason": dict,
        "cuts": (int, type(None)), "keeps": (int, type(None)), "flagged": bool, "flag_reason": str}
TASK_DETAIL = {
    "task": TASK,
    "spec": {"kind": str, "thread_url": str, "title": str, "category": str, "author": str, "tid": int, "fid": int,
             "cover": {"top": str, "middle": str, "bottom": str},
             "sources": [{"name": str, "url": str, "kind": str}]},
    "timeline": [{"step": str, "at_unix_ms": int}],
    "durations": {"waiting_s": OPT_NUM, "running_s": OPT_NUM, "total_s": OPT_NUM},
    "stages": [{"name": str, "seconds": NUM}],
    "current": {"stage": str, "percent": NUM},
    "machine": str,
    "media": [{"name": str, "url": str, "container": str, "duration_s": NUM, "size_bytes": int,
               "video": [{"codec": str, "width": int, "height": int, "fps": NUM}],
               "audio": [{"codec": str, "sample_rate": int, "channels": int}]}],
    "outputs": [{"name": str, "kind": str, "url": str, "path": str, "size_bytes": int}],
    "plans": [PLAN],
    "error": (ERROR, None),
    "history": [{"attempt": (int, type(None)), "worker": str, "outcome": str, "detail": str, "line": str}],
}
HEALTH = {"ok": bool, "store": str}
ERROR_ANSWER = {"error": str}


def check(value: Any, schema: Any, where: str = "$") -> None:
    """Assert ``value`` has exactly the keys of ``schema`` (recursively) and values of the named types."""
    if isinstance(schema, tuple) and any(isinstance(s, dict) for s in schema):
        # (dict schema, None): an object of that shape, or null
        if value is None and None in schema:
            return
        check(value, next(s for s in schema if isinstance(s, dict)), where)
        return
    if isinstance(schema, dict):
        assert isinstance(value, dict), f"{where}: expected an object, got {value!r}"
        assert set(value) == set(schema), f"{where}: keys {sorted(value)} != documented {sorted(schema)}"
        for key, sub in schema.items():
            check(value[key], sub, f"{where}.{key}")
        return
    if isinstance(schema, list):
        assert isinstance(value, list), f"{where}: expected a list, got {value!r}"
        for i, item in enumerate(value):
            check(item, schema[0], f"{where}[{i}]")
        return
    if schema is int or schema == (int, type(None)):
        ok = (value is None and schema is not int) or (isinstance(value, int) and not isinstance(value, bool))
        assert ok, f"{where}: expected {schema}, got {value!r}"
        return
    assert isinstance(value, schema), f"{where}: expected {schema}, got {value!r}"
    if schema is NUM or schema is OPT_NUM:
        assert not isinstance(value, bool), f"{where}: a number, not {value!r}"
