"""End to end: ``python -m aicut process`` on the ~64 s English talking head (default model, 2 cores), against a
seed-like pipeline in the same run.

- **ours** — ``python -m aicut process clip.mp4 --out DIR --language en`` as a subprocess: wall time from spawn to
  exit (interpreter start, imports, model load, decode, transcribe, plan, render, subtitles, cover), and the
  per-stage seconds from ``DIR/report.json``; the model load time from the log line.
- **baseline** — the seed-like approach, the sum of two subprocesses: (1) a fresh Python that loads faster-whisper's
  ``WhisperModel`` on the same model directory and transcribes the clip (word timestamps, VAD, beam 5, language en),
  (2) the ffmpeg command line re-encoding ours' cut list (``edl.json`` keeps) with ``trim``/``atrim`` + ``concat``
  and the same encoder settings as ``bench.render_speed`` (libx264 veryfast CRF 20, AAC 128k). No planning,
  subtitles or cover in the baseline: it is the floor of "recognise, then cut with ffmpeg".

- **worker cold / warm** — the same cut as a worker runs it, on a task process of ``aicut.worker.pool``: *cold* is
  the first task of a process started for it (interpreter, imports and model load included; the load runs beside
  probe), *warm* the second task on the same process (model already loaded). Wall time from handing the job over
  to its outcome (cold: from spawning), CPU of that process, and the per-stage seconds of the result
  (``model_load`` = seconds the task waited for the speech model).

``--repeat`` alternates them; medians are printed, with the ratio ours/baseline. Aim (issue 4): under 20 s.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import pickle
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import psutil
from google.protobuf import json_format

from aicut import wire
from aicut.config import Settings
from aicut.models import Source, SourceKind, Task, TaskOptions, TaskSpec
from aicut.pipeline.edl import EditPlan
from aicut.pipeline.task import options_from_settings
from aicut.worker.pool import TaskPool
from aicut.worker.runner import TaskProcess
from bench.common import ROOT, machine_line, talking_head_clip
from bench.render_speed import ffmpeg_command

AIM_S = 20.0

_WHISPER = r"""
import sys, time
t0 = time.perf_counter()
from faster_whisper import WhisperModel
t1 = time.perf_counter()
m = WhisperModel(sys.argv[1], device="cpu", compute_type="int8", cpu_threads=int(sys.argv[3]), local_files_only=True)
t2 = time.perf_counter()
segs, info = m.transcribe(sys.argv[2], language="en", beam_size=5, word_timestamps=True, vad_filter=True,
                          condition_on_previous_text=False)
n = sum(len(s.words or ()) for s in segs)
t3 = time.perf_counter()
print(f"import {t1 - t0:.2f} load {t2 - t1:.2f} transcribe {t3 - t2:.2f} words {n}")
"""


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_ours(clip: Path, out: Path, model: str) -> dict:
    if out.exists():
        shutil.rmtree(out)
    argv = [sys.executable, "-m", "aicut", "process", str(clip), "--out", str(out), "--language", "en"]
    if model:
        argv += ["--model", model]
    cpu, wall = _children_cpu(), time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    wall_s, cpu_s = time.perf_counter() - wall, _children_cpu() - cpu
    if done.returncode != 0:
        raise RuntimeError(f"aicut process failed ({done.returncode}):\n{done.stderr[-3000:]}")
    report = json.loads((out / "report.json").read_text())
    load = re.search(r"speech model .* loaded .* in ([\d.]+)s", done.stderr)
    return {"wall": wall_s, "cpu": cpu_s, "stages": report.get("stage_seconds", {}), "seconds": report.get("seconds"),
            "load": float(load.group(1)) if load else None, "plan": EditPlan.from_dict(json.loads(
                (out / "edl.json").read_text())), "words": report.get("words"),
            "output_s": report.get("output", {}).get("duration_s")}


def _pool_job(clip: Path, work: Path, model: str, task_id: str) -> dict:
    """The job a worker would send, for ``clip`` read in place (as ``aicut process`` does)."""
    options = options_from_settings(Settings(), machine="bench")
    options = replace(options, work_dir=work, local_files=True, publish_to_forum=False,
                      transcribe=replace(options.transcribe, language="en", **({"model": model} if model else {})))
    task = Task(id=task_id, options=TaskOptions(language="en"), spec=TaskSpec(
        title=clip.name, sources=(Source(url=clip.resolve().as_uri(), name=clip.name, kind=SourceKind.VIDEO),)))
    return {"task": json_format.MessageToDict(wire.task_to_pb(task)), "log_level": "WARNING",
            "options": base64.b64encode(pickle.dumps(options)).decode()}


async def _pool_task(pool: TaskPool, job: dict) -> dict:
    t0 = time.perf_counter()
    tp = TaskProcess(job, lambda *_: None, pool)
    await tp.start()
    proc = psutil.Process(tp.pid)
    cpu0 = sum(proc.cpu_times()[:2])
    outcome = await tp.wait()
    wall = time.perf_counter() - t0
    cpu = sum(proc.cpu_times()[:2]) - cpu0
    if outcome.kind != "succeeded" or outcome.result is None:
        raise RuntimeError(f"pool task {outcome.kind}: {outcome.code} {outcome.message}")
    return {"wall": wall, "cpu": cpu, "pid": tp.pid, "stages": dict(outcome.result.stage_seconds)}


async def run_pool(clip: Path, work: Path, model: str, run: int) -> tuple[dict, dict]:
    """A first (cold) and a second (warm) task on one task process started for them."""
    if work.exists():
        shutil.rmtree(work)
    pool = TaskPool(1, prewarm=False)  # the process starts with the first task, so its start-up is on the clock
    try:
        cold = await _pool_task(pool, _pool_job(clip, work, model, f"bench-{run}-cold"))
        warm = await _pool_task(pool, _pool_job(clip, work, model, f"bench-{run}-warm"))
    finally:
        await pool.close()
    if cold["pid"] != warm["pid"]:
        raise RuntimeError("the second task did not run on the first task's process")
    return cold, warm


def run_baseline(clip: Path, model_dir: Path, threads: int, plan: EditPlan, out: Path, fps: int) -> dict:
    cpu, wall = _children_cpu(), time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _WHISPER, str(model_dir), str(clip), str(threads)], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    whisper_s = time.perf_counter() - wall
    t = time.perf_counter()
    subprocess.run(ffmpeg_command(clip, plan, out, fps), check=True)
    ffmpeg_s = time.perf_counter() - t
    return {"wall": whisper_s + ffmpeg_s, "cpu": _children_cpu() - cpu, "whisper": whisper_s, "ffmpeg": ffmpeg_s,
            "detail": done.stdout.strip().splitlines()[-1]}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench end_to_end", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="", help="speech model for both (default: the default, base)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each, alternating (default 2)")
    parser.add_argument("--keep", type=Path, default=None, help="write the outputs here")
    a = parser.parse_args(argv)
    if shutil.which("ffmpeg") is None:
        print("end_to_end: the ffmpeg command line is the baseline and is not installed (apt-get install ffmpeg)")
        return 2

    from aicut.pipeline.speech_models import resolve_model_dir
    from aicut.pipeline.transcribe import _cpu_count, _default_cache_dir

    truth = talking_head_clip()
    model_dir = resolve_model_dir(a.model, _default_cache_dir())
    threads = _cpu_count()
    print(f"end_to_end: {truth.clip} ({truth.duration:.1f}s), model {a.model or 'base'} ({model_dir}), "
          f"{shutil.which('ffmpeg')}; {machine_line()}", flush=True)
    ours: list[dict] = []
    base: list[dict] = []
    cold: list[dict] = []
    warm: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="aicut-bench-e2e-") as tmp:
        work = a.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for i in range(max(1, a.repeat)):
            o = run_ours(truth.clip, work / "ours", a.model)
            ours.append(o)
            print(f"  run {i + 1} ours    : wall {o['wall']:6.2f}s cpu {o['cpu']:6.2f}s model load "
                  f"{o['load'] if o['load'] is not None else '?'}s stages "
                  f"{ {k: round(v, 2) for k, v in o['stages'].items()} } (in-task {o['seconds']}s); "
                  f"{o['words']} words, output {o['output_s']}s; {machine_line()}", flush=True)
            c, w = asyncio.run(run_pool(truth.clip, work / "pool", a.model, i))
            cold.append(c)
            warm.append(w)
            for label, r in (("cold", c), ("warm", w)):
                print(f"  run {i + 1} worker {label}: wall {r['wall']:6.2f}s cpu {r['cpu']:6.2f}s stages "
                      f"{ {k: round(v, 2) for k, v in r['stages'].items()} }; {machine_line()}", flush=True)
            b = run_baseline(truth.clip, model_dir, threads, o["plan"], work / "ffmpeg.mp4", truth.fps)
            base.append(b)
            print(f"  run {i + 1} baseline: wall {b['wall']:6.2f}s cpu {b['cpu']:6.2f}s = faster-whisper process "
                  f"{b['whisper']:.2f}s ({b['detail']}) + ffmpeg cut {b['ffmpeg']:.2f}s; {machine_line()}",
                  flush=True)

    def med(rows: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    print(f"\nend to end, {truth.clip.name} ({truth.duration:.1f}s), {a.repeat} run(s) each (seconds, medians)")
    print(f"{'metric':34} {'ours':>8} {'baseline':>9} {'ours/base':>10}")
    print(f"{'wall':34} {med(ours, 'wall'):8.2f} {med(base, 'wall'):9.2f} "
          f"{med(ours, 'wall') / med(base, 'wall'):10.2f}")
    print(f"{'cpu (children)':34} {med(ours, 'cpu'):8.2f} {med(base, 'cpu'):9.2f} "
          f"{med(ours, 'cpu') / med(base, 'cpu'):10.2f}")
    stages = sorted({k for o in ours for k in o["stages"]})
    tr = statistics.median(o["stages"].get("transcribe", 0.0) for o in ours)
    rd = statistics.median(o["stages"].get("render", 0.0) for o in ours)
    print(f"{'transcribe stage vs whisper process':34} {tr:8.2f} {med(base, 'whisper'):9.2f} "
          f"{tr / med(base, 'whisper'):10.2f}")
    print(f"{'render stage vs ffmpeg cut':34} {rd:8.2f} {med(base, 'ffmpeg'):9.2f} {rd / med(base, 'ffmpeg'):10.2f}")
    for k in stages:
        print(f"  stage {k:26} {statistics.median(o['stages'].get(k, 0.0) for o in ours):8.2f}")
    in_task = statistics.median(o["seconds"] or 0.0 for o in ours)
    print(f"  outside the stages (interpreter, imports, model load, probe/fetch, copy): "
          f"{med(ours, 'wall') - in_task:.2f}s of wall")
    print(f"\nworker task processes (aicut.worker.pool), same clip and model (seconds, medians)")
    print(f"{'metric':34} {'cold':>8} {'warm':>9} {'baseline':>9} {'warm/base':>10}")
    for key in ("wall", "cpu"):
        print(f"{key:34} {med(cold, key):8.2f} {med(warm, key):9.2f} {med(base, key):9.2f} "
              f"{med(warm, key) / med(base, key):10.2f}")
    for k in sorted({k for r in cold + warm for k in r["stages"]}):
        print(f"  stage {k:26} {statistics.median(r['stages'].get(k, 0.0) for r in cold):8.2f} "
              f"{statistics.median(r['stages'].get(k, 0.0) for r in warm):9.2f}")
    w = med(ours, "wall")
    print(f"aim (issue 4): under {AIM_S:g} s end to end — {w:.1f}s: {'met' if w < AIM_S else 'MISSED'}; "
          f"{machine_line()}")
    ww = med(warm, "wall")
    print(f"aim (issue 4), a warm worker task: {ww:.1f}s: {'met' if ww < AIM_S else 'MISSED'} "
          f"(cold worker task {med(cold, 'wall'):.1f}s)")
    return 0
