"""Stage 7a, subtitles: the words that survive the edit plan, as cues on the output timeline, and SRT text.

Pure functions, no I/O. How it decides:

- A word stays when its midpoint survives the plan (``plan.to_output_time``); its times are mapped into the output
  and clipped to the keep-range that holds it, so padding trimmed by the plan never leaks into a cue.
- Cues break at sentence ends, at recogniser segment boundaries and at long silences, always; at cut joins unless the
  piece on one side would be shorter than ``min_cue_s`` (a subtitle that changes with the picture's jump reads well,
  a flash of two characters does not); elsewhere they are split by a small optimisation that prefers clause
  punctuation, balanced cues, and never splits a Latin word or number.
- Lines: CJK text is measured in full-width cells (a Latin letter or digit is half a cell) and may break between any
  two CJK characters, best after a pause mark, never inside a Latin word or number, never before closing punctuation;
  other languages break at spaces. Two lines are balanced, the top one preferably not longer.
- Punctuation (CJK): the Chinese subtitle convention drops ，、；：。 — a space stands where one was inside a line,
  nothing at a line's end; ？！…, quotes and book-title marks stay. Latin-script subtitles keep their punctuation.
- Times: a cue lingers ``linger_s`` after its last word, short gaps are closed (no blinking), every cue lasts at least
  ``min_cue_s`` where the neighbours allow, cues never overlap, and all times are whole milliseconds inside
  ``[0, plan.output_duration]``, so the SRT written from them is monotonic and inside the output.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import logging
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from aicut.pipeline.edl import Cue, EditPlan
from aicut.pipeline.transcript import Transcript, Word

logger = logging.getLogger(__name__)

CJK_LANGUAGES = frozenset({"zh", "ja", "yue", "cmn", "wuu", "nan", "hak", "lzh"})

# Sentence ends: a cue always ends after one of these.
_SENTENCE_END = set("。！？!?…")
# Pause marks that become a space in CJK subtitles (half-width ones only where they are not inside a number).
_CJK_PAUSE_MARKS = set("，、；：。．,;:")
# Characters that may not start a line (kinsoku), and ones that may not end it.
_NO_LINE_START = set("，。、；：！？…）》」』】〕〉”’,.;:!?)]}%")
_NO_LINE_END = set("（《「『【〔〈“‘([{")
# Clause punctuation: the best places to break a line or a cue, before a plain word boundary.
_CLAUSE_END = set("，、；：,;:—–") | _SENTENCE_END | {"."}
# Chinese particles that attach to the word before them: a line should not start with one.
_ZH_ATTACHED = set("的了吗呢吧啊呀着过得地们么")
# English words a line break may precede more naturally than others.
_EN_BREAK_BEFORE = frozenset({"and", "but", "or", "so", "because", "that", "which", "who", "when", "if", "then",
                              "to", "with", "for", "of", "in", "on"})


@dataclass(frozen=True, slots=True)
class SubtitleOptions:
    """How cues are cut, laid out and timed. Defaults follow common Chinese and English subtitle practice."""

    max_chars_zh: int = 16          # full-width cells per line for CJK languages (a Latin letter or digit is half)
    max_chars_en: int = 42          # characters per line for every other language
    max_lines: int = 2
    max_cue_s: float = 6.0          # a cue is split when its words span longer than this
    min_cue_s: float = 0.8          # shorter cues are lengthened into the gaps around them, where there is room
    linger_s: float = 0.3           # how long a cue stays after its last word ends, room permitting
    bridge_gap_s: float = 0.5       # gaps between cues shorter than this are closed: no blinking off and on
    min_gap_s: float = 0.08         # two frames at 25 fps between consecutive cues, so a change is seen as one
    max_pause_s: float = 1.0        # a silence this long between two words always starts a new cue
    break_at_cuts: bool = True      # end cues at cut joins, unless the piece on one side would flash by
    strip_punctuation: bool = True  # CJK: ，、；：。 → a space inside a line, nothing at its end (see module doc)


# --- text measurement -------------------------------------------------------------------------------------------


def _wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")


def _narrow_glyph(ch: str) -> bool:
    """A letter, digit or joiner of a Latin word or number (not a space, not wide, not a pause mark)."""
    return not ch.isspace() and not _wide(ch) and (ch.isalnum() or ch in "-_'’.%+#@&/·°$€£¥")


def is_cjk_text(text: str) -> bool:
    """Whether most letters of ``text`` are CJK (full-width) characters."""
    letters = [ch for ch in text if ch.isalnum()]
    return bool(letters) and sum(_wide(ch) for ch in letters) * 2 >= len(letters)


@functools.lru_cache(maxsize=8192)
def _char_width(ch: str, cjk: bool) -> float:
    if cjk:
        return 1.0 if _wide(ch) else 0.5
    return 2.0 if _wide(ch) else 1.0


def display_width(text: str, *, cjk: bool) -> float:
    """Length of a line as the limits count it: CJK cells (narrow = 0.5) or characters (wide = 2)."""
    return sum(_char_width(ch, cjk) for ch in text)


def _line_limit(options: SubtitleOptions, cjk: bool) -> float:
    return float(options.max_chars_zh if cjk else options.max_chars_en)


# --- tokens on the output timeline ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Token:
    text: str
    start: float          # output time
    end: float
    keep: int             # index of the keep-range holding the word's midpoint
    segment: int          # index of the recogniser segment


def _pseudo_words(start: float, end: float, text: str, cjk: bool) -> list[Word]:
    """Words for a segment that came without word times: its text split evenly over its time span."""
    if cjk:
        units = re.findall(r"\s*(?:[A-Za-z0-9][A-Za-z0-9.'’%-]*|\S)", text)
    else:
        units = re.findall(r"\s*\S+", text)
    weights = [max(0.5, display_width(u.strip(), cjk=True)) for u in units]
    total = sum(weights) or 1.0
    words: list[Word] = []
    t = start
    for unit, weight in zip(units, weights, strict=True):
        span = (end - start) * weight / total
        words.append(Word(t, t + span, unit))
        t += span
    return words


def _tokens(transcript: Transcript, plan: EditPlan, cjk: bool) -> tuple[list[_Token], list[float]]:
    """Surviving words in output order with output times, and the source gap after each keep (>0: a cut)."""
    keeps = plan.keeps
    starts = [k.start for k in keeps]
    offsets: list[float] = []
    acc = 0.0
    for keep_range in keeps:
        offsets.append(acc)
        acc += keep_range.duration
    cut_after = [keeps[i + 1].start - keeps[i].end for i in range(len(keeps) - 1)] + [0.0]
    tokens: list[_Token] = []
    for seg_index, seg in enumerate(transcript.segments):
        words = list(seg.words) or _pseudo_words(seg.start, seg.end, seg.text, cjk)
        for w in words:
            if not w.text.strip():
                continue
            mid = (w.start + w.end) / 2
            # The same test as plan.to_output_time(mid) is not None, without its walk over every keep per word.
            k = bisect.bisect_right(starts, mid) - 1
            if k < 0 or mid > keeps[k].end:
                continue
            keep = keeps[k]
            out_start = offsets[k] + max(w.start, keep.start) - keep.start
            out_end = offsets[k] + min(max(w.end, w.start), keep.end) - keep.start
            tokens.append(_Token(w.text, out_start, max(out_start, out_end), k, seg_index))
    return tokens, cut_after


def _is_join(a: _Token, b: _Token, cut_after: Sequence[float]) -> bool:
    """Whether the picture jumps between two consecutive surviving words (a cut lies between them)."""
    lo, hi = sorted((a.keep, b.keep))
    return any(cut_after[m] > 1e-3 for m in range(lo, hi))


def _ends_sentence(text: str) -> bool:
    stripped = text.rstrip().rstrip("\"'”’」』）)]》")
    if not stripped:
        return False
    last = stripped[-1]
    if last in _SENTENCE_END:
        return True
    # "." ends a sentence after a word, not inside a number ("3.5" is one token, but "3." may end one too).
    return last in ".．" and len(stripped) >= 2 and not stripped[-2].isdigit()


def _glued(a: str, b: str) -> bool:
    """Whether two adjacent pieces of text join inside one Latin word or number (no space between)."""
    return bool(a) and bool(b) and _narrow_glyph(a[-1]) and _narrow_glyph(b[0])


# --- CJK punctuation and line layout ----------------------------------------------------------------------------


def _normalise(chars: Sequence[str], cjk: bool, strip_punctuation: bool) -> tuple[str, list[int]]:
    """Text with CJK pause marks turned into spaces (where asked) and runs of whitespace collapsed to one space, and
    for each input offset (plus the end) the offset in that text where it landed."""
    chars = list(chars)
    if cjk:
        # A recogniser may put a space before every Chinese word; between two CJK characters it is not text.
        nonspace = [k for k, ch in enumerate(chars) if not ch.isspace()]
        for prev, nxt in itertools.pairwise(nonspace):
            if nxt - prev > 1 and _wide(chars[prev]) and _wide(chars[nxt]):
                for k in range(prev + 1, nxt):
                    chars[k] = ""
    if cjk and strip_punctuation:
        for i, ch in enumerate(chars):
            if ch not in _CJK_PAUSE_MARKS:
                continue
            if not _wide(ch):
                # "," "." ":" between digits or letters belong to a number, a time or an abbreviation: keep them.
                before = chars[i - 1] if i > 0 else ""
                after = chars[i + 1] if i + 1 < len(chars) else ""
                if before and after and _narrow_glyph(before) and _narrow_glyph(after):
                    continue
            chars[i] = " "
    out: list[str] = []
    where: list[int] = []
    for ch in chars:
        where.append(len(out))
        if not ch:
            continue
        if ch.isspace():
            if out and out[-1] == " ":
                continue
            ch = " "
        out.append(ch)
    where.append(len(out))
    return "".join(out), where


def _break_cost(text: str, i: int, cjk: bool, token_starts: frozenset[int]) -> float | None:
    """Cost of starting a new line at ``text[i]``; None where a break is not allowed."""
    a, b = text[i - 1], text[i]
    if b.isspace():
        return None  # break after the space instead, so the space is dropped at the line end
    if a.isspace():
        if not cjk:
            word = re.match(r"[\w']+", text[i:])
            prev = text[:i].rstrip()
            if prev and prev[-1] in _CLAUSE_END:
                return 0.0
            return 0.3 if word and word.group(0).lower() in _EN_BREAK_BEFORE else 0.6
        return 0.0  # in CJK text a space stands for a pause mark: the best break there is
    if not cjk:
        return None  # Latin-script text breaks at spaces only
    if b in _NO_LINE_START or a in _NO_LINE_END:
        return None
    if _narrow_glyph(a) and _narrow_glyph(b):
        return None  # inside a Latin word or a number
    if a in _CLAUSE_END:
        return 0.0
    if b in _ZH_ATTACHED:
        return 2.5
    return 0.5 if i in token_starts else 1.5


def line_breaks(text: str, *, cjk: bool) -> list[tuple[int, float]]:
    """Where ``text`` may break into lines, as (offset of the next line's first character, cost): cheapest after
    punctuation or at spaces; never inside a Latin word or number, never before closing punctuation."""
    return [(i, c) for i in range(1, len(text)) if (c := _break_cost(text, i, cjk, frozenset())) is not None]


def _layout(text: str, cjk: bool, options: SubtitleOptions,
            token_starts: frozenset[int] = frozenset()) -> list[str] | None:
    """Lines for ``text`` within the limits, balanced; None when it does not fit in ``max_lines`` lines."""
    limit = _line_limit(options, cjk)
    prefix = [0.0, *itertools.accumulate(_char_width(ch, cjk) for ch in text)]
    total = prefix[-1]
    if total <= limit:
        return [text]
    if options.max_lines < 2:
        return None

    def width(p: int, q: int) -> float:
        # Width of text[p:q] without the spaces at its ends (normalised text has at most one at each).
        if p < q and text[p] == " ":
            p += 1
        if q > p and text[q - 1] == " ":
            q -= 1
        return prefix[q] - prefix[p]

    breaks = [(i, c) for i in range(1, len(text)) if (c := _break_cost(text, i, cjk, token_starts)) is not None]
    positions = [0] + [i for i, _ in breaks] + [len(text)]
    costs = {i: c for i, c in breaks}
    best: tuple[float, list[int]] | None = None
    # Few lines and few break points: a search over line counts and positions, each line checked against the limit.
    for n_lines in range(2, options.max_lines + 1):
        target = total / n_lines
        # dp[p] = (cost, cuts) for text[:p] laid in j lines, for j = 1 .. n_lines
        layer: dict[int, tuple[float, list[int]]] = {0: (0.0, [])}
        for j in range(n_lines):
            last = j == n_lines - 1
            nxt: dict[int, tuple[float, list[int]]] = {}
            for p, (cost, cuts) in layer.items():
                for q in (positions if not last else [len(text)]):
                    if q <= p:
                        continue
                    w = width(p, q)
                    if w <= 0 or w > limit:
                        continue
                    # Balance matters as much as the place: a 3 + 14 split reads worse than one inside a word.
                    c = cost + ((w - target) / limit) ** 2 * 8 + (costs.get(q, 0.0) if not last else 0.0)
                    if j == 0 and n_lines == 2 and w > total - w:
                        c += 0.05  # prefer the bottom line the longer one: the eye starts on the shorter top
                    if q not in nxt or c < nxt[q][0]:
                        nxt[q] = (c, cuts + [q])
            layer = nxt
        if len(text) in layer:
            cost, cuts = layer[len(text)]
            cost += 0.5 * (n_lines - 2)  # more lines only when fewer do not fit
            if best is None or cost < best[0]:
                best = (cost, cuts)
        if best is not None:
            break
    if best is None:
        return None
    lines: list[str] = []
    p = 0
    for q in best[1]:
        lines.append(text[p:q].strip())
        p = q
    return lines


def _finish_lines(lines: list[str], cjk: bool, options: SubtitleOptions) -> list[str]:
    if cjk and options.strip_punctuation:
        # Pause marks already became spaces; what is left at a line's end is a space, drop it.
        lines = [line.strip() for line in lines]
    return [line for line in lines if line]


# --- cue segmentation -------------------------------------------------------------------------------------------


def _groups(tokens: list[_Token], cut_after: Sequence[float], options: SubtitleOptions) -> list[list[_Token]]:
    """Runs of tokens no cue may span: split at sentence ends, segment boundaries, long pauses and (most) cuts."""
    groups: list[list[_Token]] = []
    current: list[_Token] = []
    for tok in tokens:
        if current:
            prev = current[-1]
            if (_ends_sentence(prev.text) or tok.segment != prev.segment
                    or tok.start - prev.end >= options.max_pause_s):
                groups.append(current)
                current = []
        current.append(tok)
    if current:
        groups.append(current)
    if not options.break_at_cuts:
        return groups
    out: list[list[_Token]] = []
    for group in groups:
        out.extend(_split_at_joins(group, cut_after, options))
    return out


def _split_at_joins(group: list[_Token], cut_after: Sequence[float], options: SubtitleOptions) -> list[list[_Token]]:
    pieces: list[list[_Token]] = [[group[0]]]
    for prev, tok in itertools.pairwise(group):
        if _is_join(prev, tok, cut_after) and not _glued(prev.text, tok.text):
            pieces.append([])
        pieces[-1].append(tok)

    def span(piece: list[_Token]) -> float:
        return piece[-1].end - piece[0].start

    # A piece too short to read on its own joins a neighbour: the cut is then spanned, which is the lesser evil.
    while len(pieces) > 1:
        short = [i for i, p in enumerate(pieces) if span(p) < options.min_cue_s]
        if not short:
            break
        i = min(short, key=lambda k: span(pieces[k]))
        if i == 0:
            j = 1
        elif i == len(pieces) - 1:
            j = i - 1
        else:
            j = i - 1 if span(pieces[i - 1]) <= span(pieces[i + 1]) else i + 1
        lo, hi = sorted((i, j))
        pieces[lo:hi + 1] = [pieces[lo] + pieces[hi]]
    return pieces


def _boundary_cost(a: _Token, b: _Token, cut_after: Sequence[float]) -> float:
    """Cost of ending a cue between two words."""
    if _glued(a.text, b.text):
        return 50.0  # inside a Latin word or number: only when nothing else fits
    tail = a.text.rstrip()
    if tail and tail[-1] in _CLAUSE_END:
        return 0.0
    if _is_join(a, b, cut_after):
        return 0.0
    if b.start - a.end >= 0.3:
        return 0.3  # a breath between words is a natural place
    if b.text.strip().lower() in _EN_BREAK_BEFORE:
        return 1.0  # before a conjunction or preposition: the start of a phrase
    return 1.5


def _split_group(group: list[_Token], cut_after: Sequence[float], cjk: bool,
                 options: SubtitleOptions) -> list[tuple[list[_Token], list[str]]]:
    """Split one run into cues within the line and time limits, by dynamic programming over word boundaries."""
    n = len(group)
    capacity = _line_limit(options, cjk) * max(1, options.max_lines)
    # The run's text is normalised once; a cue's text is then a slice of it, and its width a difference of sums.
    chars: list[str] = []
    first: list[int] = []
    for tok in group:
        first.append(len(chars))
        chars.extend(tok.text)
    first.append(len(chars))
    text, where = _normalise(chars, cjk, options.strip_punctuation)
    offset = [where[f] for f in first]
    prefix = [0.0, *itertools.accumulate(_char_width(ch, cjk) for ch in text)]

    def piece_text(i: int, j: int) -> tuple[str, frozenset[int], float]:
        a, b = offset[i], offset[j]
        while a < b and text[a] == " ":
            a += 1
        while b > a and text[b - 1] == " ":
            b -= 1
        starts = frozenset(offset[k] - a for k in range(i + 1, j) if a < offset[k] < b)
        return text[a:b], starts, prefix[b] - prefix[a]

    best: list[tuple[float, int]] = [(0.0, 0)] + [(math.inf, -1)] * n
    layouts: dict[tuple[int, int], list[str]] = {}
    for j in range(1, n + 1):
        for i in range(j - 1, -1, -1):
            if best[i][0] == math.inf:
                continue
            duration = group[j - 1].end - group[i].start
            if duration > options.max_cue_s and i < j - 1:
                break  # starting earlier only makes it longer
            cue_text, starts, width = piece_text(i, j)
            if width > capacity + options.max_lines and i < j - 1:
                break  # ... and wider
            lines: list[str] | None
            if width <= _line_limit(options, cjk):
                lines = [cue_text] if cue_text else []
            else:
                lines = _layout(cue_text, cjk, options, starts)
            if lines is None:
                if i < j - 1:
                    continue
                lines = [cue_text]  # one word wider than the limit (a URL, say): it still has to be shown
            fill = min(1.0, width / capacity)
            cost = 1.0 + (1.0 - fill) ** 2
            if duration < options.min_cue_s:
                cost += 2.0 * (options.min_cue_s - duration) / options.min_cue_s
            if j < n:
                cost += _boundary_cost(group[j - 1], group[j], cut_after)
            total = best[i][0] + cost
            if total < best[j][0]:
                best[j] = (total, i)
                layouts[(i, j)] = lines
    cues: list[tuple[list[_Token], list[str]]] = []
    j = n
    while j > 0:
        i = best[j][1]
        cues.append((group[i:j], layouts[(i, j)]))
        j = i
    cues.reverse()
    return cues


# --- timing -----------------------------------------------------------------------------------------------------


def _floor_ms(t: float) -> float:
    return math.floor(t * 1000 + 1e-6) / 1000


def _time(raw: list[tuple[float, float, str]], duration: float, options: SubtitleOptions) -> list[Cue]:
    """Final cue times: linger, close short gaps, enforce the minimum, no overlap, inside [0, duration]."""
    cues: list[Cue] = []
    prev_end = 0.0
    for n, (start, end, text) in enumerate(raw):
        start = min(max(start, prev_end, 0.0), duration)
        end = min(max(end, start), duration)
        next_start = duration if n + 1 == len(raw) else min(max(raw[n + 1][0], start), duration)
        # Keep min_gap_s before the next cue, but never by cutting this cue's own words short: then they abut.
        limit = next_start if n + 1 == len(raw) else max(next_start - options.min_gap_s, min(end, next_start))
        target = end + options.linger_s
        if limit - target < options.bridge_gap_s:
            target = limit  # the gap left would blink: close it
        target = min(target, max(end, start + options.max_cue_s))
        end = min(max(end, target), limit)
        if end - start < options.min_cue_s:
            end = min(start + options.min_cue_s, limit)
            if end - start < options.min_cue_s:  # no room after: take some from the gap before
                earlier = max(prev_end + (options.min_gap_s if cues else 0.0), end - options.min_cue_s, 0.0)
                start = min(start, earlier)
        start, end = _floor_ms(start), _floor_ms(end)
        if end - start < 0.001:  # only words of no duration at all get here
            logger.warning("subtitle %r has no room on the output timeline; dropped", text)
            continue
        cues.append(Cue(start, end, text))
        prev_end = end
    return cues


# --- public API -------------------------------------------------------------------------------------------------


def make_cues(transcript: Transcript, plan: EditPlan, options: SubtitleOptions = SubtitleOptions(), *,
              language: str = "") -> list[Cue]:
    """Subtitle cues on the output timeline for the words of ``transcript`` that survive ``plan``."""
    lang = (language or transcript.language or "").lower().replace("_", "-").split("-")[0]
    cjk = lang in CJK_LANGUAGES if lang else is_cjk_text(transcript.text)
    if not plan.keeps:
        return []
    tokens, cut_after = _tokens(transcript, plan, cjk)
    raw: list[tuple[float, float, str]] = []
    for group in _groups(tokens, cut_after, options):
        for piece, lines in _split_group(group, cut_after, cjk, options):
            lines = _finish_lines(lines, cjk, options)
            if lines:
                raw.append((piece[0].start, piece[-1].end, "\n".join(lines)))
    return _time(raw, plan.output_duration, options)


def _timestamp(t: float) -> str:
    ms = max(0, int(round(t * 1000)))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def to_srt(cues: Sequence[Cue]) -> str:
    """SubRip text: index, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, the lines, a blank line; empty for no cues."""
    blocks: list[str] = []
    for n, cue in enumerate(cues, 1):
        # A blank line ends an SRT block, so a cue's own empty lines must go.
        lines = [line for line in cue.text.splitlines() if line.strip()]
        blocks.append(f"{n}\n{_timestamp(cue.start)} --> {_timestamp(cue.end)}\n" + "\n".join(lines) + "\n\n")
    return "".join(blocks)


_TIME_LINE = re.compile(r"(\d+):(\d{1,2}):(\d{1,2})[,.](\d{1,3})\s*-->\s*(\d+):(\d{1,2}):(\d{1,2})[,.](\d{1,3})")


def _seconds(h: str, m: str, s: str, ms: str) -> int:
    # Whole milliseconds divided once: the same float make_cues produced for the same time.
    return ((int(h) * 60 + int(m)) * 60 + int(s)) * 1000 + int(ms.ljust(3, "0"))


def parse_srt(text: str) -> list[Cue]:
    """Cues from SubRip text (tolerates a BOM, CRLF, missing indices and ``.`` for the millisecond comma)."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    cues: list[Cue] = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = block.split("\n")
        for k, line in enumerate(lines[:2]):
            match = _TIME_LINE.search(line)
            if match:
                g = match.groups()
                cues.append(Cue(_seconds(*g[:4]) / 1000, _seconds(*g[4:]) / 1000, "\n".join(lines[k + 1:])))
                break
    return cues
