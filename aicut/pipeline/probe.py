"""Stage 3, probe: what a downloaded file holds (container, duration, streams), and whether the pipeline can use it.

Everything comes from PyAV. Rotation is not exposed on a PyAV 18 stream (``set_display_rotation`` writes it, nothing
reads it back), so it is read from the display matrix FFmpeg attaches to decoded frames: probe decodes the first
frame of each video stream, which also proves the video is decodable at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import av.error

from aicut.errors import EmptyMediaError, MediaError, NoAudioStreamError, NoVideoStreamError
from aicut.models import AudioStreamInfo, MediaInfo, VideoStreamInfo
from aicut.pipeline.fetch import sniff_media

logger = logging.getLogger(__name__)

_REEXPORT = "re-export the video as MP4 (H.264/AAC) and post it again"
# How far into a file probe looks for the first decodable frame of each video stream before calling it broken.
_MAX_PROBE_PACKETS = 600


@dataclass(frozen=True, slots=True)
class ProbeOptions:
    """What a source must have, and the limits it must stay within."""

    require_video: bool = True
    require_audio: bool = True
    max_duration_s: float = 4 * 3600
    max_pixels: int = 4096 * 2160


def _reason(exc: BaseException) -> str:
    # FFmpegError's str() repeats the file path; strerror is the part a person can use.
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _clock(seconds: float) -> str:
    whole = int(round(seconds))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _damage_hint(path: Path) -> str:
    # A file that starts like media but will not open was usually cut short on upload or download.
    try:
        with path.open("rb") as fh:
            fmt = sniff_media(fh.read(1024))
    except OSError:
        return ""
    return f" (it starts like a {fmt} file, so it is probably damaged or incomplete)" if fmt else ""


def _codec_name(ctx: Any) -> str:
    # The codec, not the decoder FFmpeg picked for it: "mp3", not "mp3float".
    return str(getattr(ctx.codec, "canonical_name", "") or ctx.name)


def _fps(stream: Any) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return float(rate)
    return 0.0


def _duration_s(container: Any) -> float:
    if container.duration:
        return container.duration / av.time_base
    best = 0.0
    for stream in container.streams:
        if stream.duration and stream.time_base:
            best = max(best, float(stream.duration * stream.time_base))
    return best


def _clockwise(ccw_degrees: float) -> int:
    # FFmpeg's display matrix angle is counter-clockwise in [-180, 180]; the field is the clockwise turn a player
    # applies, in 0/90/180/270, like the old "rotate" tag phones wrote (a portrait phone video reads 90).
    return int(round(-ccw_degrees / 90.0)) * 90 % 360


def _first_frame_rotations(container: Any, streams: list[Any], name: str) -> dict[int, int]:
    """Decode the first frame of each video stream; returns {stream index: clockwise rotation}."""
    rotations: dict[int, int] = {}
    errors: dict[int, str] = {}
    wanted = {s.index for s in streams}
    packets = 0
    try:
        for packet in container.demux(*streams):
            packets += 1
            index = packet.stream.index
            if index not in rotations:
                try:
                    frames = packet.decode()
                except av.error.FFmpegError as exc:  # a damaged packet; the next keyframe may still decode
                    errors[index] = _reason(exc)
                    frames = []
                if frames:
                    rotations[index] = _clockwise(frames[0].rotation)
            if wanted <= rotations.keys() or packets >= _MAX_PROBE_PACKETS:
                break
    except av.error.FFmpegError as exc:
        errors.setdefault(streams[0].index, _reason(exc))
    if streams[0].index not in rotations:
        why = errors.get(streams[0].index, "no picture could be decoded")
        raise MediaError(f"{name}: the video track could not be decoded ({why}); {_REEXPORT}")
    return rotations


def probe(path: Path, options: ProbeOptions = ProbeOptions()) -> MediaInfo:
    """Read container, duration and streams of ``path``; raise a MediaError a person can act on if unusable.

    ``VideoStreamInfo.width``/``height`` are the stored picture size; ``rotation`` is the clockwise turn (0, 90,
    180 or 270) needed to show it upright. Cover art embedded in audio files is not counted as a video stream.
    """
    path = Path(path)
    name = path.name
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise MediaError(f"{name} could not be read: {exc.strerror}") from exc
    if size == 0:
        raise EmptyMediaError(f"{name} is an empty file (0 bytes); {_REEXPORT}")
    try:
        # Chinese phones and editors write GBK tags; a bad tag must not make the whole file unreadable.
        container = av.open(str(path), metadata_errors="replace")
    except (av.error.FFmpegError, UnicodeDecodeError, OSError) as exc:
        raise MediaError(f"{name} could not be read as media: {_reason(exc)}{_damage_hint(path)}; {_REEXPORT}") from exc
    with container:
        return _inspect(container, name, size, options)


def _inspect(container: Any, name: str, size: int, options: ProbeOptions) -> MediaInfo:
    video_streams = [
        s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic
    ]
    audio_streams = list(container.streams.audio)
    if options.require_video and not video_streams:
        raise NoVideoStreamError(
            f"{name} has no video track (it is audio only or a still picture); post the video itself"
        )
    if options.require_audio and not audio_streams:
        raise NoAudioStreamError(
            f"{name} has no audio track, so there is no speech to cut by; re-export the video with its sound"
        )
    duration = _duration_s(container)
    if duration <= 0:
        raise EmptyMediaError(f"{name} has no length (zero or unknown duration); {_REEXPORT}")
    if duration > options.max_duration_s:
        raise MediaError(
            f"{name} is {_clock(duration)} long, over the {_clock(options.max_duration_s)} limit; "
            "split it into shorter parts"
        )

    for stream in video_streams:
        ctx = stream.codec_context
        if ctx is None:  # PyAV gives no codec context when FFmpeg has no decoder for the track
            raise MediaError(f"{name}: the video track uses a codec that cannot be decoded; {_REEXPORT}")
        width, height = ctx.width, ctx.height
        if width * height > options.max_pixels:
            raise MediaError(
                f"{name} is {width}x{height} ({width * height:,} pixels), over the limit of "
                f"{options.max_pixels:,} pixels (4096x2160 is {4096 * 2160:,}); re-export it at 4K or lower"
            )
        if width <= 0 or height <= 0:
            raise MediaError(f"{name}: the video track has no picture size; {_REEXPORT}")
    rotations = _first_frame_rotations(container, video_streams, name) if video_streams else {}
    videos = []
    for stream in video_streams:
        ctx = stream.codec_context
        videos.append(
            VideoStreamInfo(
                codec=_codec_name(ctx),
                width=ctx.width,
                height=ctx.height,
                fps=round(_fps(stream), 3),
                rotation=rotations.get(stream.index, 0),
                pix_fmt=ctx.pix_fmt or "",
                bit_rate=int(stream.bit_rate or ctx.bit_rate or 0),
            )
        )

    audios = []
    for stream in audio_streams:
        ctx = stream.codec_context
        audios.append(
            AudioStreamInfo(
                codec=_codec_name(ctx) if ctx is not None else "",
                sample_rate=int(ctx.sample_rate or 0) if ctx is not None else 0,
                channels=int(ctx.channels or 0) if ctx is not None else 0,
                bit_rate=int((ctx.bit_rate if ctx is not None else 0) or 0),
            )
        )
    info = MediaInfo(
        container=container.format.name,
        duration_s=round(duration, 6),
        size_bytes=size,
        video=tuple(videos),
        audio=tuple(audios),
    )
    logger.debug("probed %s: %s", name, info)
    return info
