"""What aicut writes into a thread: the result reply, polite replies for problems the member can fix, the task
marker that makes a reply findable (and so never posted twice), and padding up to Discuz's minimum post size.

Pure functions only: text in, BBCode out. Everything that comes from outside (file names, the thread subject, a
category, an error's detail) is made inert before it goes into BBCode, and a problem reply never carries internal
paths, cluster hosts, stack traces or secrets.
"""

from __future__ import annotations

import hashlib
import html
import ipaddress
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

# --- the task marker -------------------------------------------------------------------------------------------------

# Visible and honest: small grey text saying this reply is aicut's, for which task. The id is the only part matched
# exactly; the words around it may be mangled by a wrong charset guess and the marker is still found (see find_marker).
MARKER_TEMPLATE = "[size=1][color=#999999]aicut 自动回复 · 任务 {id}[/color][/size]"
_ID_CHARS = "A-Za-z0-9._-"            # survive BBCode, HTML escaping, GBK and Discuz smilies (":D", ":@" …) as is
_SAFE_ID = re.compile(rf"^[{_ID_CHARS}]{{1,80}}$")
_MARKER_TAIL = re.compile(r"\n?\[size=1\]\[color=#999999\]aicut [^\n]*\[/color\]\[/size\]\s*$")


def marker_id(task_id: str) -> str:
    """The task id as it appears in the marker: itself when made of ``A-Za-z0-9._-`` (every id aicut makes),
    otherwise a readable part plus a hash of the whole id, so it stays unique and inert."""
    if _SAFE_ID.match(task_id) and task_id.strip(".-"):
        return task_id
    readable = re.sub(rf"[^{_ID_CHARS}]+", "-", task_id).strip(".-")[:40]
    digest = hashlib.sha256(task_id.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{readable}~{digest}".lstrip("~") if readable else digest


def marker(task_id: str) -> str:
    """The last line of every reply aicut posts for ``task_id``."""
    return MARKER_TEMPLATE.format(id=marker_id(task_id))


def find_marker(text_or_html: str, task_id: str) -> bool:
    """Whether ``text_or_html`` (our BBCode, a rendered desktop post, or the mobile API's HTML) carries the marker
    of ``task_id`` — and not of a task whose id merely starts or ends like it."""
    text = _plain(text_or_html)
    mid = re.escape(marker_id(task_id))
    # "aicut", at most 40 characters on the same line (the words and the middle dot, in whatever charset they came
    # back), then the id standing alone.
    return re.search(rf"aicut[^\n]{{0,40}}?(?<![~{_ID_CHARS}]){mid}(?![~{_ID_CHARS}])", text) is not None


def with_marker(message: str, task_id: str) -> str:
    """``message`` ending with the marker of ``task_id`` (added unless it is already there)."""
    if find_marker(message, task_id):
        return message
    return message.rstrip() + "\n" + marker(task_id)


def _plain(text: str) -> str:
    """HTML or BBCode as the text a reader sees: tags out, entities decoded, whitespace collapsed per line."""
    text = re.sub(r"<br\s*/?>|</(?:p|div|li|tr)>", "\n", text, flags=re.IGNORECASE)
    text = re.sub(r"<[^>]*>", "", text)
    text = re.sub(r"\[/?(?:size|color|font|b|i|u|s|url|align|p)(?:=[^\]\n]*)?\]", "", text, flags=re.IGNORECASE)
    for _ in range(2):                 # our text escaped once by Discuz and maybe once more by a template
        text = html.unescape(text)
    text = text.replace("\xa0", " ").replace("\u3000", " ")
    return re.sub(r"[ \t\r\f\v]+", " ", text)


# --- padding ---------------------------------------------------------------------------------------------------------

PAD_SUFFIX = "（此回复由 aicut 自动发送）"


def message_bytes(message: str, charset: str) -> int:
    """Length as Discuz measures it (``strlen`` of the trimmed message in the site charset; characters the charset
    lacks travel as ``&#NNNN;``)."""
    return len(message.strip().encode(_codec(charset), errors="xmlcharrefreplace"))


def pad_message(message: str, min_bytes: int, charset: str = "utf-8") -> str:
    """``message`` made at least ``min_bytes`` long in ``charset`` (Discuz ``minpostsize``, default 10 bytes) by
    adding a polite suffix — before the task marker when the message ends with one."""
    if min_bytes <= 0 or message_bytes(message, charset) >= min_bytes:
        return message
    tail_match = _MARKER_TAIL.search(message)
    body, tail = (message[:tail_match.start()], message[tail_match.start():]) if tail_match else (message, "")
    padded = body.rstrip()
    while message_bytes(padded + tail, charset) < min_bytes:
        padded = (padded + "\n" + PAD_SUFFIX) if padded else PAD_SUFFIX
    return padded + tail


def _codec(charset: str) -> str:
    name = (charset or "utf-8").strip().lower()
    return "gbk" if name in ("gb2312", "gbk", "cp936") else name


# --- BBCode safety ---------------------------------------------------------------------------------------------------

def bbcode_text(text: str, limit: int = 200) -> str:
    """Outside text (a file name, a subject, a category) made inert in a post: one line, no tag can start or end in
    it (square brackets become full-width ones, which read the same), at most ``limit`` characters."""
    text = re.sub(r"\s+", " ", str(text)).strip()
    text = text.replace("[", "［").replace("]", "］")
    return text if len(text) <= limit else text[:limit - 1] + "…"


def bbcode_url(url: str) -> str:
    """A URL safe inside ``[url=…]``: Discuz ends the URL at the first ``]`` and refuses quotes, ``[`` and line
    breaks, so those (and spaces, non-ASCII, ``<>``, parentheses) are percent-encoded; existing escapes are kept."""
    return quote(url.strip(), safe=":/?#@!$&*+,;=%~-._")


def link(url: str, text: str) -> str:
    """``[url=URL]text[/url]`` with both parts made safe."""
    return f"[url={bbcode_url(url)}]{bbcode_text(text)}[/url]"


# --- result reply ----------------------------------------------------------------------------------------------------

REASON_LABELS: dict[str, str] = {
    "pause": "停顿（缩短）pauses",
    "filler": "语气词 fillers",
    "stutter": "口吃重复 stutters",
    "retake": "重说 retakes",
    "noise": "无字人声 noise",
    "leading_silence": "开头静音 leading silence",
    "trailing_silence": "结尾静音 trailing silence",
}
KIND_LABELS: dict[str, str] = {
    "video": "视频 video", "subtitles": "字幕 subtitles", "cover": "封面 cover", "edl": "剪辑清单 EDL",
    "report": "报告 report",
}
ENCODER_LABELS: dict[str, str] = {"nvenc": "NVENC（GPU 硬件编码）", "x264": "x264（CPU 编码）"}


@dataclass(frozen=True, slots=True)
class FileLine:
    """One published file as the reply shows it (``aicut.forum.publishers.PublishedFile`` fits this)."""

    name: str
    kind: str
    url: str = ""
    aid: int = 0
    size: int = 0


def compose_result_reply(task_id: str, report: Mapping[str, Any] | Sequence[Mapping[str, Any]],
                         published: Sequence[Any], *, thread_subject: str = "", machine: str = "",
                         processing_s: float | None = None) -> str:
    """The reply for a finished task: one link (or ``[attach]``) per file, duration before → after, what was removed
    per reason, processing time, machine and encoder, a warning when the plan was flagged, and the marker last.

    ``report`` is one ``report.json`` (as a mapping) or one per source video; ``published`` holds objects with
    ``name``, ``kind``, ``url``, ``aid`` and ``size``; ``processing_s`` overrides the time the reports add up to."""
    reports = [report] if isinstance(report, Mapping) else list(report)
    lines = ["您的口播视频已剪好，请查收。Your cut is ready."]
    if thread_subject:
        lines[0] = f"《{bbcode_text(thread_subject, 80)}》" + lines[0]
    lines += ["", "[b]成品文件 Files[/b]"]
    lines += [file_line(f) for f in published] or ["（没有可发布的文件）"]
    for rep in reports:
        lines.append("")
        if len(reports) > 1:
            name = (rep.get("source") or {}).get("name") or ""
            lines.append(f"[b]{bbcode_text(name, 80) or '视频'}[/b]")
        lines += summary_lines(rep)
    lines.append("")
    lines.append(processing_line(reports, machine=machine, processing_s=processing_s))
    lines.append(marker(task_id))
    return "\n".join(lines)


def file_line(f: Any) -> str:
    """``视频 video：[url=…]name[/url]（12.3 MB）``, or ``[attach]AID[/attach]`` for a Discuz attachment."""
    label = KIND_LABELS.get(f.kind, bbcode_text(f.kind, 20))
    if f.url:
        body = link(f.url, f.name)
    elif f.aid:
        body = f"{bbcode_text(f.name)} [attach]{int(f.aid)}[/attach]"
    else:
        body = bbcode_text(f.name)
    size = f"（{human_size(f.size)}）" if f.size else ""
    return f"{label}：{body}{size}"


def summary_lines(rep: Mapping[str, Any]) -> list[str]:
    """Duration before → after, removals per reason, and the flag warning, for one source's report."""
    plan = rep.get("plan") or {}
    before = _num(plan.get("source_duration_s"), _num((rep.get("source") or {}).get("duration_s")))
    after = _num((rep.get("output") or {}).get("duration_s"), _num(plan.get("output_duration_s")))
    lines = [f"[b]时长 Duration[/b]：{clock(before)} → {clock(after)}"]
    if before > 0 and after <= before:
        lines[0] += f"（缩短 {clock(before - after)}，{(before - after) / before:.0%}）"
    removed = removal_lines(plan.get("by_reason") or {})
    lines += ["[b]剪掉的内容 Removed[/b]："] + removed if removed else ["没有需要剪掉的内容。Nothing needed cutting."]
    if rep.get("flagged") or plan.get("flagged"):
        reason = bbcode_text(rep.get("flag_reason") or plan.get("flag_reason") or "", 160)
        lines.append("[color=#cc6600]注意：按计划会剪掉太多内容，为安全起见没有照单全剪"
                     + (f"（{reason}）" if reason else "") + "，请检查成片。[/color]")
    return lines


def removal_lines(by_reason: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """``· 停顿（缩短）pauses：3 处，4.2 秒`` per reason that removed something, in the planner's order."""
    out = []
    order = list(REASON_LABELS) + [r for r in by_reason if r not in REASON_LABELS]
    for reason in order:
        entry = by_reason.get(reason) or {}
        count, seconds = int(_num(entry.get("count"))), _num(entry.get("seconds"))
        if count <= 0 and seconds <= 0:
            continue
        label = REASON_LABELS.get(reason, bbcode_text(reason, 30))
        out.append(f"· {label}：{count} 处，{seconds:.1f} 秒")
    return out


def processing_line(reports: Sequence[Mapping[str, Any]], *, machine: str = "",
                    processing_s: float | None = None) -> str:
    """``处理用时 1 分 12 秒 · 机器 gpu-01 · 编码 NVENC（GPU 硬件编码）``."""
    if processing_s is None:
        # stage_seconds is the task's running total when each report was written, so the last (largest) one counts.
        totals = [sum(_num(v) for v in (r.get("stage_seconds") or {}).values()) for r in reports]
        processing_s = max(totals, default=0.0) or sum(_num(r.get("seconds")) for r in reports)
    parts = [f"处理用时 {duration_words(processing_s)}"]
    name = machine_label(machine or next((str(r.get("machine")) for r in reports if r.get("machine")), ""))
    if name:
        parts.append(f"机器 {name}")
    encoders = sorted({str(r.get("encoder")) for r in reports if r.get("encoder")})
    if encoders:
        parts.append("编码 " + " / ".join(ENCODER_LABELS.get(e, bbcode_text(e, 20)) for e in encoders))
    return " · ".join(parts)


def machine_label(machine: str) -> str:
    """The worker's name as members may see it: no port, and nothing at all when it is a bare IP address."""
    name = machine.strip()
    if name.startswith("[") and "]" in name:          # [::1]:8005
        name = name[1:name.index("]")]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    try:
        ipaddress.ip_address(name)
        return ""
    except ValueError:
        return bbcode_text(name, 40)


def clock(seconds: float) -> str:
    """``mm:ss``, or ``h:mm:ss`` from an hour on (rounded to the second)."""
    total = max(0, int(round(seconds)))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def duration_words(seconds: float) -> str:
    """``42 秒``, ``1 分 12 秒``, ``1 小时 3 分``."""
    total = max(0, int(round(seconds)))
    if total < 60:
        return f"{total} 秒"
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h} 小时 {m} 分" if h else f"{m} 分 {s} 秒"


def human_size(size: int) -> str:
    """``980 KB``, ``12.3 MB``, ``1.20 GB`` (decimal units, as members' tools show them)."""
    if size >= 1_000_000_000:
        return f"{size / 1e9:.2f} GB"
    if size >= 1_000_000:
        return f"{size / 1e6:.1f} MB"
    return f"{max(1, round(size / 1e3))} KB"


def _num(value: Any, default: float = 0.0) -> float:
    try:
        return float(value) if value is not None else default
    except (TypeError, ValueError):
        return default


# --- problem replies -------------------------------------------------------------------------------------------------

SUPPORTED = "口播视频剪辑（分类含“口播”“剪辑”“视频”，或不选分类）"
_RETRY = "修改后请重新发一个帖子，我们会自动处理。"

DEFAULT_TEMPLATES: dict[str, str] = {
    "NO_SOURCE": "您好！这个帖子里没有找到视频。请把口播视频作为附件上传，或用编辑器的“链接”按钮贴出视频文件的地址。"
                 + _RETRY,
    "UNSUPPORTED_CATEGORY": "您好！帖子分类「{category}」目前不能自动处理，这里支持的是：{supported}。"
                            "如需剪辑口播视频，请选对分类。" + _RETRY,
    "NOT_MEDIA": "您好！视频链接打开后不是视频或音频文件（可能是网页、网盘分享页或需要登录的页面）。"
                 "请贴出视频文件本身的地址，或直接上传附件。" + _RETRY,
    "NO_VIDEO": "您好！这个文件里只有声音，没有画面。请上传带画面的口播视频。" + _RETRY,
    "NO_AUDIO": "您好！这个视频没有声音。我们按说话内容剪辑，没有声音就无法处理，请确认录制时打开了麦克风。" + _RETRY,
    "NO_SPEECH": "您好！视频里没有听到说话的声音，所以没有可以按内容剪辑的地方。请确认上传的是口播视频，"
                 "并且人声清楚。" + _RETRY,
    "EMPTY_MEDIA": "您好！这个文件是空的（时长为 0 或没有内容），可能上传没有完成。请重新导出并上传。" + _RETRY,
    "UNREADABLE_MEDIA": "您好！这个视频文件无法读取，可能已损坏或上传不完整。请重新导出（建议 MP4 格式）并上传。" + _RETRY,
    "TOO_LARGE": "您好！这个文件太大，超过了处理上限{limit}。请压缩视频（例如导出为 1080p MP4）或分段上传。" + _RETRY,
    "URL_NOT_ALLOWED": "您好！视频链接所在的网站不在允许下载的范围内。请把视频直接上传到论坛（附件或视频上传）。" + _RETRY,
    "HTTP_STATUS": "您好！视频链接打不开{status}，可能已过期、被删除或需要登录。请重新上传视频后贴出新的地址。" + _RETRY,
    # Not the member's problem (a crash, a worker fault, retries used up): the coordinator says sorry, once.
    "TASK_FAILED": "您好！抱歉，这个视频没能处理成功（不是您的问题）。管理员已经看到，处理好后会在这里回复；不需要重新发帖。",
}
GENERIC_TEMPLATE = "您好！这个帖子没能自动处理{detail}。请检查视频后重新发帖；如果仍然不行，请联系管理员。"


def compose_problem_reply(task_id: str, code: str, detail: str | Mapping[str, Any] = "",
                          templates: Mapping[str, str] | None = None) -> str:
    """A polite reply for a problem the member can fix, chosen by the stable error ``code``; the marker last.

    ``detail`` is either a short text (shown as ``{detail}``, only after it is checked to carry nothing internal) or
    the template's fields (``category``, ``supported``, ``limit``, ``status``, ``detail``). ``templates`` replace the
    default Chinese texts per code; ``"*"`` is the fallback for codes without a template."""
    merged = {**DEFAULT_TEMPLATES, **(templates or {})}
    template = merged.get(code) or merged.get("*") or GENERIC_TEMPLATE
    fields = problem_fields(code, detail)
    body = string.Formatter().vformat(template, (), _Fields(fields))
    return body.rstrip() + "\n" + marker(task_id)


def problem_fields(code: str, detail: str | Mapping[str, Any]) -> dict[str, str]:
    """The template fields for ``code``, every value made public-safe and inert."""
    raw: dict[str, Any] = dict(detail) if isinstance(detail, Mapping) else {"detail": detail}
    fields = {k: public_text(str(v)) for k, v in raw.items() if v not in (None, "")}
    if code == "UNSUPPORTED_CATEGORY":
        fields.setdefault("category", fields.get("detail", "") or "未知")
        fields.setdefault("supported", SUPPORTED)
    if fields.get("limit"):
        fields["limit"] = f"（{fields['limit']}）"
    if fields.get("status"):
        fields["status"] = f"（网站返回 {fields['status']}）"
    if fields.get("detail") and code not in ("UNSUPPORTED_CATEGORY",):
        fields["detail"] = f"（{fields['detail']}）"
    return fields


class _Fields(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


_SECRETISH = re.compile(r"(?i)\b(?:password|passwd|token|secret|cookie|auth|saltkey|formhash|apikey|api_key)\b")
_INTERNAL = (
    re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://\S+"),                        # URLs (hosts, signed query strings)
    re.compile(r"(?:[A-Za-z]:)?(?:[\\/][^\\/\s:*?\"<>|]+){2,}[\\/]?"),    # absolute or nested paths
    re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"),                 # IPv4 (with port)
    re.compile(r"(?i)\b(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}\b"),         # IPv6
    re.compile(r"(?i)\b[a-z0-9-]+(?:\.[a-z0-9-]+)*:\d{2,5}\b"),          # host:port
)


def public_text(text: str, limit: int = 120) -> str:
    """``text`` fit for a public reply, or "" when it looks internal: a stack trace or anything naming a secret
    gives "", URLs, paths, addresses and host:port pairs are cut out, the rest is made inert and short."""
    if "Traceback" in text or 'File "' in text or _SECRETISH.search(text):
        return ""
    for pattern in _INTERNAL:
        text = pattern.sub("…", text)
    text = re.sub(r"(?:…\s*)+", "…", text).strip(" …:;,")
    return bbcode_text(text, limit)
