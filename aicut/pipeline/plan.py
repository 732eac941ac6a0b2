"""Stage 5, plan: from a transcript (and the audio's loudness) to an edit plan — what stays, what goes, and why.

A pure function: no I/O, no clock, no randomness; the same transcript, energy and options give the same plan.

How it decides, in order (each rule documented where it lives):

1. **Words** are normalised (NFKC so full-width becomes half-width, lower case, a few traditional characters folded
   to simplified, punctuation and spaces dropped). A token that is only punctuation is not a word, but it marks a
   boundary for its neighbours.
2. **Fillers** (:func:`_mark_fillers`): one token, or a few consecutive tokens, that spell a filler from the lists.
   Pure interjections (嗯 呃 um uh …) always go. Fillers that are also real words or particles (那个 这个 就是 啊 …,
   listed in ``standalone_fillers``) go only when they *stand alone*: a boundary on both sides, where a boundary is a
   segment edge, punctuation, a pause of ``hesitation_s`` or more, or another filler. So "那个，我们" loses 那个 but
   "那个问题" and "就是这样" keep theirs.
3. **Stutters** (:func:`_mark_stutters`): a unit of one to three words said again at once ("the the", "我我们",
   "is, is"); the earlier occurrence goes. Chinese reduplication is a real word (看看 谢谢 常常 人人 今天天气), so a
   repeated Chinese unit goes only when there is a hesitation between the two, or the unit holds a character that
   never reduplicates (pronouns and function words, ``stutter_chars_zh``: 我我 这这 是是 就就). English repeats go
   unless the word is one that legitimately doubles ("that that", "very very", ``repeats_ok_en``) with no hesitation.
   An immediate repeat of four or more units (word for word, or restarted and carried on) is a restarted phrase and
   goes as a RETAKE.
4. **Retakes** (:func:`_mark_retakes`): the transcript is cut into phrases (sentence punctuation, segment edges, and
   pauses longer than ``max_pause_s``). An earlier phrase that the following speech repeats — the whole phrase, or a
   start the speaker abandoned and began again — within ``retake_window_s`` goes; the last take stays. Short phrases
   must repeat word for word, because parallel sentences ("我们要做好。我们要做对。") are common and are not retakes.
5. **Timeline** (:func:`_region_cut`): every kept word keeps ``pad_s`` of air on each side (``lead_trail_pad_s`` at
   the two ends of the video), but at most ``pad_removed_s`` of a word being removed, so a filler right against a kept
   word does not survive as a fragment. Silence between kept words longer than ``max_pause_s`` is shortened to
   ``natural_gap_s``; where words or noise are removed between two kept words the join also keeps at most
   ``natural_gap_s`` of the silence that was there. Silence before the first and after the last kept word goes.
   With an energy envelope, the timeline then follows the sound (next point).
6. **Sound** (:func:`_explain_sound`, :func:`_snap_edges`; with an energy envelope and ``clean_cuts``): the envelope
   is split into *islands* of sound by any quiet (relative to the recording's noise floor) of 20 ms or more. Each
   word owns the island it overlaps most, plus overlapping islands joined to it by less than ``hesitation_s`` of
   quiet. Whisper's timestamps drift (a filler written at the start of the next sentence, a last word dropped and
   its sound left unowned), so the plan decides on islands, not timestamps:

   - An island a kept word owns is kept whole, and no cut edge ever lies inside it: a filler run into the next word
     with no quiet between is kept rather than cut through. A kept word that runs ``hesitation_s`` or more past its
     own sound is clipped to it (it was stretched over a pause or a neighbour's sound).
   - An island only removed words own goes whole; the cut grows into the quiet before and after it.
   - A filler or stutter whose timestamp lies in someone else's sound (or in silence) is *re-anchored* to the
     nearest island no word owns between its kept neighbours, within 1 s.
   - Other wordless sound within ``hesitation_s`` of removed sound goes with it (its tail or onset).
   - Wordless sound bounded by ``noise_quiet_s`` of quiet on both sides is not part of any phrase: NOISE between
     words when ``min_noise_s`` or longer (a cough), otherwise part of the pause or leading/trailing silence.
   - Any other wordless sound louder than ``noise_db`` stays, as if it were a word: it is as likely a word the
     recogniser dropped as a noise, and "no intended word lost" comes first.

   Collapsed stutters ("I I think" written as one "I") are not guessed from durations: on the fixtures the extra
   syllable's sound is owned by the next word, and word durations vary too much with Whisper's timing to tell a
   repeated syllable from a slow one.
7. **Clean-up**: a cut shorter than ``min_cut_s`` is not worth a jump and is undone; a kept stretch shorter than
   ``min_keep_s`` (flicker) grows into the silence beside it (or noise, when there is no silence), or, when there is
   neither, takes back the shorter neighbouring removed word whole (a whole filler rather than a fragment of one).
   Nothing is ever dropped for being short, because every kept stretch holds a word someone meant to say.
8. **The cap**: a plan that removes more than ``max_removed_ratio`` of the video, or every word, is suspicious (a
   recogniser that hallucinated repeats, or missed speech). With an energy envelope, silence that the envelope proves
   quiet does not count towards the cap — cutting dead air is never suspicious, cutting sound may be. A suspicious
   plan is **flagged** and not applied; instead the member gets the *silence-only* plan (leading/trailing silence and
   long pauses cut, no word removed) when that stays under the cap, and otherwise the whole video, uncut.
   ``flag_reason`` says what the full plan would have removed and which fallback was used.

A transcript with no words gives a flagged plan that keeps the whole video ("no speech recognised") rather than an
error: deciding whether that is fatal belongs to the caller, and the member still gets a usable video.
"""

from __future__ import annotations

import bisect
import difflib
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from aicut.pipeline.edl import Cut, EditPlan, Keep, Reason
from aicut.pipeline.transcript import Energy, Transcript, Word
from aicut.pipeline.wordtimes import quiet_threshold

__all__ = [
    "PlanOptions",
    "make_plan",
    "normalise_language",
    "normalise_text",
    "plan_summary",
    "word_reasons",
    "words_kept",
]

_EPS = 1e-9
_MAX_FILLER_TOKENS = 6       # a filler split by character: "怎" "么" "说" "呢"
_MAX_REPEAT_TOKENS = 8       # the longest unit a repeat scan compares
_SHORT_REPEAT_UNITS = 3      # a repeat of at most this many units is a STUTTER, a longer one a restart (RETAKE)
_MIN_WORD_S = 0.02           # Whisper's timestamp step: no kept word is shorter than this on the timeline
_NOISE_BRIDGE_S = 0.1        # a cough dips below the threshold between bursts; shorter dips do not split a stretch
_SPLIT_S = 0.02              # quiet this long splits two islands of sound: a clean place to cut
_REANCHOR_S = 1.0            # a filler Whisper timed inside a kept word is a wordless island at most this far away
_SENTENCE_END = ".!?。"      # after NFKC: ！ → !, ？ → ?, … → ...
_CLOSERS = "\"'”’」』)]》〉"   # closing quotes and brackets may follow the sentence's last mark

# Whisper often writes Mandarin in traditional characters. Fold the ones that occur in fillers, stutter characters
# and very common words, so the lists work either way; this is not a general conversion, only consistent matching.
_FOLD = str.maketrans("個說後這額們麼會還沒與給過對為來裡", "个说后这额们么会还没与给过对为来里")

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff"
_CJK_RE = re.compile(f"[{_CJK}]")
_UNITS_RE = re.compile(f"[{_CJK}]|[^{_CJK}]+")

_LANGUAGE_NAMES = {
    "chinese": "zh", "mandarin": "zh", "cantonese": "zh", "yue": "zh", "cmn": "zh", "zho": "zh", "chi": "zh",
    "english": "en", "eng": "en",
}


@dataclass(frozen=True, slots=True)
class PlanOptions:
    """Everything the planner may be told. Defaults are for a Mandarin or English talking head (口播)."""

    # Pauses. A silence between kept words longer than max_pause_s is a pause: the middle goes and natural_gap_s
    # stays, split evenly, so the speech keeps its breathing rhythm (a join with no gap at all sounds rushed).
    # 0.6 s is where a listener starts to hear a pause as dead air; 0.3 s is an ordinary sentence break.
    max_pause_s: float = 0.6
    natural_gap_s: float = 0.3

    # Padding. Word timestamps from Whisper are good to about ±0.1 s, so each kept word keeps pad_s of air on either
    # side and its onset and tail are not clipped (auto-editor's default margin is 0.2 s over both sides).
    pad_s: float = 0.08
    # ...but next to a word that is being removed, padding reaches only this far into it: 80 ms of a 150 ms "嗯" would
    # leave an audible fragment, and the boundary between two touching words is as likely early as late.
    pad_removed_s: float = 0.02
    # The first and last words keep a little more, so the video does not start or end abruptly on a syllable.
    lead_trail_pad_s: float = 0.15

    # Minimum lengths. A kept stretch shorter than min_keep_s flickers on screen (a jump cut, a syllable, a jump cut);
    # it grows into neighbouring silence (or noise) or takes back a neighbouring removed word. A cut shorter than
    # min_cut_s saves nothing audible but still costs a visible jump, so it is undone.
    min_keep_s: float = 0.3
    min_cut_s: float = 0.05

    # A gap between two words this long or longer is a hesitation: it separates a standalone filler from its
    # neighbours and turns a repeated word into a stutter. Fluent speech has gaps well under 0.2 s.
    hesitation_s: float = 0.2

    # Fillers, matched after normalisation against whole tokens or runs of consecutive tokens. Letters may be
    # drawn out ("ummm", "嗯嗯" match "um", "嗯"). Both lists apply to Chinese and English transcripts (speakers
    # switch languages, and the lists never collide: one is Han characters, the other Latin letters); other languages
    # get only the Chinese list, because "um", "er" and "hm" are real words in Portuguese and German.
    fillers_zh: tuple[str, ...] = (
        "嗯", "呃", "唔", "呣",                           # hesitation sounds: never words
        "额",                                             # also in 金额 额外 when split by character: standalone only
        "啊", "哎", "唉",                                  # also sentence particles (好啊, 是啊): standalone only
        "那个", "这个", "就是", "就是说", "然后呢", "怎么说呢",  # real words too (那个问题): standalone only
    )
    fillers_en: tuple[str, ...] = (
        "um", "umm", "uh", "uhh", "uhm", "er", "erm", "hmm", "hm",
        "ah", "eh", "err", "mm", "mmm",                   # "Ah, I see", "5 mm", "to err": removed only when standalone
    )
    # The fillers above that are also real words or particles: removed only when they stand alone (see the module
    # docstring). Multi-word fillers such as "you know" or "i mean" may be added to the lists and here; they are not
    # defaults because removing them when they carry meaning loses a word the speaker meant.
    standalone_fillers: tuple[str, ...] = (
        "额", "啊", "哎", "唉", "那个", "这个", "就是", "就是说", "然后呢", "怎么说呢",
        "ah", "eh", "err", "mm", "mmm",
    )

    # Stutters. Chinese characters that do not reduplicate as words: repeating one is a stutter even with no pause
    # (我我们, 这这个, 是是). Deliberately absent: 的 地 (的的确确, 地地道道), 过 (过过瘾), 从 (从从容容), 可 (可可),
    # 哪 (哪哪都是) — and every content character, since 看看 谢谢 人人 天天 are words.
    stutter_chars_zh: str = "我你他她它咱这那在把被向给跟和与就也都还又再才要会能因所但而是有没不"
    # English words that legitimately double ("I know that that works", "very very good"): with no hesitation
    # between them the repeat stays.
    repeats_ok_en: tuple[str, ...] = ("that", "had", "very", "really", "so", "no", "bye", "ha", "yeah", "yes")

    # Which kinds of removal are on. Pauses and leading/trailing silence are always handled (set max_pause_s to
    # math.inf to keep every pause).
    remove_fillers: bool = True
    remove_stutters: bool = True
    remove_retakes: bool = True
    remove_noise: bool = True

    # Retakes. The earlier phrase is a retake when the speech that follows it matches it with a
    # difflib.SequenceMatcher ratio of at least retake_similarity (units: one per Han character, one per Latin
    # word). Phrases shorter than exact_retake_units must match exactly, and phrases shorter than min_retake_units
    # never count ("好。好的" is not a retake).
    retake_similarity: float = 0.8
    retake_window_s: float = 30.0        # the later take must start within this many seconds of the earlier's end
    min_retake_units: int = 3
    exact_retake_units: int = 6

    # Noise: a stretch louder than noise_db (dBFS RMS; speech sits around -30..-15, room tone near -60) lasting at
    # least min_noise_s with no word in it — a cough, a chair, a mumble the recogniser skipped.
    noise_db: float = -35.0
    min_noise_s: float = 0.4
    # ...and only when it stands apart: at least noise_quiet_s of quiet on both sides. Sound closer to speech than
    # that may be a word the recogniser dropped, and stays. Measured on the fixtures: quiet inside a sentence lasts
    # at most 0.20 s (espeak-ng, English) and 0.33 s (zh-tts, at a comma).
    noise_quiet_s: float = 0.4

    # Clean cuts (with an energy envelope): a cut never ends inside continuous sound. See "Sound" in the module
    # docstring. Off, the plan trusts the word timestamps alone.
    clean_cuts: bool = True

    # A plan removing more than this share of the video (not counting silence an energy envelope proves quiet) is
    # flagged and not applied; the member gets the silence-only plan or the whole video (see the module docstring).
    max_removed_ratio: float = 0.5

    def __post_init__(self) -> None:
        # Lists (from YAML or JSON) become tuples, so the options stay hashable and immutable.
        for name in ("fillers_zh", "fillers_en", "standalone_fillers", "repeats_ok_en"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"PlanOptions.{name} must be a sequence of strings")
            object.__setattr__(self, name, tuple(value))
        for name in ("max_pause_s", "natural_gap_s", "pad_s", "pad_removed_s", "lead_trail_pad_s", "min_keep_s",
                     "min_cut_s", "hesitation_s", "retake_window_s", "min_noise_s", "noise_quiet_s"):
            value = getattr(self, name)
            if not value >= 0:  # also rejects NaN
                raise ValueError(f"PlanOptions.{name} must be >= 0, not {value!r}")
        if self.natural_gap_s > self.max_pause_s:
            raise ValueError("PlanOptions.natural_gap_s must not exceed max_pause_s")
        if not 0 < self.retake_similarity <= 1:
            raise ValueError("PlanOptions.retake_similarity must be in (0, 1]")
        if not 0 < self.max_removed_ratio <= 1:
            raise ValueError("PlanOptions.max_removed_ratio must be in (0, 1]")
        if self.min_retake_units < 1 or self.exact_retake_units < 0:
            raise ValueError("PlanOptions.min_retake_units must be >= 1 and exact_retake_units >= 0")


# --------------------------------------------------------------------------------------------------- normalising


def normalise_text(text: str) -> str:
    """The comparable form of a word: NFKC (full-width → half-width), lower case, folded, letters and digits only."""
    folded = unicodedata.normalize("NFKC", text).lower().translate(_FOLD)
    return "".join(c for c in folded if unicodedata.category(c)[0] in "LNM")


def normalise_language(language: str | None) -> str:
    """A language code or name ("zh-CN", "Chinese", "en_US", "yue") as a primary code ("zh", "en"); "" if unknown."""
    if not language:
        return ""
    code = language.strip().lower().replace("_", "-")
    primary = code.split("-")[0]
    return _LANGUAGE_NAMES.get(code, _LANGUAGE_NAMES.get(primary, primary))


def _units(norm: str) -> list[str]:
    """Comparison units of a normalised token: each Han/kana character alone, each run of anything else whole."""
    return _UNITS_RE.findall(norm)


def _is_punct(c: str) -> bool:
    # Apostrophes belong to words ("'cause", "students'"), not between them.
    return unicodedata.category(c).startswith("P") and c not in "'’"


def _ends_sentence(raw: str) -> bool:
    s = unicodedata.normalize("NFKC", raw).strip().rstrip(_CLOSERS)
    return bool(s) and s[-1] in _SENTENCE_END


# --------------------------------------------------------------------------------------------------------- tokens


@dataclass(slots=True)
class _Tok:
    """A word as the planner sees it: clamped times, normalised text, its boundaries, and what was decided."""

    word: Word
    start: float
    end: float
    norm: str
    seg: int                  # index of its segment: a segment edge is a boundary
    punct_before: bool
    punct_after: bool
    sentence_end: bool
    truncated: bool           # an English fragment broken off with a dash ("st-"): a stutter if the next word starts so
    index: int                # position in Transcript.words; -1 for a segment that came without words
    reason: Reason | None = None

    @property
    def cjk(self) -> bool:
        return _CJK_RE.search(self.norm) is not None


def _source_duration(transcript: Transcript) -> float:
    if transcript.duration > 0:
        return float(transcript.duration)
    # No audio duration recorded: the last word's end is the best we know.
    return max((max(w.start, w.end) for w in transcript.words), default=0.0)


def _tokens(transcript: Transcript, duration: float) -> list[_Tok]:
    """The transcript's words as tokens, in time order, clamped to the audio; punctuation-only words become flags."""
    out: list[_Tok] = []
    index = 0

    def clamp(t: float) -> float:
        return min(max(float(t), 0.0), duration)

    for si, seg in enumerate(transcript.segments):
        # A segment recognised without word timestamps still counts, as one word spanning the segment.
        words = seg.words if seg.words else (Word(seg.start, seg.end, seg.text),)
        own_words = bool(seg.words)
        pending_punct = False
        for w in words:
            idx = index if own_words else -1
            if own_words:
                index += 1
            norm = normalise_text(w.text)
            raw = unicodedata.normalize("NFKC", w.text).strip()
            if not norm:
                # Punctuation on its own: a boundary for the words either side, not a word.
                if out and out[-1].seg == si:
                    out[-1].punct_after = True
                    out[-1].sentence_end = out[-1].sentence_end or _ends_sentence(w.text)
                pending_punct = True
                continue
            start, end = sorted((clamp(w.start), clamp(w.end)))
            out.append(_Tok(word=w, start=start, end=end, norm=norm, seg=si,
                            punct_before=pending_punct or _is_punct(raw[0]),
                            punct_after=_is_punct(raw[-1]), sentence_end=_ends_sentence(raw),
                            truncated=raw.endswith(("-", "–", "—")), index=idx))
            pending_punct = False
    out.sort(key=lambda t: t.start)  # stable: equal starts keep the recogniser's order
    return out


def _boundary(a: _Tok, b: _Tok, hesitation_s: float) -> bool:
    """Whether the speaker broke off between adjacent tokens a and b."""
    return a.seg != b.seg or a.punct_after or b.punct_before or b.start - a.end >= hesitation_s - _EPS


# -------------------------------------------------------------------------------------------------------- fillers


def _runs(text: str) -> tuple[tuple[str, int], ...]:
    out: list[tuple[str, int]] = []
    for c in text:
        if out and out[-1][0] == c:
            out[-1] = (c, out[-1][1] + 1)
        else:
            out.append((c, 1))
    return tuple(out)


def _entry_ends(entry: tuple[tuple[str, int], ...], text: str, i: int) -> range:
    """Where a match of ``entry`` (letters drawn out allowed: "um" matches "ummm") starting at ``i`` may end."""
    p = i
    for k, (c, n) in enumerate(entry):
        m = 0
        while p + m < len(text) and text[p + m] == c:
            m += 1
        if m < n:
            return range(0)
        if k == len(entry) - 1:
            return range(p + n, p + m + 1)
        p += m  # the next run's letter differs, so this run must take every repeat of its letter
    return range(0)


def _covered(text: str, entries: Sequence[tuple[tuple[str, int], ...]]) -> bool:
    """Whether ``text`` is one or more filler entries back to back ("嗯嗯", "嗯那个"). Dynamic programming, not a
    nested regular expression, so a long non-matching token cannot make matching exponential."""
    if not text or not entries:
        return False
    reach = [False] * (len(text) + 1)
    reach[0] = True
    for i in range(len(text)):
        if reach[i]:
            for entry in entries:
                for j in _entry_ends(entry, text, i):
                    reach[j] = True
    return reach[-1]


@dataclass(frozen=True, slots=True)
class _Fillers:
    always: tuple[tuple[tuple[str, int], ...], ...]
    every: tuple[tuple[tuple[str, int], ...], ...]
    letters: frozenset[str]   # every letter of every entry: a text with any other letter cannot be a filler

    def kind(self, text: str) -> str | None:
        if not self.letters.issuperset(text):
            return None
        if _covered(text, self.always):
            return "always"
        if _covered(text, self.every):
            return "standalone"
        return None


@lru_cache(maxsize=16)
def _fillers(entries: tuple[str, ...], standalone: tuple[str, ...]) -> _Fillers:
    alone = {normalise_text(e) for e in standalone}
    norms = sorted({n for n in (normalise_text(e) for e in entries) if n})
    return _Fillers(always=tuple(_runs(n) for n in norms if n not in alone), every=tuple(_runs(n) for n in norms),
                    letters=frozenset("".join(norms)))


def _filler_entries(language: str, o: PlanOptions) -> tuple[str, ...]:
    if language in ("zh", "en", ""):
        return o.fillers_zh + o.fillers_en
    return o.fillers_zh


def _run_text(toks: Sequence[_Tok]) -> str:
    return "".join(t.norm for t in toks)


def _mark_fillers(toks: list[_Tok], fillers: _Fillers, o: PlanOptions) -> None:
    """Mark fillers: interjections wherever they are, ambiguous fillers only where they stand alone."""
    n = len(toks)
    kinds: dict[str, str | None] = {}   # the same few texts recur throughout a transcript

    def kind(run: Sequence[_Tok]) -> str | None:
        text = _run_text(run)
        if text not in kinds:
            kinds[text] = fillers.kind(text)
        return kinds[text]

    def runs_at(i: int) -> list[int]:
        # Longest first, so "那" "个" is one filler rather than nothing; a filler never spans a segment edge.
        lengths = []
        for length in range(min(_MAX_FILLER_TOKENS, n - i), 0, -1):
            run = toks[i:i + length]
            if run[-1].seg == run[0].seg and all(t.reason is None for t in run):
                lengths.append(length)
        return lengths

    i = 0
    while i < n:  # pass 1: interjections
        for length in runs_at(i):
            if kind(toks[i:i + length]) == "always":
                for t in toks[i:i + length]:
                    t.reason = Reason.FILLER
                i += length
                break
        else:
            i += 1

    def side_is_open(a: int, b: int) -> bool:
        """Whether the tokens a and b (adjacent; either may be out of range) are separated by a boundary."""
        if a < 0 or b >= n:
            return True
        if toks[a].reason is Reason.FILLER or toks[b].reason is Reason.FILLER:
            return True
        return _boundary(toks[a], toks[b], o.hesitation_s)

    changed = True
    while changed:  # pass 2: standalone fillers; a filler next to another filler stands alone, so repeat to a fixpoint
        changed = False
        i = 0
        while i < n:
            for length in runs_at(i):
                run = toks[i:i + length]
                if kind(run) is not None and side_is_open(i - 1, i) \
                        and side_is_open(i + length - 1, i + length):
                    for t in run:
                        t.reason = Reason.FILLER
                    changed = True
                    i += length
                    break
            else:
                i += 1


# ------------------------------------------------------------------------------------------------------- stutters


def _unit_count(toks: Sequence[_Tok]) -> int:
    return sum(len(_units(t.norm)) for t in toks)


def _repeat_at(toks: list[_Tok], active: list[int], p: int, o: PlanOptions, stutter_chars: frozenset[str],
               repeats_ok: frozenset[str]) -> tuple[int, Reason] | None:
    """Whether the unit starting at active position ``p`` is said again at once; (its length, reason) if so."""
    for a in range(1, min(_MAX_REPEAT_TOKENS, len(active) - p - 1) + 1):
        first = [toks[k] for k in active[p:p + a]]
        unit = _run_text(first)
        # The shortest run of following tokens that is at least as long as the unit (the recogniser may split the
        # repeat differently: "我们" then "我" "们").
        later, following = "", []
        for b in range(1, min(_MAX_REPEAT_TOKENS, len(active) - p - a) + 1):
            following.append(toks[active[p + a + b - 1]].norm)
            later += following[-1]
            if len(later) >= len(unit):
                break
        if len(later) < len(unit) or not later.startswith(unit):
            continue
        cjk = any(t.cjk for t in first)
        # Chinese has no spaces, so the recogniser's split is arbitrary; English words are words ("a part apart").
        exact = later == unit if cjk else following == [t.norm for t in first]
        last, nxt = active[p + a - 1], active[p + a]
        # A removed filler between them ("我 嗯 我们") is a hesitation too.
        hesitated = nxt - last > 1 or _boundary(toks[last], toks[nxt], o.hesitation_s)
        units = _unit_count(first)
        if units > _SHORT_REPEAT_UNITS:
            # A phrase restarted word for word (or restarted and continued): a retake, under the retake rules.
            if o.remove_retakes and toks[nxt].start - toks[last].end <= o.retake_window_s:
                return (a, Reason.RETAKE)
            continue
        if not o.remove_stutters:
            continue
        if cjk:
            if hesitated or not stutter_chars.isdisjoint(unit):
                return (a, Reason.STUTTER)
            continue  # reduplication: 看看, 谢谢, 今天天气
        if not exact:
            # "to town", "in inside": an English word that begins the next is not a stutter unless broken off: "st-".
            if first[-1].truncated:
                return (a, Reason.STUTTER)
            continue
        if hesitated or units > 1 or unit not in repeats_ok:
            return (a, Reason.STUTTER)
    return None


def _mark_stutters(toks: list[_Tok], o: PlanOptions) -> None:
    """Mark the earlier occurrence of each immediately repeated unit; chains ("I I I think") lose all but the last."""
    active = [k for k, t in enumerate(toks) if t.reason is None]
    stutter_chars = frozenset(normalise_text(o.stutter_chars_zh))
    repeats_ok = frozenset(normalise_text(w) for w in o.repeats_ok_en)
    p = 0
    while p < len(active) - 1:
        hit = _repeat_at(toks, active, p, o, stutter_chars, repeats_ok)
        if hit is None:
            p += 1
            continue
        length, reason = hit
        for k in active[p:p + length]:
            toks[k].reason = reason
        p += length


# -------------------------------------------------------------------------------------------------------- retakes


@dataclass(slots=True)
class _Phrase:
    members: list[int]        # token indices
    start: float
    end: float


def _phrases(toks: list[_Tok], o: PlanOptions) -> list[_Phrase]:
    """Sentences, roughly: split at sentence punctuation, segment edges and real pauses. Not at commas: clauses
    that share a beginning ("我们要做A，我们要做B") are parallel far more often than they are retakes."""
    out: list[_Phrase] = []
    current: list[int] = []
    for k, t in enumerate(toks):
        current.append(k)
        nxt = toks[k + 1] if k + 1 < len(toks) else None
        if nxt is None or t.sentence_end or nxt.seg != t.seg or nxt.start - t.end > o.max_pause_s:
            out.append(_Phrase(current, toks[current[0]].start, max(toks[m].end for m in current)))
            current = []
    return out


def _phrase_units(toks: list[_Tok], phrase: _Phrase) -> list[str]:
    return [u for k in phrase.members if toks[k].reason is None for u in _units(toks[k].norm)]


def _longest_match(n: int, o: PlanOptions) -> int:
    """The most units a later take of an n-unit phrase can have and still reach retake_similarity."""
    sim = o.retake_similarity
    return max(n, math.floor(n * (2 - sim) / sim + _EPS))


def _is_retake(earlier: list[str], later: list[str], o: PlanOptions) -> bool:
    """Whether the speech that follows (``later``, from the next take on) begins by saying ``earlier`` again."""
    n = len(earlier)
    if n < o.min_retake_units:
        return False
    if n < o.exact_retake_units:
        return later[:n] == earlier
    sim = o.retake_similarity
    # Only lengths that could reach the ratio: 2·matches/(n+m) >= sim with matches <= min(n, m).
    lo = max(1, math.ceil(n * sim / (2 - sim) - _EPS))
    hi = min(len(later), _longest_match(n, o))
    matcher = difflib.SequenceMatcher(None, autojunk=False)
    matcher.set_seq2(earlier)
    for m in range(lo, hi + 1):
        matcher.set_seq1(later[:m])
        # quick_ratio is an upper bound of ratio and much cheaper: most candidates fail it.
        if matcher.quick_ratio() >= sim - _EPS and matcher.ratio() >= sim - _EPS:
            return True
    return False


def _mark_retakes(toks: list[_Tok], o: PlanOptions) -> None:
    """Cut each phrase that the following speech repeats (in full, or as a restarted beginning); keep the last take."""
    phrases = _phrases(toks, o)
    units = [_phrase_units(toks, ph) for ph in phrases]
    for i, earlier in enumerate(phrases):
        if not units[i]:
            continue
        longest = _longest_match(len(units[i]), o)
        # The later take may itself be split by a pause: compare with the speech from the next phrase on.
        for j in range(i + 1, len(phrases)):
            if phrases[j].start - earlier.end > o.retake_window_s:
                break
            if not units[j]:
                continue
            later: list[str] = []
            for k in range(j, len(phrases)):
                later.extend(units[k])
                if len(later) > longest:
                    break
            if _is_retake(units[i], later, o):
                for k in earlier.members:
                    if toks[k].reason is None:
                        toks[k].reason = Reason.RETAKE
                break


def _classify(toks: list[_Tok], language: str, o: PlanOptions) -> None:
    if o.remove_fillers:
        _mark_fillers(toks, _fillers(_filler_entries(language, o), o.standalone_fillers), o)
    if o.remove_stutters or o.remove_retakes:
        _mark_stutters(toks, o)  # short repeats are stutters, long immediate repeats restarted phrases (retakes)
    if o.remove_retakes:
        _mark_retakes(toks, o)


# ---------------------------------------------------------------------------------------------------------- noise


def _loud_runs(energy: Energy, noise_db: float, duration: float) -> list[tuple[float, float]]:
    """Stretches of the envelope above ``noise_db``, with dips shorter than _NOISE_BRIDGE_S bridged."""
    f = energy.frame_s
    if not f > 0:
        return []
    runs: list[tuple[float, float]] = []
    start: int | None = None
    for i, db in enumerate((*energy.db, -math.inf)):
        if db > noise_db:
            if start is None:
                start = i
        elif start is not None:
            a, b = start * f, min(i * f, duration)
            if runs and a - runs[-1][1] <= _NOISE_BRIDGE_S + _EPS:
                runs[-1] = (runs[-1][0], b)
            elif a < duration:
                runs.append((a, b))
            start = None
    return runs


@dataclass(frozen=True, slots=True)
class _Island:
    """A stretch of sound: envelope frames above the recording's quiet level, split by any quiet of _SPLIT_S."""

    start: float
    end: float
    peak: float               # dBFS


def _islands(energy: Energy, duration: float) -> list[_Island]:
    """The envelope's sound islands. "Quiet" is relative to this recording's noise floor (the same level word edges
    are snapped to, :func:`aicut.pipeline.wordtimes.quiet_threshold`), so a cut placed between islands is clean."""
    f = energy.frame_s
    if not f > 0 or not energy.db:
        return []
    quiet = quiet_threshold(energy)
    out: list[_Island] = []
    start: int | None = None
    peak = -math.inf
    for i, db in enumerate((*energy.db, -math.inf)):
        if db >= quiet:
            if start is None:
                start, peak = i, db
            peak = max(peak, db)
            continue
        if start is None:
            continue
        a, b = start * f, min(i * f, duration)
        start = None
        if a >= duration:
            break
        if out and a - out[-1].end < _SPLIT_S - _EPS:
            out[-1] = _Island(out[-1].start, b, max(out[-1].peak, peak))
        else:
            out.append(_Island(a, b, peak))
    return out


@dataclass(slots=True)
class _Sound:
    """What the envelope says about the decisions: where each kept word's sound really is, which islands must stay
    whole (they hold a kept word), and the sound removed with no word of its own (a filler Whisper timed elsewhere,
    noise)."""

    islands: list[_Island]
    protected: list[bool]                  # per island: holds a kept word (or unexplained sound): never cut into
    spans: list[tuple[float, float]]       # per token: its extent for the timeline (clipped to its own sound)
    extra_kept: list[tuple[float, float]]  # unexplained sound kept as if it were a word
    items: list[_Item]                     # islands removed: with their removed words, re-anchored fillers, noise


def _owned(start: float, end: float, islands: list[_Island], ends: list[float], o: PlanOptions) -> list[int]:
    """The islands a word of [start, end] is made of: the one it overlaps most, and the overlapping ones joined to it
    by quiet shorter than hesitation_s. An island it only grazes across a longer quiet is someone else's sound (a
    word never holds hesitation_s of silence; Whisper stretches a word over the pause beside it)."""
    first = bisect.bisect_left(ends, start - _EPS)
    over: list[tuple[int, float]] = []
    for k in range(first, len(islands)):
        isl = islands[k]
        if isl.start > end + _EPS:
            break
        if end - start <= _EPS:
            if isl.start - _EPS <= start <= isl.end + _EPS:
                over.append((k, 0.0))
        elif min(end, isl.end) - max(start, isl.start) > _EPS:
            over.append((k, min(end, isl.end) - max(start, isl.start)))
    if not over:
        return []
    m = max(range(len(over)), key=lambda j: over[j][1])
    lo = hi = m
    while lo > 0 and islands[over[lo][0]].start - islands[over[lo - 1][0]].end < o.hesitation_s - _EPS:
        lo -= 1
    while hi + 1 < len(over) and islands[over[hi + 1][0]].start - islands[over[hi][0]].end < o.hesitation_s - _EPS:
        hi += 1
    return [k for k, _ in over[lo:hi + 1]]


_SHORT_REMOVALS = (Reason.FILLER, Reason.STUTTER)


def _sound_of(k: int, owners: list[list[int]], toks: list[_Tok]) -> bool:
    """Whether island ``k`` is the sound of its fillers and stutters: no other word (kept, or a retake) owns it."""
    return all(toks[ti].reason in _SHORT_REMOVALS for ti in owners[k])


def _explain_sound(toks: list[_Tok], islands: list[_Island], duration: float, o: PlanOptions, *,
                   silence_only: bool = False) -> _Sound:
    """Match the words' decisions to the sound (see the module docstring, "Sound")."""
    ends = [isl.end for isl in islands]
    owners: list[list[int]] = [[] for _ in islands]
    spans: list[tuple[float, float]] = []
    own: list[list[int]] = []
    for ti, t in enumerate(toks):
        ks = _owned(t.start, t.end, islands, ends, o)
        own.append(ks)
        for k in ks:
            owners[k].append(ti)
        a, b = t.start, t.end
        if ks and b - a > _EPS:
            # A word that runs hesitation_s or more past its own sound (into silence or someone else's island)
            # ends where its sound does; shorter overhangs are timestamp jitter and stay.
            if islands[ks[0]].start - a >= o.hesitation_s - _EPS:
                a = islands[ks[0]].start
            if b - islands[ks[-1]].end >= o.hesitation_s - _EPS:
                b = islands[ks[-1]].end
        spans.append((a, b) if b > a else (t.start, t.end))

    def kept(ti: int) -> bool:
        return silence_only or toks[ti].reason is None

    protected = [any(kept(ti) for ti in owners[k]) for k in range(len(islands))]
    # A kept word Whisper timed in silence: its sound is the nearest island within noise_quiet_s.
    for ti, t in enumerate(toks):
        if own[ti] or not kept(ti) or not islands:
            continue
        j = bisect.bisect_left(ends, t.start)
        near = [k for k in (j - 1, j) if 0 <= k < len(islands)]
        dist = {k: max(0.0, islands[k].start - t.end, t.start - islands[k].end) for k in near}
        k = min(near, key=lambda k: (dist[k], k))
        if dist[k] <= o.noise_quiet_s + _EPS:
            protected[k] = True
            owners[k].append(ti)
    reason: list[Reason | None] = [None] * len(islands)
    items: list[_Item] = []
    for k, isl in enumerate(islands):
        if owners[k] and not protected[k]:
            reason[k] = toks[owners[k][0]].reason
            items.append(_Item(isl.start, isl.end, reason[k], "word", ()))  # type: ignore[arg-type]
    wordless = [k for k in range(len(islands)) if not owners[k]]
    extra: list[tuple[float, float]] = []
    if not wordless:
        return _Sound(islands, protected, spans, extra, items)

    # Re-anchoring: a filler or stutter Whisper timed inside a kept word's sound (or in silence) is the wordless
    # island between its kept neighbours, nearest first. Its own span stays a removed item; the clean-edge rule
    # keeps the kept sound whole.
    claimed: set[int] = set()
    if not silence_only:
        kept_idx = [ti for ti in range(len(toks)) if kept(ti)]
        for ti, t in enumerate(toks):
            if t.reason not in _SHORT_REMOVALS or any(_sound_of(k, owners, toks) for k in own[ti]):
                continue
            j = bisect.bisect_left(kept_idx, ti)
            lo = spans[kept_idx[j - 1]][1] if j > 0 else 0.0
            hi = spans[kept_idx[j]][0] if j < len(kept_idx) else duration
            best: tuple[float, int] | None = None
            for k in wordless:
                isl = islands[k]
                if k in claimed or isl.start < lo - _EPS or isl.end > hi + _EPS:
                    continue
                dist = max(0.0, isl.start - t.end, t.start - isl.end)
                if dist <= _REANCHOR_S + _EPS and (best is None or dist < best[0]):
                    best = (dist, k)
            if best is not None:
                claimed.add(best[1])
                reason[best[1]] = t.reason
                items.append(_Item(islands[best[1]].start, islands[best[1]].end, t.reason, "word", ()))  # type: ignore[arg-type]

    free = set(wordless)
    kept_spans = [spans[ti] for ti in range(len(toks)) if kept(ti)]
    first_kept = min((a for a, _ in kept_spans), default=math.inf)
    last_kept = max((b for _, b in kept_spans), default=-math.inf)
    for k in wordless:
        if k in claimed:
            continue
        isl = islands[k]
        before = isl.start - islands[k - 1].end if k > 0 else math.inf
        after = islands[k + 1].start - isl.end if k + 1 < len(islands) else math.inf
        # The tail or onset of removed speech: closer to a removed island than to anything kept, and within a
        # hesitation of it.
        near = [(before, k - 1), (after, k + 1)]
        near = [(g, n) for g, n in near if 0 <= n < len(islands)]
        if near and not silence_only:
            g, n = min(near)
            if g < o.hesitation_s - _EPS and not protected[n] and reason[n] is not None:
                items.append(_Item(isl.start, isl.end, reason[n], "word", ()))  # type: ignore[arg-type]
                continue
        if isl.peak <= o.noise_db:
            continue                      # breath, room tone: silence as far as the plan is concerned
        if _isolated(islands, k, free, o):
            # Alone in a pause: noise if long enough (before the first and after the last word, it is just part of
            # the leading or trailing silence).
            inner = first_kept < isl.start and isl.end < last_kept
            if inner and o.remove_noise and not silence_only \
                    and _noise_length(islands, k, free) >= o.min_noise_s - _EPS:
                items.append(_Item(isl.start, isl.end, Reason.NOISE, "noise", ()))
            continue                      # a click or cough alone in a pause goes with the pause
        # Sound close to speech with no word: a word the recogniser dropped, as likely as not. It stays.
        protected[k] = True
        extra.append((isl.start, isl.end))
    return _Sound(islands, protected, spans, extra, items)


def _cluster(islands: list[_Island], k: int, free: set[int]) -> tuple[int, int]:
    """The run of wordless islands (``free``) around ``k`` joined by quiet shorter than _NOISE_BRIDGE_S (a cough
    dips between bursts)."""
    lo = hi = k
    while lo - 1 in free and islands[lo].start - islands[lo - 1].end <= _NOISE_BRIDGE_S + _EPS:
        lo -= 1
    while hi + 1 in free and islands[hi + 1].start - islands[hi].end <= _NOISE_BRIDGE_S + _EPS:
        hi += 1
    return lo, hi


def _isolated(islands: list[_Island], k: int, free: set[int], o: PlanOptions) -> bool:
    """Whether island ``k`` (with the bursts bridged to it) is bounded by noise_quiet_s of quiet on both sides (the
    start and end of the recording count as quiet): not part of anyone's phrase."""
    lo, hi = _cluster(islands, k, free)
    before = islands[lo].start - (islands[lo - 1].end if lo > 0 else -math.inf)
    after = (islands[hi + 1].start if hi + 1 < len(islands) else math.inf) - islands[hi].end
    return before >= o.noise_quiet_s - _EPS and after >= o.noise_quiet_s - _EPS


def _noise_length(islands: list[_Island], k: int, free: set[int]) -> float:
    lo, hi = _cluster(islands, k, free)
    return islands[hi].end - islands[lo].start


# ------------------------------------------------------------------------------------------------------- timeline


@dataclass(slots=True)
class _Item:
    """Something removed between kept words: a word, or a noise stretch."""

    start: float
    end: float
    reason: Reason
    kind: str                 # "word" or "noise"
    texts: tuple[str, ...]    # the words' own text, for Cut.text


@dataclass(slots=True)
class _Piece:
    """One stretch of the output partition: kept, or cut for a reason."""

    start: float
    end: float
    keep: bool
    reason: Reason | None = None
    kind: str = ""            # for cuts: "silence", "word" or "noise"
    texts: tuple[str, ...] = ()

    @property
    def duration(self) -> float:
        return self.end - self.start


def _region_items(removed: list[_Item], starts: list[float], longest: float, lo: float, hi: float) -> list[_Item]:
    """Removed items inside [lo, hi], clipped to it, overlaps resolved (the earlier item keeps the overlap)."""
    out: list[_Item] = []
    first = bisect.bisect_left(starts, lo - longest - _EPS)
    last = bisect.bisect_right(starts, hi + _EPS)
    for it in removed[first:last]:
        a, b = max(it.start, lo), min(it.end, hi)
        if b < a or (b == a and not lo < a < hi):
            continue
        if out and a < out[-1].end:
            if b <= out[-1].end:
                if it.reason is out[-1].reason:
                    out[-1].texts += it.texts
                continue
            a = out[-1].end
        out.append(_Item(a, b, it.reason, it.kind, it.texts))
    return out


def _region_cut(kind: str, lo: float, hi: float, items: list[_Item], o: PlanOptions) -> tuple[float, float] | None:
    """The stretch of [lo, hi] to cut. ``kind`` is "lead" (lo is 0), "trail" (hi is the end) or "gap" (between
    two kept words at lo and hi)."""
    edge_pad = max(o.lead_trail_pad_s, o.pad_s)
    # How far the keep at each side may reach: over the silence up to the first/last removed item, and a little into it.
    left_allow = (items[0].start - lo + o.pad_removed_s) if items else hi - lo
    right_allow = (hi - items[-1].end + o.pad_removed_s) if items else hi - lo
    if kind == "lead":
        a, b = lo, hi - min(edge_pad, right_allow)
    elif kind == "trail":
        a, b = lo + min(edge_pad, left_allow), hi
    elif not items:
        gap = hi - lo
        if gap <= o.max_pause_s + _EPS:
            return None
        side = min(max(o.natural_gap_s / 2, o.pad_s), gap / 2)
        a, b = lo + side, hi - side
    else:
        # Removed words or noise between two kept words: keep the padding (as far as the silence allows), and up to
        # natural_gap_s of the silence that was there, taken from whichever side has it.
        x0, y0 = min(o.pad_s, left_allow), min(o.pad_s, right_allow)
        half = o.natural_gap_s / 2
        x, y = min(left_allow, max(x0, half)), min(right_allow, max(y0, half))
        x += max(0.0, min(o.natural_gap_s - x - y, left_allow - x))
        y += max(0.0, min(o.natural_gap_s - x - y, right_allow - y))
        a, b = lo + x, hi - y
    return (a, b) if b - a > _EPS else None


def _silence_reason(kind: str, first: bool, last: bool, before: Reason | None, after: Reason | None,
                    length: float, o: PlanOptions) -> Reason:
    if kind == "lead" and first:
        return Reason.LEADING
    if kind == "trail" and last:
        return Reason.TRAILING
    if (before is None and after is None) or length > o.max_pause_s + _EPS:
        return Reason.PAUSE
    # A short silence beside a removed word goes with it: "嗯" and the breath after it are one removal.
    return before if before is not None else after  # type: ignore[return-value]


def _label(kind: str, a: float, b: float, items: list[_Item], o: PlanOptions) -> list[_Piece]:
    """Split the cut [a, b] into pieces: each removed item with its own reason, silence as pause or with its item."""
    clipped = [(max(a, it.start), min(b, it.end), it) for it in items if min(b, it.end) > max(a, it.start)]
    out: list[_Piece] = []
    cursor = a
    prev: Reason | None = None
    for k, (s, e, it) in enumerate(clipped):
        if s > cursor:
            out.append(_Piece(cursor, s, False, _silence_reason(kind, k == 0, False, prev, it.reason, s - cursor, o),
                              "silence"))
        out.append(_Piece(s, e, False, it.reason, it.kind, it.texts))
        cursor, prev = e, it.reason
    if b > cursor:
        out.append(_Piece(cursor, b, False, _silence_reason(kind, not clipped, True, prev, None, b - cursor, o),
                          "silence"))
    return out


def _cut_pieces(duration: float, kept: list[tuple[float, float]], removed: list[_Item],
                o: PlanOptions) -> list[_Piece]:
    removed = sorted(removed, key=lambda it: (it.start, it.end))
    starts = [it.start for it in removed]
    longest = max((it.end - it.start for it in removed), default=0.0)
    regions: list[tuple[str, float, float]] = [("lead", 0.0, kept[0][0])]
    reach = kept[0][1]
    for s, e in kept[1:]:
        if s > reach:
            regions.append(("gap", reach, s))
        reach = max(reach, e)
    regions.append(("trail", reach, duration))
    out: list[_Piece] = []
    for kind, lo, hi in regions:
        if hi - lo <= _EPS:
            continue
        items = _region_items(removed, starts, longest, lo, hi)
        span = _region_cut(kind, lo, hi, items, o)
        if span is not None:
            out.extend(_label(kind, span[0], span[1], items, o))
    return out


def _partition(duration: float, cuts: list[_Piece]) -> list[_Piece]:
    """Cuts plus the keeps between them: the whole of [0, duration], every boundary shared exactly."""
    out: list[_Piece] = []
    cursor = 0.0
    for c in cuts:
        if c.start > cursor:
            out.append(_Piece(cursor, c.start, True))
        out.append(c)
        cursor = c.end
    if duration > cursor:
        out.append(_Piece(cursor, duration, True))
    return out


def _tidy(pieces: list[_Piece]) -> list[_Piece]:
    """Absorb slivers (float dust from the arithmetic, at most _EPS long) into their neighbour, keeping every
    boundary shared, and merge touching keeps."""
    out: list[_Piece] = []
    pending: float | None = None      # the start of slivers at the very beginning, handed to the first real piece
    for p in pieces:
        if p.end - p.start <= _EPS:
            if out:
                out[-1].end = p.end
            elif pending is None:
                pending = p.start
            continue
        if pending is not None:
            p.start, pending = pending, None
        if p.keep and out and out[-1].keep:
            out[-1].end = p.end
        else:
            out.append(p)
    return out


def _restore_tiny_cuts(pieces: list[_Piece], o: PlanOptions) -> list[_Piece]:
    """Undo every cut (a run of touching cut pieces) shorter than min_cut_s: a jump for nothing audible."""
    i = 0
    while i < len(pieces):
        if pieces[i].keep:
            i += 1
            continue
        j = i
        while j < len(pieces) and not pieces[j].keep:
            j += 1
        if pieces[j - 1].end - pieces[i].start < o.min_cut_s - _EPS:
            for p in pieces[i:j]:
                p.keep, p.reason, p.kind, p.texts = True, None, "", ()
        i = j
    return _tidy(pieces)


def _grow_step(pieces: list[_Piece], k: int, deficit: float) -> None:
    """Lengthen the short keep at ``k`` by one step: into neighbouring silence (only as much as needed); failing
    that into neighbouring noise the same way (a little of a cough is less of it than all of it); failing that, take
    back the shorter neighbouring cut piece — a removed word — whole, because half a syllable sounds like a glitch."""
    keep = pieces[k]
    left = pieces[k - 1] if k > 0 else None
    right = pieces[k + 1] if k + 1 < len(pieces) else None
    for kind in ("silence", "noise"):
        room_l = left.duration if left is not None and left.kind == kind else 0.0
        room_r = right.duration if right is not None and right.kind == kind else 0.0
        if room_l <= 0 and room_r <= 0:
            continue
        take_l = min(room_l, deficit / 2 if room_r > 0 else deficit)
        take_r = min(room_r, deficit - take_l)
        take_l = min(room_l, deficit - take_r)  # the left side makes up what the right could not give
        if take_l > 0 and left is not None:
            edge = left.start if take_l >= room_l else left.end - take_l
            left.end = keep.start = edge
        if take_r > 0 and right is not None:
            edge = right.end if take_r >= room_r else right.start + take_r
            right.start = keep.end = edge
        return
    candidates = [p for p in (left, right) if p is not None]
    if not candidates:
        return
    back = min(candidates, key=lambda p: p.duration)  # ties go left: deterministic
    back.keep, back.reason, back.kind, back.texts = True, None, "", ()


def _enforce_min_keep(pieces: list[_Piece], o: PlanOptions) -> list[_Piece]:
    """Grow every keep shorter than min_keep_s until it is long enough or has merged with a neighbour. A lone keep
    may stay short: it is the whole output, not a flicker."""
    while True:
        keeps = [k for k, p in enumerate(pieces) if p.keep]
        if len(keeps) <= 1:
            return pieces
        short = next((k for k in keeps if pieces[k].duration < o.min_keep_s - _EPS), None)
        if short is None:
            return pieces
        _grow_step(pieces, short, o.min_keep_s - pieces[short].duration)
        pieces = _tidy(pieces)


def _audible(start: float, end: float, duration: float) -> tuple[float, float]:
    """A kept word's extent, at least _MIN_WORD_S long: Whisper's timestamps come in 20 ms steps, so a word of zero
    length is a rounding artefact, and a keep must hold some of it or the word would sit on the edge of a cut."""
    if end - start >= _MIN_WORD_S or duration <= _MIN_WORD_S:
        return (start, end)
    mid = min(max((start + end) / 2, _MIN_WORD_S / 2), duration - _MIN_WORD_S / 2)
    return (min(start, mid - _MIN_WORD_S / 2), max(end, mid + _MIN_WORD_S / 2))


def _snap_edges(pieces: list[_Piece], sound: _Sound, kept: list[tuple[float, float]], duration: float,
                o: PlanOptions) -> list[_Piece]:
    """Move every cut edge that falls inside an island of sound out of it. An island that holds a kept word stays
    whole: the cut shrinks to the quiet beside it (a filler that runs into the next word without a breath is kept
    rather than cut through). Any other island goes whole: the cut grows into the quiet before it (pad_removed_s, or
    half the quiet when that is shorter), never past a kept word or kept sound; where it cannot, the island stays
    whole instead of leaving a fragment."""
    isl = sound.islands
    if not isl:
        return pieces
    starts = [i.start for i in isl]
    kept_ends = sorted(b for _, b in kept)
    kept_starts = sorted(a for a, _ in kept)

    def inside(t: float) -> int | None:
        k = bisect.bisect_right(starts, t) - 1
        return k if k >= 0 and isl[k].start + _EPS < t < isl[k].end - _EPS else None

    def quiet_before(k: int) -> float:
        return isl[k].start - (isl[k - 1].end if k > 0 else 0.0)

    def quiet_after(k: int) -> float:
        return (isl[k + 1].start if k + 1 < len(isl) else duration) - isl[k].end

    def left_edge(s: float, keep_start: float) -> float:
        """New start of a cut whose keep is on the left."""
        k = inside(s)
        if k is None:
            return s
        if not sound.protected[k]:
            j = bisect.bisect_right(kept_ends, s + _EPS) - 1
            limit = max(keep_start, kept_ends[j] if j >= 0 else 0.0)
            if isl[k].start >= limit - _EPS:
                return max(isl[k].start - min(o.pad_removed_s, quiet_before(k) / 2), limit)
        return isl[k].end + min(o.pad_removed_s, quiet_after(k) / 2)

    def right_edge(e: float, keep_end: float) -> float:
        """New end of a cut whose keep is on the right."""
        k = inside(e)
        if k is None:
            return e
        if not sound.protected[k]:
            j = bisect.bisect_left(kept_starts, e - _EPS)
            limit = min(keep_end, kept_starts[j] if j < len(kept_starts) else duration)
            if isl[k].end <= limit + _EPS:
                return min(isl[k].end + min(o.pad_removed_s, quiet_after(k) / 2), limit)
        return isl[k].start - min(o.pad_removed_s, quiet_before(k) / 2)

    out: list[_Piece] = []
    i = 0
    while i < len(pieces):
        if pieces[i].keep:
            out.append(pieces[i])
            i += 1
            continue
        j = i
        while j < len(pieces) and not pieces[j].keep:
            j += 1
        run = pieces[i:j]
        s, e = run[0].start, run[-1].end
        new_s = left_edge(s, pieces[i - 1].start) if i > 0 else s
        new_e = right_edge(e, pieces[j].end) if j < len(pieces) else e
        if new_e - new_s <= _EPS:
            out.append(_Piece(s, e, True))             # nothing clean to cut: the run stays
        else:
            if new_s > s:
                out.append(_Piece(s, new_s, True))
            elif new_s < s and out:
                out[-1].end = new_s
            clipped = [p for p in run if p.end > new_s + _EPS and p.start < new_e - _EPS]
            if not clipped:  # the clean stretch lies in the run but past every piece: label it as the nearest
                clipped = [run[0] if new_s <= s else run[-1]]
            clipped[0].start = new_s
            clipped[-1].end = new_e
            for p in clipped[1:]:
                p.start = max(p.start, new_s)
            for p in clipped[:-1]:
                p.end = min(p.end, new_e)
            out.extend(clipped)
            if new_e < e:
                out.append(_Piece(new_e, e, True))
            elif new_e > e and j < len(pieces):
                pieces[j].start = new_e
        i = j
    return _tidy(out)


def _build(duration: float, toks: list[_Tok], sound: _Sound | None, o: PlanOptions, *,
           silence_only: bool = False) -> list[_Piece] | None:
    """The partition for one set of decisions; None when no word would be kept."""
    spans = sound.spans if sound is not None else [(t.start, t.end) for t in toks]
    kept_spans = [sp for t, sp in zip(toks, spans) if silence_only or t.reason is None]
    if not kept_spans:
        return None
    if sound is not None:
        # Kept sound stays whole: a kept word's island, however Whisper timed the word inside it, and sound that no
        # word explains. Pauses are then measured between sounds, not between timestamps.
        kept_spans += [(i.start, i.end) for i, keep in zip(sound.islands, sound.protected) if keep]
    kept = sorted(_audible(a, b, duration) for a, b in kept_spans)
    removed: list[_Item] = []
    if not silence_only:
        removed = [_Item(sp[0], sp[1], t.reason, "word", (t.word.text,))
                   for t, sp in zip(toks, spans) if t.reason is not None]
        if sound is not None:
            removed += sound.items
    pieces = _partition(duration, _cut_pieces(duration, kept, removed, o))
    if sound is not None:
        pieces = _snap_edges(_tidy(pieces), sound, kept, duration, o)
    pieces = _restore_tiny_cuts(_tidy(pieces), o)
    pieces = _enforce_min_keep(pieces, o)
    return _restore_tiny_cuts(pieces, o)


def _removed(pieces: list[_Piece]) -> float:
    return sum(p.duration for p in pieces if not p.keep)


def _to_plan(duration: float, pieces: list[_Piece], *, flagged: bool = False, flag_reason: str = "") -> EditPlan:
    keeps = tuple(Keep(p.start, p.end) for p in pieces if p.keep)
    cuts: list[tuple[float, float, Reason, tuple[str, ...]]] = []
    for p in pieces:
        if p.keep:
            continue
        assert p.reason is not None
        if cuts and cuts[-1][2] is p.reason and cuts[-1][1] == p.start:
            cuts[-1] = (cuts[-1][0], p.end, p.reason, cuts[-1][3] + p.texts)
        else:
            cuts.append((p.start, p.end, p.reason, p.texts))
    return EditPlan(source_duration=duration, keeps=keeps,
                    cuts=tuple(Cut(a, b, r, "".join(t).strip()) for a, b, r, t in cuts),
                    flagged=flagged, flag_reason=flag_reason)


def _breakdown(pieces: list[_Piece]) -> str:
    by: dict[str, float] = {}
    for p in pieces:
        if not p.keep and p.reason is not None:
            by[p.reason.value] = by.get(p.reason.value, 0.0) + p.duration
    return ", ".join(f"{k} {v:.1f}s" for k, v in sorted(by.items(), key=lambda kv: (-kv[1], kv[0])))


def _unproven(pieces: list[_Piece], runs: list[tuple[float, float]] | None, o: PlanOptions) -> float:
    """Seconds cut that the energy envelope does not prove silent: every cut without an envelope, and with one every
    cut except silence that holds no loud stretch of min_noise_s or more. This is what the cap limits: removing dead
    air is never suspicious, removing sound may be."""
    starts = [a for a, _ in runs or ()]
    total = 0.0
    for p in pieces:
        if p.keep:
            continue
        if runs is not None and p.kind == "silence":
            first = max(0, bisect.bisect_right(starts, p.start) - 1)
            last = bisect.bisect_left(starts, p.end)
            if all(min(b, p.end) - max(a, p.start) < o.min_noise_s - _EPS for a, b in runs[first:last]):
                continue
        total += p.duration
    return total


# ------------------------------------------------------------------------------------------------------------ API


def word_reasons(transcript: Transcript, options: PlanOptions = PlanOptions(), *,
                 language: str | None = None) -> tuple[Reason | None, ...]:
    """For each of ``transcript.words``, why the planner would remove it (FILLER, STUTTER, RETAKE), or None.

    The word-level decisions before timing, padding and the cap; for benchmarks and debugging."""
    duration = _source_duration(transcript)
    toks = _tokens(transcript, duration)
    _classify(toks, normalise_language(language or transcript.language), options)
    out: list[Reason | None] = [None] * len(transcript.words)
    for t in toks:
        if t.index >= 0:
            out[t.index] = t.reason
    return tuple(out)


def make_plan(transcript: Transcript, energy: Energy | None, options: PlanOptions = PlanOptions(), *,
              language: str | None = None) -> EditPlan:
    """The edit plan for one recording. ``language`` overrides ``transcript.language`` (either may be a code or a
    name); it only chooses the filler lists. See the module docstring for every rule."""
    o = options
    duration = _source_duration(transcript)
    if duration <= 0:
        return EditPlan(source_duration=0.0, keeps=(), flagged=True, flag_reason="empty source: nothing to plan")
    whole = [_Piece(0.0, duration, True)]
    toks = _tokens(transcript, duration)
    if not toks:
        return _to_plan(duration, whole, flagged=True, flag_reason="no speech recognised: kept the whole video")
    _classify(toks, normalise_language(language or transcript.language), o)
    runs = _loud_runs(energy, o.noise_db, duration) if energy is not None else []
    islands = _islands(energy, duration) if energy is not None and o.clean_cuts else []
    sound = _explain_sound(toks, islands, duration, o) if islands else None

    proof = runs if energy is not None else None
    limit = o.max_removed_ratio
    full = _build(duration, toks, sound, o)
    if full is not None:
        share = _unproven(full, proof, o) / duration
        if share <= limit + _EPS:
            return _to_plan(duration, full)
        quietly = " that is not provably silent" if proof is not None else ""
        why = f"the plan would remove {share:.0%} of the video{quietly} (limit {limit:.0%}; {_breakdown(full)})"
    else:
        why = "the plan would remove every word"

    # Fallback 1: remove only silence, so no recognised word is lost — if that stays under the cap.
    safe_sound = _explain_sound(toks, islands, duration, o, silence_only=True) if islands else None
    safe = _build(duration, toks, safe_sound, o, silence_only=True)
    if safe is not None and _unproven(safe, proof, o) / duration <= limit + _EPS:
        share = _removed(safe) / duration
        return _to_plan(duration, safe, flagged=True, flag_reason=f"{why}: applied only the silence cuts ({share:.0%})")
    # Fallback 2: even the silence cuts take too much sound, so the transcript itself is suspect (missed speech).
    return _to_plan(duration, whole, flagged=True, flag_reason=f"{why}: kept the whole video")


def words_kept(transcript: Transcript, plan: EditPlan) -> tuple[Word, ...]:
    """The transcript's words that survive the plan: those whose middle lies in a keep (in source time)."""
    starts = [k.start for k in plan.keeps]
    out: list[Word] = []
    for w in transcript.words:
        mid = (w.start + w.end) / 2
        i = bisect.bisect_right(starts, mid) - 1
        if i >= 0 and mid <= plan.keeps[i].end:
            out.append(w)
    return tuple(out)


def plan_summary(plan: EditPlan) -> dict[str, Any]:
    """Counts and seconds per reason plus before/after durations, for report.json (seconds rounded to ms)."""
    by: dict[str, dict[str, Any]] = {r.value: {"count": 0, "seconds": 0.0} for r in Reason}
    for c in plan.cuts:
        by[c.reason.value]["count"] += 1
        by[c.reason.value]["seconds"] += c.duration
    removed = sum(c.duration for c in plan.cuts)
    return {
        "source_duration_s": round(plan.source_duration, 3),
        "output_duration_s": round(plan.output_duration, 3),
        "removed_s": round(removed, 3),
        "removed_ratio": round(removed / plan.source_duration, 4) if plan.source_duration > 0 else 0.0,
        "keeps": len(plan.keeps),
        "cuts": len(plan.cuts),
        "flagged": plan.flagged,
        "flag_reason": plan.flag_reason,
        "by_reason": {k: {"count": v["count"], "seconds": round(v["seconds"], 3)} for k, v in by.items()},
    }
