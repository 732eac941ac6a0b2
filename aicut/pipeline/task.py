"""The 口播 smart cut, stage by stage: resolve → fetch → probe → transcribe → plan → render → subtitles → cover →
publish.

Each stage is a plain function with its own options; this module runs them in order for every video source of a
task, reports stage and percent, and writes per source ``<name>_cut.mp4``, ``<name>.srt``, ``<name>_cover.jpg``,
``edl.json`` and ``report.json``. A task from a forum thread is resolved from the thread when it came bare, and ends
with the files published and one reply in the thread; a problem the member can fix gets a polite reply instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from aicut import __version__
from aicut.errors import ConfigError, ForumError, InvalidTaskError, NoVideoStreamError, TaskError
from aicut.forum.models import PublishSettings
from aicut.forum.tasks import MEMBER_FIXABLE
from aicut.models import CoverTitles, MediaInfo, Output, Source, SourceKind, SourceResult, Task, TaskResult
from aicut.pipeline.audio import energy, load_audio
from aicut.pipeline.cover import CoverOptions, make_cover
from aicut.pipeline.fetch import FetchOptions, FetchResult, fetch, safe_filename
from aicut.pipeline.fonts import find_cjk_font
from aicut.pipeline.plan import PlanOptions, make_plan, plan_summary, word_reasons
from aicut.pipeline.probe import ProbeOptions, probe
from aicut.pipeline.render import RenderOptions, render
from aicut.pipeline.resolve import ForumOptions, needs_resolve, open_client, resolve
from aicut.pipeline.subtitles import SubtitleOptions, make_cues, to_srt
from aicut.pipeline.transcribe import TranscribeOptions, Transcriber
from aicut.pipeline.transcript import Transcript
from aicut.pipeline.wordtimes import refine_word_times

logger = logging.getLogger(__name__)

Report = Callable[[str, float, str], None]   # stage, percent of the whole task, detail

# Share of one source's work per stage, for the progress bar (measured roughly on a 60 s clip on 2 cores).
_WEIGHTS = (("fetch", 0.10), ("probe", 0.02), ("transcribe", 0.45), ("plan", 0.01), ("render", 0.38),
            ("subtitles", 0.01), ("cover", 0.03))


@dataclass(frozen=True, slots=True)
class PipelineOptions:
    """Every stage's options, and where the work goes."""

    work_dir: Path
    fetch: FetchOptions = FetchOptions()
    probe: ProbeOptions = ProbeOptions()
    transcribe: TranscribeOptions = TranscribeOptions()
    plan: PlanOptions = PlanOptions()
    render: RenderOptions = RenderOptions()
    subtitles: SubtitleOptions = SubtitleOptions()
    cover: CoverOptions = CoverOptions()
    font: str = ""                   # a CJK font; "" = find one (needed for cover titles and burned-in subtitles)
    machine: str = ""
    nvenc_available: bool = False
    local_files: bool = False        # file:// sources are read in place (``aicut process`` only; never on a worker)
    forum: ForumOptions = ForumOptions()      # reading bare thread tasks and replying in the thread
    publish: PublishSettings = PublishSettings()
    publish_to_forum: bool = True    # False: a thread task's files stay local (``aicut process``, benchmarks)


def task_dir(work_dir: Path, task: Task) -> Path:
    """Where a task keeps its files: readable, unique per task id, the same for every attempt."""
    digest = hashlib.sha256(task.id.encode()).hexdigest()[:10]
    return work_dir / "tasks" / f"{safe_filename(task.id, 'task')[:60]}-{digest}"


class _Progress:
    """Maps a stage's own 0–1 progress onto the task's 0–100 %, source by source."""

    def __init__(self, report: Report, sources: int) -> None:
        self.report, self.share, self.base = report, 100.0 / max(1, sources), 0.0
        self.starts, acc = {}, 0.0
        for stage, weight in _WEIGHTS:
            self.starts[stage] = (acc, weight)
            acc += weight

    def source(self, index: int) -> None:
        self.base = index * self.share

    def __call__(self, stage: str, fraction: float = 0.0, detail: str = "") -> None:
        start, weight = self.starts[stage]
        self.report(stage, self.base + self.share * (start + weight * min(max(fraction, 0.0), 1.0)), detail)


class _Clock:
    """Seconds per stage, summed over sources."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def time(self, stage: str) -> _Timer:
        return _Timer(self, stage)


class _Timer:
    def __init__(self, clock: _Clock, stage: str) -> None:
        self.clock, self.stage = clock, stage

    def __enter__(self) -> None:
        self.t0 = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        self.clock.seconds[self.stage] = self.clock.seconds.get(self.stage, 0.0) + time.monotonic() - self.t0


def run_task(task: Task, options: PipelineOptions, report: Report,
             transcriber: Transcriber | None = None) -> TaskResult:
    """Resolve, cut every video source of ``task`` and publish; raises an ``AicutError`` subclass on failure."""
    forum_task = bool(task.thread_url) and options.publish_to_forum
    if forum_task and not options.forum.account:
        raise ConfigError("this task answers in a forum thread but the worker has no forum account: set "
                          "FORUM_USERNAME and FORUM_PASSWORD in the worker's .env")
    client = None
    clock = _Clock()
    try:
        if needs_resolve(task):
            report("resolve", 0.0, task.thread_url)
            with clock.time("resolve"):
                client = open_client(task, options.forum, options.work_dir)
                task = resolve(task, client, options.forum.settings)
        result = cut_task(task, options, report, clock, transcriber)
        if not forum_task:
            report("done", 100.0, "")
            return result
        report("publish", 99.0, "uploading and replying")
        with clock.time("publish"):
            client = client or open_client(task, options.forum, options.work_dir)
            result = publish(task, result, client, options)
        report("done", 100.0, result.reply_note)
        return replace(result, stage_seconds=dict(clock.seconds))
    except TaskError as exc:
        if forum_task and not exc.retryable and exc.code in MEMBER_FIXABLE and task.spec.tid:
            client = client or open_client(task, options.forum, options.work_dir)
            _answer_problem(task, exc, client, options)
        raise
    finally:
        if client is not None:
            client.close()


def publish(task: Task, result: TaskResult, client: Any, options: PipelineOptions) -> TaskResult:
    """The publish stage: files through the configured publisher, then exactly one reply in the thread."""
    from aicut.forum.publish import make_publisher, publish_result

    fid, tid = task.spec.fid, task.spec.tid
    if not tid:
        raise InvalidTaskError(f"task {task.id} came from a thread but has no thread id to reply to")
    publisher = make_publisher(options.publish, client, fid)
    outcome = publish_result(client, publisher, fid=fid, tid=tid, task_id=task.id, files=result.outputs,
                             settings=options.publish, machine=options.machine, thread_subject=task.spec.title,
                             processing_s=sum(result.stage_seconds.values()))
    urls = {f.name: f.url for f in outcome.files if f.url}
    reply = outcome.reply
    note = ("already posted by an earlier attempt" if reply.already else
            "held for moderation" if reply.moderated else "posted")
    link = f"{client.base_url}forum.php?mod=redirect&goto=findpost&ptid={tid}&pid={reply.pid}" if reply.pid else ""
    return replace(result, outputs=tuple(replace(o, url=urls.get(o.name, o.url)) for o in result.outputs),
                   reply_url=link, reply_note=note)


def _answer_problem(task: Task, exc: TaskError, client: Any, options: PipelineOptions) -> None:
    """Tell the member what to fix; a reply that cannot be posted is logged, and the task's own error stands."""
    from aicut.forum.publish import publish_problem

    try:
        publish_problem(client, fid=task.spec.fid, tid=task.spec.tid, task_id=task.id, code=exc.code,
                        detail=getattr(exc, "fields", None) or exc.message, settings=options.publish)
    except (ForumError, ConfigError) as reply_exc:
        logger.warning("thread %d: could not tell the member about %s: %s", task.spec.tid, exc.code,
                       reply_exc.message)


def cut_task(task: Task, options: PipelineOptions, report: Report, clock: _Clock,
             transcriber: Transcriber | None = None) -> TaskResult:
    """fetch → probe → transcribe → plan → render → subtitles → cover for every source of ``task``."""
    sources = task.spec.sources
    if not sources:
        raise InvalidTaskError(f"task {task.id} has no sources")
    directory = task_dir(options.work_dir, task)
    progress = _Progress(report, len(sources))
    results: list[SourceResult] = []
    outputs: list[Output] = []
    for i, source in enumerate(sources):
        progress.source(i)
        label = source.name or source.url.rsplit("/", 1)[-1].split("?", 1)[0]
        progress("fetch", 0.0, label)

        def on_bytes(done: int, total: int | None, label: str = label) -> None:
            progress("fetch", done / total if total else 0.0, f"{label}: {done / 1e6:.1f} MB")

        with clock.time("fetch"):
            if options.local_files and source.url.startswith("file://"):
                fetched = local_file(Path(unquote(urlsplit(source.url).path)))
            else:
                fetched = fetch(source.url, directory / "sources" / str(i), options.fetch, name=source.name,
                                progress=on_bytes)
        progress("probe", 0.0, label)
        with clock.time("probe"):
            kind_opts = options.probe if source.kind is SourceKind.VIDEO else replace(options.probe,
                                                                                      require_video=False)
            media = probe(fetched.path, kind_opts)
        results.append(SourceResult(source=source, media=media, local_path=str(fetched.path),
                                    sha256=fetched.sha256))
        if source.kind is not SourceKind.VIDEO or not media.video:
            logger.info("%s: audio only, not cut", label)
            continue
        transcriber = transcriber or Transcriber(options.transcribe)
        out_dir = directory / "out" / (Path(safe_filename(source.name or fetched.path.name)).stem or f"source{i}")
        outputs += cut_source(fetched.path, media, out_dir, options, task=task, source=source,
                              progress=progress, clock=clock, transcriber=transcriber)
    if not outputs:
        raise NoVideoStreamError("the post has no video to cut (only audio); attach or link the video itself")
    return TaskResult(sources=tuple(results), outputs=tuple(outputs), stage_seconds=clock.seconds,
                      machine=options.machine)


def cut_source(path: Path, media: MediaInfo, out_dir: Path, options: PipelineOptions, *, task: Task,
               source: Source, progress: Callable[..., None], clock: _Clock,
               transcriber: Transcriber) -> list[Output]:
    """Transcribe, plan, render, subtitle and cover one local video; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir.name
    started = time.monotonic()
    language = task.options.language or options.transcribe.language or None
    progress("transcribe", 0.0, "decoding audio")
    with clock.time("transcribe"):
        samples = load_audio(path)
        loudness = energy(samples)
        transcript = transcriber.transcribe(samples, hotwords=task.spec.core_text, language=language,
                                            progress=lambda f: progress("transcribe", f))
        transcript = refine_word_times(transcript, loudness)
    language = transcript.language or language or ""
    progress("plan", 0.0)
    with clock.time("plan"):
        plan = make_plan(transcript, loudness, options.plan, language=language)
    if plan.flagged:
        logger.warning("%s: plan flagged: %s", stem, plan.flag_reason)
    with clock.time("subtitles"):
        # Words the plan removes stay out of the subtitles even when Whisper timed them inside a kept stretch (it
        # gives fillers near-zero durations glued to the next word).
        spoken = transcript if plan.flagged else without_removed_words(transcript, options.plan, language)
        cues = make_cues(spoken, plan, options.subtitles, language=language)
    titles = task.spec.cover
    burn = task.options.burn_subtitles or options.render.burn_subtitles
    needs_font = burn or any((titles.top, titles.middle, titles.bottom))
    font = find_cjk_font(options.font) if needs_font else None
    render_opts = options.render
    if burn:
        style = replace(render_opts.subtitle_style, font_path=font)
        render_opts = replace(render_opts, burn_subtitles=True, subtitle_style=style)
    if task.options.encoder:
        render_opts = replace(render_opts, encoder=task.options.encoder)
    render_opts = replace(render_opts, subtitle_language=_iso639_2(language))
    progress("render", 0.0, f"{len(plan.keeps)} piece(s)")
    video = out_dir / f"{stem}_cut.mp4"
    with clock.time("render"):
        rendered = render(path, plan, video, render_opts, cues=cues, nvenc_available=options.nvenc_available,
                          progress=lambda f: progress("render", f))
    srt = out_dir / f"{stem}.srt"
    _write_text(srt, to_srt(cues))
    progress("cover", 0.0)
    with clock.time("cover"):
        cover = make_cover(video, out_dir / f"{stem}_cover.jpg", titles or CoverTitles(), options.cover, font=font)
    edl = out_dir / "edl.json"
    _write_text(edl, json.dumps({"source": source.name or path.name, **plan.to_dict(),
                                 "transcript": transcript.to_dict()}, ensure_ascii=False, indent=1))
    report = {
        "version": __version__, "task": task.id, "attempt": task.attempt, "machine": options.machine,
        "source": {"name": source.name, "url_host": source.url.split("/")[2] if "://" in source.url else "",
                   "duration_s": media.duration_s, "size_bytes": media.size_bytes, "container": media.container},
        "language": language, "model": options.transcribe.model or "base",
        "words": len(transcript.words), "cues": len(cues),
        "plan": plan_summary(plan), "flagged": plan.flagged, "flag_reason": plan.flag_reason,
        "output": rendered.to_dict(), "encoder": rendered.encoder, "encoder_reason": rendered.encoder_reason,
        "cover": {"time_s": cover.time_s, "width": cover.width, "height": cover.height},
        "stage_seconds": {k: round(v, 3) for k, v in clock.seconds.items()},
        "seconds": round(time.monotonic() - started, 3),
    }
    report_path = out_dir / "report.json"
    _write_text(report_path, json.dumps(report, ensure_ascii=False, indent=1))
    logger.info("%s: %.1fs → %.1fs, %s, %d cue(s), %s", stem, media.duration_s, rendered.duration_s,
                ", ".join(f"{k} {v:.1f}s" for k, v in plan.removed_by_reason().items()) or "nothing cut",
                len(cues), rendered.encoder)
    kinds = ((video, "video"), (srt, "subtitles"), (cover.path, "cover"), (edl, "edl"), (report_path, "report"))
    return [Output(name=p.name, kind=k, path=str(p), size_bytes=p.stat().st_size) for p, k in kinds]


def without_removed_words(transcript: Transcript, options: PlanOptions, language: str) -> Transcript:
    """``transcript`` less the words the planner removes (fillers, stutters, retakes)."""
    reasons = iter(word_reasons(transcript, options, language=language))
    segments = []
    for seg in transcript.segments:
        words = tuple(w for w in seg.words if next(reasons) is None)
        if words or not seg.words:
            segments.append(replace(seg, words=words, text="".join(w.text for w in words) or seg.text))
    return replace(transcript, segments=tuple(segments))


def local_file(path: Path) -> FetchResult:
    """A file on this machine, as if it had been fetched."""
    if not path.is_file():
        raise InvalidTaskError(f"{path} is not a file")
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return FetchResult(path=path, size_bytes=path.stat().st_size, sha256=digest.hexdigest(), content_type="",
                       from_cache=False)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _iso639_2(language: str) -> str:
    return {"zh": "chi", "en": "eng", "ja": "jpn", "ko": "kor"}.get((language or "")[:2], "und")


def options_from_settings(settings: Any, *, machine: str = "", nvenc_available: bool = False) -> PipelineOptions:
    """The pipeline's options out of ``aicut.config.Settings``."""
    from aicut.forum.models import ForumAccount

    account = ForumAccount(settings.secrets.forum_username, settings.secrets.forum_password)
    return PipelineOptions(
        work_dir=settings.worker.work_dir, fetch=settings.fetch, probe=settings.probe,
        transcribe=settings.transcribe, plan=settings.plan, render=settings.render, subtitles=settings.subtitles,
        cover=settings.cover, font=settings.font, machine=machine, nvenc_available=nvenc_available,
        forum=ForumOptions(settings=settings.forum, account=account, cookie_file=settings.forum.cookie_file),
        publish=settings.publish)
