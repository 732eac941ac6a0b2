"""The aiohttp application and DiscuzServer, which runs it in a background thread with its own event loop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from . import desktop, hooks
from .config import Account, ForumConfig
from .context import Ctx, build_ctx
from .message import system_error
from .mobile import mobile_api
from .state import ForumState, Post, Thread

Page = Callable[[Ctx], web.Response]


@dataclass
class FailPlan:
    """The next ``count`` requests answer ``status`` after hanging ``hang`` seconds (outage tests)."""

    count: int = 0
    status: int = 502
    hang: float = 0.0


class Forum:
    """Config + data + the test-only controls; the handlers and DiscuzServer's methods share one instance."""

    def __init__(self, config: ForumConfig | None = None) -> None:
        self.config = config or ForumConfig()
        self.state = ForumState()
        self.fail = FailPlan()
        self._fail_lock = threading.Lock()

    # --- test controls -----------------------------------------------------------------------------------------

    def _account(self, username: str | None, uid: int | None) -> Account:
        account = self.config.account(username=username, uid=uid)
        if account is None:
            raise ValueError(f"no such account: {username or uid}")
        return account

    def create_thread(self, *, subject: str, message: str, username: str | None = None, uid: int | None = None,
                      fid: int | None = None, typeid: int = 0, dateline: int | None = None,
                      displayorder: int = 0) -> Thread:
        """Post a thread as a member, bypassing every check (no flood control, no formhash)."""
        account = self._account(username, uid)
        board = self.config.board(fid) if fid is not None else self.config.boards[0]
        if board is None:
            raise ValueError(f"no such board: {fid}")
        return self.state.add_thread(fid=board.fid, typeid=typeid, subject=subject, message=message,
                                     authorid=account.uid, author=account.username, dateline=dateline,
                                     displayorder=displayorder)

    def add_reply(self, tid: int, *, message: str, username: str | None = None, uid: int | None = None,
                  dateline: int | None = None, invisible: int = 0) -> Post:
        account = self._account(username, uid)
        return self.state.add_post(tid, authorid=account.uid, author=account.username, message=message,
                                   dateline=dateline, invisible=invisible)

    def set_config(self, **changes: Any) -> dict[str, Any]:
        """Change run-time settings (captcha, floodctrl, moderate_replies, mobile_api, ...)."""
        bad = set(changes) - set(ForumConfig.RUNTIME_KEYS)
        if bad:
            raise ValueError(f"not changeable at run time: {sorted(bad)}")
        for key, value in changes.items():
            current = getattr(self.config, key)
            if isinstance(current, bool):
                value = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
            elif isinstance(current, int):
                value = int(value)
            setattr(self.config, key, value)
        self.config.__post_init__()
        return {k: getattr(self.config, k) for k in ForumConfig.RUNTIME_KEYS}

    def fail_next(self, count: int, *, status: int = 502, hang: float = 0.0) -> None:
        with self._fail_lock:
            self.fail = FailPlan(count, status, hang)

    def take_failure(self) -> FailPlan | None:
        with self._fail_lock:
            if self.fail.count <= 0:
                return None
            self.fail.count -= 1
            return FailPlan(1, self.fail.status, self.fail.hang)

    def reset_login_failures(self) -> None:
        with self.state.lock:
            self.state.login_failures.clear()

    def snapshot(self) -> dict[str, Any]:
        data = self.state.snapshot()
        data["config"] = {k: getattr(self.config, k) for k in ForumConfig.RUNTIME_KEYS}
        data["cookiepre"] = self.config.cookiepre
        return data


# --- the application ---------------------------------------------------------------------------------------------

_FROZEN_OK = ("/member.php", "/home.php")


def _discuz(forum: Forum, page: Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Wrap a page in Discuz's init: input decoding, saltkey, user, _xss_check, frozen accounts, cookies out."""

    async def handler(request: web.Request) -> web.StreamResponse:
        ctx = await build_ctx(request, forum)
        if ctx.tainted():
            response = system_error(ctx)
        elif ctx.user is not None and ctx.user.frozen and request.path not in _FROZEN_OK:
            response = ctx.redirect("home.php?mod=spacecp&ac=profile&op=password")
        else:
            response = page(ctx)
        ctx.apply_cookies(response)
        return response

    return handler


def _rewritten(forum: Forum, kind: str) -> Page:
    def page(ctx: Ctx) -> web.Response:
        if not forum.config.rewrite:
            return web.Response(status=404, text="404 Not Found", content_type="text/html")
        a, b = int(ctx.request.match_info["a"]), int(ctx.request.match_info["b"])
        if kind == "forum":
            return desktop.forumdisplay(ctx, a, max(1, b))
        return desktop.viewthread(ctx, a, max(1, b), 0)

    return page


def build_app(forum: Forum) -> web.Application:

    @web.middleware
    async def outage(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                     ) -> web.StreamResponse:
        if not request.path.startswith("/_test/"):
            plan = forum.take_failure()
            if plan is not None:
                if plan.hang > 0:
                    await asyncio.sleep(plan.hang)
                return web.Response(status=plan.status, text=f"{plan.status} injected failure")
        return await handler(request)

    app = web.Application(middlewares=[outage], client_max_size=1024**3)
    routes = {
        "/forum.php": desktop.forum_php, "/index.php": desktop.forum_php, "/": desktop.forum_php,
        "/member.php": desktop.member_php, "/home.php": desktop.home_php, "/misc.php": desktop.misc_php,
        "/source/plugin/tencentcos/upload_api.php": desktop.cos_upload, "/api/mobile/index.php": mobile_api,
    }
    for path, page in routes.items():
        app.router.add_route("*", path, _discuz(forum, page))
    app.router.add_route("*", r"/forum-{a:\d+}-{b:\d+}.html", _discuz(forum, _rewritten(forum, "forum")))
    app.router.add_route("*", r"/thread-{a:\d+}-{b:\d+}-{c:\d+}.html", _discuz(forum, _rewritten(forum, "thread")))

    async def cos(request: web.Request) -> web.StreamResponse:
        return desktop.cos_object(request, forum.state.cos)

    app.router.add_get("/cos/{key:.+}", cos)
    hooks.add_routes(app, forum)
    return app


class DiscuzServer:
    """A Discuz!-compatible forum on 127.0.0.1, in a background thread: ``url = server.start()``; ``close()``.

    Also a context manager. The test controls (``create_thread``, ``add_reply``, ``set_config``, ``fail_next``,
    ``snapshot``) are the same as the HTTP ones under ``/_test/``.
    """

    def __init__(self, config: ForumConfig | None = None, *, port: int = 0, host: str = "127.0.0.1") -> None:
        self.forum = Forum(config)
        self.host, self.port = host, port
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def config(self) -> ForumConfig:
        return self.forum.config

    @property
    def state(self) -> ForumState:
        return self.forum.state

    # --- lifecycle ---------------------------------------------------------------------------------------------

    async def start_async(self) -> str:
        """Start on the running loop (used by the CLI); returns the base URL."""
        self._runner = web.AppRunner(build_app(self.forum), access_log=None, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []  # noqa: SLF001 - the only way to learn port 0
        self.port = sockets[0].getsockname()[1]
        self.url = f"http://{self.host}:{self.port}/"
        return self.url

    async def close_async(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start(self, timeout: float = 10.0) -> str:
        """Run in a background thread with its own loop; returns ``http://127.0.0.1:PORT/`` (again if running)."""
        if self._thread is not None and self._thread.is_alive():
            return self.url
        self._ready.clear()
        self._thread = threading.Thread(target=self._run, name="discuz-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the Discuz test server did not start")
        if self._error is not None:
            raise RuntimeError("the Discuz test server failed to start") from self._error
        return self.url

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self.start_async())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self.close_async())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def close(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> DiscuzServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- test controls -----------------------------------------------------------------------------------------

    def create_thread(self, **kwargs: Any) -> Thread:
        """See Forum.create_thread: subject, message, username|uid, fid, typeid, dateline, displayorder."""
        return self.forum.create_thread(**kwargs)

    def add_reply(self, tid: int, **kwargs: Any) -> Post:
        return self.forum.add_reply(tid, **kwargs)

    def set_config(self, **changes: Any) -> dict[str, Any]:
        return self.forum.set_config(**changes)

    def fail_next(self, count: int, *, status: int = 502, hang: float = 0.0) -> None:
        self.forum.fail_next(count, status=status, hang=hang)

    def reset_login_failures(self) -> None:
        self.forum.reset_login_failures()

    def snapshot(self) -> dict[str, Any]:
        return self.forum.snapshot()

    def cookie_name(self, name: str) -> str:
        """``cookiepre + name``, e.g. ``yXcN_2132_auth``."""
        return self.forum.config.cookiepre + name

    def wait_until(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5.0) -> dict[str, Any]:
        """Poll ``snapshot()`` until ``predicate`` holds; returns the snapshot (TimeoutError otherwise)."""
        deadline = time.monotonic() + timeout
        while True:
            snap = self.snapshot()
            if predicate(snap):
                return snap
            if time.monotonic() > deadline:
                raise TimeoutError("condition not met on the Discuz test server")
            time.sleep(0.02)
