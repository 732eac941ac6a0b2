"""The Discuz!-compatible test server behaves as DISCUZ.md says (so client tests against it mean something)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.discuz import Account, Board, DiscuzServer, ForumConfig

TAINTING = "您当前的访问请求当中含有非法字符，已经被系统拒绝"
ROOT = Path(__file__).resolve().parents[2]


def make(**overrides: object) -> DiscuzServer:
    config = ForumConfig(**{"floodctrl": 0, **overrides})  # type: ignore[arg-type]
    server = DiscuzServer(config)
    server.start()
    return server


@pytest.fixture
def forum() -> Iterator[DiscuzServer]:
    server = make()
    yield server
    server.close()


def formhash(session: requests.Session, url: str, path: str = "forum.php") -> str:
    match = re.search(r'name="formhash" value="(\w{8})"', session.get(url + path).text)
    assert match, "no formhash on the page"
    return match.group(1)


def login(session: requests.Session, url: str, username: str = "aicut", password: str = "botpass123",
          **extra: str) -> requests.Response:
    data = {"formhash": formhash(session, url, "member.php?mod=logging&action=login"), "username": username,
            "password": password, "questionid": "0", "answer": "", **extra}
    return session.post(url + "member.php?mod=logging&action=login&loginsubmit=yes&handlekey=login"
                              "&ajaxdata=json", data=data)


def reply(session: requests.Session, url: str, tid: int, message: str, fid: int = 2, **extra: str
          ) -> requests.Response:
    data = {"formhash": formhash(session, url, f"forum.php?mod=viewthread&tid={tid}"), "message": message,
            "subject": "  ", "usesig": "", "posttime": str(int(time.time())), **extra}
    return session.post(url + f"forum.php?mod=post&action=reply&fid={fid}&tid={tid}&extra=&replysubmit=yes"
                              "&infloat=yes&handlekey=fastpost&inajax=1", data=data)


def set_cookies(response: requests.Response) -> list[str]:
    return response.raw.headers.getlist("Set-Cookie")


# --- cookies, login ------------------------------------------------------------------------------------------------

def test_saltkey_on_first_request_and_httponly_auth(forum: DiscuzServer) -> None:
    first = requests.get(forum.url + "forum.php")
    salt = [c for c in set_cookies(first) if c.startswith(forum.cookie_name("saltkey") + "=")]
    assert salt and "HttpOnly" in salt[0]
    assert re.fullmatch(r"[A-Za-z]{4}_2132_", forum.config.cookiepre)
    with requests.Session() as s:
        answer = login(s, forum.url)
        assert answer.json()["message"].startswith("欢迎您回来，新手上路 aicut")
        assert answer.json()["data"]["uid"] == 2
        auth = [c for c in set_cookies(answer) if c.startswith(forum.cookie_name("auth") + "=")][0]
        assert "HttpOnly" in auth and "Max-Age" not in auth and "expires" not in auth.lower()
        assert 'class="vwmy"' in s.get(forum.url + "forum.php").text
    with requests.Session() as s:
        auth = [c for c in set_cookies(login(s, forum.url, cookietime="2592000"))
                if c.startswith(forum.cookie_name("auth") + "=")][0]
        assert "Max-Age=2592000" in auth


def test_formhash_is_per_saltkey_and_user(forum: DiscuzServer) -> None:
    with requests.Session() as a, requests.Session() as b:
        assert formhash(a, forum.url) != formhash(b, forum.url)
        guest = formhash(a, forum.url)
        assert formhash(a, forum.url) == guest
        login(a, forum.url)
        assert formhash(a, forum.url) != guest


def test_login_needs_no_formhash_but_a_wrong_one_is_tainting(forum: DiscuzServer) -> None:
    with requests.Session() as s:
        ok = s.post(forum.url + "member.php?mod=logging&action=login&loginsubmit=yes&inajax=1",
                    data={"username": "aicut", "password": "botpass123"})
        assert "succeedhandle_(" in ok.text and ok.headers["Content-Type"].startswith("text/xml")
    with requests.Session() as s:
        bad = s.post(forum.url + "member.php?mod=logging&action=login&loginsubmit=yes&inajax=1",
                     data={"formhash": "deadbeef", "username": "aicut", "password": "botpass123"})
        assert TAINTING in bad.text and "<title>System Error</title>" in bad.text
        assert forum.cookie_name("auth") not in s.cookies
        # no formhash: the body is scanned, a "(" in the password is rejected
        paren = s.post(forum.url + "member.php?mod=logging&action=login&loginsubmit=yes",
                       data={"username": "aicut", "password": "a(b"})
        assert TAINTING in paren.text
        assert TAINTING in s.get(forum.url + "forum.php?mod=forumdisplay&fid=2&x=<script>").text


def test_logout_needs_the_formhash(forum: DiscuzServer) -> None:
    with requests.Session() as s:
        login(s, forum.url)
        s.get(forum.url + "member.php?mod=logging&action=logout")
        assert 'class="vwmy"' in s.get(forum.url + "forum.php").text
        link = re.search(r'href="(member.php\?mod=logging&amp;action=logout&amp;formhash=\w+)"',
                         s.get(forum.url + "forum.php").text).group(1)  # type: ignore[union-attr]
        assert "您已退出站点" in s.get(forum.url + link.replace("&amp;", "&")).text
        assert 'class="vwmy"' not in s.get(forum.url + "forum.php").text


def test_login_invalid_counts_down_then_strikes(forum: DiscuzServer) -> None:
    with requests.Session() as s:
        texts = [login(s, forum.url, password="wrong").json()["message"] for _ in range(6)]
    assert texts[0] == "登录失败，您还可以尝试 4 次"
    assert texts[4] == "登录失败，您还可以尝试 0 次"
    assert texts[5] == "密码错误次数过多，请 15 分钟后重新登录"
    with requests.Session() as s:
        assert login(s, forum.url).json()["message"] == "密码错误次数过多，请 15 分钟后重新登录"
    assert forum.snapshot()["login_attempts"]["aicut"] == 7
    forum.reset_login_failures()
    with requests.Session() as s:
        assert login(s, forum.url).json()["data"]["uid"] == 2


def test_security_question_and_frozen_account() -> None:
    accounts = [Account("q", "qpass123", 5, 10, questionid=3, answer="上海"), Account("ice", "icepass1", 6, 10,
                                                                                   frozen=True)]
    with make(accounts=accounts) as server, requests.Session() as s:
        assert login(s, server.url, "q", "qpass123").json()["message"] == "请选择安全提问以及填写正确的答案"
        assert login(s, server.url, "q", "qpass123", questionid="3", answer="北京").json()["message"] == \
            "抱歉，安全提问答案填写错误"
        assert login(s, server.url, "q", "qpass123", questionid="3", answer="上海").json()["data"]["uid"] == 5
    with make(accounts=accounts) as server, requests.Session() as s:
        answer = login(s, server.url, "ice", "icepass1")
        assert "已经被冻结" in answer.json()["message"]
        page = s.get(server.url + "forum.php?mod=forumdisplay&fid=2", allow_redirects=False)
        assert page.status_code == 302
        assert page.headers["Location"] == "home.php?mod=spacecp&ac=profile&op=password"


# --- posting -------------------------------------------------------------------------------------------------------

def test_reply_formhash_and_referer_rules(forum: DiscuzServer) -> None:
    tid = forum.create_thread(username="alice", subject="s", message="a video please").tid
    with requests.Session() as s:
        login(s, forum.url)
        path = f"forum.php?mod=post&action=reply&fid=2&tid={tid}&extra=&replysubmit=yes&inajax=1&handlekey=fastpost"
        wrong = s.post(forum.url + path, data={"formhash": "00000000", "message": "long enough reply"})
        assert TAINTING in wrong.text
        missing = s.post(forum.url + path, data={"message": "long enough reply"})
        assert "errorhandle_fastpost('抱歉，您的请求来路不正确或表单验证串不符，无法提交'" in missing.text
        foreign = s.post(forum.url + path, data={"formhash": formhash(s, forum.url), "message": "long enough reply"},
                         headers={"Referer": "http://evil.example/forum.php"})
        assert "来路不正确" in foreign.text
        good = reply(s, forum.url, tid, "long enough reply",
                     ).text
        assert "succeedhandle_fastpost('forum.php?mod=viewthread&tid=1&pid=2&page=1&extra=#pid2'" in good
    with requests.Session() as guest:
        answer = reply(guest, forum.url, tid, "long enough reply")
        assert "抱歉，您尚未登录，没有权限在该版块回帖" in answer.text


def test_flood_control_tooshort_and_moderation() -> None:
    with make(floodctrl=15) as server, requests.Session() as s:
        tid = server.create_thread(username="alice", subject="s", message="first post body").tid
        login(s, server.url)
        assert "抱歉，您的帖子小于 10 个字符的限制" in reply(s, server.url, tid, "短").text
        assert "succeedhandle_" in reply(s, server.url, tid, "a reply long enough").text
        assert "抱歉，您两次发表间隔少于 15 秒，请稍候再发表" in reply(s, server.url, tid, "another reply text").text
        server.set_config(floodctrl=0, moderate_replies=True)
        mod = reply(s, server.url, tid, "moderated reply text", ajaxdata="json")
        assert mod.json()["message"] == "回复需要审核，请等待通过" and mod.json()["data"]["pid"] > 0
        page = s.get(server.url + f"forum.php?mod=viewthread&tid={tid}").text
        assert "moderated reply text" not in page and "a reply long enough" in page


def test_captcha_mode_fails_login_and_posts(forum: DiscuzServer) -> None:
    tid = forum.create_thread(username="alice", subject="s", message="a video please").tid
    with requests.Session() as s:
        login(s, forum.url)
        forum.set_config(captcha=True)
        assert "抱歉，验证码填写错误" in reply(s, forum.url, tid, "long enough reply").text
        fh = formhash(s, forum.url)
        mobile = s.post(forum.url + f"api/mobile/index.php?version=4&module=sendreply&fid=2&tid={tid}&replysubmit=yes",
                        data={"formhash": fh, "message": "long enough reply"}).json()
        assert mobile["Message"]["messageval"] == "submit_seccode_invalid"
        secure = s.get(forum.url + "api/mobile/index.php?version=4&module=secure&type=post").json()
        assert secure["Variables"]["sechash"] and "seccode" in secure["Variables"]["seccode"]
    with requests.Session() as s:
        assert login(s, forum.url).json()["message"] == "抱歉，验证码填写错误"
        assert 'name="seccodeverify"' in s.get(forum.url + "member.php?mod=logging&action=login").text


def test_new_thread_with_type_like_a_browser(forum: DiscuzServer) -> None:
    with requests.Session() as s:
        login(s, forum.url, "alice", "alicepass")
        editor = s.get(forum.url + "forum.php?mod=post&action=newthread&fid=2").text
        assert 'name="typeid"' in editor and '"hash":"' in editor
        fh = re.search(r'name="formhash" id="formhash" value="(\w+)"', editor).group(1)  # type: ignore[union-attr]
        answer = s.post(forum.url + "forum.php?mod=post&action=newthread&fid=2&extra=&topicsubmit=yes",
                        data={"formhash": fh, "subject": "我的口播", "message": "[url=http://v/x.mp4]x.mp4[/url]",
                              "typeid": "2", "wysiwyg": "0", "posttime": str(int(time.time()))})
        assert "非常感谢，您的主题已发布" in answer.text
    thread = forum.snapshot()["threads"][0]
    assert (thread["subject"], thread["typeid"], thread["author"]) == ("我的口播", 2, "alice")


# --- rendering -----------------------------------------------------------------------------------------------------

def test_bbcode_rendering_bare_url_stays_plain(forum: DiscuzServer) -> None:
    message = ("see https://bare.example/a.mp4 and [url]https://x.example/b.mp4[/url] [url=https://y.example/c.mp4]"
               "c.mp4[/url]\n[media=mp4,640,360]https://z.example/d.mp4[/media] <b>x</b>")
    tid = forum.create_thread(username="alice", subject="s", message=message).tid
    page = requests.get(forum.url + f"forum.php?mod=viewthread&tid={tid}").text
    body = re.search(r'<td class="t_f" id="postmessage_1">(.*?)</td>', page, re.S).group(1)  # type: ignore[union-attr]
    assert "see https://bare.example/a.mp4 and" in body and 'href="https://bare.example' not in body
    assert '<a href="https://x.example/b.mp4" target="_blank">https://x.example/b.mp4</a>' in body
    assert '<a href="https://y.example/c.mp4" target="_blank">c.mp4</a>' in body
    assert re.search(r'detectPlayer\("mp4_\w+", "mp4", "https://z.example/d.mp4", "640", "360"\)', body)
    assert "&lt;b&gt;x&lt;/b&gt;" in body and "<br />" in body
    assert '<a href="forum.php?mod=viewthread&tid=1" id="postnum1">楼主</a>' in page
    mobile = requests.get(forum.url + f"api/mobile/index.php?version=4&module=viewthread&tid={tid}").json()
    assert '<a class="media" href="https://z.example/d.mp4">https://z.example/d.mp4</a>' in \
        mobile["Variables"]["postlist"][0]["message"]


def test_forumdisplay_markup_order_and_pages() -> None:
    with make(tpp=2) as server:
        now = int(time.time())
        for i in range(3):
            server.create_thread(username="alice", subject=f"t{i}", message="body text here", typeid=1,
                                 dateline=now - 100 + i)
        server.create_thread(username="admin", subject="公告", message="sticky thread", displayorder=1)
        server.add_reply(1, username="admin", message="bump this thread")  # t0 now has the last post
        page = requests.get(server.url + "forum.php?mod=forumdisplay&fid=2").text
        ids = re.findall(r'<tbody id="(\w+?)"', page)
        assert ids == ["stickthread_4", "separatorline", "normalthread_1", "normalthread_3"]
        by_date = requests.get(server.url + "forum.php?mod=forumdisplay&fid=2&filter=author&orderby=dateline").text
        assert re.findall(r'<tbody id="normalthread_(\d+)"', by_date) == ["3", "2"]
        assert '<em>[<a href="forum.php?mod=forumdisplay&fid=2&amp;filter=typeid&amp;typeid=1">智能剪口播</a>]</em>' \
            in page
        assert re.search(r'<td class="by">\s*<cite><a href="home.php\?mod=space&amp;uid=3" c="1">alice</a></cite>\s*'
                         r'<em><span><span title="\d{4}-\d+-\d+">\d+&nbsp;分钟前</span></span></em>', page)
        page2 = requests.get(server.url + "forum.php?mod=forumdisplay&fid=2&page=2").text
        assert re.findall(r'<tbody id="(\w+?)"', page2) == ["normalthread_2"]
        assert requests.get(server.url + "forum-2-1.html").status_code == 404


def test_rewrite_urls_and_thread_pages() -> None:
    with make(rewrite=True, ppp=2) as server:
        tid = server.create_thread(username="alice", subject="s", message="first post body").tid
        for i in range(3):
            server.add_reply(tid, username="aicut" if i % 2 else "admin", message=f"reply number {i}")
        board = requests.get(server.url + "forum-2-1.html").text
        assert f'href="thread-{tid}-1-1.html"' in board and 'class="s xst"' in board
        p2 = requests.get(server.url + f"thread-{tid}-2-1.html").text
        assert re.findall(r'<div id="post_(\d+)">', p2) == ["3", "4"]
        assert ">地板</a>" in p2 and f'href="thread-{tid}-1-1.html"' in p2
        only = requests.get(server.url + f"forum.php?mod=viewthread&tid={tid}&authorid=1").text
        assert re.findall(r'<div id="post_(\d+)">', only) == ["2", "4"]
        missing = requests.get(server.url + "forum.php?mod=viewthread&tid=99")
        assert missing.status_code == 404 and "抱歉，指定的主题不存在或已被删除或正在被审核" in missing.text


def test_gbk_round_trip() -> None:
    with make(charset="gbk") as server, requests.Session() as s:
        tid = server.create_thread(username="alice", subject="中文标题", message="视频在这里请剪辑").tid
        login(s, server.url)
        page = s.get(server.url + f"forum.php?mod=viewthread&tid={tid}")
        assert page.headers["Content-Type"] == "text/html; charset=gbk"
        assert 'content="text/html; charset=gbk"' in page.content.decode("gbk")
        assert "中文标题" in page.content.decode("gbk")
        fh = re.search(rb'name="formhash" value="(\w+)"', page.content).group(1).decode()  # type: ignore[union-attr]
        body = "formhash=" + fh + "&message=" + requests.utils.quote("剪好了，请查收结果".encode("gbk"))
        answer = s.post(server.url + f"forum.php?mod=post&action=reply&fid=2&tid={tid}&extra=&replysubmit=yes"
                                     "&inajax=1&handlekey=fastpost", data=body,
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert answer.content.startswith(b'<?xml version="1.0" encoding="gbk"?>')
        assert "回复发布成功" in answer.content.decode("gbk")
        assert server.snapshot()["threads"][0]["posts"][1]["message"] == "剪好了，请查收结果"
        assert "剪好了，请查收结果" in s.get(server.url + f"forum.php?mod=viewthread&tid={tid}").content.decode("gbk")
        mobile = s.get(server.url + "api/mobile/index.php?version=4&module=viewthread&tid=1")
        assert mobile.json()["Charset"] == "GBK" and mobile.json()["Variables"]["thread"]["subject"] == "中文标题"


# --- mobile API ----------------------------------------------------------------------------------------------------

def test_mobile_envelope_and_modules(forum: DiscuzServer) -> None:
    forum.create_thread(username="alice", subject="old", message="old body text", typeid=1, dateline=1)
    forum.create_thread(username="alice", subject="new", message="[url=http://a/b.mp4]b.mp4[/url] text", typeid=1)
    forum.create_thread(username="admin", subject="top", message="sticky body text", displayorder=1)
    api = forum.url + "api/mobile/index.php?version=4&"
    check = requests.get(api + "module=check").json()
    assert check["truediscuzversion"] == "X3.5" and check["charset"] == "utf-8"
    assert requests.get(api + "module=nosuch").json() == {"error": "module_not_exists"}
    raw = requests.get(api + "module=forumdisplay&fid=2&filter=author&orderby=dateline&tpp=10")
    assert "\\/" in raw.text or "\\u" in raw.text
    env = raw.json()
    assert env["Version"] == "4" and env["Charset"] == "UTF-8" and "Message" not in env
    v = env["Variables"]
    assert v["member_uid"] == "0" and len(v["formhash"]) == 8 and "auth" not in v
    assert [t["subject"] for t in v["forum_threadlist"]] == ["top", "new", "old"]
    first = v["forum_threadlist"][1]
    assert all(isinstance(x, str) for x in first.values())
    assert first["dbdateline"].isdigit() and first["typeid"] == "1" and first["message"] == "b.mp4 text"
    assert v["threadtypes"]["types"] == {"1": "智能剪口播", "2": "音色克隆", "3": "制作AI声音"}
    news = requests.get(api + "module=newthreads&fids=2,36&start=0&limit=20").json()["Variables"]["data"]
    assert [t["subject"] for t in news] == ["top", "new"]  # 15-day window drops "old"
    guest = requests.post(api + "module=sendreply&fid=2&tid=2&replysubmit=yes", data={"message": "hello there!"})
    assert guest.json()["Message"]["messageval"] == "replyperm_login_nopermission//1"
    forum.set_config(mobile_api=False)
    assert requests.get(api + "module=check").json() == {"error": "mobile_is_closed"}


def test_mobile_login_v3_and_the_x35_v4_bug(forum: DiscuzServer) -> None:
    path = "api/mobile/index.php?version={}&module=login&loginsubmit=yes&loginfield=auto"
    with requests.Session() as s:
        bad = s.post(forum.url + path.format(3), data={"username": "aicut", "password": "nope"}).json()
        assert bad["Message"] == {"messageval": "login_invalid", "messagestr": "登录失败，您还可以尝试 4 次"}
        ok = s.post(forum.url + path.format(3), data={"username": "aicut", "password": "botpass123"}).json()
        assert ok["Message"]["messageval"] == "login_succeed" and ok["Variables"]["member_uid"] == "2"
        assert ok["Variables"]["auth"] == s.cookies[forum.cookie_name("auth")]
        fh = ok["Variables"]["formhash"]
        sent = s.post(forum.url + "api/mobile/index.php?version=4&module=newthread&fid=2&topicsubmit=yes",
                      data={"formhash": fh, "subject": "t", "message": "a mobile thread"}).json()
        assert sent["Message"]["messageval"] == "post_newthread_succeed" and sent["Variables"]["tid"] == "1"
        r = s.post(forum.url + "api/mobile/index.php?version=4&module=sendreply&fid=2&tid=1&replysubmit=yes",
                   data={"formhash": fh, "message": "a mobile reply"}).json()
        assert r["Message"]["messageval"] == "post_reply_succeed" and int(r["Variables"]["pid"]) > 0
    with requests.Session() as s:
        v4 = s.post(forum.url + path.format(4), data={"username": "aicut", "password": "botpass123"})
        assert "Discuz! System Error" in v4.text and forum.cookie_name("auth") in s.cookies
        assert 'class="vwmy"' in s.get(forum.url + "forum.php").text
    with make(version="X3.4") as old, requests.Session() as s:
        v4 = s.post(old.url + path.format(4), data={"username": "aicut", "password": "botpass123"}).json()
        assert v4["Message"]["messageval"] == "login_succeed"
        old.create_thread(username="alice", subject="t", message="no message field in X3.4")
        env = s.get(old.url + "api/mobile/index.php?version=4&module=forumdisplay&fid=2").json()
        assert env["Variables"]["member_username"] == "aicut"
        assert "message" not in env["Variables"]["forum_threadlist"][0]


# --- uploads -------------------------------------------------------------------------------------------------------

def test_swfupload_attachment_bound_by_reply(forum: DiscuzServer) -> None:
    tid = forum.create_thread(username="alice", subject="s", message="first post body").tid
    with requests.Session() as s:
        login(s, forum.url)
        editor = s.get(forum.url + f"forum.php?mod=post&action=reply&fid=2&tid={tid}").text
        uid, hash_ = re.search(r'"uid" : "(\d+)", "hash":"(\w+)"', editor).groups()  # type: ignore[union-attr]
        up = forum.url + "misc.php?mod=swfupload&operation=upload&simple=1&type=file&fid=2"
        assert s.post(up, data={"uid": uid, "hash": "bad"}, files={"Filedata": ("a.mp4", b"x")}).text == ""
        answer = s.post(up, data={"uid": uid, "hash": hash_}, files={"Filedata": ("结果.mp4", b"MP4DATA" * 10)})
        status, aid = re.fullmatch(r"DISCUZUPLOAD\|(\d+)\|(\d+)\|0\|0", answer.text).groups()  # type: ignore[union-attr]
        assert status == "0"
        reply(s, forum.url, tid, f"here it is [attach]{aid}[/attach]", **{f"attachnew[{aid}][description]": "cut"})
        page = s.get(forum.url + f"forum.php?mod=viewthread&tid={tid}").text
        href = re.search(r'<a href="(forum.php\?mod=attachment&amp;aid=[^"]+)" target="_blank">结果.mp4</a>', page)
        assert href
        data = s.get(forum.url + href.group(1).replace("&amp;", "&"))
        assert data.content == b"MP4DATA" * 10
        assert s.get(forum.url + f"forum.php?mod=attachment&aid={aid}", headers={"Range": "bytes=0-2"}).content == b"MP4"
        # an upload placed with [attach] but not bound with attachnew[...] shows nothing
        other = s.post(up, data={"uid": uid, "hash": hash_}, files={"Filedata": ("b.mp4", b"B" * 20)}).text
        aid2 = other.split("|")[2]
        reply(s, forum.url, tid, f"unbound one [attach]{aid2}[/attach]")
        assert "b.mp4" not in s.get(forum.url + f"forum.php?mod=viewthread&tid={tid}").text
    assert forum.snapshot()["attachments"][0]["description"] == "cut"


def test_cos_plugin_upload(forum: DiscuzServer) -> None:
    path = forum.url + "source/plugin/tencentcos/upload_api.php"
    files = {"Filedata": ("成片.mp4", b"\x00\x00\x00\x18ftypisom" + b"0" * 100, "video/mp4")}
    assert requests.post(path, data={"filetype": "video"}, files=files).json()["code"] != 0
    with requests.Session() as s:
        login(s, forum.url)
        answer = s.post(path, data={"filetype": "video"}, files=files).json()
        assert answer["code"] == 0 and answer["data"]["filename"] == "成片.mp4" and answer["data"]["aid"] > 0
        got = requests.get(answer["data"]["url"])
        assert got.content == files["Filedata"][1] and got.headers["Content-Type"] == "video/mp4"
        assert s.post(path, data={"filetype": "video"}).json()["code"] != 0


# --- test hooks and the process --------------------------------------------------------------------------------------

def test_http_test_hooks(forum: DiscuzServer) -> None:
    made = requests.post(forum.url + "_test/thread", json={"username": "alice", "subject": "via hook",
                                                             "message": "hook body", "typeid": 1}).json()
    assert made == {"tid": 1, "pid": 1, "fid": 2}
    assert requests.post(forum.url + "_test/config", json={"captcha": True}).json()["captcha"] is True
    assert requests.post(forum.url + "_test/config", json={"charset": "gbk"}).status_code == 400
    requests.post(forum.url + "_test/fail", json={"count": 2, "status": 502})
    assert [requests.get(forum.url + "forum.php").status_code for _ in range(3)] == [502, 502, 200]
    requests.post(forum.url + "_test/fail", json={"count": 1, "hang": 2})
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(forum.url + "forum.php", timeout=0.3)
    state = requests.get(forum.url + "_test/state").json()
    assert state["threads"][0]["subject"] == "via hook" and state["posts_per_user"] == {"alice": 1}


def test_runs_as_a_process_and_stops_on_sigterm(tmp_path: Path) -> None:
    config = tmp_path / "forum.json"
    config.write_text(json.dumps({"charset": "gbk", "boards": [{"fid": 7, "name": "b", "types": {"1": "x"}}]}))
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.discuz", "--port", "0", "--config", str(config)],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = re.fullmatch(r"listening on (http://127\.0\.0\.1:\d+/)\n", line).group(1)  # type: ignore[union-attr]
        page = requests.get(url + "forum.php?mod=forumdisplay&fid=7")
        assert page.headers["Content-Type"] == "text/html; charset=gbk"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        if proc.stdout:
            proc.stdout.close()
