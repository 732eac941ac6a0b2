"""The page frame every desktop page shares (header with the user box and a formhash, footer), dates and links."""

from __future__ import annotations

import html
import time

from .context import Ctx
from .lang import GROUP_TITLES


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def local(ts: int, ctx: Ctx) -> time.struct_time:
    return time.gmtime(ts + ctx.forum.config.timeoffset * 3600)


def absdate(ts: int, ctx: Ctx, *, with_time: bool = True) -> str:
    """Discuz ``Y-n-j H:i`` (``with_time``) or ``Y-n-j``."""
    t = local(ts, ctx)
    day = f"{t.tm_year}-{t.tm_mon}-{t.tm_mday}"
    return f"{day} {t.tm_hour:02d}:{t.tm_min:02d}" if with_time else day


def human_date(ts: int, ctx: Ctx) -> str:
    """dgmdate(ts, 'u'): "3&nbsp;秒前", "2&nbsp;小时前", "昨天&nbsp;10:00", "3&nbsp;天前", else absolute."""
    if not ctx.forum.config.relative_dates:
        return absdate(ts, ctx)
    now = int(time.time())
    offset = ctx.forum.config.timeoffset * 3600
    today = (now + offset) // 86400 * 86400 - offset
    diff = now - ts
    hm = f"{local(ts, ctx).tm_hour:02d}:{local(ts, ctx).tm_min:02d}"
    if ts >= today:
        if diff > 3600:
            return f"{diff // 3600}&nbsp;小时前"
        if diff > 60:
            return f"{diff // 60}&nbsp;分钟前"
        if diff > 0:
            return f"{diff}&nbsp;秒前"
        if diff == 0:
            return "刚刚"
        return absdate(ts, ctx)
    days = (today - ts) // 86400 + 1
    if days == 1:
        return f"昨天&nbsp;{hm}"
    if days == 2:
        return f"前天&nbsp;{hm}"
    if days <= 7:
        return f"{days}&nbsp;天前"
    return absdate(ts, ctx)


def date_span(ts: int, ctx: Ctx, *, title_time: bool = True) -> str:
    """``<span title="absolute">relative</span>``, or just the absolute date when relative dates are off."""
    if not ctx.forum.config.relative_dates:
        return absdate(ts, ctx, with_time=title_time)
    return f'<span title="{absdate(ts, ctx, with_time=title_time)}">{human_date(ts, ctx)}</span>'


def forum_link(ctx: Ctx, fid: int, page: int = 1) -> str:
    if ctx.forum.config.rewrite:
        return f"forum-{fid}-{page}.html"
    return f"forum.php?mod=forumdisplay&fid={fid}" + (f"&page={page}" if page > 1 else "")


def thread_link(ctx: Ctx, tid: int, page: int = 1) -> str:
    if ctx.forum.config.rewrite:
        return f"thread-{tid}-{page}-1.html"
    return f"forum.php?mod=viewthread&tid={tid}&extra=page%3D1" + (f"&page={page}" if page > 1 else "")


def _userbox(ctx: Ctx) -> str:
    user = ctx.user
    if user is None:
        return ('<form method="post" autocomplete="off" id="lsform" action="member.php?mod=logging&amp;'
                'action=login&amp;loginsubmit=yes&amp;infloat=yes&amp;lssubmit=yes">'
                '<input type="text" name="username" id="ls_username" class="px vm xg1" />'
                '<input type="password" name="password" id="ls_password" class="px vm" />'
                '<input type="hidden" name="quickforward" value="yes" /><input type="hidden" name="handlekey" '
                'value="ls" /><button type="submit" class="pn vm"><em>登录</em></button>'
                '<a href="member.php?mod=logging&amp;action=login">登录</a></form>')
    return (f'<div id="um"><p><strong class="vwmy"><a href="home.php?mod=space&amp;uid={user.uid}" target="_blank" '
            f'title="访问我的空间">{esc(user.username)}</a></strong><span class="pipe">|</span>'
            f'<a href="member.php?mod=logging&amp;action=logout&amp;formhash={ctx.formhash()}">退出</a></p>'
            f'<p><a href="home.php?mod=spacecp&amp;ac=usergroup" id="g_upmine">用户组: '
            f'{GROUP_TITLES.get(user.groupid, "注册会员")}</a></p></div>')


def page(ctx: Ctx, title: str, body: str) -> str:
    """A whole desktop page around ``body``."""
    cfg = ctx.forum.config
    host = ctx.request.headers.get("Host", "127.0.0.1")
    return f"""<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml">
<head>
<meta http-equiv="Content-Type" content="text/html; charset={cfg.charset}" />
<title>{esc(title)} - {esc(cfg.bbname)} - Powered by Discuz!</title>
<meta name="generator" content="Discuz! {cfg.version}" />
<base href="http://{esc(host)}/" />
<script type="text/javascript">var STYLEID = '1', STATICURL = 'static/', IMGDIR = 'static/image/common', VERHASH = 'aCt', charset = '{cfg.charset}', discuz_uid = '{ctx.uid}', cookiepre = '{cfg.cookiepre}', cookiedomain = '', cookiepath = '/', showusercard = '1', attackevasive = '0', disallowfloat = '', creditnotice = '', defaultstyle = '', REPORTURL = '', SITEURL = 'http://{esc(host)}/', JSPATH = 'static/js/';</script>
</head>
<body id="nv_forum" class="pg_forum">
<div id="hd"><div class="wp"><div class="hdc cl"><h2><a href="./" title="{esc(cfg.bbname)}">{esc(cfg.bbname)}</a></h2>
{_userbox(ctx)}
</div></div></div>
<div id="scbar" class="cl"><form id="scbar_form" method="post" autocomplete="off" action="search.php?searchsubmit=yes" target="_blank"><input type="hidden" name="mod" id="scbar_mod" value="search" /><input type="hidden" name="formhash" value="{ctx.formhash()}" /><input type="hidden" name="srchtype" value="title" /></form></div>
<div id="wp" class="wp">
{body}
</div>
<div id="ft" class="wp cl"><div id="flk" class="y"><p><a href="forum.php?mobile=yes">手机版</a></p></div><div id="frt"><p>Powered by <strong><a href="https://www.discuz.vip" target="_blank">Discuz!</a></strong> <em>{cfg.version}</em></p></div></div>
</body>
</html>
"""
