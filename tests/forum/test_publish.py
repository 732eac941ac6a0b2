"""Publishing results back to the forum: reply texts (pure), the task marker, padding, the publishers, and
``reply_once``'s one-reply-per-task rule against a fake client (integration tests against the in-process Discuz
server are at the end of the file)."""

from __future__ import annotations

import hashlib
import html
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import requests

from aicut.errors import ConfigError, ForumError, ForumFloodError, ForumRefusedError
from aicut.forum.models import ForumSettings, Post, PublishSettings, ReplyResult
from aicut.forum.publish import (
    AttachmentPublisher, DirectoryPublisher, PluginPublisher, PublishedFile, ReplyOutcome, find_marker,
    make_publisher, marker, pad_message, publish_problem, publish_result, reply_once,
)
from aicut.forum import protocol
from aicut.forum.client import ForumClient
from aicut.forum.publishers import plugin_answer, public_names, select_outputs, task_folder, transient_plugin_error
from aicut.forum.replies import (
    DEFAULT_TEMPLATES, REASON_LABELS, bbcode_url, clock, compose_problem_reply, compose_result_reply, machine_label,
    marker_id, message_bytes, public_text, with_marker,
)
from aicut.models import Output
from tests.support.discuz import DiscuzServer

TASK = "forum-bbs.example.com-123"
SETTINGS = PublishSettings(flood_wait_s=16.0, flood_retries=3)


def report(**over: Any) -> dict[str, Any]:
    """A report.json as ``aicut.pipeline.task.cut_source`` writes it (the fields the reply reads)."""
    by = {r: {"count": 0, "seconds": 0.0} for r in REASON_LABELS}
    by.update({"pause": {"count": 12, "seconds": 21.4}, "filler": {"count": 8, "seconds": 3.2}})
    base: dict[str, Any] = {
        "version": "0.1.0", "task": TASK, "attempt": 1, "machine": "gpu-01:8005",
        "source": {"name": "我的 口播.mp4", "url_host": "cos.example.com", "duration_s": 205.3},
        "plan": {"source_duration_s": 205.3, "output_duration_s": 168.2, "removed_s": 37.1, "by_reason": by,
                 "flagged": False, "flag_reason": ""},
        "flagged": False, "flag_reason": "", "output": {"duration_s": 168.24}, "encoder": "nvenc",
        "stage_seconds": {"fetch": 3.1, "transcribe": 40.2, "render": 25.0}, "seconds": 66.0,
    }
    base.update(over)
    return base


def render_html(message: str) -> str:
    """Roughly what Discuz makes of our BBCode on a thread page (escape, styles to <font>, line breaks)."""
    text = html.escape(message, quote=True)
    text = re.sub(r"\[size=(\d+)\](.*?)\[/size\]", r'<font size="\1">\2</font>', text, flags=re.S)
    text = re.sub(r"\[color=([#\w]+)\](.*?)\[/color\]", r'<font color="\1">\2</font>', text, flags=re.S)
    text = re.sub(r"\[url=([^\]]+)\](.+?)\[/url\]", r'<a href="\1" target="_blank">\2</a>', text)
    return text.replace("\n", "<br />\r\n")


# --- composition -----------------------------------------------------------------------------------------------------

def test_result_reply_lists_links_durations_reasons_time_machine_and_ends_with_the_marker() -> None:
    files = [PublishedFile("我的 口播_cut.mp4", "video", "https://cdn.example.com/t/我的 口播_cut.mp4", size=12_345_678),
             PublishedFile("我的 口播.srt", "subtitles", "https://cdn.example.com/t/a.srt", size=2_345)]
    text = compose_result_reply(TASK, report(), files, thread_subject="今天的口播")
    lines = text.splitlines()
    assert lines[-1] == marker(TASK)
    assert "[url=https://cdn.example.com/t/%E6%88%91%E7%9A%84%20%E5%8F%A3%E6%92%AD_cut.mp4]我的 口播_cut.mp4[/url]" \
        in text
    assert "（12.3 MB）" in text
    assert "03:25 → 02:48" in text and "缩短 00:37" in text
    assert "停顿（缩短）pauses：12 处，21.4 秒" in text and "语气词 fillers：8 处，3.2 秒" in text
    assert "口吃重复" not in text                  # reasons that removed nothing are left out
    assert "处理用时 1 分 8 秒 · 机器 gpu-01 · 编码 NVENC（GPU 硬件编码）" in text
    assert "8005" not in text
    assert "《今天的口播》" in lines[0]
    assert "注意" not in text


def test_every_reason_has_its_words() -> None:
    by = {r: {"count": i + 1, "seconds": i + 0.5} for i, r in enumerate(REASON_LABELS)}
    by["breath"] = {"count": 2, "seconds": 0.7}    # a reason a newer planner may add
    text = compose_result_reply(TASK, report(plan={**report()["plan"], "by_reason": by}), [])
    for label in ("停顿", "语气词", "口吃重复", "重说", "无字人声", "开头静音", "结尾静音"):
        assert label in text
    assert "breath：2 处，0.7 秒" in text
    assert text.index("停顿") < text.index("语气词") < text.index("口吃重复") < text.index("重说")


def test_nothing_cut_says_so() -> None:
    plan = {"source_duration_s": 10.0, "output_duration_s": 10.0, "by_reason": {}}
    text = compose_result_reply(TASK, report(plan=plan, output={"duration_s": 10.0}), [])
    assert "00:10 → 00:10" in text and "没有需要剪掉的内容" in text


def test_flagged_plan_gets_a_warning_line() -> None:
    text = compose_result_reply(TASK, report(flagged=True, flag_reason="would remove 62% > 40%: kept the whole "
                                                                          "video"), [])
    line = next(x for x in text.splitlines() if "注意" in x)
    assert "没有照单全剪" in line and "kept the whole video" in line and line.startswith("[color=")


def test_several_sources_get_a_section_each_and_attachments_show_as_attach_tags() -> None:
    first, second = report(), report(source={"name": "第二段.mp4", "duration_s": 61.0}, encoder="x264",
                                     stage_seconds={"fetch": 5.0, "transcribe": 80.0, "render": 50.0})
    files = [PublishedFile("a_cut.mp4", "video", aid=41, size=5_000_000), PublishedFile("b.srt", "subtitles", aid=42)]
    text = compose_result_reply(TASK, [first, second], files, machine="10.0.0.5:8005")
    assert "[b]我的 口播.mp4[/b]" in text and "[b]第二段.mp4[/b]" in text
    assert "a_cut.mp4 [attach]41[/attach]（5.0 MB）" in text and "[attach]42[/attach]" in text
    assert "处理用时 2 分 15 秒" in text                 # the running total of the last report
    assert "机器" not in text and "10.0.0.5" not in text   # a bare address is not shown to members
    assert "NVENC（GPU 硬件编码） / x264（CPU 编码）" in text or "x264（CPU 编码） / NVENC" in text


def test_hostile_names_cannot_break_out_of_the_link() -> None:
    name = "我的 [b]视频[/b]] [url=http://evil/]x[/url].mp4"
    url = "https://cdn.example.com/t/我的 [视频]'\".mp4"
    text = compose_result_reply(TASK, report(), [PublishedFile(name, "video", url)],
                                thread_subject="[url=http://evil/]点我[/url]")
    link_line = next(x for x in text.splitlines() if x.startswith("视频"))
    match = re.fullmatch(r"视频 video：\[url=([^\]\[\"'\s]+)\]([^\[]*)\[/url\]", link_line)
    assert match, link_line
    assert unquote(match.group(1)) == url
    assert match.group(2) == "我的 ［b］视频［/b］］ ［url=http://evil/］x［/url］.mp4"
    assert "[url=http://evil/]" not in text
    assert bbcode_url("https://h/a%20b") == "https://h/a%20b"       # existing escapes are kept


def test_clock_and_machine_label() -> None:
    assert [clock(s) for s in (0, 59.4, 59.6, 605, 3725)] == ["00:00", "00:59", "01:00", "10:05", "1:02:05"]
    assert machine_label("gpu-01:8005") == "gpu-01"
    assert machine_label("[::1]:8005") == "" and machine_label("192.168.1.20") == ""
    assert machine_label("render box") == "render box"


@pytest.mark.parametrize("code", sorted(DEFAULT_TEMPLATES))
def test_problem_replies_are_polite_and_end_with_the_marker(code: str) -> None:
    text = compose_problem_reply(TASK, code, "")
    assert text.startswith("您好") and text.splitlines()[-1] == marker(TASK)
    assert "{" not in text and "}" not in text and "[url" not in text


def test_problem_reply_names_the_category_and_what_is_supported() -> None:
    text = compose_problem_reply(TASK, "UNSUPPORTED_CATEGORY", "音色克隆")
    assert "「音色克隆」" in text and "口播" in text
    text = compose_problem_reply(TASK, "UNSUPPORTED_CATEGORY", {"category": "制作AI声音", "supported": "口播"})
    assert "「制作AI声音」" in text and "支持的是：口播。" in text
    assert "（2 GB）" in compose_problem_reply(TASK, "TOO_LARGE", {"limit": "2 GB"})
    assert "（网站返回 404）" in compose_problem_reply(TASK, "HTTP_STATUS", {"status": 404})


def test_problem_reply_never_carries_internal_details() -> None:
    leaks = ["/var/lib/aicut/tasks/x/sources/0/a.mp4", "http://10.0.0.5:8005/x?sig=abc", "gpu-01.lan:8005",
             "C:\\aicut\\work\\a.mp4", "Traceback (most recent call last):\n  File \"x.py\"", "token=hunter2",
             "fe80::1"]
    for leak in leaks:
        text = compose_problem_reply(TASK, "SOMETHING_NEW", f"cannot open {leak}")
        assert leak not in text and "hunter2" not in text and "10.0.0.5" not in text, text
        assert text.splitlines()[-1] == marker(TASK)
    assert public_text("文件时长 0 秒") == "文件时长 0 秒"
    custom = compose_problem_reply(TASK, "NO_SOURCE", "", {"NO_SOURCE": "Hi, no link ({detail})."})
    assert custom.startswith("Hi, no link ().")


# --- marker ----------------------------------------------------------------------------------------------------------

def test_marker_round_trips_through_rendering_escaping_and_gbk() -> None:
    for task in (TASK, "api-20261130-120000-abc123", "a b/c:D&<x>", "x" * 200, ".."):
        reply = compose_problem_reply(task, "NO_SOURCE")
        page = render_html(reply)
        assert find_marker(reply, task) and find_marker(page, task)
        assert find_marker(html.escape(page), task)                             # escaped once more
        assert find_marker(page.encode("gbk").decode("gbk"), task)
        mangled = page.encode("gbk").decode("latin-1")                          # read with the wrong charset
        assert find_marker(mangled, task)
        assert find_marker(page.replace(" ", "&nbsp;"), task)
        assert re.fullmatch(r"[A-Za-z0-9._~-]+", marker_id(task))
    assert marker_id(TASK) == TASK


def test_marker_does_not_match_a_neighbouring_task() -> None:
    page = render_html(with_marker("done", "forum-bbs.example.com-123"))
    assert not find_marker(page, "forum-bbs.example.com-12")
    assert not find_marker(page, "forum-bbs.example.com-1234")
    assert not find_marker(page, "bbs.example.com-123")
    assert not find_marker("任务 forum-bbs.example.com-123", TASK)           # the word aicut must be there
    assert with_marker(with_marker("x", TASK), TASK).count("aicut") == 1


def test_padding_counts_bytes_in_the_site_charset() -> None:
    assert pad_message("好", 10, "utf-8") != "好"
    assert message_bytes(pad_message("好", 10, "utf-8"), "utf-8") >= 10
    assert pad_message("四个汉字", 10, "utf-8") == "四个汉字"             # 12 bytes in UTF-8
    assert pad_message("四个汉字", 10, "gbk") != "四个汉字"               # 8 bytes in GBK
    assert message_bytes(pad_message("四个汉字", 10, "gbk"), "gbk") >= 10
    assert pad_message("  ok  ", 10) != "  ok  "                          # Discuz trims before measuring
    long = pad_message("x", 200, "gbk")
    assert message_bytes(long, "gbk") >= 200
    marked = pad_message(with_marker("", TASK), 200, "utf-8")
    assert marked.splitlines()[-1] == marker(TASK) and "自动发送" in marked


# --- publishers ------------------------------------------------------------------------------------------------------

def outputs(tmp_path: Path, names: Sequence[tuple[str, str]] = (("talk_cut.mp4", "video"), ("talk.srt", "subtitles"),
                                                                 ("talk_cover.jpg", "cover"), ("edl.json", "edl"),
                                                                 ("report.json", "report"))) -> list[Output]:
    out = []
    src = tmp_path / "out" / "talk"
    src.mkdir(parents=True, exist_ok=True)
    for name, kind in names:
        path = src / hashlib.sha256(name.encode()).hexdigest()[:8]
        path.write_bytes(name.encode() * 10)
        out.append(Output(name=name, kind=kind, path=str(path), size_bytes=path.stat().st_size))
    return out


def test_select_outputs_keeps_the_settings_order() -> None:
    files = [Output("r", "report"), Output("s", "subtitles"), Output("v", "video"), Output("c", "cover")]
    assert [f.name for f in select_outputs(files, ("video", "subtitles", "cover"))] == ["v", "s", "c"]
    assert public_names([Output("edl.json", "edl", "/w/out/a/edl.json"),
                         Output("edl.json", "edl", "/w/out/b/edl.json")]) == ["a_edl.json", "b_edl.json"]


def test_directory_publisher_copies_once_and_links_percent_encoded(tmp_path: Path) -> None:
    files = outputs(tmp_path, (("我的 视频 [1]_cut.mp4", "video"), ("../../etc/passwd.mp4", "video"),
                               ("con.mp4", "video"), ("a:b?.mp4", "video")))
    root = tmp_path / "www"
    pub = DirectoryPublisher(root, "https://files.example.com/aicut/")
    got = pub.publish(TASK, files)
    assert [p.name for p in got] == ["我的 视频 [1]_cut.mp4", "passwd.mp4", "_con.mp4", "a_b_.mp4"]
    assert got[0].url == ("https://files.example.com/aicut/forum-bbs.example.com-123/"
                          "%E6%88%91%E7%9A%84%20%E8%A7%86%E9%A2%91%20%5B1%5D_cut.mp4")
    folder = root / TASK
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in got)     # no temp files left
    assert not (tmp_path / "etc").exists()
    for p, f in zip(got, files):
        assert (folder / p.name).read_bytes() == Path(f.path).read_bytes() and p.size == f.size_bytes
    stamp = {p.name: (folder / p.name).stat().st_mtime_ns for p in got}
    assert pub.publish(TASK, files) == got                                              # idempotent
    assert {p.name: (folder / p.name).stat().st_mtime_ns for p in got} == stamp
    Path(files[2].path).write_bytes(b"changed")                                          # a new render replaces
    again = pub.publish(TASK, files)
    assert (folder / "_con.mp4").read_bytes() == b"changed" and again[2].size == 7


def test_directory_publisher_sanitises_the_task_folder(tmp_path: Path) -> None:
    pub = DirectoryPublisher(tmp_path / "www", "http://h/x")
    for task in ("../../escape", "con", "a/b\\c"):
        folder = task_folder(task)
        assert "/" not in folder and "\\" not in folder and folder.upper() != "CON" and ".." not in folder
        pub.publish(task, outputs(tmp_path, (("v.mp4", "video"),)))
        assert (tmp_path / "www" / folder / "v.mp4").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "www"]


def test_make_publisher_checks_its_settings(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        make_publisher(PublishSettings(kind="directory", path="", base_url="http://h/"), None, 2)
    with pytest.raises(ConfigError):
        make_publisher(PublishSettings(kind="directory", path=str(tmp_path), base_url="files/"), None, 2)
    with pytest.raises(ConfigError):
        make_publisher(PublishSettings(kind="plugin"), None, 2)
    fake = FakeForum()
    assert isinstance(make_publisher(PublishSettings(kind="plugin"), fake, 2), PluginPublisher)
    assert isinstance(make_publisher(PublishSettings(kind="attachment"), fake, 2), AttachmentPublisher)
    assert isinstance(make_publisher(PublishSettings(kind="directory", path=str(tmp_path), base_url="http://h/"),
                                     None, 2), DirectoryPublisher)


def test_plugin_answers() -> None:
    assert plugin_answer({"code": 0, "data": {"url": "https://c/x.mp4", "aid": "9", "filename": "x.mp4"}}) == (
        "https://c/x.mp4", 9, "x.mp4")
    assert plugin_answer({"url": "https://c/x.mp4", "aid": "", "filename": "x.mp4"}) == ("https://c/x.mp4", 0, "x.mp4")
    with pytest.raises(ForumRefusedError, match="文件类型不允许"):
        plugin_answer({"code": 3, "msg": "文件类型不允许"}, "x.exe")
    with pytest.raises(ForumError, match="storage busy") as info:
        plugin_answer({"code": 500, "msg": "storage busy"})
    assert info.value.retryable and not isinstance(info.value, ForumRefusedError)
    with pytest.raises(ForumError, match="without a URL"):
        plugin_answer({"code": 0, "data": {"aid": 1}})


def test_client_plugin_refusals_stay_final_only_when_the_file_itself_is_refused() -> None:
    with pytest.raises(ForumRefusedError) as busy:
        protocol.plugin_answer('{"code": 500, "msg": "storage busy"}', site="bbs", name="x.mp4")
    transient = transient_plugin_error(busy.value)
    assert transient is not None and transient.retryable and "storage busy" in transient.message
    for body in ('{"code": 3, "msg": "文件类型不允许"}', '{"code": 2, "msg": "file too large"}', '{"code": 1}'):
        with pytest.raises(ForumRefusedError) as final:
            protocol.plugin_answer(body, site="bbs", name="x.mp4")
        assert transient_plugin_error(final.value) is None, body


def test_plugin_publisher_uploads_each_file_with_the_configured_fields(tmp_path: Path) -> None:
    fake = FakeForum()
    settings = PublishSettings(kind="plugin", endpoint="plugin.php?id=cos:upload", file_field="file",
                               form_fields=(("filetype", "video"), ("dir", "aicut")))
    got = PluginPublisher(fake, settings).publish(TASK, outputs(tmp_path)[:2])
    assert [(u["endpoint"], u["file_field"], tuple(u["form_fields"]), u["name"]) for u in fake.uploads] == [
        ("plugin.php?id=cos:upload", "file", (("filetype", "video"), ("dir", "aicut")), "talk_cut.mp4"),
        ("plugin.php?id=cos:upload", "file", (("filetype", "video"), ("dir", "aicut")), "talk.srt")]
    assert got[0] == PublishedFile("talk_cut.mp4", "video", "https://cos.example.com/1/talk_cut.mp4", 1,
                                   got[0].size)
    fake.plugin_relative = True
    got = PluginPublisher(fake, settings).publish(TASK, outputs(tmp_path)[:1])
    assert got[0].url == "https://bbs.example.com/data/cos/3/talk_cut.mp4"


def test_attachment_publisher_returns_aids(tmp_path: Path) -> None:
    fake = FakeForum()
    got = AttachmentPublisher(fake, 2).publish(TASK, outputs(tmp_path)[:2])
    assert [(p.aid, p.url, p.name) for p in got] == [(1, "", "talk_cut.mp4"), (2, "", "talk.srt")]
    assert [u["fid"] for u in fake.uploads] == [2, 2]


# --- reply_once ------------------------------------------------------------------------------------------------------

@dataclass
class FakeForum:
    """The ForumClient methods publishing uses, with a thread kept in memory and scripted answers."""

    uid: int = 7
    username: str = "aicut"
    charset: str = "utf-8"
    posts: list[Post] = field(default_factory=list)
    sent: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)
    uploads: list[dict[str, Any]] = field(default_factory=list)
    floods: int = 0                   # answer post_flood_ctrl this many times
    flood_lands: bool = False         # ... after the post landed anyway
    moderate: bool = False
    plugin_relative: bool = False
    reads: int = 0

    def read_thread(self, tid: int) -> Any:
        raise NotImplementedError

    def posts_by(self, tid: int, author_id: int, max_pages: int = 5) -> list[Post]:
        self.reads += 1
        return [p for p in self.posts if p.author_id == author_id]

    def reply(self, fid: int, tid: int, message: str, *, attach_ids: Sequence[int] = ()) -> ReplyResult:
        self.sent.append((message, tuple(attach_ids)))
        if self.floods > 0:
            self.floods -= 1
            if self.flood_lands:
                self._land(message)
            raise ForumFloodError("抱歉，您两次发表间隔少于 15 秒，请稍候再发表", wait_s=15.0)
        if self.moderate:
            return ReplyResult(pid=0, moderated=True, message="新回复需要审核，您的帖子将在通过审核以后才能显示")
        return ReplyResult(pid=self._land(message), message="非常感谢，回复发布成功")

    def _land(self, message: str) -> int:
        pid = 100 + len(self.posts)
        self.posts.append(Post(pid=pid, author=self.username, author_id=self.uid, message_html=render_html(message)))
        return pid

    def upload_attachment(self, fid: int, path: Path, name: str) -> int:
        self.uploads.append({"fid": fid, "path": path, "name": name})
        return len(self.uploads)

    def upload_plugin(self, path: Path, name: str, *, endpoint: str, file_field: str,
                      form_fields: Any) -> dict[str, str]:
        self.uploads.append({"path": path, "name": name, "endpoint": endpoint, "file_field": file_field,
                             "form_fields": form_fields})
        n = len(self.uploads)
        url = f"data/cos/{n}/{name}" if self.plugin_relative else f"https://cos.example.com/{n}/{name}"
        return {"url": url, "aid": str(n), "filename": name}

    def thread_url(self, tid: int) -> str:
        return f"https://bbs.example.com/forum.php?mod=viewthread&tid={tid}"


def test_reply_once_posts_with_the_marker_and_padding() -> None:
    fake, slept = FakeForum(charset="gbk"), []
    out = reply_once(fake, 2, 9, TASK, "好", settings=SETTINGS, sleep=slept.append)
    assert out == ReplyOutcome(pid=100, attempts=1, message="非常感谢，回复发布成功")
    (message, attach), = fake.sent
    assert message.splitlines()[-1] == marker(TASK) and message.startswith("好") and attach == ()
    assert slept == []


def test_reply_once_does_not_post_when_the_thread_already_has_the_reply() -> None:
    fake = FakeForum()
    fake.posts.append(Post(pid=55, author="member", author_id=3, message_html=render_html(marker("other"))))
    fake._land(compose_problem_reply(TASK, "NO_SOURCE"))
    out = reply_once(fake, 2, 9, TASK, "再来一次", settings=SETTINGS)
    assert out.already and out.pid == 101 and out.attempts == 0 and fake.sent == []


def test_a_marker_in_someone_elses_post_does_not_count() -> None:
    fake = FakeForum()
    fake.posts.append(Post(pid=55, author="member", author_id=3, message_html=render_html(marker(TASK))))
    assert reply_once(fake, 2, 9, TASK, "结果", settings=SETTINGS).pid == 101
    assert len(fake.sent) == 1


def test_flood_then_success_waits_and_posts_once() -> None:
    fake, slept = FakeForum(floods=2), []
    out = reply_once(fake, 2, 9, TASK, "结果在这里", settings=SETTINGS, sleep=slept.append)
    assert out.pid == 100 and out.attempts == 3 and not out.already
    assert slept == [16.0, 16.0]                                   # at least flood_wait_s
    assert len([p for p in fake.posts if find_marker(p.message_html, TASK)]) == 1
    assert fake.reads == 3                                          # the marker is looked for before every try


def test_flood_forever_gives_up_with_the_flood_error() -> None:
    fake, slept = FakeForum(floods=99), []
    with pytest.raises(ForumFloodError) as info:
        reply_once(fake, 2, 9, TASK, "结果在这里", settings=SETTINGS, sleep=slept.append)
    assert info.value.retryable
    assert len(fake.sent) == SETTINGS.flood_retries + 1 and len(slept) == SETTINGS.flood_retries
    assert fake.posts == []


def test_flood_answer_after_the_post_landed_is_not_posted_twice() -> None:
    fake, slept = FakeForum(floods=1, flood_lands=True), []
    out = reply_once(fake, 2, 9, TASK, "结果在这里", settings=SETTINGS, sleep=slept.append)
    assert out.already and out.pid == 100 and out.attempts == 1
    assert len(fake.sent) == 1 and len(fake.posts) == 1 and slept == [16.0]


def test_moderated_reply_is_reported() -> None:
    fake = FakeForum(moderate=True)
    out = reply_once(fake, 2, 9, TASK, "结果在这里", settings=SETTINGS)
    assert out.moderated and out.pid == 0 and out.attempts == 1 and "审核" in out.message


def test_publish_result_uploads_replies_and_a_retry_does_nothing(tmp_path: Path) -> None:
    fake = FakeForum()
    files = outputs(tmp_path)
    Path(files[-1].path).write_text(json.dumps(report(), ensure_ascii=False), encoding="utf-8")
    publisher = AttachmentPublisher(fake, 2)
    out = publish_result(fake, publisher, fid=2, tid=9, task_id=TASK, files=files, settings=SETTINGS,
                         machine="gpu-01")
    assert [p.kind for p in out.files] == ["video", "subtitles", "cover"]
    (message, attach), = fake.sent
    assert attach == (1, 2, 3) and "[attach]1[/attach]" in message and "03:25 → 02:48" in message
    again = publish_result(fake, publisher, fid=2, tid=9, task_id=TASK, files=files, settings=SETTINGS)
    assert again.reply.already and again.files == () and len(fake.uploads) == 3 and len(fake.sent) == 1


def test_publish_problem_replies_once() -> None:
    fake = FakeForum()
    out = publish_problem(fake, fid=2, tid=9, task_id=TASK, code="NO_SOURCE", detail="", settings=SETTINGS)
    assert out.pid == 100 and "没有找到视频" in fake.sent[0][0]
    assert publish_problem(fake, fid=2, tid=9, task_id=TASK, code="NO_SOURCE", settings=SETTINGS).already


def test_a_client_that_has_not_logged_in_yet_logs_in_before_looking_for_our_posts() -> None:
    fake = FakeForum(uid=0)
    fake.login = lambda: setattr(fake, "uid", 7)  # type: ignore[attr-defined]
    assert reply_once(fake, 2, 9, TASK, "结果在这里", settings=SETTINGS).pid == 100 and fake.uid == 7
    with pytest.raises(ForumError, match="which posts"):
        reply_once(FakeForum(uid=0), 2, 9, TASK, "结果在这里", settings=SETTINGS)


# --- against the in-process Discuz server, through the real client ---------------------------------------------------

BOT, BOT_PASSWORD = "aicut", "botpass123"


def bot(server: DiscuzServer, tmp_path: Path, api: str = "auto") -> ForumClient:
    settings = ForumSettings(base_url=server.url, api=api, timeout_s=5.0)  # type: ignore[arg-type]
    return ForumClient(settings, BOT, BOT_PASSWORD, cookie_file=tmp_path / f"cookies-{api}.json")


def request_thread(server: DiscuzServer) -> int:
    thread = server.create_thread(username="alice", fid=2, typeid=1, subject="我的口播 第一期",
                                  message="[url=https://cos.example.com/a/raw.mp4]原片 [1].mp4[/url]\n懒人智能剪辑")
    return thread.tid


def bot_posts(server: DiscuzServer, tid: int) -> list[dict[str, Any]]:
    """The bot's posts in ``tid`` as the server stored them (``/_test/state``)."""
    state = server.snapshot()
    thread = next(t for t in state["threads"] if t["tid"] == tid)
    return [p for p in thread["posts"] if p["author"] == BOT]


def cut_outputs(tmp_path: Path) -> list[Output]:
    files = outputs(tmp_path, (("原片 [1]_cut.mp4", "video"), ("原片 [1].srt", "subtitles"),
                               ("原片 [1]_cover.jpg", "cover"), ("edl.json", "edl"), ("report.json", "report")))
    Path(files[-1].path).write_text(json.dumps(report(), ensure_ascii=False), encoding="utf-8")
    return files


@pytest.mark.parametrize("api", ["mobile", "desktop"])
def test_plugin_upload_and_reply_then_a_retry_posts_nothing(make_server: Any, tmp_path: Path, api: str) -> None:
    server = make_server(mobile_api=api == "mobile")
    tid = request_thread(server)
    settings = PublishSettings(kind="plugin")
    files = cut_outputs(tmp_path)
    with bot(server, tmp_path, api) as client:
        publisher = make_publisher(settings, client, 2)
        out = publish_result(client, publisher, fid=2, tid=tid, task_id=TASK, files=files, settings=settings,
                             machine="gpu-01:8005", thread_subject="我的口播 第一期")
        assert out.reply.pid > 0 and not out.reply.already and not out.reply.moderated
        assert [f.name for f in out.files] == ["原片 [1]_cut.mp4", "原片 [1].srt", "原片 [1]_cover.jpg"]
        cos = server.snapshot()["cos"]
        assert sorted(o["filename"] for o in cos) == sorted(f.name for f in out.files)
        for f in out.files:          # every link serves the uploaded bytes
            assert f.url.startswith(server.url + "cos/")
            source = next(o for o in files if o.name == f.name)
            assert requests.get(f.url, timeout=5).content == Path(source.path).read_bytes()
        (post,) = bot_posts(server, tid)
        assert post["message"].rstrip().endswith(marker(TASK)) and "03:25 → 02:48" in post["message"]
        assert f"[url={out.files[0].url}]原片 ［1］_cut.mp4[/url]" in post["message"]
        # The worker died after replying; the next attempt publishes again: nothing is uploaded or posted.
        again = publish_result(client, publisher, fid=2, tid=tid, task_id=TASK, files=files, settings=settings)
        assert again.reply.already and again.reply.pid == out.reply.pid and again.files == ()
        # Even a bare reply_once for the task finds it in the rendered thread.
        assert reply_once(client, 2, tid, TASK, "again", settings=settings).already
    assert len(bot_posts(server, tid)) == 1 and len(server.snapshot()["cos"]) == 3


def test_attachment_upload_and_reply_bind_the_attachments(make_server: Any, tmp_path: Path) -> None:
    server = make_server()
    tid = request_thread(server)
    settings = PublishSettings(kind="attachment", files=("video", "subtitles"))
    with bot(server, tmp_path) as client:
        out = publish_result(client, make_publisher(settings, client, 2), fid=2, tid=tid, task_id=TASK,
                             files=cut_outputs(tmp_path), settings=settings)
    (post,) = bot_posts(server, tid)
    aids = [f.aid for f in out.files]
    assert len(aids) == 2 and all(aids) and all(f.url == "" for f in out.files)
    assert sorted(post["attachments"]) == sorted(aids)
    for aid in aids:
        assert f"[attach]{aid}[/attach]" in post["message"]
    bound = {a["aid"]: a for a in server.snapshot()["attachments"]}
    assert all(bound[aid]["pid"] == post["pid"] for aid in aids)


def test_flood_control_waits_then_replies_once(make_server: Any, tmp_path: Path) -> None:
    server = make_server(floodctrl=1)
    tid = request_thread(server)
    settings = PublishSettings(flood_wait_s=1.0, flood_retries=3)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    with bot(server, tmp_path) as client:
        first = publish_problem(client, fid=2, tid=tid, task_id="forum-a-1", code="NO_SOURCE", settings=settings,
                                sleep=sleep)
        second = publish_problem(client, fid=2, tid=tid, task_id="forum-a-2", code="NO_AUDIO", settings=settings,
                                 sleep=sleep)
    assert first.attempts == 1 and slept and all(s >= 1.0 for s in slept)
    assert second.pid > first.pid > 0 and second.attempts == len(slept) + 1
    posts = bot_posts(server, tid)
    assert [find_marker(p["message"], "forum-a-2") for p in posts] == [False, True]


def test_gbk_site_round_trip_with_a_directory_publisher(make_server: Any, tmp_path: Path) -> None:
    server = make_server(charset="gbk")
    tid = request_thread(server)
    settings = PublishSettings(kind="directory", path=str(tmp_path / "www"), base_url="https://files.example.com/a")
    with bot(server, tmp_path) as client:
        out = publish_result(client, make_publisher(settings, client, 2), fid=2, tid=tid, task_id=TASK,
                             files=cut_outputs(tmp_path), settings=settings, machine="剪辑机-1")
        assert client.charset == "gbk" and out.reply.pid > 0
        (post,) = client.posts_by(tid, client.uid)
        assert find_marker(post.message_html, TASK) and "原片 ［1］_cut.mp4" in html.unescape(post.message_html)
        assert "机器 剪辑机-1" in html.unescape(post.message_html)
        assert publish_result(client, make_publisher(settings, client, 2), fid=2, tid=tid, task_id=TASK,
                              files=cut_outputs(tmp_path), settings=settings).reply.already
    assert len(bot_posts(server, tid)) == 1


def test_moderated_reply_is_reported_as_such(make_server: Any, tmp_path: Path) -> None:
    server = make_server(moderate_replies=True)
    tid = request_thread(server)
    with bot(server, tmp_path) as client:
        out = publish_problem(client, fid=2, tid=tid, task_id=TASK, code="UNSUPPORTED_CATEGORY",
                              detail={"category": "音色克隆"}, settings=SETTINGS)
    assert out.moderated and out.pid == 0
    (post,) = bot_posts(server, tid)
    assert post["invisible"] == -2 and "「音色克隆」" in post["message"]


def test_a_refused_plugin_upload_posts_no_reply(make_server: Any, tmp_path: Path) -> None:
    server = make_server()
    tid = request_thread(server)
    settings = PublishSettings(kind="plugin", form_fields=(("filetype", "archive"),))
    with bot(server, tmp_path) as client, pytest.raises(ForumRefusedError, match="不支持的文件类型") as info:
        publish_result(client, make_publisher(settings, client, 2), fid=2, tid=tid, task_id=TASK,
                       files=cut_outputs(tmp_path), settings=settings)
    assert not info.value.retryable and bot_posts(server, tid) == []
