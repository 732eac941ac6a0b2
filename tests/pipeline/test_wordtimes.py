"""Word edges snapped out of quiet audio."""

from __future__ import annotations

import pytest

from aicut.pipeline.transcript import Energy, Segment, Transcript, Word
from aicut.pipeline.wordtimes import RefineOptions, quiet_threshold, refine_word_times

F = 0.01


def envelope(loud: list[tuple[float, float]], duration: float, floor: float = -90.0, level: float = -20.0) -> Energy:
    n = int(round(duration / F))
    return Energy(F, tuple(level if any(a <= i * F < b for a, b in loud) else floor for i in range(n)))


def transcript(*words: tuple[float, float, str]) -> Transcript:
    ws = tuple(Word(a, b, t) for a, b, t in words)
    return Transcript("en", 10.0, (Segment(ws[0].start, ws[-1].end, "".join(w.text for w in ws), ws),))


def test_a_word_starting_inside_a_pause_starts_where_the_sound_does() -> None:
    energy = envelope([(1.0, 2.0), (4.0, 5.0)], 6.0)
    t = refine_word_times(transcript((1.0, 2.0, " one"), (3.4, 4.6, " two")), energy)
    two = t.words[1]
    assert two.start == pytest.approx(4.0, abs=F) and two.end == pytest.approx(4.6)


def test_a_word_running_into_the_silence_after_it_ends_with_the_sound() -> None:
    energy = envelope([(1.0, 2.0)], 4.0)
    one = refine_word_times(transcript((1.0, 2.6, " one")), energy).words[0]
    assert one.start == pytest.approx(1.0) and one.end == pytest.approx(2.0, abs=F)


def test_loud_edges_zero_length_words_and_long_shifts_are_left_alone() -> None:
    energy = envelope([(1.0, 2.0)], 5.0)
    words = ((1.2, 1.8, " loud"), (2.5, 2.5, " um"), (2.2, 4.5, " silent"))
    t = refine_word_times(transcript(*words), energy, RefineOptions(max_shift_s=0.5))
    assert [(w.start, w.end) for w in t.words] == [(1.2, 1.8), (2.5, 2.5), (2.2, 4.5)]


def test_edges_never_cross() -> None:
    energy = envelope([(1.0, 1.05)], 3.0)
    w = refine_word_times(transcript((0.5, 2.0, " x")), energy).words[0]
    assert w.start < w.end and w.end - w.start >= 0.02


def test_threshold_follows_the_noise_floor() -> None:
    assert quiet_threshold(envelope([(0, 1)], 10, floor=-60)) == pytest.approx(-48)
    assert quiet_threshold(envelope([(0, 1)], 10, floor=-20, level=-10)) == -30   # capped
    assert refine_word_times(transcript((1, 2, " a")), None).words[0] == Word(1, 2, " a")
