"""Configuration of the test forum: accounts, boards and the site settings a Discuz! admin can change."""

from __future__ import annotations

import json
import random
import string
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any


@dataclass
class Account:
    """A member. ``groupid`` 1-3 are staff (exempt from flood control and post size checks, like Discuz)."""

    username: str
    password: str
    uid: int
    groupid: int = 10
    questionid: int = 0  # 1..7: the account has a security question (0 = none)
    answer: str = ""
    frozen: bool = False


@dataclass
class Board:
    """A forum board; ``types`` are its thread categories {typeid: name}; ``types_required`` as in Discuz."""

    fid: int
    name: str
    types: dict[int, str] = field(default_factory=dict)
    types_required: bool = False

    def __post_init__(self) -> None:
        self.types = {int(k): v for k, v in self.types.items()}


def _random_cookiepre() -> str:
    return "".join(random.choices(string.ascii_letters, k=4)) + "_2132_"


def _default_accounts() -> list[Account]:
    return [Account("admin", "admin123", 1, 1), Account("aicut", "botpass123", 2, 10),
            Account("alice", "alicepass", 3, 10)]


def _default_boards() -> list[Board]:
    return [Board(2, "智能剪口播", {1: "智能剪口播", 2: "音色克隆", 3: "制作AI声音"}), Board(36, "闲聊灌水")]


@dataclass
class ForumConfig:
    """Everything the server can be told; every field can be given in the JSON file (``from_json``).

    ``captcha`` makes login, new thread and reply fail with ``submit_seccode_invalid``; ``mobile_api`` off answers
    the mobile API like a site without the plugin; ``rewrite`` serves and links ``forum-N-P.html`` /
    ``thread-T-P-1.html``; ``relative_dates`` shows "3&nbsp;秒前" (Discuz ``dateconvert``), else absolute dates.
    """

    accounts: list[Account] = field(default_factory=_default_accounts)
    boards: list[Board] = field(default_factory=_default_boards)
    version: str = "X3.5"  # or "X3.4"
    charset: str = "utf-8"  # or "gbk"
    captcha: bool = False
    mobile_api: bool = True
    rewrite: bool = False
    floodctrl: int = 15
    minpostsize: int = 10
    maxpostsize: int = 10000
    moderate_replies: bool = False
    cookiepre: str = field(default_factory=_random_cookiepre)
    relative_dates: bool = True
    timeoffset: int = 8  # hours, the site's time zone
    tpp: int = 20  # threads per page
    ppp: int = 10  # posts per page
    authkey: str = "aicut-test-authkey"
    bbname: str = "Discuz! Board"
    login_strike_after: int = 5  # failures per username before login_strike (15 minutes)

    def __post_init__(self) -> None:
        self.accounts = [a if isinstance(a, Account) else Account(**a) for a in self.accounts]
        self.boards = [b if isinstance(b, Board) else Board(**b) for b in self.boards]
        self.charset = self.charset.lower()
        if self.charset not in ("utf-8", "gbk"):
            raise ValueError(f"charset must be utf-8 or gbk, not {self.charset!r}")
        if self.version not in ("X3.4", "X3.5"):
            raise ValueError(f"version must be X3.4 or X3.5, not {self.version!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ForumConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        return cls(**data)

    @classmethod
    def from_json(cls, path: str | Path) -> ForumConfig:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def account(self, *, username: str | None = None, uid: int | None = None) -> Account | None:
        for a in self.accounts:
            if (username is not None and a.username == username) or (uid is not None and a.uid == uid):
                return a
        return None

    def board(self, fid: int) -> Board | None:
        return next((b for b in self.boards if b.fid == fid), None)

    # settings that POST /_test/config may change while running
    RUNTIME_KEYS = ("captcha", "floodctrl", "moderate_replies", "mobile_api", "minpostsize", "rewrite",
                    "relative_dates", "version", "tpp", "ppp")
