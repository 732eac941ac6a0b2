"""The talking-head fixture itself: its ground truth matches the sound, and its frames say their own time."""

from __future__ import annotations

import wave
from pathlib import Path

import av
import numpy as np
import pytest

from aicut.pipeline.audio import load_audio
from tests.support.media import make_clip
from tests.support.talking_head import (
    CHINESE_SHORT,
    ENGLISH_60S,
    ENGLISH_SHORT,
    KINDS,
    LEAD_S,
    SPOKEN,
    TRAIL_S,
    GroundTruth,
    _lay_out,
    cached_talking_head,
    espeak_utterance,
    frame_image,
    read_frame_index,
    read_frame_time,
)


@pytest.fixture(scope="session")
def english_clip(tmp_path_factory: pytest.TempPathFactory) -> GroundTruth:
    return cached_talking_head(tmp_path_factory, ENGLISH_SHORT)


@pytest.fixture(scope="session")
def chinese_clip(tmp_path_factory: pytest.TempPathFactory) -> GroundTruth:
    return cached_talking_head(tmp_path_factory, CHINESE_SHORT, language="zh", name="talking_head_zh")


def _wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768, w.getframerate()


def _check_layout(truth: GroundTruth) -> None:
    samples, rate = _wav(truth.wav)
    assert rate == truth.sample_rate
    assert len(samples) == round(truth.duration * rate)
    pieces = truth.pieces
    assert all(a.end <= b.start + 1e-9 for a, b in zip(pieces, pieces[1:])), "pieces overlap or are out of order"
    assert pieces[0].start == pytest.approx(LEAD_S)
    assert truth.duration - pieces[-1].end == pytest.approx(TRAIL_S)
    for p in pieces:
        a, b = round(p.start * rate), round(p.end * rate)
        if p.kind == "pause":
            assert not samples[a:b].any(), f"sound inside the pause at {p.start:.2f}s"
        else:
            # Trimmed to the voiced samples with a 10 ms margin: loud within 20 ms of each edge.
            edge = int(0.02 * rate)
            assert np.abs(samples[a : a + edge]).max() > 0.005, f"{p.text!r} does not start at {p.start:.3f}"
            assert np.abs(samples[b - edge : b]).max() > 0.005, f"{p.text!r} does not end at {p.end:.3f}"
            assert not samples[a - 1 : a].any() and not samples[b : b + 1].any(), "silence must frame each piece"
    spoken = truth.spoken
    # Outside the pieces there is only silence: every sound sample belongs to a piece.
    mask = np.zeros(len(samples), bool)
    for p in spoken:
        mask[round(p.start * rate) : round(p.end * rate)] = True
    assert not samples[~mask].any()


def test_ground_truth_matches_the_wav(english_clip: GroundTruth) -> None:
    _check_layout(english_clip)
    assert {p.kind for p in english_clip.pieces} == set(KINDS)
    assert [p.kind for p in english_clip.of_kind("retake_first", "retake_second")] == ["retake_first", "retake_second"]
    stutter = english_clip.of_kind("stutter")[0]
    following = english_clip.pieces[english_clip.pieces.index(stutter) + 1]
    assert following.text.lower().startswith(stutter.text.lower() + " ")   # "the" + "The first step ..."
    assert following.start - stutter.end == pytest.approx(0.1, abs=1e-3)


def test_piece_lengths_are_espeak_lengths(english_clip: GroundTruth) -> None:
    for p in english_clip.spoken:
        samples, rate = espeak_utterance.__wrapped__(p.text)     # synthesize again, uncached: espeak is deterministic
        assert p.duration == pytest.approx(len(samples) / rate, abs=1e-9), p.text


def test_ground_truth_json_round_trips(english_clip: GroundTruth) -> None:
    loaded = GroundTruth.load(english_clip.clip.with_suffix(".json"))
    assert loaded == english_clip
    assert loaded.clip.is_file() and loaded.wav.is_file()


def test_mp4_sound_is_the_wav_in_sync(english_clip: GroundTruth) -> None:
    """The AAC track decoded from the MP4 lines up with the WAV (within 5 ms), so piece times hold for the clip."""
    ref, rate = _wav(english_clip.wav)
    got = load_audio(english_clip.clip)                          # 16 kHz mono, sample 0 at 0:00
    assert len(got) / 16000 == pytest.approx(english_clip.duration, abs=0.03)
    ref16 = np.interp(np.arange(len(got)) / 16000, np.arange(len(ref)) / rate, ref).astype(np.float32)
    a, b = round(0.3 * 16000), round(8.0 * 16000)
    window = got[a:b]
    lags = range(-160, 161, 4)                                   # ±10 ms in 0.25 ms steps
    score = [float(np.dot(window, ref16[a + lag : b + lag])) for lag in lags]
    best = list(lags)[int(np.argmax(score))]
    assert abs(best) <= 80, f"the MP4 sound is {best / 16:.1f} ms off the ground truth"
    for p in english_clip.of_kind("pause"):
        inner = got[round((p.start + 0.05) * 16000) : round((p.end - 0.05) * 16000)]
        assert np.abs(inner).max() < 0.01, "the pause is not silent in the MP4"


def test_every_frame_reads_its_own_time(english_clip: GroundTruth) -> None:
    fps = english_clip.fps
    with av.open(str(english_clip.clip)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        n = 0
        for i, frame in enumerate(container.decode(stream)):
            assert read_frame_index(frame) == i
            assert read_frame_time(frame, fps) == pytest.approx(frame.time, abs=1e-6)
            n += 1
    assert n / fps >= english_clip.duration and (n - 1) / fps < english_clip.duration


@pytest.mark.parametrize(("crf", "scale"), [(23, 1.0), (40, 1.0), (28, 0.5)])
def test_frame_code_survives_x264(tmp_path: Path, crf: int, scale: float) -> None:
    """Through x264 at normal and poor quality, and scaled to half size, every code reads back exactly."""
    width, height, fps = 320, 240, 25
    indices = [0, 1, 2, 255, 256, 1000, 4097, 32768, 65534, 21845, 43690, 12345]
    path = tmp_path / f"code_{crf}.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = int(width * scale), int(height * scale), "yuv420p"
        stream.options = {"preset": "veryfast", "crf": str(crf)}
        chroma = np.full((height // 2, width), 128, np.uint8)
        for pts, index in enumerate(indices):
            frame = av.VideoFrame.from_ndarray(np.concatenate([frame_image(index, fps, width, height), chroma]),
                                               format="yuv420p")
            frame = frame.reformat(width=stream.width, height=stream.height)
            frame.pts = pts
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with av.open(str(path)) as container:
        assert [read_frame_index(f) for f in container.decode(video=0)] == indices


def test_a_frame_without_a_code_is_refused(clip_path: Path) -> None:
    with av.open(str(clip_path)) as container:
        frame = next(container.decode(video=0))
    with pytest.raises(ValueError, match="no frame-time code"):
        read_frame_time(frame, 25)


def test_the_benchmark_script_is_about_a_minute() -> None:
    """The 60 s script's layout (speech synthesized, no video encoded): every kind, several times."""
    texts = {str(v) for k, v in ENGLISH_60S if k in SPOKEN}
    utterances = {t: espeak_utterance(t) for t in texts}
    audio, pieces = _lay_out(ENGLISH_60S, utterances, 22050)
    assert 55 <= len(audio) / 22050 <= 75
    kinds = [p.kind for p in pieces]
    assert kinds.count("pause") >= 3 and kinds.count("filler") >= 4
    assert kinds.count("stutter") >= 2 and kinds.count("retake_first") == kinds.count("retake_second") >= 2


def test_chinese_clip(chinese_clip: GroundTruth) -> None:
    _check_layout(chinese_clip)
    assert chinese_clip.language == "zh"
    assert {p.kind for p in chinese_clip.pieces} == set(KINDS)


def test_a_zero_hertz_tone_is_silence(tmp_path: Path) -> None:
    """The no-speech tests' silent clip: make_clip with a 0 Hz tone writes digital silence."""
    clip = make_clip(tmp_path / "silent.mp4", seconds=1.0, tone_hz=0.0)
    assert np.abs(load_audio(clip)).max() < 1e-4
