"""Discuz! X answers, decoded: pure functions from response bodies to an ``Outcome`` and from an outcome to a typed
error. No HTTP here; ``client`` fetches, this module reads (DISCUZ.md §0 "Message ids vs. text").

Discuz reports every result through ``showmessage(id, url, values)``; how that reaches us depends on the endpoint:
the mobile API says the id (``Message.messageval``), the desktop says only the localized text, as a full page
(``<div id="messagetext">``), as ``inajax`` XML (``succeedhandle_x(...)`` / ``errorhandle_x(...)``) or as
``ajaxdata=json`` (``{"message", "data"}``). ``id_for_text`` maps the Simplified Chinese texts back to ids.
"""

from __future__ import annotations

import html
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aicut.errors import (
    ForumConfigError,
    ForumError,
    ForumFloodError,
    ForumLoginError,
    ForumRefusedError,
)

# --- outcomes ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """One decoded forum answer."""

    message_id: str = ""                 # Discuz's id ("" when neither said nor recognised), without "//1"
    text: str = ""                       # the forum's own words, tags stripped
    ok: bool | None = None               # True success, False refusal, None the answer did not say
    url: str = ""                        # succeedhandle's forward URL
    values: Mapping[str, str] = field(default_factory=dict)
    login_required: bool = False         # "//1" suffix, *_login_nopermission, or a login form
    kind: str = ""                       # "mobile" | "xml" | "json" | "page" | "tainted"


SUCCESS_IDS = frozenset({
    "login_succeed", "location_login_succeed", "location_login_succeed_mobile", "login_succeed_inactive_member",
    "post_reply_succeed", "post_reply_mod_succeed", "post_newthread_succeed", "post_newthread_mod_succeed",
    "post_edit_succeed",
})

# Things only the operator can change on the forum (a bot cannot solve a captcha or answer a security question).
CONFIG_IDS = frozenset({
    "submit_seccode_invalid", "submit_secqaa_invalid", "login_seccheck2", "login_question_empty",
    "login_question_invalid", "location_login_outofdate", "login_succeed_password_change", "location_login",
    "seccode_required",
})
LOGIN_IDS = frozenset({
    "login_invalid", "login_strike", "login_password_invalid", "profile_passwd_illegal", "location_activation",
    "login_succeed_inactive_member", "user_banned", "member_not_found",
})
# Refusals that mean "we are a guest here": the session expired (or never was).
LOGIN_REQUIRED_IDS = frozenset({
    "replyperm_login_nopermission", "viewperm_login_nopermission", "postperm_login_nopermission",
    "to_login", "not_loggedin", "login_before_enter_home", "attachpermperm_login_nopermission",
    "getattachperm_login_nopermission", "group_nopermission_login",
})
# The formhash or the Referer was wrong: a client bug or a session that changed under us; refetch and retry once.
TAINT_IDS = frozenset({"request_tainting", "submit_invalid"})

# Simplified Chinese texts of source/language/lang_message.php (X3.4/X3.5), as distinctive fragments; first match
# wins, so longer or more specific fragments come first.
_TEXT_IDS: tuple[tuple[str, str], ...] = (
    ("您当前的访问请求当中含有非法字符", "request_tainting"),
    ("您的请求来路不正确或表单验证串不符", "submit_invalid"),
    ("验证码填写错误", "submit_seccode_invalid"),
    ("验证问答回答错误", "submit_secqaa_invalid"),
    ("请输入验证码后继续登录", "login_seccheck2"),
    ("验证码", "submit_seccode_invalid"),
    ("请选择安全提问", "login_question_empty"),
    ("安全提问", "login_question_invalid"),
    ("已经被冻结", "location_login_outofdate"),
    ("您输入的密码有误", "login_password_invalid"),
    ("密码错误次数过多", "login_strike"),
    ("登录失败，您还可以尝试", "login_invalid"),
    ("登录失败", "login_invalid"),
    ("密码空或包含非法字符", "profile_passwd_illegal"),
    ("欢迎您回来", "login_succeed"),
    ("您两次发表间隔少于", "post_flood_ctrl"),
    ("每小时限制发回帖", "post_flood_ctrl_posts_per_hour"),
    ("每小时限制发主题", "thread_flood_ctrl_threads_per_hour"),
    ("见习期间", "post_newbie_span"),
    ("新回复需要审核", "post_reply_mod_succeed"),
    ("回复需要审核", "post_reply_mod_succeed"),
    ("新主题需要审核", "post_newthread_mod_succeed"),
    ("回复发布成功", "post_reply_succeed"),
    ("主题发布成功", "post_newthread_succeed"),
    ("您的主题已发布", "post_newthread_succeed"),
    ("该附件无法读取", "attachment_nonexistence"),
    ("未定义操作", "undefined_action"),
    ("个字符的限制", "post_message_tooshort"),      # refined by _refine_length below
    ("您尚未输入标题或内容", "post_sm_isnull"),
    ("本主题已关闭", "post_thread_closed"),
    ("主题自动关闭", "post_thread_closed"),
    ("指定的主题不存在或已被删除或正在被审核", "thread_nonexistence"),
    ("主题不存在", "thread_nonexistence"),
    ("您尚未登录，没有权限在该版块回帖", "replyperm_login_nopermission"),
    ("您尚未登录，没有权限访问该版块", "viewperm_login_nopermission"),
    ("您尚未登录，没有权限在该版块发帖", "postperm_login_nopermission"),
    ("您需要先登录才能继续本操作", "to_login"),
    ("您尚未登录", "to_login"),
    ("本版块只有特定用户组可以回复", "post_forum_newreply_nopermission"),
    ("您没有权限在该版块回帖", "replyperm_none_nopermission"),
    ("包含不良信息", "word_banned"),
    ("包含敏感词", "word_banned"),
    ("不允许发表带链接", "post_url_nopermission"),
    ("无法进行此操作", "group_nopermission"),
    ("指定的版块不存在", "forum_nonexistence"),
)

_LOGIN_PAGE_MARKERS = ('id="loginform', "name=\"login\" id=\"loginform", 'action="member.php?mod=logging&amp;action=login',
                       "action=\"member.php?mod=logging&action=login")
_PASSWORD_PAGE = re.compile(r"ac=profile(?:&|&amp;)op=password")
_TAG = re.compile(r"<[^>]+>")
_SPACES = re.compile(r"\s+")
_NUMBER = re.compile(r"(\d+)")


def clean_text(text: str) -> str:
    """Tags stripped, entities decoded, white space collapsed."""
    return _SPACES.sub(" ", html.unescape(_TAG.sub(" ", text or ""))).strip()


def _refine_length(text: str, message_id: str) -> str:
    if message_id == "post_message_tooshort" and ("超过" in text or "多于" in text):
        return "post_message_toolong"
    return message_id


def id_for_text(text: str) -> str:
    """The Discuz message id a localized text stands for, or ""."""
    for fragment, message_id in _TEXT_IDS:
        if fragment in text:
            return _refine_length(text, message_id)
    return ""


def split_message_id(raw: str) -> tuple[str, bool]:
    """``replyperm_login_nopermission//1`` → ("replyperm_login_nopermission", True)."""
    raw = (raw or "").strip()
    if raw.endswith("//1"):
        return raw[:-3], True
    return raw, False


def _needs_login(message_id: str) -> bool:
    return message_id in LOGIN_REQUIRED_IDS or message_id.endswith("_login_nopermission")


def _ok_for(message_id: str) -> bool | None:
    if not message_id:
        return None
    if message_id in SUCCESS_IDS or message_id.endswith("_succeed"):
        return True
    return False


def _str_values(values: Any) -> dict[str, str]:
    if not isinstance(values, Mapping):
        return {}
    return {str(k): "" if v is None else str(v) for k, v in values.items() if not isinstance(v, (dict, list))}


# --- mobile API ----------------------------------------------------------------------------------------------------


def mobile_variables(doc: Any) -> dict[str, Any]:
    """``Variables`` of a mobile envelope ({} when absent)."""
    if isinstance(doc, Mapping):
        variables = doc.get("Variables")
        if isinstance(variables, Mapping):
            return dict(variables)
    return {}


def mobile_error(doc: Any) -> str:
    """The plugin-level error (``{"error": "mobile_is_closed"}``, ``module_not_exists``) or ""."""
    if isinstance(doc, Mapping) and isinstance(doc.get("error"), str):
        return doc["error"]
    return ""


def decode_mobile(doc: Any) -> Outcome:
    """A mobile API envelope → Outcome (ok None when no ``Message`` was set)."""
    variables = mobile_variables(doc)
    message = doc.get("Message") if isinstance(doc, Mapping) else None
    raw_id, text = "", ""
    if isinstance(message, Mapping):
        raw_id = str(message.get("messageval") or "")
        text = clean_text(str(message.get("messagestr") or ""))
    message_id, suffix = split_message_id(raw_id)
    error = mobile_error(doc)
    if error and not message_id:
        message_id = error
    values = _str_values(variables)
    ok = _ok_for(message_id)
    login_required = suffix or _needs_login(message_id)
    return Outcome(message_id=message_id, text=text, ok=ok, values=values, login_required=login_required,
                   kind="mobile")


# --- desktop -------------------------------------------------------------------------------------------------------

_CDATA = re.compile(r"<!\[CDATA\[(.*?)\]\]>", re.S)
_SUCCEED = re.compile(r"succeedhandle_\w*\(\s*'((?:[^'\\]|\\.)*)'\s*,\s*'((?:[^'\\]|\\.)*)'\s*(?:,\s*(\{.*?\}))?\s*\)", re.S)
_ERROR = re.compile(r"errorhandle_\w*\(\s*'((?:[^'\\]|\\.)*)'\s*(?:,\s*(\{.*?\}))?\s*\)", re.S)
_JS_PAIR = re.compile(r"'((?:[^'\\]|\\.)*)'\s*:\s*(?:'((?:[^'\\]|\\.)*)'|(-?\d+(?:\.\d+)?))")
_MESSAGETEXT = re.compile(r'<div[^>]+id="messagetext"[^>]*>(.*?)</div>', re.S)
_ALERT = re.compile(r'<div[^>]+class="(alert_error|alert_right|alert_info)"[^>]*>(.*?)</div>', re.S)
_PARAGRAPH = re.compile(r"<p[^>]*>(.*?)</p>", re.S)


def _js_unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _js_object(text: str | None) -> dict[str, str]:
    """``{'fid':'2','pid':'3'}`` (Discuz writes single-quoted JS) → dict; tolerant of JSON too."""
    if not text:
        return {}
    try:
        return _str_values(json.loads(text))
    except ValueError:
        pass
    out: dict[str, str] = {}
    for match in _JS_PAIR.finditer(text):
        out[_js_unescape(match.group(1))] = _js_unescape(match.group(2)) if match.group(2) is not None else match.group(3)
    return out


def _desktop_outcome(text: str, ok: bool | None, kind: str, url: str = "", values: Mapping[str, str] | None = None
                     ) -> Outcome:
    text = clean_text(text)
    message_id = id_for_text(text)
    if ok is None:
        ok = _ok_for(message_id)
    elif ok and message_id and _ok_for(message_id) is False:
        ok = False  # some endpoints answer an error through succeedhandle (location_* redirects)
    return Outcome(message_id=message_id, text=text, ok=ok, url=url, values=dict(values or {}),
                   login_required=_needs_login(message_id), kind=kind)


def decode_ajax_xml(body: str) -> Outcome | None:
    """``inajax=1`` XML (``<root><![CDATA[...]]></root>``) → Outcome; None when it is not one."""
    if "<root" not in body[:400]:
        return None
    match = _CDATA.search(body)
    inner = match.group(1) if match else _TAG.sub("", body)
    succeed = _SUCCEED.search(inner)
    if succeed:
        url, text, values = succeed.groups()
        return _desktop_outcome(_js_unescape(text), True, "xml", html.unescape(_js_unescape(url)), _js_object(values))
    error = _ERROR.search(inner)
    if error:
        text, values = error.groups()
        return _desktop_outcome(_js_unescape(text), False, "xml", values=_js_object(values))
    if is_tainted(inner):
        return tainted_outcome()
    script_free = re.sub(r"<script.*?</script>", " ", inner, flags=re.S)
    if looks_like_login_form(inner):
        return Outcome(message_id="to_login", text=clean_text(script_free), ok=False, login_required=True, kind="xml")
    return _desktop_outcome(script_free, None, "xml")


def decode_ajax_json(doc: Any) -> Outcome | None:
    """``ajaxdata=json`` → Outcome; success is inferred from ``data`` (pid/uid/aid > 0) or the text."""
    if not isinstance(doc, Mapping) or "message" not in doc or "Variables" in doc:
        return None
    values = _str_values(doc.get("data"))
    outcome = _desktop_outcome(str(doc.get("message") or ""), None, "json", values=values)
    if outcome.ok is None and any(_int(values.get(k)) > 0 for k in ("pid", "tid", "uid", "aid")):
        outcome = Outcome(message_id=outcome.message_id, text=outcome.text, ok=True, values=values, kind="json")
    return outcome


def decode_page(body: str) -> Outcome | None:
    """A full showmessage page (``messagetext`` / ``alert_*``), the tainting page, or a login form; else None."""
    if is_tainted(body):
        return tainted_outcome()
    alert = _ALERT.search(body)
    block = _MESSAGETEXT.search(body)
    if alert or block:
        inner = alert.group(2) if alert else block.group(1) if block else ""
        paragraph = _PARAGRAPH.search(inner)
        text = paragraph.group(1) if paragraph else inner
        ok = {"alert_right": True, "alert_error": False}.get(alert.group(1)) if alert else None
        outcome = _desktop_outcome(text, ok, "page")
        if not outcome.message_id and looks_like_login_form(body):
            return Outcome(message_id="to_login", text=outcome.text, ok=False, login_required=True, kind="page")
        return outcome
    return None


def decode(body: str, content_type: str = "") -> Outcome | None:
    """Whatever kind of answer ``body`` is (mobile JSON, ajax JSON, ajax XML, page) → Outcome, or None."""
    stripped = body.lstrip()
    if stripped.startswith("{"):
        try:
            doc = json.loads(stripped)
        except ValueError:
            doc = None
        if isinstance(doc, Mapping):
            if "Variables" in doc or "Message" in doc or mobile_error(doc):
                return decode_mobile(doc)
            return decode_ajax_json(doc)
    if stripped.startswith("<?xml") or "xml" in content_type.lower():
        xml = decode_ajax_xml(stripped)
        if xml is not None:
            return xml
    return decode_page(body)


# --- special pages -------------------------------------------------------------------------------------------------


def is_tainted(body: str) -> bool:
    """The ``_xss_check`` "System Error" page: the formhash or cookies did not match (request_tainting)."""
    return "您当前的访问请求当中含有非法字符" in body or "request_tainting" in body


def tainted_outcome() -> Outcome:
    return Outcome(message_id="request_tainting", text="您当前的访问请求当中含有非法字符，已经被系统拒绝", ok=False,
                   kind="tainted")


def looks_like_login_form(body: str) -> bool:
    """A login form where a page or an answer was expected (the session expired or never was)."""
    lowered = body.lower()
    return any(marker in lowered for marker in _LOGIN_PAGE_MARKERS) and "loginsubmit" in lowered \
        and 'name="password"' in lowered


def is_password_page(url: str) -> bool:
    """The "account guard" page a frozen account is redirected to (home.php?mod=spacecp&ac=profile&op=password)."""
    return bool(_PASSWORD_PAGE.search(url or "")) and "spacecp" in (url or "")


def needs_seccode(body: str) -> bool:
    """A login form (or mobile ``secure`` answer) that asks for a captcha or a Q&A."""
    return any(marker in body for marker in ('name="seccodeverify"', "seccodeverify", 'name="secanswer"',
                                             "secqaahash", '"sechash"', "seccodehash"))


# --- errors --------------------------------------------------------------------------------------------------------


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return default


def flood_wait_s(outcome: Outcome, default: float = 15.0) -> float:
    """Seconds post_flood_ctrl asks us to wait: ``values.floodctrl``, else the number in the text, else default."""
    value = _int(outcome.values.get("floodctrl"), 0)
    if value > 0:
        return float(value)
    match = _NUMBER.search(outcome.text or "")
    if match and int(match.group(1)) > 0:
        return float(match.group(1))
    return default


def _said(outcome: Outcome) -> str:
    words = outcome.text or "(no text)"
    return f"{outcome.message_id or 'unrecognised answer'}: {words}" if outcome.message_id else f"the forum said: {words}"


def _config_advice(message_id: str) -> str:
    if message_id in ("submit_seccode_invalid", "login_seccheck2", "seccode_required", "location_login"):
        return ("the forum asks for a captcha; a bot cannot solve one: switch it off for this account's user group in "
                "admincp → 防灌水 → 验证码 (login and post rules), or set the rule's minposts below this account's posts")
    if message_id == "submit_secqaa_invalid":
        return ("the forum asks a verification question (验证问答); a bot cannot answer it: switch secqaa off for "
                "login and posting in admincp → 防灌水 → 验证问答")
    if message_id in ("login_question_empty", "login_question_invalid"):
        return ("this account has a security question (安全提问); remove it in the account's settings "
                "(home.php?mod=spacecp&ac=profile&op=password) so the bot can log in")
    return ("the forum froze this account or demands a password change (account guard); log in once in a browser, "
            "change the password as asked and put the new one in .env")


def error_for(outcome: Outcome, *, action: str, site: str) -> ForumError:
    """The typed error for a refusal. ``action`` says what we tried ("log in", "reply in thread 7")."""
    message_id = outcome.message_id
    where = f"{site}: {action} failed"
    if message_id in CONFIG_IDS:
        return ForumConfigError(f"{where} ({_said(outcome)}); {_config_advice(message_id)}", message_id=message_id)
    if message_id in LOGIN_IDS:
        return _login_error(outcome, where)
    if message_id == "post_flood_ctrl":
        wait = flood_wait_s(outcome)
        return ForumFloodError(f"{where} ({_said(outcome)}); the forum's flood control asks to wait {wait:g} s "
                               "before posting again", wait_s=wait)
    if message_id in ("post_flood_ctrl_posts_per_hour", "thread_flood_ctrl_threads_per_hour", "post_newbie_span"):
        return ForumRefusedError(f"{where} ({_said(outcome)}); the account may not post more for now: try later, or "
                                 "raise the limit for its user group in admincp", message_id=message_id, retryable=True)
    if message_id in TAINT_IDS:
        return ForumRefusedError(f"{where} ({_said(outcome)}); the forum rejected the form hash or cookies — an expired "
                                 "session or a client bug; it is retried once with a fresh form hash",
                                 message_id=message_id)
    if outcome.login_required:
        return ForumLoginError(f"{where} ({_said(outcome)}); the forum treats us as a guest even after logging in: "
                               "check that the account may view and post in this board", message_id=message_id)
    return ForumRefusedError(f"{where} ({_said(outcome)}); see the forum's words for what to change",
                             message_id=message_id)


def _login_error(outcome: Outcome, where: str) -> ForumLoginError:
    message_id = outcome.message_id
    if message_id == "login_strike":
        advice = ("too many wrong passwords: the forum locks this account for this address for about 15 minutes; "
                  "fix FORUM_PASSWORD in .env first")
    elif message_id == "login_invalid":
        left = outcome.values.get("loginperm") or (_NUMBER.search(outcome.text).group(1)
                                                   if _NUMBER.search(outcome.text) else "")
        advice = ("wrong user name or password: check FORUM_USERNAME and FORUM_PASSWORD in .env"
                  + (f" (the forum allows {left} more tries before locking the account)" if left else ""))
    elif message_id in ("login_succeed_inactive_member", "location_activation"):
        advice = "the account is not activated on the forum: activate it (or move it out of the 等待验证会员 group)"
    elif message_id == "user_banned":
        advice = "the account is banned: lift the ban in admincp or use another account"
    else:
        advice = "check FORUM_USERNAME and FORUM_PASSWORD in .env (a password may not contain ' \" or \\ on Discuz)"
    return ForumLoginError(f"{where} ({_said(outcome)}); {advice}", message_id=message_id)


# --- uploads -------------------------------------------------------------------------------------------------------

_UPLOAD_STATUS = {
    1: "the file type is not allowed for this user group or board (attachextensions)",
    2: "the upload failed or the file was empty",
    3: "the file is larger than the user group's maxattachsize",
    4: "this file type is banned in the board's attachment types",
    5: "the file is larger than the limit for its type",
    6: "the user group may not upload attachments (allowpostattach) or reached its daily count",
    7: "the file is not a valid image",
    8: "the forum could not save the file (attachment directory not writable)",
    9: "the forum could not save the file",
    10: "the upload hash was refused (a stale session)",
    11: "the user group's daily upload size is used up",
    12: "the file name contains a censored word",
    13: "the image is too large in pixels",
}
_UPLOAD_HASH = (
    re.compile(r"""["']?hash["']?\s*[:=]\s*["']([0-9a-fA-F]{32})["']"""),
    re.compile(r"""name=["']hash["'][^>]*value=["']([0-9a-fA-F]{32})["']"""),
    re.compile(r"""value=["']([0-9a-fA-F]{32})["'][^>]*name=["']hash["']"""),
)


def upload_hash(page: str) -> str:
    """The swfupload ``hash`` (md5 of authkey and uid) from a post page's upload settings, or ""."""
    for pattern in _UPLOAD_HASH:
        match = pattern.search(page)
        if match:
            return match.group(1)
    return ""


def upload_aid(body: str, *, site: str, name: str) -> int:
    """Parse misc.php?mod=swfupload&operation=upload answers: ``DISCUZUPLOAD|status|aid|isimage|limit`` (simple=1),
    ``DISCUZUPLOAD|type|status|aid|…`` (simple=2), a bare aid or ``-status`` (simple=0)."""
    text = body.strip()
    if text.startswith("DISCUZUPLOAD|"):
        parts = text.split("|")
        status_at = 2 if len(parts) >= 8 else 1
        status, aid = _int(parts[status_at], -1), _int(parts[status_at + 1] if len(parts) > status_at + 1 else 0)
    elif re.fullmatch(r"-?\d+", text):
        number = int(text)
        status, aid = (0, number) if number > 0 else (-number or 2, 0)
    else:
        status, aid = (10 if not text else -1), 0
    if status == 0 and aid > 0:
        return aid
    reason = _UPLOAD_STATUS.get(status, f"the forum answered {clean_text(text)[:120]!r}")
    raise ForumRefusedError(f"{site}: uploading {name!r} as a forum attachment failed: {reason}",
                            message_id=f"upload_status_{status}", retryable=status in (8, 9, 10))


def plugin_answer(body: str, *, site: str, name: str) -> dict[str, str]:
    """The object-storage plugin's ``{"code": 0, "data": {"url", "aid", "filename"}}`` → its data as strings."""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if not isinstance(doc, Mapping):
        raise ForumRefusedError(f"{site}: the upload plugin answered something that is not JSON for {name!r} "
                                f"({clean_text(body)[:120]!r}); check publish.endpoint", message_id="plugin_not_json")
    code = doc.get("code")
    data = doc.get("data") if isinstance(doc.get("data"), Mapping) else {}
    if _int(code, -1) != 0 or not data.get("url"):
        said = clean_text(str(doc.get("msg") or doc.get("message") or doc.get("error") or ""))[:200]
        raise ForumRefusedError(f"{site}: the upload plugin refused {name!r} (code {code!r}: {said or 'no reason'}); "
                                "check the plugin's settings and this account's upload rights",
                                message_id=f"plugin_code_{code}")
    out = {k: "" if v is None else str(v) for k, v in data.items() if not isinstance(v, (dict, list))}
    out.setdefault("aid", "")
    out.setdefault("filename", name)
    return out


# --- request bodies ------------------------------------------------------------------------------------------------


def encode_form(fields: Iterable[tuple[str, str]], charset: str) -> bytes:
    """application/x-www-form-urlencoded in the site's charset (GBK sites read GBK percent-escapes); characters the
    charset lacks become ``&#N;`` as a browser would send them."""
    return urlencode(list(fields), encoding=charset, errors="xmlcharrefreplace").encode("ascii")


def _quote_header(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def multipart_parts(fields: Sequence[tuple[str, str]], file_field: str, file_name: str, charset: str,
                    content_type: str = "application/octet-stream") -> tuple[str, bytes, bytes]:
    """(boundary, head, tail) of a multipart/form-data body whose file content goes between head and tail; field
    values and the file name are encoded in the site's charset."""
    boundary = "----aicut" + uuid.uuid4().hex
    head = bytearray()
    for name, value in fields:
        head += f"--{boundary}\r\nContent-Disposition: form-data; name=\"{_quote_header(name)}\"\r\n\r\n".encode()
        head += str(value).encode(charset, errors="xmlcharrefreplace") + b"\r\n"
    head += f"--{boundary}\r\nContent-Disposition: form-data; name=\"{_quote_header(file_field)}\"; filename=\"".encode()
    head += _quote_header(file_name).encode(charset, errors="xmlcharrefreplace")
    head += f"\"\r\nContent-Type: {content_type}\r\n\r\n".encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return boundary, bytes(head), tail
