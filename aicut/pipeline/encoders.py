"""Video encoder backends for the render stage: x264 through PyAV, and NVENC through PyNvVideoCodec.

Both take yuv420p :class:`av.VideoFrame` objects stamped in the render's own time base and hand back packets
already bound to a stream of the output container, so the render muxes them the same way.

NVENC (PyNvVideoCodec 2.x, ``CreateEncoder`` / ``Encode`` / ``EndEncode``) returns a raw Annex-B elementary stream
with no container and no timestamps. :class:`AnnexBMuxer` turns it into MP4 packets: it splits the byte stream into
access units, marks IDR pictures as keyframes, gives each one the presentation time of the frame it encodes and a
decode time that never passes it, and gives the MP4 its parameter sets (SPS/PPS) as extradata. That part runs on any
machine, so the tests prove it with libx264's own Annex-B output.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any, NamedTuple, Protocol

import av
import av.error
import numpy as np
from av.video.reformatter import VideoReformatter

from aicut.errors import RenderError

logger = logging.getLogger(__name__)

ENCODERS = ("x264", "nvenc")
PREFERENCES = ("auto", *ENCODERS)


@dataclass(frozen=True, slots=True)
class EncodeOptions:
    """Quality settings both backends share (x264 reads ``crf``/``preset``; NVENC reads ``crf`` as its CQ target)."""

    crf: int = 20                    # x264 constant rate factor; NVENC's constant-quality (cq) target uses the same
    preset: str = "veryfast"         # x264 speed/efficiency preset
    profile: str = "high"            # H.264 profile (x264 only; NVENC autoselects its profile)
    tune: str = ""                   # x264 tune ("film", "animation", …); "" for none
    keyframe_interval_s: float = 2.0  # an IDR at least this often: seeking in players and on the forum stays quick
    threads: int = 0                 # x264 threads; 0 lets x264 choose (about 1.5 per core)
    nvenc_preset: str = "P4"         # NVENC P1 (fastest) … P7 (best); P4 is the balanced default
    nvenc_tuning: str = "high_quality"
    nvenc_codec: str = "h264"        # "h264" or "hevc"
    # B-frames reorder pictures; muxing them needs the per-picture timestamps newer PyNvVideoCodec releases echo
    # back (2.2.4, installed here, does), so the default keeps decode order = display order, which any release
    # handles.
    nvenc_bframes: int = 0
    gpu_id: int = 0


class EncoderChoice(NamedTuple):
    """Which backend a render uses, and a sentence for the report saying why."""

    name: str
    reason: str


def choose_encoder(preference: str, nvenc_available: bool, *, allow_fallback: bool = True,
                   nvenc_reason: str = "") -> EncoderChoice:
    """Pick ``"x264"`` or ``"nvenc"`` for ``preference`` ("auto", "x264", "nvenc") on a worker with or without
    NVENC; ``nvenc`` asked for where there is none falls back to x264, or raises RenderError without fallback."""
    pref = (preference or "auto").strip().lower()
    if pref not in PREFERENCES:
        raise RenderError(f"unknown encoder {preference!r}: use one of {', '.join(PREFERENCES)}")
    missing = "this worker has no usable NVENC" + (f" ({nvenc_reason})" if nvenc_reason else "")
    if pref == "x264":
        return EncoderChoice("x264", "x264 was asked for")
    if pref == "auto":
        if nvenc_available:
            return EncoderChoice("nvenc", "auto: this worker has NVENC")
        return EncoderChoice("x264", f"auto: {missing}, so x264 (CPU)")
    if nvenc_available:
        return EncoderChoice("nvenc", "nvenc was asked for")
    if allow_fallback:
        return EncoderChoice("x264", f"nvenc was asked for but {missing}; fell back to x264 (CPU)")
    raise RenderError(f"nvenc was asked for but {missing}, and fallback to x264 is off")


class VideoEncoder(Protocol):
    """An encoder backend: opened on an output container, fed yuv420p frames in display order, drained once."""

    name: str

    def open(self, container: Any, width: int, height: int, fps: Fraction, time_base: Fraction, *,
             rotation: int = 0) -> None:
        """Add the video stream to ``container``; ``rotation`` is the clockwise turn players apply (display matrix)."""
        ...

    def encode(self, frame: av.VideoFrame) -> list[av.Packet]:
        """Encode one frame (``pts``, ``time_base`` and ``duration`` set); returns packets ready to mux."""
        ...

    def flush(self) -> list[av.Packet]:
        """Drain the encoder at the end of the stream."""
        ...


def _keyframe_interval(fps: Fraction, seconds: float) -> int:
    return max(1, round(float(fps) * seconds))


def _reason(exc: BaseException) -> str:
    """The useful first line of an exception (FFmpegError's str() repeats the file name; strerror does not)."""
    text = getattr(exc, "strerror", None) or str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --- x264 ----------------------------------------------------------------------------------------------------------


class X264Encoder:
    """libx264 through PyAV, with :class:`EncodeOptions` (CRF, preset, profile, keyframe interval, threads)."""

    name = "x264"

    def __init__(self, options: EncodeOptions = EncodeOptions()) -> None:
        self.options = options
        self.stream: Any = None
        # libx264 leaves packet durations at 0; the MP4's last sample takes its length from the packet, so the
        # durations of the frames are carried over here (keyed by pts, which x264 passes through unchanged).
        self._durations: dict[int, int] = {}

    def open(self, container: Any, width: int, height: int, fps: Fraction, time_base: Fraction, *,
             rotation: int = 0) -> None:
        """Add an H.264 stream for libx264 to ``container``."""
        o = self.options
        try:
            stream = container.add_stream("libx264", rate=fps)
        except (ValueError, av.error.FFmpegError) as exc:  # UnknownCodecError is a ValueError
            raise RenderError(f"libx264 is not available in this PyAV build: {_reason(exc)}") from exc
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = time_base
        stream.codec_context.thread_count = max(0, o.threads)
        # PyAV defaults encoders to slice threads; x264's frame threads (what the ffmpeg CLI gets) compress better
        # and keep more cores busy.
        stream.codec_context.thread_type = "FRAME"
        opts = {"crf": str(o.crf), "preset": o.preset, "profile": o.profile,
                "g": str(_keyframe_interval(fps, o.keyframe_interval_s))}
        if o.tune:
            opts["tune"] = o.tune
        stream.options = opts
        if rotation:
            stream.set_display_rotation(-rotation)  # PyAV takes counter-clockwise degrees
        self.stream = stream

    def encode(self, frame: av.VideoFrame) -> list[av.Packet]:
        """Encode one frame."""
        if frame.pts is not None and frame.duration:
            self._durations[frame.pts] = frame.duration
        return self._timed(self.stream.encode(frame))

    def flush(self) -> list[av.Packet]:
        """Drain libx264's lookahead and frame threads."""
        return self._timed(self.stream.encode(None))

    def _timed(self, packets: list[av.Packet]) -> list[av.Packet]:
        for p in packets:
            if p.pts is not None:
                d = self._durations.pop(p.pts, 0)
                if d:
                    p.duration = d
        return packets


# --- Annex-B parsing -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccessUnit:
    """One coded picture of an Annex-B stream: its NAL units (with 4-byte start codes) and what they say."""

    data: bytes
    keyframe: bool
    parameter_sets: tuple[bytes, ...]  # SPS/PPS (and VPS for HEVC) NAL units found in it, without start codes


def split_nal_units(data: bytes) -> list[bytes]:
    """The NAL units of a complete Annex-B byte stream, without start codes."""
    nals, _ = _split(data, final=True)
    return nals


def _split(data: bytes, *, final: bool) -> tuple[list[bytes], int]:
    """(complete NAL units, offset of the unfinished tail). Without ``final`` the last NAL unit may still grow."""
    starts: list[int] = []
    i = data.find(b"\x00\x00\x01")
    while i >= 0:
        starts.append(i + 3)
        i = data.find(b"\x00\x00\x01", i + 3)
    if not starts:
        return [], 0 if not final else len(data)
    nals: list[bytes] = []
    for a, b in zip(starts, starts[1:]):
        nal = data[a:b - 3].rstrip(b"\x00")  # a NAL unit never ends in 0x00: those are the next 4-byte start code
        if nal:
            nals.append(nal)
    if final:
        last = data[starts[-1]:].rstrip(b"\x00")
        if last:
            nals.append(last)
        return nals, len(data)
    # The tail is kept from its start code (including a leading zero of a 4-byte one) for the next feed.
    tail = starts[-1] - 3
    if tail > 0 and data[tail - 1] == 0:
        tail -= 1
    return nals, tail


class _Syntax(NamedTuple):
    vcl: frozenset[int]
    starts_au: frozenset[int]      # non-VCL types that open a new access unit when a picture is already in one
    keyframe: frozenset[int]
    parameter_sets: frozenset[int]


_H264 = _Syntax(vcl=frozenset(range(1, 6)), starts_au=frozenset({6, 7, 8, 9, 14, 15, 16, 17, 18}),
                keyframe=frozenset({5}), parameter_sets=frozenset({7, 8, 13}))
_HEVC = _Syntax(vcl=frozenset(range(0, 32)),
                starts_au=frozenset({32, 33, 34, 35, 39, 41, 42, 43, 44, *range(48, 56)}),
                keyframe=frozenset(range(16, 22)), parameter_sets=frozenset({32, 33, 34}))
_SYNTAX = {"h264": _H264, "hevc": _HEVC}


def _nal_type(nal: bytes, codec: str) -> int:
    return nal[0] & 0x1F if codec == "h264" else (nal[0] >> 1) & 0x3F


def _first_slice_of_picture(nal: bytes, codec: str) -> bool:
    # H.264: first_mb_in_slice is ue(v) right after the 1-byte header; it is 0 exactly when its first bit is 1.
    # HEVC: first_slice_segment_in_pic_flag is the first bit after the 2-byte header.
    if codec == "h264":
        return len(nal) > 1 and bool(nal[1] & 0x80)
    return len(nal) > 2 and bool(nal[2] & 0x80)


class AccessUnitSplitter:
    """Cuts an Annex-B byte stream, fed in chunks of any size, into access units (H.264 7.4.1.2.3, HEVC 7.4.2.4.4)."""

    def __init__(self, codec: str = "h264") -> None:
        if codec not in _SYNTAX:
            raise RenderError(f"Annex-B parsing knows h264 and hevc, not {codec!r}")
        self.codec = codec
        self._syntax = _SYNTAX[codec]
        self._buf = b""
        self._nals: list[bytes] = []
        self._has_picture = False

    def feed(self, data: bytes) -> list[AccessUnit]:
        """Add bytes; returns the access units completed by them (the last one waits for the next to begin)."""
        self._buf += bytes(data)
        nals, tail = _split(self._buf, final=False)
        self._buf = self._buf[tail:]
        out: list[AccessUnit] = []
        for nal in nals:
            self._add(nal, out)
        return out

    def flush(self) -> list[AccessUnit]:
        """The access units still held, at the end of the stream."""
        nals, _ = _split(self._buf, final=True)
        self._buf = b""
        out: list[AccessUnit] = []
        for nal in nals:
            self._add(nal, out)
        if self._nals:
            out.append(self._unit())
        return out

    def _add(self, nal: bytes, out: list[AccessUnit]) -> None:
        t = _nal_type(nal, self.codec)
        vcl = t in self._syntax.vcl
        if self._has_picture and ((vcl and _first_slice_of_picture(nal, self.codec)) or t in self._syntax.starts_au):
            out.append(self._unit())
        self._nals.append(nal)
        self._has_picture = self._has_picture or vcl

    def _unit(self) -> AccessUnit:
        types = [_nal_type(n, self.codec) for n in self._nals]
        unit = AccessUnit(
            data=b"".join(b"\x00\x00\x00\x01" + n for n in self._nals),
            keyframe=any(t in self._syntax.keyframe for t in types),
            parameter_sets=tuple(n for n, t in zip(self._nals, types) if t in self._syntax.parameter_sets),
        )
        self._nals = []
        self._has_picture = False
        return unit


def access_unit(data: bytes, codec: str = "h264") -> AccessUnit:
    """One whole access unit (as NVENC returns per picture), parsed for keyframe and parameter sets."""
    splitter = AccessUnitSplitter(codec)
    units = splitter.feed(data) + splitter.flush()
    if len(units) == 1:
        return units[0]
    # More than one picture in one chunk would be an encoder oddity; keep them together as the encoder gave them.
    return AccessUnit(data=b"".join(u.data for u in units), keyframe=any(u.keyframe for u in units),
                      parameter_sets=tuple(p for u in units for p in u.parameter_sets))


# --- muxing a raw elementary stream -------------------------------------------------------------------------------


class EncodedChunk(NamedTuple):
    """What an external encoder returned: bytes, and (if it says) the input index and whether it is an IDR."""

    data: bytes
    index: int | None = None
    picture_type: int | None = None


# PyNvVideoCodec's NV_ENC_PIC_TYPE values: 2 is I, 3 is IDR.
_NV_PIC_TYPE_IDR = 3


def normalize_encoder_output(result: Any) -> tuple[list[EncodedChunk], bool]:
    """PyNvVideoCodec's Encode/EndEncode result as chunks, and whether each chunk is one whole picture.

    2.2.4 (installed here) returns a list of dicts (``data``, ``timestamp`` = the ``inputTimeStamp`` we set,
    ``picture_type``), one per picture; older releases return the bitstream as one bytes-like object with the
    pictures in decode order.
    """
    if result is None:
        return [], False
    if isinstance(result, (bytes, bytearray, memoryview, np.ndarray)):
        data = result.tobytes() if isinstance(result, np.ndarray) else bytes(result)
        return ([EncodedChunk(data)] if data else []), False
    chunks: list[EncodedChunk] = []
    per_picture = True
    for item in result:
        if isinstance(item, dict):
            ts = item.get("timestamp")
            chunks.append(EncodedChunk(bytes(item["data"]), int(ts) if ts is not None else None,
                                       item.get("picture_type")))
        elif isinstance(item, int):  # a flat list of byte values
            return [EncodedChunk(bytes(result))], False
        else:
            chunks.append(EncodedChunk(item.tobytes() if isinstance(item, np.ndarray) else bytes(item)))
            per_picture = False
    return [c for c in chunks if c.data], per_picture


# A placeholder encoder per codec: see AnnexBMuxer, rotated case.
_PLACEHOLDER_ENCODER = {"h264": "libx264", "hevc": "libx265"}


class AnnexBMuxer:
    """Muxes an external encoder's Annex-B stream as one video stream of a PyAV output container.

    The caller registers every frame it sends to the encoder (:meth:`submit`, in display order) and passes what the
    encoder returned to :meth:`add`. Access units come back in decode order; each gets the pts of the frame it
    encodes (from the encoder's echoed input index, or, without one, the next frame in order, which needs an encoder
    without B-frames) and a dts from the display-order timestamps held back by ``reorder_depth`` frames, which keeps
    dts increasing and never after pts.

    PyAV 18 writes a display matrix only for streams that have a codec context, and a codec-context-free stream
    (``add_mux_stream``) is the documented way to mux pre-encoded packets. So an unrotated video uses
    ``add_mux_stream`` (PyAV then extracts SPS/PPS from the first packet for the MP4's avcC/hvcC), while a rotated
    one gets a stream whose codec context is a placeholder libx264/libx265 opened by hand, never fed a frame: it
    carries the rotation, and its extradata is replaced by the external stream's parameter sets before anything is
    muxed. The caller must therefore mux nothing (no audio either) before the first video packet comes back.
    """

    def __init__(self, container: Any, codec: str, width: int, height: int, fps: Fraction, time_base: Fraction, *,
                 rotation: int = 0, reorder_depth: int = 0, extradata: bytes = b"") -> None:
        if codec not in _SYNTAX:
            raise RenderError(f"cannot mux a raw {codec!r} stream; h264 and hevc are supported")
        self.codec = codec
        self.time_base = time_base
        self.reorder_depth = max(0, reorder_depth)
        self._fallback_extradata = extradata
        self._frame_ticks = max(1, round(1 / (fps * time_base))) if fps else 1
        self._splitter = AccessUnitSplitter(codec)
        self._pts: list[int] = []          # display-order pts of every submitted frame, by input index
        self._durations: list[int] = []
        self._units_out = 0
        self._needs_extradata = bool(rotation)
        if rotation:
            stream = container.add_stream(_PLACEHOLDER_ENCODER[codec], rate=fps)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            ctx = stream.codec_context
            ctx.time_base = time_base
            ctx.thread_count = 1
            ctx.options = ({"preset": "ultrafast"} if codec == "h264"
                           else {"preset": "ultrafast", "x265-params": "log-level=error"})
            ctx.open()  # opened now so the container's header does not open it again and overwrite our extradata
            stream.set_display_rotation(-rotation)
        else:
            stream = container.add_mux_stream(codec, rate=fps, width=width, height=height)
        stream.time_base = time_base
        self.stream = stream

    def submit(self, pts: int, duration: int) -> int:
        """Register the next frame sent to the encoder (display order); returns its input index."""
        if self._pts and pts <= self._pts[-1]:
            raise RenderError(f"video frames must be submitted in display order (pts {pts} after {self._pts[-1]})")
        self._pts.append(pts)
        self._durations.append(max(1, duration))
        return len(self._pts) - 1

    def add(self, result: Any) -> list[av.Packet]:
        """Packets for what the encoder returned (any of the shapes :func:`normalize_encoder_output` knows)."""
        chunks, per_picture = normalize_encoder_output(result)
        return self.add_chunks(chunks, per_picture=per_picture)

    def add_chunks(self, chunks: Iterable[EncodedChunk], *, per_picture: bool) -> list[av.Packet]:
        """Packets for encoder output: whole pictures with their input index, or a plain byte stream."""
        packets: list[av.Packet] = []
        for chunk in chunks:
            if per_picture:
                unit = access_unit(chunk.data, self.codec)
                if chunk.picture_type == _NV_PIC_TYPE_IDR and not unit.keyframe:
                    unit = AccessUnit(unit.data, True, unit.parameter_sets)
                packets.append(self._packet(unit, chunk.index))
            else:
                packets.extend(self._packet(unit, None) for unit in self._splitter.feed(chunk.data))
        return packets

    def flush(self) -> list[av.Packet]:
        """Packets for what the splitter still holds; call after the encoder's own flush."""
        return [self._packet(unit, None) for unit in self._splitter.flush()]

    def _packet(self, unit: AccessUnit, index: int | None) -> av.Packet:
        i = self._units_out
        if index is None:
            if self.reorder_depth:
                raise RenderError("the encoder reordered pictures (B-frames) but reported no timestamps; "
                                  "set nvenc_bframes=0 or update PyNvVideoCodec")
            index = i
        if not 0 <= index < len(self._pts):
            raise RenderError(f"the encoder returned picture {index}, but only {len(self._pts)} frames were sent")
        if self._needs_extradata:
            self._set_extradata(unit)
        d = self.reorder_depth
        dts = self._pts[i - d] if i >= d else self._pts[0] - (d - i) * self._frame_ticks
        packet = av.Packet(unit.data)
        packet.stream = self.stream
        packet.time_base = self.time_base
        packet.pts = self._pts[index]
        packet.dts = min(dts, self._pts[index])
        packet.duration = self._durations[index]
        packet.is_keyframe = unit.keyframe
        self._units_out += 1
        return packet

    def _set_extradata(self, unit: AccessUnit) -> None:
        if unit.parameter_sets:
            extradata = b"".join(b"\x00\x00\x00\x01" + n for n in unit.parameter_sets)
        elif self._fallback_extradata:
            extradata = self._fallback_extradata
        else:
            raise RenderError("the encoder's first picture carries no SPS/PPS and none were given: "
                              "the MP4 would not play")
        self.stream.codec_context.extradata = extradata
        self._needs_extradata = False


# --- NVENC ---------------------------------------------------------------------------------------------------------


def load_pynvvideocodec() -> Any:
    """Import PyNvVideoCodec, or raise RenderError saying why NVENC cannot be used here."""
    try:
        import PyNvVideoCodec as nvc  # noqa: N813
    except ImportError as exc:
        raise RenderError(f"PyNvVideoCodec is not installed: {exc}") from exc
    except Exception as exc:  # RuntimeError/OSError when the NVIDIA encode library or driver is missing
        raise RenderError(f"PyNvVideoCodec cannot load NVENC here: {_reason(exc)}") from exc
    return nvc


def nvenc_config(options: EncodeOptions, fps: Fraction) -> dict[str, str]:
    """The ``CreateEncoder`` keyword arguments for ``options`` (PyNvVideoCodec turns every value into a string)."""
    if options.nvenc_codec not in _SYNTAX:
        raise RenderError(f"NVENC codec must be h264 or hevc, not {options.nvenc_codec!r}")
    gop = _keyframe_interval(fps, options.keyframe_interval_s)
    return {
        "gpu_id": str(options.gpu_id),
        "codec": options.nvenc_codec,
        "preset": options.nvenc_preset.upper(),
        "tuning_info": options.nvenc_tuning,
        # Constant quality: VBR with a CQ target and no average bitrate, NVENC's counterpart of x264's CRF.
        "rc": "vbr",
        "cq": str(options.crf),
        "bitrate": "0",
        "fps": str(max(1, round(float(fps)))),
        "gop": str(gop),
        "idrperiod": str(gop),  # every GOP starts with an IDR, so every keyframe is a sync sample in the MP4
        "bf": str(max(0, options.nvenc_bframes)),
    }


class NvencEncoder:
    """NVENC through PyNvVideoCodec (host-memory NV12 input), its Annex-B output muxed by :class:`AnnexBMuxer`."""

    name = "nvenc"

    def __init__(self, options: EncodeOptions = EncodeOptions()) -> None:
        self.options = options
        self.stream: Any = None
        self._enc: Any = None
        self._muxer: AnnexBMuxer | None = None
        self._pic_params: Any = None
        self._size = (0, 0)
        self._reformatter = VideoReformatter()  # one swscale context for the whole stream, not one per frame

    def open(self, container: Any, width: int, height: int, fps: Fraction, time_base: Fraction, *,
             rotation: int = 0) -> None:
        """Open an NVENC session of ``width``×``height`` and add its stream to ``container``."""
        if width % 2 or height % 2:
            raise RenderError(f"NVENC needs even picture sizes, got {width}x{height}")
        nvc = load_pynvvideocodec()
        # NV_ENC_PIC_PARAMS (in 2.2.4) tags each frame with its input index, which the output dicts echo back.
        self._pic_params = getattr(nvc, "NV_ENC_PIC_PARAMS", None)
        options = self.options
        if options.nvenc_bframes and self._pic_params is None:
            logger.warning("this PyNvVideoCodec reports no picture timestamps; encoding without B-frames")
            options = replace(options, nvenc_bframes=0)
        config = nvenc_config(options, fps)
        try:
            self._enc = nvc.CreateEncoder(width, height, "NV12", True, **config)
        except Exception as exc:  # PyNvVCException, PyNvVCExceptionUnsupported, RuntimeError
            raise RenderError(f"NVENC could not open a {width}x{height} {options.nvenc_codec} encoder: "
                              f"{_reason(exc)}") from exc
        extradata = b""
        get_params = getattr(self._enc, "GetSequenceParams", None)
        if get_params is not None:
            try:
                extradata = bytes(get_params())
            except Exception as exc:  # only a fallback: the first IDR normally carries SPS/PPS in-band
                logger.debug("GetSequenceParams failed: %s", exc)
        self._muxer = AnnexBMuxer(container, options.nvenc_codec, width, height, fps, time_base, rotation=rotation,
                                  reorder_depth=int(config["bf"]), extradata=extradata)
        self.stream = self._muxer.stream
        self._size = (width, height)
        logger.info("NVENC %s %dx%d: %s", options.nvenc_codec, width, height, config)

    def encode(self, frame: av.VideoFrame) -> list[av.Packet]:
        """Convert ``frame`` to NV12 and encode it."""
        assert self._muxer is not None, "open() first"
        if (frame.width, frame.height) != self._size:
            raise RenderError(f"frame is {frame.width}x{frame.height}, the NVENC session {self._size[0]}x"
                              f"{self._size[1]}")
        nv12 = np.ascontiguousarray(self._reformatter.reformat(frame, format="nv12").to_ndarray()).reshape(-1)
        index = self._muxer.submit(int(frame.pts or 0), int(frame.duration or 0))
        try:
            if self._pic_params is not None:
                params = self._pic_params()
                params.inputTimeStamp = index
                result = self._enc.Encode(nv12, params)
            else:
                result = self._enc.Encode(nv12)
        except Exception as exc:
            raise RenderError(f"NVENC failed on frame {index}: {_reason(exc)}", retryable=True) from exc
        return self._muxer.add(result)

    def flush(self) -> list[av.Packet]:
        """EndEncode, then whatever the Annex-B splitter still holds."""
        assert self._muxer is not None, "open() first"
        try:
            result = self._enc.EndEncode()
        except Exception as exc:
            raise RenderError(f"NVENC failed while flushing: {_reason(exc)}", retryable=True) from exc
        packets = self._muxer.add(result) + self._muxer.flush()
        self._enc = None  # ends the session: NVENC sessions per GPU are limited
        return packets


def make_encoder(name: str, options: EncodeOptions = EncodeOptions()) -> VideoEncoder:
    """The backend called ``name`` ("x264" or "nvenc")."""
    if name == "x264":
        return X264Encoder(options)
    if name == "nvenc":
        return NvencEncoder(options)
    raise RenderError(f"unknown encoder backend {name!r}: use one of {', '.join(ENCODERS)}")

