"""Real media for tests, made with PyAV: a moving picture and a tone, in the containers the pipeline meets."""

from __future__ import annotations

import math
from array import array
from pathlib import Path

import av

# container → (PyAV muxer, video codec, audio codec); the codecs are ones the bundled FFmpeg can encode.
_FORMATS: dict[str, tuple[str, str | None, str | None]] = {
    "mp4": ("mp4", "libx264", "aac"),
    "mov": ("mov", "libx264", "aac"),
    "mkv": ("matroska", "libx264", "aac"),
    "matroska": ("matroska", "libx264", "aac"),
    "ts": ("mpegts", "libx264", "aac"),
    "mpegts": ("mpegts", "libx264", "aac"),
    "m4a": ("ipod", None, "aac"),
    "mp3": ("mp3", None, "libmp3lame"),
    "wav": ("wav", None, "pcm_s16le"),
}


# sample format (without the planar "p") → (array typecode, full scale)
_SAMPLE_TYPES = {"s16": ("h", 32767), "s32": ("i", 2**31 - 1), "flt": ("f", 1.0), "dbl": ("d", 1.0)}


def _video_frame(i: int, width: int, height: int, fps: int) -> av.VideoFrame:
    """A gradient that scrolls plus a bright bar that sweeps across: every frame differs from the last."""
    shift = (i * 4) % 256
    bar_x = (i * width // max(1, 2 * fps)) % width
    bar_w = max(2, width // 16)
    row = bytearray((x + shift) % 256 for x in range(width))
    for x in range(bar_x, min(width, bar_x + bar_w)):
        row[x] = 235
    y_plane = bytes(row) * height
    cw, ch = (width + 1) // 2, (height + 1) // 2
    u_plane = bytes([(128 + i * 3) % 256]) * (cw * ch)
    v_plane = bytes([(128 - i * 3) % 256]) * (cw * ch)
    frame = av.VideoFrame(width, height, "yuv420p")
    for plane, data, w, h in zip(frame.planes, (y_plane, u_plane, v_plane), (width, cw, cw), (height, ch, ch)):
        if plane.line_size == w:
            plane.update(data)
        else:  # the plane has row padding: lay each row at its stride
            padded = bytearray(plane.buffer_size)
            for r in range(h):
                padded[r * plane.line_size : r * plane.line_size + w] = data[r * w : (r + 1) * w]
            plane.update(bytes(padded))
    frame.pts = i
    return frame


def make_clip(
    path: Path,
    *,
    seconds: float = 2.0,
    width: int = 320,
    height: int = 240,
    fps: int = 25,
    video: bool = True,
    audio: bool = True,
    container: str | None = None,
    sample_rate: int = 48000,
    channels: int = 1,
    tone_hz: float = 440.0,
    rotation: int = 0,
) -> Path:
    """Write a real clip to ``path``: H.264 video (``rotation`` degrees clockwise in the display matrix) and an
    AAC tone; ``container`` defaults to the file suffix (mp4, mov, mkv, ts, m4a, mp3, wav)."""
    path = Path(path)
    kind = (container or path.suffix.lstrip(".") or "mp4").lower()
    if kind not in _FORMATS:
        raise ValueError(f"make_clip does not know the container {kind!r}; use one of {sorted(_FORMATS)}")
    muxer, vcodec, acodec = _FORMATS[kind]
    if video and vcodec is None:
        raise ValueError(f"{kind} holds no video; pass video=False")
    if not (video or audio):
        raise ValueError("a clip needs video, audio or both")
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format=muxer) as out:
        vstream = astream = None
        if video:
            vstream = out.add_stream(vcodec, rate=fps)
            vstream.width, vstream.height, vstream.pix_fmt = width, height, "yuv420p"
            vstream.options = {"preset": "ultrafast", "tune": "zerolatency"}
            if rotation:
                vstream.set_display_rotation(-rotation)  # PyAV takes counter-clockwise degrees
        if audio:
            layout = "mono" if channels == 1 else "stereo"
            astream = out.add_stream(acodec, rate=sample_rate, layout=layout)
        if vstream is not None:
            for i in range(int(round(seconds * fps))):
                for packet in vstream.encode(_video_frame(i, width, height, fps)):
                    out.mux(packet)
            for packet in vstream.encode():
                out.mux(packet)
        if astream is not None:
            _write_tone(out, astream, seconds, sample_rate, channels, tone_hz)
    return path


def _write_tone(out: av.container.OutputContainer, stream: av.AudioStream, seconds: float, rate: int,
                channels: int, tone_hz: float) -> None:
    fmt = stream.codec_context.format.name if stream.codec_context.format else "fltp"
    frame_size = stream.codec_context.frame_size or 1024
    total = int(seconds * rate)
    layout = "mono" if channels == 1 else "stereo"
    done = 0
    while done < total:
        n = min(frame_size, total - done)
        samples = [0.5 * math.sin(2 * math.pi * tone_hz * (done + k) / rate) for k in range(n)]
        frame = av.AudioFrame(format=fmt, layout=layout, samples=n)
        if fmt.rstrip("p") not in _SAMPLE_TYPES:
            raise ValueError(f"make_clip cannot fill audio sample format {fmt}")
        typecode, scale = _SAMPLE_TYPES[fmt.rstrip("p")]
        values = [v * scale if typecode in "fd" else int(v * scale) for v in samples]
        if fmt.endswith("p"):  # planar: one plane per channel
            data = array(typecode, values).tobytes()
            for plane in frame.planes:
                plane.update(data.ljust(plane.buffer_size, b"\0"))
        else:  # packed: channels interleaved in one plane
            data = array(typecode, (v for v in values for _ in range(channels))).tobytes()
            frame.planes[0].update(data.ljust(frame.planes[0].buffer_size, b"\0"))
        frame.sample_rate = rate
        frame.pts = done
        for packet in stream.encode(frame):
            out.mux(packet)
        done += n
    for packet in stream.encode():
        out.mux(packet)
