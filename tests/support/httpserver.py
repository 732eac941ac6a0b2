"""A real HTTP server on 127.0.0.1 for download tests: files with Range support plus routes that misbehave on purpose.

Routes (``<file>`` is a path under the served directory):

- ``/<file>``                 the file; HEAD, ``Range: bytes=…`` (206/416), ETag/Last-Modified and If-Range;
                              any file route given ``?ranges=0`` ignores Range and always answers 200
- ``/slow/<file>?bps=N``      the same, throttled to N bytes a second (default 65536), for tasks that must last
- ``/flaky/<file>``           the first request for a path sends half the bytes and drops the connection; later
                              requests (Range included) are served properly
- ``/attachment/<file>?name=N``  the file with ``Content-Disposition: attachment; filename*=UTF-8''N``
- ``/status/<code>``          that status with a short text body
- ``/html``                   an HTML page (text/html), like a login or error page
- ``/redirect?to=<url>[&code=302]``  a redirect to ``to``
- ``/big``                    claims a 1 TB Content-Length, sends a few bytes, closes
- ``/endless``                MP4-looking bytes with no Content-Length, forever (until the client goes away)

Every request is logged per path (query excluded): ``server.requests("/flaky/clip.mp4")``.
"""

from __future__ import annotations

import email.utils
import logging
import mimetypes
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

logger = logging.getLogger(__name__)

BIG_CLAIMED_BYTES = 10**12
# A minimal MP4 "ftyp" box: enough for a client's sniffing to accept /big and /endless as video.
MP4_HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
_ENDLESS_CAP = 2 * 1024**3  # a runaway client must not fill a disk; no test reads this far


@dataclass(frozen=True)
class RequestRecord:
    """One request as the server saw it; header names are lower-case."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # close() waits for handlers itself, with a deadline

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root.resolve()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.log: dict[str, list[RequestRecord]] = {}
        self.flaky_seen: set[str] = set()
        self.active: set[socket.socket] = set()
        self.idle = threading.Condition(self.lock)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    _query: dict[str, str]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        logger.debug("%s %s", self.address_string(), format % args)

    def handle(self) -> None:
        with self.server.lock:
            self.server.active.add(self.connection)
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
            pass  # the client went away; that is what several routes are for
        finally:
            with self.server.lock:
                self.server.active.discard(self.connection)
                self.server.idle.notify_all()

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    def do_GET(self) -> None:
        self._dispatch(head=False)

    # --- routing -----------------------------------------------------------------------------------------------

    def _dispatch(self, *, head: bool) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self._query = query
        record = RequestRecord(self.command, path, query, {k.lower(): v for k, v in self.headers.items()})
        with self.server.lock:
            self.server.log.setdefault(path, []).append(record)
        if path == "/html":
            self._send_body(200, b"<!DOCTYPE html><html><head><title>Login</title></head><body>Please log in"
                                 b"</body></html>", "text/html; charset=utf-8", head)
        elif match := re.fullmatch(r"/status/(\d{3})", path):
            code = int(match.group(1))
            self._send_body(code, f"status {code}\n".encode(), "text/plain; charset=utf-8", head)
        elif path == "/redirect":
            self.send_response(int(query.get("code", "302")))
            self.send_header("Location", query.get("to", "/"))
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/big":
            self._big(head)
        elif path == "/endless":
            self._endless(head)
        elif path.startswith("/slow/"):
            self._file(path[len("/slow"):], head, bps=int(query.get("bps", "65536")))
        elif path.startswith("/flaky/"):
            with self.server.lock:
                first = path not in self.server.flaky_seen
                self.server.flaky_seen.add(path)
            self._file(path[len("/flaky"):], head, drop_half=first and not head)
        elif path.startswith("/attachment/"):
            name = query.get("name", "")
            disposition = f"attachment; filename*=UTF-8''{quote(name)}" if name else "attachment"
            self._file(path[len("/attachment"):], head, extra={"Content-Disposition": disposition})
        else:
            self._file(path, head)

    # --- responses ---------------------------------------------------------------------------------------------

    def _send_body(self, code: int, body: bytes, content_type: str, head: bool) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _resolve(self, rel: str) -> Path | None:
        target = (self.server.root / rel.lstrip("/")).resolve()
        if not target.is_relative_to(self.server.root) or not target.is_file():
            return None
        return target

    def _file(self, rel: str, head: bool, *, bps: int = 0, drop_half: bool = False,
              extra: dict[str, str] | None = None) -> None:
        target = self._resolve(rel)
        if target is None:
            self._send_body(404, b"not found\n", "text/plain; charset=utf-8", head)
            return
        stat = target.stat()
        size = stat.st_size
        etag = f'"{size:x}-{stat.st_mtime_ns:x}"'
        last_modified = email.utils.formatdate(stat.st_mtime, usegmt=True)
        start, end = 0, size - 1
        status = 200
        range_header = self.headers.get("Range", "")
        if_range = self.headers.get("If-Range", "")
        honour_range = self._query.get("ranges", "1") != "0"
        if honour_range and range_header and (not if_range or if_range in (etag, last_modified)):
            match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", range_header)
            if match and (match.group(1) or match.group(2)):
                if match.group(1):
                    start = int(match.group(1))
                    end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
                else:  # suffix range: the last N bytes
                    start, end = max(0, size - int(match.group(2))), size - 1
                if start >= size or start > end:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
        length = end - start + 1
        self.send_response(status)
        self.send_header("Content-Type", mimetypes.guess_type(target.name)[0] or "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", last_modified)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if head:
            return
        to_send = length // 2 if drop_half else length
        with target.open("rb") as fh:
            fh.seek(start)
            self._stream(fh, to_send, bps)
        if drop_half:
            self._drop()

    def _stream(self, fh: Any, count: int, bps: int) -> None:
        piece = max(1, bps // 20) if bps else 64 * 1024
        while count > 0 and not self.server.stop.is_set():
            data = fh.read(min(piece, count))
            if not data:
                break
            self.wfile.write(data)
            count -= len(data)
            if bps:
                self.wfile.flush()
                self.server.stop.wait(len(data) / bps)

    def _drop(self) -> None:
        """Cut the connection mid-body, as a proxy or a flaky network would."""
        self.wfile.flush()
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _big(self, head: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(BIG_CLAIMED_BYTES))
        self.end_headers()
        if not head:
            self.wfile.write(MP4_HEAD)
            self._drop()

    def _endless(self, head: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Connection", "close")  # no length: the end of the body is the end of the connection
        self.end_headers()
        self.close_connection = True
        if head:
            return
        self.wfile.write(MP4_HEAD)
        block = bytes(64 * 1024)
        sent = len(MP4_HEAD)
        while sent < _ENDLESS_CAP and not self.server.stop.is_set():
            self.wfile.write(block)
            sent += len(block)


class MediaServer:
    """A threaded HTTP server on 127.0.0.1 (port 0) serving ``root``; also a context manager."""

    def __init__(self, root: Path) -> None:
        self._server = _Server(Path(root))
        host, port = self._server.server_address[:2]
        self.host = str(host)
        self.port = int(port)
        self.base_url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"media-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        self._closed = False

    @property
    def root(self) -> Path:
        """The directory served."""
        return self._server.root

    def url(self, path: str, **query: str | int) -> str:
        """An absolute URL for ``path`` (percent-encoded here) with an optional query."""
        url = self.base_url + quote("/" + path.lstrip("/"))
        if query:
            url += "?" + "&".join(f"{quote(k)}={quote(str(v), safe='')}" for k, v in query.items())
        return url

    def requests(self, path: str | None = None) -> list[RequestRecord]:
        """Requests seen so far, for one path (without query) or all of them in arrival order."""
        with self._server.lock:
            if path is not None:
                return list(self._server.log.get(path, []))
            return sorted((r for records in self._server.log.values() for r in records), key=lambda r: r.at)

    def clear_log(self) -> None:
        """Forget the requests seen so far (and which flaky paths already failed once)."""
        with self._server.lock:
            self._server.log.clear()
            self._server.flaky_seen.clear()

    def close(self, timeout: float = 5.0) -> None:
        """Stop serving, end streaming handlers and wait (up to ``timeout``) for them to finish."""
        if self._closed:
            return
        self._closed = True
        self._server.stop.set()
        self._server.shutdown()
        self._thread.join(timeout)
        deadline = time.monotonic() + timeout
        with self._server.idle:
            # Idle keep-alive connections would hold their handler in readline() until the client hangs up.
            for conn in list(self._server.active):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            while self._server.active and time.monotonic() < deadline:
                self._server.idle.wait(deadline - time.monotonic())
        self._server.server_close()

    def __enter__(self) -> MediaServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
