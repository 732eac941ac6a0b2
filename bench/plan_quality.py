"""Plan quality against the fixture's ground truth: what the smart cut removes from the ~64 s English talking head.

The clip (``tests.support.talking_head.build_benchmark_clip``: espeak-ng speech laid out by sample counts) holds
sentences, four long pauses, five fillers (um, uh), two stutters ("the the", "I I") and two retakes whose first take
should go. Side by side, in the same run:

- **ours** — the real pipeline's decisions: :class:`aicut.pipeline.transcribe.Transcriber` (``--models``, default
  ``base`` and ``tiny.en``, language en) on the clip, then :func:`aicut.pipeline.plan.make_plan` with the energy
  envelope, default :class:`PlanOptions`;
- **ideal** — the same planner on the IDEAL transcript: one word per token of each ground-truth piece, spread evenly
  over the piece (one segment per piece). What is lost between ideal and ours is lost to speech recognition;
  what ideal misses is the planner's;
- **silence-only** — an auto-editor-like baseline: cut wherever the envelope stays below ``--silence-db`` for longer
  than ``max_pause_s``, keeping ``natural_gap_s / 2`` at each side (``lead_trail_pad_s`` at the ends).

Per kind of removable piece: **recall** — the share of ground-truth pieces removed: a filler, stutter or first take
at least 50 % covered by cuts; a pause shortened so that at most ``natural_gap_s + 2·pad_s`` of it stays.
**Precision** — by time: the share of all cut seconds that fall outside intended speech (sentences and second takes);
by kind: the share of cut stretches the plan labels with that reason (filler, stutter, retake) that hold a
ground-truth piece of that kind. **Intended words lost**: sentence and second-take pieces that overlap a cut by more
than ``pad_s`` (aim 0). Aims (issue 4): recall ≥ 0.9 for pauses and retakes, ≥ 0.8 for fillers, no intended word lost.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aicut.pipeline.audio import energy, load_audio
from aicut.pipeline.edl import EditPlan, Reason
from aicut.pipeline.wordtimes import refine_word_times
from aicut.pipeline.plan import PlanOptions, make_plan
from aicut.pipeline.transcript import Energy, Segment, Transcript, Word
from bench.common import machine_line, talking_head_clip

KIND_ROWS = (("pauses", ("pause",)), ("fillers", ("filler",)), ("stutters/repeats", ("stutter",)),
             ("retakes", ("retake_first",)))
PROTECTED = ("sentence", "retake_second")
REMOVABLE = ("pause", "filler", "stutter", "retake_first")
REASON_KINDS = {Reason.FILLER: ("filler",), Reason.STUTTER: ("stutter",), Reason.RETAKE: ("retake_first",)}
AIMS = {"pauses": 0.9, "retakes": 0.9, "fillers": 0.8}


# --- intervals ------------------------------------------------------------------------------------------------------


def cut_intervals(plan: EditPlan) -> list[tuple[float, float]]:
    """The complement of the plan's keeps over the source: everything removed, merged."""
    out: list[tuple[float, float]] = []
    t = 0.0
    for k in plan.keeps:
        if k.start > t + 1e-9:
            out.append((t, k.start))
        t = max(t, k.end)
    if plan.source_duration > t + 1e-9:
        out.append((t, plan.source_duration))
    return out


def overlap(a: float, b: float, intervals: list[tuple[float, float]]) -> float:
    return sum(max(0.0, min(b, y) - max(a, x)) for x, y in intervals)


def cut_groups(plan: EditPlan) -> list[tuple[float, float, set[Reason]]]:
    """Touching cuts merged into one stretch, with every reason the plan gave its parts."""
    groups: list[tuple[float, float, set[Reason]]] = []
    for c in sorted(plan.cuts, key=lambda c: c.start):
        if groups and c.start <= groups[-1][1] + 1e-6:
            a, b, reasons = groups[-1]
            groups[-1] = (a, max(b, c.end), reasons | {c.reason})
        else:
            groups.append((c.start, c.end, {c.reason}))
    return groups


# --- baselines ------------------------------------------------------------------------------------------------------


def ideal_transcript(truth: object) -> Transcript:
    """Ground-truth words: one per token of each spoken piece, spread evenly over it; one segment per piece."""
    segments = []
    for p in truth.spoken:  # type: ignore[attr-defined]
        tokens = p.text.split()
        step = (p.end - p.start) / len(tokens)
        words = tuple(Word(round(p.start + i * step, 3), round(p.start + (i + 1) * step, 3), " " + tok, 1.0)
                      for i, tok in enumerate(tokens))
        segments.append(Segment(round(p.start, 3), round(p.end, 3), " " + p.text, words))
    return Transcript(language="en", duration=round(truth.duration, 3), segments=tuple(segments))  # type: ignore


def silence_only_plan(env: Energy, duration: float, o: PlanOptions, threshold_db: float) -> EditPlan:
    """auto-editor-like: cut quiet runs longer than max_pause_s, keeping natural_gap_s/2 at each side."""
    from aicut.pipeline.edl import Cut, Keep

    db = np.asarray(env.db)
    quiet = db < threshold_db
    runs: list[tuple[float, float]] = []
    i, n = 0, len(db)
    while i < n:
        if quiet[i]:
            j = i
            while j < n and quiet[j]:
                j += 1
            runs.append((i * env.frame_s, min(duration, j * env.frame_s)))
            i = j
        else:
            i += 1
    cuts: list[tuple[float, float]] = []
    for a, b in runs:
        lead, trail = a <= 1e-9, b >= duration - 1e-6
        if lead or trail:
            a2 = a if lead else a + o.lead_trail_pad_s
            b2 = b if trail else b - o.lead_trail_pad_s
        elif b - a > o.max_pause_s:
            a2, b2 = a + o.natural_gap_s / 2, b - o.natural_gap_s / 2
        else:
            continue
        if b2 - a2 > o.min_cut_s:
            cuts.append((a2, b2))
    keeps, t = [], 0.0
    for a, b in cuts:
        if a > t:
            keeps.append(Keep(round(t, 3), round(a, 3)))
        t = b
    if duration > t:
        keeps.append(Keep(round(t, 3), round(duration, 3)))
    return EditPlan(duration, tuple(keeps), tuple(Cut(a, b, Reason.PAUSE) for a, b in cuts))


# --- scoring --------------------------------------------------------------------------------------------------------


@dataclass
class Score:
    name: str
    recall: dict[str, tuple[int, int]] = field(default_factory=dict)
    precision_kind: dict[str, tuple[int, int]] = field(default_factory=dict)
    cut_s: float = 0.0
    cut_on_intended_s: float = 0.0
    lost: list[str] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)
    output_s: float = 0.0
    flagged: str = ""
    seconds: str = ""

    @property
    def time_precision(self) -> float:
        return 1.0 - self.cut_on_intended_s / self.cut_s if self.cut_s > 0 else float("nan")


def score(name: str, plan: EditPlan, truth: object, o: PlanOptions, *, by_reason: bool = True) -> Score:
    cuts = cut_intervals(plan)
    s = Score(name, output_s=plan.output_duration, flagged=plan.flag_reason if plan.flagged else "")
    pause_room = o.natural_gap_s + 2 * o.pad_s
    for row, kinds in KIND_ROWS:
        hit = total = 0
        for p in truth.of_kind(*kinds):  # type: ignore[attr-defined]
            covered = overlap(p.start, p.end, cuts)
            if p.kind == "pause":
                ok = p.duration - covered <= pause_room + 1e-6
                detail = f"{p.duration - covered:.2f}s of {p.duration:.2f}s kept (room {pause_room:.2f}s)"
            else:
                ok = covered >= 0.5 * p.duration
                detail = f"{covered / p.duration:.0%} cut"
            total += 1
            hit += ok
            if not ok:
                s.misses.append(f"{p.kind} {p.start:.2f}-{p.end:.2f} {p.text!r}: {detail}")
        s.recall[row] = (hit, total)
    s.cut_s = sum(b - a for a, b in cuts)
    for p in truth.of_kind(*PROTECTED):  # type: ignore[attr-defined]
        lost = overlap(p.start, p.end, cuts)
        s.cut_on_intended_s += lost
        if lost > o.pad_s + 1e-6:
            s.lost.append(f"{p.kind} {p.start:.2f}-{p.end:.2f} {p.text!r}: {lost:.2f}s cut")
    if by_reason:
        groups = cut_groups(plan)
        for row, kinds in KIND_ROWS[1:]:
            reason = next(r for r, k in REASON_KINDS.items() if k == kinds)
            mine = [(a, b) for a, b, rs in groups if reason in rs]
            good = sum(any(overlap(p.start, p.end, [(a, b)]) > 0.3 * p.duration
                           for p in truth.of_kind(*kinds)) for a, b in mine)  # type: ignore[attr-defined]
            s.precision_kind[row] = (good, len(mine))
    return s


# --- report ---------------------------------------------------------------------------------------------------------


def _frac(pair: tuple[int, int] | None) -> str:
    if pair is None:
        return "—"
    hit, total = pair
    return f"{hit}/{total} {hit / total:.2f}" if total else "0/0 —"


def _ratio(a: tuple[int, int] | None, b: tuple[int, int] | None) -> str:
    if not a or not b or not a[1] or not b[1] or b[0] == 0:
        return "—"
    return f"{(a[0] / a[1]) / (b[0] / b[1]):.2f}"


def print_table(scores: list[Score], ideal: Score) -> None:
    head = ["metric", *(s.name for s in scores), *(f"{s.name}/ideal" for s in scores if s is not ideal)]
    rows: list[list[str]] = []
    for row, _ in KIND_ROWS:
        rows.append([f"recall {row}", *(_frac(s.recall.get(row)) for s in scores),
                     *(_ratio(s.recall.get(row), ideal.recall.get(row)) for s in scores if s is not ideal)])
    for row, _ in KIND_ROWS[1:]:
        rows.append([f"precision {row} (cuts)", *(_frac(s.precision_kind.get(row)) for s in scores),
                     *(_ratio(s.precision_kind.get(row), ideal.precision_kind.get(row))
                       for s in scores if s is not ideal)])
    rows.append(["precision by time", *(f"{s.time_precision:.3f}" for s in scores),
                 *(f"{s.time_precision / ideal.time_precision:.2f}" for s in scores if s is not ideal)])
    rows.append(["seconds cut", *(f"{s.cut_s:.2f}" for s in scores),
                 *(f"{s.cut_s / ideal.cut_s:.2f}" for s in scores if s is not ideal)])
    rows.append(["intended speech cut (s)", *(f"{s.cut_on_intended_s:.2f}" for s in scores),
                 *("" for s in scores if s is not ideal)])
    rows.append(["intended words lost", *(str(len(s.lost)) for s in scores), *("" for s in scores if s is not ideal)])
    rows.append(["output seconds", *(f"{s.output_s:.2f}" for s in scores), *("" for s in scores if s is not ideal)])
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join([r[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(r[1:], widths[1:]))]) for r in
             [head, *rows]]
    lines.insert(1, "-" * len(lines[0]))
    print("\n".join(lines))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench plan_quality", description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="base,tiny.en", help="speech models, comma-separated (default base,tiny.en)")
    parser.add_argument("--silence-db", type=float, default=-40.0,
                        help="the silence-only baseline's threshold, dBFS RMS per 10 ms (default -40)")
    parser.add_argument("--clip-dir", type=Path, default=None, help="where the benchmark clip is built and reused")
    parser.add_argument("--words", action="store_true", help="print each transcript's words")
    a = parser.parse_args(argv)

    from aicut.pipeline.transcribe import TranscribeOptions, Transcriber

    t0 = time.perf_counter()
    truth = talking_head_clip(a.clip_dir)
    print(f"plan_quality: clip {truth.clip} ({truth.duration:.1f}s, {len(truth.pieces)} pieces) ready in "
          f"{time.perf_counter() - t0:.1f}s; {machine_line()}", flush=True)
    o = PlanOptions()
    samples = load_audio(truth.clip)
    env = energy(samples)

    scores: list[Score] = []
    for model in [m.strip() for m in a.models.split(",") if m.strip()]:
        t1 = time.perf_counter()
        tr = Transcriber(TranscribeOptions(model=model, language="en"))
        t2 = time.perf_counter()
        transcript = tr.transcribe(truth.clip, language="en")
        t3 = time.perf_counter()
        plan = make_plan(refine_word_times(transcript, env), env, o, language="en")   # as the pipeline does
        s = score(f"ours {model}", plan, truth, o)
        s.seconds = f"model load {t2 - t1:.1f}s, transcribe {t3 - t2:.1f}s, {len(transcript.words)} words"
        scores.append(s)
        print(f"  {s.name}: {s.seconds}; {machine_line()}", flush=True)
        if a.words:
            print("   ", " ".join(f"{w.text.strip()}@{w.start:.2f}-{w.end:.2f}" for w in transcript.words))
    ideal = score("ideal", make_plan(ideal_transcript(truth), env, o, language="en"), truth, o)
    silence = score("silence-only", silence_only_plan(env, truth.duration, o, a.silence_db), truth, o,
                    by_reason=False)
    scores += [ideal, silence]

    print(f"\nplan quality on {truth.clip.name} ({truth.duration:.1f}s; counts are hit/total then the share)")
    print_table(scores, ideal)
    print("ideal: the same planner on ground-truth word timings; silence-only: auto-editor-like cuts below "
          f"{a.silence_db:g} dBFS longer than {o.max_pause_s:g}s. x/ideal: ours divided by ideal (share of the "
          "ideal plan's result that survives speech recognition).")
    for s in scores:
        if s.flagged:
            print(f"{s.name}: FLAGGED: {s.flagged}")
        for m in s.misses:
            print(f"{s.name}: missed {m}")
        for lost in s.lost:
            print(f"{s.name}: LOST {lost}")
    print("aims (issue 4): recall ≥ 0.9 pauses and retakes, ≥ 0.8 fillers, no intended word lost")
    for s in scores:
        verdicts = []
        for row, aim in AIMS.items():
            hit, total = s.recall[row]
            verdicts.append(f"{row} {hit / total:.2f} {'met' if hit / total >= aim else 'MISSED'}")
        verdicts.append(f"words lost {len(s.lost)} {'met' if not s.lost else 'MISSED'}")
        print(f"  {s.name}: " + ", ".join(verdicts))
    print(f"done in {time.perf_counter() - t0:.1f}s; {machine_line()}")
    return 0
