"""One request as Discuz! sees it: merged GET/POST input in the site charset, saltkey, user, formhash, cookies."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote_to_bytes, urlsplit

from aiohttp import web

from .config import Account

if TYPE_CHECKING:
    from .server import Forum

COOKIE_DAYS30 = 2592000


def md5(text: str | bytes) -> str:
    return hashlib.md5(text.encode("utf-8") if isinstance(text, str) else text).hexdigest()


@dataclass
class Upload:
    """A file field of a multipart POST."""

    filename: str
    data: bytes
    content_type: str


@dataclass
class Ctx:
    """Per-request state; ``gp`` is Discuz's ``$_GET`` after ``array_merge($_GET, $_POST)``."""

    request: web.Request
    forum: Forum
    get: dict[str, str]
    post: dict[str, str]
    files: dict[str, Upload]
    raw_body: bytes
    multipart: bool
    saltkey: str = ""
    new_saltkey: bool = False
    user: Account | None = None
    set_cookies: list[tuple[str, str, int | None, bool]] = field(default_factory=list)

    @property
    def gp(self) -> dict[str, str]:
        return {**self.get, **self.post}

    @property
    def charset(self) -> str:
        return self.forum.config.charset

    @property
    def uid(self) -> int:
        return self.user.uid if self.user else 0

    @property
    def is_post(self) -> bool:
        return self.request.method == "POST"

    def cookie(self, name: str) -> str | None:
        return self.request.cookies.get(self.forum.config.cookiepre + name)

    def set_cookie(self, name: str, value: str, max_age: int | None = None, *, httponly: bool = False) -> None:
        """``max_age`` None = session cookie, <0 = delete."""
        self.set_cookies.append((name, value, max_age, httponly))

    # --- Discuz's secrets --------------------------------------------------------------------------------------

    @property
    def authkey(self) -> str:
        """``$_G['authkey'] = md5(config authkey . saltkey)``."""
        return md5(self.forum.config.authkey + self.saltkey)

    def formhash(self, user: Account | None = None, *, guest: bool = False) -> str:
        """``substr(md5(substr(TIMESTAMP, 0, -7) . username . uid . authkey . hashadd), 8, 8)``."""
        u = None if guest else (user or self.user)
        stamp = str(int(time.time()))[:-7]
        return md5(f"{stamp}{u.username if u else ''}{u.uid if u else 0}{self.authkey}")[8:16]

    def auth_value(self, account: Account) -> str:
        """The ``auth`` cookie: password hash and uid, bound to this saltkey (authcode uses the authkey)."""
        payload = f"{md5(account.password)}\t{account.uid}"
        sig = md5(payload + self.authkey)[:10]
        return base64.urlsafe_b64encode(f"{payload}\t{sig}".encode()).decode().rstrip("=")

    def user_from_auth(self, value: str) -> Account | None:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
            pwhash, uid, sig = raw.split("\t")
        except (ValueError, UnicodeDecodeError):
            return None
        if md5(f"{pwhash}\t{uid}" + self.authkey)[:10] != sig or not uid.isdigit():
            return None
        account = self.forum.config.account(uid=int(uid))
        return account if account and md5(account.password) == pwhash else None

    def swfupload_hash(self, uid: int) -> str:
        """misc_swfupload.php: ``md5(substr(md5(config authkey), 8) . uid)``."""
        return md5(md5(self.forum.config.authkey)[8:] + str(uid))

    # --- checks ------------------------------------------------------------------------------------------------

    def foreign_referer(self) -> bool:
        ref = self.request.headers.get("Referer", "")
        if not ref:
            return False
        host = (self.request.headers.get("Host") or "").split(":")[0].lower()
        return (urlsplit(ref).hostname or "").lower() != host

    def tainted(self) -> bool:
        """discuz_application::_xss_check."""
        if "formhash" in self.gp and self.gp["formhash"] != self.formhash():
            return True
        if self.request.method == "GET":
            scan = self.request.raw_path.encode("latin-1", "replace")
        elif not self.gp.get("formhash"):
            scan = self.request.raw_path.encode("latin-1", "replace") + (b"" if self.multipart else self.raw_body)
        else:
            return False
        text = unquote_to_bytes(unquote_to_bytes(scan)).upper()
        return any(c in text for c in (b'"', b">", b"<", b"'", b"(", b")", b"CONTENT-TRANSFER-ENCODING"))

    # --- output ------------------------------------------------------------------------------------------------

    def encode(self, text: str) -> bytes:
        return text.encode(self.charset, errors="xmlcharrefreplace")

    def html(self, body: str, status: int = 200) -> web.Response:
        return web.Response(body=self.encode(body), status=status,
                            headers={"Content-Type": f"text/html; charset={self.charset}"})

    def xml(self, body: str) -> web.Response:
        return web.Response(body=self.encode(body), headers={"Content-Type": f"text/xml; charset={self.charset}"})

    def json(self, data: Any, status: int = 200) -> web.Response:
        """Like PHP's json_encode: compact, ``\\uXXXX`` escapes, ``\\/`` for slashes; always UTF-8."""
        text = json.dumps(data, separators=(",", ":")).replace("/", "\\/")
        return web.Response(body=text.encode("ascii"), status=status,
                            headers={"Content-Type": "application/json; charset=utf-8"})

    def redirect(self, location: str) -> web.Response:
        return web.Response(status=302, headers={"Location": location})

    def apply_cookies(self, response: web.StreamResponse) -> None:
        pre = self.forum.config.cookiepre
        for name, value, max_age, httponly in self.set_cookies:
            if max_age is not None and max_age < 0:
                response.del_cookie(pre + name, path="/")
                continue
            kwargs: dict[str, Any] = {"path": "/", "httponly": httponly or None}
            if max_age is not None:
                kwargs["max_age"] = max_age
                kwargs["expires"] = time.strftime("%a, %d-%b-%Y %H:%M:%S GMT", time.gmtime(time.time() + max_age))
            response.set_cookie(pre + name, value, **kwargs)


def _decode_pairs(raw: bytes | str, charset: str) -> dict[str, str]:
    if isinstance(raw, bytes):  # stray raw bytes are taken as the site charset, like PHP does
        raw = "".join(chr(b) if b < 0x80 else f"%{b:02X}" for b in raw)
    out: dict[str, str] = {}
    for key, value in parse_qsl(raw, keep_blank_values=True, encoding=charset, errors="replace"):
        out[key] = value
    return out


async def build_ctx(request: web.Request, forum: Forum) -> Ctx:
    """Decode the request in the site charset (GBK sites take GBK bodies as they come; no conversion)."""
    charset = forum.config.charset
    query = _decode_pairs(request.raw_path.partition("?")[2], charset)
    post: dict[str, str] = {}
    files: dict[str, Upload] = {}
    raw = b""
    multipart = request.content_type.startswith("multipart/")
    if request.method == "POST":
        if multipart:
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not hasattr(part, "read") or part.name is None:
                    continue
                data = await part.read()  # type: ignore[union-attr]
                if part.filename is not None:
                    files[part.name] = Upload(part.filename, bytes(data),
                                              part.headers.get("Content-Type", "application/octet-stream"))
                else:
                    post[part.name] = bytes(data).decode(charset, errors="replace")
        else:
            raw = await request.read()
            post = _decode_pairs(raw, charset)
    ctx = Ctx(request, forum, query, post, files, raw, multipart)
    saltkey = ctx.cookie("saltkey")
    if not saltkey or len(saltkey) != 8:
        saltkey = "".join(random.choices(string.ascii_letters + string.digits, k=8))
        ctx.new_saltkey = True
        ctx.set_cookie("saltkey", saltkey, COOKIE_DAYS30, httponly=True)
        ctx.set_cookie("lastvisit", str(int(time.time()) - 3600), COOKIE_DAYS30)
    ctx.saltkey = saltkey
    auth = ctx.cookie("auth")
    if auth:
        ctx.user = ctx.user_from_auth(auth)
    ctx.set_cookie("lastact", f"{int(time.time())}%09{request.path.lstrip('/')}%09", 86400)
    return ctx
