"""``python -m aicut process SOURCE --out DIR``: the smart cut on one local file or URL, without a cluster."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

from aicut.config import Settings
from aicut.models import CoverTitles, Source, SourceKind, Task, TaskOptions, TaskSpec
from aicut.forum.tasks import is_thread_url
from aicut.pipeline.task import options_from_settings, run_task
from aicut.worker.capabilities import probe_nvenc

logger = logging.getLogger("aicut.process")


def process(settings: Settings, args: argparse.Namespace) -> int:
    """Cut ``args.source`` into ``args.out``; prints the paths of the outputs."""
    source = args.source
    if "://" not in source:
        path = Path(source).expanduser().resolve()
        if not path.is_file():
            print(f"process: {source} is not a file", file=sys.stderr)
            return 2
        source = path.as_uri()
    out = Path(args.out).resolve()
    nvenc, why = probe_nvenc() if args.encoder in ("", "auto", "nvenc") else (False, "not asked for")
    logger.info("NVENC: %s", "yes" if nvenc else f"no ({why})")
    options = options_from_settings(settings, machine="local", nvenc_available=nvenc)
    speech = {k: v for k, v in (("model", args.model), ("language", args.language)) if v}
    options = replace(options, work_dir=out / ".work", local_files=True, publish_to_forum=False,
                      transcribe=replace(options.transcribe, **speech))
    name = args.name or Path(source.split("?", 1)[0]).name
    cover = CoverTitles(top=args.top, middle=args.middle, bottom=args.bottom)
    task_options = TaskOptions(language=args.language, burn_subtitles=args.burn, encoder=args.encoder)
    if is_thread_url(source):   # read the request from the thread (forum account from .env); nothing is posted
        task = Task(id=f"local-{int(time.time())}", thread_url=source, options=task_options,
                    spec=TaskSpec(cover=cover, core_text=args.hotwords))
    else:
        task = Task(id=f"local-{int(time.time())}", options=task_options, spec=TaskSpec(
            title=name, sources=(Source(url=source, name=name, kind=SourceKind.VIDEO),), cover=cover,
            core_text=args.hotwords))

    shown: list[tuple[str, int]] = [("", -1)]

    def report(stage: str, percent: float, detail: str) -> None:
        if (stage, int(percent)) != shown[0]:   # one line per stage and whole percent, not per frame
            shown[0] = (stage, int(percent))
            print(f"\r{stage:>10} {percent:5.1f}% {detail[:50]:50}", end="", file=sys.stderr, flush=True)

    result = run_task(task, options, report)
    print(file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    for o in result.outputs:
        target = out / o.name
        shutil.copyfile(o.path, target)
        print(target)
    if not args.keep_work:
        shutil.rmtree(out / ".work", ignore_errors=True)
    logger.info("seconds per stage: %s", json.dumps({k: round(v, 2) for k, v in result.stage_seconds.items()}))
    return 0
