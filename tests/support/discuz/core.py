"""What login, reply and new thread do, shared by the desktop pages and the mobile API; each returns an Outcome."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from .config import Account
from .context import COOKIE_DAYS30, Ctx
from .lang import GROUP_TITLES, STAFF_GROUPS
from .state import Post


@dataclass
class Outcome:
    """A showmessage() call: id, forward URL (set on success), values, and whether a login would help."""

    msgid: str
    url: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    login_required: bool = False
    status: int = 200
    account: Account | None = None


def _find_account(ctx: Ctx, username: str, loginfield: str) -> Account | None:
    cfg = ctx.forum.config
    if loginfield == "uid":
        return cfg.account(uid=int(username)) if username.isdigit() else None
    account = cfg.account(username=username)
    if account is None and loginfield == "auto" and username.isdigit():
        account = cfg.account(uid=int(username))
    return account


def login(ctx: Ctx) -> Outcome:
    """logging_ctl::on_login after submitcheck('loginsubmit', 1, seccode): strike, password, question, cookies."""
    cfg, state, gp = ctx.forum.config, ctx.forum.state, ctx.gp
    username = gp.get("username", "").strip()
    state.count_attempt(username)
    if cfg.captcha:
        return Outcome("submit_seccode_invalid")
    remaining = cfg.login_strike_after - state.failures(username)
    if remaining <= 0:
        return Outcome("login_strike")
    password = gp.get("password", "")
    if not password or re.search(r"['\"\\]", password):
        return Outcome("profile_passwd_illegal")
    account = _find_account(ctx, username, gp.get("loginfield", "username"))
    fail = "login_invalid"
    if account is not None and account.password == password:
        if not account.questionid:
            fail = ""
        else:
            qid, answer = gp.get("questionid", "0"), gp.get("answer", "")
            if qid == str(account.questionid) and answer == account.answer:
                fail = ""
            else:
                fail = "login_question_empty" if qid in ("", "0") or answer == "" else "login_question_invalid"
    if fail or account is None:
        state.add_failure(username)
        return Outcome(fail, values={"loginperm": remaining - 1} if fail == "login_invalid" else {})
    ctx.user = account
    ctx.set_cookie("auth", ctx.auth_value(account), COOKIE_DAYS30 if gp.get("cookietime") else None, httponly=True)
    ctx.set_cookie("lastcheckfeed", f"{account.uid}%7C{int(time.time())}", COOKIE_DAYS30)
    referer = gp.get("referer") or "forum.php"
    if account.frozen:
        return Outcome("location_login_outofdate", "home.php?mod=spacecp&ac=profile&op=password", account=account)
    values = {"username": account.username, "usergroup": GROUP_TITLES.get(account.groupid, "注册会员"),
              "uid": account.uid, "groupid": account.groupid, "syn": 0}
    return Outcome("login_succeed", referer, values, account=account)


def _submitcheck(ctx: Ctx) -> Outcome | None:
    """helper_form::submitcheck for a POST form (formhash + same-host Referer), then the captcha."""
    if not ctx.is_post or not ctx.gp.get("formhash") or ctx.gp["formhash"] != ctx.formhash() \
            or ctx.foreign_referer():
        return Outcome("submit_invalid")
    if ctx.forum.config.captcha:
        return Outcome("submit_seccode_invalid")
    return None


def _checkpost(ctx: Ctx, subject: str, message: str) -> Outcome | None:
    """function_post.php checkpost(): subject length, then message size (staff are exempt)."""
    cfg = ctx.forum.config
    if len(subject) > 80:
        return Outcome("post_subject_toolong")
    assert ctx.user is not None
    if ctx.user.groupid in STAFF_GROUPS:
        return None
    size = len(re.sub(r"\[quote\].+?\[/quote\]", "", message, flags=re.I | re.S).encode(cfg.charset, "replace"))
    if cfg.maxpostsize and len(message.encode(cfg.charset, "replace")) > cfg.maxpostsize:
        return Outcome("post_message_toolong", values={"maxpostsize": cfg.maxpostsize})
    if cfg.minpostsize and size < cfg.minpostsize:
        return Outcome("post_message_tooshort", values={"minpostsize": cfg.minpostsize})
    return None


def _flood(ctx: Ctx) -> Outcome | None:
    cfg = ctx.forum.config
    assert ctx.user is not None
    if ctx.user.groupid in STAFF_GROUPS or not cfg.floodctrl:
        return None
    last = ctx.forum.state.last_post_at.get(ctx.user.uid)
    if last is not None and time.time() - last < cfg.floodctrl:
        return Outcome("post_flood_ctrl", values={"floodctrl": cfg.floodctrl})
    return None


def _bind(ctx: Ctx, post: Post) -> None:
    descriptions: dict[int, str] = {}
    for key, value in ctx.gp.items():
        m = re.fullmatch(r"attachnew\[(\d+)\]\[\w+\]", key)
        if m:
            descriptions.setdefault(int(m.group(1)), "")
            if key.endswith("[description]"):
                descriptions[int(m.group(1))] = value
    assert ctx.user is not None
    # only attachnew[AID][...] binds an upload; a bare [attach]AID[/attach] without it renders as nothing
    ctx.forum.state.bind_attachments(post, ctx.user.uid, sorted(descriptions), descriptions)


def reply(ctx: Ctx, tid: int) -> Outcome | None:
    """post_newreply.php; None = not submitted (show the editor)."""
    state, cfg = ctx.forum.state, ctx.forum.config
    thread = state.thread(tid)
    if thread is None:
        return Outcome("thread_nonexistence")
    if ctx.user is None:
        return Outcome("replyperm_login_nopermission", login_required=True)
    if not ctx.gp.get("replysubmit"):
        return None
    if (bad := _submitcheck(ctx)) is not None:
        return bad
    if thread.closed:
        return Outcome("post_thread_closed")
    message = ctx.gp.get("message", "").strip()
    if not message:
        return Outcome("post_sm_isnull")
    if (bad := _checkpost(ctx, ctx.gp.get("subject", "").strip(), message)) is not None:
        return bad
    if (bad := _flood(ctx)) is not None:
        return bad
    moderated = cfg.moderate_replies and ctx.user.groupid not in STAFF_GROUPS
    post = state.add_post(tid, authorid=ctx.user.uid, author=ctx.user.username, message=message,
                          subject=ctx.gp.get("subject", "").strip(), invisible=-2 if moderated else 0)
    state.last_post_at[ctx.user.uid] = time.time()
    _bind(ctx, post)
    values = {"fid": thread.fid, "tid": tid, "pid": post.pid, "from": "", "sechash": ""}
    if moderated:
        return Outcome("post_reply_mod_succeed", f"forum.php?mod=viewthread&tid={tid}", values)
    page = -(-len(thread.visible_posts()) // cfg.ppp)
    url = f"forum.php?mod=viewthread&tid={tid}&pid={post.pid}&page={page}&extra=#pid{post.pid}"
    return Outcome("post_reply_succeed", url, values)


def newthread(ctx: Ctx, fid: int) -> Outcome | None:
    """post_newthread.php; None = not submitted (show the editor)."""
    state, cfg = ctx.forum.state, ctx.forum.config
    board = cfg.board(fid)
    if board is None:
        return Outcome("forum_nonexistence")
    if ctx.user is None:
        return Outcome("postperm_login_nopermission", login_required=True)
    if not ctx.gp.get("topicsubmit"):
        return None
    if (bad := _submitcheck(ctx)) is not None:
        return bad
    subject, message = ctx.gp.get("subject", "").strip(), ctx.gp.get("message", "").strip()
    if not subject or not message:
        return Outcome("post_sm_isnull")
    typeid = int(ctx.gp.get("typeid") or 0) if (ctx.gp.get("typeid") or "0").isdigit() else 0
    if typeid not in board.types:
        if board.types_required:
            return Outcome("post_type_isnull")
        typeid = 0
    if (bad := _checkpost(ctx, subject, message)) is not None:
        return bad
    if (bad := _flood(ctx)) is not None:
        return bad
    thread = state.add_thread(fid=fid, typeid=typeid, subject=subject, message=message, authorid=ctx.user.uid,
                              author=ctx.user.username)
    state.last_post_at[ctx.user.uid] = time.time()
    _bind(ctx, thread.posts[0])
    values = {"fid": fid, "tid": thread.tid, "pid": thread.posts[0].pid, "coverimg": "", "sechash": ""}
    return Outcome("post_newthread_succeed", f"forum.php?mod=viewthread&tid={thread.tid}&extra=", values)
