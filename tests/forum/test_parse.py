"""The pure forum parser against hand-written pages shaped like Discuz! X3.4/X3.5's templates (tests/data/forum)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from aicut.forum import post_text
from aicut.forum.models import MediaLink, Post, ThreadPage, ThreadRow
from aicut.forum.parse import (
    board_rows_html, board_rows_json, detect_charset, formhash, is_video_category, parse_date, request_from_thread,
    thread_html, thread_json, tid_from_url,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "forum"
BASE = "https://bbs.example.com/"
COS = "https://aicut-1300000000.cos.ap-guangzhou.myqcloud.com/uploads/2026/11/30"
SIGN = ("sign=q-sign-algorithm%3Dsha1%26q-ak%3DAKIDexample%26q-sign-time%3D1764460800%3B1764547200"
        "%26q-signature%3D0f1e2d3c")


def ts(text: str, offset_h: float = 8) -> int:
    """Unix seconds of a wall-clock time in UTC+offset."""
    fmt = {10: "%Y-%m-%d", 16: "%Y-%m-%d %H:%M", 19: "%Y-%m-%d %H:%M:%S"}[len(text)]
    return int(datetime.strptime(text, fmt).replace(tzinfo=timezone(timedelta(hours=offset_h))).timestamp())


def read(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def load(name: str) -> dict[str, Any]:
    return json.loads(read(name))


# ---------------------------------------------------------------- links

@pytest.mark.parametrize("url, tid", [
    ("forum.php?mod=viewthread&tid=1201&extra=page%3D1", 1201),
    ("forum.php?mod=viewthread&amp;tid=1201&amp;extra=page%3D1", 1201),
    ("https://bbs.example.com/forum.php?mod=viewthread&tid=77&page=2#pid9", 77),
    ("thread-1201-1-1.html", 1201),
    ("https://bbs.example.com/thread-88-3-2.html", 88),
    ("/bbs/thread-5-1-1.html", 5),
    ("forum.php?mod=redirect&goto=findpost&ptid=1201&pid=1302", 1201),
    ("forum.php?mod=redirect&amp;goto=findpost&amp;pid=1302&amp;ptid=1201", 1201),
    ("forum.php?mod=redirect&tid=1201&goto=lastpost#lastpost", 1201),
    ("archiver/?tid-42.html", 42),
    ("forum.php?mod=forumdisplay&fid=2", None),
    ("forum-2-1.html", None),
    ("", None),
])
def test_tid_from_url(url: str, tid: int | None) -> None:
    assert tid_from_url(url) == tid


# ---------------------------------------------------------------- board listings

BOARD_ROWS = [
    ThreadRow(11, 2, "【必读】发帖格式：视频链接 + 封面标题上/中/下", "admin", 1, ts("2026-03-05"), True, ""),
    ThreadRow(57, 2, "剪辑排队说明 & 常见问题", "admin", 1, ts("2026-10-01 08:00"), True, "公告"),
    ThreadRow(1201, 2, "私域流量第3期 求剪", "小王老师", 305, ts("2026-11-30"), False, "口播剪辑"),
    ThreadRow(1200, 2, "克隆我的声音", "声音玩家", 306, ts("2026-11-30"), False, "音色克隆"),
    ThreadRow(1190, 2, "发错版了的口播", "新人", 307, ts("2026-11-28"), False, ""),    # moved: the target tid
    ThreadRow(1150, 2, "没分类的老帖 <测试>", "匿名", 0, ts("2026-11-20 21:30"), False, ""),
]


@pytest.mark.parametrize("name", ["board_utf8.html", "board_rewrite.html"])
def test_board_page_rows(name: str) -> None:
    assert board_rows_html(read(name), 2) == BOARD_ROWS


def test_gbk_board_page_is_detected_and_decoded() -> None:
    body = (DATA / "board_gbk.html").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    assert detect_charset(body) == "gbk"
    assert detect_charset(body, "text/html") == "gbk"
    assert board_rows_html(body.decode(detect_charset(body)), 2) == BOARD_ROWS


def test_board_dates_follow_the_site_timezone() -> None:
    rows = board_rows_html(read("board_utf8.html"), 2, tz_offset_h=0)
    assert rows[5].dateline == ts("2026-11-20 21:30", 0) == BOARD_ROWS[5].dateline + 8 * 3600


def test_board_page_without_rows() -> None:
    assert board_rows_html("<html><body><p class='emp'>本版块或指定的范围内尚无主题</p></body></html>", 2) == []
    assert board_rows_html("", 2) == []


X35_ROWS = [
    ThreadRow(11, 2, "【必读】发帖格式：视频链接 + 封面标题上/中/下", "admin", 1, 1772676000, True, "",
              "发帖请贴视频链接，一行一个。封面标题上：…"),
    ThreadRow(57, 2, "剪辑排队说明 & 常见问题", "admin", 1, 1790812800, True, "公告", "排队规则"),
    ThreadRow(1201, 2, "私域流量第3期 求剪", "小王老师", 305, 1796011200, False, "口播剪辑",
              "原片两段，旁白一段： 第一段 口播原片.mp4 " + COS + "/a1b2c3.mp4 封面标题上：三分钟看懂私域"),
    ThreadRow(1200, 2, "克隆我的声音", "声音玩家", 306, 1796007600, False, "音色克隆", "用这段声音克隆"),
    ThreadRow(1150, 2, "没分类的老帖 <测试>", "", 0, 1795181400, False, "", ""),  # author and message dropped
]


@pytest.mark.parametrize("name, fid, expected", [
    ("forumdisplay_x35.json", None, X35_ROWS),
    ("forumdisplay_x35.json", 2, X35_ROWS),
    ("forumdisplay_x34.json", None, [ThreadRow(r.tid, r.fid, r.subject, r.author, r.author_id, r.dateline, r.sticky,
                                               r.category, "") for r in X35_ROWS]),
    ("newthreads.json", None, [
        ThreadRow(1202, 2, "第一次发帖 \\ 口播", "剪辑新手", 310, 1796011260, False, "", "[media] 没有链接"),
        ThreadRow(1201, 2, "私域流量第3期 求剪", "小王老师", 305, 1796011200, False, "", "原片两段"),
        ThreadRow(880, 36, "别的版块的帖子", "路人", 400, 1796011000, False, "", "灌水"),
    ]),
])
def test_mobile_listing_rows(name: str, fid: int | None, expected: list[ThreadRow]) -> None:
    assert board_rows_json(load(name), fid) == expected


def test_mobile_listing_takes_the_variables_alone_and_survives_junk() -> None:
    doc = load("forumdisplay_x35.json")
    assert board_rows_json(doc["Variables"]) == X35_ROWS
    assert board_rows_json({"Variables": {"forum_threadlist": [{"tid": "x"}, "junk", {"tid": "9"}]}}, 3) == [
        ThreadRow(9, 3, "")]
    assert board_rows_json({}) == []
    assert board_rows_json({"Message": {"messageval": "forum_nonexistence"}}) == []


# ---------------------------------------------------------------- thread pages

def _posts(page: ThreadPage) -> list[tuple[int, bool, str, int, int]]:
    return [(p.pid, p.first, p.author, p.author_id, p.dateline) for p in page.posts]


@pytest.mark.parametrize("name, tid, fid, subject, category, author, posts", [
    ("thread_request.html", 1201, 2, "私域流量第3期 求剪", "口播剪辑", ("小王老师", 305),
     [(1301, True, "小王老师", 305, ts("2026-11-30 12:00:05")), (1302, False, "剪辑机器人", 12, ts("2026-11-30 12:01:10"))]),
    ("thread_media.html", 1203, 2, "第五课 口误有点多", "口播剪辑", ("李老师", 320),
     [(1311, True, "李老师", 320, ts("2026-11-30 13:00:00"))]),
    ("thread_attachment.html", 1204, 2, "采访视频（附件）", "口播剪辑", ("记者小赵", 321),
     [(1321, True, "记者小赵", 321, ts("2026-11-30 13:41:00"))]),
    ("thread_bare_url.html", 1205, 2, "链接直接贴的", "", ("老周", 330),
     [(1331, True, "老周", 330, ts("2026-11-30 14:00:00"))]),
    ("thread_no_video.html", 1206, 2, "怎么发视频？", "口播剪辑", ("萌新", 340),
     [(1341, True, "萌新", 340, ts("2026-11-30 14:10:00")), (1342, False, "admin", 1, ts("2026-11-30 14:12:00"))]),
    ("thread_voice_clone.html", 1200, 2, "克隆我的声音", "音色克隆", ("声音玩家", 306),
     [(1290, True, "声音玩家", 306, ts("2026-11-30 11:00:00")), (1291, False, "剪辑机器人", 12, ts("2026-11-30 11:00:30"))]),
])
def test_thread_pages(name: str, tid: int, fid: int, subject: str, category: str, author: tuple[str, int],
                      posts: list[tuple[int, bool, str, int, int]]) -> None:
    page = thread_html(read(name))
    assert (page.tid, page.fid, page.subject, page.category) == (tid, fid, subject, category)
    assert (page.author, page.author_id) == author
    assert _posts(page) == posts
    assert page.first_post is not None and page.first_post.pid == posts[0][0]


def test_thread_page_message_is_the_post_cell() -> None:
    page = thread_html(read("thread_request.html"))
    first, reply = page.posts
    assert first.message_html.lstrip().startswith('<i class="pstatus">')
    assert "postmessage_" not in first.message_html and "</td>" not in first.message_html
    assert reply.message_html.strip() == "已收到，排队中：第 2 位。<br>"


def test_thread_page_message_carries_the_attachment_list() -> None:
    first = thread_html(read("thread_attachment.html")).posts[0]
    assert 'class="pattl"' in first.message_html and "采访收音.WAV" in first.message_html


def test_thread_page_ids_without_scripts_come_from_links() -> None:
    html = read("thread_request.html").replace("var fid = parseInt('2'), tid = parseInt('1201');", "")
    page = thread_html(html)
    assert (page.tid, page.fid) == (1201, 2)
    assert thread_html(html, tid=99).tid == 99


def test_reply_page_has_no_first_post_flag() -> None:
    """Page 2 of a thread: floors link to findpost, nothing says 楼主 — no post is the opening one."""
    html = read("thread_no_video.html").replace("楼主", "<em>11</em><sup>#</sup>").replace(
        'href="forum.php?mod=viewthread&amp;tid=1206" id="postnum1341"',
        'href="forum.php?mod=redirect&amp;goto=findpost&amp;ptid=1206&amp;pid=1341" id="postnum1341"')
    assert [p.first for p in thread_html(html).posts] == [False, False]


def test_printable_thread_page() -> None:
    html = ('<!DOCTYPE html><html><head><meta charset="utf-8" /><title>私域流量第3期 求剪 - 懒人剪辑论坛 - Powered by '
            'Discuz!</title></head><body><h1>懒人剪辑论坛</h1><b>标题: </b>私域流量第3期 求剪 <b><a href="###">[打印本页]'
            '</a></b><br />\n<hr noshade size="2" width="100%" color="#808080">\n<b>作者: </b>小王老师&nbsp; &nbsp; '
            '<b>时间: </b>2026-11-30 12:00<br />\n原片：<a href="https://v.example.com/a.mp4" target="_blank">原片.mp4'
            '</a><br />\n封面标题上：三分钟\n<hr noshade size="2" width="100%" color="#808080">\n<b>作者: </b>剪辑机器人'
            '&nbsp; &nbsp; <b>时间: </b>2026-11-30 12:01<br />\n收到\n<br /><br /></body></html>')
    page = thread_html(html, tid=1201)
    assert (page.tid, page.subject, page.author) == (1201, "私域流量第3期 求剪", "小王老师")
    assert _posts(page) == [(0, True, "小王老师", 0, ts("2026-11-30 12:00")), (0, False, "剪辑机器人", 0,
                                                                            ts("2026-11-30 12:01"))]
    request = request_from_thread(page, BASE)
    assert request.sources == (MediaLink("https://v.example.com/a.mp4", "原片.mp4"),)
    assert (request.cover_top, request.core_text) == ("三分钟", "原片：")


def test_mobile_viewthread() -> None:
    page = thread_json(load("viewthread_request.json"))
    assert (page.tid, page.fid, page.subject, page.category, page.author, page.author_id) == (
        1207, 2, "直播复盘 & 切片", "口播剪辑", "带货主播", 350)
    assert [(p.pid, p.first, p.author, p.author_id, p.dateline) for p in page.posts] == [
        (1351, True, "带货主播", 350, 1796022000), (1352, False, "剪辑机器人", 12, 1796022060)]
    # the non-image attachment is appended as a link, the image one is not
    assert 'href="data/attachment/forum/202611/30/150002bupai.mp4">补拍.mp4</a>' in page.posts[0].message_html
    assert "封面.jpg" not in page.posts[0].message_html


# ---------------------------------------------------------------- requests

REQUESTS = {
    "thread_request.html": dict(
        sources=(
            MediaLink(f"{COS}/a1b2c3.mp4?{SIGN}&x-cos-traffic-limit=819200", "第一段 口播原片.mp4", "video"),
            MediaLink(f"{COS}/%E7%AC%AC%E4%BA%8C%E6%AE%B5%E8%A1%A5%E5%BD%95.MOV", "第二段补录.MOV", "video"),
            MediaLink(f"{COS}/voice/d4e5f6.m4a", "旁白 录音.m4a", "audio"),
        ),
        covers=("三分钟看懂私域", "私域流量", "第 3 期"),
        core="原片两段，旁白一段：\n（重复贴了一次）\n今天聊聊私域流量怎么做，重点是 复购和社群运营。\n关键词：私域、复购、社群"),
    "thread_media.html": dict(
        sources=(
            MediaLink("https://video.example.com/lesson/%E7%AC%AC5%E8%AF%BE.mp4?token=abc&t=1", "第5课.mp4", "video"),
            MediaLink("https://video.example.com/lesson/bgm-5.mp3", "bgm-5.mp3", "audio"),
        ),
        covers=("", "第五课", ""),
        core="老师讲课视频，帮忙剪掉口误"),
    "thread_attachment.html": dict(
        sources=(
            MediaLink(BASE + "forum.php?mod=attachment&aid=MzAzfDZmMGRiYmMyfDE3OTYwMTQ4MDB8MzIxfDEyMDQ%3D", "采访原片.mp4"),
            MediaLink(BASE + "forum.php?mod=attachment&aid=MzA0fDY1ZmFkNTEwfDE3OTYwMTQ4MDB8MzIxfDEyMDQ%3D", "采访收音.WAV",
                      "audio"),
        ),
        covers=("街头采访", "", ""),
        core="视频和收音都传附件了，封面用图里的样子"),
    "thread_bare_url.html": dict(
        sources=(
            MediaLink("https://pan.example.com/d/%E5%8F%A3%E6%92%AD0312.mp4", "口播0312.mp4"),
            MediaLink("https://cdn.example.com/v/backup.mov?e=1764547200&token=Zx9", "backup.mov"),
        ),
        covers=("老周说车", "", ""),
        core="视频地址，麻烦了\n（备用：）\n说明页 不用管"),
    "thread_no_video.html": dict(sources=(), covers=("", "", ""), core="请问视频要怎么传？我点上传没反应"),
    "thread_voice_clone.html": dict(
        sources=(MediaLink(f"{COS}/voice/%E6%88%91%E7%9A%84%E5%A3%B0%E9%9F%B3.mp3", "我的声音.mp3", "audio"),),
        covers=("", "", ""),
        core="用这段声音克隆"),
    "viewthread_request.json": dict(
        sources=(
            MediaLink(f"{COS}/e7f8a9.mp4?sign=q-sign-algorithm%3Dsha1&x-cos-traffic-limit=819200", "直播切片.mp4"),
            MediaLink("https://video.example.com/raw/clip-02.webm", "clip-02.webm"),
            MediaLink(BASE + "data/attachment/forum/202611/30/150002bupai.mp4", "补拍.mp4"),
        ),
        covers=("直播复盘", "", "11 月 30 日"),
        core="原片一段，补拍的传了附件：\n重点保留讲产品的部分"),
}


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_requests(name: str) -> None:
    page = thread_json(load(name)) if name.endswith(".json") else thread_html(read(name))
    request = request_from_thread(page, BASE)
    expected = REQUESTS[name]
    assert request.sources == expected["sources"]
    assert (request.cover_top, request.cover_middle, request.cover_bottom) == expected["covers"]
    assert request.core_text == expected["core"]
    assert (request.tid, request.fid, request.subject, request.category, request.author, request.author_id) == (
        page.tid, page.fid, page.subject, page.category, page.author, page.author_id)


def test_request_from_an_empty_thread() -> None:
    request = request_from_thread(ThreadPage(tid=5, fid=2, subject="空"), BASE)
    assert (request.tid, request.sources, request.core_text) == (5, (), "")


def test_request_reads_the_first_post_not_the_replies() -> None:
    posts = (Post(2, "b", 2, '<a href="https://x.example/reply.mp4">reply.mp4</a>'),
             Post(1, "a", 1, '<a href="https://x.example/own.mp4">own.mp4</a>', first=True))
    request = request_from_thread(ThreadPage(tid=5, fid=2, subject="s", posts=posts), BASE)
    assert [s.name for s in request.sources] == ["own.mp4"]


@pytest.mark.parametrize("category, expected", [
    ("", True), ("口播剪辑", True), ("视频剪辑", True), ("短视频", True), ("音色克隆", False), ("制作AI声音", False),
])
def test_video_categories(category: str, expected: bool) -> None:
    assert is_video_category(category, ("口播", "剪辑", "视频")) is expected


def test_video_categories_without_keywords_accept_only_uncategorised() -> None:
    assert is_video_category("", ()) and not is_video_category("口播", ())


# ---------------------------------------------------------------- names and sources, one at a time

def _sources(html: str, base: str = BASE) -> list[tuple[str, str, str]]:
    return [(s.url, s.name, s.kind) for s in post_text.extract_sources(html, base)]


@pytest.mark.parametrize("html, expected", [
    # link text that names a file wins, whitespace trimmed
    ('<a href="https://x.example/a/b.mp4" target="_blank">  我的 原片.mp4 </a>',
     [("https://x.example/a/b.mp4", "我的 原片.mp4", "video")]),
    # text that is not a file name: the URL's last part, percent-decoded UTF-8
    ('<a href="https://x.example/%E5%8F%A3%E6%92%AD.mp4">点这里</a>',
     [("https://x.example/%E5%8F%A3%E6%92%AD.mp4", "口播.mp4", "video")]),
    # GBK percent-encoding from an old site
    ('<a href="https://x.example/%BF%DA%B2%A5.mp4">下载</a>',
     [("https://x.example/%BF%DA%B2%A5.mp4", "口播.mp4", "video")]),
    # query kept in the URL, not in the name; &amp; decoded
    ('<a href="https://b.cos.ap-shanghai.myqcloud.com/x/y.MP4?sign=a%3Db&amp;t=1">'
     'https://b.cos.ap-shanghai.myqcloud.com/x/y.MP4?sign=a%3Db&amp;t=1</a>',
     [("https://b.cos.ap-shanghai.myqcloud.com/x/y.MP4?sign=a%3Db&t=1", "y.MP4", "video")]),
    # double-escaped &amp;amp; in the source still yields a usable URL
    ('<a href="https://x.example/v.mp4?a=1&amp;amp;b=2">v</a>',
     [("https://x.example/v.mp4?a=1&b=2", "v.mp4", "video")]),
    # Discuz's shortened text of a long bare [url] is not a name
    ('<a href="https://x.example/0123456789/0123456789/0123456789/long-name.mkv">'
     'https://x.example/0123456789/01 ... 789/long-name.mkv</a>',
     [("https://x.example/0123456789/0123456789/0123456789/long-name.mkv", "long-name.mkv", "video")]),
    # relative links become absolute
    ('<a href="data/attachment/forum/a.mov">a.mov</a>', [(BASE + "data/attachment/forum/a.mov", "a.mov", "video")]),
    # duplicates keep the first; non-media links are ignored
    ('<a href="https://x.example/a.mp4">一.mp4</a> <a href="https://x.example/a.mp4">二.mp4</a> '
     '<a href="https://x.example/page.html">page.html</a> <a href="javascript:;">a.mp4</a>',
     [("https://x.example/a.mp4", "一.mp4", "video")]),
    # audio kinds; a name with an unknown extension falls back to the URL path's
    ('<a href="https://x.example/v.amr">语音</a><a href="https://x.example/t.opus">t.opus</a>'
     '<a href="https://x.example/m.ts">m.bin</a>',
     [("https://x.example/v.amr", "v.amr", "audio"), ("https://x.example/t.opus", "t.opus", "audio"),
      ("https://x.example/m.ts", "m.bin", "video")]),
    # HLS playlists are video
    ('https://live.example.com/hls/index.m3u8', [("https://live.example.com/hls/index.m3u8", "index.m3u8", "video")]),
    # attachments: the text decides; no extension → not a source; same aid twice → once
    ('<a href="forum.php?mod=attachment&amp;aid=QQ%3D%3D">片子.mp4</a>'
     '<a href="forum.php?mod=attachment&amp;aid=QQ%3D%3D&amp;nothumb=yes">片子.mp4</a>'
     '<a href="forum.php?mod=attachment&amp;aid=Qg%3D%3D">片子二</a>'
     '<a href="forum.php?mod=attachment&amp;aid=Qw%3D%3D">图.jpg</a>',
     [(BASE + "forum.php?mod=attachment&aid=QQ%3D%3D", "片子.mp4", "video")]),
    # images are sources only when they are video files
    ('<img file="data/attachment/forum/x.jpg" zoomfile="data/attachment/forum/x.jpg" src="static/image/common/none.gif" />'
     '<img src="https://x.example/clip.mp4" />', [("https://x.example/clip.mp4", "clip.mp4", "video")]),
    # HTML5 players
    ('<video src="https://x.example/p.webm"></video><audio controls><source src="https://x.example/s.flac"></audio>',
     [("https://x.example/p.webm", "p.webm", "video"), ("https://x.example/s.flac", "s.flac", "audio")]),
    # mobile [media]
    ('<a class="media" href="https://x.example/m.mp4">https://x.example/m.mp4</a>',
     [("https://x.example/m.mp4", "m.mp4", "video")]),
    # bare URLs stop at CJK punctuation, quotes, '<' and whitespace, and lose trailing ASCII punctuation
    ('看 https://x.example/a.mp4。再看“https://x.example/b.mov”和 https://x.example/c.avi, '
     '以及(https://x.example/d.flv)<br>'
     'https://x.example/e.wmv<br>https://x.example/f.3gp！',
     [("https://x.example/a.mp4", "a.mp4", "video"), ("https://x.example/b.mov", "b.mov", "video"),
      ("https://x.example/c.avi", "c.avi", "video"), ("https://x.example/d.flv", "d.flv", "video"),
      ("https://x.example/e.wmv", "e.wmv", "video"), ("https://x.example/f.3gp", "f.3gp", "video")]),
    # post order across kinds of sources
    ('https://x.example/1.mp4 <a href="https://x.example/2.mp4">2.mp4</a> https://x.example/3.mp3',
     [("https://x.example/1.mp4", "1.mp4", "video"), ("https://x.example/2.mp4", "2.mp4", "video"),
      ("https://x.example/3.mp3", "3.mp3", "audio")]),
    ("", []),
    ("纯文字，没有链接", []),
])
def test_sources(html: str, expected: list[tuple[str, str, str]]) -> None:
    assert _sources(html) == expected


def test_media_player_script_alone_is_a_source() -> None:
    html = ('<script type="text/javascript">detectPlayer("mp4_Ab1", "mp4", "https://x.example/p/q.mp4?a=1&amp;b=2", '
            '"800", "600");</script>')
    assert _sources(html) == [("https://x.example/p/q.mp4?a=1&b=2", "q.mp4", "video")]


@pytest.mark.parametrize("part, name", [
    ("%E5%8F%A3%E6%92%AD.mp4", "口播.mp4"),          # UTF-8
    ("%BF%DA%B2%A5.mp4", "口播.mp4"),                # GBK
    ("plain%20name.mov", "plain name.mov"),
    ("%FF%FE.mp4", "\ufffd\ufffd.mp4"),              # neither: replaced, never raises
])
def test_percent_decoded_names(part: str, name: str) -> None:
    assert post_text.decode_percent(part) == name


# ---------------------------------------------------------------- cover lines and core text

@pytest.mark.parametrize("text, covers", [
    ("封面标题上：甲\n封面标题中：乙\n封面标题下：丙", ("甲", "乙", "丙")),
    ("封面标题上:甲\n封面标题中 ： 乙\n封面标题下 :丙 ", ("甲", "乙", "丙")),
    ("封面上标题：甲\n封面中标题：乙\n封面下标题：丙", ("甲", "乙", "丙")),
    ("封面上：甲\n封面下：丙", ("甲", "", "丙")),
    ("封面标题上：甲 封面标题下：丙", ("甲", "", "丙")),          # two on one line
    ("封面标题上：\n封面标题上：后来补上", ("后来补上", "", "")),    # empty values don't count
    ("封面标题上：先\n封面标题上：后", ("先", "", "")),              # the first wins
    ("封面标题上：　全角空格　", ("全角空格", "", "")),
    ("封面：没有位置\n标题上：没有封面", ("", "", "")),
    ("", ("", "", "")),
])
def test_cover_lines(text: str, covers: tuple[str, str, str]) -> None:
    found = post_text.cover_lines(text)
    assert (found.top, found.middle, found.bottom) == covers


@pytest.mark.parametrize("text, core", [
    ("懒人智能剪辑\n正文", "正文"),
    ("#懒人智能剪辑#\n#口播 #带货\n【口播】【懒人智能剪辑】\n正文 #保留的话题 在句中", "正文 #保留的话题 在句中"),
    ("开头 懒人智能剪辑 结尾", "开头 结尾"),
    ("封面标题上：甲\n正文一\n\n\n正文二", "正文一\n正文二"),
    ("前言 封面标题上：甲", "前言"),
    ("  多个   空格\t和\u00a0不换行  ", "多个 空格 和 不换行"),
    ("见 https://x.example/a.mp4 ，谢谢", "见，谢谢"),
    ("如果无法播放，请点击此处在新窗口打开\n正文", "正文"),
    ("(52.31 MB, 下载次数: 3)\n2026-11-30 13:40 上传\n点击文件名下载附件\n正文", "正文"),
    ("本帖最后由 小王 于 2026-11-30 12:05 编辑\n正文", "正文"),
    ("", ""),
])
def test_core_text(text: str, core: str) -> None:
    assert post_text.core_text(text) == core


def test_visible_text_keeps_lines_and_drops_machinery() -> None:
    html = ('第一行<br />\r\n<div align="center">第二行</div><p>第三行</p><a href="https://x.example/a.mp4">a.mp4</a>尾巴'
            '<script>var x = "脚本";</script><ignore_js_op><span id="attach_1"><a href="#">附件.mp4</a>'
            '<em class="xg1">(1 MB, 下载次数: 0)</em></span></ignore_js_op><i class="pstatus">本帖最后由 x 于 y 编辑</i>'
            '<font color="red">红字</font>&nbsp;&amp;')
    lines = [line.strip() for line in post_text.visible_text(html).splitlines() if line.strip()]
    assert lines == ["第一行", "第二行", "第三行", "尾巴红字\u00a0&"]


# ---------------------------------------------------------------- charset and formhash

@pytest.mark.parametrize("body, content_type, charset", [
    (b"<html>", "text/html; charset=GBK", "gbk"),
    (b"<html>", "text/html; charset=gb2312", "gbk"),
    (b"<html>", 'text/html; charset="utf-8"', "utf-8"),
    (b'<meta charset="gb18030" />', None, "gbk"),
    (b'<meta http-equiv="Content-Type" content="text/html; charset=gbk" />', None, "gbk"),
    (b'<meta http-equiv="Content-Type" content="text/html; charset=utf-8" />', "text/html", "utf-8"),
    (b"<script>var STYLEID = '1', charset = 'gbk', discuz_uid = '0';</script>", None, "gbk"),
    (b'<?xml version="1.0" encoding="gbk"?><root><![CDATA[ok]]></root>', "text/xml", "gbk"),
    (b'<?xml version="1.0" encoding="utf-8"?><root/>', None, "utf-8"),
    (b'{"Version":"4","Charset":"UTF-8","Variables":{}}', "application/json", "utf-8"),
    ("<p>没有声明</p>".encode("gbk"), None, "gbk"),
    ("<p>没有声明</p>".encode("utf-8"), None, "utf-8"),
    (b"", None, "utf-8"),
    (b'<meta charset="big5" />', "text/html; charset=latin-1", "utf-8"),
])
def test_detect_charset(body: bytes, content_type: str | None, charset: str) -> None:
    assert detect_charset(body, content_type) == charset


@pytest.mark.parametrize("text, value", [
    ('<input type="hidden" name="formhash" value="5f2e4ad4" />', "5f2e4ad4"),
    ("<input value='abcd1234' name='formhash' type='hidden'>", "abcd1234"),
    ('<a href="member.php?mod=logging&amp;action=logout&amp;formhash=9c0d1e2f">退出</a>', "9c0d1e2f"),
    ('{"Variables":{"formhash":"77aa88bb","member_uid":"12"}}', "77aa88bb"),
    ("<p>no form here</p>", None),
    ("", None),
])
def test_formhash(text: str, value: str | None) -> None:
    assert formhash(text) == value


def test_formhash_of_sample_pages() -> None:
    assert formhash(read("board_utf8.html")) == "5f2e4ad4"
    assert formhash(read("thread_request.html")) == "5f2e4ad4"
    assert formhash(read("viewthread_request.json")) == "9c0d1e2f"


@pytest.mark.parametrize("text, offset, expected", [
    ("2026-11-30", 8, ts("2026-11-30")),
    ("发表于 2026-1-5 9:07", 8, ts("2026-01-05 09:07")),
    ("2026-11-30 12:00:05", 0, ts("2026-11-30 12:00:05", 0)),
    ("2026-11-30 12:00", 5.5, ts("2026-11-30 12:00", 5.5)),
    ("3&nbsp;秒前", 8, 0),
    ("2026-13-40", 8, 0),
])
def test_parse_date(text: str, offset: float, expected: int) -> None:
    assert parse_date(text, offset) == expected


def test_thread_category_as_plain_text_and_sort_links_ignored() -> None:
    html = read("thread_request.html").replace(
        '<a href="forum.php?mod=forumdisplay&amp;fid=2&amp;filter=typeid&amp;typeid=1">[口播剪辑]</a>',
        '[口播剪辑]\n<a href="forum.php?mod=forumdisplay&amp;fid=2&amp;filter=sortid&amp;sortid=3">[剪辑需求]</a>')
    assert thread_html(html).category == "口播剪辑"
    html = read("thread_request.html").replace(
        '<a href="forum.php?mod=forumdisplay&amp;fid=2&amp;filter=typeid&amp;typeid=1">[口播剪辑]</a>',
        '<a href="forum.php?mod=forumdisplay&amp;fid=2&amp;filter=sortid&amp;sortid=3">[剪辑需求]</a>')
    assert thread_html(html).category == ""


def test_hidden_and_commented_content_is_not_the_request() -> None:
    html = ('正文<!-- https://x.example/old.mp4 --><font class="jammer">a7 Kz</font>'
            '<span style="display:none">q1 W</span>'
            '<br /><div class="locked">游客，如果您要查看本帖隐藏内容请回复</div>')
    assert _sources(html) == []
    assert post_text.core_text(post_text.visible_text(html)) == "正文"
