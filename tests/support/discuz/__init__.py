"""A Discuz! X3.4/X3.5-compatible forum for tests (independent of aicut's client, written from DISCUZ.md).

In-process: ``server = DiscuzServer(ForumConfig(floodctrl=0)); url = server.start(); ...; server.close()`` (or
``with DiscuzServer(...) as server``). As a process: ``python -m tests.support.discuz [--port 0] [--config F.json]
[--charset gbk] [--version X3.4] [--captcha] [--rewrite] [--no-mobile-api] [--floodctrl N]`` prints
``listening on http://127.0.0.1:PORT/`` and stops on SIGTERM.

Discuz routes: ``forum.php`` (index, ``mod=forumdisplay|viewthread|post|attachment|redirect``), ``forum-F-P.html`` and
``thread-T-P-1.html`` (only with ``rewrite``), ``member.php?mod=logging&action=login|logout``, ``home.php``,
``misc.php?mod=swfupload&operation=upload``, ``source/plugin/tencentcos/upload_api.php``, ``api/mobile/index.php``;
objects uploaded through the plugin are served under ``/cos/<key>``.

Test-only routes (JSON): ``GET /_test/state``; ``POST /_test/thread`` {username|uid, subject, message, fid, typeid,
dateline, displayorder}; ``POST /_test/reply`` {tid, username|uid, message, dateline}; ``POST /_test/config``
{captcha, floodctrl, moderate_replies, mobile_api, minpostsize, rewrite, relative_dates, version, tpp, ppp};
``POST /_test/fail`` {count, status=502, hang=seconds}; ``POST /_test/reset_logins``. DiscuzServer has the same as
methods: ``create_thread``, ``add_reply``, ``set_config``, ``fail_next``, ``reset_login_failures``, ``snapshot``.
"""

from .config import Account, Board, ForumConfig
from .server import DiscuzServer, Forum

__all__ = ["Account", "Board", "DiscuzServer", "Forum", "ForumConfig"]
