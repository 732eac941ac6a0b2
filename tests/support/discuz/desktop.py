"""Desktop endpoints: forum.php, member.php, misc.php (swfupload), home.php, rewritten URLs, the COS plugin."""

from __future__ import annotations

import base64
import mimetypes
import re
import time
import uuid
from urllib.parse import quote, unquote

from aiohttp import web

from . import core, pages
from .context import Ctx
from .message import showmessage
from .state import Attachment, CosObject

IMAGE_EXTS = {"jpg", "jpeg", "gif", "png", "bmp", "webp"}


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int(value or default)
    except ValueError:
        return default


def outcome_response(ctx: Ctx, outcome: core.Outcome) -> web.Response:
    return showmessage(ctx, outcome.msgid, outcome.url, outcome.values, status=outcome.status)


# --- forum.php ---------------------------------------------------------------------------------------------------

def forum_php(ctx: Ctx) -> web.Response:
    mod = ctx.gp.get("mod", "")
    if mod == "forumdisplay":
        return forumdisplay(ctx, _int(ctx.gp.get("fid")), max(1, _int(ctx.gp.get("page"), 1)))
    if mod == "viewthread":
        return viewthread(ctx, _int(ctx.gp.get("tid")), max(1, _int(ctx.gp.get("page"), 1)),
                          _int(ctx.gp.get("authorid")))
    if mod == "post":
        return post(ctx)
    if mod == "attachment":
        return attachment(ctx)
    if mod == "redirect":
        return redirect(ctx)
    return ctx.html(pages.index_page(ctx))


def forumdisplay(ctx: Ctx, fid: int, page: int) -> web.Response:
    board = ctx.forum.config.board(fid)
    if board is None:
        return showmessage(ctx, "forum_nonexistence")
    filters = {k: ctx.gp[k] for k in ("filter", "orderby", "typeid") if ctx.gp.get(k)}
    return ctx.html(pages.forumdisplay_page(ctx, board, page, filters))


def viewthread(ctx: Ctx, tid: int, page: int, authorid: int) -> web.Response:
    thread = ctx.forum.state.thread(tid)
    board = ctx.forum.config.board(thread.fid) if thread else None
    if thread is None or board is None:
        return showmessage(ctx, "thread_nonexistence", status=404)
    with ctx.forum.state.lock:
        thread.views += 1
    return ctx.html(pages.viewthread_page(ctx, board, thread, page, authorid))


def post(ctx: Ctx) -> web.Response:
    action = ctx.gp.get("action", "")
    if action == "reply":
        tid = _int(ctx.gp.get("tid"))
        outcome = core.reply(ctx, tid)
        if outcome is None:
            thread = ctx.forum.state.thread(tid)
            assert thread is not None
            board = ctx.forum.config.board(thread.fid)
            assert board is not None
            return ctx.html(pages.post_editor_page(ctx, board, "reply", thread))
        return outcome_response(ctx, outcome)
    if action == "newthread":
        fid = _int(ctx.gp.get("fid"))
        outcome = core.newthread(ctx, fid)
        if outcome is None:
            board = ctx.forum.config.board(fid)
            assert board is not None
            return ctx.html(pages.post_editor_page(ctx, board, "newthread", None))
        return outcome_response(ctx, outcome)
    return showmessage(ctx, "undefined_action")


def redirect(ctx: Ctx) -> web.Response:
    """mod=redirect&goto=findpost&ptid=T&pid=P (and goto=lastpost&tid=T): 302 to the post's page."""
    tid = _int(ctx.gp.get("ptid") or ctx.gp.get("tid"))
    thread = ctx.forum.state.thread(tid)
    if thread is None:
        return showmessage(ctx, "thread_nonexistence", status=404)
    posts = thread.visible_posts()
    pid = _int(ctx.gp.get("pid"))
    index = next((i for i, p in enumerate(posts) if p.pid == pid), len(posts) - 1)
    page = index // ctx.forum.config.ppp + 1
    return ctx.redirect(f"forum.php?mod=viewthread&tid={tid}&page={page}#pid{posts[index].pid}")


def decode_aid(value: str) -> int:
    if value.isdigit():
        return int(value)
    try:
        return int(base64.b64decode(value + "=" * (-len(value) % 4)).decode().split("|")[0])
    except (ValueError, UnicodeDecodeError):
        return 0


def serve_bytes(request: web.Request, data: bytes, content_type: str, filename: str) -> web.Response:
    """The bytes with single-range support and a download filename."""
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "")
    headers = {"Content-Type": content_type, "Accept-Ranges": "bytes",
               "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"}
    m = re.fullmatch(r"bytes=(\d*)-(\d*)", request.headers.get("Range", ""))
    if m and (m.group(1) or m.group(2)):
        size = len(data)
        if m.group(1):
            start, end = int(m.group(1)), int(m.group(2)) if m.group(2) else size - 1
        else:
            start, end = max(0, size - int(m.group(2))), size - 1
        if start >= size:
            return web.Response(status=416, headers={"Content-Range": f"bytes */{size}"})
        end = min(end, size - 1)
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        return web.Response(status=206, body=data[start:end + 1], headers=headers)
    return web.Response(body=data, headers=headers)


def attachment(ctx: Ctx) -> web.Response:
    att = ctx.forum.state.attachments.get(decode_aid(ctx.gp.get("aid", "")))
    if att is None:
        return showmessage(ctx, "attachment_nonexistence")
    ctype = mimetypes.guess_type(att.filename)[0] if att.isimage else "application/octet-stream"
    return serve_bytes(ctx.request, att.data, ctype or "application/octet-stream", att.filename)


# --- member.php --------------------------------------------------------------------------------------------------

def member_php(ctx: Ctx) -> web.Response:
    if ctx.gp.get("mod") != "logging":
        return showmessage(ctx, "undefined_action")
    action = ctx.gp.get("action", "")
    if action == "logout":
        # logging_ctl::on_logout: without the right formhash it only says so (and offers one); with it, logs out
        if ctx.gp.get("formhash") == ctx.formhash() and ctx.user is not None:
            ctx.set_cookie("auth", "", -1)
            ctx.user = None
        return showmessage(ctx, "logout_succeed", "forum.php", {"formhash": ctx.formhash(), "ucsynlogout": ""})
    if action != "login":
        return showmessage(ctx, "undefined_action")
    if not ctx.gp.get("loginsubmit"):
        return ctx.html(pages.login_page(ctx))
    if ctx.gp.get("lssubmit") and (ctx.forum.config.captcha or _has_question(ctx)):
        return showmessage(ctx, "location_login")
    outcome = core.login(ctx)
    if outcome.msgid == "login_succeed" and (not ctx.gp.get("handlekey") or ctx.gp.get("lssubmit")):
        outcome = core.Outcome("location_login_succeed", outcome.url, {}, account=outcome.account)
    return outcome_response(ctx, outcome)


def _has_question(ctx: Ctx) -> bool:
    account = ctx.forum.config.account(username=ctx.gp.get("username", ""))
    return bool(account and account.questionid)


# --- home.php ----------------------------------------------------------------------------------------------------

def home_php(ctx: Ctx) -> web.Response:
    if ctx.gp.get("mod") == "space":
        return ctx.html(pages.space_page(ctx, _int(ctx.gp.get("uid"))))
    if ctx.user is None:
        return showmessage(ctx, "to_login")
    return ctx.html(pages.profile_page(ctx))


# --- misc.php?mod=swfupload ----------------------------------------------------------------------------------------

def misc_php(ctx: Ctx) -> web.Response:
    """misc_swfupload.php + forum_upload.php: uid and hash in the POST, no cookie needed; answers aid or a code."""
    if ctx.gp.get("mod") != "swfupload" or ctx.gp.get("operation") != "upload":
        return showmessage(ctx, "undefined_action")
    uid = _int(ctx.post.get("uid"))
    if ctx.post.get("hash") != ctx.swfupload_hash(uid):
        return web.Response(body=b"", content_type="text/html")
    simple = ctx.gp.get("simple", "")
    upload = ctx.files.get("Filedata")
    account = ctx.forum.config.account(uid=uid)

    def answer(status: int, aid: int = 0, isimage: int = 0, name: str = "") -> web.Response:
        if simple == "1":
            text = f"DISCUZUPLOAD|{status}|{aid}|{isimage}|0"
        elif simple == "2":
            kind = "1" if ctx.gp.get("type") == "image" else "0"
            text = f"DISCUZUPLOAD|{kind}|{status}|{aid}|{isimage}||{name}|0"
        else:
            text = str(-status if status else aid)
        return web.Response(body=ctx.encode(text), content_type="text/html", charset=ctx.charset)

    if upload is None:
        return answer(2)
    if account is None:
        return answer(6)
    if not upload.data:
        return answer(2)
    name = upload.filename if simple else unquote(upload.filename)
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    isimage = ext in IMAGE_EXTS
    if ctx.gp.get("type") == "image" and not isimage:
        return answer(7)
    aid = ctx.forum.state.new_aid()
    ctx.forum.state.attachments[aid] = Attachment(aid, uid, name, upload.data, int(time.time()), isimage)
    return answer(0, aid, -1 if isimage and ctx.gp.get("type") != "image" else int(isimage), name)


# --- source/plugin/tencentcos/upload_api.php ---------------------------------------------------------------------

def cos_upload(ctx: Ctx) -> web.Response:
    """The site's object-storage plugin: multipart ``Filedata`` + ``filetype=video``, login required."""
    if ctx.user is None:
        return ctx.json({"code": -1, "msg": "请先登录"})
    if not ctx.is_post:
        return ctx.json({"code": 1, "msg": "请使用 POST 上传"})
    upload = ctx.files.get("Filedata")
    if upload is None or not upload.data:
        return ctx.json({"code": 2, "msg": "没有上传文件"})
    if ctx.gp.get("filetype", "") not in ("video", "audio", "image"):
        return ctx.json({"code": 3, "msg": "不支持的文件类型"})
    ext = upload.filename.rsplit(".", 1)[-1].lower() if "." in upload.filename else "bin"
    key = f"forum/{time.strftime('%Y%m')}/{uuid.uuid4().hex}.{ext}"
    state = ctx.forum.state
    aid = state.new_aid()
    state.attachments[aid] = Attachment(aid, ctx.uid, upload.filename, upload.data, int(time.time()),
                                        ext in IMAGE_EXTS)
    state.cos[key] = CosObject(key, upload.filename, upload.data, ctx.uid, aid)
    host = ctx.request.headers.get("Host", "127.0.0.1")
    return ctx.json({"code": 0, "msg": "success",
                     "data": {"url": f"http://{host}/cos/{key}", "aid": aid, "filename": upload.filename}})


def cos_object(request: web.Request, state_cos: dict[str, CosObject]) -> web.Response:
    obj = state_cos.get(request.match_info["key"])
    if obj is None:
        return web.Response(status=404, text="<Error><Code>NoSuchKey</Code></Error>", content_type="application/xml")
    ctype = mimetypes.guess_type(obj.key)[0] or "application/octet-stream"
    response = serve_bytes(request, obj.data, ctype, obj.filename)
    del response.headers["Content-Disposition"]
    return response
