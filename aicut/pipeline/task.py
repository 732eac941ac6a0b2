"""The stages a task runs, in order, with stage and percent reported as it goes.

For now a task fetches each source and probes it; the cut itself (transcribe → plan → render → subtitles → cover)
joins here as its stages land.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from aicut.models import SourceKind, SourceResult, Task, TaskResult
from aicut.pipeline.fetch import FetchOptions, fetch, safe_filename
from aicut.pipeline.probe import ProbeOptions, probe

logger = logging.getLogger(__name__)

Report = Callable[[str, float, str], None]   # stage, percent of the whole task, detail


@dataclass(frozen=True, slots=True)
class PipelineOptions:
    work_dir: Path
    fetch: FetchOptions = FetchOptions()
    probe: ProbeOptions = ProbeOptions()
    machine: str = ""


def task_dir(work_dir: Path, task: Task) -> Path:
    """Where a task keeps its files: readable, unique per task id, the same for every attempt."""
    digest = hashlib.sha256(task.id.encode()).hexdigest()[:10]
    return work_dir / "tasks" / f"{safe_filename(task.id, 'task')[:60]}-{digest}"


def run_task(task: Task, options: PipelineOptions, report: Report) -> TaskResult:
    """Fetch and probe every source of ``task``; raises an ``AicutError`` subclass on failure."""
    sources = task.spec.sources
    directory = task_dir(options.work_dir, task)
    directory.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    results = []
    share = 100.0 / max(1, len(sources))
    for i, source in enumerate(sources):
        base = i * share
        label = source.name or source.url.rsplit("/", 1)[-1].split("?", 1)[0]
        report("fetch", base, label)

        def on_bytes(done: int, total: int | None, base: float = base, label: str = label) -> None:
            frac = done / total if total else 0.0
            report("fetch", base + 0.9 * share * min(frac, 1.0), f"{label}: {done / 1e6:.1f} MB")

        t0 = time.monotonic()
        fetched = fetch(source.url, directory / "sources" / str(i), options.fetch, name=source.name, progress=on_bytes)
        timings["fetch"] = timings.get("fetch", 0.0) + time.monotonic() - t0
        report("probe", base + 0.9 * share, label)
        t0 = time.monotonic()
        probe_opts = options.probe if source.kind is SourceKind.VIDEO else replace(options.probe, require_video=False)
        media = probe(fetched.path, probe_opts)
        timings["probe"] = timings.get("probe", 0.0) + time.monotonic() - t0
        logger.info("%s: %s %.1fs, %d video / %d audio stream(s)", label, media.container, media.duration_s,
                    len(media.video), len(media.audio))
        results.append(SourceResult(source=source, media=media, local_path=str(fetched.path), sha256=fetched.sha256))
    report("done", 100.0, "")
    return TaskResult(sources=tuple(results), stage_seconds=timings, machine=options.machine)
