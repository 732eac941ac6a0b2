"""What a rendered Discuz post body says: its media links, its cover title lines and its free ("core") text.

Pure: an HTML fragment (the desktop ``t_f`` cell or the mobile ``message``) in, plain records out.

Decisions, so the watcher and the member see the same thing:

* **Sources** are collected in post order from ``<a href>`` links, ``[media]`` players (the ``detectPlayer(...)``
  script argument), ``<video>/<audio>/<source src>``, ``<img file|zoomfile|src>`` only when the file is a video, and
  bare URLs in the text (Discuz does not link them server-side). A link is a source when its name or URL path ends
  in a known video or audio extension; a forum attachment (``mod=attachment``) only when its *text* does (its URL
  has no extension). Duplicates (same absolute URL; attachments: same ``aid``) keep the first.
* **Cover lines**: ``封面标题上/中/下``, also ``封面上/中/下标题`` and the short ``封面上/中/下``, then a full-width
  ``：`` or ASCII ``:`` with optional spaces; the value runs to the end of the line or to the next cover marker.
  The first non-empty value of each position wins.
* **Core text**: the visible text, without links (a link's text is never core text), bare URLs, cover lines, the
  ``懒人智能剪辑`` tag wherever it appears, lines made only of ``#tag`` / ``#tag#`` / ``【…】`` tokens, player tips,
  attachment boxes (size, download count, upload date) and the "本帖最后由 … 编辑" edit stamp. Runs of spaces become
  one space; each non-empty line is kept, joined with ``\\n``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote_to_bytes, urljoin, urlsplit

from lxml import etree
from lxml import html as lxml_html

from aicut.forum.models import MediaLink, SourceKind

VIDEO_EXTS = frozenset({"mp4", "mov", "m4v", "mkv", "avi", "flv", "webm", "wmv", "3gp", "ts", "m3u8", "mpg", "mpeg"})
AUDIO_EXTS = frozenset({"mp3", "wav", "m4a", "aac", "flac", "amr", "ogg", "opus", "wma"})

TAG_KEYWORDS: tuple[str, ...] = ("懒人智能剪辑",)
PLAYER_TIPS = "如果无法播放，请点击此处在新窗口打开"

# A bare URL ends at whitespace, quotes, '<' or CJK punctuation; trailing ASCII punctuation is not part of it.
_BARE_URL = re.compile(r"(?:https?|ftp)://[^\s<>\"'`，。；：！？、（）【】《》「」『』“”‘’\u3000\uff08\uff09]+",
                       re.IGNORECASE)
_URL_TRAIL = ".,;:!?)]}>'\""
_FILE_NAME = re.compile(r"^[^/\\?#]+\.([A-Za-z0-9]{1,5})$")
_DETECT_PLAYER = re.compile(r"detectPlayer\(\s*([\"'])[^\"']*\1\s*,\s*([\"'])(\w*)\2\s*,\s*([\"'])(.+?)\4", re.S)
_COVER = re.compile(r"封面\s*(?:标题\s*([上中下])|([上中下])\s*(?:标题)?)\s*[:：]\s*")
_COVER_FIELD = {"上": "top", "中": "middle", "下": "bottom"}
_TAG_TOKEN = re.compile(r"#[^\s#]+#?|【[^】]*】")
_ATTACH_NOISE = (
    re.compile(r"[(（]\s*[\d.]+\s*(?:[KMGT]i?B|Bytes|字节)\s*[,，]\s*下载次数\s*[:：]\s*\d+\s*[)）]", re.I),
    re.compile(r"下载次数\s*[:：]\s*\d+"),
    re.compile(r"点击文件名下载附件"),
    re.compile(r"\d{4}-\d{1,2}-\d{1,2}\s+\d{1,2}:\d{2}(?::\d{2})?\s*上传"),
    re.compile(r"本帖最后由\s*.+?\s*于\s*\d{4}-\d{1,2}-\d{1,2}\s+\d{1,2}:\d{2}(?::\d{2})?\s*编辑"),
)
_EMPTY_BRACKETS = re.compile(r"[（(]\s*[）)]|【\s*】")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([，。、；：！？）】》,.;:!?)])")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u3000]+")

# Elements whose text is machinery, not what the member wrote.
_DROP_TAGS = frozenset({"script", "style", "ignore_js_op", "a", "noscript", "iframe", "object", "embed"})
_DROP_CLASSES = frozenset({"tip", "media", "media_tips", "tattl", "attach_nopermission", "pstatus", "xg1", "tip_c",
                           "locked", "jammer", "a_pr", "a_pt", "a_pb"})   # a_*: ad slots in the cell
_HIDDEN = re.compile(r"display\s*:\s*none", re.I)
_BLOCK_TAGS = frozenset({"p", "div", "li", "ul", "ol", "tr", "table", "blockquote", "h1", "h2", "h3", "h4", "h5",
                         "h6", "dl", "dt", "dd", "hr", "pre", "tbody"})


@dataclass(frozen=True, slots=True)
class Covers:
    top: str = ""
    middle: str = ""
    bottom: str = ""


def fragment(message_html: str) -> etree._Element:
    """The post body as one ``<div>`` element (empty for an empty body)."""
    if not message_html or not message_html.strip():
        return lxml_html.fromstring("<div></div>")
    return lxml_html.fragment_fromstring(message_html, create_parent="div")


# ---------------------------------------------------------------- names and kinds

def _ext(name: str) -> str:
    m = _FILE_NAME.match(name.strip())
    return m.group(1).lower() if m else ""


def kind_of_ext(ext: str) -> SourceKind | None:
    """``video``/``audio`` for a known media extension (no dot, any case), else None."""
    ext = ext.lower()
    return "video" if ext in VIDEO_EXTS else "audio" if ext in AUDIO_EXTS else None


def decode_percent(part: str) -> str:
    """Percent-decode a URL part: UTF-8 first, then GBK (old Chinese sites), else UTF-8 with replacements."""
    raw = unquote_to_bytes(part)
    for codec in ("utf-8", "gbk"):
        try:
            return raw.decode(codec)
        except UnicodeDecodeError:
            continue
    return raw.decode("utf-8", errors="replace")


def url_file_name(url: str) -> str:
    """The URL path's last part, percent-decoded, without the query; "" when the path ends in '/'."""
    path = urlsplit(url).path
    return decode_percent(path.rsplit("/", 1)[-1]).strip()


def looks_like_file_name(text: str) -> bool:
    """Link text that names a file: one path-less word ending in ``.ext``; not a URL, not Discuz's shortened URL."""
    text = text.strip()
    if not text or "://" in text or " ... " in text or text.lower().startswith("www."):
        return False
    return bool(_FILE_NAME.match(text))


def clean_url(url: str, base_url: str) -> str:
    """Absolute URL; a literal ``&amp;`` (script text, or double escaping) becomes ``&``. Attribute and text
    values come already decoded by lxml, so no other entity is touched (``&not…`` must stay as it is)."""
    url = url.strip()
    while "&amp;" in url:
        url = url.replace("&amp;", "&")
    url = url.replace("\\/", "/")
    return urljoin(base_url, url) if base_url else url


def _attachment_aid(url: str) -> str | None:
    parts = urlsplit(url)
    if "mod=attachment" not in parts.query:
        return None
    return (parse_qs(parts.query).get("aid") or [""])[0] or None


def media_link(url: str, text: str, base_url: str, *, hint: str = "") -> MediaLink | None:
    """A source from a URL and the text shown for it, or None when it is neither video nor audio.

    ``hint`` is an extension known from elsewhere (the ``[media]`` player's type argument)."""
    if not url or url.lower().startswith(("javascript:", "mailto:", "#")):
        return None
    absolute = clean_url(url, base_url)
    text = _SPACES.sub(" ", text or "").strip()
    by_text = looks_like_file_name(text)
    path_name = url_file_name(absolute)
    if _attachment_aid(absolute) is not None:
        kind = kind_of_ext(_ext(text)) if by_text else None
    else:
        kind = (kind_of_ext(_ext(text)) if by_text else None) or kind_of_ext(_ext(path_name)) or (
            kind_of_ext(hint) if hint else None)
    if kind is None:
        return None
    name = text if by_text else (path_name or urlsplit(absolute).netloc)
    return MediaLink(url=absolute, name=name, kind=kind)


# ---------------------------------------------------------------- sources

def _classes(el: etree._Element) -> set[str]:
    return set((el.get("class") or "").split())


def _bare_urls(text: str) -> Iterator[str]:
    for m in _BARE_URL.finditer(text or ""):
        yield m.group(0).rstrip(_URL_TRAIL)


def _walk_sources(el: etree._Element, base_url: str, in_link: bool = False) -> Iterator[MediaLink | None]:
    """Sources in document order; bare URLs only from text outside links and scripts."""
    if not isinstance(el.tag, str):      # comments and processing instructions; their tails are the parent's
        return
    tag = el.tag.lower()
    if tag == "a" and el.get("href"):
        yield media_link(el.get("href", ""), el.text_content(), base_url)
    elif tag == "script":
        for m in _DETECT_PLAYER.finditer(el.text or ""):
            yield media_link(m.group(5).replace("\\", ""), "", base_url, hint=m.group(3))
        return
    elif tag in ("video", "audio", "source", "embed") and el.get("src"):
        link = media_link(el.get("src", ""), "", base_url)
        if link is None and tag in ("video", "audio"):
            link = MediaLink(url=clean_url(el.get("src", ""), base_url), name=url_file_name(el.get("src", "")),
                             kind=tag)  # type: ignore[arg-type]
        yield link
    elif tag == "img":
        for attr in ("zoomfile", "file", "src"):
            link = media_link(el.get(attr) or "", "", base_url)
            if link is not None and link.kind == "video":
                yield link
                break
    elif tag == "style":
        return
    in_link = in_link or tag == "a"
    if not in_link and tag not in ("script", "style"):
        for url in _bare_urls(el.text or ""):
            yield media_link(url, "", base_url)
    for child in el:
        yield from _walk_sources(child, base_url, in_link)
        if not in_link:
            for url in _bare_urls(child.tail or ""):
                yield media_link(url, "", base_url)


def extract_sources(message_html: str, base_url: str = "") -> tuple[MediaLink, ...]:
    """Every video/audio source of a post body, in post order, without duplicates."""
    seen: set[str] = set()
    out: list[MediaLink] = []
    for link in _walk_sources(fragment(message_html), base_url):
        if link is None:
            continue
        aid = _attachment_aid(link.url)
        key = f"aid:{aid}" if aid else link.url
        if key in seen:
            continue
        seen.add(key)
        out.append(link)
    return tuple(out)


# ---------------------------------------------------------------- text

def _text_parts(el: etree._Element, out: list[str]) -> None:
    tag = el.tag.lower() if isinstance(el.tag, str) else ""
    if tag == "br":
        out.append("\n")
    elif tag and tag not in _DROP_TAGS and not (_classes(el) & _DROP_CLASSES) and not _HIDDEN.search(
            el.get("style") or "") and not (tag == "span" and (el.get("id") or "").startswith("attach_")):
        block = tag in _BLOCK_TAGS
        if block:
            out.append("\n")
        out.append(el.text or "")
        for child in el:
            _text_parts(child, out)
        if block:
            out.append("\n")
    if el.tail:
        out.append(el.tail)


def visible_text(message_html: str) -> str:
    """The post's text as the member wrote it: line breaks kept, links, scripts and attachment boxes left out."""
    root = fragment(message_html)
    out: list[str] = [root.text or ""]
    for child in root:
        _text_parts(child, out)
    return "".join(out)


def _cover_spans(line: str) -> list[tuple[str, str, int, int]]:
    """(position, value, start, end) of every cover marker on a line; a value runs to the next marker."""
    marks = list(_COVER.finditer(line))
    spans = []
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(line)
        spans.append((_COVER_FIELD[m.group(1) or m.group(2)], line[m.end():end].strip(), m.start(), end))
    return spans


def cover_lines(text: str) -> Covers:
    """The cover titles a text asks for (see the module docstring for the accepted spellings)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        for field, value, _, _ in _cover_spans(line):
            if value and not found.get(field):
                found[field] = value
    return Covers(**found)


def _only_tags(line: str) -> bool:
    """A line made only of ``#tag``, ``#tag#``, ``【…】`` tokens and tag keywords (and spaces)."""
    rest = _TAG_TOKEN.sub(" ", line)
    for keyword in TAG_KEYWORDS:
        rest = rest.replace(keyword, " ")
    return not rest.strip()


def core_text(text: str) -> str:
    """Free text without URLs, cover lines, tags, player tips and attachment noise; non-empty lines joined by \\n."""
    lines: list[str] = []
    for line in text.splitlines():
        spans = _cover_spans(line)
        if spans:
            line = line[:spans[0][2]]
        line = _BARE_URL.sub(" ", line).replace(PLAYER_TIPS, " ")
        for noise in _ATTACH_NOISE:
            line = noise.sub(" ", line)
        if _only_tags(line):
            continue
        for keyword in TAG_KEYWORDS:
            line = line.replace(keyword, " ")
        line = _SPACES.sub(" ", line)
        line = _SPACE_BEFORE_PUNCT.sub(r"\1", _EMPTY_BRACKETS.sub(" ", line)).strip()
        if line:
            lines.append(line)
    return "\n".join(lines)
