"""The sound of a source, decoded once: 16 kHz mono float32 for speech recognition and the loudness envelope.

Sample 0 is the start of the container's timeline (what a player shows as 0:00), so times measured on these samples
are the source times the render stage cuts at: a sound track that starts late is padded with silence, one that
starts early (encoder priming some containers expose) is trimmed.
"""

from __future__ import annotations

import logging
from pathlib import Path

import av
import av.error
import numpy as np

from aicut.errors import EmptyMediaError, MediaError, NoAudioStreamError
from aicut.pipeline.transcript import Energy

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000          # what Whisper and Silero VAD take
SILENCE_DB = -90.0           # the floor of the loudness envelope: digital silence
# Damaged packets are skipped (a glitch beats a failed task), but a file that is mostly damage is refused.
_MAX_BAD_PACKETS = 50


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def load_audio(path: Path, *, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode the first audio track of ``path`` to mono float32 in [-1, 1] at ``sample_rate``, aligned to 0:00."""
    path = Path(path)
    name = path.name
    try:
        container = av.open(str(path), metadata_errors="replace")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise MediaError(f"{name} could not be read as media: {_reason(exc)}") from exc
    with container:
        if not container.streams.audio:
            raise NoAudioStreamError(f"{name} has no audio track, so there is no speech to cut by; "
                                     "re-export the video with its sound")
        stream = container.streams.audio[0]
        stream.thread_type = "AUTO"
        origin = container.start_time / av.time_base if container.start_time is not None else 0.0
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks: list[np.ndarray] = []
        first_time: float | None = None
        bad = 0
        try:
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.error.FFmpegError as exc:
                    bad += 1
                    logger.debug("%s: skipped a damaged audio packet: %s", name, _reason(exc))
                    if bad > _MAX_BAD_PACKETS:
                        raise MediaError(f"{name}: the audio track is damaged ({bad} unreadable packets); "
                                         "re-export the video and post it again") from exc
                    continue
                for frame in frames:
                    if first_time is None and frame.time is not None:
                        first_time = float(frame.time)
                    chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
            chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
        except av.error.FFmpegError as exc:
            # A file cut short ends in a read error: keep what was decoded, like a player would.
            if not chunks:
                raise MediaError(f"{name}: the audio track could not be decoded ({_reason(exc)})") from exc
            logger.warning("%s: audio decoding stopped early: %s", name, _reason(exc))
    if bad:
        logger.warning("%s: skipped %d damaged audio packet(s)", name, bad)
    samples = np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)
    if samples.size == 0:
        raise EmptyMediaError(f"{name}: the audio track holds no sound samples; re-export the video with its sound")
    offset = round(((first_time or 0.0) - origin) * sample_rate)
    if offset > 0:
        samples = np.concatenate([np.zeros(offset, np.float32), samples])
    elif offset < 0:
        samples = samples[-offset:]
    return samples


def energy(samples: np.ndarray, sr: int = SAMPLE_RATE, frame_s: float = 0.01) -> Energy:
    """RMS loudness in dBFS for every ``frame_s`` of ``samples`` (floor -90 dB; a full-scale sine reads -3)."""
    hop = max(1, int(round(sr * frame_s)))
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    n = -(-x.size // hop)
    if n == 0:
        return Energy(frame_s=hop / sr, db=())
    padded = np.zeros(n * hop, np.float64)
    padded[: x.size] = x
    rms = np.sqrt(np.mean(padded.reshape(n, hop) ** 2, axis=1))
    with np.errstate(divide="ignore"):
        db = 20.0 * np.log10(rms)
    db = np.maximum(np.nan_to_num(db, nan=SILENCE_DB, neginf=SILENCE_DB), SILENCE_DB)
    return Energy(frame_s=hop / sr, db=tuple(np.round(db, 2).tolist()))
