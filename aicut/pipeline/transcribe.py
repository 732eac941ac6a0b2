"""Stage 4, transcribe: faster-whisper with word timestamps and VAD, the post's core text as hotwords.

The model comes from a local CTranslate2 directory (:mod:`aicut.pipeline.speech_models`) and is loaded once per
:class:`Transcriber`, so a long-lived process keeps it across tasks. Whisper writes clean prose by default — it
leaves out "um", "uh" and repeated words, which are exactly what the cut must find — so it is prompted with a
sample of disfluent speech in the clip's language, which makes it write them (see ``DISFLUENT_PROMPTS``).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aicut.errors import ConfigError, NoSpeechError, TranscribeError
from aicut.pipeline.audio import SAMPLE_RATE, energy, load_audio
from aicut.pipeline.speech_models import model_cache_dir, resolve_model_dir
from aicut.pipeline.transcript import Segment, Transcript, Word

logger = logging.getLogger(__name__)

Progress = Callable[[float], None]

# Whisper imitates the style of the text before the audio: given disfluent text it writes fillers and repetitions
# instead of tidying them away. faster-whisper feeds ``initial_prompt`` to the first 30 s window only (with
# condition_on_previous_text off) but ``hotwords`` to every window, so the sample goes in front of the hotwords.
# Measured on the 64 s espeak fixture (5 fillers): tiny.en wrote 0 fillers unprompted, 3 (first window only) with
# the sample as initial_prompt, 5 with it in hotwords; base wrote 4-5 either way. Only with 500 ms VAD silences is
# the prompt safe: at faster-whisper's 2000 ms, base with the prompt skipped 32-41 of 148 words, and with it in
# hotwords both models appended an invented "uh, so, so" loop after the last word.
# Mandarin (base, zh-tts fixture): 嗯, 那个 and 我，我 were written with and without the prompt.
DISFLUENT_PROMPTS: dict[str, str] = {
    "en": "Umm, uh, so, so I, I mean, like, you know, uh, the the thing is, um, okay.",
    "zh": "嗯，那个，就是，呃，我我觉得，啊，这个这个，然后呢，嗯。",
}


@dataclass(frozen=True, slots=True)
class TranscribeOptions:
    """How speech is recognised. Defaults suit a Chinese talking head on a CPU worker."""

    model: str = ""                     # "" or "base": the bundled multilingual base; "tiny.en"; or a CT2 directory
    cache_dir: str = ""                 # where the default model is assembled; "" → <default work_dir>/models
    device: str = "auto"                # "auto" (CUDA when ctranslate2 sees a GPU), "cpu" or "cuda"
    compute_type: str = "auto"          # "auto": int8 on CPU, float16 on GPU; or any CTranslate2 compute type
    cpu_threads: int = 0                # 0: every core this process may use
    language: str | None = "zh"         # None or "": detect from the first 30 s
    beam_size: int = 5
    vad_filter: bool = True             # Silero VAD: skip silence (faster, and no hallucinated text in it)
    vad_threshold: float = 0.5
    # faster-whisper's 2000 ms merges a talking head's pauses into its speech chunks; at 500 ms each pause is its
    # own gap that Whisper never sees, while the 300 ms of padding keeps a short "um" between pauses whole.
    vad_min_silence_ms: int = 500
    vad_speech_pad_ms: int = 300
    disfluent_prompt: bool = True       # prompt with DISFLUENT_PROMPTS[language] so fillers and stutters are written
    initial_prompt: str = ""            # extra text before the first 30 s window (after the hotwords)
    condition_on_previous_text: bool = False  # True lets one bad window start a repetition loop (faster-whisper #506)
    # Whisper sometimes skips a stretch of speech at a window boundary (measured: with 2000 ms VAD silences and a
    # prompt, Whisper base left out 41 of 148 words; this second look brought back 37). Stretches of speech at least
    # this long that got no words are transcribed again on their own; 0 turns the check off.
    repair_min_s: float = 1.0
    max_repeats: int = 2                # consecutive segments with the same text kept at most (a take and a retake)
    drop_no_speech_prob: float = 0.8    # a segment this likely silence ...
    drop_avg_logprob: float = -1.0      # ... and this unsure is dropped as a hallucination


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _choose_device(options: TranscribeOptions) -> tuple[str, str]:
    import ctranslate2

    device = options.device
    if device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"transcribe device must be auto, cpu or cuda, not {device!r}")
    if device == "auto":
        try:
            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        except RuntimeError:  # a CUDA runtime that cannot start counts as no GPU
            device = "cpu"
    compute = options.compute_type
    if compute == "auto":
        compute = "float16" if device == "cuda" else "int8"
    return device, compute


def _norm(text: str) -> str:
    return re.sub(r"[\W_]+", " ", text.lower()).strip()


def _hotwords(prompt: str, hotwords: str) -> str | None:
    text = " ".join(t for t in (prompt, " ".join(hotwords.split())) if t)
    return text or None


class Transcriber:
    """A loaded Whisper model; ``transcribe`` may be called many times (one call at a time: it holds a lock)."""

    def __init__(self, options: TranscribeOptions = TranscribeOptions()) -> None:
        from faster_whisper import WhisperModel  # heavy (onnxruntime, tokenizers): only when a model is wanted

        self.options = options
        cache = Path(options.cache_dir) if options.cache_dir else _default_cache_dir()
        self.model_dir = resolve_model_dir(options.model, cache)
        self.device, self.compute_type = _choose_device(options)
        threads = options.cpu_threads or _cpu_count()
        t0 = time.monotonic()
        try:
            self._model = WhisperModel(str(self.model_dir), device=self.device, compute_type=self.compute_type,
                                       cpu_threads=threads, local_files_only=True)
        except (RuntimeError, ValueError, OSError) as exc:
            hint = ""
            if self.device == "cuda":
                hint = " (is the NVIDIA driver, CUDA 12 and cuDNN 9 installed? device: cpu avoids the GPU)"
            raise TranscribeError(f"the speech model in {self.model_dir} could not be loaded on "
                                  f"{self.device}/{self.compute_type}: {exc}{hint}") from exc
        self.multilingual = bool(self._model.model.is_multilingual)
        self._lock = threading.Lock()
        logger.info("speech model %s loaded on %s/%s with %d thread(s) in %.1fs", self.model_dir, self.device,
                    self.compute_type, threads, time.monotonic() - t0)

    def transcribe(self, audio: np.ndarray | Path, *, hotwords: str = "", language: str | None = None,
                   progress: Progress | None = None) -> Transcript:
        """Words with times for ``audio`` (16 kHz mono float32, or a media file); NoSpeechError when nobody speaks."""
        name = Path(audio).name if isinstance(audio, (str, Path)) else ""
        samples = load_audio(Path(audio)) if isinstance(audio, (str, Path)) else np.asarray(audio, np.float32)
        duration = samples.size / SAMPLE_RATE
        lang = self._language(language)
        kwargs = self.transcribe_kwargs(lang, hotwords)
        t0 = time.monotonic()
        with self._lock:
            try:
                raw, info = self._model.transcribe(samples, **kwargs)
                segments = self._drain(raw, duration, progress)
                if self.options.repair_min_s > 0 and getattr(info, "duration_after_vad", 1.0) > 0:
                    segments = self.repair(samples, segments, kwargs, name=name)
            except (RuntimeError, ValueError, OSError, MemoryError) as exc:
                raise _translate(exc, name) from exc
        detected = lang or info.language
        kept = clean_segments(segments, self.options)
        elapsed = time.monotonic() - t0
        logger.info("transcribed %s: %.1fs of audio (%.1fs speech) in %.1fs, %d segment(s), language %s",
                    name or "audio", duration, getattr(info, "duration_after_vad", duration), elapsed, len(kept),
                    detected)
        if not any(s.words for s in kept):
            raise NoSpeechError(f"no speech found in the video{' ' + name if name else ''}; the smart cut needs "
                                "someone talking, so check that the sound track is not silent or only music")
        if progress is not None:
            progress(1.0)
        return Transcript(language=detected, duration=round(duration, 3), segments=tuple(kept))

    def _language(self, language: str | None) -> str | None:
        lang = (language if language is not None else self.options.language) or None
        if not self.multilingual and lang not in (None, "en"):
            raise ConfigError(f"the speech model {self.model_dir} is English-only and cannot transcribe {lang!r}; "
                              "use the default multilingual model")
        return lang if self.multilingual else "en"

    def transcribe_kwargs(self, language: str | None, hotwords: str = "") -> dict[str, Any]:
        """The keyword arguments handed to ``WhisperModel.transcribe`` (exposed for tests and benchmarks)."""
        o = self.options
        prompt = DISFLUENT_PROMPTS.get(language or "", "") if o.disfluent_prompt else ""
        return {
            "language": language,
            "beam_size": o.beam_size,
            "word_timestamps": True,
            "vad_filter": o.vad_filter,
            "vad_parameters": {"threshold": o.vad_threshold, "min_silence_duration_ms": o.vad_min_silence_ms,
                               "speech_pad_ms": o.vad_speech_pad_ms},
            "condition_on_previous_text": o.condition_on_previous_text,
            "initial_prompt": o.initial_prompt or None,
            "hotwords": _hotwords(prompt, hotwords),
        }

    def repair(self, samples: np.ndarray, segments: list[Segment], kwargs: dict[str, Any], *,
               name: str = "") -> list[Segment]:
        """Transcribe again, on their own, stretches of speech in ``samples`` that ``segments`` have no words for."""
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        o = self.options
        vad = VadOptions(threshold=o.vad_threshold, min_silence_duration_ms=o.vad_min_silence_ms, speech_pad_ms=0)
        holes = []
        for a, b in unworded_speech(samples, segments, min_s=o.repair_min_s):
            # Loudness alone would send music and noise to a second look, where Whisper invents lyrics: ask the VAD.
            chunk = samples[round(a * SAMPLE_RATE) : round(b * SAMPLE_RATE)]
            speech = sum(c["end"] - c["start"] for c in get_speech_timestamps(chunk, vad)) / SAMPLE_RATE
            if speech >= o.repair_min_s / 2:
                holes.append((a, b))
        if not holes:
            return segments
        logger.warning("%s: %d stretch(es) of speech got no words (%s); transcribing them again", name or "audio",
                       len(holes),
                       ", ".join(f"{a:.1f}-{b:.1f}s" for a, b in holes))
        again = {k: v for k, v in kwargs.items() if k != "vad_parameters"}
        # With the VAD off, clip_timestamps makes faster-whisper decode exactly these stretches.
        again.update(vad_filter=False, clip_timestamps=[t for a, b in holes for t in (a, b)])
        raw, _ = self._model.transcribe(samples, **again)
        found = []
        for seg in self._drain(raw, samples.size / SAMPLE_RATE, None):
            words = tuple(w for w in seg.words if any(a <= (w.start + w.end) / 2 <= b for a, b in holes))
            if words:
                found.append(Segment(start=words[0].start, end=words[-1].end, text="".join(w.text for w in words),
                                     words=words, avg_logprob=seg.avg_logprob, no_speech_prob=seg.no_speech_prob))
        logger.info("%s: the second look found %d word(s)", name or "audio", sum(len(s.words) for s in found))
        return sorted(segments + found, key=lambda s: s.start)

    @staticmethod
    def _drain(raw: Iterable[Any], duration: float, progress: Progress | None) -> list[Segment]:
        # faster-whisper's segments are a lazy generator: the work happens here, window by window.
        out: list[Segment] = []
        done = 0.0
        for s in raw:
            words = tuple(Word(start=round(w.start, 3), end=round(w.end, 3), text=w.word,
                               probability=round(w.probability, 4)) for w in (s.words or ()))
            out.append(Segment(start=round(s.start, 3), end=round(s.end, 3), text=s.text, words=words,
                               avg_logprob=round(s.avg_logprob, 4), no_speech_prob=round(s.no_speech_prob, 4)))
            if progress is not None and duration > 0:
                frac = min(1.0, max(done, s.end / duration))
                if frac > done:
                    done = frac
                    progress(frac)
        return out


def unworded_speech(samples: np.ndarray, segments: Iterable[Segment], *, min_s: float = 1.0,
                    sr: int = SAMPLE_RATE) -> list[tuple[float, float]]:
    """Stretches of ``samples`` that are loud for at least ``min_s`` in all yet hold no word of ``segments``."""
    env = energy(samples, sr)
    db = np.asarray(env.db)
    if db.size == 0:
        return []
    # Loud relative to this recording's speech level, so a quiet microphone and a hot one behave alike.
    threshold = max(-50.0, float(np.percentile(db, 95)) - 30.0)
    voiced = db > threshold
    step = env.frame_s
    for seg in segments:
        for w in seg.words:
            # Whisper's word edges are loose by a few hundred ms: do not count its sloppiness as missed speech.
            voiced[max(0, int((w.start - 0.3) / step)) : int((w.end + 0.3) / step) + 1] = False
    holes: list[tuple[float, float]] = []
    run_start = run_end = -1
    loud = 0
    bridge = int(0.3 / step)             # pauses between words inside one stretch
    for i in np.flatnonzero(voiced):
        if run_end >= 0 and i - run_end <= bridge:
            run_end, loud = i, loud + 1
            continue
        if run_end >= 0 and loud * step >= min_s:
            holes.append((run_start * step, (run_end + 1) * step))
        run_start = run_end = int(i)
        loud = 1
    if run_end >= 0 and loud * step >= min_s:
        holes.append((run_start * step, (run_end + 1) * step))
    duration = samples.size / sr
    padded: list[tuple[float, float]] = []
    for a, b in holes:
        start, end = round(max(0.0, float(a) - 0.2), 3), round(min(duration, float(b) + 0.2), 3)
        if padded and start <= padded[-1][1]:     # overlapping stretches would be transcribed, and counted, twice
            start = padded.pop()[0]
        padded.append((start, end))
    return padded


def _translate(exc: BaseException, name: str) -> TranscribeError:
    text = str(exc) or type(exc).__name__
    # Memory and device faults may pass on another try or another worker; anything else will fail the same way.
    transient = isinstance(exc, MemoryError) or any(k in text.lower() for k in ("cuda", "out of memory", "cudnn"))
    return TranscribeError(f"{name}: speech recognition failed: {text}", retryable=transient)


def clean_segments(segments: Iterable[Segment], options: TranscribeOptions = TranscribeOptions()) -> list[Segment]:
    """Drop Whisper's hallucinations: a text repeated past ``max_repeats`` in a row, and unsure "speech" in silence."""
    kept: list[Segment] = []
    run_text, run = "", 0
    for s in segments:
        if s.no_speech_prob > options.drop_no_speech_prob and s.avg_logprob < options.drop_avg_logprob:
            logger.info("dropped a segment that is probably silence (no_speech %.2f, logprob %.2f): %r",
                        s.no_speech_prob, s.avg_logprob, s.text)
            continue
        text = _norm(s.text)
        if not text:
            continue
        run = run + 1 if text == run_text else 1
        run_text = text
        if run > options.max_repeats:
            logger.warning("dropped a repetition loop: %r said %d times in a row", s.text, run)
            continue
        kept.append(s)
    return kept


def _default_cache_dir() -> Path:
    from aicut.config import WorkerSettings  # the default work_dir lives there; config imports this package

    return model_cache_dir(WorkerSettings().work_dir)


def transcribe(path: Path, options: TranscribeOptions = TranscribeOptions(), *, hotwords: str = "",
               progress: Progress | None = None) -> Transcript:
    """One-shot: load the model, transcribe ``path``, let the model go (a worker keeps a Transcriber instead)."""
    return Transcriber(options).transcribe(Path(path), hotwords=hotwords, progress=progress)
