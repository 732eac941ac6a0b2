"""A small, strict reader of the Prometheus text exposition format (0.0.4), enough to check /metrics."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


@dataclass
class Family:
    name: str
    type: str = "untyped"
    help: str | None = None
    typed: bool = False
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)


def _unescape(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        c = value[i]
        if c == "\\":
            nxt = value[i + 1]
            if nxt not in '\\"n':
                raise ValueError(f"bad escape \\{nxt} in label value {value!r}")
            out.append("\n" if nxt == "n" else nxt)
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _LABEL.match(text, pos)
        if not m:
            raise ValueError(f"cannot read labels {text!r} at {pos}")
        name = m.group(1)
        if name in labels:
            raise ValueError(f"label {name} twice in {text!r}")
        labels[name] = _unescape(m.group(2))
        pos = m.end()
    return labels


def _value(text: str) -> float:
    if text in ("+Inf", "Inf"):
        return math.inf
    if text == "-Inf":
        return -math.inf
    if text == "NaN":
        return math.nan
    return float(text)


def _family_of(name: str, families: dict[str, Family]) -> Family | None:
    if name in families:
        return families[name]
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in families:
            fam = families[name[: -len(suffix)]]
            if fam.type in ("histogram", "summary"):
                return fam
    return None


def parse(text: str) -> dict[str, Family]:
    """Every family by name; raises ValueError on anything the format does not allow."""
    if text and not text.endswith("\n"):
        raise ValueError("the exposition must end with a newline")
    families: dict[str, Family] = {}
    seen_samples: set[str] = set()
    seen_series: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not _NAME.match(name):
                    raise ValueError(f"line {number}: bad metric name {name!r}")
                fam = families.setdefault(name, Family(name))
                if parts[1] == "HELP":
                    if fam.help is not None:
                        raise ValueError(f"line {number}: second HELP for {name}")
                    fam.help = parts[3] if len(parts) > 3 else ""
                else:
                    kind = parts[3].strip() if len(parts) > 3 else ""
                    if kind not in TYPES:
                        raise ValueError(f"line {number}: unknown type {kind!r}")
                    if name in seen_samples or fam.samples:
                        raise ValueError(f"line {number}: TYPE for {name} after its samples")
                    if fam.typed:
                        raise ValueError(f"line {number}: second TYPE for {name}")
                    fam.type, fam.typed = kind, True
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise ValueError(f"line {number}: not a sample: {line!r}")
        name, labels_text, value = m.group(1), m.group(3), m.group(4)
        labels = _labels(labels_text) if labels_text else {}
        for label in labels:
            if not _LABEL_NAME.match(label) or label.startswith("__"):
                raise ValueError(f"line {number}: bad label name {label!r}")
        fam = _family_of(name, families)
        if fam is None:
            fam = families.setdefault(name, Family(name))
        series = (name, tuple(sorted(labels.items())))
        if series in seen_series:
            raise ValueError(f"line {number}: duplicate series {series}")
        seen_series.add(series)
        seen_samples.add(name)
        fam.samples.append((labels, _value(value)))
    return families
