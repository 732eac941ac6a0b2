"""fetch of an HLS (.m3u8) source: a real playlist and MPEG-TS segments written by FFmpeg's hls muxer, served over
HTTP on 127.0.0.1, remuxed into one MP4; every URI a playlist lists is checked against the fetch policy first."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from aicut.errors import NotMediaError, TooLargeError, UrlNotAllowedError
from aicut.pipeline.fetch import FetchOptions, fetch, hls_uris, is_hls_playlist
from aicut.pipeline.probe import probe
from tests.support.httpserver import MediaServer

LOCAL = FetchOptions(
    allow_hosts=("127.0.0.1",), retries=0, backoff_s=0.01, connect_timeout_s=5, read_timeout_s=10, total_timeout_s=60
)
CLIP_S = 4.0


def write_hls(directory: Path, seconds: float = CLIP_S, fps: int = 25, rate: int = 48000) -> Path:
    """Encode a moving picture (H.264, a keyframe every second) and a tone (AAC) straight into FFmpeg's hls muxer:
    ``directory``/index.m3u8 plus ~1 s MPEG-TS segments, like a streaming site serves."""
    directory.mkdir(parents=True, exist_ok=True)
    playlist = directory / "index.m3u8"
    with av.open(str(playlist), "w", format="hls", options={"hls_time": "1", "hls_list_size": "0"}) as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 160, 120, "yuv420p"
        video.options = {"preset": "ultrafast", "g": str(fps), "keyint_min": str(fps), "sc_threshold": "0"}
        sound = out.add_stream("aac", rate=rate, layout="mono")
        for i in range(int(seconds * fps)):
            img = np.full((120 * 3 // 2, 160), 128, np.uint8)
            img[:120] = (np.arange(160)[None, :] + 4 * i) % 256
            frame = av.VideoFrame.from_ndarray(img, format="yuv420p")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        t = np.arange(int(seconds * rate)) / rate
        tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32).reshape(1, -1)
        source = av.AudioFrame.from_ndarray(tone, format="flt", layout="mono")
        source.sample_rate, source.pts = rate, 0
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=rate, frame_size=1024)
        for chunk in resampler.resample(source) + resampler.resample(None):
            out.mux(sound.encode(chunk))
        out.mux(sound.encode(None))
    return playlist


@pytest.fixture(scope="module")
def hls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hls")
    write_hls(root / "vod")
    text = (root / "vod" / "index.m3u8").read_text()
    assert "#EXT-X-ENDLIST" in text and text.count(".ts") >= 3, text
    # A playlist that lists a segment on a host the policy refuses (the cloud metadata address).
    (root / "vod" / "evil.m3u8").write_text(text.replace("index1.ts", "http://169.254.169.254/latest/meta-data"))
    # A master playlist whose variant is on a host outside the allow-list.
    (root / "vod" / "master_evil.m3u8").write_text(
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=500000\nhttp://internal.example/index.m3u8\n")
    # A master playlist pointing at the real media playlist.
    (root / "vod" / "master.m3u8").write_text("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=500000\nindex.m3u8\n")
    # A live stream: no end.
    (root / "vod" / "live.m3u8").write_text(text.replace("#EXT-X-ENDLIST", ""))
    return root / "vod"


def test_hls_playlist_is_remuxed_to_one_mp4(hls_dir: Path, tmp_path: Path) -> None:
    with MediaServer(hls_dir) as server:
        result = fetch(server.url("/index.m3u8"), tmp_path, LOCAL)
        segment_requests = [r for r in server.requests() if r.path.endswith(".ts")]
    assert result.format == "mp4" and result.path.suffix == ".mp4" and result.path.name == "index.mp4"
    assert result.content_type == "video/mp4"
    assert result.size_bytes == result.path.stat().st_size > 0
    assert len(segment_requests) >= 3
    info = probe(result.path)
    assert info.video and info.audio
    assert (info.video[0].codec, info.audio[0].codec) == ("h264", "aac")
    assert info.duration_s == pytest.approx(CLIP_S, abs=0.15)
    assert [p.name for p in tmp_path.iterdir()] == [result.path.name]  # no playlist or .part left behind


def test_hls_master_playlist_follows_its_variant(hls_dir: Path, tmp_path: Path) -> None:
    with MediaServer(hls_dir) as server:
        result = fetch(server.url("/master.m3u8"), tmp_path, LOCAL, name="lesson.m3u8")
    assert result.path.name == "lesson.mp4"
    assert probe(result.path).duration_s == pytest.approx(CLIP_S, abs=0.15)


@pytest.mark.parametrize("playlist", ["evil.m3u8", "master_evil.m3u8"])
def test_hls_playlist_pointing_at_a_disallowed_host_is_refused(hls_dir: Path, tmp_path: Path, playlist: str) -> None:
    with MediaServer(hls_dir) as server:
        with pytest.raises(UrlNotAllowedError) as info:
            fetch(server.url(f"/{playlist}"), tmp_path, LOCAL)
        # Refused before FFmpeg opened anything: no segment was requested.
        assert not [r for r in server.requests() if r.path.endswith(".ts")]
    assert info.value.retryable is False
    assert "169.254.169.254" in info.value.message or "internal.example" in info.value.message
    assert list(tmp_path.iterdir()) == []


def test_hls_live_stream_is_refused(hls_dir: Path, tmp_path: Path) -> None:
    with MediaServer(hls_dir) as server, pytest.raises(NotMediaError, match="live HLS stream"):
        fetch(server.url("/live.m3u8"), tmp_path, LOCAL)


def test_hls_size_cap_applies_to_the_remuxed_stream(hls_dir: Path, tmp_path: Path) -> None:
    playlist_size = (hls_dir / "index.m3u8").stat().st_size
    options = FetchOptions(allow_hosts=("127.0.0.1",), retries=0, max_bytes=playlist_size + 20_000)
    with MediaServer(hls_dir) as server, pytest.raises(TooLargeError) as info:
        fetch(server.url("/index.m3u8"), tmp_path, options)
    assert info.value.retryable is False and "HLS" in info.value.message
    assert list(tmp_path.iterdir()) == []


def test_hls_uris_lists_segments_keys_and_variants() -> None:
    text = ("#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"https://keys.example/k\"\n#EXT-X-MAP:URI=\"init.mp4\"\n"
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",URI=\"audio/a.m3u8\"\n"
            "#EXT-X-STREAM-INF:BANDWIDTH=1\nhi/v.m3u8\n#EXTINF:1,\nseg0.ts\n")
    variants, others = hls_uris(text, "http://cdn.example/p/index.m3u8")
    assert variants == ["http://cdn.example/p/audio/a.m3u8", "http://cdn.example/p/hi/v.m3u8"]
    assert others == ["https://keys.example/k", "http://cdn.example/p/init.mp4", "http://cdn.example/p/seg0.ts"]
    assert is_hls_playlist(b"\xef\xbb\xbf#EXTM3U\n") and not is_hls_playlist(b"<html>")
