"""Stage 2, fetch: download one source over http(s) into a task directory, safely and resumably.

The policy (DESIGN §6): http and https only; hosts allow-listed; private, loopback and link-local addresses refused
unless the host is listed by name; every redirect re-checked. A download streams to a ``.part`` file and is renamed
into place only when complete, so a half-written file never looks like a source.
"""

from __future__ import annotations

import hashlib
import http
import http.client
import ipaddress
import json
import logging
import os
import random
import re
import shutil
import socket
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from aicut.errors import (
    AicutError,
    FetchError,
    FetchTimeoutError,
    HttpStatusError,
    NotMediaError,
    TooLargeError,
    UrlNotAllowedError,
)

logger = logging.getLogger(__name__)

ALLOWED_SCHEMES = ("http", "https")
_CHUNK = 256 * 1024
# Enough for every signature sniff_media knows; MPEG-TS needs three 188-byte packets to be told from noise.
_SNIFF_BYTES = 1024
_PROGRESS_INTERVAL_S = 0.1
_REDIRECTS = (301, 302, 303, 307, 308)
_META = "meta.json"


@dataclass(frozen=True, slots=True)
class FetchOptions:
    """Limits and policy for one download."""

    allow_hosts: tuple[str, ...] = ()  # exact hosts or "*.suffix" wildcards; empty = any public host
    max_bytes: int = 4 * 1024**3
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 30.0
    total_timeout_s: float = 3600.0
    retries: int = 3  # extra tries on retryable errors (connection reset, 5xx, timeouts), with resume
    backoff_s: float = 1.0  # exponential backoff base with jitter
    max_redirects: int = 5
    user_agent: str = "aicut/0.1"
    cache_dir: str = ""  # "" = no cache; otherwise completed downloads are kept keyed by sha256(url)


@dataclass(frozen=True, slots=True)
class FetchResult:
    """A completed download; ``format`` is what sniff_media recognised in the first bytes."""

    path: Path
    size_bytes: int
    sha256: str
    content_type: str
    from_cache: bool
    format: str = ""


# --- policy ----------------------------------------------------------------------------------------------------------


def display_url(url: str) -> str:
    """The URL without user info, query or fragment: safe to log and to show a person (signatures live there)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<malformed URL>"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    return f"{parts.scheme}://{netloc}{parts.path}" if parts.scheme else parts.path


def _normalize_host(host: str) -> str:
    host = host.strip().strip("[]").rstrip(".").lower()
    try:
        # Compare in the form that goes on the wire, so 例子.中国 and xn--fsqu00a.xn--fiqs8s are the same host.
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def _host_matches(host: str, pattern: str) -> bool:
    pattern = pattern.strip()
    if pattern.startswith("*."):
        suffix = _normalize_host(pattern[2:])
        return host.endswith("." + suffix)
    return host == _normalize_host(pattern)


def _explicitly_allowed(host: str, options: FetchOptions) -> bool:
    # Only an exact entry vouches for a host's addresses: a wildcard would let any name under the suffix (which may
    # be someone else's DNS) point at the loopback or the LAN.
    host = _normalize_host(host)
    return any(not p.strip().startswith("*.") and _host_matches(host, p) for p in options.allow_hosts)


def address_forbidden(address: str) -> bool:
    """True when an IP address is private, loopback, link-local, multicast, reserved, unspecified or not global."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is the loopback too
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global  # shared address space 100.64/10 and friends
    )


def _check_static(url: str, options: FetchOptions) -> tuple[str, str, int]:
    """Scheme and allow-list checks that need no network; returns (scheme, host, port)."""
    shown = display_url(url)
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UrlNotAllowedError(f"{shown} is not a valid link: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise UrlNotAllowedError(
            f"{shown} uses the scheme {scheme or '(none)'!r}; only {' and '.join(ALLOWED_SCHEMES)} links can be "
            "downloaded"
        )
    if not parts.hostname:
        raise UrlNotAllowedError(f"{shown} has no host name")
    host = _normalize_host(parts.hostname)
    if options.allow_hosts and not any(_host_matches(host, p) for p in options.allow_hosts):
        raise UrlNotAllowedError(
            f"{shown}: the host {host} is not in the fetch allow-list ({', '.join(options.allow_hosts)}); "
            "add it to fetch.allow_hosts if it is a trusted storage host"
        )
    return scheme, host, port or (443 if scheme == "https" else 80)


def check_url(url: str, options: FetchOptions, resolve: Callable[..., Any] = socket.getaddrinfo) -> None:
    """Raise UrlNotAllowedError unless the fetch policy allows downloading ``url``.

    ``resolve`` has socket.getaddrinfo's signature; every address it returns must be public unless the host is
    listed by name in ``options.allow_hosts``.
    """
    _scheme, host, port = _check_static(url, options)
    if _explicitly_allowed(host, options):
        return
    try:
        infos = resolve(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        # DNS hiccups happen; a mistyped host fails again on retry, which costs seconds, not a wrong answer.
        raise FetchError(f"{display_url(url)}: could not resolve the host {host} ({_reason(exc)})") from exc
    addresses = sorted({info[4][0] for info in infos})
    if not addresses:
        raise FetchError(f"{display_url(url)}: the host {host} has no address")
    for address in addresses:
        if address_forbidden(address):
            raise UrlNotAllowedError(
                f"{display_url(url)}: the host {host} resolves to {address}, a private, loopback or otherwise "
                "non-public address; list the host in fetch.allow_hosts if it is trusted LAN storage"
            )


def _guarded_connection(base: type[HTTPConnection], options: FetchOptions) -> type[HTTPConnection]:
    class Guarded(base):  # type: ignore[valid-type, misc]
        """Checks the address actually connected to, closing the gap between check_url's lookup and connect."""

        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            host = str(self.host)
            peer = sock.getpeername()[0]
            if not _explicitly_allowed(host, options) and address_forbidden(peer):
                sock.close()
                raise UrlNotAllowedError(
                    f"the host {host} connected to {peer}, a private, loopback or otherwise non-public address; "
                    "list the host in fetch.allow_hosts if it is trusted LAN storage"
                )
            return sock

    return Guarded


class _GuardedAdapter(HTTPAdapter):
    def __init__(self, options: FetchOptions) -> None:
        self._options = options
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        http_cls = _guarded_connection(HTTPConnection, self._options)
        https_cls = _guarded_connection(HTTPSConnection, self._options)
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("GuardedHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http_cls}),
            "https": type("GuardedHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https_cls}),
        }


def make_session(options: FetchOptions) -> requests.Session:
    """A requests session whose direct connections re-check the connected address against the fetch policy.

    fetch() makes one when none is given; a caller's own session (say, logged in to the forum) is used as it is,
    with check_url on every hop but without this connect-time check.
    """
    session = requests.Session()
    adapter = _GuardedAdapter(options)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = options.user_agent
    return session


# --- names -----------------------------------------------------------------------------------------------------------

_UNSAFE_CHARS = re.compile(r'[<>:"/\\|?*]')
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"} | {
    f"{p}{n}" for p in ("COM", "LPT") for n in (*"123456789", "¹", "²", "³")
}
_MAX_NAME_BYTES = 160  # leaves room for "_cover.jpg", ".part" and friends under the usual 255-byte limit
_EXT = re.compile(r"^[A-Za-z0-9]{1,10}$")


def _clip_utf8(text: str, limit: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", errors="ignore")


def _clean_name(name: str) -> str:
    text = unicodedata.normalize("NFC", name or "")
    # The last component of either kind of path: "../../etc/passwd" and "..\\a\\b.mp4" keep only their file name.
    text = re.split(r"[/\\]", text)[-1]
    text = re.sub(r"\s+", " ", text)  # tabs and newlines are spaces to a person
    # Other control and format characters (including the right-to-left override used to disguise "gpj.exe") go.
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn"))
    text = _UNSAFE_CHARS.sub("_", text)
    return re.sub(r"\s+", " ", text).strip().rstrip(" .")  # Windows drops trailing dots and spaces


def _split_ext(text: str) -> tuple[str, str]:
    # Leading dots go from the stem (they hide files and spell ".."), so ".mp4" is an extension with no name.
    stem, dot, ext = text.rpartition(".")
    if not dot or not _EXT.match(ext):
        return text.strip(" ."), ""
    return stem.strip(" ."), ext


def safe_filename(name: str, fallback: str = "source") -> str:
    """A file name safe on Linux and Windows made from ``name``: last path component only, no control or
    Windows-reserved characters, no leading dots, not a device name, at most 160 UTF-8 bytes; Chinese is kept."""
    stem, ext = _split_ext(_clean_name(name))
    if not stem:
        fb_stem, fb_ext = _split_ext(_clean_name(fallback))
        stem, ext = fb_stem or "source", ext or fb_ext
    if stem.split(".", 1)[0].strip().upper() in _WINDOWS_RESERVED:
        stem = "_" + stem
    suffix = f".{ext}" if ext else ""
    stem = _clip_utf8(stem, _MAX_NAME_BYTES - len(suffix.encode())).rstrip(" .") or "source"
    return stem + suffix


def _name_from_url(url: str) -> str:
    try:
        path = urlsplit(url).path
    except ValueError:
        return ""
    return unquote(path.rstrip("/").rsplit("/", 1)[-1], errors="replace")


def _name_from_disposition(header: str) -> str:
    """The file name in a Content-Disposition header (RFC 6266, filename* preferred), or ""."""
    if not header:
        return ""
    star = re.search(r"filename\*\s*=\s*([^']*)'[^']*'([^;]+)", header, re.IGNORECASE)
    if star:
        charset = star.group(1).strip() or "utf-8"
        try:
            return unquote(star.group(2).strip().strip('"'), encoding=charset, errors="replace")
        except LookupError:
            return unquote(star.group(2).strip().strip('"'), errors="replace")
    plain = re.search(r'filename\s*=\s*("((?:[^"\\]|\\.)*)"|[^;]+)', header, re.IGNORECASE)
    if not plain:
        return ""
    value = plain.group(2) if plain.group(2) is not None else plain.group(1).strip()
    # http.client decodes header bytes as latin-1; Discuz and many Chinese servers send raw UTF-8 or GBK there.
    raw = value.encode("latin-1", errors="ignore")
    for encoding in ("utf-8", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return value


_FORMAT_EXT = {
    "mp4": "mp4", "mov": "mov", "m4a": "m4a", "3gp": "3gp", "matroska": "mkv", "webm": "webm", "avi": "avi",
    "flv": "flv", "mpegts": "ts", "mpegps": "mpg", "mpegvideo": "m2v", "mp3": "mp3", "wav": "wav", "ogg": "ogg",
    "flac": "flac", "aac": "aac", "amr": "amr", "asf": "wmv", "rm": "rm", "aiff": "aiff", "caf": "caf",
}
_MEDIA_EXTS = set(_FORMAT_EXT.values()) | {
    "m4v", "mkv", "mpeg", "mpg", "m2ts", "mts", "wma", "rmvb", "opus", "oga", "ogv", "3g2", "f4v", "vob", "aif",
}
_FORMAT_MIME = {
    "mp4": "video/mp4", "mov": "video/quicktime", "m4a": "audio/mp4", "3gp": "video/3gpp",
    "matroska": "video/x-matroska", "webm": "video/webm", "avi": "video/x-msvideo", "flv": "video/x-flv",
    "mpegts": "video/mp2t", "mpegps": "video/mpeg", "mpegvideo": "video/mpeg", "mp3": "audio/mpeg",
    "wav": "audio/wav", "ogg": "audio/ogg", "flac": "audio/flac", "aac": "audio/aac", "amr": "audio/amr",
    "asf": "video/x-ms-asf", "rm": "application/vnd.rn-realmedia", "aiff": "audio/aiff", "caf": "audio/x-caf",
}


# Extensions of pages and scripts that serve downloads, replaced rather than kept: "forum.php" → "forum.mp4".
_WEB_EXTS = {"php", "html", "htm", "asp", "aspx", "jsp", "cgi", "do", "action", "bin", "dat", "tmp", "download"}


def _with_media_ext(filename: str, fmt: str) -> str:
    # An attachment URL ("forum.php") or a bare title ("口播 第1条") would confuse every later stage; the sniffed
    # format gives the honest extension.
    stem, ext = _split_ext(filename)
    if ext.lower() in _MEDIA_EXTS:
        return filename
    base = stem if ext.lower() in _WEB_EXTS else filename
    return safe_filename(f"{base}.{_FORMAT_EXT.get(fmt, 'bin')}")


# --- sniffing --------------------------------------------------------------------------------------------------------


def _mpeg_audio_frame(b0: int, b1: int, b2: int) -> str | None:
    if b0 != 0xFF or (b1 & 0xE0) != 0xE0:
        return None
    version, layer = (b1 >> 3) & 3, (b1 >> 1) & 3
    if layer == 0:  # ADTS: the same 12-bit sync with layer 00
        return "aac" if (b1 & 0xF6) == 0xF0 and ((b2 >> 2) & 0xF) < 13 else None
    if version == 1 or (b2 >> 4) in (0, 0xF) or ((b2 >> 2) & 3) == 3:
        return None  # reserved version, free/bad bitrate, reserved sample rate
    return "mp3"


def sniff_media(head: bytes) -> str | None:
    """The media format the first bytes of a file announce ("mp4", "matroska", "mp3", ...), or None if not media."""
    if len(head) < 4:
        return None
    box = head[4:8]
    if box == b"ftyp":
        brand = head[8:12]
        if brand == b"qt  ":
            return "mov"
        if brand in (b"M4A ", b"M4B ", b"M4P "):
            return "m4a"
        if brand.startswith((b"3gp", b"3g2")):
            return "3gp"
        return "mp4"
    # Old QuickTime files start with an atom other than ftyp; the size field must be plausible too.
    size = int.from_bytes(head[:4], "big")
    if box in (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot") and (size in (0, 1) or size >= 8):
        return "mov"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm" if b"webm" in head[:64] else "matroska"
    if head[:4] in (b"RIFF", b"RF64", b"BW64"):
        kind = head[8:12]
        if kind == b"WAVE":
            return "wav"
        if kind in (b"AVI ", b"AVIX"):
            return "avi"
        return None  # WEBP and other RIFF files
    if head.startswith(b"FLV\x01"):
        return "flv"
    if head.startswith(b"ID3"):
        return "mp3"  # an ID3v2 tag; frames follow
    if len(head) >= 377 and head[0] == head[188] == head[376] == 0x47:
        return "mpegts"
    if len(head) >= 389 and head[4] == head[196] == head[388] == 0x47:
        return "mpegts"  # M2TS: 192-byte packets with a 4-byte timestamp prefix
    if head.startswith(b"\x00\x00\x01\xba"):
        return "mpegps"
    if head.startswith(b"\x00\x00\x01\xb3"):
        return "mpegvideo"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith(b"fLaC"):
        return "flac"
    if head.startswith(b"#!AMR"):
        return "amr"
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return "asf"
    if head.startswith(b".RMF"):
        return "rm"
    if head.startswith(b"FORM") and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head.startswith(b"caff"):
        return "caf"
    if len(head) >= 3:
        return _mpeg_audio_frame(head[0], head[1], head[2])
    return None


def _describe_non_media(head: bytes) -> str:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if not head:
        return "an empty response"
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<meta", b"<script", b"<title")):
        return "an HTML page, not a video (often a login, error or download page: use the direct link to the file)"
    if text.startswith(b"<?xml"):
        return "an XML document, not a video (storage services answer this way for a missing file or an expired link)"
    if text.startswith((b"{", b"[")):
        return "a JSON document, not a video (an API answer rather than the file)"
    if text.startswith(b"#extm3u"):
        return "an HLS playlist (.m3u8), not a single video file"
    if head.startswith(b"\xff\xd8\xff") or head.startswith(b"\x89PNG") or head.startswith(b"GIF8"):
        return "an image, not a video"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "an image, not a video"
    if head.startswith(b"%PDF"):
        return "a PDF document, not a video"
    if head.startswith((b"PK\x03\x04", b"Rar!", b"7z\xbc\xaf", b"\x1f\x8b")):
        return "an archive, not a video (upload the video file itself)"
    if not head.strip(b"\x00"):
        return "only zero bytes, not a video"
    try:
        decoded = head.decode("utf-8")
        if all(ch.isprintable() or ch in "\r\n\t" for ch in decoded):
            return "text, not a video"
    except UnicodeDecodeError:
        pass
    return "bytes that are not a known video or audio format"


def _preview(head: bytes) -> str:
    sample = head[:32]
    try:
        text = sample.decode("utf-8")
        if all(ch.isprintable() or ch in "\r\n\t" for ch in text):
            return repr(text)
    except UnicodeDecodeError:
        pass
    return sample[:16].hex(" ")


# --- errors ----------------------------------------------------------------------------------------------------------

_STATUS_ADVICE = {
    400: "the server did not accept the request; check the link",
    401: "the file needs a login; check the link or the forum credentials",
    403: "access was refused; the link may have expired or need a login",
    404: "the file is gone or the link is wrong",
    408: "the server gave up waiting; trying again may help",
    410: "the file was deleted",
    416: "the server could not serve the requested part of the file",
    429: "the server is rate-limiting downloads; trying again later may help",
}


def _reason(exc: BaseException) -> str:
    """A short cause for a person, taken from the innermost OSError; never the URL (it may carry a token)."""
    queue: list[BaseException] = [exc]
    seen: set[int] = set()
    best = ""
    while queue:
        cur = queue.pop(0)
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.strerror:
            best = cur.strerror  # keep walking: the innermost one is the most specific
        elif isinstance(cur, (http.client.IncompleteRead, urllib3.exceptions.IncompleteRead)) and not best:
            best = "the server closed the connection mid-transfer"
        # requests and urllib3 keep the cause in __cause__/__context__, in .reason, or among the args
        linked = (cur.__cause__, cur.__context__, getattr(cur, "reason", None), *cur.args)
        queue.extend(e for e in linked if isinstance(e, BaseException))
    return best or type(exc).__name__


def _size(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def _status_error(method_url: str, status: int, reason: str) -> HttpStatusError:
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = reason or "unknown status"
    if status >= 500:
        advice = "the server had a problem; trying again later may help"
    else:
        advice = _STATUS_ADVICE.get(status, "the server refused to send the file")
    return HttpStatusError(f"GET {method_url} answered {status} {phrase}: {advice}", status=status)


def _translate(exc: BaseException, shown: str, host: str, options: FetchOptions, received: int) -> AicutError:
    """Turn a requests/urllib3/socket exception into our tree; messages never carry the query string."""
    where = f" after {received} bytes" if received else ""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return FetchTimeoutError(f"{shown}: could not connect to {host} within {options.connect_timeout_s:g} s")
    if isinstance(exc, (requests.exceptions.ReadTimeout, urllib3.exceptions.ReadTimeoutError, socket.timeout)):
        return FetchTimeoutError(f"{shown}: {host} sent nothing for {options.read_timeout_s:g} s{where}")
    if isinstance(exc, requests.exceptions.SSLError):
        return FetchError(f"{shown}: the TLS connection to {host} failed ({_reason(exc)})", retryable=False)
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema)):
        return FetchError(f"{shown}: the link is malformed", retryable=False)
    if isinstance(exc, requests.exceptions.ConnectionError) and not received:
        return FetchError(f"{shown}: could not connect to {host} ({_reason(exc)})")
    return FetchError(f"{shown}: the connection to {host} broke{where} ({_reason(exc)})")


# --- download --------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _State:
    """What survives between tries of one download."""

    received: int = 0
    total: int | None = None
    hasher: Any = field(default_factory=hashlib.sha256)
    head: bytes = b""
    format: str | None = None
    validator: str = ""  # ETag or Last-Modified, sent as If-Range so a changed file restarts instead of splicing
    content_type: str = ""
    disposition_name: str = ""
    final_url: str = ""
    retry_after: float = 0.0
    last_progress: float = 0.0

    def restart(self) -> None:
        self.received = 0
        self.total = None
        self.hasher = hashlib.sha256()
        self.head = b""
        self.format = None


def _open(
    url: str, http_session: requests.Session, options: FetchOptions, headers: dict[str, str], deadline: float
) -> tuple[requests.Response, str]:
    """GET with redirects followed by hand, each hop checked against the policy; returns (response, final URL)."""
    current = url
    for _hop in range(options.max_redirects + 1):
        check_url(current, options)
        remaining = max(0.001, deadline - time.monotonic())
        shown = display_url(current)
        host = urlsplit(current).hostname or ""
        try:
            resp = http_session.get(
                current,
                headers=headers,
                stream=True,
                allow_redirects=False,
                timeout=(min(options.connect_timeout_s, remaining), min(options.read_timeout_s, remaining)),
            )
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise _translate(exc, shown, host, options, 0) from exc
        location = resp.headers.get("Location")
        if resp.status_code in _REDIRECTS and location:
            resp.close()
            nxt = urljoin(current, location)
            logger.debug("%s redirects to %s", shown, display_url(nxt))
            current = nxt
            continue
        return resp, current
    raise FetchError(
        f"{display_url(url)} redirected more than {options.max_redirects} times; use the final link", retryable=False
    )


def _parse_content_range(value: str) -> tuple[int, int | None] | None:
    match = re.match(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", value or "")
    if not match:
        return None
    total = None if match.group(3) == "*" else int(match.group(3))
    return int(match.group(1)), total


def _retry_after(resp: requests.Response) -> float:
    value = resp.headers.get("Retry-After", "").strip()
    return float(value) if value.isdigit() else 0.0


def _report(progress: Callable[[int, int | None], None] | None, state: _State, *, force: bool = False) -> None:
    if progress is None:
        return
    now = time.monotonic()
    if force or now - state.last_progress >= _PROGRESS_INTERVAL_S:
        state.last_progress = now
        progress(state.received, state.total)


def _attempt(
    url: str,
    part: Path,
    state: _State,
    options: FetchOptions,
    http_session: requests.Session,
    deadline: float,
    progress: Callable[[int, int | None], None] | None,
) -> None:
    """One GET: starts or resumes ``part``; returns when the body is complete, raises AicutError otherwise."""
    shown = display_url(url)
    headers = {"Accept-Encoding": "identity", "User-Agent": options.user_agent}
    if state.received:
        headers["Range"] = f"bytes={state.received}-"
        if state.validator:
            headers["If-Range"] = state.validator
    resp, final_url = _open(url, http_session, options, headers, deadline)
    with resp:
        status = resp.status_code
        host = urlsplit(final_url).hostname or ""
        if status == 416 and state.received and state.total == state.received:
            return  # the previous try got every byte; only the connection close was lost
        if status >= 300:
            state.retry_after = _retry_after(resp)
            raise _status_error(display_url(final_url), status, resp.reason or "")
        part_range = _parse_content_range(resp.headers.get("Content-Range", "")) if status == 206 else None
        if status == 206 and (part_range is None or part_range[0] != state.received):
            # A part we did not ask for cannot be spliced in; the next try starts from byte 0 without Range.
            state.restart()
            raise FetchError(f"{shown}: the server sent the wrong part of the file; starting again")
        if part_range is not None and state.received:
            mode = "ab"
            total = part_range[1]
            logger.info("%s: resuming at byte %d", shown, state.received)
        else:
            if state.received:
                logger.info("%s: the server did not resume at byte %d; starting again", shown, state.received)
            state.restart()
            mode = "wb"
            length = resp.headers.get("Content-Length", "")
            total = int(length) if length.isdigit() else None
            if part_range is not None and part_range[1] is not None:
                total = part_range[1]  # a 206 for bytes 0- that we did not ask for still says the full size
            etag = resp.headers.get("ETag", "")
            state.validator = etag if etag and not etag.startswith("W/") else resp.headers.get("Last-Modified", "")
            state.content_type = resp.headers.get("Content-Type", "")
            state.disposition_name = _name_from_disposition(resp.headers.get("Content-Disposition", ""))
            state.final_url = final_url
        if resp.headers.get("Content-Encoding", "identity").lower() not in ("", "identity"):
            total = None  # lengths count encoded bytes; only the decoded ones are ours
        if total is not None and total > options.max_bytes:
            raise TooLargeError(
                f"{shown} is {_size(total)}, over the {_size(options.max_bytes)} download limit"
            )
        state.total = total
        _report(progress, state, force=True)
        try:
            fh = part.open(mode)
        except OSError as exc:
            raise FetchError(f"could not write the download to {part.parent}: {exc.strerror}") from exc
        with fh:
            while True:
                try:
                    chunk = resp.raw.read1(_CHUNK)
                except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                    raise _translate(exc, shown, host, options, state.received) from exc
                if not chunk:
                    break
                if state.received + len(chunk) > options.max_bytes:
                    raise TooLargeError(
                        f"{shown} sent more than the {_size(options.max_bytes)} download limit; stopped"
                    )
                if state.format is None:
                    state.head += chunk[: _SNIFF_BYTES - len(state.head)]
                    if len(state.head) >= _SNIFF_BYTES:
                        state.format = _sniff_or_raise(shown, state)
                try:
                    fh.write(chunk)
                except OSError as exc:
                    raise FetchError(f"could not write the download to {part.parent}: {exc.strerror}") from exc
                state.hasher.update(chunk)
                state.received += len(chunk)
                _report(progress, state)
                if time.monotonic() > deadline:
                    raise FetchTimeoutError(
                        f"{shown}: the download took longer than the {options.total_timeout_s:g} s limit "
                        f"({state.received} bytes received)"
                    )
    if state.format is None:
        state.format = _sniff_or_raise(shown, state)
    if state.total is not None and state.received < state.total:
        raise FetchError(f"{shown}: the connection closed after {state.received} of {state.total} bytes")


def _sniff_or_raise(shown: str, state: _State) -> str:
    fmt = sniff_media(state.head)
    if fmt is None and is_hls_playlist(state.head):
        return "hls"  # fetch() remuxes the stream it lists into one MP4
    if fmt is None:
        raise NotMediaError(
            f"{shown} is not a video or audio file: the link returned {_describe_non_media(state.head)} "
            f"[Content-Type: {state.content_type or 'none'}; first bytes: {_preview(state.head) or 'none'}]"
        )
    return fmt


def _backoff(options: FetchOptions, attempt: int, retry_after: float) -> float:
    delay = options.backoff_s * (2 ** (attempt - 1)) * random.uniform(0.5, 1.5)
    # A server that says when to come back knows better, within reason.
    return max(delay, min(retry_after, 60.0))


def _content_type(header: str, fmt: str) -> str:
    mime = header.split(";", 1)[0].strip().lower()
    if mime.startswith(("video/", "audio/")):
        return mime
    return _FORMAT_MIME.get(fmt, mime or "application/octet-stream")


def _place(src: Path, dst: Path) -> None:
    """Hard-link ``src`` at ``dst`` (copy across file systems), replacing ``dst`` atomically."""
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.{random.getrandbits(32):08x}.tmp")
    try:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)


def _file_sha256(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            hasher.update(block)
    return hasher.hexdigest()


def _cache_lookup(entry: Path, dest_dir: Path, name: str) -> FetchResult | None:
    meta_path = entry / _META
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        cached = entry / meta["file"]
        if cached.stat().st_size != meta["size_bytes"] or _file_sha256(cached) != meta["sha256"]:
            raise ValueError("the cached file does not match its record")
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("ignoring the broken cache entry %s: %s", entry, exc)
        shutil.rmtree(entry, ignore_errors=True)
        return None
    filename = _with_media_ext(safe_filename(name), meta.get("format", "")) if name else meta["file"]
    dest = dest_dir / filename
    _place(cached, dest)
    logger.info("%s: served from the cache", meta.get("url", "?"))
    return FetchResult(
        path=dest,
        size_bytes=meta["size_bytes"],
        sha256=meta["sha256"],
        content_type=meta.get("content_type", ""),
        from_cache=True,
        format=meta.get("format", ""),
    )


def _cache_store(entry: Path, result: FetchResult, url: str) -> None:
    # A cache that cannot be written costs a re-download later, never the task.
    try:
        entry.mkdir(parents=True, exist_ok=True)
        _place(result.path, entry / result.path.name)
        meta = {
            "url": display_url(url),  # no query: signed links must not sit on disk in the clear
            "file": result.path.name,
            "size_bytes": result.size_bytes,
            "sha256": result.sha256,
            "content_type": result.content_type,
            "format": result.format,
            "stored_at": time.time(),
        }
        tmp = entry / f".{_META}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, entry / _META)  # the record appears last: its presence means the file is complete
    except OSError as exc:
        logger.warning("could not store %s in the cache %s: %s", result.path.name, entry, exc)


def fetch(
    url: str,
    dest_dir: Path,
    options: FetchOptions,
    *,
    name: str = "",
    progress: Callable[[int, int | None], None] | None = None,
    session: requests.Session | None = None,
) -> FetchResult:
    """Download ``url`` into ``dest_dir`` under the fetch policy; see the module docstring.

    The file is named from ``name``, else the server's Content-Disposition, else the URL path, with the extension
    corrected to the sniffed format. ``progress(bytes_so_far, total_or_None)`` is called at most ~10 times a second;
    an exception it raises aborts the download (that is how a caller cancels).
    """
    url = url.strip()
    shown = display_url(url)
    _check_static(url, options)
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(url.encode("utf-8")).hexdigest()
    entry = Path(options.cache_dir) / key if options.cache_dir else None
    if entry is not None:
        hit = _cache_lookup(entry, dest_dir, name)
        if hit is not None:
            _report(progress, _State(received=hit.size_bytes, total=hit.size_bytes), force=True)
            return hit

    own_session = session is None
    http_session = make_session(options) if session is None else session
    started = time.monotonic()
    deadline = started + options.total_timeout_s
    part = dest_dir / f".{key[:16]}.part"
    state = _State()
    try:
        attempt = 0
        while True:
            try:
                _attempt(url, part, state, options, http_session, deadline, progress)
                break
            except AicutError as exc:
                if not exc.retryable or attempt >= options.retries or time.monotonic() >= deadline:
                    raise
                attempt += 1
                delay = _backoff(options, attempt, state.retry_after)
                state.retry_after = 0.0
                if time.monotonic() + delay >= deadline:
                    raise FetchTimeoutError(
                        f"{shown}: no time left within the {options.total_timeout_s:g} s limit to retry after: "
                        f"{exc.message}"
                    ) from exc
                logger.warning(
                    "%s (try %d of %d, again in %.1f s)", exc.message, attempt, options.retries + 1, delay
                )
                time.sleep(delay)
        _report(progress, state, force=True)
        base = name or state.disposition_name or _name_from_url(state.final_url or url)
        if state.format == "hls":
            fmt = "mp4"
            stem, ext = _split_ext(safe_filename(base))
            base = stem if ext.lower() in ("m3u8", "m3u") else base
            filename = _with_media_ext(safe_filename(base), fmt)
            dest = dest_dir / filename
            size, digest = _fetch_hls(state.final_url or url, part, dest, options, http_session, deadline, progress)
            state.received, state.format, state.content_type = size, fmt, "video/mp4"
            state.hasher = _Digest(digest)
        else:
            filename = _with_media_ext(safe_filename(base), state.format or "")
            dest = dest_dir / filename
            os.replace(part, dest)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    finally:
        if own_session:
            http_session.close()

    result = FetchResult(
        path=dest,
        size_bytes=state.received,
        sha256=state.hasher.hexdigest(),
        content_type=_content_type(state.content_type, state.format),
        from_cache=False,
        format=state.format,
    )
    logger.info(
        "fetched %s: %d bytes (%s) in %.1f s", shown, result.size_bytes, result.format, time.monotonic() - started
    )
    if entry is not None:
        _cache_store(entry, result, url)
    return result


# --- HLS -------------------------------------------------------------------------------------------------------------
#
# An .m3u8 link is not one file but a playlist of segments (and, for a master playlist, of variant playlists). fetch
# reads every playlist itself, checks each URI it lists against the policy, and only then lets FFmpeg (through PyAV)
# read the stream and copy its audio and video packets, unchanged, into one local MP4. FFmpeg may use only the
# protocols a playlist needs. What this cannot see: a segment URL that redirects elsewhere (FFmpeg follows it) and a
# host whose DNS answer changes between the check and FFmpeg's own connection; list trusted hosts in allow_hosts.

_HLS_PROTOCOLS = "http,https,tcp,tls,crypto"
_HLS_MAX_PLAYLIST_BYTES = 4 * 1024**2
_HLS_MAX_VARIANTS = 32
_URI_ATTR = re.compile(r'URI\s*=\s*"([^"]*)"', re.IGNORECASE)


class _Digest:
    """Stands in for a hashlib object once the digest of the remuxed file is known."""

    def __init__(self, hexdigest: str) -> None:
        self._hex = hexdigest

    def hexdigest(self) -> str:
        return self._hex


def is_hls_playlist(head: bytes) -> bool:
    """True when ``head`` starts like an HLS playlist (#EXTM3U, after an optional BOM and blank space)."""
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").upper().startswith(b"#EXTM3U")


def hls_uris(text: str, base_url: str) -> tuple[list[str], list[str]]:
    """(variant playlist URLs, every other URL) an HLS playlist refers to, made absolute against ``base_url``.

    URI lines and the URI="..." attribute of every tag (#EXT-X-KEY, #EXT-X-MAP, #EXT-X-MEDIA, ...) count: FFmpeg
    opens all of them.
    """
    variants: list[str] = []
    others: list[str] = []
    next_is_variant = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            upper = line.upper()
            for uri in _URI_ATTR.findall(line):
                target = variants if upper.startswith("#EXT-X-MEDIA:") else others
                target.append(urljoin(base_url, uri.strip()))
            if upper.startswith("#EXT-X-STREAM-INF"):
                next_is_variant = True
            continue
        (variants if next_is_variant else others).append(urljoin(base_url, line))
        next_is_variant = False
    return variants, others


def _read_playlist(url: str, options: FetchOptions, http_session: requests.Session, deadline: float) -> tuple[str, str]:
    """GET a (variant) playlist under the policy; returns (text, final URL)."""
    shown = display_url(url)
    headers = {"Accept-Encoding": "identity", "User-Agent": options.user_agent}
    resp, final_url = _open(url, http_session, options, headers, deadline)
    with resp:
        if resp.status_code >= 300:
            raise _status_error(display_url(final_url), resp.status_code, resp.reason or "")
        body = b""
        try:
            for chunk in resp.iter_content(_CHUNK):
                body += chunk
                if len(body) > _HLS_MAX_PLAYLIST_BYTES:
                    raise TooLargeError(f"{shown}: the HLS playlist is over {_size(_HLS_MAX_PLAYLIST_BYTES)}")
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise _translate(exc, shown, urlsplit(final_url).hostname or "", options, len(body)) from exc
    if not is_hls_playlist(body[:_SNIFF_BYTES]):
        raise NotMediaError(f"{shown} is listed as an HLS variant playlist but is not one")
    return body.decode("utf-8", errors="replace"), final_url


def _check_hls(url: str, text: str, options: FetchOptions, http_session: requests.Session,
               deadline: float) -> None:
    """check_url every URI of the playlist ``text`` (at ``url``) and of the variant playlists it lists."""
    shown = display_url(url)
    variants, others = hls_uris(text, url)
    if len(variants) > _HLS_MAX_VARIANTS:
        raise NotMediaError(f"{shown}: the HLS playlist lists {len(variants)} variants, more than {_HLS_MAX_VARIANTS}")
    for uri in others:
        check_url(uri, options)
    if not variants:
        if not others:
            raise NotMediaError(f"{shown} is an HLS playlist that lists no segments")
        if "#EXT-X-ENDLIST" not in text.upper():
            raise NotMediaError(
                f"{shown} is a live HLS stream (its playlist has no end); only recorded videos can be cut, so post "
                "the recording"
            )
        return
    for variant in variants:
        check_url(variant, options)
        sub_text, final = _read_playlist(variant, options, http_session, deadline)
        if final != variant:
            raise UrlNotAllowedError(
                f"{display_url(variant)} redirects to {display_url(final)}; an HLS playlist must list its variants "
                "by their final links"
            )
        sub_variants, sub_others = hls_uris(sub_text, variant)
        if sub_variants:
            raise NotMediaError(f"{display_url(variant)}: an HLS variant playlist lists further variant playlists")
        if not sub_others:
            raise NotMediaError(f"{display_url(variant)} is an HLS playlist that lists no segments")
        if "#EXT-X-ENDLIST" not in sub_text.upper():
            raise NotMediaError(
                f"{shown} is a live HLS stream (its playlist has no end); only recorded videos can be cut, so post "
                "the recording"
            )
        for uri in sub_others:
            check_url(uri, options)


def _fetch_hls(
    url: str,
    playlist: Path,
    dest: Path,
    options: FetchOptions,
    http_session: requests.Session,
    deadline: float,
    progress: Callable[[int, int | None], None] | None,
) -> tuple[int, str]:
    """Remux the HLS stream at ``url`` (its playlist already downloaded to ``playlist``) into the MP4 ``dest``.

    Returns (size in bytes, sha256). Packets are copied, never re-encoded. The size cap applies to the MP4 as it
    grows and the total time cap to the whole download.
    """
    import av  # PyAV: only an HLS source needs it here
    import av.error

    shown = display_url(url)
    try:
        text = playlist.read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        raise FetchError(f"could not read the downloaded playlist in {playlist.parent}: {exc.strerror}") from exc
    _check_hls(url, text, options, http_session, deadline)
    playlist.unlink(missing_ok=True)

    remaining = max(1.0, deadline - time.monotonic())
    io_timeout_us = str(int(min(options.read_timeout_s, remaining) * 1_000_000))
    av_options = {
        "protocol_whitelist": _HLS_PROTOCOLS,
        "rw_timeout": io_timeout_us,       # any one read or connect of FFmpeg's, in microseconds
        "user_agent": options.user_agent,
        "http_persistent": "1",
        "max_reload": "3",
    }
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{random.getrandbits(32):08x}.part")
    written = 0
    last_report = 0.0
    try:
        try:
            src = av.open(url, format="hls", options=av_options,
                          timeout=(min(options.connect_timeout_s, remaining), min(options.read_timeout_s, remaining)))
        except av.error.FFmpegError as exc:
            raise _hls_error(exc, shown) from exc
        with src:
            streams = [s for s in src.streams if s.type in ("video", "audio")]
            if not any(s.type == "video" for s in streams) and not any(s.type == "audio" for s in streams):
                raise NotMediaError(f"{shown}: the HLS stream holds no audio or video")
            try:
                out = av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"})
            except (av.error.FFmpegError, OSError) as exc:
                raise FetchError(f"could not write the download to {dest.parent}: {exc}") from exc
            with out:
                mapping = {}
                for s in streams:
                    try:
                        mapping[s.index] = out.add_stream_from_template(s)
                    except (ValueError, av.error.FFmpegError) as exc:
                        raise NotMediaError(f"{shown}: a track of the HLS stream cannot go into an MP4 ({exc})") from exc
                try:
                    for packet in src.demux(*streams):
                        if packet.dts is None:
                            continue  # the demuxer's end-of-stream flush packet
                        written += packet.size
                        if written > options.max_bytes:
                            raise TooLargeError(
                                f"{shown} (an HLS stream) came to more than the {_size(options.max_bytes)} download "
                                "limit; stopped"
                            )
                        if time.monotonic() > deadline:
                            raise FetchTimeoutError(
                                f"{shown}: the download took longer than the {options.total_timeout_s:g} s limit "
                                f"({written} bytes received)"
                            )
                        packet.stream = mapping[packet.stream.index]
                        out.mux(packet)
                        if progress is not None and time.monotonic() - last_report >= _PROGRESS_INTERVAL_S:
                            last_report = time.monotonic()
                            progress(written, None)
                except av.error.FFmpegError as exc:
                    raise _hls_error(exc, shown) from exc
        if written == 0:
            raise NotMediaError(f"{shown}: the HLS stream had no audio or video data")
        size = tmp.stat().st_size
        if size > options.max_bytes:
            raise TooLargeError(f"{shown} (an HLS stream) is {_size(size)}, over the {_size(options.max_bytes)} "
                                "download limit")
        digest = _file_sha256(tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    if progress is not None:
        progress(size, size)
    return size, digest


def _hls_error(exc: BaseException, shown: str) -> AicutError:
    import av.error

    reason = getattr(exc, "strerror", None) or type(exc).__name__
    if isinstance(exc, av.error.HTTPClientError):
        return FetchError(f"{shown}: a part of the HLS stream was refused by the server ({reason})", retryable=False)
    if isinstance(exc, av.error.InvalidDataError):
        return NotMediaError(f"{shown}: the HLS stream could not be read as video ({reason})")
    if isinstance(exc, av.error.ExitError):
        return FetchTimeoutError(f"{shown}: the HLS stream stopped answering ({reason})")
    return FetchError(f"{shown}: reading the HLS stream failed ({reason})")
