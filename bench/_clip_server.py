"""The benchmarks' media server in a process of its own: ``python -m bench._clip_server DIR``.

Makes a real clip in ``DIR`` and serves it with the tests' :class:`MediaServer` (``/slow/clip.mp4?bps=N`` throttles);
prints ``CLIPS READY <base url> <clip size in bytes>``; stops on SIGTERM or SIGINT. Its own process so that its
threads (one per throttled download, waking 20 times a second) take no GIL from the process being measured.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from tests.support.httpserver import MediaServer
from tests.support.media import make_clip


def main(argv: list[str]) -> int:
    directory = Path(argv[0])
    directory.mkdir(parents=True, exist_ok=True)
    clip = make_clip(directory / "clip.mp4")
    server = MediaServer(directory)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"CLIPS READY {server.base_url} {clip.stat().st_size}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.close(timeout=2.0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
