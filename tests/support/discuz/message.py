"""showmessage() in its three desktop shapes (HTML page, inajax XML, ajaxdata=json) and the System Error page."""

from __future__ import annotations

import html
import re
import time
from typing import Any

from aiohttp import web

from .context import Ctx
from .lang import REQUEST_TAINTING, message_text
from .layout import page


def _js(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'").replace("\r", "").replace("\n", "\\n")


def values_js(values: dict[str, Any]) -> str:
    """``{'fid':'2','tid':'1'}``, the way function_message.php writes the values for the JS handlers."""
    return "{" + ",".join(f"'{_js(str(k))}':'{_js(str(v))}'" for k, v in values.items()) + "}"


def showmessage(ctx: Ctx, msgid: str, url: str = "", values: dict[str, Any] | None = None, *,
                status: int = 200) -> web.Response:
    """Answer like dshowmessage: success iff ``url`` is given (the JS handler is then succeedhandle_)."""
    values = values or {}
    text = message_text(msgid, values)
    gp = ctx.gp
    if gp.get("ajaxdata") == "json":
        return ctx.json({"message": text, "data": values}, status=status)
    handlekey = gp.get("handlekey", "")
    if not re.fullmatch(r"\w*", handlekey):
        handlekey = ""
    if gp.get("inajax"):
        if url:
            script = (f"if(typeof succeedhandle_{handlekey}=='function') {{succeedhandle_{handlekey}('{_js(url)}', "
                      f"'{_js(text)}', {values_js(values)});}}")
        else:
            script = (f"if(typeof errorhandle_{handlekey}=='function') {{errorhandle_{handlekey}('{_js(text)}', "
                      f"{values_js(values)});}}")
        body = (f'<?xml version="1.0" encoding="{ctx.charset}"?><root><![CDATA[{text}'
                f'<script type="text/javascript" reload="1">{script}</script>]]></root>')
        response = ctx.xml(body)
        response.set_status(status)
        return response
    kind = "alert_right" if url else "alert_error"
    forward = ""
    if url:
        esc = html.escape(url)
        forward = (f'<script type="text/javascript" reload="1">setTimeout("window.location.href =\'{_js(url)}\';", '
                   f'3000);</script><p class="alert_btnleft"><a href="{esc}">如果您的浏览器没有自动跳转，请点击此链接</a></p>')
    body = (f'<div id="ct" class="wp cl w"><div class="nfl"><div class="f_c altw"><div id="messagetext" '
            f'class="{kind}"><p>{text}</p>{forward}</div></div></div></div>')
    return ctx.html(page(ctx, "提示信息", body), status=status)


def system_error(ctx: Ctx, text: str = REQUEST_TAINTING) -> web.Response:
    """discuz_error::system_error: a bare HTML page, not a showmessage (no JSON, no XML, whatever was asked)."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() + 8 * 3600))
    body = (f'<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" '
            f'"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n<html>\n<head>\n <title>System Error</title>\n'
            f' <meta http-equiv="Content-Type" content="text/html; charset={ctx.charset}" />\n'
            f' <meta name="ROBOTS" content="NOINDEX,NOFOLLOW,NOARCHIVE" />\n</head>\n<body>\n<div id="container">\n'
            f'<h1>Discuz! System Error</h1>\n<p>Time: {when} +0800 IP: 127.0.0.1 BackTraceID: 0</p>\n'
            f"<div class='info'><li>{text}</li></div>\n</div>\n</body>\n</html>")
    return ctx.html(body)
