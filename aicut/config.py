"""Settings, read in one place: ``machines.yaml`` for the cluster's shape, ``.env`` and the environment for secrets.

Nothing else in aicut reads ``os.environ`` or these files; everything else is handed the frozen dataclasses below.
Secrets live only in :class:`Secrets`, whose ``repr`` never shows them. The seed's ``machines.txt``
(``host:port:priority`` lines) is accepted wherever a machines file is: see :func:`read_machines_txt`.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Mapping

import yaml
from dotenv import dotenv_values

from aicut.errors import ConfigError
from aicut.forum.models import ForumSettings, PublishSettings
from aicut.pipeline.cover import CoverOptions
from aicut.pipeline.fetch import FetchOptions
from aicut.pipeline.plan import PlanOptions
from aicut.pipeline.probe import ProbeOptions
from aicut.pipeline.render import RenderOptions
from aicut.pipeline.subtitles import SubtitleOptions
from aicut.pipeline.transcribe import TranscribeOptions

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MACHINES = ROOT / "machines.yaml"
DEFAULT_ENV = ROOT / ".env"

# Every variable aicut reads; .env.example documents each one.
ENV_VARS = (
    "AICUT_CLUSTER_TOKEN", "REDIS_URL", "FORUM_USERNAME", "FORUM_PASSWORD", "AICUT_ADMIN_USERNAME",
    "AICUT_ADMIN_PASSWORD", "AICUT_MACHINES", "AICUT_LOG_LEVEL",
)

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4,
          "ki": 1024, "mi": 1024**2, "gi": 1024**3, "ti": 1024**4}


def parse_size(value: int | float | str) -> int:
    """Bytes from ``123``, ``"500MB"``, ``"2 GiB"``."""
    if isinstance(value, (int, float)):
        return int(value)
    m = _SIZE.match(value)
    if not m:
        raise ConfigError(f"cannot read {value!r} as a size; write it like 500MB or 2GiB")
    unit = (m.group(2) or "").lower().rstrip("b")
    return int(float(m.group(1)) * _UNITS[unit])


@dataclass(frozen=True, slots=True)
class Secrets:
    """Credentials from .env or the environment. Never logged: ``repr`` says only which are set."""

    cluster_token: str = ""
    redis_url: str = ""
    forum_username: str = ""
    forum_password: str = ""

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={'set' if getattr(self, f.name) else 'unset'}" for f in fields(self))
        return f"Secrets({shown})"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class WorkerEntry:
    """One worker of the cluster as machines.yaml lists it."""

    address: str
    priority: int = 1
    slots: int = 0                      # 0: as many as the worker reports (its --slots)
    labels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """How this machine's worker process runs (machines.yaml ``worker:``, overridden by command-line flags)."""

    host: str = "127.0.0.1"
    port: int = 8005
    slots: int = 1
    worker_id: str = ""                 # "" → "<hostname>:<port>"
    labels: tuple[str, ...] = ()
    work_dir: Path = ROOT / "var" / "worker"
    min_free_disk_bytes: int = 2 * 1000**3
    drain_timeout_s: float = 60.0
    heartbeat_interval_s: float = 0.5
    resource_interval_s: float = 5.0
    cancel_grace_s: float = 3.0
    prewarm: bool = True                # start each slot's task process with the worker, speech model loaded
    speech_model_dir: str = ""
    insecure: bool = False

    @property
    def name(self) -> str:
        return self.name_for(self.port)

    def name_for(self, port: int) -> str:
        """The worker's name once it listens on ``port`` (which may differ from the configured 0)."""
        return self.worker_id or f"{socket.gethostname()}:{port}"


@dataclass(frozen=True, slots=True)
class CoordinatorSettings:
    """How the coordinator runs (machines.yaml ``coordinator:``, overridden by flags)."""

    host: str = "127.0.0.1"
    port: int = 8001
    http_port: int = 8000
    data_dir: Path = ROOT / "var" / "coordinator"   # the embedded Valkey's append-only files
    appendfsync: str = "always"      # embedded Valkey: "always" loses nothing on a crash, "everysec" is faster
    grace_s: float = 5.0             # a lost worker's task is re-queued after this long
    max_attempts: int = 4
    retry_backoff_s: float = 2.0
    dead_after_s: float = 3.0        # a worker silent this long is OFFLINE (heartbeats come every 0.5 s)
    watch_config_s: float = 2.0      # how often machines.yaml is checked for edits
    insecure: bool = False


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a process of aicut needs to know."""

    worker: WorkerSettings = WorkerSettings()
    coordinator: CoordinatorSettings = CoordinatorSettings()
    workers: tuple[WorkerEntry, ...] = ()
    fetch: FetchOptions = FetchOptions()
    probe: ProbeOptions = ProbeOptions()
    transcribe: TranscribeOptions = TranscribeOptions()
    plan: PlanOptions = PlanOptions()
    render: RenderOptions = RenderOptions()
    subtitles: SubtitleOptions = SubtitleOptions()
    cover: CoverOptions = CoverOptions()
    forum: ForumSettings = ForumSettings()
    publish: PublishSettings = PublishSettings()
    font: str = ""                   # a CJK font for covers and burned-in subtitles; "" = find one
    secrets: Secrets = Secrets()
    machines_path: Path = DEFAULT_MACHINES
    log_level: str = "INFO"
    extra: Mapping[str, Any] = field(default_factory=dict)


def parse_worker_entry(item: Any) -> WorkerEntry:
    """A ``workers:`` item: the seed's ``"host:port:priority"`` string or ``{address, priority, slots, labels}``."""
    if isinstance(item, str):
        text = item.split("#", 1)[0].strip()
        host, sep, rest = text.rpartition(":") if text.count(":") >= 2 else (text, "", "")
        try:
            if sep:  # host:port:priority
                return WorkerEntry(address=host, priority=int(rest))
            _check_address(text)
            return WorkerEntry(address=text)
        except ValueError:
            raise ConfigError(f"workers: cannot read {item!r}; write host:port:priority, e.g. localhost:8005:1") from None
    if isinstance(item, Mapping):
        unknown = set(item) - {"address", "priority", "slots", "labels"}
        if unknown:
            raise ConfigError(f"workers: unknown key(s) {sorted(unknown)} in {dict(item)!r}")
        if "address" not in item:
            raise ConfigError(f"workers: entry {dict(item)!r} has no address (host:port)")
        entry = WorkerEntry(address=str(item["address"]), priority=int(item.get("priority", 1)),
                            slots=int(item.get("slots", 0)), labels=tuple(item.get("labels", ())))
        _check_address(entry.address)
        return entry
    raise ConfigError(f"workers: cannot read {item!r}; use a 'host:port:priority' string or a mapping")


def read_machines_txt(path: Path) -> list[WorkerEntry]:
    """The seed's ``machines.txt``: one ``host:port:priority`` a line; ``#`` comments and blank lines are skipped.

    ``--machines machines.txt`` (or ``AICUT_MACHINES``) reads it instead of machines.yaml: the workers come from it
    and every other setting keeps its default (flags still apply). The coordinator follows its edits the same way.
    """
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            entries.append(parse_worker_entry(text))
        except ConfigError as exc:
            raise ConfigError(f"{path.name} line {number}: {exc.message}") from None
    return entries


def _base_url(value: Any) -> str:
    """The forum's address, ending in "/" so relative Discuz links (forum.php?…) join under it."""
    url = str(value or "").strip()
    if url and not re.match(r"^https?://[^/\s]+", url):
        raise ConfigError(f"forum.base_url {url!r} must be an http(s) URL such as https://bbs.example.com/")
    if url and not url.endswith("/"):
        url = url.rsplit("/", 1)[0] + "/" if url.rsplit("/", 1)[-1].endswith(".php") else url + "/"
    return url


def _check_address(address: str) -> None:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"workers: address {address!r} must be host:port")


def _section(doc: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = doc.get(name) or {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"machines.yaml: `{name}:` must be a mapping")
    return value


def _apply(cls: type, base: Any, values: Mapping[str, Any], section: str, convert: Mapping[str, Any]) -> Any:
    names = {f.name for f in fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise ConfigError(f"machines.yaml: unknown key(s) {sorted(unknown)} in `{section}:`; known: {sorted(names)}")
    kwargs = {}
    for key, value in values.items():
        current = getattr(base, key)
        if key in convert:
            kwargs[key] = convert[key](value)
        elif is_dataclass(current) and isinstance(value, Mapping):  # a nested options block, e.g. render.quality
            kwargs[key] = _apply(type(current), current, value, f"{section}.{key}", {})
        elif isinstance(current, tuple) and isinstance(value, list):
            kwargs[key] = tuple(value)
        else:
            kwargs[key] = value
    try:
        return replace(base, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"machines.yaml: `{section}:` {exc}") from exc


def load_settings(machines: str | Path | None = None, env_file: str | Path | None = None,
                  environ: Mapping[str, str] | None = None, coordinator: Mapping[str, Any] | None = None,
                  **worker_overrides: Any) -> Settings:
    """Read machines.yaml, .env and the environment; flags (``coordinator`` and ``worker_overrides``) win."""
    env = dict(dotenv_values(env_file or DEFAULT_ENV)) if Path(env_file or DEFAULT_ENV).is_file() else {}
    env.update(environ if environ is not None else os.environ)
    path = Path(machines or env.get("AICUT_MACHINES") or DEFAULT_MACHINES)
    doc: Mapping[str, Any] = {}
    if path.is_file() and path.suffix.lower() == ".txt":
        doc = {"workers": read_machines_txt(path)}   # the seed's list: workers only, every other setting default
    elif path.is_file():
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        if not isinstance(doc, Mapping):
            raise ConfigError(f"{path}: the top level must be a mapping")
    elif machines:
        raise ConfigError(f"machines file {path} does not exist")

    workers = tuple(x if isinstance(x, WorkerEntry) else parse_worker_entry(x) for x in (doc.get("workers") or ()))
    root = path.parent
    worker = _apply(WorkerSettings, WorkerSettings(), _section(doc, "worker"), "worker", {
        "work_dir": lambda v: (root / v).resolve(), "min_free_disk_bytes": parse_size,
        "labels": tuple, "port": int, "slots": int,
    })
    overrides = {k: v for k, v in worker_overrides.items() if v is not None}
    if "work_dir" in overrides:
        overrides["work_dir"] = Path(overrides["work_dir"]).resolve()
    worker = replace(worker, **overrides)
    if worker.slots < 1:
        raise ConfigError(f"worker slots must be at least 1, not {worker.slots}")
    coord = _apply(CoordinatorSettings, CoordinatorSettings(), _section(doc, "coordinator"), "coordinator", {
        "data_dir": lambda v: (root / v).resolve(), "port": int, "http_port": int})
    coord = replace(coord, **{k: v for k, v in (coordinator or {}).items() if v is not None})
    if coord.appendfsync not in ("always", "everysec", "no"):
        raise ConfigError(f"coordinator.appendfsync must be always, everysec or no, not {coord.appendfsync!r}")
    fetch = _apply(FetchOptions, FetchOptions(cache_dir=str(worker.work_dir / "cache")), _section(doc, "fetch"),
                   "fetch", {"allow_hosts": tuple, "max_bytes": parse_size})
    probe = _apply(ProbeOptions, ProbeOptions(), _section(doc, "probe"), "probe", {})
    stages = {name: _apply(type(default), default, _section(doc, name), name, {}) for name, default in (
        ("transcribe", TranscribeOptions(cache_dir=str(worker.work_dir / "models"))), ("plan", PlanOptions()),
        ("render", RenderOptions()), ("subtitles", SubtitleOptions()), ("cover", CoverOptions()))}
    forum = _apply(ForumSettings, ForumSettings(), _section(doc, "forum"), "forum", {
        "boards": lambda v: tuple(int(b) for b in (v if isinstance(v, list) else [v])),
        "video_categories": tuple, "poll_interval_s": float, "base_url": _base_url})
    if forum.base_url and not forum.boards:
        raise ConfigError("forum.boards must name at least one board (fid) to watch")
    if forum.cookie_file:
        forum = replace(forum, cookie_file=str((root / forum.cookie_file).resolve()))
    publish = _apply(PublishSettings, PublishSettings(), _section(doc, "publish"), "publish", {
        "form_fields": lambda v: tuple((str(k), str(x)) for k, x in dict(v).items()), "files": tuple,
        "path": lambda v: str((root / v).resolve()) if v else ""})
    if publish.kind not in ("plugin", "attachment", "directory"):
        raise ConfigError(f"publish.kind must be plugin, attachment or directory, not {publish.kind!r}")
    if publish.kind == "directory" and forum.base_url and not (publish.path and publish.base_url):
        raise ConfigError("publish.kind directory needs publish.path (where files go) and publish.base_url (how the "
                          "forum's members reach them)")
    secrets = Secrets(
        cluster_token=env.get("AICUT_CLUSTER_TOKEN") or "",
        redis_url=env.get("REDIS_URL") or "",
        forum_username=env.get("FORUM_USERNAME") or env.get("AICUT_ADMIN_USERNAME") or "",
        forum_password=env.get("FORUM_PASSWORD") or env.get("AICUT_ADMIN_PASSWORD") or "",
    )
    known = {"workers", "worker", "coordinator", "fetch", "probe", "transcribe", "plan", "render", "subtitles",
             "cover", "font", "forum", "publish"}
    return Settings(worker=worker, coordinator=coord, workers=workers, fetch=fetch, probe=probe, secrets=secrets,
                    forum=forum, publish=publish, machines_path=path,
                    log_level=(env.get("AICUT_LOG_LEVEL") or "INFO").upper(), font=str(doc.get("font") or ""),
                    **stages,
                    extra={k: v for k, v in doc.items() if k not in known})
