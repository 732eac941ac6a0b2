"""Pure parsers for Discuz! X pages and mobile-API JSON: strings and dicts in, ``aicut.forum.models`` records out.

No HTTP and no logging here; the client fetches, decodes (``detect_charset``) and hands the text over. Markup facts
are in DISCUZ.md (board rows ``tbody#stickthread_TID`` / ``#normalthread_TID``, posts ``div#post_PID`` →
``td.t_f#postmessage_PID``, the mobile envelope ``{"Variables": …}`` whose scalars are all strings).
"""

from __future__ import annotations

import dataclasses
import html as htmllib
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from lxml import etree
from lxml import html as lxml_html

from aicut.forum import post_text
from aicut.forum.models import ForumRequest, Post, ThreadPage, ThreadRow

__all__ = [
    "board_rows_html", "board_rows_json", "detect_charset", "formhash", "is_video_category", "request_from_thread",
    "thread_html", "thread_json", "tid_from_url",
]

# ---------------------------------------------------------------- small helpers

_TID_PATTERNS = (
    re.compile(r"[?&;]tid=(\d+)"),
    re.compile(r"[?&;]ptid=(\d+)"),
    re.compile(r"(?:^|/)thread-(\d+)-\d+-\d+\.html"),
    re.compile(r"(?:^|[/?])tid-(\d+)\.html"),          # archiver
)
_FID_QUERY = re.compile(r"[?&;]fid=(\d+)")
_FID_REWRITE = re.compile(r"(?:^|/)forum-(\d+)-\d+\.html")
_UID = re.compile(r"[?&;]uid=(\d+)|space-uid-(\d+)\.html")
_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?)?")
_TAGS = re.compile(r"<[^>]+>")


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return default


def _text(value: Any) -> str:
    """A JSON string field as plain text: tags dropped, entities decoded, outer whitespace stripped."""
    if value is None:
        return ""
    return htmllib.unescape(_TAGS.sub("", str(value))).replace("\u00a0", " ").strip()


def _norm(text: str) -> str:
    return " ".join((text or "").replace("\u00a0", " ").split())


def tid_from_url(url: str) -> int | None:
    """The thread id in a Discuz link: ``forum.php?mod=viewthread&tid=N``, ``thread-N-P-1.html``,
    ``forum.php?mod=redirect&goto=findpost&ptid=N&pid=…`` (absolute or relative, ``&amp;`` or ``&``)."""
    if not url:
        return None
    url = htmllib.unescape(url)
    for pattern in _TID_PATTERNS:
        m = pattern.search(url)
        if m:
            return int(m.group(1))
    return None


def _fid_from_url(url: str) -> int | None:
    """The board id of a board link: ``forum.php?mod=forumdisplay&fid=N…`` or ``forum-N-P.html``."""
    url = htmllib.unescape(url or "")
    m = _FID_QUERY.search(url) if "mod=forumdisplay" in url else _FID_REWRITE.search(url)
    return int(m.group(1)) if m else None


def _uid_from_url(url: str) -> int:
    m = _UID.search(htmllib.unescape(url or ""))
    return int(m.group(1) or m.group(2)) if m else 0


def parse_date(text: str, tz_offset_h: float = 8.0) -> int:
    """Unix seconds of the first absolute "Y-n-j[ H:i[:s]]" in a text, read in the site timezone; 0 if none."""
    m = _DATE.search(text or "")
    if not m:
        return 0
    y, mo, d, h, mi, s = (int(g) if g else 0 for g in m.groups())
    try:
        moment = datetime(y, mo, d, h, mi, s, tzinfo=timezone(timedelta(hours=tz_offset_h)))
    except ValueError:
        return 0
    return int(moment.timestamp())


def _document(html: str) -> etree._Element:
    # lxml refuses str input that carries an XML encoding declaration
    html = re.sub(r"^\s*<\?xml[^>]*\?>", "", html or "")
    if not html.strip():
        return lxml_html.fromstring("<html></html>")
    return lxml_html.document_fromstring(html)


def _classes(el: etree._Element) -> set[str]:
    return set((el.get("class") or "").split())


def _inner_html(el: etree._Element) -> str:
    parts = [htmllib.escape(el.text, quote=False) if el.text else ""]
    parts += [etree.tostring(child, encoding="unicode", method="html") for child in el]
    return "".join(parts)


# ---------------------------------------------------------------- board listings

def _row_date(td: etree._Element, tz_offset_h: float) -> int:
    for span in td.iter("span"):
        when = parse_date(span.get("title") or "", tz_offset_h)
        if when:
            return when
    for em in td.iter("em"):
        when = parse_date(em.text_content(), tz_offset_h)
        if when:
            return when
    return 0


def board_rows_html(html: str, fid: int, *, tz_offset_h: float = 8.0) -> list[ThreadRow]:
    """Thread rows of a desktop board page (``forum.php?mod=forumdisplay&fid=N`` or rewritten ``forum-N-P.html``),
    in page order. Sticky rows come first on page 1; separators and announcements are skipped. A moved thread's
    row yields the target tid (its title links there). Dates: the absolute date in a ``span[title]`` or in the text,
    in the site timezone; 0 when only a relative date is shown."""
    doc = _document(html)
    rows: list[ThreadRow] = []
    for tbody in doc.iter("tbody"):
        m = re.fullmatch(r"(stick|normal)thread_(\d+)", tbody.get("id") or "")
        if not m:
            continue
        title = next((a for a in tbody.iter("a") if "xst" in _classes(a)), None)
        if title is None:
            continue
        tid = tid_from_url(title.get("href") or "") or int(m.group(2))
        th = title.getparent()
        while th is not None and th.tag not in ("th", "td"):
            th = th.getparent()
        category = ""
        if th is not None:
            for em in th.iter("em"):
                link = next((a for a in em.iter("a") if "typeid=" in (a.get("href") or "")), None)
                if link is not None:
                    category = _norm(link.text_content()) or _norm(link.get("title") or "")
                    break
        author, author_id, dateline = "", 0, 0
        by = next((td for td in tbody.iter("td") if "by" in _classes(td) and td.find(".//cite") is not None), None)
        if by is not None:
            cite = by.find(".//cite")
            link = cite.find(".//a") if cite is not None else None
            if link is not None:
                author, author_id = _norm(link.text_content()), _uid_from_url(link.get("href") or "")
            elif cite is not None:
                author = _norm(cite.text_content())
            dateline = _row_date(by, tz_offset_h)
        rows.append(ThreadRow(tid=tid, fid=fid, subject=_norm(title.text_content()), author=author,
                              author_id=author_id, dateline=dateline, sticky=m.group(1) == "stick",
                              category=category.strip("[]【】 "), excerpt=""))
    return rows


def _variables(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    v = doc.get("Variables") if isinstance(doc, Mapping) else None
    return v if isinstance(v, Mapping) else (doc if isinstance(doc, Mapping) else {})


def _type_names(v: Mapping[str, Any]) -> dict[str, str]:
    """threadtypes.types {id: name} from ``Variables.threadtypes`` or ``Variables.forum.threadtypes``."""
    for holder in (v, v.get("forum") if isinstance(v.get("forum"), Mapping) else {}):
        types = holder.get("threadtypes") if isinstance(holder, Mapping) else None
        if isinstance(types, Mapping):
            names = types.get("types", types)
            if isinstance(names, Mapping):
                return {str(k): _text(n) for k, n in names.items() if not isinstance(n, (Mapping, list))}
            if isinstance(names, list):
                return {str(i): _text(n) for i, n in enumerate(names) if n and not isinstance(n, (Mapping, list))}
    return {}


def _items(value: Any) -> Iterable[Mapping[str, Any]]:
    if isinstance(value, Mapping):
        value = list(value.values())
    return [item for item in value or () if isinstance(item, Mapping)]


def board_rows_json(doc: Mapping[str, Any], fid: int | None = None) -> list[ThreadRow]:
    """Thread rows of a mobile-API answer: ``module=forumdisplay`` (``Variables.forum_threadlist``) or
    ``module=newthreads`` (``Variables.data``, each row with its own ``fid``). ``fid`` fills rows that have none."""
    v = _variables(doc)
    names = _type_names(v)
    forum = v.get("forum") if isinstance(v.get("forum"), Mapping) else {}
    default_fid = fid if fid is not None else _int(forum.get("fid") or v.get("fid"))
    rows: list[ThreadRow] = []
    for item in _items(v.get("forum_threadlist") if "forum_threadlist" in v else v.get("data")):
        tid = _int(item.get("tid"))
        if tid <= 0:
            continue
        typeid = str(item.get("typeid") or "0")
        rows.append(ThreadRow(
            tid=tid, fid=_int(item.get("fid"), 0) or default_fid or 0, subject=_text(item.get("subject")),
            author=_text(item.get("author")), author_id=_int(item.get("authorid")),
            dateline=_int(item.get("dbdateline")), sticky=_int(item.get("displayorder")) > 0,
            category=names.get(typeid, "") if typeid != "0" else "", excerpt=_text(item.get("message"))))
    return rows


# ---------------------------------------------------------------- thread pages

def _first_by_class(root: etree._Element, tag: str, cls: str) -> etree._Element | None:
    return next((el for el in root.iter(tag) if cls in _classes(el)), None)


def _post_author(post_div: etree._Element) -> tuple[str, int]:
    for authi in (el for el in post_div.iter("div") if "authi" in _classes(el)):
        for a in authi.iter("a"):
            uid = _uid_from_url(a.get("href") or "")
            if uid or "xw1" in _classes(a):
                return _norm(a.text_content()), uid
    for a in post_div.iter("a"):
        if "xw1" in _classes(a):
            return _norm(a.text_content()), _uid_from_url(a.get("href") or "")
    return "", 0


def _post_date(post_div: etree._Element, pid: int) -> int:
    em = next((el for el in post_div.iter("em") if el.get("id") == f"authorposton{pid}"), None)
    if em is None:
        return 0
    for span in em.iter("span"):
        when = parse_date(span.get("title") or "")
        if when:
            return when
    return parse_date(em.text_content())


def _floor_is_first(post_div: etree._Element, pid: int) -> bool | None:
    """True/False from the floor anchor (楼主, or a plain viewthread link), None when the post has none."""
    anchor = next((a for a in post_div.iter("a") if a.get("id") == f"postnum{pid}"), None)
    if anchor is None:
        return None
    if "楼主" in anchor.text_content():
        return True
    href = htmllib.unescape(anchor.get("href") or "")
    return "goto=findpost" not in href and "mod=redirect" not in href and bool(href)


def _thread_meta(doc: etree._Element, html: str) -> tuple[int, int, str]:
    """(tid, fid, category) from the page's JS variables, ``h1.ts`` and breadcrumb links."""
    tid = fid = 0
    m = re.search(r"\btid\s*=\s*parseInt\('(\d+)'\)", html)
    tid = int(m.group(1)) if m else 0
    m = re.search(r"\bfid\s*=\s*parseInt\('(\d+)'\)", html)
    fid = int(m.group(1)) if m else 0
    category = ""
    subject = doc.get_element_by_id("thread_subject", None)
    heading = subject.getparent() if subject is not None else None
    if heading is not None:
        for a in heading.iter("a"):
            href = a.get("href") or ""
            if "typeid=" in href:
                category = _norm(a.text_content()).strip("[]【】# ")
                fid = fid or (_fid_from_url(href) or 0)
                break
        if not category:   # types not listable: the name is plain text "[NAME]" before the subject
            before = [heading.text or ""]
            for child in heading:
                if child is subject:
                    break
                before.append(child.tail or "")
            m = re.search(r"\[([^\[\]]+)\]", "".join(before))
            category = _norm(m.group(1)) if m else ""
    if not fid:
        breadcrumb = doc.get_element_by_id("pt", None)
        for scope in ([breadcrumb] if breadcrumb is not None else []) + [doc]:
            fids = [f for a in scope.iter("a") if (f := _fid_from_url(a.get("href") or ""))]
            if fids:
                fid = fids[-1] if scope is breadcrumb else fids[0]
                break
    if not tid:
        link = next((a for a in doc.iter("a") if (a.get("id") or "").startswith("postnum")), None)
        tid = tid_from_url(link.get("href") or "") or 0 if link is not None else 0
    return tid, fid, category


def _printable_posts(doc: etree._Element) -> list[Post]:
    """Posts of ``action=printable``: ``<hr>``-separated blocks "作者: X  时间: D <br/> message"."""
    body = doc.find("body")
    if body is None:
        return []
    raw = _inner_html(body)
    blocks = re.split(r"<hr\b[^>]*>", raw, flags=re.I)[1:]
    posts: list[Post] = []
    for i, block in enumerate(blocks):
        head, _, message = block.partition("<br>")
        head_text = _norm(lxml_html.fragment_fromstring(head, create_parent="div").text_content()) if head else ""
        m = re.search(r"作者\s*[:：]\s*(.*?)\s*时间\s*[:：]", head_text)
        if not m:
            continue
        posts.append(Post(pid=0, author=m.group(1), author_id=0, message_html=message.strip(), first=i == 0,
                          dateline=parse_date(head_text.split("时间", 1)[-1])))
    return posts


def thread_html(html: str, tid: int | None = None) -> ThreadPage:
    """A desktop thread page (``forum.php?mod=viewthread&tid=T`` or ``thread-T-1-1.html``; also the simpler
    ``action=printable``). ``message_html`` is the ``t_f`` cell's inner HTML followed by the post's attachment list
    (``div.pattl``) when it has one, so attachments not placed inline are still seen."""
    doc = _document(html)
    page_tid, fid, category = _thread_meta(doc, html)
    subject_el = doc.get_element_by_id("thread_subject", None)
    subject = _norm(subject_el.text_content()) if subject_el is not None else ""
    posts: list[Post] = []
    floors: list[bool | None] = []
    for div in doc.iter("div"):
        m = re.fullmatch(r"post_(\d+)", div.get("id") or "")
        if not m:
            continue
        pid = int(m.group(1))
        cell = next((el for el in div.iter() if el.get("id") == f"postmessage_{pid}"), None)
        message = _inner_html(cell) if cell is not None else ""
        attachments = _first_by_class(div, "div", "pattl")
        if attachments is not None:
            message += "\n" + etree.tostring(attachments, encoding="unicode", method="html", with_tail=False)
        author, uid = _post_author(div)
        floors.append(_floor_is_first(div, pid))
        posts.append(Post(pid=pid, author=author, author_id=uid, message_html=message,
                          first=bool(floors[-1]), dateline=_post_date(div, pid)))
    if not posts:
        posts = _printable_posts(doc)
        floors = [None] * len(posts)
        if not subject:
            m = re.search(r"<b>\s*(?:标题|主题)\s*[:：]\s*</b>(.*?)<b>", html, re.S)
            subject = _text(m.group(1)) if m else ""
    if posts and not any(p.first for p in posts) and floors[0] is None:
        posts[0] = dataclasses.replace(posts[0], first=True)   # no floor anchors: the first post shown opens it
    if not subject:
        title = doc.find(".//title")
        subject = _norm(title.text_content()).split(" - ")[0] if title is not None else ""
    head = next((p for p in posts if p.first), None)
    return ThreadPage(tid=tid or page_tid, fid=fid, subject=subject, category=category,
                      author=head.author if head else "", author_id=head.author_id if head else 0,
                      posts=tuple(posts))


def _mobile_attachments(item: Mapping[str, Any]) -> str:
    """Links for a mobile post's non-image attachments (the API removes ``[attach]`` tags from the message)."""
    links = []
    for att in _items(item.get("attachments")):
        if str(att.get("isimage") or "0") not in ("0", ""):
            continue
        name = _text(att.get("filename"))
        url = f"{att.get('url') or ''}{att.get('attachment') or ''}"
        if not url and att.get("aid"):
            url = f"forum.php?mod=attachment&aid={att['aid']}"
        if url and name:
            links.append(f'<a href="{htmllib.escape(url)}">{htmllib.escape(name)}</a>')
    return "<br />".join(links)


def thread_json(doc: Mapping[str, Any]) -> ThreadPage:
    """A mobile-API ``module=viewthread`` answer. Non-image attachments of a post are appended to its
    ``message_html`` as links (the API lists them apart from the rendered message)."""
    v = _variables(doc)
    thread = v.get("thread") if isinstance(v.get("thread"), Mapping) else {}
    names = _type_names(v)
    typeid = str(thread.get("typeid") or "0")
    posts = []
    for item in _items(v.get("postlist")):
        message = str(item.get("message") or "")
        extra = _mobile_attachments(item)
        if extra:
            message = f"{message}<br />{extra}" if message else extra
        posts.append(Post(pid=_int(item.get("pid")), author=_text(item.get("author")),
                          author_id=_int(item.get("authorid")), message_html=message,
                          first=str(item.get("first") or "0") == "1", dateline=_int(item.get("dbdateline"))))
    return ThreadPage(tid=_int(thread.get("tid")), fid=_int(thread.get("fid") or v.get("fid")),
                      subject=_text(thread.get("subject")), category=names.get(typeid, "") if typeid != "0" else "",
                      author=_text(thread.get("author")), author_id=_int(thread.get("authorid")),
                      posts=tuple(posts))


# ---------------------------------------------------------------- the request

def request_from_thread(page: ThreadPage, base_url: str) -> ForumRequest:
    """What the thread's first post asks for: its sources, cover titles and core text (see ``post_text``)."""
    post = page.first_post
    message = post.message_html if post is not None else ""
    text = post_text.visible_text(message)
    covers = post_text.cover_lines(text)
    return ForumRequest(
        tid=page.tid, fid=page.fid, subject=page.subject, author=page.author or (post.author if post else ""),
        author_id=page.author_id or (post.author_id if post else 0), category=page.category,
        sources=post_text.extract_sources(message, base_url), cover_top=covers.top, cover_middle=covers.middle,
        cover_bottom=covers.bottom, core_text=post_text.core_text(text))


def is_video_category(category: str, video_categories: tuple[str, ...]) -> bool:
    """A thread without a category is a video job; otherwise one of the keywords must occur in the name."""
    category = (category or "").strip()
    return not category or any(k and k in category for k in video_categories)


# ---------------------------------------------------------------- charset and formhash

_CHARSET_IN_CT = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.I)
_CHARSET_SNIFF = (
    re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([\w.:-]+)", re.I),           # <meta charset> and http-equiv
    re.compile(rb"<\?xml[^>]+encoding\s*=\s*[\"']([\w.:-]+)", re.I),
    re.compile(rb"\bcharset\s*=\s*[\"']([\w.:-]+)[\"']", re.I),                   # var charset = 'gbk'
    re.compile(rb"\"Charset\"\s*:\s*\"([\w.:-]+)\"", re.I),                        # mobile API envelope
)


def _charset_name(name: str) -> str | None:
    name = name.strip().lower().replace("_", "-")
    if name in ("gbk", "gb2312", "gb18030", "cp936", "x-gbk", "euc-cn", "gb-2312"):
        return "gbk"
    if name in ("utf-8", "utf8"):
        return "utf-8"
    return None


def detect_charset(body: bytes, content_type: str | None = None) -> str:
    """"utf-8" or "gbk": the Content-Type charset, else what the document declares (``<meta charset>``, http-equiv,
    the ``charset = '…'`` JS variable, the XML prolog), else whether the bytes decode as UTF-8."""
    if content_type:
        m = _CHARSET_IN_CT.search(content_type)
        if m and (name := _charset_name(m.group(1))):
            return name
    head = body[:8192]
    for pattern in _CHARSET_SNIFF:
        m = pattern.search(head)
        if m and (name := _charset_name(m.group(1).decode("ascii", "replace"))):
            return name
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return "gbk"
    return "utf-8"


_FORMHASH = (
    re.compile(r"<input[^>]*name=[\"']formhash[\"'][^>]*value=[\"']([0-9a-zA-Z]+)[\"']", re.I),
    re.compile(r"<input[^>]*value=[\"']([0-9a-zA-Z]+)[\"'][^>]*name=[\"']formhash[\"']", re.I),
    re.compile(r"[?&;]formhash=([0-9a-zA-Z]+)"),
    re.compile(r"[\"']?formhash[\"']?\s*[:=]\s*[\"']([0-9a-zA-Z]+)[\"']"),
)


def formhash(html: str) -> str | None:
    """The page's formhash: the hidden input, ``formhash=`` in a link (logout), or ``"formhash":"…"`` (JSON/JS)."""
    for pattern in _FORMHASH:
        m = pattern.search(html or "")
        if m:
            return m.group(1)
    return None
