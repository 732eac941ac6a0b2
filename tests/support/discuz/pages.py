"""Desktop page bodies: index, login form, forumdisplay, viewthread, post editor (templates in template/default)."""

from __future__ import annotations

import base64
import time

from .bbcode import AttachRef, attach_html, render_desktop
from .config import Board
from .context import Ctx, md5
from .lang import FLOORS, SECURITY_QUESTIONS
from .layout import date_span, esc, forum_link, page, thread_link
from .state import Post, Thread


def aid_encode(ctx: Ctx, aid: int, tid: int = 0) -> str:
    """aidencode(): ``base64(aid|md5-part|timestamp|uid|tid)``; the attachment handler accepts it or a bare aid."""
    now = int(time.time())
    part = md5(f"{aid}{md5(ctx.forum.config.authkey)}{now}{ctx.uid}")[:8]
    return base64.b64encode(f"{aid}|{part}|{now}|{ctx.uid}|{tid}".encode()).decode()


def attach_refs(ctx: Ctx, post: Post) -> dict[int, AttachRef]:
    refs = {}
    for aid in post.attachments:
        att = ctx.forum.state.attachments.get(aid)
        if att is not None:
            url = f"forum.php?mod=attachment&aid={aid_encode(ctx, aid, post.tid)}"
            refs[aid] = AttachRef(aid, att.filename, att.isimage, url)
    return refs


def _pager(links: list[tuple[int, str]], current: int) -> str:
    if len(links) <= 1:
        return ""
    parts = [f"<strong>{n}</strong>" if n == current else f'<a href="{esc(href)}">{n}</a>' for n, href in links]
    if current < len(links):
        parts.append(f'<a href="{esc(links[current][1])}" class="nxt">下一页</a>')
    return f'<div class="pg">{"".join(parts)}</div>'


def index_page(ctx: Ctx) -> str:
    rows = "".join(f'<tr><td class="fl_g"><h2><a href="{esc(forum_link(ctx, b.fid))}">{esc(b.name)}</a></h2>'
                   f"</td><td class=\"fl_i\">{len(ctx.forum.state.board_threads(b.fid))}</td></tr>"
                   for b in ctx.forum.config.boards)
    return page(ctx, "论坛", f'<div id="ct" class="wp cl"><div class="bm bmw fl"><table class="fl_tb">{rows}'
                          f"</table></div></div>")


def login_page(ctx: Ctx) -> str:
    hash_ = md5(ctx.saltkey)[:4]
    questions = "".join(f'<option value="{k}">{v}</option>' for k, v in SECURITY_QUESTIONS.items())
    seccode = ""
    if ctx.forum.config.captcha:
        seccode = (f'<div class="rfm"><input name="seccodehash" type="hidden" value="cS{hash_}" />'
                   f'<input name="seccodemodid" type="hidden" value="member::logging" />验证码 '
                   f'<input name="seccodeverify" id="seccodeverify_cS{hash_}" type="text" class="px vm" /></div>')
    body = f"""<div id="ct" class="ptm wp w cl"><div class="mn"><div class="bm" id="main_message"><div class="bm_h bbs"><h3 class="xs2">登录</h3></div>
<div id="main_messaqge_L{hash_}"><div id="layer_login_L{hash_}"><div class="c cl">
<form method="post" autocomplete="off" name="login" id="loginform_L{hash_}" class="cl" action="member.php?mod=logging&amp;action=login&amp;loginsubmit=yes&amp;loginhash=L{hash_}">
<input type="hidden" name="formhash" value="{ctx.formhash()}" />
<input type="hidden" name="referer" value="forum.php" />
<div class="rfm"><select name="loginfield" id="loginfield_L{hash_}"><option value="username">用户名</option><option value="uid">UID</option><option value="email">Email</option></select>
<input type="text" name="username" id="username_L{hash_}" autocomplete="off" size="30" class="px p_fre" value="" /></div>
<div class="rfm"><label for="password3_L{hash_}">密码:</label><input type="password" id="password3_L{hash_}" name="password" size="30" class="px p_fre" /></div>
<div class="rfm"><select id="loginquestionid_L{hash_}" width="213" name="questionid"><option value="0">安全提问(未设置请忽略)</option>{questions}</select>
<input type="text" name="answer" id="loginanswer_L{hash_}" autocomplete="off" size="30" class="px p_fre" /></div>
{seccode}
<div class="rfm"><label for="cookietime_L{hash_}"><input type="checkbox" class="pc" name="cookietime" id="cookietime_L{hash_}" value="2592000" />自动登录</label></div>
<div class="rfm mbw bw0"><button class="pn pnc" type="submit" name="loginsubmit" value="true"><strong>登录</strong></button></div>
</form></div></div></div></div></div></div>"""
    return page(ctx, "登录", body)


def _thread_row(ctx: Ctx, board: Board, t: Thread, lastvisit: int) -> str:
    kind = "stickthread" if t.displayorder > 0 else "normalthread"
    cls = "lock" if t.closed else ("new" if ctx.uid and t.lastpost > lastvisit else "common")
    typehtml = ""
    if t.typeid and t.typeid in board.types:
        typehtml = (f'<em>[<a href="forum.php?mod=forumdisplay&fid={board.fid}&amp;filter=typeid&amp;'
                    f'typeid={t.typeid}">{esc(board.types[t.typeid])}</a>]</em> ')
    link = esc(thread_link(ctx, t.tid))
    return f"""<tbody id="{kind}_{t.tid}">
<tr>
<td class="icn"><a href="{link}" title="新窗口打开" target="_blank"><img src="static/image/common/folder_{cls}.gif" /></a></td>
<th class="{cls}">
<a href="javascript:;" id="content_{t.tid}" class="showcontent y" title="更多操作" onclick="CONTENT_TID='{t.tid}';CONTENT_ID='{kind}_{t.tid}';showMenu({{'ctrlid':this.id,'menuid':'content_menu'}})"></a>
{typehtml}<a href="{link}" onclick="atarget(this)" class="s xst">{esc(t.subject)}</a>
</th>
<td class="by">
<cite><a href="home.php?mod=space&amp;uid={t.authorid}" c="1">{esc(t.author)}</a></cite>
<em><span>{date_span(t.dateline, ctx, title_time=False)}</span></em>
</td>
<td class="num"><a href="{link}" class="xi2">{t.replies}</a><em>{t.views}</em></td>
<td class="by">
<cite><a href="home.php?mod=space&username={esc(t.lastposter)}" c="1">{esc(t.lastposter)}</a></cite>
<em><a href="forum.php?mod=redirect&tid={t.tid}&goto=lastpost#lastpost">{date_span(t.lastpost, ctx)}</a></em>
</td>
</tr>
</tbody>"""


def sort_threads(threads: list[Thread], orderby: str) -> list[Thread]:
    key = {"dateline": lambda t: (t.dateline, t.tid), "replies": lambda t: (t.replies, t.tid),
           "views": lambda t: (t.views, t.tid)}.get(orderby, lambda t: (t.lastpost, t.tid))
    return sorted(threads, key=key, reverse=True)


def board_listing(ctx: Ctx, board: Board, page_no: int, tpp: int, orderby: str,
                  typeid: int = 0) -> tuple[list[Thread], list[Thread], int]:
    """(sticky threads shown on this page, normal threads of this page, number of pages)."""
    threads = ctx.forum.state.board_threads(board.fid)
    if typeid:
        threads = [t for t in threads if t.typeid == typeid]
    sticky = sort_threads([t for t in threads if t.displayorder > 0], orderby)
    normal = sort_threads([t for t in threads if t.displayorder == 0], orderby)
    pages = max(1, -(-len(normal) // tpp))
    return (sticky if page_no == 1 else []), normal[(page_no - 1) * tpp: page_no * tpp], pages


def forumdisplay_page(ctx: Ctx, board: Board, page_no: int, filters: dict[str, str]) -> str:
    orderby = filters.get("orderby", "lastpost") if filters.get("filter") == "author" else "lastpost"
    typeid = int(filters.get("typeid") or 0) if filters.get("filter") == "typeid" else 0
    sticky, normal, pages = board_listing(ctx, board, page_no, ctx.forum.config.tpp, orderby, typeid)
    try:
        lastvisit = int(ctx.cookie("lastvisit") or 0)
    except ValueError:
        lastvisit = 0
    rows = [_thread_row(ctx, board, t, lastvisit) for t in sticky]
    if sticky:
        rows.append('<tbody id="separatorline" class="emptb"><tr class="ts"><td>&nbsp;</td><th><b>版块主题</b></th>'
                    '<td>&nbsp;</td><td>&nbsp;</td><td>&nbsp;</td></tr></tbody>')
    rows += [_thread_row(ctx, board, t, lastvisit) for t in normal]
    extra = "".join(f"&{k}={v}" for k, v in filters.items() if v)
    if extra:
        links = [(n, f"forum.php?mod=forumdisplay&fid={board.fid}{extra}&page={n}") for n in range(1, pages + 1)]
    else:
        links = [(n, forum_link(ctx, board.fid, n)) for n in range(1, pages + 1)]
    pager = _pager(links, page_no)
    types = "".join(f'<li><a href="forum.php?mod=forumdisplay&amp;fid={board.fid}&amp;filter=typeid&amp;typeid={k}">'
                    f"{esc(v)}</a></li>" for k, v in board.types.items())
    body = f"""<div id="pt" class="bm cl"><div class="z"><a href="./" class="nvhm">{esc(ctx.forum.config.bbname)}</a><em>&raquo;</em><a href="forum.php">论坛</a><em>&rsaquo;</em><a href="{esc(forum_link(ctx, board.fid))}">{esc(board.name)}</a></div></div>
<div id="ct" class="wp cl"><div class="mn">
<div class="bm bml pbn"><div class="bm_h cl"><h1 class="xs2"><a href="{esc(forum_link(ctx, board.fid))}">{esc(board.name)}</a></h1></div></div>
<ul id="thread_types" class="ttp bm cl"><li id="ttp_all" class="xw1 a"><a href="forum.php?mod=forumdisplay&amp;fid={board.fid}">全部</a></li>{types}</ul>
<div id="pgt" class="bm bw0 pgs cl"><span id="fd_page_top">{pager}</span><a href="javascript:;" id="newspecial" onclick="showWindow('newthread', 'forum.php?mod=post&action=newthread&fid={board.fid}')" title="发新帖">发新帖</a></div>
<div id="threadlist" class="tl bm bmw">
<div class="th"><table cellspacing="0" cellpadding="0"><tr><th colspan="2"><div class="tf">
<a href="forum.php?mod=forumdisplay&amp;fid={board.fid}&amp;filter=author&amp;orderby=dateline" class="xi2">发帖时间</a>
<a href="forum.php?mod=forumdisplay&amp;fid={board.fid}&amp;filter=lastpost&amp;orderby=lastpost" class="xi2">最后发表</a>
</div></th><td class="by">作者</td><td class="num">回复/查看</td><td class="by">最后发表</td></tr></table></div>
<div class="bm_c">
<form method="post" autocomplete="off" name="moderate" id="moderate" action="forum.php?mod=topicadmin&amp;action=moderate&amp;fid={board.fid}&amp;infloat=yes&amp;nopost=yes">
<input type="hidden" name="formhash" value="{ctx.formhash()}" />
<input type="hidden" name="listextra" value="page%3D{page_no}" />
<table summary="forum_{board.fid}" cellspacing="0" cellpadding="0" id="threadlisttableid">
{''.join(rows)}
</table>
</form>
</div></div>
<div class="bm bw0 pgs cl"><span id="fd_page_bottom">{pager}</span></div>
</div></div>"""
    return page(ctx, board.name, body)


def _floor(ctx: Ctx, thread: Thread, post: Post, number: int) -> str:
    if post.first:
        return f'<a href="forum.php?mod=viewthread&tid={thread.tid}" id="postnum{post.pid}">楼主</a>'
    name = FLOORS[number - 1] if number <= len(FLOORS) else f"{number}<sup>#</sup>"
    return (f'<a href="forum.php?mod=redirect&goto=findpost&ptid={thread.tid}&pid={post.pid}" '
            f'id="postnum{post.pid}">{name}</a>')


def _post_html(ctx: Ctx, thread: Thread, post: Post, number: int) -> str:
    refs = attach_refs(ctx, post)
    message, used = render_desktop(post.message, refs)
    rest = [attach_html(ref) for aid, ref in refs.items() if aid not in used]
    pattl = f'<div class="pattl">{"".join(rest)}</div>' if rest else ""
    return f"""<div id="post_{post.pid}">
<table id="pid{post.pid}" class="plhin" summary="pid{post.pid}" cellspacing="0" cellpadding="0">
<tr>
<td class="pls" rowspan="2"><div id="favatar{post.pid}" class="pls favatar"><div class="pi"><div class="authi"><a href="home.php?mod=space&amp;uid={post.authorid}" target="_blank" class="xw1">{esc(post.author)}</a></div></div></div></td>
<td class="plc">
<div class="pi"><strong>{_floor(ctx, thread, post, number)}</strong>
<div class="pti"><div class="authi"><a href="home.php?mod=space&amp;uid={post.authorid}" target="_blank" class="xi2">{esc(post.author)}</a>
<em id="authorposton{post.pid}">发表于 {date_span(post.dateline, ctx)}</em>
<span class="pipe">|</span><a href="forum.php?mod=viewthread&amp;tid={thread.tid}&amp;page=1&amp;authorid={post.authorid}" rel="nofollow">只看该作者</a>
</div></div></div>
<div class="pct"><div class="pcb"><div class="t_fsz">
<table cellspacing="0" cellpadding="0"><tr><td class="t_f" id="postmessage_{post.pid}">
{message}</td></tr></table>
{pattl}
</div></div></div>
</td></tr>
</table>
</div>"""


def viewthread_page(ctx: Ctx, board: Board, thread: Thread, page_no: int, authorid: int) -> str:
    ppp = ctx.forum.config.ppp
    visible = thread.visible_posts()
    numbered = [(i + 1, p) for i, p in enumerate(visible)]
    if authorid:
        numbered = [(n, p) for n, p in numbered if p.authorid == authorid]
    pages = max(1, -(-len(numbered) // ppp))
    page_no = min(max(1, page_no), pages)
    shown = numbered[(page_no - 1) * ppp: page_no * ppp]
    if authorid:
        links = [(n, f"forum.php?mod=viewthread&tid={thread.tid}&page={n}&authorid={authorid}")
                 for n in range(1, pages + 1)]
    else:
        links = [(n, thread_link(ctx, thread.tid, n)) for n in range(1, pages + 1)]
    pager = _pager(links, page_no)
    typelink = ""
    if thread.typeid and thread.typeid in board.types:
        typelink = (f'<a href="forum.php?mod=forumdisplay&fid={board.fid}&filter=typeid&typeid={thread.typeid}">'
                    f"[{esc(board.types[thread.typeid])}]</a>\n")
    fastpost = ""
    if ctx.user is not None:
        fastpost = f"""<div id="f_pst" class="pl bm bmw"><form method="post" autocomplete="off" id="fastpostform" action="forum.php?mod=post&amp;action=reply&amp;fid={board.fid}&amp;tid={thread.tid}&amp;extra=page%3D1&amp;replysubmit=yes&amp;infloat=yes&amp;handlekey=fastpost">
<input type="hidden" name="formhash" value="{ctx.formhash()}" />
<input type="hidden" name="posttime" id="posttime" value="{int(time.time())}" />
<input type="hidden" name="usesig" value="" />
<input type="hidden" name="subject" value="  " />
<textarea rows="5" cols="80" name="message" id="fastpostmessage" class="pt"></textarea>
<button type="submit" name="replysubmit" id="fastpostsubmit" class="pn pnc vm" value="replysubmit" tabindex="5"><strong>发表回复</strong></button>
</form></div>"""
    body = f"""<script type="text/javascript">var fid = parseInt('{board.fid}'), tid = parseInt('{thread.tid}');</script>
<div id="pt" class="bm cl"><div class="z"><a href="./" class="nvhm">{esc(ctx.forum.config.bbname)}</a><em>&raquo;</em><a href="forum.php">论坛</a><em>&rsaquo;</em><a href="{esc(forum_link(ctx, board.fid))}">{esc(board.name)}</a><em>&rsaquo;</em> <a href="forum.php?mod=viewthread&amp;tid={thread.tid}">{esc(thread.subject)}</a></div></div>
<div id="ct" class="wp cl">
<div id="pgt" class="pgs mbm cl"><div class="pgt">{pager}</div><span class="y pgb"><a href="{esc(forum_link(ctx, board.fid))}">返回列表</a></span></div>
<div id="postlist" class="pl bm">
<table cellspacing="0" cellpadding="0"><tr><td class="pls ptn pbn"><div class="hm ptn"><span class="xg1">查看:</span> <span class="xi1">{thread.views}</span><span class="pipe">|</span><span class="xg1">回复:</span> <span class="xi1">{thread.replies}</span></div></td>
<td class="plc ptm pbn vwthd"><h1 class="ts">
{typelink}<span id="thread_subject">{esc(thread.subject)}</span>
</h1></td></tr></table>
{''.join(_post_html(ctx, thread, p, n) for n, p in shown)}
<div id="postlistreply" class="pl"><div id="post_new" class="viewthread_table" style="display: none"></div></div>
</div>
<form method="post" autocomplete="off" name="modactions" id="modactions"><input type="hidden" name="formhash" value="{ctx.formhash()}" /></form>
<div class="pgs mtm mbm cl">{pager}</div>
{fastpost}
</div>"""
    return page(ctx, thread.subject, body)


def post_editor_page(ctx: Ctx, board: Board, action: str, thread: Thread | None) -> str:
    """forum.php?mod=post&action=newthread|reply: the full editor with formhash, typeid select and upload hash."""
    if action == "reply" and thread is not None:
        target = f"forum.php?mod=post&amp;action=reply&amp;fid={board.fid}&amp;tid={thread.tid}&amp;extra=&amp;replysubmit=yes"
        submit = '<button type="submit" id="postsubmit" class="pn pnc" value="true" name="replysubmit"><span>参与/回复主题</span></button>'
        subject = '<input type="hidden" name="subject" value="" />'
    else:
        target = f"forum.php?mod=post&amp;action=newthread&amp;fid={board.fid}&amp;extra=&amp;topicsubmit=yes"
        submit = '<button type="submit" id="postsubmit" class="pn pnc" value="true" name="topicsubmit"><span>发表帖子</span></button>'
        options = "".join(f'<option value="{k}">{esc(v)}</option>' for k, v in board.types.items())
        typeselect = f'<select name="typeid" id="typeid"><option value="0">选择主题分类</option>{options}</select>' if board.types else ""
        subject = f'{typeselect}<input type="text" name="subject" id="subject" class="px" value="" />'
    body = f"""<div id="ct" class="ct2_a ct2_a_r wp cl">
<form method="post" autocomplete="off" id="postform" action="{target}" enctype="multipart/form-data">
<input type="hidden" name="formhash" id="formhash" value="{ctx.formhash()}" />
<input type="hidden" name="posttime" id="posttime" value="{int(time.time())}" />
<input type="hidden" name="wysiwyg" id="e_mode" value="0" />
{subject}
<textarea name="message" id="e_textarea" class="pt" rows="15"></textarea>
<input type="hidden" name="usesig" value="1" /><input type="hidden" name="allownoticeauthor" value="1" />
{submit}
</form>
<script type="text/javascript">
var upload = new SWFUpload({{
upload_url: "misc.php?mod=swfupload&action=swfupload&operation=upload&fid={board.fid}",
post_params: {{"uid" : "{ctx.uid}", "hash":"{ctx.swfupload_hash(ctx.uid)}"}},
file_size_limit : "102400",
file_upload_limit : 0
}});
</script>
</div>"""
    return page(ctx, "发表帖子" if action != "reply" else "参与/回复主题", body)


def profile_page(ctx: Ctx) -> str:
    return page(ctx, "密码安全", '<div id="ct" class="wp cl"><div class="bm"><h1 class="mt">密码安全</h1>'
                                '<p>您的帐号已被冻结，请修改密码或验证邮箱后继续。</p></div></div>')


def space_page(ctx: Ctx, uid: int) -> str:
    account = ctx.forum.config.account(uid=uid)
    name = esc(account.username) if account else "未知用户"
    return page(ctx, f"{name}的个人资料", f'<div id="ct" class="wp cl"><h2 class="mt">{name}</h2></div>')
