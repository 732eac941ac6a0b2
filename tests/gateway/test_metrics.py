"""``/metrics`` rendering on its own: valid exposition text with HELP and TYPE for every family."""

from __future__ import annotations

from aicut.gateway import metrics
from aicut.gateway.facts import MachineFacts
from tests.gateway import promtext

NOW = 1_800_000_000_000


def test_render_is_valid_prometheus_text_with_every_family_typed() -> None:
    machines = [MachineFacts(address='odd"host\\name:8005', priority=2, slots=2, busy=1, online=True,
                             state="SERVING", rtt_ms=2.5, last_seen_unix_ms=NOW - 500, dispatched=4, succeeded=3,
                             failed=1, cordoned=True, ejected_until_unix_ms=NOW + 1000),
                MachineFacts(address="b:8005", priority=1, slots=1, busy=0, online=False, state="OFFLINE")]
    text = metrics.render(counts={"QUEUED": 7, "SUCCEEDED": 2}, counters={"created": 9, "to:QUEUED": 11},
                          machines=machines, monitoring=True, now_unix_ms=NOW, sse_clients=3)
    families = promtext.parse(text)
    for fam in families.values():
        assert fam.help, fam.name
        assert fam.typed and fam.type in ("counter", "gauge"), fam.name
        if fam.type == "counter":
            assert fam.name.endswith("_total"), fam.name

    def value(name: str, **labels: str) -> float:
        return next(v for lab, v in families[name].samples if lab == labels)

    assert value("aicut_tasks", state="QUEUED") == 7 and value("aicut_tasks", state="RUNNING") == 0
    assert value("aicut_queue_length") == 7
    assert value("aicut_worker_up", worker='odd"host\\name:8005') == 1      # escaped and read back
    assert value("aicut_worker_up", worker="b:8005") == 0
    assert value("aicut_worker_rtt_seconds", worker="b:8005") == 0
    assert value("aicut_worker_rtt_seconds", worker='odd"host\\name:8005') == 0.0025
    assert value("aicut_worker_dispatched_total", worker='odd"host\\name:8005') == 4
    assert value("aicut_worker_ejected", worker='odd"host\\name:8005') == 1
    assert value("aicut_worker_draining", worker='odd"host\\name:8005') == 1
    assert value("aicut_task_transitions_total", state="QUEUED") == 11
    assert value("aicut_monitoring_enabled") == 1 and value("aicut_gateway_event_clients") == 3
    assert len(families["aicut_worker_heartbeat_age_seconds"].samples) == 1   # never-seen workers have no age


def test_the_parser_rejects_what_prometheus_would() -> None:
    import pytest

    for bad in ("# TYPE x gauge\nx 1\n# TYPE x gauge\n", "x{a=\"1\"} one\n", "x 1", "# TYPE x nonsense\n",
                "x 1\n# TYPE x gauge\n", 'x{a="1",a="2"} 1\n', "x 1\nx 2\n"):
        with pytest.raises(ValueError):
            promtext.parse(bad)
