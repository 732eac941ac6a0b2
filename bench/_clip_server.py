"""The benchmarks' media server in a process of its own: ``python -m bench._clip_server DIR``.

Makes a real clip in ``DIR`` (``clip.mp4``) and ``notvideo.mp4`` (an MP4 header, then noise: a download accepts it,
probing refuses it — a task that downloads for as long as the throttle says, then fails at once with a final
``MediaError`` instead of spending seconds of CPU on transcription), and serves both with the tests'
:class:`MediaServer` (``/slow/<file>?bps=N`` throttles). Prints ``CLIPS READY <base url> <clip.mp4 bytes>
<notvideo.mp4 bytes>``; stops on SIGTERM or SIGINT. Its own process so that its
threads (one per throttled download, waking 20 times a second) take no GIL from the process being measured.
"""

from __future__ import annotations

import random
import signal
import sys
import threading
from pathlib import Path

from tests.support.httpserver import MP4_HEAD, MediaServer
from tests.support.media import make_clip


def main(argv: list[str]) -> int:
    directory = Path(argv[0])
    directory.mkdir(parents=True, exist_ok=True)
    clip = make_clip(directory / "clip.mp4")
    notvideo = directory / "notvideo.mp4"
    notvideo.write_bytes(MP4_HEAD + random.Random(7).randbytes(max(64 * 1024, clip.stat().st_size)))
    server = MediaServer(directory)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"CLIPS READY {server.base_url} {clip.stat().st_size} {notvideo.stat().st_size}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.close(timeout=2.0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
