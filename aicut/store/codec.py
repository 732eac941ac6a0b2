"""Pure conversions between ``TaskRecord`` and the flat string hash Redis keeps, and of stream replies."""

from __future__ import annotations

import dataclasses
import enum
import typing
from collections.abc import Callable, Mapping
from typing import Any

from aicut.models import TaskRecord, TaskState

# Fields the store manages itself; callers change them through transition()'s ``to`` and ``new_attempt``.
MANAGED_FIELDS = frozenset({"id", "state", "attempt", "updated_ms"})

# The timestamp field transition() stamps with "now" on entering each state (unless the caller sets it).
STATE_STAMP: dict[TaskState, str] = {
    TaskState.QUEUED: "queued_ms",
    TaskState.DISPATCHED: "dispatched_ms",
    TaskState.RUNNING: "started_ms",
    TaskState.SUCCEEDED: "finished_ms",
    TaskState.FAILED: "finished_ms",
    TaskState.CANCELLED: "finished_ms",
}

_TYPES: dict[str, Any] = typing.get_type_hints(TaskRecord)
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(TaskRecord))


def encode_value(value: object) -> str:
    """One field value as Redis keeps it: enums by value, bools "1"/"0", floats in round-trip form."""
    if isinstance(value, bool):          # before int: bool is an int
        return "1" if value else "0"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (int, str)):
        return str(value)
    raise TypeError(f"cannot store a {type(value).__name__} in a task hash: {value!r}")


def _encoder(tp: Any) -> Callable[[Any], str]:
    if tp is bool:
        return lambda v: "1" if v else "0"
    if tp is float:
        return lambda v: repr(float(v))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return lambda v: tp(v).value
    return str if tp in (int, str) else encode_value


def _decoder(tp: Any) -> Callable[[str], object]:
    if tp is bool:
        return lambda s: s == "1"
    if tp is int:
        return lambda s: int(s) if s else 0
    if tp is float:
        return lambda s: float(s) if s else 0.0
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp
    return str


# Per-field converters, chosen once from the dataclass's annotations (record_to_hash runs for every task written).
_ENCODERS: dict[str, Callable[[Any], str]] = {name: _encoder(_TYPES[name]) for name in FIELD_NAMES}
_DECODERS: dict[str, Callable[[str], object]] = {name: _decoder(_TYPES[name]) for name in FIELD_NAMES}


def record_to_hash(rec: TaskRecord) -> dict[str, str]:
    """Every field of ``rec`` as a string."""
    return {name: encode(getattr(rec, name)) for name, encode in _ENCODERS.items()}


def record_from_hash(data: Mapping[str, str]) -> TaskRecord:
    """A TaskRecord from a task hash; fields it lacks take their defaults, fields it has extra are ignored."""
    # Extra fields are the store's own bookkeeping (``op``) or come from a newer version: ignoring them keeps an
    # older coordinator able to read its data.
    values: dict[str, object] = {}
    for name in FIELD_NAMES:
        raw = data.get(name)
        if raw is None:
            continue
        try:
            values[name] = _DECODERS[name](raw)
        except ValueError as exc:
            raise ValueError(f"task hash field {name}={raw!r} is not a valid {_TYPES[name]}") from exc
    if "id" not in values:
        raise ValueError("task hash has no id field")
    return TaskRecord(**values)  # type: ignore[arg-type]


def encode_fields(fields: Mapping[str, object]) -> dict[str, str]:
    """Validate and encode the ``fields`` a caller passes to transition()."""
    out: dict[str, str] = {}
    for name, value in fields.items():
        if name not in _DECODERS:
            raise ValueError(f"TaskRecord has no field {name!r}")
        if name in MANAGED_FIELDS:
            raise ValueError(f"field {name!r} is managed by the store; use transition(to=…, new_attempt=…)")
        out[name] = encode_value(value)
    return out


def transition_fields(to: TaskState, now_ms: int, fields: Mapping[str, object]) -> dict[str, str]:
    """The encoded fields a transition writes: the caller's, plus the entered state's timestamp unless given."""
    out = {STATE_STAMP[to]: str(now_ms)}
    out.update(encode_fields(fields))
    return out


def pairs_to_dict(flat: list[str] | None) -> dict[str, str]:
    """A Lua HGETALL reply (a flat [k1, v1, k2, v2 …] list) as a dict."""
    if not flat:
        return {}
    return dict(zip(flat[0::2], flat[1::2]))


def parse_stream_entries(entries: Any) -> list[tuple[str, dict[str, str]]]:
    """XRANGE/XREAD entries ([(id, {field: value}) …] or [[id, [f, v …]] …]) as (id, dict) pairs."""
    out: list[tuple[str, dict[str, str]]] = []
    for entry_id, fields in entries or ():
        if isinstance(fields, Mapping):
            out.append((entry_id, dict(fields)))
        else:
            out.append((entry_id, pairs_to_dict(list(fields or ()))))
    return out
