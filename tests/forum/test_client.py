"""ForumClient against the in-process Discuz test server: login, saved sessions, expiry, captcha and wrong-password
backoff, listing, reading, replying, uploads, GBK, outages, and no secret in any log line or error."""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from aicut.errors import ForumConfigError, ForumError, ForumFloodError, ForumLoginError, ForumRefusedError
from aicut.forum.client import ForumClient
from aicut.forum.models import ForumSettings
from tests.support.discuz import DiscuzServer

BOT, BOT_PASSWORD = "aicut", "botpass123"
MODES = ["mobile", "desktop"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def server(make_server: Any) -> DiscuzServer:
    return make_server()


def client_for(server: DiscuzServer, tmp_path: Path, *, api: str = "auto", password: str = BOT_PASSWORD,
               clock: FakeClock | None = None, cookie_file: Path | None = None, **settings: Any) -> ForumClient:
    settings.setdefault("timeout_s", 5.0)
    forum = ForumSettings(base_url=server.url, api=api, **settings)  # type: ignore[arg-type]
    return ForumClient(forum, BOT, password, cookie_file=cookie_file or tmp_path / "cookies.json",
                       clock=clock or FakeClock())


def attempts(server: DiscuzServer, user: str = BOT) -> int:
    return int(server.snapshot()["login_attempts"].get(user, 0))


def mode_server(make_server: Any, mode: str, **config: Any) -> DiscuzServer:
    return make_server(mobile_api=(mode == "mobile"), **config)


# --- login -----------------------------------------------------------------------------------------------------------


def test_check_logs_in_through_the_mobile_api(server: DiscuzServer, tmp_path: Path) -> None:
    client = client_for(server, tmp_path)
    info = client.check()
    assert info.logged_in and info.uid == 2 and info.username == BOT
    assert info.mobile_api and info.version == "X3.5" and info.charset == "utf-8"
    assert client.uid == 2 and client.charset == "utf-8"
    assert attempts(server) == 1
    cookie_file = tmp_path / "cookies.json"
    assert stat.S_IMODE(os.stat(cookie_file).st_mode) == 0o600
    saved = json.loads(cookie_file.read_text())
    assert any(c["name"] == server.cookie_name("auth") for c in saved["cookies"])
    client.close()


def test_desktop_login_when_the_mobile_plugin_is_off(make_server: Any, tmp_path: Path) -> None:
    server = make_server(mobile_api=False)
    client = client_for(server, tmp_path)
    info = client.check()
    assert info.logged_in and info.uid == 2 and not info.mobile_api
    assert attempts(server) == 1
    client.close()


@pytest.mark.parametrize("mode", MODES)
def test_saved_cookies_spare_a_second_login(make_server: Any, tmp_path: Path, mode: str) -> None:
    server = mode_server(make_server, mode)
    server.create_thread(username="alice", subject="第一帖", message="hello world, a first post")
    with client_for(server, tmp_path) as first:
        first.list_threads(2)
    second = client_for(server, tmp_path)
    assert [r.subject for r in second.list_threads(2)] == ["第一帖"]
    info = second.check()
    assert info.uid == 2 and "logged in with saved cookies" in info.notes
    assert attempts(server) == 1 and second.login_attempts == 0
    second.close()


@pytest.mark.parametrize("mode", MODES)
def test_an_expired_session_is_renewed_once(make_server: Any, tmp_path: Path, mode: str) -> None:
    server = mode_server(make_server, mode)
    tid = server.create_thread(username="alice", subject="s", message="hello world, a first post").tid
    client = client_for(server, tmp_path)
    client.login()
    server.config.authkey = "rotated-authkey"      # every auth cookie the forum issued is void now
    assert client.read_thread(tid).subject == "s"
    assert attempts(server) == 2
    result = client.reply(2, tid, "a reply after the session came back")
    assert result.pid > 0
    assert attempts(server) == 2
    client.close()


def test_a_missing_auth_cookie_means_logging_in_again(server: DiscuzServer, tmp_path: Path) -> None:
    client = client_for(server, tmp_path)
    client.login()
    auth = server.cookie_name("auth")
    for cookie in list(client._session.cookies):
        if cookie.name == auth:
            client._session.cookies.clear(cookie.domain, cookie.path, cookie.name)
    client.list_threads(2)
    assert attempts(server) == 2


@pytest.mark.parametrize("mode", MODES)
def test_captcha_is_a_config_error_and_login_backs_off(make_server: Any, tmp_path: Path, mode: str) -> None:
    server = mode_server(make_server, mode, captcha=True)
    clock = FakeClock()
    client = client_for(server, tmp_path, clock=clock, login_backoff_s=60, login_backoff_max_s=3600)
    with pytest.raises(ForumConfigError) as info:
        client.list_threads(2)
    assert "captcha" in info.value.message and "验证码" in info.value.message and not info.value.retryable
    for _ in range(200):                      # a poll loop every 15 s for 50 minutes
        clock.advance(15)
        with pytest.raises(ForumConfigError):
            client.list_threads(2)
    assert client.login_attempts == 1
    assert attempts(server) <= 1              # the captcha is seen before the password is sent
    clock.advance(3600)
    with pytest.raises(ForumConfigError):
        client.list_threads(2)
    assert client.login_attempts == 2


@pytest.mark.parametrize("mode", MODES)
def test_wrong_password_is_a_login_error_without_a_storm(make_server: Any, tmp_path: Path, mode: str) -> None:
    server = mode_server(make_server, mode)
    clock = FakeClock()
    client = client_for(server, tmp_path, password="wrong-password", clock=clock, login_backoff_s=60,
                        login_backoff_max_s=3600)
    with pytest.raises(ForumLoginError) as info:
        client.list_threads(2)
    assert type(info.value) is ForumLoginError and info.value.message_id == "login_invalid"
    assert "FORUM_PASSWORD" in info.value.message and not info.value.retryable
    for _ in range(240):                      # one hour of polling every 15 s
        clock.advance(15)
        with pytest.raises(ForumLoginError):
            client.list_threads(2)
    assert 1 < attempts(server) <= 7
    assert client.login_attempts == attempts(server)


@pytest.mark.parametrize("mode", MODES)
def test_a_frozen_account_is_a_config_error(make_server: Any, tmp_path: Path, mode: str) -> None:
    server = mode_server(make_server, mode)
    server.config.account(username=BOT).frozen = True  # type: ignore[union-attr]
    client = client_for(server, tmp_path)
    with pytest.raises(ForumConfigError) as info:
        client.login()
    assert info.value.message_id == "location_login_outofdate"
    assert "password" in info.value.message


# --- reading ---------------------------------------------------------------------------------------------------------


def _board(server: DiscuzServer) -> dict[str, int]:
    tids = {
        "sticky": server.create_thread(username="admin", subject="版规", message="请先阅读版规再发帖。",
                                       dateline=1_700_000_000, displayorder=1).tid,
        "old": server.create_thread(username="alice", subject="旧的请求", message="old request text here",
                                    typeid=1, dateline=1_700_000_100).tid,
        "new": server.create_thread(username="alice", subject="新的请求", message="new request text here",
                                    typeid=2, dateline=1_700_000_200).tid,
    }
    server.add_reply(tids["old"], username="admin", message="a late reply bumps the old thread")
    return tids


@pytest.mark.parametrize("mode,rewrite", [("mobile", False), ("desktop", False), ("desktop", True)])
def test_listing_newest_created_first_with_sticky_rows(make_server: Any, tmp_path: Path, mode: str,
                                                       rewrite: bool) -> None:
    server = mode_server(make_server, mode, rewrite=rewrite)
    tids = _board(server)
    client = client_for(server, tmp_path)
    rows = client.list_threads(2)
    assert [r.tid for r in rows] == [tids["sticky"], tids["new"], tids["old"]]
    assert [r.sticky for r in rows] == [True, False, False]
    assert rows[1].subject == "新的请求" and rows[1].author == "alice" and rows[1].author_id == 3
    assert rows[1].category == "音色克隆" and rows[2].category == "智能剪口播"
    if mode == "mobile":
        assert rows[1].dateline == 1_700_000_200
    expected = f"thread-{tids['new']}-1-1.html" if rewrite else f"forum.php?mod=viewthread&tid={tids['new']}"
    assert client.thread_url(tids["new"]) == server.url + expected


def test_listing_falls_back_when_the_mobile_plugin_is_switched_off(server: DiscuzServer, tmp_path: Path) -> None:
    tids = _board(server)
    client = client_for(server, tmp_path)
    assert client.check().mobile_api
    server.set_config(mobile_api=False)
    assert [r.tid for r in client.list_threads(2)][0] == tids["sticky"]
    assert not client.check().mobile_api
    assert attempts(server) == 1


@pytest.mark.parametrize("mode", MODES)
def test_read_thread_first_post_and_category(make_server: Any, tmp_path: Path, mode: str) -> None:
    server = mode_server(make_server, mode)
    url = "https://bucket.cos.ap-guangzhou.myqcloud.com/u/x.mp4"
    tid = server.create_thread(username="alice", subject="帮我剪一下", typeid=1,
                               message=f"[url={url}]原始视频.mp4[/url]\n封面标题上：你好").tid
    server.add_reply(tid, username="admin", message="收到，正在处理中……")
    page = client_for(server, tmp_path).read_thread(tid)
    assert page.tid == tid and page.fid == 2 and page.subject == "帮我剪一下" and page.category == "智能剪口播"
    first = page.first_post
    assert first is not None and first.first and first.author_id == 3
    assert url in first.message_html and "封面标题上" in first.message_html
    assert len(page.posts) == 2 and page.posts[1].author == "admin"


@pytest.mark.parametrize("mode", MODES)
def test_a_missing_thread_is_refused(make_server: Any, tmp_path: Path, mode: str) -> None:
    server = mode_server(make_server, mode)
    with pytest.raises(ForumRefusedError) as info:
        client_for(server, tmp_path).read_thread(999)
    assert info.value.message_id == "thread_nonexistence"


@pytest.mark.parametrize("mode", MODES)
def test_posts_by_one_author_over_two_pages(make_server: Any, tmp_path: Path, mode: str) -> None:
    server = mode_server(make_server, mode, ppp=5)
    tid = server.create_thread(username="alice", subject="s", message="the request itself").tid
    for n in range(8):
        server.add_reply(tid, username="aicut" if n % 2 else "admin", message=f"reply number {n} here")
    for n in range(4):
        server.add_reply(tid, username="aicut", message=f"more from the bot {n}")
    client = client_for(server, tmp_path)
    posts = client.posts_by(tid, 2)
    assert len(posts) == 8 and all(p.author_id == 2 for p in posts)
    assert len({p.pid for p in posts}) == 8
    assert len(client.posts_by(tid, 2, max_pages=1)) == 5


# --- writing ---------------------------------------------------------------------------------------------------------


def _posts(server: DiscuzServer, tid: int) -> list[dict[str, Any]]:
    return next(t for t in server.snapshot()["threads"] if t["tid"] == tid)["posts"]


@pytest.mark.parametrize("mode", MODES)
def test_reply_outcomes(make_server: Any, tmp_path: Path, mode: str) -> None:
    server = mode_server(make_server, mode, floodctrl=30)
    tid = server.create_thread(username="alice", subject="s", message="the request itself").tid
    client = client_for(server, tmp_path)
    message = "处理完成 [url=https://x.example/a.mp4]a_cut.mp4[/url] (2:01 → 1:30)"
    result = client.reply(2, tid, message)
    assert result.pid > 0 and not result.moderated
    assert _posts(server, tid)[-1]["message"] == message and _posts(server, tid)[-1]["pid"] == result.pid
    with pytest.raises(ForumFloodError) as flood:
        client.reply(2, tid, "a second reply straight away")
    assert flood.value.wait_s == 30 and flood.value.retryable and "30" in flood.value.message
    server.set_config(floodctrl=0)
    with pytest.raises(ForumRefusedError) as short:
        client.reply(2, tid, "短")
    assert short.value.message_id == "post_message_tooshort" and not short.value.retryable
    server.set_config(moderate_replies=True)
    held = client.reply(2, tid, "this one waits for a moderator")
    assert held.moderated and held.pid == 0
    assert _posts(server, tid)[-1]["invisible"] == -2
    assert attempts(server) == 1


@pytest.mark.parametrize("mode", MODES)
def test_a_stale_formhash_is_refetched_once(make_server: Any, tmp_path: Path, mode: str) -> None:
    server = mode_server(make_server, mode)
    tid = server.create_thread(username="alice", subject="s", message="the request itself").tid
    client = client_for(server, tmp_path)
    client.login()
    client._formhash = "deadbeef"
    assert client.reply(2, tid, "a reply with a refreshed form hash").pid > 0


@pytest.mark.parametrize("mode", MODES)
def test_attachment_upload_and_reply_binding(make_server: Any, tmp_path: Path, mode: str) -> None:
    server = mode_server(make_server, mode)
    tid = server.create_thread(username="alice", subject="s", message="the request itself").tid
    video = tmp_path / "cut.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(3000))
    client = client_for(server, tmp_path)
    aid = client.upload_attachment(2, video, "口播_cut.mp4")
    assert aid > 0
    result = client.reply(2, tid, f"成品在这里 [attach]{aid}[/attach]", attach_ids=[aid])
    attachment = next(a for a in server.snapshot()["attachments"] if a["aid"] == aid)
    assert attachment["pid"] == result.pid and attachment["size"] == video.stat().st_size
    assert attachment["filename"] == "口播_cut.mp4"
    got = client.download(f"forum.php?mod=attachment&aid={aid}", tmp_path / "dl" / "back.mp4")
    assert got.read_bytes() == video.read_bytes()


def test_plugin_upload_and_download(server: DiscuzServer, tmp_path: Path) -> None:
    video = tmp_path / "cut.mp4"
    data = os.urandom(200_000)
    video.write_bytes(data)
    client = client_for(server, tmp_path)
    answer = client.upload_plugin(video, "成品.mp4", endpoint="source/plugin/tencentcos/upload_api.php")
    assert answer["url"].startswith(server.url + "cos/") and answer["filename"] == "成品.mp4" and answer["aid"]
    got = client.download(answer["url"], tmp_path / "back" / "x.mp4")
    assert got.read_bytes() == data
    with pytest.raises(ForumRefusedError):
        client.download("https://elsewhere.example/x.mp4", tmp_path / "y.mp4")


@pytest.mark.parametrize("mode", MODES)
def test_gbk_site_round_trip(make_server: Any, tmp_path: Path, mode: str) -> None:
    server = mode_server(make_server, mode, charset="gbk")
    tid = server.create_thread(username="alice", subject="请帮我剪辑口播", typeid=1, message="视频在这里，谢谢！").tid
    client = client_for(server, tmp_path)
    assert client.check().charset == "gbk"
    assert client.list_threads(2)[0].subject == "请帮我剪辑口播"
    page = client.read_thread(tid)
    assert page.subject == "请帮我剪辑口播" and "视频在这里" in page.first_post.message_html  # type: ignore[union-attr]
    message = "剪辑完成：去掉了停顿和口头禅「嗯、啊」，时长 2分01秒 → 1分30秒。"
    result = client.reply(2, tid, message)
    assert _posts(server, tid)[-1]["message"] == message
    assert client.read_thread(tid).posts[-1].pid == result.pid
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x" * 100)
    aid = client.upload_attachment(2, video, "成品视频.mp4")
    assert next(a for a in server.snapshot()["attachments"] if a["aid"] == aid)["filename"] == "成品视频.mp4"


def test_outages_are_retryable_forum_errors(server: DiscuzServer, tmp_path: Path) -> None:
    client = client_for(server, tmp_path, timeout_s=0.5)
    client.login()
    server.fail_next(1, status=502)
    with pytest.raises(ForumError) as bad_gateway:
        client.list_threads(2)
    assert bad_gateway.value.retryable and bad_gateway.value.message_id == "http_502"
    server.fail_next(1, status=503, hang=1.0)
    with pytest.raises(ForumError) as timeout:
        client.list_threads(2)
    assert timeout.value.retryable and timeout.value.message_id == "timeout"
    assert client.list_threads(2) == []
    assert attempts(server) == 1


def test_an_outage_during_login_does_not_back_off(server: DiscuzServer, tmp_path: Path) -> None:
    clock = FakeClock()
    client = client_for(server, tmp_path, clock=clock)
    client._probe()
    server.fail_next(1, status=502)
    with pytest.raises(ForumError) as info:
        client.login()
    assert info.value.retryable
    client.login()
    assert client.uid == 2


def test_concurrent_callers_share_one_session(server: DiscuzServer, tmp_path: Path) -> None:
    _board(server)
    client = client_for(server, tmp_path)
    results: list[int] = []
    errors: list[BaseException] = []

    def poll() -> None:
        try:
            for _ in range(5):
                results.append(len(client.list_threads(2)))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=poll) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and results == [3] * 20
    assert attempts(server) == 1


# --- secrets ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_no_secret_in_logs_errors_or_repr(make_server: Any, tmp_path: Path, mode: str,
                                          caplog: pytest.LogCaptureFixture) -> None:
    server = mode_server(make_server, mode)
    tid = server.create_thread(username="alice", subject="s", message="the request itself").tid
    caplog.set_level(logging.DEBUG)
    client = client_for(server, tmp_path)
    client.check()
    client.reply(2, tid, "a reply long enough to pass")
    errors: list[str] = []
    with pytest.raises(ForumRefusedError) as short:
        client.reply(2, tid, "短")
    errors.append(str(short.value) + repr(short.value))
    wrong = client_for(server, tmp_path, password="Sekr1t-wrong-pw", cookie_file=tmp_path / "other.json")
    with pytest.raises(ForumLoginError) as login:
        wrong.login()
    errors.append(str(login.value) + repr(login.value))
    secrets = {BOT_PASSWORD, "Sekr1t-wrong-pw", client._formhash}
    secrets |= {c.value for c in client._session.cookies if len(c.value) >= 6}
    secrets.discard("")
    assert any(c.name == server.cookie_name("auth") for c in client._session.cookies)
    text = caplog.text + "\n".join(errors) + repr(client) + repr(wrong)
    leaked = [s for s in secrets if s in text]
    assert not leaked
    assert "Set-Cookie" not in caplog.text
