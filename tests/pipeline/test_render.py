"""The render stage on real media made here with PyAV: cutting, A/V sync, joins, MP4 layout, subtitles, rotation,
odd sizes, variable frame rate, the encoder choice, and the NVENC muxing path fed with libx264's Annex-B output.

The clips made here paint each frame's index as a row of black and white blocks (read back after x264) and, for
sync, put a short tone burst every 100 ms of source time, so both the picture and the sound say where in the source
they came from.
"""

from __future__ import annotations

import io
import math
import random
import struct
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from aicut.errors import MediaError, RenderError
from aicut.pipeline.edl import Cue, EditPlan, Keep
from aicut.pipeline.encoders import (AccessUnitSplitter, AnnexBMuxer, EncodedChunk, EncodeOptions, NvencEncoder,
                                     X264Encoder, choose_encoder, normalize_encoder_output, nvenc_config,
                                     split_nal_units)
from aicut.pipeline.probe import ProbeOptions, probe
from aicut.pipeline.render import (RenderOptions, SubtitleStyle, merged_keeps, render, render_subtitle_image,
                                   source_time, wrap_text)

FONT = next((p for p in (Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
                         Path("/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf")) if p.is_file()), None)
needs_font = pytest.mark.skipif(FONT is None, reason="no DejaVu or Liberation font on this machine to draw with")

BITS = 10           # frame index bits painted in the top band (up to 1023 frames)
RATE = 48000
NO_AUDIO = ProbeOptions(require_audio=False)
BURST_EVERY = 0.1   # a tone burst every 100 ms of source time …
BURST_AT = 0.05     # … starting at 50 ms
BURST_LEN = 0.008


# --- clips that say where they come from --------------------------------------------------------------------------


def _picture(i: int, width: int, height: int) -> np.ndarray:
    """RGB: frame index ``i`` in binary as blocks across the top band; a moving gradient below it."""
    img = np.empty((height, width, 3), np.uint8)
    x = np.arange(width)
    img[:] = ((x[None, :] * 2 + np.arange(height)[:, None] + i * 5) % 200 + 28).astype(np.uint8)[:, :, None]
    band = max(12, height // 6)
    block = width // BITS
    for b in range(BITS):
        img[:band, b * block:(b + 1) * block] = 255 if (i >> b) & 1 else 0
    return img


def read_index(frame: av.VideoFrame) -> int:
    """The frame index painted by :func:`_picture`, read from a decoded frame in stored orientation."""
    gray = frame.reformat(format="gray").to_ndarray().astype(np.float32)
    height, width = gray.shape
    band = max(12, height // 6)
    block = width // BITS
    value = 0
    for b in range(BITS):
        cell = gray[2:band - 2, b * block + 2:(b + 1) * block - 2]
        if cell.mean() > 128:
            value |= 1 << b
    return value


def _bursts(n: int) -> np.ndarray:
    t = np.arange(n) / RATE
    phase = (t - BURST_AT) % BURST_EVERY
    on = (t >= BURST_AT) & (phase < BURST_LEN)
    return np.where(on, 0.7 * np.sin(2 * np.pi * 2000 * t), 0.0).astype(np.float32)


def _tone(n: int, hz: float = 440.0) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * hz * np.arange(n) / RATE)).astype(np.float32)


def make_coded_clip(path: Path, *, seconds: float = 4.0, fps: int = 25, width: int = 160, height: int = 120,
                    times: Sequence[float] | None = None, rotation: int = 0, audio: str | None = "bursts",
                    pix_fmt: str = "yuv420p") -> Path:
    """An MP4 whose frame ``i`` shows ``i`` (at source time ``times[i]``, default ``i/fps``) and whose sound is
    tone bursts every 100 ms ("bursts"), a 440 Hz tone ("tone") or absent (None). x264 takes odd sizes only in
    4:4:4 (``pix_fmt="yuv444p"``)."""
    times = list(times) if times is not None else [i / fps for i in range(int(round(seconds * fps)))]
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = width, height, pix_fmt
        v.codec_context.time_base = Fraction(1, 1000)
        v.options = {"preset": "ultrafast", "crf": "18"}
        if rotation:
            v.set_display_rotation(-rotation)
        a = None
        if audio:
            a = out.add_stream("aac", rate=RATE, layout="mono")
        for i, t in enumerate(times):
            frame = av.VideoFrame.from_ndarray(_picture(i, width, height), format="rgb24")
            frame.pts = round(t * 1000)
            frame.time_base = Fraction(1, 1000)
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
        if a is not None:
            n = int(seconds * RATE)
            samples = _bursts(n) if audio == "bursts" else _tone(n)
            for start in range(0, n, 1024):
                chunk = samples[start:start + 1024]
                frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="fltp", layout="mono")
                frame.sample_rate, frame.pts = RATE, start
                out.mux(a.encode(frame))
            out.mux(a.encode(None))
    return path


def decode_video(path: Path) -> list[tuple[float, int, av.VideoFrame]]:
    """(output time, painted index, frame) of every frame."""
    with av.open(str(path)) as c:
        return [(float(f.time), read_index(f), f) for f in c.decode(video=0)]


def decode_audio(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        chunks = [f.to_ndarray()[0] for f in c.decode(audio=0)]
    return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)


def top_level_boxes(path: Path) -> list[str]:
    boxes = []
    with open(path, "rb") as fh:
        while header := fh.read(8):
            size, kind = struct.unpack(">I4s", header)
            if size == 1:
                size = struct.unpack(">Q", fh.read(8))[0] - 8
            boxes.append(kind.decode("latin-1"))
            fh.seek(size - 8, 1)
    return boxes


def _plan(source_duration: float, *keeps: tuple[float, float]) -> EditPlan:
    return EditPlan(source_duration, tuple(Keep(a, b) for a, b in keeps))


@pytest.fixture(scope="module")
def coded_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_coded_clip(tmp_path_factory.mktemp("render") / "coded.mp4", seconds=6.0)


@pytest.fixture(scope="module")
def tone_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_coded_clip(tmp_path_factory.mktemp("render") / "tone.mp4", seconds=3.0, audio="tone")


# Keeps that start and end between frames, one shorter than a frame's gap would allow to hide, and a long cut.
PLAN = _plan(6.0, (0.23, 1.11), (1.5, 2.02), (2.9, 3.45), (5.01, 5.87))


# --- the output timeline ------------------------------------------------------------------------------------------


def test_source_time_inverts_the_plan() -> None:
    plan = _plan(10.0, (1.0, 2.0), (3.0, 3.5), (6.0, 9.0))
    for t_src in (1.0, 1.5, 1.999, 3.0, 3.25, 6.0, 8.5):
        t_out = plan.to_output_time(t_src)
        assert t_out is not None
        assert source_time(plan, t_out) == pytest.approx(t_src)
    assert source_time(plan, 0.0) == 1.0
    assert source_time(plan, plan.output_duration) == pytest.approx(9.0)
    assert source_time(plan, -0.1) is None
    assert source_time(plan, plan.output_duration + 0.1) is None


def test_touching_keeps_are_one() -> None:
    plan = _plan(5.0, (1.0, 2.0), (2.00001, 3.0), (3.5, 3.5), (4.0, 4.5))
    assert merged_keeps(plan) == [Keep(1.0, 3.0), Keep(4.0, 4.5)]


# --- encoder choice -----------------------------------------------------------------------------------------------


def test_without_nvenc_auto_chooses_x264_and_says_why() -> None:
    choice = choose_encoder("auto", False, nvenc_reason="GPU 0 (H200) has no NVENC hardware encoder")
    assert choice.name == "x264"
    assert "no usable NVENC" in choice.reason and "H200" in choice.reason
    assert choose_encoder("auto", True).name == "nvenc"
    assert choose_encoder("x264", True).name == "x264"


def test_nvenc_asked_for_without_nvenc() -> None:
    fallback = choose_encoder("nvenc", False)
    assert fallback.name == "x264" and "fell back to x264" in fallback.reason
    with pytest.raises(RenderError, match="fallback to x264 is off"):
        choose_encoder("nvenc", False, allow_fallback=False)
    with pytest.raises(RenderError, match="unknown encoder"):
        choose_encoder("vp9", True)


def test_nvenc_config_matches_the_x264_quality_target() -> None:
    cfg = nvenc_config(EncodeOptions(crf=20, keyframe_interval_s=2.0), Fraction(30000, 1001))
    assert cfg["codec"] == "h264" and cfg["rc"] == "vbr" and cfg["cq"] == "20"
    assert cfg["gop"] == cfg["idrperiod"] == "60" and cfg["fps"] == "30" and cfg["bf"] == "0"
    assert all(isinstance(v, str) for v in cfg.values())


# --- Annex-B: what the NVENC path muxes ---------------------------------------------------------------------------


def annexb_stream(n: int, *, codec: str = "libx264", bframes: int = 0, fps: int = 25, width: int = 160,
                  height: int = 120) -> tuple[bytes, list[tuple[bytes, int]]]:
    """A raw Annex-B stream of ``n`` coded frames (as NVENC would hand it over) and its pictures in decode order
    as (bytes, display index)."""
    buf = io.BytesIO()
    pictures: list[tuple[bytes, int]] = []
    fmt = "h264" if codec == "libx264" else "hevc"
    with av.open(buf, "w", format=fmt) as out:
        s = out.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.codec_context.time_base = Fraction(1, fps)
        if codec == "libx264":
            s.options = {"preset": "veryfast", "bf": str(bframes), "g": str(fps)}
        else:
            s.options = {"preset": "ultrafast", "x265-params": f"log-level=error:bframes={bframes}:keyint={fps}"}
        for i in range(n + 1):
            frame = None
            if i < n:
                frame = av.VideoFrame.from_ndarray(_picture(i, width, height), format="rgb24")
                frame.pts = i
            for p in s.encode(frame):
                pictures.append((bytes(p), int(p.pts)))
                out.mux(p)
    return buf.getvalue(), pictures


def _mux_annexb(path: Path, chunks: Sequence[EncodedChunk], *, per_picture: bool, n: int, fps: int = 25,
                codec: str = "h264", rotation: int = 0, reorder: int = 0, chunk_sizes: bool = False) -> None:
    tb = Fraction(1, 90000)
    step = 90000 // fps
    with av.open(str(path), "w", format="mp4", container_options={"movflags": "+faststart"}) as out:
        muxer = AnnexBMuxer(out, codec, 160, 120, Fraction(fps), tb, rotation=rotation, reorder_depth=reorder)
        for i in range(n):
            assert muxer.submit(i * step, step) == i
        packets = muxer.add_chunks(chunks, per_picture=per_picture) + muxer.flush()
        assert len(packets) == n
        out.mux(packets)


def test_annexb_access_units_and_keyframes() -> None:
    data, pictures = annexb_stream(60)
    splitter = AccessUnitSplitter("h264")
    units = splitter.feed(data) + splitter.flush()
    assert len(units) == 60
    assert [u.keyframe for u in units] == [i % 25 == 0 for i in range(60)]
    assert units[0].parameter_sets and {n[0] & 0x1F for n in units[0].parameter_sets} == {7, 8}
    assert b"".join(u.data for u in units).replace(b"\x00\x00\x00\x01", b"\x00\x00\x01") == \
        data.replace(b"\x00\x00\x00\x01", b"\x00\x00\x01")
    # Fed in arbitrary pieces (start codes split across them), the same units come out.
    rng = random.Random(7)
    splitter = AccessUnitSplitter("h264")
    pieces, pos = [], 0
    while pos < len(data):
        step = rng.randint(1, 900)
        pieces.append(data[pos:pos + step])
        pos += step
    again = [u for piece in pieces for u in splitter.feed(piece)] + splitter.flush()
    assert [u.data for u in again] == [u.data for u in units]
    assert len(split_nal_units(data)) >= 60 + 2


def test_hevc_access_units() -> None:
    data, pictures = annexb_stream(30, codec="libx265")
    splitter = AccessUnitSplitter("hevc")
    units = splitter.feed(data) + splitter.flush()
    assert len(units) == len(pictures) == 30
    assert units[0].keyframe and len(units[0].parameter_sets) == 3  # VPS, SPS, PPS


def test_raw_annexb_stream_muxes_into_a_playable_mp4(tmp_path: Path) -> None:
    data, _ = annexb_stream(50)
    out = tmp_path / "raw.mp4"
    # As an older PyNvVideoCodec returns it: one byte stream, pictures in decode order (no B-frames).
    chunks, per_picture = normalize_encoder_output(bytearray(data))
    assert not per_picture
    _mux_annexb(out, chunks, per_picture=False, n=50)
    frames = decode_video(out)
    assert [i for _, i, _ in frames] == list(range(50))
    assert [t for t, _, _ in frames] == pytest.approx([i / 25 for i in range(50)])
    info = probe(out, NO_AUDIO)
    assert info.duration_s == pytest.approx(2.0, abs=1e-3)
    assert top_level_boxes(out).index("moov") < top_level_boxes(out).index("mdat")
    with av.open(str(out)) as c:
        keys = [p.is_keyframe for p in c.demux(video=0) if p.size]
    assert keys == [i % 25 == 0 for i in range(50)]


def test_reordered_pictures_with_timestamps_mux_in_display_order(tmp_path: Path) -> None:
    data, pictures = annexb_stream(40, bframes=3)
    assert [i for _, i in pictures] != sorted(i for _, i in pictures), "x264 should have reordered pictures"
    # As PyNvVideoCodec 2.1+ returns them: one dict per picture, echoing the input index we gave.
    result = [{"data": d, "timestamp": i, "picture_type": 3 if i % 25 == 0 else 0} for d, i in pictures]
    chunks, per_picture = normalize_encoder_output(result)
    assert per_picture
    out = tmp_path / "bframes.mp4"
    _mux_annexb(out, chunks, per_picture=True, n=40, reorder=3)
    frames = decode_video(out)
    assert [i for _, i, _ in frames] == list(range(40))
    assert [t for t, _, _ in frames] == pytest.approx([i / 25 for i in range(40)])


def test_reordered_pictures_without_timestamps_are_refused(tmp_path: Path) -> None:
    data, _ = annexb_stream(10, bframes=2)
    with av.open(str(tmp_path / "x.mp4"), "w", format="mp4") as out:
        muxer = AnnexBMuxer(out, "h264", 160, 120, Fraction(25), Fraction(1, 90000), reorder_depth=2)
        for i in range(10):
            muxer.submit(i * 3600, 3600)
        with pytest.raises(RenderError, match="no timestamps"):
            muxer.add(data)
            muxer.flush()


def test_raw_annexb_stream_keeps_rotation(tmp_path: Path) -> None:
    data, _ = annexb_stream(25)
    out = tmp_path / "rotated.mp4"
    _mux_annexb(out, [EncodedChunk(data)], per_picture=False, n=25, rotation=90)
    assert probe(out, NO_AUDIO).video[0].rotation == 90
    assert [i for _, i, _ in decode_video(out)] == list(range(25))
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.extradata[:1] == b"\x01"  # an avcC record, made from our SPS/PPS


# --- render: cutting and sync -------------------------------------------------------------------------------------


def test_cut_video_follows_the_plan_frame_by_frame(coded_clip: Path, tmp_path: Path) -> None:
    seen: list[float] = []
    result = render(coded_clip, PLAN, tmp_path / "cut.mp4", RenderOptions(), progress=seen.append)
    frame_s = 1 / 25
    assert result.encoder == "x264" and "no usable NVENC" in result.encoder_reason
    assert result.duration_s == pytest.approx(PLAN.output_duration, abs=frame_s)
    assert result.video_duration_s == pytest.approx(PLAN.output_duration, abs=frame_s)
    assert result.audio_duration_s == pytest.approx(PLAN.output_duration, abs=0.002)
    frames = decode_video(result.path)
    assert len(frames) == result.frames
    for t_out, index, _ in frames:
        expected = source_time(PLAN, t_out)
        assert expected is not None
        assert abs(index * frame_s - expected) <= frame_s + 1e-6, (t_out, index, expected)
    # Nothing from the cut stretches, and every kept frame exactly once.
    indices = [i for _, i, _ in frames]
    assert indices == sorted(indices)
    assert seen == sorted(seen) and seen[-1] == 1.0


def test_audio_stays_in_sync_across_cuts(coded_clip: Path, tmp_path: Path) -> None:
    result = render(coded_clip, PLAN, tmp_path / "sync.mp4", RenderOptions())
    sound = decode_audio(result.path)
    # Decoding does not trim the encoder's padding of the last AAC frame (the MP4's duration does, see above).
    assert PLAN.output_duration * RATE - 1 <= len(sound) <= PLAN.output_duration * RATE + 1024
    loud = np.flatnonzero(np.abs(sound) > 0.2)
    onsets = loud[np.insert(np.diff(loud) > RATE * 0.02, 0, True)] / RATE
    checked = 0
    for k in range(int(6.0 / BURST_EVERY)):
        t_src = BURST_AT + k * BURST_EVERY
        inside = [keep for keep in PLAN.keeps if keep.start + 0.03 <= t_src and t_src + 0.03 <= keep.end]
        if not inside:
            continue
        t_out = PLAN.to_output_time(t_src)
        assert t_out is not None
        nearest = onsets[np.argmin(np.abs(onsets - t_out))]
        assert abs(nearest - t_out) < 0.005, (t_src, t_out, nearest)  # samples, not frames: well inside a frame
        checked += 1
    assert checked >= 15


def test_joins_do_not_click(tone_clip: Path, tmp_path: Path) -> None:
    # Each keep ends on a crest of the 440 Hz tone and the next starts in a trough: without fades, a full jump.
    period = 1 / 440
    plan = _plan(3.0, (0.0, 200.25 * period), (500.75 * period, 800.25 * period), (1000.75 * period, 2.9))
    faded = decode_audio(render(tone_clip, plan, tmp_path / "faded.mp4", RenderOptions(audio_fade_ms=15)).path)
    hard = decode_audio(render(tone_clip, plan, tmp_path / "hard.mp4", RenderOptions(audio_fade_ms=0)).path)
    natural = 0.5 * 2 * math.pi * 440 / RATE  # the tone's own largest step between samples
    starts = np.cumsum([0.0] + [k.duration for k in plan.keeps])
    for join in starts[1:-1]:
        at = int(round(join * RATE))
        window = slice(at - 480, at + 480)
        assert np.abs(np.diff(faded[window])).max() < 2 * natural, join
        assert np.abs(np.diff(hard[window])).max() > 4 * natural, join  # the control: a click is there without


# --- render: the MP4 --------------------------------------------------------------------------------------------


def test_index_is_at_the_front(coded_clip: Path, tmp_path: Path) -> None:
    plan = _plan(6.0, (1.0, 2.0))
    fast = render(coded_clip, plan, tmp_path / "fast.mp4", RenderOptions()).path
    boxes = top_level_boxes(fast)
    assert boxes[0] == "ftyp" and boxes.index("moov") < boxes.index("mdat")
    slow = render(coded_clip, plan, tmp_path / "slow.mp4", RenderOptions(faststart=False)).path
    boxes = top_level_boxes(slow)
    assert boxes.index("moov") > boxes.index("mdat")


def test_soft_subtitle_track_holds_the_cues(coded_clip: Path, tmp_path: Path) -> None:
    cues = [Cue(0.1, 0.9, "第一句话"), Cue(1.2, 1.8, "second line\nwith a break"), Cue(2.0, 99.0, "past the end")]
    result = render(coded_clip, PLAN, tmp_path / "subs.mp4", RenderOptions(subtitle_language="chi"), cues=cues)
    assert result.subtitles == 3
    with av.open(str(result.path)) as c:
        stream = c.streams.subtitles[0]
        assert stream.codec_context.name == "mov_text"
        assert stream.metadata.get("language") == "chi"
        samples = [(float(p.pts * p.time_base), float(p.duration * p.time_base), bytes(p)[2:].decode())
                   for p in c.demux(stream) if p.size > 2]
    assert [s[2] for s in samples] == ["第一句话", "second line\nwith a break", "past the end"]
    assert samples[0][:2] == pytest.approx((0.1, 0.8))
    assert samples[1][:2] == pytest.approx((1.2, 0.6))
    assert samples[2][0] + samples[2][1] == pytest.approx(PLAN.output_duration, abs=0.002)  # clipped to the end


@needs_font
def test_burned_subtitles_change_pixels_only_during_cues(coded_clip: Path, tmp_path: Path) -> None:
    cues = [Cue(0.4, 1.2, "Hello there"), Cue(2.0, 2.6, "字幕 subtitle")]
    style = SubtitleStyle(font_path=FONT, size=0.12)
    plain = decode_video(render(coded_clip, PLAN, tmp_path / "plain.mp4", RenderOptions(), cues=cues).path)
    burned_result = render(coded_clip, PLAN, tmp_path / "burned.mp4",
                           RenderOptions(burn_subtitles=True, subtitle_style=style), cues=cues)
    assert burned_result.burned_cues == 2
    burned = decode_video(burned_result.path)
    assert len(plain) == len(burned)
    for (t, i, a), (t2, i2, b) in zip(plain, burned):
        assert (t, i) == pytest.approx((t2, i2))  # the painted index is above the subtitles and survives
        ya = a.reformat(format="gray").to_ndarray().astype(np.int16)
        yb = b.reformat(format="gray").to_ndarray().astype(np.int16)
        bottom = np.abs(ya - yb)[ya.shape[0] // 2:].mean()
        during = any(c.start <= t < c.end for c in cues)
        if during:
            assert bottom > 4, t
        else:
            assert bottom < 1.5, t


@needs_font
def test_subtitle_image_sits_at_the_bottom_centre() -> None:
    image = np.asarray(render_subtitle_image("Hello", 320, 240, SubtitleStyle(font_path=FONT, size=0.1)))
    rows = np.flatnonzero(image[:, :, 3].any(axis=1))
    cols = np.flatnonzero(image[:, :, 3].any(axis=0))
    assert rows.min() > 240 * 0.6 and rows.max() < 240 * 0.97
    assert abs((cols.min() + cols.max()) / 2 - 160) < 8
    white = (image[:, :, 0] > 200) & (image[:, :, 3] > 200)
    dark = (image[:, :, 0] < 60) & (image[:, :, 3] > 200)
    assert white.sum() > 50 and dark.sum() > 50  # text and its outline


def test_burning_without_a_font_is_a_clear_error(coded_clip: Path, tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="no font"):
        render(coded_clip, PLAN, tmp_path / "x.mp4", RenderOptions(burn_subtitles=True), cues=[Cue(0, 1, "x")])
    with pytest.raises(RenderError, match="does not exist"):
        render(coded_clip, PLAN, tmp_path / "x.mp4",
               RenderOptions(burn_subtitles=True, subtitle_style=SubtitleStyle(font_path=tmp_path / "none.ttf")))
    assert not (tmp_path / "x.mp4").exists()


# --- render: the picture ----------------------------------------------------------------------------------------


@needs_font
def test_rotation_is_kept_and_subtitles_follow_it(tmp_path: Path) -> None:
    clip = make_coded_clip(tmp_path / "portrait.mp4", seconds=2.0, width=160, height=96, rotation=90)
    plan = _plan(2.0, (0.2, 0.9), (1.2, 1.9))
    cues = [Cue(0.0, plan.output_duration, "Up")]
    result = render(clip, plan, tmp_path / "rot.mp4",
                    RenderOptions(burn_subtitles=True, subtitle_style=SubtitleStyle(font_path=FONT, size=0.1)),
                    cues=cues)
    assert result.rotation == 90 and (result.width, result.height) == (160, 96)
    assert probe(result.path).video[0].rotation == 90
    frames = decode_video(result.path)
    for t_out, index, _ in frames:
        assert abs(index / 25 - source_time(plan, t_out)) <= 1 / 25 + 1e-6
    # Turned upright as a player shows it (clockwise), the subtitle sits at the bottom of the picture.
    plain = decode_video(render(clip, plan, tmp_path / "rot_plain.mp4", RenderOptions()).path)
    a = np.rot90(plain[3][2].reformat(format="gray").to_ndarray().astype(np.int16), k=-1)
    b = np.rot90(frames[3][2].reformat(format="gray").to_ndarray().astype(np.int16), k=-1)
    diff = np.abs(a - b)
    height = diff.shape[0]
    assert diff.shape == (160, 96)
    assert diff[int(height * 0.7):].mean() > 4 * max(diff[: int(height * 0.5)].mean(), 0.05)


def test_odd_sizes_are_cropped_to_even(tmp_path: Path) -> None:
    clip = make_coded_clip(tmp_path / "odd.mp4", seconds=1.0, width=161, height=121, pix_fmt="yuv444p")
    result = render(clip, _plan(1.0, (0.1, 0.9)), tmp_path / "odd_cut.mp4", RenderOptions())
    assert (result.width, result.height) == (160, 120)
    frames = decode_video(result.path)
    assert frames[0][2].width == 160 and frames[0][2].height == 120
    assert [i for _, i, _ in frames] == list(range(2, 23))


def test_max_height_downscales(coded_clip: Path, tmp_path: Path) -> None:
    result = render(coded_clip, _plan(6.0, (0.0, 1.0)), tmp_path / "small.mp4", RenderOptions(max_height=60))
    assert (result.width, result.height) == (80, 60)


def test_variable_frame_rate_source_uses_timestamps(tmp_path: Path) -> None:
    times, t = [], 0.0
    while t < 3.0:
        times.append(round(t, 3))
        t += 0.03 if len(times) % 3 else 0.07  # uneven gaps: frame counts do not give times
    clip = make_coded_clip(tmp_path / "vfr.mp4", seconds=3.0, times=times)
    plan = _plan(3.0, (0.31, 1.02), (1.77, 2.6))
    result = render(clip, plan, tmp_path / "vfr_cut.mp4", RenderOptions())
    assert result.video_duration_s == pytest.approx(plan.output_duration, abs=0.07)
    for t_out, index, _ in decode_video(result.path):
        expected = source_time(plan, t_out)
        assert expected is not None and abs(times[index] - expected) <= 0.07 + 1e-6, (t_out, index)


# --- render: edge cases -----------------------------------------------------------------------------------------


def test_one_keep_of_everything(coded_clip: Path, tmp_path: Path) -> None:
    result = render(coded_clip, _plan(6.0, (0.0, 6.0)), tmp_path / "all.mp4", RenderOptions())
    assert result.frames == 150
    assert result.duration_s == pytest.approx(6.0, abs=1 / 25)
    assert [i for _, i, _ in decode_video(result.path)] == list(range(150))


def test_an_empty_plan_is_refused(coded_clip: Path, tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="keeps nothing"):
        render(coded_clip, _plan(6.0), tmp_path / "none.mp4", RenderOptions())
    assert not (tmp_path / "none.mp4").exists()


def test_unreadable_source_is_a_media_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"<html>not a video</html>" * 100)
    with pytest.raises(MediaError, match="could not be read as media"):
        render(junk, _plan(2.0, (0.0, 1.0)), tmp_path / "junk_cut.mp4", RenderOptions())
    assert not (tmp_path / "junk_cut.mp4").exists()


def test_a_source_cut_short_renders_what_is_there(coded_clip: Path, tmp_path: Path) -> None:
    whole = render(coded_clip, _plan(6.0, (0.0, 6.0)), tmp_path / "whole.mp4", RenderOptions(soft_subtitles=False))
    data = whole.path.read_bytes()  # faststart: the index comes first, so only media data is lost
    short = tmp_path / "short.mp4"
    short.write_bytes(data[: int(len(data) * 0.6)])
    result = render(short, _plan(6.0, (1.0, 2.0), (5.0, 5.5)), tmp_path / "short_cut.mp4", RenderOptions())
    assert result.duration_s == pytest.approx(1.5, abs=1 / 25)
    assert result.audio_duration_s == pytest.approx(1.5, abs=0.002)


def test_a_source_without_sound_renders_without_sound(tmp_path: Path) -> None:
    clip = make_coded_clip(tmp_path / "mute.mp4", seconds=2.0, audio=None)
    result = render(clip, _plan(2.0, (0.5, 1.5)), tmp_path / "mute_cut.mp4", RenderOptions())
    assert result.audio_duration_s == 0.0
    assert result.duration_s == pytest.approx(1.0, abs=1 / 25)


def test_nvenc_that_fails_to_open_falls_back_to_x264(coded_clip: Path, tmp_path: Path) -> None:
    if _nvenc_works()[0]:
        pytest.skip("NVENC works on this machine, so it cannot fail to open")
    result = render(coded_clip, _plan(6.0, (1.0, 2.0)), tmp_path / "fb.mp4", RenderOptions(encoder="nvenc"),
                    nvenc_available=True)
    assert result.encoder == "x264" and "NVENC failed" in result.encoder_reason
    with pytest.raises(RenderError, match="NVENC|PyNvVideoCodec"):
        render(coded_clip, _plan(6.0, (1.0, 2.0)), tmp_path / "nofb.mp4",
               RenderOptions(encoder="nvenc", allow_fallback=False), nvenc_available=True)
    assert not (tmp_path / "nofb.mp4").exists()


def test_an_encoder_failing_midway_falls_back_to_x264(coded_clip: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import aicut.pipeline.render as render_module

    class DyingNvenc(X264Encoder):  # stands in for an NVENC session that dies after a few frames
        name = "nvenc"

        def encode(self, frame: av.VideoFrame) -> list[av.Packet]:
            if frame.pts > 90000 * 0.5:
                raise RenderError("NVENC failed on frame 13: device lost", retryable=True)
            return super().encode(frame)

    real = render_module.make_encoder
    monkeypatch.setattr(render_module, "make_encoder",
                        lambda name, options: DyingNvenc(options) if name == "nvenc" else real(name, options))
    plan = _plan(6.0, (1.0, 2.5))
    result = render(coded_clip, plan, tmp_path / "mid.mp4", RenderOptions(encoder="nvenc"), nvenc_available=True)
    assert result.encoder == "x264" and "device lost" in result.encoder_reason
    assert result.duration_s == pytest.approx(1.5, abs=1 / 25)
    assert not list(tmp_path.glob(".*partial*"))


# --- text layout ------------------------------------------------------------------------------------------------


def _cells(s: str) -> float:
    return sum(1.0 if ord(ch) > 0x2E7F else 0.5 for ch in s)


def test_wrap_breaks_chinese_between_characters_and_balances() -> None:
    text = "今天我们来聊一聊怎么把一段口播视频剪得干净利落又自然"
    lines = wrap_text(text, _cells, 16)
    assert "".join(lines) == text
    assert len(lines) == 2 and abs(len(lines[0]) - len(lines[1])) <= 1


def test_wrap_keeps_punctuation_rules() -> None:
    lines = wrap_text("一二三四五六七八，「九十」一二三四五", _cells, 8)
    assert all(not line.startswith(("，", "」", "。")) for line in lines)
    assert all(not line.endswith("「") for line in lines)
    assert "".join(lines) == "一二三四五六七八，「九十」一二三四五"


def test_wrap_keeps_latin_words_whole() -> None:
    lines = wrap_text("the quick brown fox jumps over the lazy dog", len, 20)
    assert all(len(line) <= 20 for line in lines)
    assert " ".join(lines) == "the quick brown fox jumps over the lazy dog"
    assert wrap_text("第一行\n第二行", _cells, 10) == ["第一行", "第二行"]
    assert wrap_text("  ", _cells, 10) == []


# --- NVENC for real, where there is one -------------------------------------------------------------------------


def _nvenc_works() -> tuple[bool, str]:
    try:
        import PyNvVideoCodec as nvc  # noqa: N813
    except Exception as exc:  # RuntimeError without the NVIDIA encode library, ImportError without the package
        return False, f"PyNvVideoCodec does not import here: {str(exc).splitlines()[0] if str(exc) else exc!r}"
    try:
        enc = nvc.CreateEncoder(256, 256, "NV12", True, codec="h264")
        enc.EndEncode()
    except Exception as exc:
        return False, f"NVENC cannot open an encoder here: {str(exc).splitlines()[0] if str(exc) else exc!r}"
    return True, ""


@pytest.fixture(scope="module")
def nvenc() -> None:
    works, why = _nvenc_works()
    if not works:
        pytest.skip(why)


@pytest.mark.usefixtures("nvenc")
@pytest.mark.parametrize("rotation", [0, 90])
def test_nvenc_renders_a_playable_cut(tmp_path: Path, rotation: int) -> None:
    clip = make_coded_clip(tmp_path / "src.mp4", seconds=4.0, width=320, height=240, rotation=rotation)
    plan = _plan(4.0, (0.23, 1.11), (1.5, 2.02), (2.9, 3.87))
    result = render(clip, plan, tmp_path / "nvenc.mp4", RenderOptions(encoder="nvenc"), nvenc_available=True,
                    cues=[Cue(0.1, 0.5, "nvenc")])
    assert result.encoder == "nvenc", result.encoder_reason
    assert result.duration_s == pytest.approx(plan.output_duration, abs=1 / 25)
    assert probe(result.path).video[0].rotation == rotation
    boxes = top_level_boxes(result.path)
    assert boxes.index("moov") < boxes.index("mdat")
    for t_out, index, _ in decode_video(result.path):
        assert abs(index / 25 - source_time(plan, t_out)) <= 1 / 25 + 1e-6


@pytest.mark.usefixtures("nvenc")
def test_nvenc_with_b_frames(tmp_path: Path) -> None:
    clip = make_coded_clip(tmp_path / "src.mp4", seconds=3.0, width=320, height=240)
    plan = _plan(3.0, (0.0, 1.0), (1.6, 2.9))
    options = RenderOptions(encoder="nvenc", quality=EncodeOptions(nvenc_bframes=2))
    result = render(clip, plan, tmp_path / "bf.mp4", options, nvenc_available=True)
    assert result.encoder == "nvenc"
    indices = [i for _, i, _ in decode_video(result.path)]
    assert indices == sorted(indices) and len(indices) == result.frames


@pytest.mark.usefixtures("nvenc")
def test_nvenc_encoder_directly(tmp_path: Path) -> None:
    out_path = tmp_path / "direct.mp4"
    tb = Fraction(1, 90000)
    with av.open(str(out_path), "w", format="mp4") as out:
        enc = NvencEncoder()
        enc.open(out, 320, 240, Fraction(25), tb)
        packets = []
        for i in range(50):
            frame = av.VideoFrame.from_ndarray(_picture(i, 320, 240), format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base, frame.duration = i * 3600, tb, 3600
            packets += enc.encode(frame)
        packets += enc.flush()
        out.mux(packets)
    assert [i for _, i, _ in decode_video(out_path)] == list(range(50))
