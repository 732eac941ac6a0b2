"""Stage 7b, cover: a JPEG from a well-chosen frame with the post's three cover titles (封面标题上/中/下) drawn on it.

The frame is decoded with PyAV. "auto" looks at a handful of evenly spaced moments (never the first or last half
second, where a speaker is still settling or reaching for the camera) and keeps the sharpest one that is neither too
dark nor blown out: sharpness is the variance of the Laplacian of the grey picture, a standard focus measure that
also punishes motion blur. The titles are big, heavy, outlined text on a faint dark band — top in the upper third,
middle (the largest) in the centre, bottom in the lower third — each fitted to the width, wrapped to two lines (three
for a very long one) when one would be too small.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import av.error
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from aicut.errors import ConfigError, MediaError, NoVideoStreamError
from aicut.models import CoverTitles
from aicut.pipeline.edl import EditPlan
from aicut.pipeline.fonts import load_font
from aicut.pipeline.subtitles import is_cjk_text, line_breaks

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TitleStyle:
    """How one of the three titles looks; sizes are fractions of the cover's height."""

    max_size: float                        # largest font size, as a fraction of the image height
    fill: str = "#FFFFFF"
    centre_y: float = 0.5                  # vertical centre of the title block, as a fraction of the height


@dataclass(frozen=True, slots=True)
class CoverOptions:
    """Frame choice, output size and title style of the cover."""

    frame: float | str = "auto"            # seconds into the (output) video, or "auto": the sharpest well-lit moment
    candidates: int = 10                   # moments "auto" compares, evenly spaced over the video
    skip_start_s: float = 0.5              # "auto" never picks the first ...
    skip_end_s: float = 0.5                # ... or the last half second
    dark_mean: float = 40.0                # mean luma (0-255) below which a frame counts as too dark ...
    bright_mean: float = 215.0             # ... and above which as blown out; such frames score lower
    max_long_side: int = 1280              # the source size, scaled down so its long side is at most this
    jpeg_quality: int = 90
    weight: int = 900                      # font weight for variable fonts (Noto Sans CJK: 900 is Black)
    stroke_ratio: float = 0.09             # outline width as a fraction of the font size
    stroke_fill: str = "#000000"
    band_opacity: float = 0.35             # the dark band behind each title; 0 draws none
    margin_ratio: float = 0.05             # free space left and right, as a fraction of the width
    wrap_below: float = 0.7                # a title wraps when on one line it would be under this share of its size
    max_title_lines: int = 3
    max_title_chars: int = 40              # longer titles are shortened with "…": nobody reads more on a cover
    top: TitleStyle = field(default_factory=lambda: TitleStyle(max_size=0.075, fill="#FFFFFF", centre_y=1 / 6))
    middle: TitleStyle = field(default_factory=lambda: TitleStyle(max_size=0.12, fill="#FFD400", centre_y=0.5))
    bottom: TitleStyle = field(default_factory=lambda: TitleStyle(max_size=0.075, fill="#FFFFFF", centre_y=5 / 6))


@dataclass(frozen=True, slots=True)
class CoverResult:
    """What make_cover wrote."""

    path: Path
    time_s: float                          # the frame's time on the timeline ``frame`` is given in (output time)
    width: int
    height: int
    titles: tuple[str, ...] = ()           # which titles were drawn: "top", "middle", "bottom"
    sharpness: float = 0.0                 # Laplacian variance of the chosen frame (0 when not measured)


# --- frame choice ------------------------------------------------------------------------------------------------


def _clockwise(ccw_degrees: float) -> int:
    # FFmpeg's display matrix angle is counter-clockwise; a player turns the picture clockwise by the negation.
    return int(round(-ccw_degrees / 90.0)) * 90 % 360


def _duration(container: av.container.InputContainer, stream: av.VideoStream) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return 0.0


def _decode_at(container: av.container.InputContainer, stream: av.VideoStream, t: float) -> av.VideoFrame | None:
    """The first frame at or after ``t`` seconds from the stream's start (the last frame if ``t`` is past the end)."""
    base = float(stream.time_base or Fraction(1, 90000))
    start = float(stream.start_time * base) if stream.start_time is not None else 0.0
    target = start + max(0.0, t)
    # Seek lands on the keyframe at or before the target; decoding then walks forward to the wanted frame.
    container.seek(int(target / base), stream=stream, backward=True)
    half_frame = 0.5 / float(stream.average_rate or 25)
    last: av.VideoFrame | None = None
    for frame in container.decode(stream):
        if frame.time is None:
            continue
        last = frame
        if frame.time >= target - half_frame:
            return frame
    return last


def sharpness(gray: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of a grey picture: high for crisp detail, low for blur."""
    g = gray.astype(np.float32)
    lap = g[1:-1, :-2] + g[1:-1, 2:] + g[:-2, 1:-1] + g[2:, 1:-1] - 4.0 * g[1:-1, 1:-1]
    return float(lap.var()) if lap.size else 0.0


def _score(frame: av.VideoFrame, options: CoverOptions) -> tuple[float, float]:
    """(score, sharpness) of a frame: sharpness, scaled down when the frame is too dark or too bright."""
    # Measured at a fixed modest width so scores of one video compare fairly and the work stays small.
    width = min(frame.width, 480)
    height = max(2, round(frame.height * width / frame.width))
    gray = frame.reformat(width=width, height=height, format="gray").to_ndarray()
    # Sharpness of the centre, where a talking head's face is: a crisp bookshelf behind a blurred face is no cover.
    h, w = gray.shape
    sharp = sharpness(gray[int(h * 0.15):int(h * 0.85), int(w * 0.2):int(w * 0.8)])
    mean = float(gray.mean())
    exposure = 1.0
    if mean < options.dark_mean:
        exposure = max(0.05, mean / options.dark_mean)
    elif mean > options.bright_mean:
        exposure = max(0.05, (255.0 - mean) / (255.0 - options.bright_mean))
    return sharp * exposure, sharp


def _candidate_times(duration: float, options: CoverOptions) -> list[float]:
    lo, hi = options.skip_start_s, duration - options.skip_end_s
    if hi <= lo:  # a very short video: its middle
        return [max(0.0, duration / 2)]
    n = max(1, options.candidates)
    return [lo + (hi - lo) * (i + 0.5) / n for i in range(n)]


def _to_source(plan: EditPlan, t: float) -> float:
    """Source time of output time ``t`` under ``plan`` (the inverse of ``plan.to_output_time``)."""
    acc = 0.0
    for keep in plan.keeps:
        if t < acc + keep.duration or keep is plan.keeps[-1]:
            return keep.start + min(max(0.0, t - acc), keep.duration)
        acc += keep.duration
    return t


def _to_image(frame: av.VideoFrame) -> Image.Image:
    image = frame.to_image()
    turn = _clockwise(getattr(frame, "rotation", 0) or 0)
    transposes = {90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_90}
    return image.transpose(transposes[turn]) if turn in transposes else image


def choose_frame(video: Path, options: CoverOptions = CoverOptions(), *,
                 plan: EditPlan | None = None) -> tuple[Image.Image, float, float]:
    """The cover's picture (upright, RGB), its time, and its sharpness (0 for a fixed time).

    Times are on the output timeline: with ``plan``, ``video`` is the uncut source and only kept moments count.
    """
    try:
        with av.open(str(video)) as container:
            if not container.streams.video:
                raise NoVideoStreamError(f"{video.name}: there is no video track to take a cover picture from")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            duration = plan.output_duration if plan is not None else _duration(container, stream)
            if str(options.frame).strip().lower() == "auto":
                times = _candidate_times(duration, options)
            else:
                try:
                    fixed = float(options.frame)
                except ValueError:
                    raise ValueError(f"CoverOptions.frame must be seconds or 'auto', not {options.frame!r}") from None
                times = [min(max(0.0, fixed), max(0.0, duration - 0.001))]
            best: tuple[float, float, float, Image.Image] | None = None
            for t in times:
                try:
                    frame = _decode_at(container, stream, _to_source(plan, t) if plan is not None else t)
                except av.error.FFmpegError as exc:  # one damaged stretch; the other moments may still decode
                    logger.debug("cover candidate %.2fs does not decode: %s", t, exc)
                    continue
                if frame is None:
                    continue
                score, sharp = _score(frame, options) if len(times) > 1 else (0.0, 0.0)
                logger.debug("cover candidate %.2fs: score %.1f sharpness %.1f", t, score, sharp)
                if best is None or score > best[0]:
                    best = (score, t, sharp, _to_image(frame))
    except av.error.FFmpegError as exc:
        raise MediaError(f"{video.name}: no picture for the cover could be decoded "
                         f"({getattr(exc, 'strerror', None) or exc})") from exc
    if best is None:
        raise MediaError(f"{video.name}: no picture for the cover could be decoded")
    return best[3], best[1], best[2]


# --- titles -------------------------------------------------------------------------------------------------------


_TRAILING_PAUSE = "，、；：,;:"


def _wrap(text: str, n_lines: int, width_of: Callable[[str], float]) -> list[str]:
    """``text`` in ``n_lines`` lines at allowed breaks: the widest line as narrow as possible, breaks after
    punctuation or at spaces preferred over breaks between two characters of a word."""
    if n_lines <= 1:
        return [text]
    cjk = is_cjk_text(text)
    breaks = line_breaks(text, cjk=cjk or " " not in text)
    best: tuple[float, list[str]] | None = None

    def search(start: int, left: int, lines: list[str], cost: float) -> None:
        nonlocal best
        if left == 1:
            done = lines + [text[start:].strip()]
            if all(done):
                # A pause mark at a line end is dropped in CJK titles, as in subtitles: the break shows the pause.
                done = [line.rstrip(_TRAILING_PAUSE).strip() or line for line in done] if cjk else done
                score = max(width_of(line) for line in done) * (1 + 0.05 * cost)
                if best is None or score < best[0]:
                    best = (score, done)
            return
        for i, c in breaks:
            if i > start:
                search(i, left - 1, lines + [text[start:i].strip()], cost + c)

    search(0, n_lines, [], 0.0)
    return best[1] if best else [text]


@dataclass(slots=True)
class _Block:
    lines: list[str]
    font: ImageFont.FreeTypeFont
    stroke: int
    line_height: int


def _fit(text: str, style: TitleStyle, image_w: int, image_h: int, font_path: Path,
         options: CoverOptions) -> _Block:
    """The largest font size and fewest lines at which ``text`` fits its region: width within the margins, height
    within a third of the image."""
    avail_w = image_w * (1 - 2 * options.margin_ratio)
    avail_h = image_h / 3 * 0.9
    max_size = max(8, round(image_h * style.max_size))
    ref = load_font(font_path, 100, weight=options.weight)
    ref_stroke = round(100 * options.stroke_ratio)

    widths: dict[str, float] = {}

    def ref_width(line: str) -> float:
        if line not in widths:
            left, _, right, _ = ref.getbbox(line, stroke_width=ref_stroke)
            widths[line] = float(right - left)
        return widths[line]

    best: tuple[int, list[str]] | None = None
    for n_lines in range(1, max(1, options.max_title_lines) + 1):
        lines = _wrap(text, n_lines, ref_width)
        if best is not None and len(lines) <= len(best[1]):
            break  # no more places to break
        widest = max(ref_width(line) for line in lines) or 1.0
        # Width scales with the size, so one measurement at 100 px gives the size; height allows 1.2 per line.
        size = min(max_size, int(100 * avail_w / widest), int(avail_h / (1.2 * len(lines))))
        if best is None or size > best[0] * 1.15:  # another line must buy a clearly bigger title
            best = (size, lines)
        if best[0] >= options.wrap_below * max_size:
            break
    assert best is not None
    size, lines = best
    # Rounding and stroke do not scale exactly: shrink until every line really fits.
    while True:
        font = load_font(font_path, max(6, size), weight=options.weight)
        stroke = max(1, round(size * options.stroke_ratio))
        line_widths = []
        for line in lines:
            left, _, right, _ = font.getbbox(line, stroke_width=stroke)
            line_widths.append(right - left)
        if max(line_widths) <= avail_w or size <= 6:
            return _Block(lines, font, stroke, round(size * 1.2))
        size = int(size * 0.95)


def _draw_titles(image: Image.Image, titles: CoverTitles, font_path: Path, options: CoverOptions) -> tuple[str, ...]:
    w, h = image.size
    blocks: list[tuple[str, TitleStyle, _Block]] = []
    for name, style in (("top", options.top), ("middle", options.middle), ("bottom", options.bottom)):
        text = " ".join((getattr(titles, name, "") or "").split())
        if len(text) > options.max_title_chars > 1:
            logger.warning("cover title %s is %d characters; shortened to %d", name, len(text),
                           options.max_title_chars)
            text = text[: options.max_title_chars - 1].rstrip() + "…"
        if text:
            blocks.append((name, style, _fit(text, style, w, h, font_path, options)))
    if not blocks:
        return ()
    if options.band_opacity > 0:
        # A faint full-width band behind each title keeps it readable on a busy or bright background.
        overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
        band = ImageDraw.Draw(overlay)
        alpha = round(255 * min(1.0, options.band_opacity))
        for _, style, block in blocks:
            cy = h * style.centre_y
            half = block.line_height * len(block.lines) / 2 + block.line_height * 0.15
            band.rectangle((0, round(cy - half), w, round(cy + half)), fill=(0, 0, 0, alpha))
        image.paste(Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB"))
    draw = ImageDraw.Draw(image)
    for _, style, block in blocks:
        cy = h * style.centre_y
        top = cy - block.line_height * len(block.lines) / 2
        for k, line in enumerate(block.lines):
            draw.text((w / 2, top + block.line_height * (k + 0.5)), line, font=block.font, fill=style.fill,
                      stroke_width=block.stroke, stroke_fill=options.stroke_fill, anchor="mm")
    return tuple(name for name, _, _ in blocks)


def _cover_size(w: int, h: int, cap: int) -> tuple[int, int]:
    scale = min(1.0, cap / max(w, h)) if cap > 0 else 1.0
    return max(1, round(w * scale)), max(1, round(h * scale))


def make_cover(video: Path, out: Path, titles: CoverTitles, options: CoverOptions = CoverOptions(), *,
               font: Path | None, plan: EditPlan | None = None) -> CoverResult:
    """Write the cover JPEG to ``out``: a chosen frame of ``video`` with ``titles`` drawn in ``font``.

    ``video`` is normally the cut output; pass the uncut source with its ``plan`` to pick only kept moments. The font
    is needed only when there is a title to draw (see ``fonts.find_cjk_font``); a bad one raises ConfigError.
    """
    video, out = Path(video), Path(out)
    has_titles = any((getattr(titles, name, "") or "").strip() for name in ("top", "middle", "bottom"))
    if has_titles:
        if font is None:
            raise ConfigError("the cover has titles but no font was given; see pipeline.font")
        load_font(Path(font), 12)  # fail on a bad font before the slower decode
    picture, time_s, sharp = choose_frame(video, options, plan=plan)
    picture = picture.convert("RGB")
    size = _cover_size(*picture.size, options.max_long_side)
    if size != picture.size:
        picture = picture.resize(size, Image.Resampling.LANCZOS)
    drawn = _draw_titles(picture, titles, Path(font), options) if has_titles and font is not None else ()
    out.parent.mkdir(parents=True, exist_ok=True)
    # Written beside and renamed, so a retry or a crash never leaves half a JPEG under the final name.
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        picture.save(tmp, "JPEG", quality=options.jpeg_quality, optimize=True)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    logger.info("cover %s: frame at %.2fs, %dx%d, titles %s", out.name, time_s, *picture.size, ",".join(drawn) or "-")
    return CoverResult(out, time_s, picture.size[0], picture.size[1], drawn, sharp)
