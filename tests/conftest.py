"""Fixtures every suite may use: one real clip, and a real HTTP server that serves it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.httpserver import MediaServer
from tests.support.media import make_clip
from tests.support.talking_head import build_talking_head

# A short spoken clip for tasks that must get all the way through the cut: two sentences and a long pause.
SPEECH_SCRIPT = (("sentence", "Hello and welcome to the show."), ("pause", 1.5),
                 ("sentence", "This is a short test of the cut."))


@pytest.fixture(scope="session")
def clip_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2 s 320x240 25 fps H.264/AAC (mono, 48 kHz) MP4, made once per session; served as ``/clip.mp4``."""
    clip = make_clip(tmp_path_factory.mktemp("media") / "clip.mp4")
    # Served as /corrupt.mp4: starts like an MP4 (so it passes the download's sniffing), but is cut short.
    (clip.parent / "corrupt.mp4").write_bytes(clip.read_bytes()[:1500])
    # Served as /speech.mp4: real synthesized speech (espeak-ng), for tasks that run the whole cut.
    build_talking_head(clip.parent, SPEECH_SCRIPT, name="speech", width=160, height=120)
    return clip


@pytest.fixture
def media_server(clip_path: Path) -> Iterator[MediaServer]:
    """A fresh server (empty request log) on 127.0.0.1 serving the directory of ``clip_path``."""
    with MediaServer(clip_path.parent) as server:
        yield server
