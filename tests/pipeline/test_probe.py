"""probe on real media made with PyAV, and on files that are not usable."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from aicut.errors import EmptyMediaError, MediaError, NoAudioStreamError, NoVideoStreamError
from aicut.models import MediaInfo
from aicut.pipeline.probe import ProbeOptions, probe
from tests.support.media import make_clip

ANY_STREAMS = ProbeOptions(require_video=False, require_audio=False)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("probe")


def test_real_clip_facts(clip_path: Path) -> None:
    info = probe(clip_path)
    assert isinstance(info, MediaInfo)
    assert info.container.split(",")[0] == "mov" and "mp4" in info.container
    assert info.duration_s == pytest.approx(2.0, abs=0.1)
    assert info.size_bytes == clip_path.stat().st_size
    (video,) = info.video
    assert (video.codec, video.width, video.height) == ("h264", 320, 240)
    assert video.fps == pytest.approx(25.0)
    assert video.rotation == 0
    assert video.pix_fmt == "yuv420p"
    assert video.bit_rate > 0
    (audio,) = info.audio
    assert audio.codec == "aac"
    assert audio.channels in (1, 2)
    assert audio.sample_rate == 48000


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_from_the_display_matrix(media: Path, rotation: int) -> None:
    path = make_clip(media / f"rotated{rotation}.mp4", seconds=0.4, rotation=rotation)
    (video,) = probe(path).video
    assert video.rotation == rotation
    assert (video.width, video.height) == (320, 240)  # stored size; rotation says how to show it


@pytest.mark.parametrize(
    ("suffix", "container"),
    [("mkv", "matroska"), ("ts", "mpegts"), ("mov", "mov")],
)
def test_other_containers(media: Path, suffix: str, container: str) -> None:
    info = probe(make_clip(media / f"clip.{suffix}", seconds=1.0, channels=2))
    assert container in info.container
    assert info.duration_s == pytest.approx(1.0, abs=0.1)
    assert info.video[0].codec == "h264"
    assert info.audio[0].channels == 2


def test_audio_only_needs_require_video_off(media: Path) -> None:
    path = make_clip(media / "voice.m4a", seconds=1.0, video=False)
    with pytest.raises(NoVideoStreamError) as info:
        probe(path)
    assert "voice.m4a has no video track" in info.value.message
    assert info.value.retryable is False
    result = probe(path, ProbeOptions(require_video=False))
    assert result.video == ()
    assert result.audio[0].codec == "aac"


@pytest.mark.parametrize("suffix", ["mp3", "wav"])
def test_audio_formats(media: Path, suffix: str) -> None:
    info = probe(make_clip(media / f"voice.{suffix}", seconds=1.0, video=False), ProbeOptions(require_video=False))
    assert info.duration_s == pytest.approx(1.0, abs=0.1)
    assert info.audio[0].codec == {"mp3": "mp3", "wav": "pcm_s16le"}[suffix]


def test_video_only_needs_require_audio_off(media: Path) -> None:
    path = make_clip(media / "silent.mp4", seconds=1.0, audio=False)
    with pytest.raises(NoAudioStreamError, match="no audio track"):
        probe(path)
    assert probe(path, ProbeOptions(require_audio=False)).audio == ()


def test_random_bytes_are_not_media(media: Path) -> None:
    path = media / "random.mp4"
    path.write_bytes(os.urandom(64 * 1024))
    with pytest.raises(MediaError, match="random.mp4 could not be read as media") as info:
        probe(path)
    assert "re-export the video as MP4 (H.264/AAC)" in info.value.message


def test_truncated_file_is_called_damaged(clip_path: Path, media: Path) -> None:
    data = clip_path.read_bytes()
    path = media / "truncated.mp4"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError, match="probably damaged or incomplete"):
        probe(path)


def test_html_saved_as_mp4_is_not_media(media: Path) -> None:
    path = media / "page.mp4"
    path.write_text("<!DOCTYPE html><html><body>Please log in</body></html>", encoding="utf-8")
    with pytest.raises(MediaError):
        probe(path)


def test_empty_and_missing_files(media: Path) -> None:
    empty = media / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(EmptyMediaError, match="empty file"):
        probe(empty)
    with pytest.raises(MediaError, match="could not be read"):
        probe(media / "missing.mp4")


def test_zero_duration_is_empty(media: Path) -> None:
    # A WAV header announcing no samples at all.
    header = (
        b"RIFF" + struct.pack("<I", 36) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 48000, 96000, 2, 16)
        + b"data" + struct.pack("<I", 0)
    )
    path = media / "nothing.wav"
    path.write_bytes(header)
    with pytest.raises(EmptyMediaError, match="no length"):
        probe(path, ANY_STREAMS)


def test_duration_limit(clip_path: Path) -> None:
    with pytest.raises(MediaError, match="is 0:00:02 long, over the 0:00:01 limit") as info:
        probe(clip_path, ProbeOptions(max_duration_s=1.0))
    assert "split it into shorter parts" in info.value.message


def test_pixel_limit(clip_path: Path) -> None:
    with pytest.raises(MediaError, match=r"320x240 \(76,800 pixels\), over the limit of 10,000 pixels") as info:
        probe(clip_path, ProbeOptions(max_pixels=100 * 100))
    assert "4K or lower" in info.value.message


def test_a_single_frame_video_still_decodes(media: Path) -> None:
    # The decoder holds frames back until it is flushed; probe must not call a one-frame clip undecodable.
    (video,) = probe(make_clip(media / "one-frame.mp4", seconds=0.04, rotation=90)).video
    assert video.rotation == 90
