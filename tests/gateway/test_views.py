"""The pure JSON builders on their own: shapes, rates, plans, history, and what stays out."""

from __future__ import annotations

import json
from dataclasses import replace

from aicut.gateway import views
from aicut.gateway.facts import ActiveTaskFacts, MachineFacts
from aicut.gateway.redact import Redactor
from aicut.models import TaskRecord, TaskState
from tests.gateway import shapes

NOW = 1_800_000_000_000


def machine(address: str = "10.0.0.5:8005", **kw: object) -> MachineFacts:
    base = MachineFacts(address=address, priority=1, slots=2, busy=1, online=True, state="SERVING",
                        worker_id="gpu-1", rtt_ms=1.234, last_seen_unix_ms=NOW - 400, dispatched=10, succeeded=7,
                        failed=2, nvenc=True, gpus=("NVIDIA L4",), encoders=("nvenc", "x264"),
                        tasks=(ActiveTaskFacts("t1", 2, "RUNNING", "fetch", 42.123, NOW - 5000),))
    return replace(base, **kw)  # type: ignore[arg-type]


def record(**kw: object) -> TaskRecord:
    task = {"id": "t1", "kind": "SMART_CUT", "threadUrl": "https://bbs.example.com/thread-7-1-1.html",
            "spec": {"title": "口播 第一期", "coreText": "hello",
                     "sources": [{"url": "https://user:hunter22@cos.example.com/a.mp4?x=1", "name": "a.mp4",
                                  "kind": "VIDEO"}],
                     "cover": {"top": "上", "middle": "中", "bottom": "下"}}}
    result = {"stageSeconds": {"probe": 0.25, "fetch": 1.5, "zeta": 0.1},
              "machine": "gpu-1",
              "sources": [{"source": {"url": "https://cos.example.com/a.mp4", "name": "a.mp4"},
                           "media": {"container": "mov,mp4", "durationS": 2.0, "sizeBytes": "58489",
                                     "video": [{"codec": "h264", "width": 320, "height": 240, "fps": 25}],
                                     "audio": [{"codec": "aac", "sampleRate": 48000, "channels": 1}]},
                           "plan": {"source_duration": 60.0, "output_duration": 48.5, "flagged": False,
                                    "flag_reason": "", "keeps": [[0, 10], [12, 50.5]],
                                    "cuts": [{"start": 10, "end": 12, "reason": "pause", "text": ""}],
                                    "removed_by_reason": {"pause": 2.0, "filler": 9.5}}}],
              "outputs": [{"name": "a_cut.mp4", "kind": "video", "url": "https://cdn.example.com/a_cut.mp4",
                           "sizeBytes": "1000"}],
              "somethingNewer": {"x": 1}}
    base = TaskRecord(id="t1", attempt=2, state=TaskState.SUCCEEDED, task_json=json.dumps(task), worker="10.0.0.5:8005",
                      stage="done", percent=100.0, created_ms=NOW - 10_000, updated_ms=NOW, queued_ms=NOW - 9_000,
                      dispatched_ms=NOW - 8_000, started_ms=NOW - 7_900, finished_ms=NOW - 1_000,
                      result_json=json.dumps(result),
                      history="1 10.0.0.6:8005 LOST: worker offline for 5s\nretried by the operator")
    for k, v in kw.items():
        setattr(base, k, v)
    return base


def test_machine_view_has_the_documented_shape_and_values() -> None:
    status = views.machines_status([machine(), machine("10.0.0.6:8005", online=False, busy=0, tasks=(),
                                                        last_seen_unix_ms=0, state="OFFLINE")], NOW)
    shapes.check(status, shapes.MACHINES_STATUS)
    first, second = status["machines"]
    assert first["busy"] and first["slots_used"] == 1 and first["slots_total"] == 2
    assert first["heartbeat_age_s"] == 0.4 and first["tasks"][0]["percent"] == 42.1
    assert second["heartbeat_age_s"] is None and not second["online"]
    assert status["summary"] == {"total": 2, "online": 1, "offline": 1, "busy": 1, "idle": 0, "draining": 0,
                                 "ejected": 0, "slots_total": 2, "slots_used": 1}


def test_draining_and_ejected_are_told_apart() -> None:
    m = views.machine_view(machine(cordoned=True, ejected_until_unix_ms=NOW + 30_000), NOW)
    assert m["draining"] and m["cordoned"] and m["ejected"] and m["ejected_until_unix_ms"] == NOW + 30_000
    m = views.machine_view(machine(state="DRAINING", ejected_until_unix_ms=NOW - 1), NOW)
    assert m["draining"] and not m["cordoned"] and not m["ejected"] and m["ejected_until_unix_ms"] == 0


def test_signature_ignores_clocks_and_ping_jitter_but_not_progress_or_liveness() -> None:
    a = machine()
    sig = views.machines_signature([a], NOW)
    assert views.machines_signature([replace(a, last_seen_unix_ms=NOW - 10, rtt_ms=1.4)], NOW + 900) == sig
    assert views.machines_signature([replace(a, online=False)], NOW) != sig
    assert views.machines_signature([replace(a, busy=2)], NOW) != sig
    moved = (replace(a.tasks[0], percent=55.0),)
    assert views.machines_signature([replace(a, tasks=moved)], NOW) != sig
    assert views.machines_signature([replace(a, rtt_ms=25.0)], NOW) != sig
    # Heartbeats that stop show: the signature changes each second until the worker is declared offline.
    late = [views.machines_signature([a], NOW + ms) for ms in (500, 1_600, 2_700)]
    assert len({sig, *late}) == 3 and late[0] != late[1] != late[2]
    gone = replace(a, online=False)
    assert views.machines_signature([gone], NOW) == views.machines_signature([gone], NOW + 60_000)


def test_dispatch_stats_rates_and_spread() -> None:
    stats = views.dispatch_stats({"SUCCEEDED": 3, "FAILED": 1, "CANCELLED": 2},
                                 [machine(dispatched=3), machine("b:1", dispatched=1, succeeded=0, failed=0)])
    assert stats["success_rate"] == 0.75 and stats["failure_rate"] == 0.25 and stats["finished"] == 6
    assert [m["share"] for m in stats["per_machine"]] == [0.75, 0.25]
    assert stats["per_machine"][1]["success_rate"] is None
    empty = views.dispatch_stats({}, [])
    assert empty["success_rate"] is None and empty["per_machine"] == []


def test_cluster_status_shape() -> None:
    out = views.cluster_status(
        version="0.1.0", started_unix_ms=NOW - 60_000, now_unix_ms=NOW,
        counts={"QUEUED": 4, "RUNNING": 1, "SUCCEEDED": 9}, counters={"created": 14, "to:QUEUED": 15, "junk": 3},
        machines=[machine()], monitoring=views.monitoring_view(True),
        recent=[("1-0", {"kind": "task", "id": "t1", "attempt": "1", "to": "QUEUED", "ts": "5", "event": "created"})])
    shapes.check(out, shapes.CLUSTER_STATUS)
    assert out["queue_length"] == 4 and out["tasks"]["active"] == 1 and out["uptime_s"] == 60.0
    assert out["counters"]["entered"]["QUEUED"] == 15 and "junk" not in json.dumps(out["counters"])
    assert out["recent_events"][0]["task_id"] == "t1" and out["monitoring"]["last_check_unix_ms"] is None


def test_task_detail_reads_camel_case_results_plans_and_history() -> None:
    d = views.task_detail(record())
    shapes.check(d, shapes.TASK_DETAIL)
    assert [s["name"] for s in d["stages"]] == ["fetch", "probe", "zeta"]        # pipeline order, then the rest
    assert d["timeline"][-1] == {"step": "finished", "at_unix_ms": NOW - 1_000}
    assert d["durations"] == {"waiting_s": 1.0, "running_s": 6.9, "total_s": 9.0}
    assert d["media"][0]["size_bytes"] == 58489 and d["media"][0]["audio"][0]["sample_rate"] == 48000
    assert d["outputs"][0]["url"] == "https://cdn.example.com/a_cut.mp4"
    assert d["plans"] == [{"source_duration_s": 60.0, "output_duration_s": 48.5, "removed_s": 11.5,
                           "removed_by_reason": {"pause": 2.0, "filler": 9.5}, "cuts": 1, "keeps": 2,
                           "flagged": False, "flag_reason": ""}]
    assert d["history"][0] == {"attempt": 1, "worker": "10.0.0.6:8005", "outcome": "LOST",
                               "detail": "worker offline for 5s", "line": "1 10.0.0.6:8005 LOST: worker offline for 5s"}
    assert d["history"][1]["attempt"] is None and d["history"][1]["detail"] == "retried by the operator"
    assert d["spec"]["cover"] == {"top": "上", "middle": "中", "bottom": "下"}
    assert d["task"]["title"] == "口播 第一期" and d["error"] is None


def test_credentials_in_source_urls_never_reach_the_answer() -> None:
    text = json.dumps(views.task_detail(record()), ensure_ascii=False)
    assert "hunter22" not in text and "user:" not in text
    assert views.safe_url("https://u:p@h.example.com:8443/a.mp4?q=1") == "https://h.example.com:8443/a.mp4?q=1"
    assert views.safe_url("https://h.example.com/a.mp4") == "https://h.example.com/a.mp4"


def test_failed_task_summary_has_its_reason_and_broken_json_does_not_break_the_page() -> None:
    rec = record(state=TaskState.FAILED, error_code="HTTP_STATUS", error_message="404 from the server",
                 result_json="{not json", task_json="[]")
    summary = views.task_summary(rec)
    shapes.check(summary, shapes.TASK)
    assert summary["error"] == {"code": "HTTP_STATUS", "message": "404 from the server", "retryable": False}
    d = views.task_detail(rec)
    shapes.check(d, shapes.TASK_DETAIL)
    assert d["stages"] == [] and d["plans"] == []


def test_tasks_page_shape() -> None:
    page = views.tasks_page([record(), record(id="t2")], total=10, state="SUCCEEDED", offset=0, limit=2)
    shapes.check(page, shapes.TASKS_PAGE)


def test_event_view_takes_the_task_id_from_the_store_s_id_field() -> None:
    e = views.event_view("1700000000000-3", {"kind": "progress", "id": "t9", "attempt": "2", "stage": "fetch",
                                             "percent": "12.34", "ts": "1700000000001"})
    shapes.check(e, shapes.EVENT)
    assert (e["task_id"], e["attempt"], e["percent"], e["at_unix_ms"]) == ("t9", 2, 12.3, 1700000000001)
    w = views.event_view("5-0", {"kind": "worker", "worker": "h:1", "text": "online", "secret_field": "x"})
    assert w["text"] == "online" and "secret_field" not in json.dumps(w)
    assert views.valid_event_id("5-0") and not views.valid_event_id("$") and not views.valid_event_id("5")


def test_redactor_masks_secrets_as_written_and_as_json_escapes_them() -> None:
    redact = Redactor(["pa\"ss\\word-1", "tok3n-abc", "", "ab"])
    raw = json.dumps({"a": 'pa"ss\\word-1', "b": "x tok3n-abc y", "c": "ab"})
    out = redact(raw)
    assert "tok3n" not in out and "word-1" not in out and '"c": "ab"' in out
