"""api/mobile/index.php: the mobile plugin's JSON envelope and the modules a bot uses (api/{1,3,4}/*.php)."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from . import core
from .bbcode import plain_text, render_mobile
from .config import Board
from .context import Ctx, md5
from .lang import GROUP_TITLES, STAFF_GROUPS, message_text
from .layout import human_date
from .message import system_error
from .pages import aid_encode, board_listing
from .state import Post, Thread

MODULES = frozenset((
    "extends buyattachment buythread checkpost connect favforum favthread forumdisplay forumindex forumnav "
    "forumupload friend hotforum hotthread login myfavforum myfavthread mypm mythread newthread profile publicpm "
    "register seccode secure sendpm sendreply sub_checkpost sublist toplist viewthread uploadavatar pollvote "
    "mynotelist credit profiles modcp topicadmin forumimage newthreads signin smiley threadrecommend check "
    "mobilesign wsqindex wsqsiteinfo recommend wechat wechat_clearlogin checkinfo seccodehtml showactivity "
    "bestanswer forummisc checkcookie checknewpm viewcomment plugin").split())

READACCESS = {1: 200, 2: 150, 3: 100, 7: 1}


def stringify(value: Any) -> Any:
    """mobile_core::getvalues: every scalar a string, empty scalars dropped ("0" stays)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            v = stringify(v)
            if v is None or v == "":
                continue
            out[str(k)] = v
        return out
    if isinstance(value, (list, tuple)):
        return [stringify(v) for v in value]
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def envelope(ctx: Ctx, variables: dict[str, Any] | None = None, outcome: core.Outcome | None = None,
             version: str = "4") -> web.Response:
    user = ctx.user
    auth = next((v for n, v, age, _ in reversed(ctx.set_cookies) if n == "auth" and (age is None or age >= 0)),
                ctx.cookie("auth") if user else "")
    base: dict[str, Any] = {
        "cookiepre": ctx.forum.config.cookiepre, "auth": auth if user else "", "saltkey": ctx.saltkey,
        "member_uid": ctx.uid, "member_username": user.username if user else "",
        "member_avatar": f"http://{ctx.request.headers.get('Host', '')}/uc_server/avatar.php?uid={ctx.uid}&size=small",
        "groupid": user.groupid if user else 7, "formhash": ctx.formhash(),
        "ismoderator": int(bool(user and user.groupid in STAFF_GROUPS)),
        "readaccess": READACCESS.get(user.groupid, 10) if user else 1,
        "notice": {"newpush": 0, "newpm": 0, "newprompt": 0, "newmypost": 0},
    }
    base.update(variables or {})
    result: dict[str, Any] = {"Version": version, "Charset": ctx.charset.upper(), "Variables": stringify(base)}
    if outcome is not None:
        msgid = outcome.msgid + ("//1" if outcome.login_required else "")
        result["Message"] = {"messageval": msgid, "messagestr": message_text(outcome.msgid, outcome.values)}
    return ctx.json(result)


def mobile_api(ctx: Ctx) -> web.Response:
    cfg = ctx.forum.config
    if not ctx.request.query_string:
        return web.Response(body=b"")
    if not cfg.mobile_api:
        return ctx.json({"error": "mobile_is_closed"})
    module = ctx.gp.get("module", "")
    version = ctx.gp.get("version", "1") or "1"
    if module not in MODULES:
        return ctx.json({"error": "module_not_exists"})
    handler = _HANDLERS.get(module)
    if handler is None:
        return envelope(ctx, version=version)
    return handler(ctx, version)


# --- modules -----------------------------------------------------------------------------------------------------

def _check(ctx: Ctx, version: str) -> web.Response:
    cfg, state = ctx.forum.config, ctx.forum.state
    return ctx.json({"discuzversion": "X3.2", "truediscuzversion": cfg.version, "charset": cfg.charset,
                     "version": "4", "pluginversion": "1.4.8", "regname": "register", "qqconnect": "0",
                     "sitename": cfg.bbname, "mysiteid": "", "ucenterurl": "", "defaultfid": "",
                     "totalposts": str(sum(len(t.posts) for t in state.threads.values())),
                     "totalmembers": str(len(cfg.accounts)), "testcookie": "yes"})


def _login(ctx: Ctx, version: str) -> web.Response:
    if not ctx.gp.get("loginsubmit"):
        return envelope(ctx, version=version)
    outcome = core.login(ctx)
    if version == "4" and ctx.forum.config.version == "X3.5":
        # api/4/login.php output() requires source/plugin/wechat/wsq.class.php, which X3.5 no longer ships
        response = system_error(ctx, "require_once(source/plugin/wechat/wsq.class.php): failed to open stream: "
                                     "No such file or directory")
        return response
    return envelope(ctx, {}, outcome, version)


def thread_item(ctx: Ctx, t: Thread, *, with_message: bool) -> dict[str, Any]:
    item: dict[str, Any] = {
        "tid": t.tid, "fid": t.fid, "typeid": t.typeid, "readperm": 0, "price": 0, "author": t.author,
        "authorid": t.authorid, "subject": t.subject, "dateline": human_date(t.dateline, ctx),
        "dbdateline": t.dateline, "lastpost": human_date(t.lastpost, ctx), "dblastpost": t.lastpost,
        "lastposter": t.lastposter, "views": t.views, "replies": t.replies, "displayorder": t.displayorder,
        "digest": 0, "special": 0, "attachment": int(any(p.attachments for p in t.posts)), "closed": int(t.closed),
        "recommend_add": 0, "replycredit": 0,
    }
    if with_message:
        item["message"] = plain_text(t.posts[0].message) if t.posts else ""
    return item


def _threadtypes(board: Board) -> dict[str, Any]:
    return {"required": int(board.types_required), "listable": 1, "prefix": 1,
            "types": {str(k): v for k, v in board.types.items()}, "icons": {}}


def _forumdisplay(ctx: Ctx, version: str) -> web.Response:
    gp, cfg = ctx.gp, ctx.forum.config
    board = cfg.board(int(gp.get("fid") or 0) if (gp.get("fid") or "0").isdigit() else 0)
    if board is None:
        return envelope(ctx, {}, core.Outcome("forum_nonexistence"), version)
    page = max(1, int(gp.get("page") or 1)) if (gp.get("page") or "1").isdigit() else 1
    tpp = int(gp["tpp"]) if (gp.get("tpp") or "").isdigit() and int(gp["tpp"]) > 0 else cfg.tpp
    orderby = gp.get("orderby", "lastpost") if gp.get("filter") == "author" else "lastpost"
    typeid = int(gp.get("typeid") or 0) if (gp.get("typeid") or "0").isdigit() else 0
    sticky, normal, _ = board_listing(ctx, board, page, tpp, orderby, typeid)
    threads = ctx.forum.state.board_threads(board.fid)
    variables: dict[str, Any] = {
        "forum": {"fid": board.fid, "fup": 0, "name": board.name, "threads": len(threads),
                  "posts": sum(len(t.visible_posts()) for t in threads), "threadcount": len(threads),
                  "password": 0, "autoclose": 0, "rules": ""},
        "group": {"groupid": ctx.user.groupid if ctx.user else 7,
                  "grouptitle": GROUP_TITLES.get(ctx.user.groupid if ctx.user else 7, "")},
        "forum_threadlist": [thread_item(ctx, t, with_message=cfg.version == "X3.5") for t in sticky + normal],
        "sublist": [], "tpp": tpp, "page": page,
    }
    if board.types:
        variables["threadtypes"] = _threadtypes(board)
    return envelope(ctx, variables, version=version)


def _newthreads(ctx: Ctx, version: str) -> web.Response:
    gp = ctx.gp
    fids = {int(f) for f in gp.get("fids", "").split(",") if f.strip().isdigit()}
    start = int(gp.get("start") or 0) if (gp.get("start") or "0").isdigit() else 0
    limit = min(100, int(gp.get("limit") or 20)) if (gp.get("limit") or "20").isdigit() else 20
    now = time.time()
    threads = [t for fid in sorted(fids) for t in ctx.forum.state.board_threads(fid) if now - t.dateline < 15 * 86400]
    threads.sort(key=lambda t: (t.dateline, t.tid), reverse=True)
    data = [thread_item(ctx, t, with_message=True) for t in threads[start:start + limit]]
    return envelope(ctx, {"data": data}, version=version)


def _post_item(ctx: Ctx, post: Post, number: int) -> dict[str, Any]:
    account = ctx.forum.config.account(uid=post.authorid)
    attachments = {}
    for aid in post.attachments:
        att = ctx.forum.state.attachments.get(aid)
        if att is None:
            continue
        enc = aid_encode(ctx, aid, post.tid)
        attachments[str(aid)] = {
            "aid": aid, "tid": post.tid, "pid": post.pid, "uid": att.uid, "dateline": human_date(att.dateline, ctx),
            "filename": att.filename, "filesize": len(att.data), "description": att.description,
            "isimage": int(att.isimage), "attachimg": int(att.isimage), "ext": att.filename.rsplit(".", 1)[-1],
            "attachsize": f"{len(att.data) / 1024:.2f} KB", "aidencode": enc,
            "url": f"forum.php?mod=attachment&aid={enc}", "dbdateline": att.dateline,
        }
    return {
        "pid": post.pid, "tid": post.tid, "first": int(post.first), "author": post.author,
        "authorid": post.authorid, "dateline": human_date(post.dateline, ctx), "dbdateline": post.dateline,
        "message": render_mobile(post.message), "username": post.author, "adminid": 0,
        "groupid": account.groupid if account else 10, "memberstatus": 0, "number": number, "position": number,
        "status": 0, "anonymous": 0, "attachment": int(bool(post.attachments)), "attachments": attachments,
        "attachlist": [str(a) for a in post.attachments if not ctx.forum.state.attachments[a].isimage],
        "imagelist": [str(a) for a in post.attachments if ctx.forum.state.attachments[a].isimage],
    }


def _viewthread(ctx: Ctx, version: str) -> web.Response:
    gp, cfg = ctx.gp, ctx.forum.config
    tid = int(gp.get("tid") or 0) if (gp.get("tid") or "0").isdigit() else 0
    thread = ctx.forum.state.thread(tid)
    if thread is None:
        return envelope(ctx, {}, core.Outcome("thread_nonexistence"), version)
    with ctx.forum.state.lock:
        thread.views += 1
    ppp = int(gp["ppp"]) if (gp.get("ppp") or "").isdigit() and int(gp["ppp"]) > 0 else cfg.ppp
    page = max(1, int(gp.get("page") or 1)) if (gp.get("page") or "1").isdigit() else 1
    authorid = int(gp.get("authorid") or 0) if (gp.get("authorid") or "0").isdigit() else 0
    numbered = [(i + 1, p) for i, p in enumerate(thread.visible_posts())]
    if authorid:
        numbered = [(n, p) for n, p in numbered if p.authorid == authorid]
    shown = numbered[(page - 1) * ppp: page * ppp]
    variables = {
        "thread": {"tid": thread.tid, "fid": thread.fid, "posttableid": 0, "typeid": thread.typeid, "sortid": 0,
                   "readperm": 0, "price": 0, "author": thread.author, "authorid": thread.authorid,
                   "subject": thread.subject, "dateline": thread.dateline, "lastpost": thread.lastpost,
                   "lastposter": thread.lastposter, "views": thread.views, "replies": thread.replies,
                   "displayorder": thread.displayorder, "closed": int(thread.closed), "special": 0,
                   "attachment": int(any(p.attachments for p in thread.posts)), "allreplies": thread.replies,
                   "short_subject": thread.subject, "subjectenc": thread.subject},
        "fid": thread.fid, "postlist": [_post_item(ctx, p, n) for n, p in shown], "ppp": ppp,
        "forum_threadpay": "", "cache_custominfo_postno": ["楼主", "沙发", "板凳", "地板"], "comments": [],
        "forum": {"password": 0},
    }
    return envelope(ctx, variables, version=version)


def _sendreply(ctx: Ctx, version: str) -> web.Response:
    tid = int(ctx.gp.get("tid") or 0) if (ctx.gp.get("tid") or "0").isdigit() else 0
    outcome = core.reply(ctx, tid)
    if outcome is None:
        return envelope(ctx, {"allowperm": {"allowreply": 1, "allowupload": {}}}, version=version)
    return envelope(ctx, _ids(outcome), outcome, version)


def _newthread(ctx: Ctx, version: str) -> web.Response:
    fid = int(ctx.gp.get("fid") or 0) if (ctx.gp.get("fid") or "0").isdigit() else 0
    outcome = core.newthread(ctx, fid)
    if outcome is None:
        return envelope(ctx, {"allowperm": {"allowpost": 1}}, version=version)
    return envelope(ctx, _ids(outcome), outcome, version)


def _ids(outcome: core.Outcome) -> dict[str, Any]:
    return {k: outcome.values[k] for k in ("tid", "pid", "fid") if k in outcome.values}


def _secure(ctx: Ctx, version: str) -> web.Response:
    variables: dict[str, Any] = {}
    if ctx.forum.config.captcha and ctx.gp.get("type") in ("login", "post"):
        sechash = "S" + md5(ctx.saltkey + ctx.gp.get("type", ""))[:7]
        host = ctx.request.headers.get("Host", "")
        variables = {"sechash": sechash,
                     "seccode": f"http://{host}/api/mobile/index.php?module=seccode&sechash={sechash}&version={version}"}
    return envelope(ctx, variables, version=version)


def _forumindex(ctx: Ctx, version: str) -> web.Response:
    forums = []
    for b in ctx.forum.config.boards:
        threads = ctx.forum.state.board_threads(b.fid)
        forums.append({"fid": b.fid, "name": b.name, "threads": len(threads),
                       "posts": sum(len(t.visible_posts()) for t in threads), "todayposts": 0})
    catlist = [{"fid": 1, "name": "Discuz!", "forums": [str(b.fid) for b in ctx.forum.config.boards]}]
    return envelope(ctx, {"forumlist": forums, "catlist": catlist}, version=version)


def _checkpost(ctx: Ctx, version: str) -> web.Response:
    logged = ctx.user is not None
    return envelope(ctx, {"allowperm": {"allowpost": int(logged), "allowreply": int(logged),
                                        "allowupload": {"jpg": -1, "mp4": -1} if logged else {}}}, version=version)


_HANDLERS = {"check": _check, "login": _login, "forumdisplay": _forumdisplay, "newthreads": _newthreads,
             "viewthread": _viewthread, "sendreply": _sendreply, "newthread": _newthread, "secure": _secure,
             "forumindex": _forumindex, "checkpost": _checkpost}
