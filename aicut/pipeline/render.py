"""Stage 6, render: cut the source by the edit plan and write ``<name>_cut.mp4``.

One pass over the source: its packets are demuxed and decoded once, on a producer thread that picks the frames and
samples the plan keeps, restamps them on the output timeline and hands them over a bounded queue to the encoding
thread (the caller's), which encodes (x264 or NVENC, see :mod:`aicut.pipeline.encoders`) and muxes. PyAV releases
the GIL inside FFmpeg's codec calls, so decoding overlaps encoding the way the ffmpeg command line overlaps them.

Decisions, and why:

- **Timeline.** Source time 0 is the start of the container's timeline, as in :mod:`aicut.pipeline.audio`, so the
  plan's times (made on that audio) mean the same here. Keeps closer than 0.1 ms are merged: no join, no fade.
- **No seeking.** Cut stretches are decoded but not converted, burned or encoded. A seek lands on an earlier
  keyframe, and the audio position here is counted in decoded samples exactly like the transcript's audio was; a
  seek would replace that count by packet timestamps. Talking-head cuts are short, so little decoding is wasted.
- **Video.** Each decoded frame covers ``[its pts, next pts)`` (pts, not frame counts, so variable frame rates
  work). A frame goes out for every keep it overlaps by at least half a frame (or half the keep, for keeps shorter
  than that), stamped at ``output start of the keep + (max(frame, keep start) - keep start)``; the first frame of a
  keep always starts exactly at the keep's output start. So the picture shown at output time ``t`` comes from source
  time :func:`source_time` (``t``) within half a frame, and the frames tile the output with no gap. Each frame's
  duration is the time to the next output frame; the last one ends at the plan's output duration.
- **Audio.** Resampled once to planar float at the source rate (48 kHz if AAC cannot take it), mono or stereo as the
  source. Every keep takes exactly ``round(T_end·rate) - round(T_start·rate)`` samples from
  ``round(start·rate)``, so audio and video keep the same output timeline with no drift; where the source has no
  sound for a keep, silence. Every join gets a raised-cosine fade-out and fade-in (``audio_fade_ms``) so no click.
- **Pictures.** yuv420p, even sizes (x264 and NVENC need them: an odd row or column is cropped, never scaled),
  optional downscale to ``max_height`` of the displayed picture. Rotation stays a display matrix (no pixels turn).
- **Subtitles.** A mov_text track (PyAV 18 encodes it with FFmpeg's own encoder) always holds the cues. Burned-in
  subtitles are drawn with Pillow (PyAV's FFmpeg has no drawtext/subtitles filter) once per cue, converted to
  premultiplied YUV and alpha-blended on the frames inside the cue's time only.
- **MP4.** ``movflags=+faststart`` puts the index first; the file is written beside the target and renamed when done.
"""

from __future__ import annotations

import bisect
import functools
import logging
import math
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
import numpy as np
from av.subtitles.subtitle import SubtitleSet
from av.video.reformatter import VideoReformatter

from aicut.errors import AicutError, MediaError, NoVideoStreamError, RenderError
from aicut.pipeline.edl import Cue, EditPlan, Keep
from aicut.pipeline.encoders import EncodeOptions, EncoderChoice, VideoEncoder, choose_encoder, make_encoder

logger = logging.getLogger(__name__)

# The output's video time base, ours: exact for 24, 25, 30, 50, 60 fps and the NTSC rates (3003 ticks at 29.97).
TIME_BASE = Fraction(1, 90000)
_TICKS = 90000
_SUB_TIME_BASE = Fraction(1, 1000)
_JOIN_EPS_S = 1e-4
_AAC_RATES = frozenset({8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000})
_AAC_FRAME = 1024
_MAX_BAD_PACKETS = 50            # damaged packets skipped before the file counts as broken (as in audio.py)
_QUEUE_ITEMS = 24                # decoded frames in flight: enough to keep the encoder fed, bounded for 4K memory
_PUT_POLL_S = 0.2                # how often a blocked producer checks whether the encoder side gave up
_REEXPORT = "re-export the video as MP4 (H.264/AAC) and post it again"


@dataclass(frozen=True, slots=True)
class SubtitleStyle:
    """How burned-in subtitles look; sizes are fractions of the displayed picture, so every resolution looks alike."""

    font_path: Path | None = None     # a .ttf/.otf/.ttc with the glyphs needed (aicut.pipeline.fonts finds one)
    font_index: int = 0               # the face inside a .ttc collection
    size: float = 0.055               # font size / picture height (about 59 px at 1080p)
    max_width: float = 0.9            # longest line / picture width
    bottom_margin: float = 0.06       # gap under the last line / picture height
    line_spacing: float = 1.25        # line advance / font size
    color: tuple[int, int, int, int] = (255, 255, 255, 255)
    outline_color: tuple[int, int, int, int] = (0, 0, 0, 255)
    outline: float = 0.08             # outline width / font size: readable on any background
    shadow_color: tuple[int, int, int, int] = (0, 0, 0, 128)
    shadow_offset: float = 0.06       # drop-shadow offset / font size; 0 for none


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """Settings of the render stage; the defaults make a web-friendly H.264/AAC MP4."""

    encoder: str = "auto"                       # "auto" (NVENC where the worker has it, else x264), "x264", "nvenc"
    allow_fallback: bool = True                 # NVENC missing or failing → x264 (True) or RenderError (False)
    quality: EncodeOptions = field(default_factory=EncodeOptions)  # shared by both backends
    audio_bitrate: int = 128_000                # AAC bits per second
    audio_fade_ms: float = 15.0                 # fade-out/fade-in at every join; 10–20 ms hides clicks, 0 disables
    soft_subtitles: bool = True                 # a mov_text track with the cues
    subtitle_language: str = "und"              # ISO 639-2 code of that track ("chi", "eng"); "und" if unknown
    burn_subtitles: bool = False                # draw the cues into the picture too
    subtitle_style: SubtitleStyle = field(default_factory=SubtitleStyle)
    faststart: bool = True                      # the MP4's index (moov) before its media data, for web playback
    max_height: int | None = None               # downscale so the displayed picture is at most this tall
    queue_frames: int = _QUEUE_ITEMS            # decode/encode overlap: items between the two threads


@dataclass(frozen=True, slots=True)
class RenderResult:
    """What render wrote, how long it is, and how it was made."""

    path: Path
    duration_s: float                 # the MP4's duration as a player reads it
    encoder: str                      # "x264" or "nvenc"
    encoder_reason: str               # why that encoder (for report.json)
    frames: int                       # video frames encoded
    video_duration_s: float
    audio_duration_s: float           # 0 when the source has no sound
    size_bytes: int
    wall_s: float
    width: int
    height: int
    rotation: int                     # clockwise degrees in the display matrix
    subtitles: int                    # cues in the soft subtitle track
    burned_cues: int                  # cues drawn into the picture

    def to_dict(self) -> dict[str, Any]:
        """For report.json."""
        return {"path": str(self.path), "duration_s": round(self.duration_s, 3), "encoder": self.encoder,
                "encoder_reason": self.encoder_reason, "frames": self.frames,
                "video_duration_s": round(self.video_duration_s, 3),
                "audio_duration_s": round(self.audio_duration_s, 3), "size_bytes": self.size_bytes,
                "wall_s": round(self.wall_s, 3), "width": self.width, "height": self.height,
                "rotation": self.rotation, "subtitles": self.subtitles, "burned_cues": self.burned_cues}


# --- the output timeline ------------------------------------------------------------------------------------------


def merged_keeps(plan: EditPlan) -> list[Keep]:
    """The plan's keeps with empty ones dropped and touching ones (closer than 0.1 ms) joined."""
    out: list[Keep] = []
    for k in sorted(plan.keeps, key=lambda k: k.start):
        if k.end - k.start <= 0:
            continue
        if out and k.start - out[-1].end < _JOIN_EPS_S:
            out[-1] = Keep(out[-1].start, max(out[-1].end, k.end))
        else:
            out.append(Keep(k.start, k.end))
    return out


def output_starts(keeps: Sequence[Keep]) -> list[float]:
    """Where each keep begins on the output timeline, plus the output's end as the last item."""
    starts = [0.0]
    for k in keeps:
        starts.append(starts[-1] + k.duration)
    return starts


def source_time(plan: EditPlan, t: float) -> float | None:
    """The source time shown at output time ``t`` (the inverse of ``plan.to_output_time``); None outside the output."""
    keeps = merged_keeps(plan)
    starts = output_starts(keeps)
    if not keeps or t < 0 or t > starts[-1] + 1e-9:
        return None
    # A time on a join (to within a microsecond: output times come in 90 kHz ticks) belongs to the keep it opens.
    i = min(bisect.bisect_right(starts, t + 1e-6) - 1, len(keeps) - 1)
    return keeps[i].start + min(max(0.0, t - starts[i]), keeps[i].duration)


# --- video: which frames, at which output time --------------------------------------------------------------------


class _VideoCutter:
    """Places source frames on the output timeline; fed frames in display order, one frame behind."""

    def __init__(self, keeps: Sequence[Keep], starts: Sequence[float], frame_s: float) -> None:
        self.keeps = keeps
        self.starts = starts
        self.frame_s = frame_s
        self._k = 0
        self._started = [False] * len(keeps)
        self._prev: tuple[Any, float] | None = None

    def push(self, frame: Any, t: float) -> list[tuple[Any, float]]:
        """Take the next decoded frame (source time ``t``); returns (frame, output time) of the one before it."""
        if self._prev is None:
            self._prev = (frame, t)
            return []
        prev, prev_t = self._prev
        if t <= prev_t:  # a repeated or backwards timestamp (damaged file): that frame is dropped
            return []
        self._prev = (frame, t)
        return self._place(prev, prev_t, t)

    def finish(self, end_t: float) -> list[tuple[Any, float]]:
        """The last frame, which lasts until ``end_t`` (or one frame)."""
        if self._prev is None:
            return []
        frame, t = self._prev
        self._prev = None
        return self._place(frame, t, max(end_t, t + self.frame_s))

    def _place(self, frame: Any, a: float, b: float) -> list[tuple[Any, float]]:
        keeps = self.keeps
        while self._k < len(keeps) and keeps[self._k].end <= a:
            self._k += 1
        out: list[tuple[Any, float]] = []
        j = self._k
        while j < len(keeps) and keeps[j].start < b:
            keep = keeps[j]
            lo, hi = max(a, keep.start), min(b, keep.end)
            # A frame that covers less than half a frame of the keep is left to its neighbour (so no frame of a
            # millisecond or two at a join); a keep shorter than a frame still gets the frame covering most of it.
            if hi - lo >= min(0.5 * self.frame_s, 0.5 * keep.duration) - 1e-9:
                t_out = self.starts[j] + (lo - keep.start) if self._started[j] else self.starts[j]
                self._started[j] = True
                out.append((frame, t_out))
            j += 1
        return out


# --- audio: cut, fade, frame ---------------------------------------------------------------------------------------


def _fade_curve(x: np.ndarray) -> np.ndarray:
    """Raised cosine from 0 to 1 over x in [0, 1]: no corner at either end, so the fade itself makes no click."""
    return (0.5 - 0.5 * np.cos(np.pi * np.clip(x, 0.0, 1.0))).astype(np.float32)


class _AudioCutter:
    """Takes the source's samples in order and returns the kept ones on the output timeline, faded at every join."""

    def __init__(self, keeps: Sequence[Keep], starts: Sequence[float], rate: int, channels: int, fade_samples: int,
                 source_duration: float) -> None:
        self.channels = channels
        # Per keep: first source sample, sample count, fade-in and fade-out lengths.
        self.ranges: list[tuple[int, int, int, int]] = []
        for i, keep in enumerate(keeps):
            count = round(starts[i + 1] * rate) - round(starts[i] * rate)
            f = min(fade_samples, count // 2)
            fade_in = f if keep.start > _JOIN_EPS_S else 0
            fade_out = f if keep.end < source_duration - _JOIN_EPS_S else 0
            self.ranges.append((round(keep.start * rate), count, fade_in, fade_out))
        self.total = sum(r[1] for r in self.ranges)
        self._k = 0
        self._filled = 0

    def push(self, samples: np.ndarray, pos: int) -> list[np.ndarray]:
        """``samples`` (channels × n) start at source sample ``pos``; returns output chunks in order."""
        out: list[np.ndarray] = []
        end = pos + samples.shape[1]
        while self._k < len(self.ranges):
            a, count, _, _ = self.ranges[self._k]
            need = a + self._filled
            if need >= end:
                break
            if need < pos:  # the sound starts after this keep does (or the source skipped): silence for the gap
                self._emit(out, np.zeros((self.channels, min(pos - need, count - self._filled)), np.float32))
                continue
            take = min(count - self._filled, end - need)
            self._emit(out, samples[:, need - pos:need - pos + take])
        return out

    def finish(self) -> list[np.ndarray]:
        """Silence for whatever the keeps still need after the sound ended."""
        out: list[np.ndarray] = []
        while self._k < len(self.ranges):
            self._emit(out, np.zeros((self.channels, self.ranges[self._k][1] - self._filled), np.float32))
        return out

    def _emit(self, out: list[np.ndarray], chunk: np.ndarray) -> None:
        _, count, fade_in, fade_out = self.ranges[self._k]
        n = chunk.shape[1]
        first = self._filled
        if n and (first < fade_in or first + n > count - fade_out):
            j = np.arange(first, first + n, dtype=np.float64)
            gain = np.ones(n, np.float32)
            if fade_in:
                gain *= _fade_curve((j + 0.5) / fade_in)
            if fade_out:
                gain *= _fade_curve((count - j - 0.5) / fade_out)
            chunk = chunk * gain
        if n:
            out.append(np.ascontiguousarray(chunk, dtype=np.float32))
        self._filled += n
        if self._filled >= count:
            self._k += 1
            self._filled = 0


class _AudioFramer:
    """Cuts the output samples into AAC-sized frames stamped in samples."""

    def __init__(self, rate: int, layout: str, frame_size: int = _AAC_FRAME) -> None:
        self.rate, self.layout, self.frame_size = rate, layout, frame_size
        self.time_base = Fraction(1, rate)
        self._held: list[np.ndarray] = []
        self._held_n = 0
        self.written = 0

    def push(self, chunks: Sequence[np.ndarray]) -> list[av.AudioFrame]:
        for c in chunks:
            self._held.append(c)
            self._held_n += c.shape[1]
        frames: list[av.AudioFrame] = []
        if self._held_n < self.frame_size:
            return frames
        data = np.concatenate(self._held, axis=1)
        whole = data.shape[1] // self.frame_size * self.frame_size
        for i in range(0, whole, self.frame_size):
            frames.append(self._frame(data[:, i:i + self.frame_size]))
        rest = data[:, whole:]
        self._held, self._held_n = ([rest] if rest.shape[1] else []), rest.shape[1]
        return frames

    def finish(self) -> list[av.AudioFrame]:
        if not self._held_n:
            return []
        data = np.concatenate(self._held, axis=1)
        self._held, self._held_n = [], 0
        return [self._frame(data)]

    def _frame(self, data: np.ndarray) -> av.AudioFrame:
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data, dtype=np.float32), format="fltp",
                                           layout=self.layout)
        frame.sample_rate = self.rate
        frame.pts = self.written
        frame.time_base = self.time_base
        self.written += data.shape[1]
        return frame


# --- pictures: size, crop, burned-in subtitles --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Geometry:
    src_width: int
    src_height: int
    width: int       # encoded (stored orientation), even
    height: int
    rotation: int    # clockwise degrees players turn the stored picture
    scale: bool

    @property
    def display(self) -> tuple[int, int]:
        return (self.height, self.width) if self.rotation in (90, 270) else (self.width, self.height)


def _even(x: float) -> int:
    return max(2, int(round(x / 2.0)) * 2)


def _geometry(width: int, height: int, rotation: int, max_height: int | None) -> _Geometry:
    turned = rotation in (90, 270)
    dw, dh = (height, width) if turned else (width, height)
    if max_height and dh > max_height:
        tdw, tdh = _even(dw * max_height / dh), _even(max_height)
        tw, th = (tdh, tdw) if turned else (tdw, tdh)
        return _Geometry(width, height, tw, th, rotation, True)
    return _Geometry(width, height, width - width % 2, height - height % 2, rotation, False)


def _clockwise(ccw_degrees: float) -> int:
    # PyAV's frame.rotation is FFmpeg's counter-clockwise display-matrix angle; players turn clockwise by this.
    return int(round(-ccw_degrees / 90.0)) * 90 % 360


def _plane_arrays(frame: av.VideoFrame) -> list[np.ndarray]:
    """Writable (height × width) views of a frame's planes, skipping row padding."""
    arrays = []
    for p in frame.planes:
        arrays.append(np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[:p.height, :p.width])
    return arrays


def _copy_yuv420p(frame: av.VideoFrame, width: int, height: int) -> av.VideoFrame:
    """A new yuv420p frame of ``width``×``height`` holding the top-left of ``frame`` (a copy or a crop)."""
    out = av.VideoFrame(width, height, "yuv420p")
    for src, dst in zip(_plane_arrays(frame), _plane_arrays(out)):
        dst[:] = src[:dst.shape[0], :dst.shape[1]]
    return out


# Characters a line may not start with, and ones it may not end with (CJK line-breaking rules, kinsoku).
_NO_LINE_START = set("，。、；：！？…）》」』】〕〉”’,.;:!?)]}%～—·")
_NO_LINE_END = set("（《「『【〔〈“‘([{")
# A Latin word or number (with its own punctuation and the spaces after it) is one unit; anything else, one char.
_TOKEN = re.compile(r"[0-9A-Za-z\u00C0-\u024F\u0370-\u03FF\u0400-\u04FF'’\-_.,!?;:%&@#/+]+\s*|\s+|.", re.S)


def wrap_text(text: str, measure: Callable[[str], float], max_width: float) -> list[str]:
    """Break ``text`` into lines no wider than ``max_width`` by ``measure``: Latin words stay whole, CJK text may
    break between any two characters but not before closing or after opening punctuation, explicit newlines are
    kept, and the lines of each paragraph are balanced (no long line followed by a short stub)."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        paragraph = re.sub(r"[ \t]+", " ", paragraph).strip()
        if not paragraph:
            continue
        tokens = _tokens(paragraph, measure, max_width)
        greedy = _greedy(tokens, measure, max_width)
        if len(greedy) > 1:
            # The narrowest width that still needs no more lines: same line count, evenly filled.
            lo, hi = max_width / len(greedy), max_width
            for _ in range(12):
                mid = (lo + hi) / 2
                if len(_greedy(tokens, measure, mid)) <= len(greedy):
                    hi = mid
                else:
                    lo = mid
            greedy = _greedy(tokens, measure, hi)
        lines.extend(greedy)
    return lines


def _tokens(text: str, measure: Callable[[str], float], max_width: float) -> list[str]:
    tokens: list[str] = []
    for tok in _TOKEN.findall(text):
        if len(tok.strip()) > 1 and measure(tok.strip()) > max_width:
            tokens.extend(tok)  # a word wider than a line (a URL): it has to break somewhere
        else:
            tokens.append(tok)
    return tokens


def _greedy(tokens: Sequence[str], measure: Callable[[str], float], max_width: float) -> list[str]:
    lines: list[str] = []
    cur = ""
    for tok in tokens:
        candidate = cur + tok
        # Closing punctuation hangs at the end of a full line rather than starting the next one.
        if not cur.strip() or tok[0] in _NO_LINE_START or measure(candidate.rstrip()) <= max_width:
            cur = candidate
            continue
        head, carry = cur.rstrip(), ""
        while len(head) > 1 and head[-1] in _NO_LINE_END:  # opening punctuation moves down with its word
            carry = head[-1] + carry
            head = head[:-1].rstrip()
        lines.append(head.strip())
        cur = carry + tok.lstrip()
    if cur.strip():
        lines.append(cur.strip())
    return lines


@functools.lru_cache(maxsize=8)
def _truetype(path: str, size: int, index: int) -> Any:
    from PIL import ImageFont

    return ImageFont.truetype(path, size=size, index=index)


def _load_font(style: SubtitleStyle, size: int) -> Any:
    if style.font_path is None:
        raise RenderError("burned-in subtitles need a font: set the subtitle style's font_path "
                          "(aicut.pipeline.fonts finds a CJK font, or install fonts-noto-cjk)")
    path = Path(style.font_path)
    try:
        return _truetype(str(path), size, style.font_index)
    except OSError as exc:
        raise RenderError(f"the subtitle font {path} cannot be loaded: {exc}") from exc


def render_subtitle_image(text: str, width: int, height: int, style: SubtitleStyle) -> Any:
    """The cue ``text`` drawn for a ``width``×``height`` displayed picture: a transparent RGBA PIL image with the
    wrapped lines centred above the bottom margin, outlined and shadowed."""
    from PIL import Image, ImageDraw

    size = max(10, round(height * style.size))
    font = _load_font(style, size)
    stroke = max(1, round(size * style.outline)) if style.outline > 0 else 0
    lines = wrap_text(text, lambda s: font.getlength(s) + 2 * stroke, width * style.max_width)
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    if not lines:
        return image
    ascent, descent = font.getmetrics()
    advance = round(size * style.line_spacing)
    block = advance * (len(lines) - 1) + ascent + descent + 2 * stroke
    top = height - round(height * style.bottom_margin) - block
    text_layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(text_layer)
    shadow_layer = Image.new("RGBA", (width, height), (0, 0, 0, 0)) if style.shadow_offset > 0 else None
    shadow_draw = ImageDraw.Draw(shadow_layer) if shadow_layer is not None else None
    offset = max(1, round(size * style.shadow_offset))
    for i, line in enumerate(lines):
        x = (width - font.getlength(line)) / 2
        y = top + i * advance + stroke
        if shadow_draw is not None:
            shadow_draw.text((x + offset, y + offset), line, font=font, fill=style.shadow_color,
                             stroke_width=stroke, stroke_fill=style.shadow_color)
        draw.text((x, y), line, font=font, fill=style.color, stroke_width=stroke, stroke_fill=style.outline_color)
    if shadow_layer is not None:
        image = Image.alpha_composite(image, shadow_layer)
    return Image.alpha_composite(image, text_layer)


# RGB → limited-range Y'CbCr rows (BT.601 for SD, BT.709 for HD, as players assume for untagged video).
_BT601 = np.array([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]]) / 255
_BT709 = np.array([[46.559, 156.629, 15.812], [-25.664, -86.336, 112.0], [112.0, -101.730, -10.270]]) / 255


@dataclass(frozen=True, slots=True)
class _Overlay:
    """A rendered cue as premultiplied limited-range YUV planes and alpha, placed at (x, y) of the stored picture."""

    x: int
    y: int
    y_pm: np.ndarray    # Y·α, uint32
    alpha: np.ndarray   # α in 0..255, uint32
    uv_pm: np.ndarray   # (2, h/2, w/2) of U·α, V·α at chroma resolution
    alpha_c: np.ndarray

    def blend(self, planes: Sequence[np.ndarray]) -> None:
        """Composite onto the (writable) yuv420p planes of a frame."""
        h, w = self.alpha.shape
        y_plane = planes[0][self.y:self.y + h, self.x:self.x + w]
        y_plane[:] = ((y_plane * (255 - self.alpha) + self.y_pm + 127) // 255).astype(np.uint8)
        cy, cx = self.y // 2, self.x // 2
        ch, cw = self.alpha_c.shape
        for k in (0, 1):
            plane = planes[1 + k][cy:cy + ch, cx:cx + cw]
            plane[:] = ((plane * (255 - self.alpha_c) + self.uv_pm[k] + 127) // 255).astype(np.uint8)


def _overlay_from_rgba(rgba: np.ndarray, rotation: int, width: int, height: int) -> _Overlay | None:
    """Turn a display-orientation RGBA image into an overlay on the stored picture (``width``×``height``)."""
    if rotation:
        # Players turn the stored picture clockwise by `rotation`; the overlay goes the other way to meet it.
        rgba = np.rot90(rgba, k=rotation // 90)
    rgba = rgba[:height, :width]
    alpha = rgba[:, :, 3]
    rows = np.flatnonzero(alpha.any(axis=1))
    cols = np.flatnonzero(alpha.any(axis=0))
    if rows.size == 0:
        return None
    # Even-aligned box, so its chroma lines up with the frame's 2×2 chroma blocks.
    y0, x0 = rows[0] // 2 * 2, cols[0] // 2 * 2
    y1, x1 = min(height, (rows[-1] + 2) // 2 * 2), min(width, (cols[-1] + 2) // 2 * 2)
    box = rgba[y0:y1, x0:x1].astype(np.float64)
    a = box[:, :, 3:4] / 255.0
    matrix = _BT709 if max(width, height) >= 1280 or min(width, height) >= 720 else _BT601
    yuv = box[:, :, :3] @ matrix.T + np.array([16.0, 128.0, 128.0])
    pm = yuv * a                                                   # premultiplied
    h, w = box.shape[:2]
    a_c = a[:, :, 0].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))  # 2×2 chroma blocks
    pm_c = pm[:, :, 1:].reshape(h // 2, 2, w // 2, 2, 2).mean(axis=(1, 3))
    return _Overlay(
        x=int(x0), y=int(y0),
        y_pm=np.rint(pm[:, :, 0] * 255).astype(np.uint32),
        alpha=np.rint(a[:, :, 0] * 255).astype(np.uint32),
        uv_pm=np.rint(np.moveaxis(pm_c, -1, 0) * 255).astype(np.uint32),
        alpha_c=np.rint(a_c * 255).astype(np.uint32),
    )


class _SubtitleBurner:
    """Draws the cues active at a frame's output time onto a copy of the frame; each cue is rendered once."""

    def __init__(self, cues: Sequence[Cue], style: SubtitleStyle, geometry: _Geometry) -> None:
        self.cues = sorted(cues, key=lambda c: c.start)
        self.style = style
        self.geometry = geometry
        self._first = 0
        self._cache: dict[int, _Overlay | None] = {}
        self.burned: set[int] = set()

    def apply(self, frame: av.VideoFrame, t: float) -> av.VideoFrame:
        cues = self.cues
        while self._first < len(cues) and cues[self._first].end <= t:
            self._cache.pop(self._first, None)
            self._first += 1
        active = [i for i in range(self._first, len(cues)) if cues[i].start <= t < cues[i].end]
        overlays = [o for o in (self._overlay(i) for i in active) if o is not None]
        if not overlays:
            return frame
        out = _copy_yuv420p(frame, frame.width, frame.height)  # never draw into a decoder's reference frame
        planes = _plane_arrays(out)
        for o in overlays:
            o.blend(planes)
        self.burned.update(active)
        return out

    def _overlay(self, i: int) -> _Overlay | None:
        if i not in self._cache:
            g = self.geometry
            dw, dh = g.display
            image = render_subtitle_image(self.cues[i].text, dw, dh, self.style)
            self._cache[i] = _overlay_from_rgba(np.asarray(image), g.rotation, g.width, g.height)
        return self._cache[i]


# --- soft subtitles -----------------------------------------------------------------------------------------------


_ASS_HEADER = """[Script Info]
ScriptType: v4.00+
PlayResX: 384
PlayResY: 288

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, \
Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, \
MarginV, Encoding
Style: Default,Sans,18,&H00FFFFFF,&H00FFFFFF,&H00000000,&H80000000,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,1

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
"""


def _ass_text(text: str) -> str:
    # mov_text is encoded from ASS dialogue: braces open override blocks and a backslash starts an escape there.
    text = text.replace("\\", "\uff3c").replace("{", "\uff5b").replace("}", "\uff5d")
    return "\\N".join(line.strip() for line in text.strip().splitlines())


def _timed_cues(cues: Sequence[Cue], duration: float) -> list[tuple[int, int, str]]:
    """Cues as (start ms, end ms, text) inside the output, in order, none overlapping the next."""
    end_ms = int(duration * 1000)
    rows = sorted((max(0, round(c.start * 1000)), min(end_ms, round(c.end * 1000)), c.text.strip()) for c in cues)
    out: list[tuple[int, int, str]] = []
    for i, (a, b, text) in enumerate(rows):
        if i + 1 < len(rows):
            b = min(b, rows[i + 1][0])
        if b > a and text:
            out.append((a, b, text))
    return out


def _subtitle_packets(stream: Any, cues: Sequence[tuple[int, int, str]]) -> list[av.Packet]:
    ctx = stream.codec_context
    packets = []
    for i, (a, b, text) in enumerate(cues):
        sub = SubtitleSet.create(f"{i},0,Default,,0,0,0,,{_ass_text(text)}".encode(), 0, b - a, a)
        packet = ctx.encode_subtitle(sub)
        packet.stream = stream
        packet.time_base = _SUB_TIME_BASE
        packet.pts = packet.dts = a
        packet.duration = b - a
        packets.append(packet)
    return packets


# --- the two threads ------------------------------------------------------------------------------------------------


class _Stopped(Exception):
    """The encoding side gave up; the producer leaves quietly."""


class _EncoderFailed(Exception):
    """An encoder backend failed (not the source, not the disk): NVENC may fall back to x264."""

    def __init__(self, error: RenderError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass(slots=True)
class _Start:
    geometry: _Geometry
    fps: Fraction


@dataclass(slots=True)
class _Done:
    burned: int      # cues drawn into the picture


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


class _Producer:
    """Decodes the source once and puts start, video, audio and done items on the queue (runs on its own thread)."""

    def __init__(self, container: Any, vstream: Any, astream: Any, plan: EditPlan, keeps: list[Keep],
                 options: RenderOptions, cues: Sequence[Cue], audio_format: tuple[int, str, int] | None,
                 q: queue.Queue[Any], stop: threading.Event, name: str) -> None:
        self.container, self.vstream, self.astream = container, vstream, astream
        self.plan, self.keeps, self.options, self.cues = plan, keeps, options, cues
        self.q, self.stop, self.name = q, stop, name
        self.starts = output_starts(keeps)
        self.end_ticks = max(1, round(self.starts[-1] * _TICKS))
        self.fps = _frame_rate(vstream)
        self.frame_s = 1.0 / float(self.fps)
        origin = container.start_time
        self.origin = origin / av.time_base if origin is not None else 0.0
        self.vcut = _VideoCutter(keeps, self.starts, self.frame_s)
        self.geometry: _Geometry | None = None
        self.burner: _SubtitleBurner | None = None
        self.reformatter = VideoReformatter()
        self.pending: tuple[av.VideoFrame, int] | None = None
        self.last_t: float | None = None
        self.held_audio: list[Any] = []
        if audio_format is not None:
            rate, layout, channels = audio_format
            fade = round(options.audio_fade_ms / 1000 * rate)
            self.resampler: Any = av.AudioResampler(format="fltp", layout=layout, rate=rate)
            self.acut: _AudioCutter | None = _AudioCutter(keeps, self.starts, rate, channels, fade,
                                                          plan.source_duration)
            self.framer: _AudioFramer | None = _AudioFramer(rate, layout)
            self.rate = rate
        else:
            self.acut = self.framer = None
            self.rate = 0
        self.apos: int | None = None

    def run(self) -> None:
        try:
            self._decode()
            self._put(_Done(len(self.burner.burned) if self.burner is not None else 0))
        except _Stopped:
            pass
        except BaseException as exc:  # handed to the encoding thread, which raises it in the caller
            try:
                self._put(exc)
            except _Stopped:
                pass

    def _put(self, item: Any) -> None:
        while True:
            if self.stop.is_set():
                raise _Stopped
            try:
                self.q.put(item, timeout=_PUT_POLL_S)
                return
            except queue.Full:
                continue

    def _decode(self) -> None:
        streams = [s for s in (self.vstream, self.astream) if s is not None]
        packets = self.container.demux(*streams)
        bad = 0
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.error.FFmpegError as exc:
                # A file cut short ends in a read error: render what was decoded, like a player plays it.
                if self.geometry is None:
                    raise MediaError(f"{self.name}: the video could not be read ({_reason(exc)}); "
                                     f"{_REEXPORT}") from exc
                logger.warning("%s: reading stopped early: %s", self.name, _reason(exc))
                break
            if self.stop.is_set():
                raise _Stopped
            try:
                frames = packet.decode()
            except av.error.FFmpegError as exc:  # a damaged packet: skip it, as a player would
                bad += 1
                logger.debug("%s: skipped a damaged packet: %s", self.name, _reason(exc))
                if bad > _MAX_BAD_PACKETS:
                    raise MediaError(f"{self.name} is damaged ({bad} unreadable packets); {_REEXPORT}") from exc
                continue
            if packet.stream.type == "video":
                for frame in frames:
                    self._video(frame)
            else:
                for frame in frames:
                    self._audio(frame)
        if bad:
            logger.warning("%s: skipped %d damaged packet(s)", self.name, bad)
        if self.geometry is None:
            raise MediaError(f"{self.name}: no picture of the video track could be decoded; {_REEXPORT}")
        end_t = self.keeps[-1].end if self.last_t is None else max(self.keeps[-1].end, self.last_t + self.frame_s)
        self._place(self.vcut.finish(end_t))
        if self.pending is not None:
            frame, ticks = self.pending
            self.pending = None
            self._put(("video", frame, ticks, max(1, self.end_ticks - ticks)))
        if self.acut is not None and self.framer is not None:
            for resampled in self.resampler.resample(None):
                self._samples(resampled)
            chunks = self.acut.finish()
            for f in self.framer.push(chunks) + self.framer.finish():
                self._audio_out(f)

    # video

    def _video(self, frame: av.VideoFrame) -> None:
        if self.geometry is None:
            self._start(frame)
        t = (float(frame.time) - self.origin) if frame.time is not None else (
            (self.last_t + self.frame_s) if self.last_t is not None else 0.0)
        self.last_t = t
        self._place(self.vcut.push(frame, t))

    def _start(self, frame: av.VideoFrame) -> None:
        g = _geometry(frame.width, frame.height, _clockwise(frame.rotation), self.options.max_height)
        self.geometry = g
        if self.options.burn_subtitles and self.cues:
            self.burner = _SubtitleBurner(_clipped_cues(self.cues, self.starts[-1]), self.options.subtitle_style, g)
        self._put(_Start(g, self.fps))
        for item in self.held_audio:
            self._put(item)
        self.held_audio = []

    def _place(self, placements: list[tuple[av.VideoFrame, float]]) -> None:
        if not placements:
            return
        picture = self._prepare(placements[0][0])
        for _, t_out in placements:
            ticks = round(t_out * _TICKS)
            if self.pending is not None and ticks <= self.pending[1]:
                continue  # rounds onto the previous frame's tick: that frame stays instead
            out = self.burner.apply(picture, t_out) if self.burner is not None else picture
            if self.pending is not None:
                frame, prev = self.pending
                self._put(("video", frame, prev, ticks - prev))
            self.pending = (out, ticks)

    def _prepare(self, frame: av.VideoFrame) -> av.VideoFrame:
        g = self.geometry
        assert g is not None
        if g.scale or (frame.width, frame.height) != (g.src_width, g.src_height):
            # Downscale (or a stream that changed size midway): one swscale pass to the output size.
            return self.reformatter.reformat(frame, width=g.width, height=g.height, format="yuv420p",
                                             interpolation="BICUBIC")
        if frame.format.name != "yuv420p":
            frame = self.reformatter.reformat(frame, format="yuv420p")
        if (frame.width, frame.height) != (g.width, g.height):
            frame = _copy_yuv420p(frame, g.width, g.height)  # odd size: drop the last row/column
        return frame

    # audio

    def _audio(self, frame: av.AudioFrame) -> None:
        if self.acut is None:
            return
        if self.apos is None:
            first = (float(frame.time) - self.origin) if frame.time is not None else 0.0
            self.apos = round(first * self.rate)
        for resampled in self.resampler.resample(frame):
            self._samples(resampled)

    def _samples(self, frame: av.AudioFrame) -> None:
        assert self.acut is not None and self.framer is not None and self.apos is not None
        data = frame.to_ndarray()
        chunks = self.acut.push(data, self.apos)
        self.apos += data.shape[1]
        for f in self.framer.push(chunks):
            self._audio_out(f)

    def _audio_out(self, frame: av.AudioFrame) -> None:
        item = ("audio", frame)
        if self.geometry is None:
            self.held_audio.append(item)  # the output's streams are made when the first picture is known
        else:
            self._put(item)


def _frame_rate(vstream: Any) -> Fraction:
    for rate in (vstream.average_rate, vstream.guessed_rate, vstream.base_rate):
        if rate and 1 <= float(rate) <= 240:
            return Fraction(rate).limit_denominator(1001)
    return Fraction(30)


def _clipped_cues(cues: Sequence[Cue], duration: float) -> list[Cue]:
    return [Cue(a / 1000, b / 1000, text) for a, b, text in _timed_cues(cues, duration)]


def _audio_format(astream: Any) -> tuple[int, str, int]:
    ctx = astream.codec_context
    rate = int(ctx.sample_rate or 0)
    rate = rate if rate in _AAC_RATES else 48000
    channels = int(getattr(ctx, "channels", 0) or 0)
    return (rate, "mono", 1) if channels == 1 else (rate, "stereo", 2)


# --- render ---------------------------------------------------------------------------------------------------------


def render(source: Path, plan: EditPlan, out: Path, options: RenderOptions = RenderOptions(), *,
           cues: Sequence[Cue] = (), nvenc_available: bool = False,
           progress: Callable[[float], None] | None = None) -> RenderResult:
    """Cut ``source`` by ``plan`` into the MP4 ``out`` (H.264 + AAC + a mov_text track of ``cues``, which are on
    the output timeline); NVENC is used only where ``nvenc_available`` says the worker has it (see
    :func:`~aicut.pipeline.encoders.choose_encoder`). ``progress`` gets 0…1 from the calling thread."""
    started = time.perf_counter()
    source, out = Path(source), Path(out)
    if not merged_keeps(plan):
        raise RenderError("the edit plan keeps nothing of the video, so there is nothing to render")
    if options.burn_subtitles:
        _check_font(options.subtitle_style)
    choice = choose_encoder(options.encoder, nvenc_available, allow_fallback=options.allow_fallback)
    logger.info("render %s → %s with %s (%s)", source.name, out.name, choice.name, choice.reason)
    try:
        return _render(source, plan, out, options, cues, choice, progress, started)
    except _EncoderFailed as failed:
        if choice.name == "nvenc" and options.allow_fallback:
            logger.warning("NVENC failed (%s); rendering again with x264", failed.error.message)
            fallback = EncoderChoice("x264", f"NVENC failed ({failed.error.message}); re-rendered with x264")
            try:
                return _render(source, plan, out, options, cues, fallback, progress, started)
            except _EncoderFailed as again:
                raise again.error from again
        raise failed.error from failed


def _check_font(style: SubtitleStyle) -> None:
    if style.font_path is None:
        raise RenderError("burned-in subtitles were asked for but no font was given (subtitle_style.font_path); "
                          "install a CJK font (fonts-noto-cjk) or set pipeline.font")
    if not Path(style.font_path).is_file():
        raise RenderError(f"burned-in subtitles were asked for but the font {style.font_path} does not exist")
    _load_font(style, 16)


def _open_source(source: Path) -> Any:
    try:
        return av.open(str(source), metadata_errors="replace")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise MediaError(f"{source.name} could not be read as media: {_reason(exc)}; {_REEXPORT}") from exc


def _render(source: Path, plan: EditPlan, out: Path, options: RenderOptions, cues: Sequence[Cue],
            choice: EncoderChoice, progress: Callable[[float], None] | None, started: float) -> RenderResult:
    keeps = merged_keeps(plan)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.stem}.partial.mp4")
    q: queue.Queue[Any] = queue.Queue(maxsize=max(2, options.queue_frames))
    stop = threading.Event()
    with _open_source(source) as src:
        videos = [s for s in src.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
        if not videos:
            raise NoVideoStreamError(f"{source.name} has no video track to render")
        vstream = videos[0]
        vstream.thread_type = "AUTO"
        audios = [s for s in src.streams.audio if s.codec_context is not None]  # None: no decoder for it
        astream = audios[0] if audios else None
        if astream is not None:
            astream.thread_type = "AUTO"
        audio_format = _audio_format(astream) if astream is not None else None
        producer = _Producer(src, vstream, astream, plan, keeps, options, cues, audio_format, q, stop,
                             source.name)
        thread = threading.Thread(target=producer.run, name=f"render-decode-{source.name}", daemon=True)
        writer = _Writer(partial, options, choice, audio_format, cues, producer.starts[-1], progress)
        thread.start()
        try:
            done = writer.consume(q)
        except BaseException:
            stop.set()
            writer.abort()
            _drain(q, thread)
            _remove(partial)
            raise
        finally:
            stop.set()
            thread.join()
    try:
        os.replace(partial, out)
    except OSError as exc:
        _remove(partial)
        raise RenderError(f"could not write {out}: {exc.strerror}") from exc
    return _result(out, writer, done, choice, started)


def _drain(q: queue.Queue[Any], thread: threading.Thread) -> None:
    # Unblock a producer waiting on a full queue; it sees the stop flag within one poll.
    while thread.is_alive():
        try:
            q.get(timeout=_PUT_POLL_S)
        except queue.Empty:
            pass


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        logger.warning("could not remove %s: %s", path, exc)


class _Writer:
    """The encoding side: makes the output's streams when the first picture is known, encodes, muxes, closes."""

    def __init__(self, path: Path, options: RenderOptions, choice: EncoderChoice,
                 audio_format: tuple[int, str, int] | None, cues: Sequence[Cue], duration: float,
                 progress: Callable[[float], None] | None) -> None:
        self.path, self.options, self.choice = path, options, choice
        self.audio_format, self.duration, self.progress = audio_format, duration, progress
        self.cues = _timed_cues(cues, duration) if options.soft_subtitles else []
        self.container: Any = None
        self.encoder: VideoEncoder | None = None
        self.astream: Any = None
        self.sub_packets: list[av.Packet] = []
        self.frames = 0
        self.geometry: _Geometry | None = None
        self._backlog: list[av.Packet] | None = []   # held until the first video packet exists (see AnnexBMuxer)
        self._reported = -1.0
        self._end_ticks = max(1, round(duration * _TICKS))

    def consume(self, q: queue.Queue[Any]) -> _Done:
        try:
            self.container = av.open(str(self.path), "w", format="mp4",
                                     container_options={"movflags": "+faststart"} if self.options.faststart else {})
        except (av.error.FFmpegError, OSError) as exc:
            raise RenderError(f"could not create {self.path}: {_reason(exc)}") from exc
        done: _Done | None = None
        try:
            while done is None:
                item = q.get()
                if isinstance(item, tuple) and item[0] == "video":
                    self._video(item[1], item[2], item[3])
                elif isinstance(item, tuple) and item[0] == "audio":
                    self._mux(self.astream.encode(item[1]))
                elif isinstance(item, _Start):
                    self._open_streams(item)
                elif isinstance(item, _Done):
                    done = item
                elif isinstance(item, BaseException):
                    raise item
            self._finish()
        except (_EncoderFailed, AicutError):
            raise
        except av.error.FFmpegError as exc:
            raise RenderError(f"writing {self.path.name} failed: {_reason(exc)}") from exc
        except OSError as exc:
            raise RenderError(f"writing {self.path.name} failed: {exc.strerror or exc}") from exc
        return done

    def abort(self) -> None:
        if self.container is not None:
            try:
                self.container.close()
            except Exception as exc:  # already failing; the partial file is removed next
                logger.debug("closing the unfinished output: %s", exc)
            self.container = None

    def _open_streams(self, start: _Start) -> None:
        g = start.geometry
        self.geometry = g
        self.encoder = make_encoder(self.choice.name, self.options.quality)
        try:
            self.encoder.open(self.container, g.width, g.height, start.fps, TIME_BASE, rotation=g.rotation)
        except RenderError as exc:
            raise _EncoderFailed(exc) from exc
        if self.audio_format is not None:
            rate, layout, _ = self.audio_format
            self.astream = self.container.add_stream("aac", rate=rate, layout=layout)
            self.astream.bit_rate = self.options.audio_bitrate
            self.astream.codec_context.time_base = Fraction(1, rate)
        if self.cues:
            sub = self.container.add_stream("mov_text")
            sub.codec_context.time_base = _SUB_TIME_BASE
            sub.codec_context.subtitle_header = _ASS_HEADER.encode()
            sub.time_base = _SUB_TIME_BASE
            sub.metadata["language"] = self.options.subtitle_language or "und"
            self.sub_packets = _subtitle_packets(sub, self.cues)

    def _video(self, frame: av.VideoFrame, ticks: int, duration: int) -> None:
        assert self.encoder is not None
        frame.pts = ticks
        frame.time_base = TIME_BASE
        frame.duration = duration
        try:
            packets = self.encoder.encode(frame)
        except RenderError as exc:
            raise _EncoderFailed(exc) from exc
        self.frames += 1
        self._mux_video(packets)
        self._subtitles_until(ticks / _TICKS)
        if self.progress is not None:
            done = min(1.0, (ticks + duration) / self._end_ticks)
            if done - self._reported >= 0.01:
                self._reported = done
                self.progress(done)

    def _mux_video(self, packets: list[av.Packet]) -> None:
        if packets and self._backlog is not None:
            held, self._backlog = self._backlog, None
            self.container.mux(packets)  # the video stream's parameters are final once it has a packet
            self.container.mux(held)
            return
        self._mux(packets)

    def _mux(self, packets: list[av.Packet]) -> None:
        if self._backlog is not None:
            self._backlog.extend(packets)
        elif packets:
            self.container.mux(packets)

    def _subtitles_until(self, t: float) -> None:
        # Muxed as the picture reaches them, so the interleaver never holds a whole subtitle track.
        while self.sub_packets and self.sub_packets[0].pts <= t * 1000 + 1000:
            self._mux([self.sub_packets.pop(0)])

    def _finish(self) -> None:
        if self.encoder is None:
            raise RenderError("no picture of the source was kept; nothing to render")
        try:
            packets = self.encoder.flush()
        except RenderError as exc:
            raise _EncoderFailed(exc) from exc
        self._mux_video(packets)
        if self.astream is not None:
            self._mux(self.astream.encode(None))
        self._subtitles_until(math.inf)
        if self._backlog:
            raise RenderError("the video encoder produced no packets")
        self.container.close()
        self.container = None
        if self.progress is not None and self._reported < 1.0:
            self.progress(1.0)


def _result(out: Path, writer: _Writer, done: _Done, choice: EncoderChoice, started: float) -> RenderResult:
    g = writer.geometry
    assert g is not None
    duration = video = audio = 0.0
    try:
        with av.open(str(out)) as c:
            duration = (c.duration or 0) / av.time_base
            for s in c.streams:
                if s.duration is not None and s.time_base is not None:
                    if s.type == "video":
                        video = float(s.duration * s.time_base)
                    elif s.type == "audio":
                        audio = float(s.duration * s.time_base)
    except av.error.FFmpegError as exc:
        raise RenderError(f"the rendered {out.name} cannot be read back: {_reason(exc)}") from exc
    result = RenderResult(
        path=out, duration_s=duration, encoder=choice.name, encoder_reason=choice.reason, frames=writer.frames,
        video_duration_s=video, audio_duration_s=audio, size_bytes=out.stat().st_size,
        wall_s=time.perf_counter() - started, width=g.width, height=g.height, rotation=g.rotation,
        subtitles=len(writer.cues), burned_cues=done.burned)
    logger.info("rendered %s: %.2fs, %d frames, %dx%d, %s, %.2fs wall", out.name, duration, writer.frames,
                g.width, g.height, choice.name, result.wall_s)
    return result


__all__ = ["RenderOptions", "RenderResult", "SubtitleStyle", "TIME_BASE", "merged_keeps", "output_starts",
           "render", "render_subtitle_image", "source_time", "wrap_text"]
