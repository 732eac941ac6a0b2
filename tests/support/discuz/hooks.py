"""Test-only endpoints a real Discuz! does not have, all under /_test/ (JSON in, JSON out)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from .server import Forum


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data, ensure_ascii=False), status=status, content_type="application/json")


def add_routes(app: web.Application, forum: Forum) -> None:
    """GET /_test/state; POST /_test/thread, /_test/reply, /_test/config, /_test/fail, /_test/reset_logins."""

    def guarded(fn: Callable[[dict[str, Any]], Any]) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            try:
                body = await request.json() if request.can_read_body else {}
                return _json(fn(body))
            except (ValueError, KeyError, TypeError) as exc:
                return _json({"error": str(exc)}, 400)
        return handler

    async def state(request: web.Request) -> web.Response:
        return _json(forum.snapshot())

    def thread(body: dict[str, Any]) -> dict[str, Any]:
        t = forum.create_thread(subject=body["subject"], message=body["message"], username=body.get("username"),
                                uid=body.get("uid"), fid=body.get("fid"), typeid=int(body.get("typeid", 0)),
                                dateline=body.get("dateline"), displayorder=int(body.get("displayorder", 0)))
        return {"tid": t.tid, "pid": t.posts[0].pid, "fid": t.fid}

    def reply(body: dict[str, Any]) -> dict[str, Any]:
        p = forum.add_reply(int(body["tid"]), message=body["message"], username=body.get("username"),
                            uid=body.get("uid"), dateline=body.get("dateline"))
        return {"tid": p.tid, "pid": p.pid}

    def config(body: dict[str, Any]) -> dict[str, Any]:
        return forum.set_config(**body)

    def fail(body: dict[str, Any]) -> dict[str, Any]:
        forum.fail_next(int(body.get("count", 1)), status=int(body.get("status", 502)),
                        hang=float(body.get("hang", 0)))
        return {"count": forum.fail.count, "status": forum.fail.status, "hang": forum.fail.hang}

    def reset_logins(body: dict[str, Any]) -> dict[str, Any]:
        forum.reset_login_failures()
        return {"ok": True}

    app.router.add_get("/_test/state", state)
    app.router.add_post("/_test/thread", guarded(thread))
    app.router.add_post("/_test/reply", guarded(reply))
    app.router.add_post("/_test/config", guarded(config))
    app.router.add_post("/_test/fail", guarded(fail))
    app.router.add_post("/_test/reset_logins", guarded(reset_logins))
