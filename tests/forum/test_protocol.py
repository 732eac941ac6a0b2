"""aicut.forum.protocol: Discuz answers decoded, refusals typed, bodies encoded — pure, no server."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import pytest

from aicut.errors import ForumConfigError, ForumFloodError, ForumLoginError, ForumRefusedError
from aicut.forum import protocol
from aicut.forum.protocol import Outcome

SITE = "bbs.example.com"


def _xml(inner: str) -> str:
    return f'<?xml version="1.0" encoding="utf-8"?><root><![CDATA[{inner}]]></root>'


def test_inajax_success_with_url_text_and_values() -> None:
    body = _xml("非常感谢，回复发布成功，现在将转入主题页<script>if(typeof succeedhandle_fastpost=='function') "
                "{succeedhandle_fastpost('forum.php?mod=viewthread&tid=1&pid=2&page=1&extra=#pid2', "
                "'非常感谢，回复发布成功，现在将转入主题页', {'fid':'2','tid':'1','pid':'2'});}</script>")
    out = protocol.decode(body, "text/xml")
    assert out is not None
    assert out.ok is True and out.message_id == "post_reply_succeed"
    assert out.values == {"fid": "2", "tid": "1", "pid": "2"}
    assert out.url.startswith("forum.php?mod=viewthread&tid=1&pid=2")


def test_inajax_error_maps_the_text_back_to_its_id() -> None:
    body = _xml("抱歉，您两次发表间隔少于 15 秒，请稍候再发表<script>if(typeof errorhandle_fastpost=='function') "
                "{errorhandle_fastpost('抱歉，您两次发表间隔少于 15 秒，请稍候再发表', {'floodctrl':'15'});}</script>")
    out = protocol.decode(body, "text/xml")
    assert out is not None and out.ok is False and out.message_id == "post_flood_ctrl"
    err = protocol.error_for(out, action="reply in thread 3", site=SITE)
    assert isinstance(err, ForumFloodError) and err.wait_s == 15 and err.retryable


def test_flood_wait_comes_from_the_text_when_values_are_missing() -> None:
    out = Outcome(message_id="post_flood_ctrl", text="抱歉，您两次发表间隔少于 30 秒，请稍候再发表", ok=False)
    assert protocol.flood_wait_s(out) == 30
    assert protocol.flood_wait_s(Outcome(message_id="post_flood_ctrl")) == 15


def test_empty_handlekey_still_decodes() -> None:
    out = protocol.decode(_xml("<script>succeedhandle_('forum.php', '欢迎您回来，新手上路 aicut', {'uid':'2'});</script>"))
    assert out is not None and out.ok and out.message_id == "login_succeed" and out.values["uid"] == "2"


def test_ajaxdata_json_success_inferred_from_data() -> None:
    out = protocol.decode(json.dumps({"message": "非常感谢，回复发布成功", "data": {"fid": "2", "tid": "1", "pid": 4}}))
    assert out is not None and out.ok and out.values["pid"] == "4"
    unknown = protocol.decode(json.dumps({"message": "something new", "data": {"pid": 9}}))
    assert unknown is not None and unknown.ok is True
    err = protocol.decode(json.dumps({"message": "登录失败，您还可以尝试 3 次", "data": {"loginperm": 3}}))
    assert err is not None and err.ok is False and err.message_id == "login_invalid"


def test_full_page_showmessage() -> None:
    page = ('<html><body><div id="messagetext" class="alert_error"><p>抱歉，您的帖子小于 10 个字符的限制</p>'
            '</div></body></html>')
    out = protocol.decode(page, "text/html")
    assert out is not None and out.ok is False and out.message_id == "post_message_tooshort"
    err = protocol.error_for(out, action="reply", site=SITE)
    assert isinstance(err, ForumRefusedError) and err.message_id == "post_message_tooshort" and not err.retryable
    right = protocol.decode_page('<div id="messagetext" class="alert_right"><p>回复需要审核，请等待通过</p></div>')
    assert right is not None and right.ok is True and right.message_id == "post_reply_mod_succeed"
    toolong = protocol.id_for_text("抱歉，您的帖子超过 10000 个字符的限制")
    assert toolong == "post_message_toolong"


def test_system_error_page_is_request_tainting() -> None:
    page = ("<html><head><title>System Error</title></head><body><h1>Discuz! System Error</h1>"
            "<div class='info'><li>您当前的访问请求当中含有非法字符，已经被系统拒绝</li></div></body></html>")
    out = protocol.decode(page, "text/html")
    assert out is not None and out.message_id == "request_tainting" and out.ok is False
    err = protocol.error_for(out, action="reply", site=SITE)
    assert isinstance(err, ForumRefusedError) and "form hash" in err.message


def test_mobile_envelope_id_and_login_suffix() -> None:
    doc = {"Version": "4", "Charset": "UTF-8",
           "Variables": {"member_uid": "0", "formhash": "abcd1234"},
           "Message": {"messageval": "replyperm_login_nopermission//1", "messagestr": "抱歉，您尚未登录"}}
    out = protocol.decode(json.dumps(doc, ensure_ascii=False))
    assert out is not None and out.kind == "mobile"
    assert out.message_id == "replyperm_login_nopermission" and out.login_required and out.ok is False
    ok = protocol.decode_mobile({"Variables": {"pid": "7"}, "Message": {"messageval": "post_reply_succeed"}})
    assert ok.ok and ok.values["pid"] == "7"
    plain = protocol.decode_mobile({"Variables": {"member_uid": "2"}})
    assert plain.ok is None and plain.message_id == ""
    closed = protocol.decode_mobile({"error": "mobile_is_closed"})
    assert closed.message_id == "mobile_is_closed"


@pytest.mark.parametrize("message_id", ["submit_seccode_invalid", "login_seccheck2", "login_question_empty",
                                        "login_question_invalid", "location_login_outofdate", "submit_secqaa_invalid"])
def test_what_only_the_operator_can_fix_is_a_config_error(message_id: str) -> None:
    err = protocol.error_for(Outcome(message_id=message_id, ok=False), action="log in", site=SITE)
    assert isinstance(err, ForumConfigError) and not err.retryable and err.message_id == message_id
    assert SITE in err.message


def test_captcha_advice_names_the_admin_setting() -> None:
    err = protocol.error_for(Outcome(message_id="submit_seccode_invalid", text="抱歉，验证码填写错误", ok=False),
                             action="log in", site=SITE)
    assert "captcha" in err.message and "验证码" in err.message and "minposts" in err.message


@pytest.mark.parametrize("text,message_id", [("登录失败，您还可以尝试 4 次", "login_invalid"),
                                             ("密码错误次数过多，请 15 分钟后重新登录", "login_strike")])
def test_wrong_password_is_a_login_error(text: str, message_id: str) -> None:
    out = protocol.decode_page(f'<div id="messagetext" class="alert_error"><p>{text}</p></div>')
    assert out is not None and out.message_id == message_id
    err = protocol.error_for(out, action="log in as 'bot'", site=SITE)
    assert type(err) is ForumLoginError and not err.retryable
    assert "FORUM_PASSWORD" in err.message


def test_login_invalid_tells_how_many_tries_are_left() -> None:
    err = protocol.error_for(Outcome(message_id="login_invalid", ok=False, values={"loginperm": "3"}),
                             action="log in", site=SITE)
    assert "3 more tries" in err.message


def test_unknown_ids_are_refusals_with_the_id() -> None:
    err = protocol.error_for(Outcome(message_id="post_thread_closed", text="抱歉，本主题已关闭", ok=False),
                             action="reply in thread 9", site=SITE)
    assert type(err) is ForumRefusedError and err.message_id == "post_thread_closed" and "本主题已关闭" in err.message


def test_login_form_is_recognised() -> None:
    form = ('<form method="post" name="login" id="loginform_LxyZ" action="member.php?mod=logging&amp;action=login'
            '&amp;loginsubmit=yes"><input type="password" name="password" /></form>')
    assert protocol.looks_like_login_form(form)
    assert not protocol.looks_like_login_form("<div id='postlist'></div>")
    assert protocol.is_password_page("http://x/home.php?mod=spacecp&ac=profile&op=password")
    assert not protocol.is_password_page("http://x/forum.php")


def test_upload_answers() -> None:
    assert protocol.upload_aid("DISCUZUPLOAD|0|17|0|0", site=SITE, name="a.mp4") == 17
    assert protocol.upload_aid("DISCUZUPLOAD|1|0|9|0||a.jpg|0", site=SITE, name="a.jpg") == 9
    assert protocol.upload_aid("23", site=SITE, name="a.mp4") == 23
    with pytest.raises(ForumRefusedError) as info:
        protocol.upload_aid("DISCUZUPLOAD|3|0|0|1024", site=SITE, name="big.mp4")
    assert info.value.message_id == "upload_status_3" and "maxattachsize" in info.value.message
    with pytest.raises(ForumRefusedError) as info:
        protocol.upload_aid("", site=SITE, name="a.mp4")
    assert info.value.message_id == "upload_status_10" and info.value.retryable
    with pytest.raises(ForumRefusedError):
        protocol.upload_aid("-6", site=SITE, name="a.mp4")


def test_upload_hash_from_the_post_page() -> None:
    h = "0123456789abcdef0123456789abcdef"
    assert protocol.upload_hash(f'post_params: {{"uid" : "2", "hash":"{h}"}},') == h
    assert protocol.upload_hash(f'uploadformdata:{{uid:"2", hash:"{h}"}},') == h
    assert protocol.upload_hash(f'<input type="hidden" name="hash" value="{h}" />') == h
    assert protocol.upload_hash("<html></html>") == ""


def test_plugin_answers() -> None:
    data = protocol.plugin_answer('{"code": 0, "data": {"url": "https://cos/x.mp4", "aid": 5, "filename": "x.mp4"}}',
                                  site=SITE, name="x.mp4")
    assert data == {"url": "https://cos/x.mp4", "aid": "5", "filename": "x.mp4"}
    with pytest.raises(ForumRefusedError, match="code 1"):
        protocol.plugin_answer('{"code": 1, "msg": "too big"}', site=SITE, name="x.mp4")
    with pytest.raises(ForumRefusedError, match="not JSON"):
        protocol.plugin_answer("<html>oops</html>", site=SITE, name="x.mp4")


def test_form_bodies_in_the_site_charset() -> None:
    fields = [("message", "你好，世界 [url]http://a/b?c=1&d=2[/url]"), ("subject", "  ")]
    gbk = protocol.encode_form(fields, "gbk")
    assert b"%C4%E3%BA%C3" in gbk       # 你好 in GBK
    assert dict(parse_qsl(gbk.decode("ascii"), encoding="gbk"))["message"] == fields[0][1]
    utf8 = protocol.encode_form(fields, "utf-8")
    assert b"%E4%BD%A0%E5%A5%BD" in utf8
    emoji = protocol.encode_form([("message", "ok 😀")], "gbk")
    assert dict(parse_qsl(emoji.decode("ascii"), encoding="gbk"))["message"] == "ok &#128512;"


def test_multipart_head_encodes_fields_and_name_in_the_charset() -> None:
    boundary, head, tail = protocol.multipart_parts([("filetype", "video"), ("note", "剪辑")], "Filedata",
                                                    '口播 "成品".mp4', "gbk")
    assert "剪辑".encode("gbk") in head and "口播".encode("gbk") in head
    assert b'filename="\xbf\xda\xb2\xa5 %22' in head
    assert tail == f"\r\n--{boundary}--\r\n".encode()
