"""Where finished files go before the reply links them: a shared directory behind a web server, the forum's
object-storage upload plugin, or plain Discuz attachments. One small class each, one method: ``publish``."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urljoin, urlsplit

from aicut.errors import ConfigError, ForumError, ForumRefusedError, TaskError
from aicut.forum.models import PublishSettings
from aicut.forum.replies import marker_id
from aicut.models import Output
from aicut.pipeline.fetch import safe_filename

logger = logging.getLogger(__name__)

OutputFile = Output          # what the pipeline wrote: name, kind, path, size_bytes


@dataclass(frozen=True, slots=True)
class PublishedFile:
    """One file where members can get it: a link (``url``), or a Discuz attachment (``aid`` and no ``url``)."""

    name: str
    kind: str
    url: str = ""
    aid: int = 0                 # 0 if none
    size: int = 0


class Publisher(Protocol):
    def publish(self, task_id: str, files: Sequence[Output]) -> list[PublishedFile]: ...


class UploadClient(Protocol):
    """The part of ``aicut.forum.client.ForumClient`` the publishers use."""

    def upload_attachment(self, fid: int, path: Path, name: str) -> int: ...

    def upload_plugin(self, path: Path, name: str, *, endpoint: str, file_field: str,
                      form_fields: Any) -> Mapping[str, Any]: ...

    def thread_url(self, tid: int) -> str: ...


# --- which files, under which names ----------------------------------------------------------------------------------

def select_outputs(files: Sequence[Output], kinds: Sequence[str]) -> list[Output]:
    """The outputs whose kind is in ``kinds``, in the order of ``kinds`` (video first by default), then as given."""
    rank = {k: i for i, k in enumerate(kinds)}
    chosen = [(rank[f.kind], i, f) for i, f in enumerate(files) if f.kind in rank]
    return [f for _, _, f in sorted(chosen, key=lambda t: (t[0], t[1]))]


def public_names(files: Sequence[Output]) -> list[str]:
    """A safe, distinct file name per output. Every source writes its own ``edl.json`` and ``report.json``, so a
    repeated name takes its source folder's name as a prefix (``talk_edl.json``), then a counter if still taken."""
    names = [safe_filename(f.name or Path(f.path).name, fallback=f.kind or "file") for f in files]
    seen: dict[str, int] = {}
    for n in names:
        seen[n] = seen.get(n, 0) + 1
    out: list[str] = []
    for f, n in zip(files, names):
        if seen[n] > 1 and f.path:
            n = safe_filename(f"{Path(f.path).parent.name}_{n}", fallback=n)
        base, k = n, 2
        while n in out:
            stem, dot, ext = base.rpartition(".")
            n = f"{stem}-{k}.{ext}" if dot else f"{base}-{k}"
            k += 1
        out.append(n)
    return out


def task_folder(task_id: str) -> str:
    """The per-task folder (and URL segment): the id itself when it is plain, else a readable part and a hash."""
    return safe_filename(marker_id(task_id), fallback="task")


# --- directory -------------------------------------------------------------------------------------------------------

class DirectoryPublisher:
    """Copies files into ``<path>/<task id>/`` and links ``<base_url>/<task id>/<name>``; a file already there with
    the same size and SHA-256 is not copied again, and a copy appears only whole (temp file + rename)."""

    def __init__(self, path: Path | str, base_url: str) -> None:
        if not str(path):
            raise ConfigError("publish.path is empty: name the directory a web server serves as publish.base_url")
        if urlsplit(base_url).scheme not in ("http", "https") or not urlsplit(base_url).netloc:
            raise ConfigError(f"publish.base_url {base_url!r} must be an absolute http(s) URL (the web address of "
                              "publish.path)")
        self.root = Path(path)
        self.base_url = base_url.rstrip("/")

    def publish(self, task_id: str, files: Sequence[Output]) -> list[PublishedFile]:
        folder = task_folder(task_id)
        target = self.root / folder
        out = []
        try:
            target.mkdir(parents=True, exist_ok=True)
            for f, name in zip(files, public_names(files)):
                size = copy_once(Path(f.path), target / name)
                out.append(PublishedFile(name=name, kind=f.kind, url=self.url(folder, name), size=size))
        except OSError as exc:
            raise TaskError(f"publishing task {task_id} into {target} failed: {exc}; check that the directory "
                            "exists, is writable and has free space", code="PUBLISH_FAILED", retryable=True) from exc
        return out

    def url(self, folder: str, name: str) -> str:
        return f"{self.base_url}/{quote(folder, safe='')}/{quote(name, safe='')}"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def copy_once(src: Path, dst: Path) -> int:
    """Copy ``src`` to ``dst`` unless ``dst`` already holds the same bytes; returns the size. Readers never see a
    partial file: the copy is written beside ``dst`` and renamed over it."""
    size = src.stat().st_size
    if dst.is_file() and dst.stat().st_size == size and file_sha256(dst) == file_sha256(src):
        logger.debug("publish: %s already there", dst.name)
        return size
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        with open(src, "rb") as fin, open(tmp, "xb") as fout:
            for block in iter(lambda: fin.read(1 << 20), b""):
                fout.write(block)
            fout.flush()
            os.fsync(fout.fileno())
        os.chmod(tmp, 0o644)       # served by a web server running as another user
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return size


# --- the forum's upload plugin ---------------------------------------------------------------------------------------

# Words in a plugin's refusal that say trying again cannot help (the file itself is refused).
_REFUSED_WORDS = ("不允许", "不支持", "禁止", "过大", "太大", "类型", "格式", "无权", "没有权限", "not allowed",
                  "forbidden", "too large", "too big", "file type", "filetype", "extension", "denied", "refused",
                  "permission")


class PluginPublisher:
    """Uploads each file through the site's object-storage plugin (DESIGN §2) and links the URL it answers."""

    def __init__(self, client: UploadClient, settings: PublishSettings) -> None:
        if not settings.endpoint:
            raise ConfigError("publish.endpoint is empty: name the upload plugin's URL (relative to forum.base_url)")
        self.client, self.settings = client, settings

    def publish(self, task_id: str, files: Sequence[Output]) -> list[PublishedFile]:
        out = []
        for f, name in zip(files, public_names(files)):
            try:
                answer = self.client.upload_plugin(Path(f.path), name, endpoint=self.settings.endpoint,
                                                   file_field=self.settings.file_field,
                                                   form_fields=self.settings.form_fields)
            except ForumRefusedError as exc:
                transient = transient_plugin_error(exc)
                if transient is None:
                    raise
                raise transient from exc
            url, aid, _ = plugin_answer(answer, name)
            url = self._absolute(url)
            size = f.size_bytes or _size(f.path)
            logger.info("publish: task %s: %s uploaded through the plugin", task_id, name)
            out.append(PublishedFile(name=name, kind=f.kind, url=url, aid=aid, size=size))
        return out

    def _absolute(self, url: str) -> str:
        if urlsplit(url).scheme in ("http", "https"):
            return url
        base = str(getattr(self.client, "base_url", "") or "") or self.client.thread_url(1)
        return urljoin(base, url)


def plugin_answer(answer: Mapping[str, Any], name: str = "") -> tuple[str, int, str]:
    """``(url, aid, filename)`` from the plugin's answer — either its whole JSON (``{"code": 0, "data": {…}}``) or
    the ``data`` part; a ``code`` other than 0 or a missing URL raises ``ForumError`` with the plugin's words."""
    data: Any = answer
    if "code" in answer or "data" in answer:
        code = str(answer.get("code", "0")).strip()
        if code not in ("0", ""):
            words = str(answer.get("msg") or answer.get("message") or answer.get("error")
                        or (answer.get("data") if isinstance(answer.get("data"), str) else "") or "no message")
            text = f"the upload plugin refused {name or 'the file'}: code {code}: {words}"
            if refused(words):
                raise ForumRefusedError(text, message_id=f"upload_plugin_{code}")
            raise ForumError(text + " (will try again)", code="FORUM_UPLOAD", retryable=True)
        data = answer.get("data") or {}
    if not isinstance(data, Mapping):
        raise ForumError(f"the upload plugin answered {name or 'an upload'} without data: {str(answer)[:200]}",
                         code="FORUM_UPLOAD", retryable=True)
    url = str(data.get("url") or "").strip()
    if not url:
        raise ForumError(f"the upload plugin answered {name or 'an upload'} without a URL", code="FORUM_UPLOAD",
                         retryable=True)
    try:
        aid = int(data.get("aid") or 0)
    except (TypeError, ValueError):
        aid = 0
    return url, aid, str(data.get("filename") or name)


_CLIENT_REFUSAL = re.compile(r"\(code (?P<code>[^:()]*): (?P<said>.*)\); check", re.S)


def transient_plugin_error(exc: ForumRefusedError) -> ForumError | None:
    """The client reports every plugin answer with ``code != 0`` as final; for one whose own words do not refuse the
    file (storage busy, a timeout behind the plugin) this is the retryable ``ForumError`` to raise instead."""
    match = _CLIENT_REFUSAL.search(exc.message) if exc.message_id.startswith("plugin_code_") else None
    if match is None or refused(match.group("said")) or match.group("said").strip() in ("", "no reason"):
        return None
    return ForumError(exc.message + " (will try again)", code="FORUM_UPLOAD", retryable=True,
                      message_id=exc.message_id)


def refused(words: str) -> bool:
    """Whether a plugin's message says the file itself is refused (size, type, permission), so a retry cannot help."""
    low = words.lower()
    return any(w in low for w in _REFUSED_WORDS)


# --- Discuz attachments ----------------------------------------------------------------------------------------------

class AttachmentPublisher:
    """Uploads each file as a Discuz attachment of board ``fid``; the reply shows ``[attach]AID[/attach]`` and binds
    the aids (attachments never bound to a post are purged by Discuz's daily cleanup)."""

    def __init__(self, client: UploadClient, fid: int) -> None:
        self.client, self.fid = client, fid

    def publish(self, task_id: str, files: Sequence[Output]) -> list[PublishedFile]:
        out = []
        for f, name in zip(files, public_names(files)):
            aid = int(self.client.upload_attachment(self.fid, Path(f.path), name))
            if aid <= 0:
                raise ForumError(f"the forum answered the attachment upload of {name} without an id",
                                 code="FORUM_UPLOAD", retryable=True)
            logger.info("publish: task %s: %s uploaded as attachment %d", task_id, name, aid)
            out.append(PublishedFile(name=name, kind=f.kind, aid=aid, size=f.size_bytes or _size(f.path)))
        return out


def make_publisher(settings: PublishSettings, client: UploadClient | None, fid: int) -> Publisher:
    """The publisher ``settings.kind`` names."""
    if settings.kind == "directory":
        return DirectoryPublisher(settings.path, settings.base_url)
    if client is None:
        raise ConfigError(f"publish.kind {settings.kind!r} needs a forum client (forum.base_url and credentials)")
    if settings.kind == "plugin":
        return PluginPublisher(client, settings)
    if settings.kind == "attachment":
        return AttachmentPublisher(client, fid)
    raise ConfigError(f"publish.kind {settings.kind!r} is not one of plugin, attachment, directory")


def _size(path: str) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0
