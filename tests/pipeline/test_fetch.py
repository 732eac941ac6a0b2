"""fetch against a real HTTP server on 127.0.0.1: policy, errors, limits, resume, cache, names and sniffing."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest

from aicut.errors import (
    FetchError,
    FetchTimeoutError,
    HttpStatusError,
    NotMediaError,
    TooLargeError,
    UrlNotAllowedError,
)
from aicut.pipeline.fetch import (
    FetchOptions,
    address_forbidden,
    check_url,
    display_url,
    fetch,
    make_session,
    safe_filename,
    sniff_media,
)
from tests.support.httpserver import MP4_HEAD, MediaServer

# The test server is on the loopback, so it must be listed by name; tiny backoff keeps retries quick.
LOCAL = FetchOptions(
    allow_hosts=("127.0.0.1",), retries=0, backoff_s=0.01, connect_timeout_s=5, read_timeout_s=10, total_timeout_s=60
)


def public_resolver(*addresses: str):
    """A getaddrinfo stand-in answering ``addresses`` for every host."""

    def resolve(host: str, port: int, *args: object, **kwargs: object) -> list[tuple]:
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses
        ]

    return resolve


def no_resolver(host: str, *args: object, **kwargs: object) -> list[tuple]:
    raise AssertionError(f"check_url should not have resolved {host}")


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# --- policy ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["ftp://example.com/a.mp4", "file:///etc/passwd", "javascript:alert(1)", "gopher://x/", "//host/a.mp4", ""]
)
def test_refuses_schemes_other_than_http_and_https(url: str, tmp_path: Path) -> None:
    with pytest.raises(UrlNotAllowedError) as info:
        fetch(url, tmp_path, FetchOptions())
    assert "only http and https" in info.value.message
    assert info.value.retryable is False
    assert files_in(tmp_path) == []


def test_allow_list_exact_and_wildcard() -> None:
    options = FetchOptions(allow_hosts=("cdn.example.com", "*.forum.example"))
    with pytest.raises(UrlNotAllowedError, match="not in the fetch allow-list"):
        check_url("https://evil.example/a.mp4", options, resolve=no_resolver)
    with pytest.raises(UrlNotAllowedError):  # a wildcard covers subdomains, not the bare domain
        check_url("https://forum.example/a.mp4", options, resolve=no_resolver)
    with pytest.raises(UrlNotAllowedError):
        check_url("https://cdn.example.com.evil.example/a.mp4", options, resolve=no_resolver)
    check_url("https://CDN.Example.com./a.mp4", options, resolve=public_resolver("93.184.216.34"))
    check_url("https://img.a.forum.example/a.mp4", options, resolve=public_resolver("93.184.216.34"))


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.10", "169.254.169.254", "100.64.0.1", "0.0.0.0",
     "224.0.0.1", "240.0.0.1", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "::"],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert address_forbidden(address)
    with pytest.raises(UrlNotAllowedError, match="non-public address"):
        check_url("https://videos.example.com/a.mp4", FetchOptions(), resolve=public_resolver(address))


def test_one_private_address_among_public_ones_is_enough_to_refuse() -> None:
    with pytest.raises(UrlNotAllowedError, match="10.0.0.7"):
        check_url("http://cdn.example.com/a.mp4", FetchOptions(), resolve=public_resolver("93.184.216.34", "10.0.0.7"))


def test_public_address_is_allowed() -> None:
    check_url("https://videos.example.com/a.mp4", FetchOptions(), resolve=public_resolver("93.184.216.34"))
    assert not address_forbidden("2606:2800:220:1:248:1893:25c8:1946")


def test_a_wildcard_does_not_vouch_for_private_addresses() -> None:
    options = FetchOptions(allow_hosts=("*.lan.example",))
    with pytest.raises(UrlNotAllowedError, match="non-public"):
        check_url("http://nas.lan.example/a.mp4", options, resolve=public_resolver("192.168.1.5"))
    check_url("http://nas.lan.example/a.mp4", FetchOptions(allow_hosts=("nas.lan.example",)), resolve=no_resolver)


def test_unresolvable_host_is_a_retryable_fetch_error() -> None:
    def fail(*args: object, **kwargs: object) -> list[tuple]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(FetchError, match="could not resolve") as info:
        check_url("https://nowhere.example/a.mp4", FetchOptions(), resolve=fail)
    assert info.value.retryable is True


def test_loopback_refused_when_not_listed(media_server: MediaServer, tmp_path: Path) -> None:
    with pytest.raises(UrlNotAllowedError, match="127.0.0.1"):
        fetch(media_server.url("clip.mp4"), tmp_path, FetchOptions(retries=0))
    assert media_server.requests() == []
    assert files_in(tmp_path) == []


def test_loopback_allowed_when_listed(media_server: MediaServer, clip_path: Path, tmp_path: Path) -> None:
    result = fetch(media_server.url("clip.mp4"), tmp_path / "task", LOCAL)
    data = clip_path.read_bytes()
    assert result.path == tmp_path / "task" / "clip.mp4"
    assert result.path.read_bytes() == data
    assert result.size_bytes == len(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.content_type == "video/mp4"
    assert result.format == "mp4"
    assert result.from_cache is False
    assert files_in(tmp_path / "task") == ["clip.mp4"]  # no .part left behind
    (request,) = media_server.requests("/clip.mp4")
    assert request.headers["user-agent"] == "aicut/0.1"
    assert "range" not in request.headers


def test_connect_time_guard_refuses_loopback(media_server: MediaServer) -> None:
    # make_session checks the address actually connected to, even when check_url was never asked
    with make_session(FetchOptions()) as session, pytest.raises(UrlNotAllowedError, match="non-public"):
        session.get(media_server.url("clip.mp4"), timeout=5)
    assert media_server.requests() == []
    with make_session(LOCAL) as session:
        response = session.get(media_server.url("clip.mp4"), timeout=5)
        assert response.status_code == 200
        response.close()


# --- redirects -------------------------------------------------------------------------------------------------------


def test_redirect_to_a_disallowed_host_is_refused(media_server: MediaServer, tmp_path: Path) -> None:
    url = media_server.url("redirect", to="http://evil.example/steal.mp4")
    with pytest.raises(UrlNotAllowedError, match="evil.example"):
        fetch(url, tmp_path, LOCAL)


def test_redirect_to_loopback_by_another_name_is_refused(media_server: MediaServer, tmp_path: Path) -> None:
    url = media_server.url("redirect", to=f"http://localhost:{media_server.port}/clip.mp4")
    with pytest.raises(UrlNotAllowedError):
        fetch(url, tmp_path, FetchOptions(allow_hosts=("127.0.0.1", "localhost.example")))
    assert media_server.requests("/clip.mp4") == []


def test_redirect_within_policy_is_followed(media_server: MediaServer, clip_path: Path, tmp_path: Path) -> None:
    url = media_server.url("redirect", to="/clip.mp4", code=307)
    result = fetch(url, tmp_path, LOCAL)
    assert result.path.name == "clip.mp4"  # named after where the bytes came from
    assert result.path.read_bytes() == clip_path.read_bytes()


def test_redirect_loop_is_capped(media_server: MediaServer, tmp_path: Path) -> None:
    hop = media_server.url("redirect", to="/clip.mp4")
    for _ in range(3):
        hop = media_server.url("redirect", to=hop)
    with pytest.raises(FetchError, match="redirected more than 2 times") as info:
        fetch(hop, tmp_path, FetchOptions(allow_hosts=("127.0.0.1",), max_redirects=2, retries=3))
    assert info.value.retryable is False
    assert len(media_server.requests("/redirect")) == 3


# --- HTTP errors and non-media ---------------------------------------------------------------------------------------


def test_404_is_final_with_a_readable_message(media_server: MediaServer, tmp_path: Path) -> None:
    url = media_server.url("status/404", token="SECRET-SIGNATURE")
    with pytest.raises(HttpStatusError) as info:
        fetch(url, tmp_path, FetchOptions(allow_hosts=("127.0.0.1",), retries=3, backoff_s=0.01))
    err = info.value
    assert err.status == 404
    assert err.retryable is False
    assert err.message == (
        f"GET {media_server.base_url}/status/404 answered 404 Not Found: the file is gone or the link is wrong"
    )
    assert "SECRET" not in str(err)
    assert len(media_server.requests("/status/404")) == 1  # final: no retries
    assert files_in(tmp_path) == []


def test_503_is_retryable_and_retried(media_server: MediaServer, tmp_path: Path) -> None:
    with pytest.raises(HttpStatusError) as info:
        fetch(media_server.url("status/503"), tmp_path, FetchOptions(allow_hosts=("127.0.0.1",), retries=2,
                                                                      backoff_s=0.01))
    assert info.value.status == 503
    assert info.value.retryable is True
    assert "503 Service Unavailable" in info.value.message
    assert len(media_server.requests("/status/503")) == 3


def test_html_page_is_not_media(media_server: MediaServer, tmp_path: Path) -> None:
    with pytest.raises(NotMediaError) as info:
        fetch(media_server.url("html"), tmp_path, LOCAL)
    message = info.value.message
    assert "HTML page, not a video" in message
    assert "text/html" in message
    assert "<!DOCTYPE html>" in message
    assert info.value.retryable is False
    assert files_in(tmp_path) == []


# --- size and time limits --------------------------------------------------------------------------------------------


def test_claimed_size_over_the_cap_is_refused_before_the_body(media_server: MediaServer, tmp_path: Path) -> None:
    seen: list[tuple[int, int | None]] = []
    with pytest.raises(TooLargeError, match="big is 1.0 TB, over the 50.0 MB download limit"):
        fetch(media_server.url("big"), tmp_path, FetchOptions(allow_hosts=("127.0.0.1",), max_bytes=50_000_000),
              progress=lambda done, total: seen.append((done, total)))
    assert seen == []  # not one byte of the body was taken
    assert files_in(tmp_path) == []


def test_endless_stream_stops_at_the_cap_and_leaves_nothing(media_server: MediaServer, tmp_path: Path) -> None:
    with pytest.raises(TooLargeError, match="more than the 1.0 MB download limit"):
        fetch(media_server.url("endless"), tmp_path, FetchOptions(allow_hosts=("127.0.0.1",), max_bytes=1_000_000))
    assert files_in(tmp_path) == []


def test_total_time_cap(media_server: MediaServer, tmp_path: Path) -> None:
    options = FetchOptions(allow_hosts=("127.0.0.1",), total_timeout_s=0.4, retries=3, backoff_s=0.01)
    with pytest.raises(FetchTimeoutError, match="0.4 s limit"):
        fetch(media_server.url("slow/clip.mp4", bps=20_000), tmp_path, options)
    assert files_in(tmp_path) == []


def test_read_timeout_is_a_retryable_timeout(media_server: MediaServer, tmp_path: Path) -> None:
    options = FetchOptions(allow_hosts=("127.0.0.1",), read_timeout_s=0.3, retries=0)
    with pytest.raises(FetchTimeoutError, match="sent nothing for 0.3 s") as info:
        fetch(media_server.url("slow/clip.mp4", bps=1), tmp_path, options)
    assert info.value.retryable is True
    assert files_in(tmp_path) == []


def test_connection_refused_is_retryable(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the block ends: nothing listens there
    with pytest.raises(FetchError, match="could not connect") as info:
        fetch(f"http://127.0.0.1:{port}/a.mp4", tmp_path, LOCAL)
    assert info.value.retryable is True
    assert not isinstance(info.value, (HttpStatusError, UrlNotAllowedError))


# --- resume ----------------------------------------------------------------------------------------------------------


def test_dropped_connection_is_resumed_with_range(media_server: MediaServer, clip_path: Path, tmp_path: Path) -> None:
    options = FetchOptions(allow_hosts=("127.0.0.1",), retries=2, backoff_s=0.01)
    result = fetch(media_server.url("flaky/clip.mp4"), tmp_path, options)
    data = clip_path.read_bytes()
    assert result.path.read_bytes() == data
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    first, second = media_server.requests("/flaky/clip.mp4")
    assert "range" not in first.headers
    assert second.headers["range"] == f"bytes={len(data) // 2}-"
    assert second.headers["if-range"]  # so a file changed in between restarts instead of being spliced
    assert files_in(tmp_path) == ["clip.mp4"]


def test_server_ignoring_range_restarts_from_zero(media_server: MediaServer, clip_path: Path, tmp_path: Path) -> None:
    options = FetchOptions(allow_hosts=("127.0.0.1",), retries=2, backoff_s=0.01)
    result = fetch(media_server.url("flaky/clip.mp4", ranges=0), tmp_path, options)
    assert result.path.read_bytes() == clip_path.read_bytes()
    assert result.size_bytes == clip_path.stat().st_size
    assert len(media_server.requests("/flaky/clip.mp4")) == 2


def test_dropped_connection_without_retries_fails_retryable(media_server: MediaServer, tmp_path: Path) -> None:
    with pytest.raises(FetchError) as info:
        fetch(media_server.url("flaky/clip.mp4"), tmp_path, LOCAL)
    assert info.value.retryable is True
    assert files_in(tmp_path) == []


# --- progress, names, cache ------------------------------------------------------------------------------------------


def test_progress_is_reported_and_throttled(media_server: MediaServer, clip_path: Path, tmp_path: Path) -> None:
    size = clip_path.stat().st_size
    seen: list[tuple[int, int | None]] = []
    fetch(media_server.url("slow/clip.mp4", bps=size * 2), tmp_path, LOCAL,
          progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (size, size)
    assert all(total == size for _, total in seen)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert 2 <= len(seen) <= 12  # ~0.5 s of download at most ~10 calls a second, plus start and end


def test_progress_exception_aborts_and_cleans_up(media_server: MediaServer, tmp_path: Path) -> None:
    class Cancelled(Exception):
        pass

    def cancel(done: int, total: int | None) -> None:
        if done:
            raise Cancelled

    with pytest.raises(Cancelled):
        fetch(media_server.url("slow/clip.mp4", bps=100_000), tmp_path, LOCAL, progress=cancel)
    assert files_in(tmp_path) == []


def test_name_from_content_disposition(media_server: MediaServer, tmp_path: Path) -> None:
    result = fetch(media_server.url("attachment/clip.mp4", name="口播 第1条.mp4"), tmp_path, LOCAL)
    assert result.path.name == "口播 第1条.mp4"


def test_given_name_wins_and_gets_a_media_extension(media_server: MediaServer, tmp_path: Path) -> None:
    assert fetch(media_server.url("clip.mp4"), tmp_path, LOCAL, name="口播 第2条").path.name == "口播 第2条.mp4"
    assert fetch(media_server.url("clip.mp4"), tmp_path, LOCAL, name="forum.php").path.name == "forum.mp4"
    assert fetch(media_server.url("clip.mp4"), tmp_path, LOCAL, name="../../x.mp4").path == tmp_path / "x.mp4"


def test_cache_hit_needs_no_network(clip_path: Path, tmp_path: Path) -> None:
    options = FetchOptions(allow_hosts=("127.0.0.1",), retries=0, cache_dir=str(tmp_path / "cache"))
    with MediaServer(clip_path.parent) as server:
        url = server.url("clip.mp4", sig="abc123")
        first = fetch(url, tmp_path / "one", options)
    # the server is gone: only the cache can answer now
    second = fetch(url, tmp_path / "two", options)
    assert first.from_cache is False
    assert second.from_cache is True
    assert second.path == tmp_path / "two" / "clip.mp4"
    assert second.path.read_bytes() == clip_path.read_bytes()
    assert (second.sha256, second.size_bytes, second.format) == (first.sha256, first.size_bytes, "mp4")
    entry = tmp_path / "cache" / hashlib.sha256(url.encode()).hexdigest()
    assert sorted(p.name for p in entry.iterdir()) == ["clip.mp4", "meta.json"]
    assert "abc123" not in (entry / "meta.json").read_text()  # signed query strings are not kept on disk


def test_corrupt_cache_entry_is_dropped_and_downloaded_again(media_server: MediaServer, tmp_path: Path) -> None:
    options = FetchOptions(allow_hosts=("127.0.0.1",), retries=0, cache_dir=str(tmp_path / "cache"))
    url = media_server.url("clip.mp4")
    first = fetch(url, tmp_path / "one", options)
    cached = tmp_path / "cache" / hashlib.sha256(url.encode()).hexdigest() / "clip.mp4"
    cached.unlink()
    cached.write_bytes(b"\x00" * first.size_bytes)  # same size, wrong bytes
    again = fetch(url, tmp_path / "two", options)
    assert again.from_cache is False
    assert again.sha256 == first.sha256
    assert len(media_server.requests("/clip.mp4")) == 2


# --- pure helpers ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system32\\a.mp4", "a.mp4"),
        ("口播 第1条.mp4", "口播 第1条.mp4"),
        ('a<b>c:d"e|f?g*h.mp4', "a_b_c_d_e_f_g_h.mp4"),
        ("CON.mp4", "_CON.mp4"),
        ("lpt1", "_lpt1"),
        ("  spaced   out  .mp4 . ", "spaced out.mp4"),
        ("evil\u202egpj.mp4", "evilgpj.mp4"),
        ("tab\there\nnewline.mov", "tab here newline.mov"),
        (".hidden.mp4", "hidden.mp4"),
        (".mp4", "source.mp4"),
        ("..", "source"),
        ("", "source"),
        ("   ", "source"),
        ("a/b/", "source"),
    ],
)
def test_safe_filename(name: str, expected: str) -> None:
    assert safe_filename(name) == expected


def test_safe_filename_caps_length_and_keeps_the_extension() -> None:
    for long_name in ("x" * 500 + ".mp4", "口" * 200 + ".mp4"):
        result = safe_filename(long_name)
        assert result.endswith(".mp4")
        assert len(result.encode("utf-8")) <= 160
        result.encode("utf-8").decode("utf-8")  # never cut inside a character


def test_safe_filename_fallback() -> None:
    assert safe_filename("", "video.mp4") == "video.mp4"
    assert safe_filename(".mp4", "clip") == "clip.mp4"
    assert safe_filename("/", "../bad") == "bad"


def test_display_url_drops_secrets() -> None:
    shown = display_url("https://user:pw@cdn.example.com:8443/a/b.mp4?sig=SECRET#frag")
    assert shown == "https://cdn.example.com:8443/a/b.mp4"
    assert display_url("http://[::1]:8080/x?t=1") == "http://[::1]:8080/x"


def _mpegts(packets: int = 3) -> bytes:
    return b"".join(b"\x47" + bytes(187) for _ in range(packets))


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (MP4_HEAD + bytes(64), "mp4"),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  " + bytes(64), "mov"),
        (b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00" + bytes(64), "m4a"),
        (b"\x00\x00\x00\x08wide\x00\x00\x01\x00mdat" + bytes(64), "mov"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\x82\x88matroska" + bytes(64), "matroska"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm" + bytes(64), "webm"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(64), "mp3"),
        (b"\xff\xfb\x90\x64" + bytes(64), "mp3"),
        (b"\xff\xf1\x50\x80\x02\x1f\xfc" + bytes(64), "aac"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(64), "wav"),
        (b"RIFF\x24\x00\x00\x00AVI LIST" + bytes(64), "avi"),
        (b"FLV\x01\x05\x00\x00\x00\x09" + bytes(64), "flv"),
        (_mpegts(), "mpegts"),
        (b"\x00\x00\x01\xba\x44" + bytes(64), "mpegps"),
        (b"OggS\x00\x02" + bytes(64), "ogg"),
        (b"fLaC\x00\x00\x00\x22" + bytes(64), "flac"),
        (b"#!AMR\n" + bytes(64), "amr"),
        (b"<!DOCTYPE html><html><head><title>x</title></head><body>login</body></html>", None),
        (b'{"error": "not found", "code": 404, "detail": "the object does not exist"}', None),
        (b"<?xml version='1.0'?><Error><Code>AccessDenied</Code></Error>" + bytes(8), None),
        (b"#EXTM3U\n#EXT-X-VERSION:3\n#EXTINF:10,\nseg0.ts\n" + bytes(32), None),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(64), None),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(64), None),
        (b"PK\x03\x04" + bytes(64), None),
        (bytes(1024), None),
        (b"G" + bytes(200), None),  # one MPEG-TS sync byte is not a transport stream
        (b"", None),
    ],
)
def test_sniff_media(head: bytes, expected: str | None) -> None:
    assert sniff_media(head) == expected


def test_sniff_media_knows_real_clips(clip_path: Path) -> None:
    assert sniff_media(clip_path.read_bytes()[:64]) == "mp4"
