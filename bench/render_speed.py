"""Render speed: our render stage against the ffmpeg command line cutting the same list with the same settings.

A ~30 s 720p clip with real motion (a textured background that pans, a "head" that moves and changes, film grain,
and a voice-like sound) is made with PyAV. An edit plan like a talking-head cut keeps ~70 % of it in a dozen
pieces. Side by side, in the same run, alternating:

- **ours**: :func:`aicut.pipeline.render.render` with x264 (decode once, cut, 15 ms fades at joins, libx264
  veryfast CRF 20 profile high with a 2 s keyframe interval, AAC 128 kb/s, faststart MP4, a soft subtitle track);
- **baseline**: ``ffmpeg`` with a ``trim``/``atrim`` + ``concat`` filter graph and the same encoder settings
  (``-c:v libx264 -preset veryfast -crf 20 -profile:v high -g 60 -pix_fmt yuv420p -c:a aac -b:a 128k
  -movflags +faststart``).

Reported: wall time (median of ``--repeat`` runs, and the best run of each, which is what a busy machine
disturbs least) and CPU seconds of each, the ratio ours/ffmpeg (aim ≤ 1.0), the
PSNR of ours against ffmpeg's output and of each against the source frames it shows (numpy, luma and all planes),
and the file sizes. The keeps start and end on frame times, so both tools pick the same frames and the PSNR
compares like with like.

The ffmpeg command line is only the baseline: it is not a runtime dependency of aicut. Debian: ``apt-get install
ffmpeg``.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from aicut.pipeline.edl import Cue, EditPlan, Keep
from aicut.pipeline.render import RenderOptions, render, source_time
from bench.common import make_motion_clip

AIM_RATIO = 1.0
_DESCRIPTION = "Render speed and quality: aicut's render against the ffmpeg CLI doing the same cut (libx264, aac)."


@dataclass(frozen=True, slots=True)
class Options:
    seconds: float
    width: int
    height: int
    fps: int
    repeat: int
    keep_dir: Path | None
    clip: Path | None


def parse_args(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench render_speed", description=_DESCRIPTION)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the test clip (default 30)")
    parser.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT of the test clip (default 1280x720)")
    parser.add_argument("--fps", type=int, default=30, help="frame rate of the test clip (default 30)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, alternating; medians (default 3)")
    parser.add_argument("--keep", type=Path, default=None, help="write the clip and both outputs here")
    parser.add_argument("--clip", type=Path, default=None,
                        help="use this clip (one --keep wrote) instead of making one; --seconds/--size/--fps "
                             "must describe it")
    a = parser.parse_args(argv)
    width, height = (int(x) for x in a.size.lower().split("x"))
    return Options(a.seconds, width, height, a.fps, max(1, a.repeat), a.keep, a.clip)


def cut_plan(seconds: float, fps: int) -> EditPlan:
    """Keeps like a talking-head cut (a dozen pieces, ~70 % kept), every boundary on a frame time."""
    rng = np.random.default_rng(20240521)
    keeps: list[Keep] = []
    t = 0.4
    while t < seconds - 1.0:
        length = float(rng.uniform(1.2, 3.2))
        end = min(t + length, seconds - 0.5)
        keeps.append(Keep(_on_frame(t, fps), _on_frame(end, fps)))
        t = end + float(rng.uniform(0.3, 1.4))
    return EditPlan(seconds, tuple(keeps))


def _on_frame(t: float, fps: int) -> float:
    return round(t * fps) / fps


def ffmpeg_command(source: Path, plan: EditPlan, out: Path, fps: int) -> list[str]:
    """The baseline: trim/atrim each keep, concat, encode with our default settings."""
    parts, labels = [], []
    for i, k in enumerate(plan.keeps):
        parts.append(f"[0:v]trim=start={k.start:.6f}:end={k.end:.6f},setpts=PTS-STARTPTS[v{i}]")
        parts.append(f"[0:a]atrim=start={k.start:.6f}:end={k.end:.6f},asetpts=PTS-STARTPTS[a{i}]")
        labels.append(f"[v{i}][a{i}]")
    graph = ";".join(parts) + ";" + "".join(labels) + f"concat=n={len(plan.keeps)}:v=1:a=1[v][a]"
    return ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(source),
            "-filter_complex", graph, "-map", "[v]", "-map", "[a]",
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-profile:v", "high", "-g", str(2 * fps),
            "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", str(out)]


@dataclass(frozen=True, slots=True)
class Run:
    wall_s: float
    cpu_s: float


def run_ours(source: Path, plan: EditPlan, out: Path, cues: list[Cue]) -> Run:
    cpu = time.process_time()
    wall = time.perf_counter()
    render(source, plan, out, RenderOptions(encoder="x264"), cues=cues)
    return Run(time.perf_counter() - wall, time.process_time() - cpu)


def run_ffmpeg(cmd: list[str]) -> Run:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall_s = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Run(wall_s, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))


# --- quality --------------------------------------------------------------------------------------------------------


def _yuv_frames(path: Path) -> list[tuple[float, np.ndarray]]:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        return [(float(f.time), f.reformat(format="yuv420p").to_ndarray()) for f in c.decode(stream)]


def _psnr(mse: float) -> float:
    return math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


@dataclass(frozen=True, slots=True)
class Quality:
    compared: int
    psnr_y: float
    psnr_yuv: float


def psnr(a: list[tuple[float, np.ndarray]], b: list[tuple[float, np.ndarray]], height: int) -> Quality:
    """PSNR of ``a`` against ``b``, frames paired by time (nearest), over all of them."""
    times = np.array([t for t, _ in b])
    se_y = se_all = 0.0
    n_y = n_all = 0
    for t, frame in a:
        other = b[int(np.argmin(np.abs(times - t)))][1]
        d = frame.astype(np.float64) - other.astype(np.float64)
        se_y += float(np.square(d[:height]).sum())
        n_y += d[:height].size
        se_all += float(np.square(d).sum())
        n_all += d.size
    return Quality(len(a), _psnr(se_y / max(1, n_y)), _psnr(se_all / max(1, n_all)))


def against_source(out: list[tuple[float, np.ndarray]], source: list[tuple[float, np.ndarray]], plan: EditPlan,
                   height: int) -> Quality:
    """PSNR of an output against the source frames it should show (through the plan)."""
    mapped = []
    for t, frame in out:
        s = source_time(plan, t + 1e-4)
        if s is not None:
            mapped.append((s, frame))
    return psnr(mapped, source, height)


# --- main -----------------------------------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    opts = parse_args(argv)
    if shutil.which("ffmpeg") is None:
        print("render_speed: the ffmpeg command line is the baseline and is not installed "
              "(Debian: apt-get install ffmpeg); it is not needed by aicut itself")
        return 2
    version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.splitlines()[0]
    with tempfile.TemporaryDirectory(prefix="aicut-bench-render-") as tmp:
        work = opts.keep_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        clip = opts.clip or make_motion_clip(work / "clip.mp4", seconds=opts.seconds, width=opts.width,
                                             height=opts.height, fps=opts.fps)
        plan = cut_plan(opts.seconds, opts.fps)
        cues = [Cue(i * 2.0, i * 2.0 + 1.6, f"subtitle {i + 1}") for i in range(int(plan.output_duration / 2))]
        print(f"render_speed: {opts.width}x{opts.height} {opts.fps} fps {opts.seconds:g} s clip made in "
              f"{time.perf_counter() - started:.1f}s; plan keeps {len(plan.keeps)} pieces, "
              f"{plan.output_duration:.2f}s of {opts.seconds:g}s; {version}; {_cpus()} CPUs, load average "
              f"{os.getloadavg()[0]:.1f}", flush=True)
        ours_out, base_out = work / "ours.mp4", work / "ffmpeg.mp4"
        cmd = ffmpeg_command(clip, plan, base_out, opts.fps)
        ours: list[Run] = []
        base: list[Run] = []
        for i in range(opts.repeat):
            # Alternate, and change who goes first, so neither gets a warmer cache every time.
            order = ("ours", "ffmpeg") if i % 2 == 0 else ("ffmpeg", "ours")
            for who in order:
                if who == "ours":
                    ours.append(run_ours(clip, plan, ours_out, cues))
                else:
                    base.append(run_ffmpeg(cmd))
            print(f"  run {i + 1}: ours {ours[-1].wall_s:.2f}s wall / {ours[-1].cpu_s:.2f}s CPU, "
                  f"ffmpeg {base[-1].wall_s:.2f}s wall / {base[-1].cpu_s:.2f}s CPU", flush=True)
        ours_wall = statistics.median(r.wall_s for r in ours)
        base_wall = statistics.median(r.wall_s for r in base)
        ours_cpu = statistics.median(r.cpu_s for r in ours)
        base_cpu = statistics.median(r.cpu_s for r in base)
        source_frames = _yuv_frames(clip)
        ours_frames, base_frames = _yuv_frames(ours_out), _yuv_frames(base_out)
        vs = psnr(ours_frames, base_frames, opts.height)
        ours_q = against_source(ours_frames, source_frames, plan, opts.height)
        base_q = against_source(base_frames, source_frames, plan, opts.height)
        ratio = ours_wall / base_wall
        best_ratio = min(r.wall_s for r in ours) / min(r.wall_s for r in base)
        print(f"\nrender_speed: cut {plan.output_duration:.2f}s out of a {opts.seconds:g}s {opts.width}x{opts.height} "
              f"clip, libx264 veryfast crf 20 + aac 128k, median of {opts.repeat}")
        print(f"  {'':22}{'wall s':>9}{'CPU s':>9}{'size KiB':>10}{'frames':>8}")
        print(f"  {'ours (aicut render)':22}{ours_wall:9.2f}{ours_cpu:9.2f}{ours_out.stat().st_size / 1024:10.0f}"
              f"{len(ours_frames):8d}")
        print(f"  {'ffmpeg CLI':22}{base_wall:9.2f}{base_cpu:9.2f}{base_out.stat().st_size / 1024:10.0f}"
              f"{len(base_frames):8d}")
        verdict = "met" if ratio <= AIM_RATIO else "MISSED"
        print(f"  wall-time ratio ours/ffmpeg: {ratio:.2f} median, {best_ratio:.2f} best run against best run  "
              f"(aim ≤ {AIM_RATIO:g}: {verdict})")
        print(f"  CPU-time ratio ours/ffmpeg:  {ours_cpu / base_cpu:.2f}")
        print(f"  PSNR ours vs ffmpeg output:  Y {vs.psnr_y:.2f} dB, YUV {vs.psnr_yuv:.2f} dB ({vs.compared} frames)")
        print(f"  PSNR vs source: ours Y {ours_q.psnr_y:.2f} dB / YUV {ours_q.psnr_yuv:.2f} dB, "
              f"ffmpeg Y {base_q.psnr_y:.2f} dB / YUV {base_q.psnr_yuv:.2f} dB")
        if opts.keep_dir:
            print(f"  files kept in {work}")
    return 0


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

