"""Transcribe overhead: our ``Transcriber.transcribe`` against faster-whisper's ``WhisperModel.transcribe`` called
directly on the same clip with the same settings.

- **ours** — :meth:`aicut.pipeline.transcribe.Transcriber.transcribe` on the clip's path: our audio decode
  (:func:`aicut.pipeline.audio.load_audio`), the Whisper pass, the repair pass (a second look at unworded speech)
  and the cleaning of hallucinated segments;
- **baseline** — a second ``WhisperModel`` on the same model directory
  (:func:`aicut.pipeline.speech_models.resolve_model_dir`), same device, compute type and thread count, called with
  exactly the keyword arguments ours hands faster-whisper (``Transcriber.transcribe_kwargs``: word timestamps, Silero
  VAD with our silence/padding, beam 5, the disfluency prompt as hotwords), on the clip's path (faster-whisper
  decodes it itself), its lazy segments drained.

Each model is loaded once (load times are printed); then ``--repeat`` runs of each, alternating. Reported: median
(and best) wall and CPU seconds (``time.process_time``: every thread of this process, CTranslate2's included),
overhead % = ours / baseline − 1 (aim ≤ 5 %), and the words each found.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from bench.common import machine_line, talking_head_clip

AIM_PCT = 5.0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench transcribe_overhead", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="base", help="speech model: base (default) or tiny.en")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, alternating (default 3)")
    parser.add_argument("--clip", type=Path, default=None, help="a media file instead of the benchmark clip")
    a = parser.parse_args(argv)

    from faster_whisper import WhisperModel

    from aicut.pipeline.transcribe import TranscribeOptions, Transcriber, _cpu_count

    clip = a.clip or talking_head_clip().clip
    print(f"transcribe_overhead: {clip} model {a.model}; {machine_line()}", flush=True)
    options = TranscribeOptions(model=a.model, language="en")
    t0 = time.perf_counter()
    ours = Transcriber(options)
    t1 = time.perf_counter()
    threads = options.cpu_threads or _cpu_count()
    direct = WhisperModel(str(ours.model_dir), device=ours.device, compute_type=ours.compute_type,
                          cpu_threads=threads, local_files_only=True)
    t2 = time.perf_counter()
    kwargs = ours.transcribe_kwargs("en")
    print(f"  load: ours {t1 - t0:.2f}s, direct {t2 - t1:.2f}s ({ours.device}/{ours.compute_type}, {threads} "
          f"threads); kwargs {sorted(kwargs)}", flush=True)

    def run_ours() -> tuple[float, float, int]:
        c, w = time.process_time(), time.perf_counter()
        tr = ours.transcribe(clip, language="en")
        return time.perf_counter() - w, time.process_time() - c, len(tr.words)

    def run_direct() -> tuple[float, float, int]:
        c, w = time.process_time(), time.perf_counter()
        segments, _info = direct.transcribe(str(clip), **kwargs)
        n = sum(len(s.words or ()) for s in segments)
        return time.perf_counter() - w, time.process_time() - c, n

    results: dict[str, list[tuple[float, float, int]]] = {"ours": [], "direct": []}
    for i in range(max(1, a.repeat)):
        order = (("ours", run_ours), ("direct", run_direct)) if i % 2 == 0 else \
            (("direct", run_direct), ("ours", run_ours))
        for name, fn in order:
            r = fn()
            results[name].append(r)
            print(f"  run {i + 1} {name:6}: wall {r[0]:6.2f}s cpu {r[1]:6.2f}s words {r[2]}; {machine_line()}",
                  flush=True)

    def med(name: str, k: int) -> float:
        return statistics.median(r[k] for r in results[name])

    def best(name: str, k: int) -> float:
        return min(r[k] for r in results[name])

    print(f"\ntranscribe overhead, {clip.name}, model {a.model} (seconds; {a.repeat} runs each)")
    print(f"{'metric':12} {'ours':>8} {'direct':>8} {'ours/direct':>12} {'overhead':>9}")
    for label, k, f in (("wall median", 0, med), ("wall best", 0, best), ("cpu median", 1, med),
                        ("cpu best", 1, best)):
        o, d = f("ours", k), f("direct", k)
        print(f"{label:12} {o:8.2f} {d:8.2f} {o / d:12.3f} {100 * (o / d - 1):8.1f}%")
    print(f"words: ours {results['ours'][-1][2]}, direct {results['direct'][-1][2]} (ours adds the repair pass "
          "and drops hallucinated segments)")
    overhead = 100 * (med("ours", 0) / med("direct", 0) - 1)
    print(f"aim (issue 4): overhead ≤ {AIM_PCT:g} % — median wall {overhead:.1f} %: "
          f"{'met' if overhead <= AIM_PCT else 'MISSED'}; {machine_line()}")
    return 0
