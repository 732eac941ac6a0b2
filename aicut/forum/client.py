"""The Discuz! X HTTP client: log in, list a board, read a thread, reply, upload. Synchronous (``requests``);
one lock serialises the session, so the coordinator may call it from ``asyncio.to_thread`` workers.

Endpoints (DISCUZ.md): the mobile JSON API (``api/mobile/index.php``) when it answers — it says message ids and
``dbdateline`` — else the desktop pages. Login goes through mobile ``version=3`` (v4 breaks on X3.5) or the desktop
``inajax`` form, always with a formhash fetched under the same saltkey cookie. The cookie jar is kept in a 0600 JSON
file so a restart needs no login; an expired session is noticed and renewed once, transparently; failed logins back
off (``login_backoff_s`` doubling to ``login_backoff_max_s``) so a poll loop cannot hammer the login form.

Never logged, never put in an error message: the password, cookie values, auth/saltkey, the formhash, upload hash.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urljoin, urlsplit

import requests

from aicut.errors import ForumConfigError, ForumError, ForumLoginError, ForumRefusedError
from aicut.forum import parse, protocol
from aicut.forum.models import ForumSettings, Post, ReplyResult, SiteInfo, ThreadPage, ThreadRow
from aicut.forum.protocol import Outcome

logger = logging.getLogger(__name__)

T = TypeVar("T")

MOBILE_PATH = "api/mobile/index.php"
COOKIETIME = "2592000"  # 30 days: without it the auth cookie dies with the "browser"
_CHUNK = 256 * 1024
_PAGE_UID = re.compile(r"discuz_uid\s*=\s*['\"]?(\d+)")
_REWRITE_LINK = re.compile(r"""href=["'](?:[^"']*/)?(?:thread-\d+-\d+-\d+|forum-\d+-\d+)\.html""")
_PID_IN_URL = re.compile(r"[?&#]pid=?(\d+)")
_COOKIE_FILE_VERSION = 1


class _SessionExpired(Exception):
    """Internal: the forum treats us as a guest; log in again and repeat once."""


class _MobileUnavailable(Exception):
    """Internal: the mobile API did not answer JSON (plugin off, mobile_is_closed, module_not_exists)."""


class _MultipartStream:
    """A multipart body streamed from disk: head bytes, the file, tail bytes; ``len`` lets requests send a
    Content-Length (PHP behind some proxies refuses chunked uploads)."""

    def __init__(self, head: bytes, path: Path, tail: bytes) -> None:
        self._parts: list[Any] = [head, path, tail]
        self._size = len(head) + path.stat().st_size + len(tail)

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[bytes]:
        for part in self._parts:
            if isinstance(part, Path):
                with part.open("rb") as handle:
                    while chunk := handle.read(_CHUNK):
                        yield chunk
            else:
                yield part


def _codec(charset: str) -> str:
    return "gb18030" if charset == "gbk" else "utf-8"


class ForumClient:
    """One forum account on one Discuz! X site."""

    def __init__(self, settings: ForumSettings, username: str, password: str, *, cookie_file: Path | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not settings.base_url:
            raise ForumConfigError("forum.base_url is empty: set it in machines.yaml to the directory holding forum.php")
        self._settings = settings
        self._base = settings.base_url if settings.base_url.endswith("/") else settings.base_url + "/"
        self._host = urlsplit(self._base).netloc or self._base
        self._username = username
        self._password = password
        self._cookie_file = cookie_file or (Path(settings.cookie_file) if settings.cookie_file else None)
        self._clock = clock
        self._lock = threading.RLock()
        self._session = requests.Session()
        self._session.headers.update({"User-Agent": settings.user_agent,
                                      "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
        self._charset = parse._charset_name(settings.charset) or "" if settings.charset else ""
        self._mobile: bool | None = {"mobile": True, "desktop": False}.get(settings.api)
        self._probed = False
        self._version = ""
        self._rewrite = False
        self._uid = 0
        self._formhash = ""
        self._upload_hash = ""
        self._type_names: dict[int, dict[str, str]] = {}
        self._login_failures = 0
        self._login_blocked_until = 0.0
        self._login_error: ForumError | None = None
        self.login_attempts = 0            # how many logins this client tried (tests and the dashboard read it)
        self._from_cookie_file = self._load_cookies()

    # --- public ------------------------------------------------------------------------------------------------

    @property
    def uid(self) -> int:
        return self._uid

    @property
    def username(self) -> str:
        return self._username

    @property
    def charset(self) -> str:
        return self._charset or "utf-8"

    @property
    def base_url(self) -> str:
        return self._base

    def __repr__(self) -> str:
        api = "mobile" if self._mobile else "desktop" if self._mobile is False else "auto"
        return f"ForumClient(site={self._host!r}, user={self._username!r}, uid={self._uid}, api={api!r})"

    def __enter__(self) -> ForumClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Save the cookie jar (when logged in) and close the HTTP session."""
        with self._lock:
            if self._uid and self._auth_cookie():
                self._save_cookies()
            self._session.close()

    def check(self) -> SiteInfo:
        """Probe the site (charset, mobile API, version), log in (or reuse saved cookies) and say who we are."""
        with self._lock:
            self._probe()
            restored = bool(self._uid and self._auth_cookie())
            self._with_login("check the login", self._whoami)
            notes = [f"mobile API {'answers' if self._mobile else 'is off: using the desktop pages'}"]
            notes.append("logged in with saved cookies" if restored and self.login_attempts == 0 else "logged in")
            if self._rewrite:
                notes.append("rewritten URLs (thread-T-1-1.html)")
            return SiteInfo(base_url=self._base, charset=self.charset, version=self._version,
                            mobile_api=bool(self._mobile), logged_in=bool(self._uid), username=self._username,
                            uid=self._uid, notes=tuple(notes))

    def login(self) -> None:
        """Log in now (normally automatic on first need). Raises the last error during a login backoff."""
        with self._lock:
            self._login()

    def list_threads(self, fid: int, page: int = 1) -> list[ThreadRow]:
        """Board ``fid`` page ``page``, newest created first, sticky rows included (``sticky=True``, on page 1)."""
        return self._with_login(f"list board {fid}", lambda: self._list_threads(fid, page))

    def read_thread(self, tid: int) -> ThreadPage:
        """Thread ``tid`` page 1: subject, category, first post and the replies on it."""
        return self._with_login(f"read thread {tid}", lambda: self._read_page(tid, 1, 0))

    def posts_by(self, tid: int, author_id: int, max_pages: int = 5) -> list[Post]:
        """Posts of one author in a thread ("只看该作者", ``authorid=``), over up to ``max_pages`` pages."""
        return self._with_login(f"read thread {tid} by author {author_id}",
                                lambda: self._posts_by(tid, author_id, max_pages))

    def reply(self, fid: int, tid: int, message: str, *, attach_ids: Sequence[int] = ()) -> ReplyResult:
        """Post ``message`` (BBCode) in thread ``tid``; bind uploaded attachments (the message should contain
        ``[attach]AID[/attach]``). Raises ForumFloodError, ForumRefusedError, …; never waits or retries a flood."""
        return self._with_login(f"reply in thread {tid}", lambda: self._reply(fid, tid, message, attach_ids))

    def upload_attachment(self, fid: int, path: Path, name: str) -> int:
        """Upload a standard Discuz attachment (misc.php?mod=swfupload) for board ``fid``; returns its aid."""
        return self._with_login(f"upload {name!r}", lambda: self._upload_attachment(fid, Path(path), name))

    def upload_plugin(self, path: Path, name: str, *, endpoint: str, file_field: str = "Filedata",
                      form_fields: Sequence[tuple[str, str]] = (("filetype", "video"),)) -> dict[str, str]:
        """Upload through the site's object-storage plugin; returns its ``data`` ({"url", "aid", "filename"})."""
        return self._with_login(f"upload {name!r} through the plugin",
                                lambda: self._upload_plugin(Path(path), name, endpoint, file_field, form_fields))

    def download(self, url: str, dest: Path, *, max_bytes: int = 4 * 1024**3) -> Path:
        """Download a forum attachment (``forum.php?mod=attachment&aid=…``) with this session's cookies. Only URLs
        on the forum's own host: the cookies never go anywhere else."""
        return self._with_login("download an attachment", lambda: self._download(url, Path(dest), max_bytes))

    def thread_url(self, tid: int) -> str:
        """The thread's public link, in the site's own URL style."""
        if self._rewrite:
            return f"{self._base}thread-{tid}-1-1.html"
        return f"{self._base}forum.php?mod=viewthread&tid={tid}"

    # --- login ---------------------------------------------------------------------------------------------------

    def _with_login(self, action: str, fn: Callable[[], T]) -> T:
        with self._lock:
            self._probe()
            if not (self._uid and self._auth_cookie()):
                self._login()
            try:
                return fn()
            except _SessionExpired:
                logger.info("%s: the session expired (%s); logging in again", self._host, action)
                self._drop_session()
                self._login()
                try:
                    return fn()
                except _SessionExpired as exc:
                    raise ForumLoginError(
                        f"{self._host}: {action} failed: the forum still treats us as a guest right after logging in "
                        f"as {self._username!r}; check that this account may view and post in the board and that "
                        "forum.base_url uses the host the forum's cookies are set for", message_id="not_loggedin",
                    ) from exc

    def _drop_session(self) -> None:
        self._uid = 0
        self._formhash = ""
        self._upload_hash = ""
        for cookie in list(self._session.cookies):
            if cookie.name.endswith("auth"):
                self._session.cookies.clear(cookie.domain, cookie.path, cookie.name)

    def _login(self) -> None:
        now = self._clock()
        if self._login_error is not None and now < self._login_blocked_until:
            raise self._replay(self._login_error, self._login_blocked_until - now)
        self._probe()
        self._drop_session()
        self.login_attempts += 1
        logger.info("%s: logging in as %s (%s)", self._host, self._username, "mobile API" if self._mobile else "desktop")
        try:
            uid = self._login_mobile() if self._mobile else self._login_desktop()
        except ForumError as exc:
            if not exc.retryable:
                self._note_login_failure(exc)
            raise
        self._uid = uid
        self._formhash = ""        # the formhash depends on the user: the guest one is useless now
        self._login_failures = 0
        self._login_error = None
        self._upload_hash = ""
        self._save_cookies()
        logger.info("%s: logged in as %s (uid %d)", self._host, self._username, uid)

    def _note_login_failure(self, exc: ForumError) -> None:
        self._login_failures += 1
        settings = self._settings
        if isinstance(exc, ForumConfigError):
            delay = settings.login_backoff_max_s
        else:
            delay = min(settings.login_backoff_s * 2 ** (self._login_failures - 1), settings.login_backoff_max_s)
        self._login_error = exc
        self._login_blocked_until = self._clock() + delay
        logger.warning("%s: login as %s failed (%s); next try in %.0f s", self._host, self._username,
                       exc.message_id or exc.code, delay)

    @staticmethod
    def _replay(exc: ForumError, wait_s: float) -> ForumError:
        message = f"{exc.message} [not trying to log in again for another {wait_s:.0f} s]"
        try:
            return type(exc)(message, message_id=exc.message_id)
        except TypeError:
            return ForumLoginError(message, message_id=exc.message_id)

    def _login_fields(self, formhash: str, loginfield: str) -> list[tuple[str, str]]:
        fields = [("formhash", formhash)] if formhash else []
        fields += [("referer", self._base), ("loginfield", loginfield), ("username", self._username),
                   ("password", self._password), ("questionid", "0"), ("answer", ""), ("cookietime", COOKIETIME)]
        return fields

    def _login_mobile(self) -> int:
        action = f"log in as {self._username!r}"
        try:
            secure = self._mobile_call("GET", "secure", {"type": "login"}, version="4")
            variables = protocol.mobile_variables(secure)
            if variables.get("sechash") or variables.get("seccode") or variables.get("secqaa"):
                raise protocol.error_for(Outcome(message_id="seccode_required", text="登录需要验证码", ok=False),
                                         action=action, site=self._host)
            formhash = str(variables.get("formhash") or "")
            doc = self._mobile_call("POST", "login", {"loginsubmit": "yes", "loginfield": "auto"}, version="3",
                                    fields=self._login_fields(formhash, "auto"))
        except _MobileUnavailable:
            self._mobile_off("login")
            return self._login_desktop()
        outcome = protocol.decode_mobile(doc)
        uid = protocol._int(protocol.mobile_variables(doc).get("member_uid"))
        if self._auth_cookie() and outcome.ok is not False:
            return uid or self._fetch_uid()
        return self._login_failed(outcome, action)

    def _login_desktop(self) -> int:
        action = f"log in as {self._username!r}"
        page_url = self._url("member.php?mod=logging&action=login")
        page = self._get_text(page_url, action=action)
        if protocol.needs_seccode(page):
            raise protocol.error_for(Outcome(message_id="seccode_required", text="登录表单要求验证码", ok=False),
                                     action=action, site=self._host)
        formhash = parse.formhash(page) or ""
        url = self._url("member.php?mod=logging&action=login&loginsubmit=yes&handlekey=login&inajax=1")
        fields = self._login_fields(formhash, "username") + [("loginsubmit", "true")]
        response = self._post(url, fields, action=action, referer=page_url)
        outcome = protocol.decode(self._decode(response), response.headers.get("Content-Type", "")) or Outcome()
        if protocol.is_password_page(outcome.url):
            outcome = Outcome(message_id="location_login_outofdate", text=outcome.text, ok=False)
        if self._auth_cookie() and outcome.ok is not False:
            return protocol._int(outcome.values.get("uid")) or self._fetch_uid()
        return self._login_failed(outcome, action)

    def _login_failed(self, outcome: Outcome, action: str) -> int:
        if outcome.message_id and outcome.ok is False:
            raise protocol.error_for(outcome, action=action, site=self._host)
        if outcome.ok:
            raise ForumLoginError(
                f"{self._host}: {action}: the forum said it logged us in ({outcome.text or outcome.message_id}) but set "
                "no auth cookie; check that forum.base_url uses the same host name as the forum's cookie domain",
                message_id=outcome.message_id)
        said = outcome.text[:200] if outcome.text else "nothing we recognise"
        raise ForumLoginError(f"{self._host}: {action} failed: the forum answered {said!r} and set no login cookie; "
                              "check FORUM_USERNAME / FORUM_PASSWORD and try logging in with a browser",
                              message_id=outcome.message_id)

    def _fetch_uid(self) -> int:
        """Who we are, from a page after login (mobile ``member_uid`` or the desktop ``discuz_uid``)."""
        if self._mobile:
            try:
                doc = self._mobile_call("GET", "forumindex", {})
                uid = protocol._int(protocol.mobile_variables(doc).get("member_uid"))
                if uid:
                    return uid
            except _MobileUnavailable:
                pass
        page = self._get_text(self._url("forum.php"), action="read the front page")
        match = _PAGE_UID.search(page)
        uid = int(match.group(1)) if match else 0
        if not uid:
            raise ForumLoginError(f"{self._host}: logged in as {self._username!r} but the forum does not show a user id; "
                                  "log in with a browser to see whether the account needs attention",
                                  message_id="not_loggedin")
        return uid

    def _whoami(self) -> None:
        if self._mobile:
            try:
                doc = self._mobile_call("GET", "forumindex", {})
                self._mobile_session(doc, protocol.decode_mobile(doc))
                return
            except _MobileUnavailable:
                self._mobile_off("checking the login")
        self._page(self._url("forum.php"), action="read the front page")

    # --- probing -------------------------------------------------------------------------------------------------

    def _probe(self) -> None:
        if self._probed:
            return
        if self._settings.api != "desktop":
            try:
                doc = self._mobile_call("GET", "check", {}, version="4")
                self._mobile = True
                self._version = str(doc.get("truediscuzversion") or doc.get("discuzversion") or "")
                if not self._charset:
                    self._charset = parse._charset_name(str(doc.get("charset") or "")) or ""
            except _MobileUnavailable:
                self._mobile_off("probing")
        front = self._session_get(self._url("forum.php"), action="read the front page")
        if not self._charset:
            self._charset = parse.detect_charset(front.content, front.headers.get("Content-Type"))
        self._note_rewrite(self._decode(front))
        self._probed = True
        logger.info("%s: %s, charset %s, %s", self._host, self._version or "Discuz!", self.charset,
                    "mobile API" if self._mobile else "desktop pages")

    def _mobile_off(self, during: str) -> None:
        if self._settings.api == "mobile":
            raise ForumConfigError(f"{self._host}: the mobile API (api/mobile/index.php) does not answer ({during}) but "
                                   "forum.api is 'mobile'; enable the 掌上论坛 (mobile) plugin or set forum.api: auto",
                                   message_id="mobile_is_closed")
        if self._mobile is not False:
            logger.warning("%s: the mobile API does not answer (%s); using the desktop pages", self._host, during)
        self._mobile = False

    def _note_rewrite(self, page: str) -> None:
        if not self._rewrite and _REWRITE_LINK.search(page):
            self._rewrite = True

    # --- HTTP ----------------------------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return urljoin(self._base, path)

    def _session_get(self, url: str, *, action: str, params: Mapping[str, Any] | None = None,
                     stream: bool = False) -> requests.Response:
        return self._send("GET", url, action=action, params=params, stream=stream)

    def _send(self, method: str, url: str, *, action: str, params: Mapping[str, Any] | None = None,
              data: Any = None, headers: Mapping[str, str] | None = None, stream: bool = False) -> requests.Response:
        try:
            response = self._session.request(method, url, params=params, data=data, headers=dict(headers or {}),
                                             timeout=self._settings.timeout_s, stream=stream)
        except requests.Timeout as exc:
            raise ForumError(f"{self._host}: {action} timed out after {self._settings.timeout_s:g} s; the forum is slow "
                             "or down — it is tried again later", message_id="timeout") from exc
        except requests.RequestException as exc:
            raise ForumError(f"{self._host}: {action} failed: cannot reach the forum ({type(exc).__name__}); check the "
                             "network and forum.base_url — it is tried again later", message_id="unreachable") from exc
        for step in [*response.history, response]:
            if protocol.is_password_page(step.headers.get("Location", "")) or protocol.is_password_page(step.url):
                response.close()
                raise protocol.error_for(Outcome(message_id="location_login_outofdate", ok=False), action=action,
                                         site=self._host)
        status = response.status_code
        if status >= 500 or status in (408, 429):
            response.close()
            raise ForumError(f"{self._host}: {action} failed: the forum answered HTTP {status}; it is tried again later",
                             message_id=f"http_{status}")
        logger.debug("%s: %s %s → HTTP %d", self._host, method, action, status)
        return response

    def _decode(self, response: requests.Response) -> str:
        body = response.content
        ctype = response.headers.get("Content-Type", "")
        if "json" in ctype or body.lstrip()[:1] == b"{":
            return body.decode("utf-8", errors="replace").lstrip("\ufeff")  # mobile JSON is always UTF-8
        if not self._charset:
            self._charset = parse.detect_charset(body, ctype)
        return body.decode(_codec(self.charset), errors="replace")

    def _get_text(self, url: str, *, action: str, params: Mapping[str, Any] | None = None) -> str:
        response = self._session_get(url, action=action, params=params)
        if response.status_code >= 400 and response.status_code != 404:
            raise self._http_error(response, action)
        return self._decode(response)

    def _http_error(self, response: requests.Response, action: str) -> ForumError:
        outcome = protocol.decode(self._decode(response), response.headers.get("Content-Type", ""))
        if outcome and outcome.message_id:
            return protocol.error_for(outcome, action=action, site=self._host)
        return ForumError(f"{self._host}: {action} failed: the forum answered HTTP {response.status_code}; check "
                          "forum.base_url and the account's permissions", message_id=f"http_{response.status_code}",
                          retryable=False)

    def _post(self, url: str, fields: Sequence[tuple[str, str]], *, action: str, referer: str = "",
              ajax: bool = True) -> requests.Response:
        headers = {"Content-Type": f"application/x-www-form-urlencoded; charset={self.charset}"}
        if referer:
            headers["Referer"] = referer
        if ajax:
            headers["X-Requested-With"] = "XMLHttpRequest"
        response = self._send("POST", url, action=action, data=protocol.encode_form(fields, self.charset),
                              headers=headers)
        if response.status_code >= 400 and response.status_code != 404:
            raise self._http_error(response, action)
        return response

    def _page(self, url: str, *, action: str, params: Mapping[str, Any] | None = None) -> str:
        """A desktop page we expect to be content; showmessage pages become errors, guest signs _SessionExpired."""
        page = self._get_text(url, action=action, params=params)
        self._note_rewrite(page)
        outcome = protocol.decode_page(page)
        if outcome is not None and outcome.ok is not True and (outcome.ok is False or outcome.message_id):
            if outcome.login_required:
                raise _SessionExpired(outcome.message_id)
            raise protocol.error_for(outcome, action=action, site=self._host)
        match = _PAGE_UID.search(page)
        if (match and match.group(1) == "0") or protocol.looks_like_login_form(page) or not self._auth_cookie():
            raise _SessionExpired("guest page")
        fh = parse.formhash(page)
        if fh:
            self._formhash = fh
        return page

    def _mobile_call(self, method: str, module: str, params: Mapping[str, Any], *, version: str = "4",
                     fields: Sequence[tuple[str, str]] | None = None) -> dict[str, Any]:
        url = self._url(MOBILE_PATH)
        query = {"version": version, "module": module, **params}
        action = f"mobile {module}"
        if method == "POST":
            headers = {"Content-Type": f"application/x-www-form-urlencoded; charset={self.charset}"}
            response = self._send("POST", url, action=action, params=query,
                                  data=protocol.encode_form(fields or (), self.charset), headers=headers)
        else:
            response = self._send("GET", url, action=action, params=query)
        text = self._decode(response)
        try:
            doc = json.loads(text)
        except ValueError:
            if protocol.is_tainted(text):
                return {"Message": {"messageval": "request_tainting", "messagestr": protocol.tainted_outcome().text}}
            if module == "login" and self._auth_cookie():
                return {}   # X3.5 v4 login bug: the cookies are set, the body is an HTML error
            raise _MobileUnavailable(f"{module}: not JSON (HTTP {response.status_code})") from None
        if not isinstance(doc, dict):
            raise _MobileUnavailable(f"{module}: not an object")
        error = protocol.mobile_error(doc)
        if error in ("mobile_is_closed", "module_not_exists", "plugin_is_closed") or (
                response.status_code == 404 and "Variables" not in doc):
            raise _MobileUnavailable(f"{module}: {error or 'HTTP 404'}")
        if response.status_code >= 400 and "Variables" not in doc and "Message" not in doc:
            raise self._http_error(response, action)
        variables = protocol.mobile_variables(doc)
        if variables.get("formhash"):
            self._formhash = str(variables["formhash"])
        logger.debug("%s: mobile %s → %s", self._host, module,
                     (doc.get("Message") or {}).get("messageval", "ok") if isinstance(doc.get("Message"), dict)
                     else "ok")
        return doc

    def _mobile_session(self, doc: Mapping[str, Any], outcome: Outcome) -> None:
        """Raise _SessionExpired when a mobile answer shows we are a guest."""
        if outcome.login_required:
            raise _SessionExpired(outcome.message_id)
        variables = protocol.mobile_variables(doc)
        if variables and str(variables.get("member_uid") or "0") == "0":
            raise _SessionExpired("member_uid 0")
        if not self._auth_cookie():
            raise _SessionExpired("auth cookie gone")

    def _mobile_read(self, module: str, params: Mapping[str, Any], action: str) -> dict[str, Any]:
        doc = self._mobile_call("GET", module, params)
        outcome = protocol.decode_mobile(doc)
        self._mobile_session(doc, outcome)
        if outcome.ok is False:
            raise protocol.error_for(outcome, action=action, site=self._host)
        return doc

    def _use_mobile(self) -> bool:
        return bool(self._mobile) and self._settings.api != "desktop"

    # --- reading -------------------------------------------------------------------------------------------------

    def _list_threads(self, fid: int, page_no: int = 1) -> list[ThreadRow]:
        action = f"list board {fid}" + (f" page {page_no}" if page_no > 1 else "")
        params = {"fid": fid, "page": page_no, "tpp": self._settings.page_size, "filter": "author",
                  "orderby": "dateline"}
        if self._use_mobile():
            try:
                doc = self._mobile_read("forumdisplay", params, action)
                self._note_types(fid, doc)
                return parse.board_rows_json(doc, fid)
            except _MobileUnavailable:
                self._mobile_off(action)
        query = {"mod": "forumdisplay", "fid": fid, "filter": "author", "orderby": "dateline", "page": page_no}
        page = self._page(self._url("forum.php"), action=action, params=query)
        return parse.board_rows_html(page, fid)

    def _read_page(self, tid: int, page_no: int, author_id: int) -> ThreadPage:
        action = f"read thread {tid}" + (f" page {page_no}" if page_no > 1 else "")
        extra = {"authorid": author_id} if author_id else {}
        if self._use_mobile():
            try:
                doc = self._mobile_read("viewthread", {"tid": tid, "page": page_no, **extra}, action)
                return self._with_category(parse.thread_json(doc), doc)
            except _MobileUnavailable:
                self._mobile_off(action)
        query = {"mod": "viewthread", "tid": tid, "page": page_no, **extra}
        return parse.thread_html(self._page(self._url("forum.php"), action=action, params=query), tid)

    def _note_types(self, fid: int, doc: Mapping[str, Any]) -> None:
        names = parse._type_names(protocol.mobile_variables(doc))
        if names or fid not in self._type_names:
            self._type_names[fid] = names

    def _with_category(self, page: ThreadPage, doc: Mapping[str, Any]) -> ThreadPage:
        """The mobile viewthread answer has the thread's typeid but not the type names: take them from the board's
        forumdisplay answer (fetched once per board)."""
        thread = protocol.mobile_variables(doc).get("thread")
        typeid = str(thread.get("typeid") or "0") if isinstance(thread, Mapping) else "0"
        if page.category or typeid == "0" or not page.fid:
            return page
        if page.fid not in self._type_names:
            params = {"fid": page.fid, "page": 1, "tpp": 1}
            self._note_types(page.fid, self._mobile_read("forumdisplay", params, f"read the categories of board "
                                                                                 f"{page.fid}"))
        return dataclasses.replace(page, category=self._type_names[page.fid].get(typeid, ""))

    def _posts_by(self, tid: int, author_id: int, max_pages: int) -> list[Post]:
        posts: dict[int, Post] = {}
        first_count = 0
        for page_no in range(1, max(1, max_pages) + 1):
            page = self._read_page(tid, page_no, author_id)
            found = [p for p in page.posts if p.author_id in (author_id, 0)]
            new = [p for p in found if p.pid not in posts]
            if not new:
                break      # past the last page: Discuz repeats the last one
            posts.update((p.pid, p) for p in new)
            first_count = first_count or len(page.posts)
            if len(page.posts) < first_count:
                break
        return list(posts.values())

    # --- writing -------------------------------------------------------------------------------------------------

    def _reply(self, fid: int, tid: int, message: str, attach_ids: Sequence[int]) -> ReplyResult:
        action = f"reply in thread {tid}"
        attach = [(f"attachnew[{int(aid)}][description]", "") for aid in attach_ids]
        for attempt in (1, 2):
            outcome = None
            if self._use_mobile():
                try:
                    outcome = self._reply_mobile(fid, tid, message, attach, action)
                except _MobileUnavailable:
                    self._mobile_off(action)
            if outcome is None:
                outcome = self._reply_desktop(fid, tid, message, attach, action)
            if outcome.message_id in protocol.TAINT_IDS and attempt == 1:
                logger.info("%s: %s: the form hash was refused (%s); fetching a fresh one", self._host, action,
                            outcome.message_id)
                self._formhash = ""
                continue
            break
        assert outcome is not None
        logger.info("%s: %s → %s", self._host, action, outcome.message_id or ("ok" if outcome.ok else "?"))
        if outcome.login_required:
            raise _SessionExpired(outcome.message_id)
        pid = protocol._int(outcome.values.get("pid"))
        if not pid and outcome.url:
            match = _PID_IN_URL.search(outcome.url)
            pid = int(match.group(1)) if match else 0
        if outcome.message_id == "post_reply_mod_succeed":
            return ReplyResult(pid=0, moderated=True, message=outcome.text)
        if outcome.ok and (pid or outcome.message_id):
            return ReplyResult(pid=pid, moderated=False, message=outcome.text)
        if outcome.ok is False or outcome.message_id:
            raise protocol.error_for(outcome, action=action, site=self._host)
        raise ForumRefusedError(f"{self._host}: {action}: the forum's answer did not say whether the reply was posted "
                                f"({outcome.text[:200]!r}); look in the thread before posting again",
                                message_id="unknown_answer")

    def _reply_mobile(self, fid: int, tid: int, message: str, attach: list[tuple[str, str]],
                      action: str) -> Outcome:
        if not self._formhash:
            secure = self._mobile_call("GET", "secure", {"type": "post"})
            variables = protocol.mobile_variables(secure)
            if variables.get("sechash") or variables.get("seccode"):
                raise protocol.error_for(Outcome(message_id="seccode_required", text="回帖需要验证码", ok=False),
                                         action=action, site=self._host)
        fields = [("formhash", self._formhash), ("message", message), ("usesig", "1"),
                  ("posttime", str(int(time.time()))), *attach]
        doc = self._mobile_call("POST", "sendreply", {"fid": fid, "tid": tid, "replysubmit": "yes"}, fields=fields)
        outcome = protocol.decode_mobile(doc)
        pid = protocol._int(protocol.mobile_variables(doc).get("pid"))
        if pid and outcome.ok is None:
            outcome = Outcome(message_id="post_reply_succeed", ok=True, values=outcome.values, kind="mobile")
        return outcome

    def _reply_desktop(self, fid: int, tid: int, message: str, attach: list[tuple[str, str]],
                       action: str) -> Outcome:
        thread_page = self._url(f"forum.php?mod=viewthread&tid={tid}")
        if not self._formhash:
            self._page(thread_page, action=f"read thread {tid}")
        url = self._url(f"forum.php?mod=post&action=reply&fid={fid}&tid={tid}&extra=&replysubmit=yes&infloat=yes"
                        "&handlekey=fastpost&inajax=1")
        fields = [("formhash", self._formhash), ("posttime", str(int(time.time()))), ("usesig", "1"),
                  ("subject", "  "), ("message", message), *attach, ("replysubmit", "yes")]
        response = self._post(url, fields, action=action, referer=thread_page)
        body = self._decode(response)
        outcome = protocol.decode(body, response.headers.get("Content-Type", ""))
        if outcome is None:
            return Outcome(text=protocol.clean_text(body)[:300], kind="page")
        return outcome

    # --- uploads -------------------------------------------------------------------------------------------------

    def _upload_form(self, url: str, fields: Sequence[tuple[str, str]], file_field: str, path: Path, name: str,
                     action: str, referer: str = "") -> requests.Response:
        if not path.is_file():
            raise ForumRefusedError(f"{self._host}: {action}: {path} is not a file", message_id="no_file")
        boundary, head, tail = protocol.multipart_parts(fields, file_field, name, self.charset)
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        if referer:
            headers["Referer"] = referer
        response = self._send("POST", url, action=action, data=_MultipartStream(head, path, tail), headers=headers)
        if response.status_code >= 400:
            raise self._http_error(response, action)
        return response

    def _fetch_upload_hash(self, fid: int, action: str) -> str:
        page = self._page(self._url("forum.php"), action=f"open the post form of board {fid}",
                          params={"mod": "post", "action": "newthread", "fid": fid})
        found = protocol.upload_hash(page)
        if not found:
            raise ForumRefusedError(f"{self._host}: {action}: the post form of board {fid} offers no attachment upload; "
                                    "allow attachments for this account's user group (允许上传附件) in that board",
                                    message_id="attach_nopermission")
        return found

    def _upload_attachment(self, fid: int, path: Path, name: str) -> int:
        action = f"upload {name!r} as an attachment"
        # Not "simple" mode: then misc_swfupload.php URL-decodes the file name and converts it from UTF-8 to the
        # site charset itself, so the multipart header stays ASCII whatever the site's charset (the answer is the
        # bare aid, or -status).
        url = self._url(f"misc.php?mod=swfupload&action=swfupload&operation=upload&fid={fid}&type=attach")
        for attempt in (1, 2):
            if not self._upload_hash:
                self._upload_hash = self._fetch_upload_hash(fid, action)
            fields = [("uid", str(self._uid)), ("hash", self._upload_hash)]
            response = self._upload_form(url, fields, "Filedata", path, quote(name, safe=""), action,
                                         referer=self._url(f"forum.php?mod=post&action=newthread&fid={fid}"))
            body = self._decode(response)
            if protocol.looks_like_login_form(body):
                raise _SessionExpired("upload")
            try:
                aid = protocol.upload_aid(body, site=self._host, name=name)
            except ForumRefusedError as exc:
                if exc.message_id == "upload_status_10" and attempt == 1:
                    self._upload_hash = ""
                    continue
                raise
            logger.info("%s: uploaded an attachment (aid %d, %d bytes)", self._host, aid, path.stat().st_size)
            return aid
        raise AssertionError("unreachable")

    def _upload_plugin(self, path: Path, name: str, endpoint: str, file_field: str,
                       form_fields: Sequence[tuple[str, str]]) -> dict[str, str]:
        action = f"upload {name!r} through the plugin"
        url = endpoint if urlsplit(endpoint).scheme else self._url(endpoint.lstrip("/"))
        if urlsplit(url).netloc != self._host:
            raise ForumConfigError(f"{self._host}: publish.endpoint {urlsplit(url).netloc!r} is not on the forum's host; "
                                   "the forum session's cookies are only sent to the forum", message_id="foreign_host")
        response = self._upload_form(url, list(form_fields), file_field, path, name, action)
        body = self._decode(response)
        if protocol.looks_like_login_form(body) or (body.lstrip().startswith("{") and
                                                    "_login_nopermission" in body):
            raise _SessionExpired("plugin upload")
        data = protocol.plugin_answer(body, site=self._host, name=name)
        logger.info("%s: uploaded through the plugin (aid %s)", self._host, data.get("aid") or "-")
        return data

    def _download(self, url: str, dest: Path, max_bytes: int) -> Path:
        absolute = self._url(url)
        if urlsplit(absolute).netloc != self._host:
            raise ForumRefusedError(f"{self._host}: not downloading {urlsplit(absolute).netloc!r} with the forum's "
                                    "cookies; only forum attachments go through the forum session",
                                    message_id="foreign_host")
        action = "download an attachment"
        response = self._session_get(absolute, action=action, stream=True)
        try:
            ctype = response.headers.get("Content-Type", "")
            if response.status_code >= 400 or "text/html" in ctype or "xml" in ctype:
                body = self._decode(response)
                outcome = protocol.decode(body, ctype)
                if outcome and outcome.login_required or protocol.looks_like_login_form(body):
                    raise _SessionExpired("attachment")
                if outcome and outcome.message_id:
                    raise protocol.error_for(outcome, action=action, site=self._host)
                raise ForumRefusedError(f"{self._host}: {action} failed: the forum sent a page instead of the file "
                                        f"(HTTP {response.status_code}); check the attachment's permissions",
                                        message_id="attachment_page")
            return self._stream_to(response, dest, max_bytes, action)
        finally:
            response.close()

    def _stream_to(self, response: requests.Response, dest: Path, max_bytes: int, action: str) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        size = 0
        try:
            with part.open("wb") as out:
                for chunk in response.iter_content(_CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise ForumRefusedError(f"{self._host}: {action}: the attachment is larger than {max_bytes} "
                                                "bytes", message_id="too_large")
                    out.write(chunk)
        except requests.RequestException as exc:
            part.unlink(missing_ok=True)
            raise ForumError(f"{self._host}: {action} was cut off ({type(exc).__name__}); it is tried again later",
                             message_id="cut_off") from exc
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        os.replace(part, dest)
        return dest

    # --- cookies -------------------------------------------------------------------------------------------------

    def _auth_cookie(self) -> bool:
        return any(c.name.endswith("_auth") and c.value for c in self._session.cookies)

    def _load_cookies(self) -> bool:
        path = self._cookie_file
        if path is None or not path.is_file():
            return False
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            logger.warning("%s: ignoring the unreadable cookie file %s (%s)", self._host, path, type(exc).__name__)
            return False
        if (not isinstance(doc, dict) or doc.get("version") != _COOKIE_FILE_VERSION or doc.get("base_url") != self._base
                or doc.get("username") != self._username):
            return False
        now = time.time()
        for item in doc.get("cookies") or ():
            try:
                expires = item.get("expires")
                if expires is not None and expires < now:
                    continue
                self._session.cookies.set(item["name"], item["value"], domain=item.get("domain", ""),
                                          path=item.get("path", "/"), expires=expires,
                                          secure=bool(item.get("secure")))
            except (KeyError, TypeError, AttributeError):
                continue
        self._uid = protocol._int(doc.get("uid"))
        if not self._auth_cookie():
            self._uid = 0
        logger.info("%s: restored the saved session of %s%s", self._host, self._username,
                    "" if self._uid else " (no login in it)")
        return bool(self._uid)

    def _save_cookies(self) -> None:
        path = self._cookie_file
        if path is None:
            return
        cookies = [{"name": c.name, "value": c.value, "domain": c.domain, "path": c.path, "expires": c.expires,
                    "secure": c.secure} for c in self._session.cookies]
        doc = {"version": _COOKIE_FILE_VERSION, "base_url": self._base, "username": self._username, "uid": self._uid,
               "saved_at": int(time.time()), "cookies": cookies}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".forum-cookies-", dir=path.parent)   # mkstemp creates it 0600
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump(doc, handle)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.chmod(tmp, 0o600)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            logger.warning("%s: could not save the session to %s (%s); the next start logs in again", self._host,
                           path, type(exc).__name__)
