"""Fixtures every suite may use: one real clip, a real HTTP server that serves it, and a real Valkey."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from aicut.store import EmbeddedValkey, Store

from tests.support.httpserver import MediaServer
from tests.support.media import make_clip
from tests.support.talking_head import build_talking_head

StoreFactory = Callable[..., Awaitable[Store]]

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


@pytest.fixture(scope="session")
def valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedValkey]:
    """One embedded Valkey (appendfsync always, the product default) shared by the session's tests."""
    server = EmbeddedValkey(tmp_path_factory.mktemp("valkey"))
    # The server is a plain child process, not bound to any event loop, so it can outlive each test's loop.
    asyncio.run(server.start())
    yield server
    asyncio.run(server.close())


@pytest.fixture
async def store_factory(valkey: EmbeddedValkey) -> AsyncIterator[StoreFactory]:
    """Makes Stores on the session server, each under its own prefix; purged and closed after the test."""
    made: list[Store] = []

    async def make(**kwargs: object) -> Store:
        kwargs.setdefault("prefix", f"t{uuid.uuid4().hex[:10]}:")
        store = await Store.connect(valkey.url, **kwargs)  # type: ignore[arg-type]
        made.append(store)
        return store

    yield make
    for store in made:
        await store.purge()
        await store.close()


@pytest.fixture
async def store(store_factory: StoreFactory) -> Store:
    """A Store with a unique prefix."""
    return await store_factory()
