"""The edit decision list: what is kept, what is cut and why, and the output timeline. Pure data."""

from __future__ import annotations

import bisect
import enum
from dataclasses import dataclass
from typing import Any


class Reason(str, enum.Enum):
    PAUSE = "pause"                  # a long pause, shortened to a natural gap
    FILLER = "filler"                # 嗯 啊 呃 那个 / um uh er …
    STUTTER = "stutter"              # a repeated word: "is, is"
    RETAKE = "retake"                # a sentence said again almost verbatim: the earlier take goes
    NOISE = "noise"                  # a voiced stretch with no words (breath, cough, mumble)
    LEADING = "leading_silence"
    TRAILING = "trailing_silence"


@dataclass(frozen=True, slots=True)
class Keep:
    """A range of source time that stays, in seconds."""

    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Cut:
    """A range of source time that goes, and why."""

    start: float
    end: float
    reason: Reason
    text: str = ""                   # the words removed, if any

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class EditPlan:
    """Keep-ranges (sorted, disjoint) and every removed range with its reason."""

    source_duration: float
    keeps: tuple[Keep, ...]
    cuts: tuple[Cut, ...] = ()
    flagged: bool = False            # the plan would remove suspiciously much; see flag_reason
    flag_reason: str = ""

    @property
    def output_duration(self) -> float:
        return sum(k.duration for k in self.keeps)

    def removed_by_reason(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for c in self.cuts:
            out[c.reason.value] = out.get(c.reason.value, 0.0) + c.duration
        return out

    def to_output_time(self, t: float) -> float | None:
        """Where source time ``t`` lands in the output; None when it was cut."""
        starts = [k.start for k in self.keeps]
        i = bisect.bisect_right(starts, t) - 1
        if i < 0 or t > self.keeps[i].end:
            return None
        return sum(k.duration for k in self.keeps[:i]) + (t - self.keeps[i].start)

    def to_dict(self) -> dict[str, Any]:
        return {"source_duration": self.source_duration, "output_duration": self.output_duration,
                "flagged": self.flagged, "flag_reason": self.flag_reason,
                "keeps": [[k.start, k.end] for k in self.keeps],
                "cuts": [{"start": c.start, "end": c.end, "reason": c.reason.value, "text": c.text}
                         for c in self.cuts],
                "removed_by_reason": self.removed_by_reason()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EditPlan:
        return cls(source_duration=d["source_duration"], keeps=tuple(Keep(a, b) for a, b in d["keeps"]),
                   cuts=tuple(Cut(c["start"], c["end"], Reason(c["reason"]), c.get("text", "")) for c in d["cuts"]),
                   flagged=d.get("flagged", False), flag_reason=d.get("flag_reason", ""))


@dataclass(frozen=True, slots=True)
class Cue:
    """One subtitle on the output timeline."""

    start: float
    end: float
    text: str
