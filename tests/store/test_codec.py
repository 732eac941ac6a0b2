"""The pure parts of the store: record (de)serialisation, key names, URL redaction, backoff."""

from __future__ import annotations

import pytest

from aicut.models import TaskRecord, TaskState
from aicut.store import keys as K
from aicut.store.codec import (
    encode_fields,
    encode_value,
    pairs_to_dict,
    parse_stream_entries,
    record_from_hash,
    record_to_hash,
    transition_fields,
)
from aicut.store.tasks import backoff_s, redact_url


def full_record() -> TaskRecord:
    return TaskRecord(
        id="tid-42", attempt=3, state=TaskState.RUNNING, task_json='{"id": "tid-42", "spec": {"title": "口播"}}',
        origin="forum", worker="vm:8005", stage="render", percent=0.1 + 0.2, created_ms=1_700_000_000_123,
        updated_ms=1_700_000_000_456, queued_ms=1, dispatched_ms=2, started_ms=3, finished_ms=0,
        result_json="", error_code="TASK_CRASHED", error_message="进程崩溃\nline 2", retryable=True,
        history="1 vm:8005 FAILED TASK_CRASHED\n2 vm:8006 FAILED TASK_CRASHED",
    )


def test_every_field_is_a_string_and_round_trips() -> None:
    rec = full_record()
    data = record_to_hash(rec)
    assert all(isinstance(v, str) for v in data.values())
    assert data["state"] == "RUNNING" and data["retryable"] == "1" and data["attempt"] == "3"
    assert record_from_hash(data) == rec
    assert record_from_hash(data).percent == 0.1 + 0.2      # floats keep every bit


def test_defaults_round_trip_and_bool_false_is_zero() -> None:
    rec = TaskRecord(id="x")
    data = record_to_hash(rec)
    assert data["retryable"] == "0" and data["percent"] == "0.0"
    assert record_from_hash(data) == rec


def test_missing_fields_take_defaults_and_extra_fields_are_ignored() -> None:
    rec = record_from_hash({"id": "x", "state": "FAILED", "op": "abc", "from_the_future": "1", "created_ms": ""})
    assert rec == TaskRecord(id="x", state=TaskState.FAILED)


@pytest.mark.parametrize("data", [{"state": "QUEUED"}, {"id": "x", "attempt": "two"}, {"id": "x", "state": "DONE"}])
def test_bad_hashes_are_refused(data: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        record_from_hash(data)


def test_encode_value() -> None:
    assert encode_value(True) == "1" and encode_value(False) == "0"
    assert encode_value(TaskState.CANCELLED) == "CANCELLED"
    assert encode_value(7) == "7" and encode_value(2.5) == "2.5" and encode_value("中文") == "中文"
    with pytest.raises(TypeError):
        encode_value(None)


def test_encode_fields_refuses_unknown_and_managed_fields() -> None:
    assert encode_fields({"worker": "w", "retryable": True}) == {"worker": "w", "retryable": "1"}
    for bad in ({"nope": 1}, {"state": "RUNNING"}, {"attempt": 2}, {"id": "y"}, {"updated_ms": 1}):
        with pytest.raises(ValueError):
            encode_fields(bad)


def test_transition_fields_stamp_the_entered_state_unless_given() -> None:
    assert transition_fields(TaskState.RUNNING, 99, {}) == {"started_ms": "99"}
    assert transition_fields(TaskState.FAILED, 99, {"error_code": "X"}) == {"finished_ms": "99", "error_code": "X"}
    assert transition_fields(TaskState.QUEUED, 99, {"queued_ms": 5}) == {"queued_ms": "5"}
    assert transition_fields(TaskState.DISPATCHED, 99, {})["dispatched_ms"] == "99"


def test_stream_and_flat_reply_helpers() -> None:
    assert pairs_to_dict(["a", "1", "b", "2"]) == {"a": "1", "b": "2"}
    assert pairs_to_dict(None) == {}
    assert parse_stream_entries([("1-0", {"a": "1"}), ["2-0", ["b", "2"]]]) == [("1-0", {"a": "1"}),
                                                                               ("2-0", {"b": "2"})]


def test_key_names() -> None:
    keys = K.Keys("p:")
    assert keys.task("abc") == "p:task:abc"
    assert keys.state(TaskState.SUCCEEDED) == "p:state:SUCCEEDED"
    assert keys.all_states() == [f"p:state:{s.value}" for s in TaskState]
    assert (keys.ready, keys.tasks, keys.flags, keys.events, keys.counters) == (
        "p:ready", "p:tasks", "p:flags", "p:events", "p:counters")
    assert keys.seen("41") == "p:seen:41"
    assert K.Keys().task("a") == "aicut:task:a"
    assert K.Keys("{ai*}:").pattern() == "{ai\\*}:*"


def test_redact_url_hides_only_the_password() -> None:
    assert redact_url("redis://:s3cret@10.0.0.5:6380/2") == "redis://:***@10.0.0.5:6380/2"
    assert redact_url("rediss://user:s3cret@host/0") == "rediss://user:***@host/0"
    assert redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert "s3cret" not in redact_url("redis://u:s3cret@[::1]:6379")


def test_backoff_grows_with_jitter_up_to_the_cap() -> None:
    for failures in range(1, 30):
        ceiling = min(K.RETRY_CAP_S, K.RETRY_BASE_S * 2 ** (failures - 1))
        assert ceiling / 2 <= backoff_s(failures) <= ceiling
    # The default window holds enough tries to notice a restart within about a second of it ending.
    assert K.RETRY_CAP_S <= 1.0 and K.RETRY_WINDOW_S >= 30
