"""What the forum code passes around: settings, listing rows, posts, parsed requests. Plain frozen dataclasses,
shared by the parser (pure), the client (HTTP), the watcher and the publisher."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

SourceKind = Literal["video", "audio"]


@dataclass(frozen=True, slots=True)
class ForumSettings:
    """machines.yaml ``forum:`` (credentials are not here: they come from .env through ``Secrets``)."""

    base_url: str = ""                       # e.g. "https://bbs.example.com/" (the directory holding forum.php)
    boards: tuple[int, ...] = (2,)           # fids to watch
    poll_interval_s: float = 15.0            # between two checks of the boards; ±jitter
    poll_jitter: float = 0.2                 # fraction of poll_interval_s
    baseline: bool = True                    # first start: mark threads already on the boards as seen
    api: Literal["auto", "mobile", "desktop"] = "auto"   # how threads are listed and read; auto = mobile when it answers
    charset: str = ""                        # "" = detect (utf-8 or gbk); posts are encoded in it
    timeout_s: float = 20.0                  # one HTTP request
    page_size: int = 20                      # threads per listing request
    video_categories: tuple[str, ...] = ("口播", "剪辑", "视频")   # a thread category containing one of these is a
                                             # video job; a thread without a category is too; any other is unsupported
    polite_replies: bool = True              # answer requests the member can fix (no video link, unsupported kind)
    login_backoff_s: float = 60.0            # first wait after a failed login; doubles up to login_backoff_max_s
    login_backoff_max_s: float = 3600.0
    cookie_file: str = ""                    # "" = <data dir>/forum-cookies.json; kept so a restart needs no login
    user_agent: str = "Mozilla/5.0 (compatible; aicut/1.0)"


@dataclass(frozen=True, slots=True)
class PublishSettings:
    """machines.yaml ``publish:`` — where finished files go before the reply links them."""

    kind: Literal["plugin", "attachment", "directory"] = "directory"
    # plugin: the site's object-storage upload plugin (DESIGN §2); every name configurable
    endpoint: str = "source/plugin/tencentcos/upload_api.php"   # relative to forum base_url, or absolute
    file_field: str = "Filedata"
    form_fields: tuple[tuple[str, str], ...] = (("filetype", "video"),)
    # directory: copy into path/<task id>/ and link base_url/<task id>/<file>
    path: str = ""
    base_url: str = ""
    # what goes into the reply
    files: tuple[str, ...] = ("video", "subtitles", "cover")   # output kinds linked in the reply
    min_message_bytes: int = 10              # Discuz minpostsize; shorter replies are padded
    flood_wait_s: float = 16.0               # wait after post_flood_ctrl (Discuz default floodctrl is 15 s)
    flood_retries: int = 4


@dataclass(frozen=True, slots=True)
class ForumAccount:
    """The forum login, from .env. ``repr`` never shows the password."""

    username: str = ""
    password: str = ""

    def __bool__(self) -> bool:
        return bool(self.username and self.password)

    def __repr__(self) -> str:
        return f"ForumAccount(username={self.username!r}, password={'set' if self.password else 'unset'})"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class ThreadRow:
    """One thread as a board listing (desktop page or mobile API) shows it."""

    tid: int
    fid: int
    subject: str
    author: str = ""
    author_id: int = 0
    dateline: int = 0            # unix seconds; 0 when the listing only had a relative date
    sticky: bool = False         # displayorder > 0
    category: str = ""           # thread type name, "" when none or unknown
    excerpt: str = ""            # the mobile API's first-post text (X3.5), "" otherwise


@dataclass(frozen=True, slots=True)
class Post:
    pid: int
    author: str
    author_id: int
    message_html: str            # the rendered post body (desktop ``t_f`` cell or mobile ``message``)
    first: bool = False
    dateline: int = 0


@dataclass(frozen=True, slots=True)
class ThreadPage:
    """A thread's first page: enough to read the request and to see earlier replies."""

    tid: int
    fid: int
    subject: str
    category: str = ""
    author: str = ""
    author_id: int = 0
    posts: tuple[Post, ...] = ()

    @property
    def first_post(self) -> Post | None:
        return next((p for p in self.posts if p.first), self.posts[0] if self.posts else None)


@dataclass(frozen=True, slots=True)
class MediaLink:
    url: str                     # absolute
    name: str                    # original file name: link text, else the URL's last part, decoded, Chinese kept
    kind: SourceKind = "video"


@dataclass(frozen=True, slots=True)
class ForumRequest:
    """What a thread's first post asks for."""

    tid: int
    fid: int
    subject: str
    author: str = ""
    author_id: int = 0
    category: str = ""
    sources: tuple[MediaLink, ...] = ()      # videos and audio, in post order, without duplicates
    cover_top: str = ""
    cover_middle: str = ""
    cover_bottom: str = ""
    core_text: str = ""                      # post text without links, tags and cover lines

    @property
    def videos(self) -> tuple[MediaLink, ...]:
        return tuple(s for s in self.sources if s.kind == "video")


@dataclass(frozen=True, slots=True)
class ReplyResult:
    pid: int = 0                 # 0 when the reply waits for moderation
    moderated: bool = False      # post_reply_mod_succeed: held for a moderator, not visible yet
    message: str = ""            # the forum's own words


@dataclass(frozen=True, slots=True)
class SiteInfo:
    """What ``ForumClient.check`` learned about the site."""

    base_url: str
    charset: str                 # "utf-8" or "gbk"
    version: str = ""            # "X3.5" when the mobile API says so
    mobile_api: bool = False
    logged_in: bool = False
    username: str = ""
    uid: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)
