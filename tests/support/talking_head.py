"""Talking-head clips with known ground truth: real synthesized speech, pauses, fillers, a stutter and a retake.

Every spoken piece is synthesized on its own (espeak-ng for English; the shared zh-tts tool for Mandarin), trimmed to
its voiced samples, and laid on the timeline by this module, so each piece's start and end are exact sample counts —
no alignment is needed. The video track draws each frame's index as a row of big black and white blocks (robust to
x264) plus a readable number, and :func:`read_frame_time` reads it back, so a test can check audio/video sync after
any cut.

Tests get clips through :func:`cached_talking_head` (built once per session and script, in the session's temp dir);
the ready-made fixtures ``english_clip``, ``english_clip_60s`` and ``chinese_clip`` can be imported into a conftest.
:func:`build_benchmark_clip` writes the ~60 s clip anywhere, for benchmarks.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import av
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
KINDS = ("sentence", "pause", "filler", "stutter", "retake_first", "retake_second")
SPOKEN = frozenset(KINDS) - {"pause"}

# A script is a sequence of steps: (kind, text) for something said, ("pause", seconds) for a long pause that a cut
# should shorten, and ("gap", seconds) to set the silence before the next spoken piece (NATURAL_GAP_S otherwise).
Step = tuple[str, "str | float"]
NATURAL_GAP_S = 0.3
LEAD_S = 0.5
TRAIL_S = 0.8

ENGLISH_SHORT: tuple[Step, ...] = (
    ("sentence", "Hello everyone, and welcome back to my channel."),
    ("pause", 2.5),
    ("filler", "um"),
    ("sentence", "Today I want to talk about making short videos."),
    ("filler", "uh"),
    ("stutter", "the"),
    ("gap", 0.1),
    ("sentence", "The first step is to pick a clear topic."),
    ("pause", 2.5),
    ("retake_first", "The second step is to write a script."),
    ("gap", 0.8),
    ("retake_second", "The second step is to write a short script."),
    ("sentence", "Thanks for watching, and see you next time."),
)

# About 60 s: what the end-to-end benchmark cuts.
ENGLISH_60S: tuple[Step, ...] = (
    ("sentence", "Hello everyone, and welcome back to my channel."),
    ("pause", 2.5),
    ("filler", "um"),
    ("sentence", "Today I want to talk about making short videos for the forum."),
    ("sentence", "Many people ask me how I plan a video before I record it."),
    ("filler", "uh"),
    ("stutter", "the"),
    ("gap", 0.1),
    ("sentence", "The first step is to pick a clear topic."),
    ("pause", 3.0),
    ("sentence", "A good topic is something you know well and can explain in one minute."),
    ("filler", "um"),
    ("retake_first", "The second step is to write a script."),
    ("gap", 0.8),
    ("retake_second", "The second step is to write a short script."),
    ("sentence", "Read it aloud a few times so that it sounds natural."),
    ("pause", 2.5),
    ("stutter", "I"),
    ("gap", 0.1),
    ("sentence", "I always keep my sentences short and simple."),
    ("filler", "uh"),
    ("sentence", "The third step is to find a quiet room with soft light."),
    ("retake_first", "Then you can start recording with your phone."),
    ("gap", 0.8),
    ("retake_second", "Then you can start recording with your phone on a stand."),
    ("pause", 2.5),
    ("sentence", "Do not worry about small mistakes, because the editor removes them."),
    ("filler", "um"),
    ("sentence", "Thanks for watching, and see you next time."),
)

CHINESE_SHORT: tuple[Step, ...] = (
    ("sentence", "大家好，欢迎回到我们的频道。"),
    ("pause", 2.5),
    ("filler", "嗯"),
    ("sentence", "今天我们来聊一聊怎么做好一个短视频。"),
    ("filler", "那个"),
    ("stutter", "我"),
    ("gap", 0.1),
    ("sentence", "我觉得第一步是选一个清楚的主题。"),
    ("pause", 2.5),
    ("retake_first", "第二步是写一个脚本。"),
    ("gap", 0.8),
    ("retake_second", "第二步是写一个简短的脚本。"),
    ("sentence", "谢谢大家的观看，我们下次再见。"),
)


@dataclass(frozen=True, slots=True)
class Piece:
    """One stretch of the clip: something said (its voiced samples) or a long pause, in seconds of source time."""

    kind: str
    start: float
    end: float
    text: str = ""

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class GroundTruth:
    """What a talking-head clip holds and where; saved as ``<name>.json`` beside ``<name>.mp4`` and ``<name>.wav``."""

    language: str
    duration: float                  # of the sound track, seconds (the video covers it, rounded up to a frame)
    fps: int
    width: int
    height: int
    sample_rate: int                 # of the WAV, where piece times are exact sample counts
    pieces: tuple[Piece, ...]
    clip: Path = field(default=Path())
    wav: Path = field(default=Path())

    def of_kind(self, *kinds: str) -> tuple[Piece, ...]:
        """The pieces of the given kinds, in time order."""
        return tuple(p for p in self.pieces if p.kind in kinds)

    @property
    def spoken(self) -> tuple[Piece, ...]:
        return tuple(p for p in self.pieces if p.kind in SPOKEN)

    def piece_at(self, t: float, slack: float = 0.0) -> Piece | None:
        """The piece that holds source time ``t`` (widened by ``slack`` on each side), if any."""
        for p in self.pieces:
            if p.start - slack <= t <= p.end + slack:
                return p
        return None

    def to_json(self) -> str:
        d = asdict(self)
        d["clip"], d["wav"] = self.clip.name, self.wav.name
        return json.dumps(d, ensure_ascii=False, indent=1)

    @classmethod
    def load(cls, path: Path) -> GroundTruth:
        """Read a ground truth JSON; its clip and WAV are beside it."""
        d = json.loads(Path(path).read_text(encoding="utf-8"))
        pieces = tuple(Piece(**p) for p in d.pop("pieces"))
        return cls(**{**d, "pieces": pieces, "clip": Path(path).parent / d["clip"],
                      "wav": Path(path).parent / d["wav"]})


class FixtureUnavailable(RuntimeError):
    """A fixture's tool (espeak-ng, zh-tts) is not installed here; tests skip with this message."""


# --- frame-time code -------------------------------------------------------------------------------------------------

CODE_BITS = 16                        # 65535 frames: 43 minutes at 25 fps
_BLOCKS = CODE_BITS + 3               # white guard, bits MSB first, even parity, black guard
_BAND = (0.03, 0.20)                  # the code's rows, as fractions of the height
_WHITE, _BLACK, _GRAY = 235, 16, 110  # video-range luma
# 3x5 digits for the readable number (rows top to bottom, 3 bits each).
_FONT = {
    "0": (7, 5, 5, 5, 7), "1": (2, 6, 2, 2, 7), "2": (7, 1, 7, 4, 7), "3": (7, 1, 7, 1, 7), "4": (5, 5, 7, 1, 1),
    "5": (7, 4, 7, 1, 7), "6": (7, 4, 7, 5, 7), "7": (7, 1, 1, 1, 1), "8": (7, 5, 7, 5, 7), "9": (7, 5, 7, 1, 7),
    ".": (0, 0, 0, 0, 2), "s": (0, 3, 6, 1, 6), " ": (0, 0, 0, 0, 0),
}


def _code_blocks(index: int) -> list[int]:
    if not 0 <= index < 2**CODE_BITS:
        raise ValueError(f"frame index {index} does not fit in {CODE_BITS} bits")
    bits = [(index >> (CODE_BITS - 1 - k)) & 1 for k in range(CODE_BITS)]
    return [1, *bits, sum(bits) % 2, 0]


def _block_span(k: int, width: int) -> tuple[int, int]:
    return k * width // _BLOCKS, (k + 1) * width // _BLOCKS


def _draw_text(img: np.ndarray, text: str, x: int, y: int, scale: int) -> None:
    for ch in text:
        for row, bits in enumerate(_FONT[ch]):
            for col in range(3):
                if bits >> (2 - col) & 1:
                    img[y + row * scale : y + (row + 1) * scale, x + col * scale : x + (col + 1) * scale] = _WHITE
        x += 4 * scale


def frame_image(index: int, fps: int, width: int, height: int) -> np.ndarray:
    """Frame ``index`` as video-range luma: the time code on top, its number and time below, a moving bar."""
    img = np.full((height, width), _GRAY, np.uint8)
    img += (np.arange(width) // 8).astype(np.uint8)[None, :]      # texture, so the encoder has work to do
    top, bottom = int(_BAND[0] * height), int(_BAND[1] * height)
    for k, bit in enumerate(_code_blocks(index)):
        a, b = _block_span(k, width)
        img[top:bottom, a:b] = _WHITE if bit else _BLACK
    scale = max(2, height // 60)
    _draw_text(img, f"{index:05d} {index / fps:7.2f}s", width // 20, bottom + 2 * scale, scale)
    bar = (index * 4) % max(1, width - 20)
    img[int(0.8 * height) : int(0.9 * height), bar : bar + 20] = _WHITE
    return img


def read_frame_index(frame: av.VideoFrame) -> int:
    """The index a fixture frame was made with; ValueError when the frame carries no valid code."""
    gray = frame.to_ndarray(format="gray")
    height, width = gray.shape
    top, bottom = int(_BAND[0] * height), int(_BAND[1] * height)
    inner = max(1, (bottom - top) // 4)
    band = gray[top + inner : bottom - inner].astype(np.float32)
    bits = []
    for k in range(_BLOCKS):
        a, b = _block_span(k, width)
        margin = max(1, (b - a) // 4)
        # to_ndarray("gray") gives full-range luma whatever the frame's format: white ≈ 255, black ≈ 0.
        bits.append(1 if band[:, a + margin : b - margin].mean() > 128 else 0)
    payload = bits[1 : 1 + CODE_BITS]
    if bits[0] != 1 or bits[-1] != 0 or sum(payload) % 2 != bits[-2]:
        raise ValueError("this frame carries no frame-time code (guards or parity do not match)")
    return int("".join(map(str, payload)), 2)


def read_frame_time(frame: av.VideoFrame, fps: float) -> float:
    """The source time, in seconds, of a fixture frame: the index drawn into it divided by ``fps``."""
    return read_frame_index(frame) / fps


# --- speech ----------------------------------------------------------------------------------------------------------


def _trim(samples: np.ndarray, rate: int, threshold: float = 0.01, margin_s: float = 0.01) -> np.ndarray:
    """The voiced part of one synthesized utterance: TTS engines add their own silence around it."""
    loud = np.flatnonzero(np.abs(samples) > threshold)
    if loud.size == 0:
        raise ValueError("the synthesizer produced silence")
    margin = int(margin_s * rate)
    return samples[max(0, loud[0] - margin) : loud[-1] + margin + 1]


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise ValueError(f"{path}: expected 16-bit mono")
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return data.astype(np.float32) / 32768.0, w.getframerate()


def _write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1.0, 32767 / 32768) * 32768).astype("<i2").tobytes())


@functools.cache
def espeak_utterance(text: str, voice: str = "en-us", words_per_minute: int = 150) -> tuple[np.ndarray, int]:
    """One utterance from espeak-ng, trimmed to its voiced samples: (float32 samples, rate)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise FixtureUnavailable("espeak-ng is not installed (Debian package espeak-ng; .ci/run installs it)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "say.wav"
        subprocess.run([exe, "-v", voice, "-s", str(words_per_minute), "-w", str(out), text],
                       check=True, capture_output=True, timeout=60)
        samples, rate = _read_wav(out)
    return _trim(samples, rate), rate


def zh_tts_paths() -> tuple[Path, Path, Path]:
    """(python, zh_tts.py, assets) of the shared zh-tts tool; FixtureUnavailable when it has not been set up."""
    script = Path(os.environ.get("AICUT_ZH_TTS_SCRIPT") or ROOT.parent / "shared" / "tools" / "zh-tts" / "zh_tts.py")
    home = Path(os.environ.get("AICUT_ZH_TTS_DIR")
                or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "aicut-zh-tts")
    python, assets = home / "venv" / "bin" / "python", home / "assets"
    if not script.is_file():
        raise FixtureUnavailable(f"the zh-tts tool is not at {script}")
    if not python.is_file() or not (assets / "fastspeech2_quan.tflite").is_file():
        raise FixtureUnavailable(f"zh-tts is not set up in {home}: run `bash {script.parent / 'setup.sh'}` "
                                 "(about 30 s and 280 MB)")
    return python, script, assets


def zh_tts_utterances(texts: Sequence[str]) -> dict[str, tuple[np.ndarray, int]]:
    """Mandarin utterances from the zh-tts tool (one process for all texts), each trimmed to its voiced samples."""
    python, script, assets = zh_tts_paths()
    unique = list(dict.fromkeys(texts))
    rate = 24000
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "zh.wav"
        done = subprocess.run([str(python), str(script), "--assets", str(assets), "--out", str(out),
                               "--rate", str(rate), "--pad", "0", "--gap", "0", *unique],
                              check=True, capture_output=True, timeout=300, text=True)
        samples, got_rate = _read_wav(out)
    spans = json.loads(done.stdout.strip().splitlines()[-1])
    result = {}
    for span in spans:
        a, b = round(span["start"] * got_rate), round(span["end"] * got_rate)
        result[span["text"]] = (_trim(samples[a:b], got_rate), got_rate)
    return result


# --- the clip --------------------------------------------------------------------------------------------------------


def _lay_out(script: Sequence[Step], utterances: dict[str, tuple[np.ndarray, int]], rate: int
             ) -> tuple[np.ndarray, tuple[Piece, ...]]:
    """Place the script's pieces on one track; times are exact sample counts at ``rate``."""
    track: list[np.ndarray] = [np.zeros(round(LEAD_S * rate), np.float32)]
    pieces: list[Piece] = []
    pos = len(track[0])
    gap: float | None = 0.0
    for kind, value in script:
        if kind == "gap":
            gap = float(value)
            continue
        if kind == "pause":
            n = round(float(value) * rate)
            pieces.append(Piece("pause", pos / rate, (pos + n) / rate))
            track.append(np.zeros(n, np.float32))
            pos += n
            gap = 0.0
            continue
        if kind not in SPOKEN:
            raise ValueError(f"unknown script step {kind!r}; use one of {KINDS} or 'gap'")
        n_gap = round((NATURAL_GAP_S if gap is None else gap) * rate)
        track.append(np.zeros(n_gap, np.float32))
        pos += n_gap
        samples, got = utterances[str(value)]
        if got != rate:
            raise ValueError(f"utterance {value!r} is at {got} Hz, not {rate}")
        pieces.append(Piece(kind, pos / rate, (pos + len(samples)) / rate, str(value)))
        track.append(samples)
        pos += len(samples)
        gap = None
    track.append(np.zeros(round(TRAIL_S * rate), np.float32))
    return np.concatenate(track), tuple(pieces)


def _write_mp4(path: Path, audio: np.ndarray, rate: int, *, fps: int, width: int, height: int, crf: int,
               audio_rate: int) -> None:
    duration = len(audio) / rate
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "veryfast", "crf": str(crf)}
        sound = out.add_stream("aac", rate=audio_rate, layout="mono")
        chroma = np.full((height // 2, width), 128, np.uint8)
        for i in range(int(np.ceil(duration * fps - 1e-9))):
            # Luma on top of neutral chroma is the yuv420p layout from_ndarray takes: much faster than reformat.
            frame = av.VideoFrame.from_ndarray(np.concatenate([frame_image(i, fps, width, height), chroma]),
                                               format="yuv420p")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        source = av.AudioFrame.from_ndarray(audio.reshape(1, -1), format="flt", layout="mono")
        source.sample_rate, source.pts = rate, 0
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=audio_rate,
                                      frame_size=sound.codec_context.frame_size or 1024)
        for chunk in resampler.resample(source) + resampler.resample(None):
            out.mux(sound.encode(chunk))
        out.mux(sound.encode(None))


def build_talking_head(out_dir: Path, script: Sequence[Step] = ENGLISH_SHORT, *, name: str = "talking_head",
                       language: str = "en", voice: str = "en-us", fps: int = 25, width: int = 320,
                       height: int = 240, crf: int = 23, audio_rate: int = 48000) -> GroundTruth:
    """Write ``<name>.mp4`` (H.264 + AAC), ``<name>.wav`` and ``<name>.json`` into ``out_dir``; return the truth.

    English is spoken by espeak-ng (``voice``); ``language="zh"`` uses the shared zh-tts tool instead.
    """
    texts = [str(v) for k, v in script if k in SPOKEN]
    if language == "zh":
        utterances = zh_tts_utterances(texts)
    else:
        utterances = {t: espeak_utterance(t, voice) for t in dict.fromkeys(texts)}
    rates = {r for _, r in utterances.values()}
    if len(rates) != 1:
        raise ValueError(f"utterances come at several rates: {sorted(rates)}")
    rate = rates.pop()
    audio, pieces = _lay_out(script, utterances, rate)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    wav, clip, meta = out_dir / f"{name}.wav", out_dir / f"{name}.mp4", out_dir / f"{name}.json"
    _write_wav(wav, audio, rate)
    _write_mp4(clip, audio, rate, fps=fps, width=width, height=height, crf=crf, audio_rate=audio_rate)
    truth = GroundTruth(language=language, duration=len(audio) / rate, fps=fps, width=width, height=height,
                        sample_rate=rate, pieces=pieces, clip=clip, wav=wav)
    meta.write_text(truth.to_json(), encoding="utf-8")
    return truth


def build_benchmark_clip(out_dir: Path, *, name: str = "talking_head_60s", **kwargs: object) -> GroundTruth:
    """The ~60 s English talking head the benchmarks cut (three long pauses, fillers, two stutters, two retakes)."""
    return build_talking_head(out_dir, ENGLISH_60S, name=name, **kwargs)  # type: ignore[arg-type]


# --- pytest fixtures, built once per session ------------------------------------------------------------------------

_CACHE: dict[str, GroundTruth] = {}


def cached_talking_head(factory: pytest.TempPathFactory, script: Sequence[Step] = ENGLISH_SHORT,
                        **kwargs: object) -> GroundTruth:
    """build_talking_head into the session's temp dir, once per distinct script and settings in this process."""
    key = hashlib.sha256(repr((tuple(script), sorted(kwargs.items()))).encode()).hexdigest()[:16]
    if key not in _CACHE:
        try:
            _CACHE[key] = build_talking_head(factory.mktemp(f"talking_head_{key}"), script, **kwargs)  # type: ignore[arg-type]
        except FixtureUnavailable as exc:
            pytest.skip(str(exc))
    return _CACHE[key]


@pytest.fixture(scope="session")
def english_clip(tmp_path_factory: pytest.TempPathFactory) -> GroundTruth:
    """The short (~25 s) English talking head: two long pauses, um, uh, a stutter, a retake."""
    return cached_talking_head(tmp_path_factory, ENGLISH_SHORT)


@pytest.fixture(scope="session")
def english_clip_60s(tmp_path_factory: pytest.TempPathFactory) -> GroundTruth:
    """The ~60 s English talking head the benchmarks use."""
    return cached_talking_head(tmp_path_factory, ENGLISH_60S, name="talking_head_60s")


@pytest.fixture(scope="session")
def chinese_clip(tmp_path_factory: pytest.TempPathFactory) -> GroundTruth:
    """The short Mandarin talking head; skips when the shared zh-tts tool is not set up on this machine."""
    return cached_talking_head(tmp_path_factory, CHINESE_SHORT, language="zh", name="talking_head_zh")
