"""BBCode → HTML the way Discuz! renders it (function_discuzcode.php) and the mobile API (mobile_discuzcode).

Only ``[url]``, ``[url=]``, ``[media]``, ``[attach]``, ``[img]`` and a few text styles become markup; everything else
is HTML-escaped, and a bare URL stays plain text (Discuz never links it server-side).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass

_SCHEME = re.compile(r"^(https?|ftp|gopher|news|telnet|rtsp|mms|callto|bctp|thunder|qqdl|synacast)://|^mailto:",
                     re.I)


@dataclass(frozen=True)
class AttachRef:
    """What a page needs to show one attachment."""

    aid: int
    filename: str
    isimage: bool
    url: str  # forum.php?mod=attachment&aid=<encoded>


def _fix_url(url: str) -> str:
    url = url.strip()
    return url if _SCHEME.match(url) else "http://" + url


def _short(text: str) -> str:
    return text[:45] + " ... " + text[-10:] if len(text) > 65 else text


def _styles(text: str) -> str:
    for tag, out in (("b", "strong"), ("i", "i"), ("u", "u")):
        text = re.sub(rf"\[{tag}\](.*?)\[/{tag}\]", rf"<{out}>\1</{out}>", text, flags=re.I | re.S)
    text = re.sub(r"\[color=([#\w]+)\](.*?)\[/color\]", r'<font color="\1">\2</font>', text, flags=re.I | re.S)
    text = re.sub(r"\[size=(\d+)\](.*?)\[/size\]", r'<font size="\1">\2</font>', text, flags=re.I | re.S)
    text = re.sub(r"\[quote\](.*?)\[/quote\]", r'<div class="quote"><blockquote>\1</blockquote></div>', text,
                  flags=re.I | re.S)
    return text


def _media_id(counter: list[int], kind: str) -> str:
    counter[0] += 1
    return f"{kind}_{counter[0]:06d}"


def render_desktop(message: str, attachments: dict[int, AttachRef] | None = None) -> tuple[str, set[int]]:
    """The ``td.t_f`` body for ``message``; also the aids the message itself placed (the rest go in a list)."""
    attachments = attachments or {}
    used: set[int] = set()
    text = html.escape(message, quote=True)
    counter = [0]

    def url_plain(m: re.Match[str]) -> str:
        href = _fix_url(m.group(1))
        return f'<a href="{href}" target="_blank">{_short(m.group(1).strip())}</a>'

    def url_named(m: re.Match[str]) -> str:
        return f'<a href="{_fix_url(m.group(1))}" target="_blank">{m.group(2)}</a>'

    def media(m: re.Match[str]) -> str:
        kind, width, height = (m.group(1) or "x").lower(), m.group(2) or "500", m.group(3) or "375"
        url = m.group(4).strip()
        mid = _media_id(counter, kind)
        return (f'<ignore_js_op><div id="{mid}" class="media"><div id="{mid}_container" class="media_container">'
                f'</div><div class="media_tips"><a href="{url}" target="_blank">如果无法播放，请点击此处在新窗口打开</a>'
                f'</div></div><script type="text/javascript">detectPlayer("{mid}", "{kind}", "{url}", "{width}", '
                f'"{height}");</script></ignore_js_op>')

    def attach(m: re.Match[str]) -> str:
        aid = int(m.group(1))
        ref = attachments.get(aid)
        if ref is None:
            return ""
        used.add(aid)
        return attach_html(ref)

    text = re.sub(r"\[url\](.+?)\[/url\]", url_plain, text, flags=re.I | re.S)
    text = re.sub(r"\[url=([^\]]+)\](.+?)\[/url\]", url_named, text, flags=re.I | re.S)
    text = re.sub(r"\[media(?:=(\w+),(\d+),(\d+))?\](.+?)\[/media\]", media, text, flags=re.I | re.S)
    text = re.sub(r"\[img(?:=\d+,\d+)?\](.+?)\[/img\]", r'<img src="\1" border="0" alt="" />', text,
                  flags=re.I | re.S)
    text = re.sub(r"\[attach\](\d+)\[/attach\]", attach, text, flags=re.I)
    text = _styles(text)
    return text.replace("\r\n", "\n").replace("\n", "<br />\r\n"), used


def attach_html(ref: AttachRef) -> str:
    """One attachment as viewthread shows it: an image (real URL in ``file``/``zoomfile``) or a file link."""
    if ref.isimage:
        return (f'<ignore_js_op><img id="aimg_{ref.aid}" aid="{ref.aid}" src="static/image/common/none.gif" '
                f'zoomfile="{html.escape(ref.url)}" file="{html.escape(ref.url)}" class="zoom" width="400" '
                f'inpost="1" alt="{html.escape(ref.filename)}" title="{html.escape(ref.filename)}" /></ignore_js_op>')
    return (f'<ignore_js_op><span style="white-space: nowrap" id="attach_{ref.aid}">'
            f'<img src="static/image/filetype/av.gif" border="0" class="vm" alt="" />'
            f'<a href="{html.escape(ref.url)}" target="_blank">{html.escape(ref.filename)}</a></span></ignore_js_op>')


def render_mobile(message: str) -> str:
    """``postlist[].message`` of the mobile API: links without target, ``[media]`` as ``<a class="media">``."""
    text = html.escape(message, quote=True)
    sub: Callable[..., str] = re.sub
    text = sub(r"\[url\](.+?)\[/url\]", lambda m: f'<a href="{_fix_url(m.group(1))}">{m.group(1).strip()}</a>',
               text, flags=re.I | re.S)
    text = sub(r"\[url=([^\]]+)\](.+?)\[/url\]", lambda m: f'<a href="{_fix_url(m.group(1))}">{m.group(2)}</a>',
               text, flags=re.I | re.S)
    text = sub(r"\[media(?:=\w+,\d+,\d+)?\](.+?)\[/media\]",
               lambda m: f'<a class="media" href="{m.group(1).strip()}">{m.group(1).strip()}</a>', text,
               flags=re.I | re.S)
    text = sub(r"\[img(?:=\d+,\d+)?\](.+?)\[/img\]", r'<img src="\1" />', text, flags=re.I | re.S)
    text = _styles(text)
    return text.replace("\r\n", "\n").replace("\n", "<br />")


def plain_text(message: str, limit: int = 500) -> str:
    """The X3.5 thread-list ``message``: BBCode and HTML stripped, URLs kept, at most ``limit`` characters."""
    text = re.sub(r"\[attach\]\d+\[/attach\]", "", message, flags=re.I)
    text = re.sub(r"\[/?[a-z]+(?:=[^\]]*)?\]", "", text, flags=re.I)
    text = re.sub(r"<[^>]+>", "", text)
    return text.strip()[:limit]
