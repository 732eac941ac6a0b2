"""What speech recognition produced: words with times, grouped in segments. Pure data, shared by the stages."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Word:
    start: float          # seconds of source time
    end: float
    text: str             # as the recogniser wrote it, leading space kept for languages that use spaces
    probability: float = 1.0


@dataclass(frozen=True, slots=True)
class Segment:
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0


@dataclass(frozen=True, slots=True)
class Transcript:
    language: str
    duration: float       # of the audio, seconds
    segments: tuple[Segment, ...] = ()

    @property
    def words(self) -> tuple[Word, ...]:
        return tuple(w for s in self.segments for w in s.words)

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.segments).strip()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Transcript:
        return cls(language=d["language"], duration=float(d["duration"]), segments=tuple(
            Segment(start=s["start"], end=s["end"], text=s["text"],
                    words=tuple(Word(**w) for w in s.get("words", ())),
                    avg_logprob=s.get("avg_logprob", 0.0), no_speech_prob=s.get("no_speech_prob", 0.0))
            for s in d.get("segments", ())))


@dataclass(frozen=True, slots=True)
class Energy:
    """Loudness envelope of the audio: one RMS value in dBFS per ``frame_s`` seconds (silence ≈ -90)."""

    frame_s: float
    db: tuple[float, ...]

    def at(self, t: float) -> float:
        i = int(t / self.frame_s)
        return self.db[i] if 0 <= i < len(self.db) else -90.0
