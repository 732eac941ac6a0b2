"""A Discuz! X3.4/X3.5-compatible forum for tests (independent of aicut's client, written from DISCUZ.md).

``DiscuzServer(ForumConfig(...)).start()`` runs it in-process; ``python -m tests.support.discuz`` as a process.
"""

from .config import Account, Board, ForumConfig
from .server import DiscuzServer, Forum

__all__ = ["Account", "Board", "DiscuzServer", "Forum", "ForumConfig"]
