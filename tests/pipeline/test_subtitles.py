"""Subtitles on the output timeline, from constructed transcripts and plans in Chinese and English."""

from __future__ import annotations

import random
import re

import pytest

from aicut.pipeline.edl import Cue, Cut, EditPlan, Keep, Reason
from aicut.pipeline.subtitles import (
    SubtitleOptions,
    display_width,
    line_breaks,
    make_cues,
    parse_srt,
    to_srt,
)
from aicut.pipeline.transcript import Segment, Transcript, Word

OPTS = SubtitleOptions()


def segment(words: list[str], start: float, step: float = 0.25) -> Segment:
    """One recogniser segment of ``words``, each ``step`` seconds long with a small gap after it."""
    ws = []
    t = start
    for text in words:
        ws.append(Word(round(t, 3), round(t + step * 0.9, 3), text))
        t += step
    return Segment(ws[0].start, ws[-1].end, "".join(words), tuple(ws))


def plan_removing(duration: float, removed: list[tuple[float, float, str]]) -> EditPlan:
    """A plan that keeps everything but the ``(start, end, text)`` ranges."""
    keeps, cuts, t = [], [], 0.0
    for start, end, text in sorted(removed):
        if start > t:
            keeps.append(Keep(t, start))
        cuts.append(Cut(start, end, Reason.FILLER, text))
        t = end
    if t < duration:
        keeps.append(Keep(t, duration))
    return EditPlan(duration, tuple(keeps), tuple(cuts))


def words_range(seg: Segment, *texts: str, pad: float = 0.02) -> tuple[float, float, str]:
    """The source range of the consecutive words ``texts`` in ``seg`` (to cut them)."""
    joined = [w.text for w in seg.words]
    i = next(k for k in range(len(joined)) if joined[k:k + len(texts)] == list(texts))
    return seg.words[i].start - pad, seg.words[i + len(texts) - 1].end + pad, "".join(texts)


def assert_valid(cues: list[Cue], plan: EditPlan, *, cjk: bool, options: SubtitleOptions = OPTS) -> None:
    """The invariants every cue list must keep."""
    limit = options.max_chars_zh if cjk else options.max_chars_en
    prev_end = 0.0
    for cue in cues:
        assert 0.0 <= cue.start < cue.end <= plan.output_duration + 1e-9, cue
        assert cue.start >= prev_end - 1e-9, "cues overlap or go back in time"
        prev_end = cue.end
        # whole milliseconds, so the SRT says exactly what the cue list says
        assert abs(cue.start * 1000 - round(cue.start * 1000)) < 1e-6
        lines = cue.text.split("\n")
        assert 1 <= len(lines) <= options.max_lines, cue.text
        for line in lines:
            assert line and line == line.strip(), repr(line)
            assert display_width(line, cjk=cjk) <= limit, line


def squash(text: str) -> str:
    return re.sub(r"[\s，、；：。,;:.]", "", text)


# --- Chinese ------------------------------------------------------------------------------------------------------

ZH_S1 = ["大家", "好，", "今天", "我们", "来", "聊", "一下", "AI", "剪辑", "的", "三个", "技巧", "。"]
ZH_S2 = ["嗯"]
ZH_S3 = ["第一个", "技巧", "就是", "把", "所有", "的", "停顿", "和", "口头禅", "都", "去掉", "，", "这样",
         "视频", "会", "更", "紧凑", "也", "更", "好看", "。"]
ZH_RETAKE = ["第二个", "技巧", "是", "错误", "的", "说法", "。"]
ZH_S5 = ["第二个", "技巧", "是", "删掉", "重复", "的", "句子", "你", "觉得", "有用", "吗", "？"]


@pytest.fixture
def zh() -> tuple[Transcript, EditPlan]:
    s1 = segment(ZH_S1, 0.5)
    s2 = segment(ZH_S2, s1.end + 0.3, step=0.4)
    s3 = segment(ZH_S3, s2.end + 0.4)
    s4 = segment(ZH_RETAKE, s3.end + 0.6)
    s5 = segment(ZH_S5, s4.end + 0.6)
    duration = s5.end + 1.0
    transcript = Transcript("zh", duration, (s1, s2, s3, s4, s5))
    plan = plan_removing(duration, [
        (0.0, 0.4, ""),                                 # leading silence
        (s2.start - 0.05, s2.end + 0.05, "嗯"),          # a filler between two sentences
        (s4.start - 0.1, s4.end + 0.1, "".join(ZH_RETAKE)),   # the first take of a retake
        words_range(s3, "都"),                           # a word cut inside a sentence
    ])
    return transcript, plan


def test_chinese_cues_hold_the_kept_words_in_order_and_no_cut_word(zh: tuple[Transcript, EditPlan]) -> None:
    transcript, plan = zh
    cues = make_cues(transcript, plan, OPTS, language="zh")
    assert cues
    assert_valid(cues, plan, cjk=True)
    text = squash("".join(c.text for c in cues))
    kept = [w.text for w in transcript.words if plan.to_output_time((w.start + w.end) / 2) is not None]
    assert text == squash("".join(kept))
    assert "嗯" not in text and "错误" not in text and "说法" not in text
    assert "口头禅去掉" in text  # "都" was cut from between them


def test_chinese_punctuation_convention(zh: tuple[Transcript, EditPlan]) -> None:
    transcript, plan = zh
    cues = make_cues(transcript, plan, OPTS, language="zh")
    joined = "\n".join(c.text for c in cues)
    assert not re.search(r"[，。、；：]", joined), joined   # pause marks dropped or turned into spaces
    assert "？" in joined                                    # a question keeps its mark
    assert any("大家好 今天" in c.text for c in cues)         # the comma became a space inside a line
    plain = make_cues(transcript, plan, SubtitleOptions(strip_punctuation=False), language="zh")
    assert "，" in "".join(c.text for c in plain)


def test_chinese_cue_ends_at_sentence_ends(zh: tuple[Transcript, EditPlan]) -> None:
    transcript, plan = zh
    cues = make_cues(transcript, plan, OPTS, language="zh")
    # No cue holds the end of one sentence and the start of the next.
    for cue in cues:
        flat = squash(cue.text)
        assert not ("技巧" in flat and "第一个" in flat and flat.index("技巧") < flat.index("第一个"))
        assert not ("好看" in flat and "第二个" in flat)


def test_recogniser_spaces_between_chinese_words_are_dropped() -> None:
    seg = segment([" 大家", " 好，", " 今天", " 用", " AI", " 和", " Premiere Pro", " 剪辑。"], 0.0, step=0.3)
    transcript = Transcript("zh", seg.end + 0.3, (seg,))
    plan = EditPlan(transcript.duration, (Keep(0.0, transcript.duration),))
    (cue,) = make_cues(transcript, plan, OPTS, language="zh")
    assert re.sub(r"\s", "", cue.text) == "大家好今天用AI和PremierePro剪辑"
    assert "大家好 今天" in cue.text and "Premiere Pro" in cue.text  # the comma's space and a real one stay
    assert not re.search(r"[\u4e00-\u9fff] [\u4e00-\u9fff]", cue.text.replace("大家好 今天", ""))


def test_latin_words_and_numbers_are_never_split() -> None:
    words = ["我", "用", "ChatGPT", "和", "Premiere", "Pro", "在", "2024", "年", "做", "了", "3.14", "万",
             "条", "视频", "还", "有", "iPhone", "15", "拍", "的", "素材", "和", "DaVinci", "Resolve", "调色", "。"]
    seg = segment(words, 0.0, step=0.3)
    transcript = Transcript("zh", seg.end + 0.5, (seg,))
    plan = EditPlan(transcript.duration, (Keep(0.0, transcript.duration),))
    for max_chars in (6, 8, 10, 12, 16):
        options = SubtitleOptions(max_chars_zh=max_chars)
        cues = make_cues(transcript, plan, options, language="zh")
        assert_valid(cues, plan, cjk=True, options=options)
        lines = [line for c in cues for line in c.text.split("\n")]
        for token in ("ChatGPT", "Premiere", "2024", "3.14", "iPhone", "DaVinci", "Resolve"):
            assert any(token in line for line in lines), (max_chars, token, lines)


def test_line_breaks_respect_words_and_kinsoku() -> None:
    text = "我用ChatGPT做了3.14万条视频，你呢？"
    allowed = {i for i, _ in line_breaks(text, cjk=True)}
    for token in ("ChatGPT", "3.14"):
        k = text.index(token)
        assert not allowed & set(range(k + 1, k + len(token)))
    assert text.index("，") not in allowed and text.index("？") not in allowed  # never start a line with them
    assert text.index("，") + 1 in allowed
    assert {i for i, _ in line_breaks("hello big world", cjk=False)} == {6, 10}


def test_chinese_two_lines_are_balanced() -> None:
    words = list("我们今天来讲一讲怎么把一段很长的口播视频剪得干净利落") + ["。"]
    seg = segment(words, 0.0, step=0.15)
    transcript = Transcript("zh", seg.end + 0.2, (seg,))
    plan = EditPlan(transcript.duration, (Keep(0.0, transcript.duration),))
    cues = make_cues(transcript, plan, OPTS, language="zh")
    assert_valid(cues, plan, cjk=True)
    two = [c for c in cues if "\n" in c.text]
    assert two
    for cue in two:
        a, b = cue.text.split("\n")
        assert abs(display_width(a, cjk=True) - display_width(b, cjk=True)) <= 3, cue.text


def test_a_cue_does_not_span_a_cut_join() -> None:
    # One sentence, a retake-like cut in its middle; both sides are long enough to stand alone.
    before = ["这个", "方法", "我", "用", "了", "很", "多", "年"]
    removed = ["呃", "那个", "怎么", "说", "呢"]
    after = ["效果", "一直", "都", "非常", "稳定", "。"]
    seg = segment(before + removed + after, 0.0, step=0.3)
    transcript = Transcript("zh", seg.end + 0.3, (seg,))
    plan = plan_removing(transcript.duration, [words_range(seg, *removed)])
    cues = make_cues(transcript, plan, OPTS, language="zh")
    assert_valid(cues, plan, cjk=True)
    texts = [squash(c.text) for c in cues]
    assert all(not ("很多年" in t and "效果" in t) for t in texts), texts
    assert any(t.endswith("很多年") for t in texts) and any(t.startswith("效果") for t in texts)
    # With the behaviour off, the short sentence stays one cue across the join.
    joined = make_cues(transcript, plan, SubtitleOptions(break_at_cuts=False), language="zh")
    assert len(joined) == 1


def test_a_short_piece_at_a_join_is_not_left_flashing() -> None:
    words = ["所以", "嗯", "我们", "今天", "就", "来", "讲", "一", "下", "这个", "问题", "。"]
    seg = segment(words, 0.0, step=0.3)
    transcript = Transcript("zh", seg.end + 0.3, (seg,))
    plan = plan_removing(transcript.duration, [words_range(seg, "嗯")])
    cues = make_cues(transcript, plan, OPTS, language="zh")
    assert_valid(cues, plan, cjk=True)
    assert len(cues) == 1 and squash(cues[0].text) == "所以我们今天就来讲一下这个问题"


def test_long_run_without_punctuation_respects_max_cue_time() -> None:
    words = list("这是一段没有任何标点符号的很长的口播内容识别器也没有给出分段"
                 "所以字幕必须自己按照时长和字数切开才行否则会一直挂在屏幕上")
    seg = segment(words, 0.0, step=0.35)
    transcript = Transcript("zh", seg.end + 0.5, (seg,))
    plan = EditPlan(transcript.duration, (Keep(0.0, transcript.duration),))
    cues = make_cues(transcript, plan, OPTS, language="zh")
    assert_valid(cues, plan, cjk=True)
    assert len(cues) >= 3
    for cue in cues:
        assert cue.end - cue.start <= OPTS.max_cue_s + 1e-6
    assert squash("".join(c.text for c in cues)) == "".join(words)


# --- English ------------------------------------------------------------------------------------------------------

EN_S1 = [" Hello", " everyone,", " today", " I", " want", " to", " show", " you", " three", " simple", " tricks",
         " for", " editing", " talking", " head", " videos", " quickly."]
EN_S2 = [" Um,", " uh,"]
EN_S3 = [" The", " first", " trick", " is", " is", " to", " remove", " every", " long", " pause", " and", " every",
         " filler", " word", " so", " that", " the", " video", " feels", " tight", " and", " natural."]


@pytest.fixture
def en() -> tuple[Transcript, EditPlan]:
    s1 = segment(EN_S1, 0.3, step=0.32)
    s2 = segment(EN_S2, s1.end + 0.4, step=0.4)
    s3 = segment(EN_S3, s2.end + 0.3, step=0.3)
    duration = s3.end + 0.8
    transcript = Transcript("en", duration, (s1, s2, s3))
    stutter = s3.words[3]  # the first " is"
    plan = plan_removing(duration, [
        (s2.start - 0.05, s2.end + 0.05, "Um, uh,"),
        (stutter.start - 0.02, stutter.end + 0.02, "is"),
        (s3.end + 0.2, duration, ""),                    # trailing silence
    ])
    return transcript, plan


def test_english_cues(en: tuple[Transcript, EditPlan]) -> None:
    transcript, plan = en
    cues = make_cues(transcript, plan, OPTS, language="en")
    assert_valid(cues, plan, cjk=False)
    text = " ".join(c.text.replace("\n", " ") for c in cues)
    assert "Um" not in text and "uh," not in text
    assert "trick is to remove" in text and "is is" not in text
    words = set(w.text.strip() for w in transcript.words)
    for cue in cues:
        for line in cue.text.split("\n"):
            assert all(token in words for token in line.split()), line  # no word broken across lines
    assert text.split() == [w.text.strip() for w in transcript.words
                            if plan.to_output_time((w.start + w.end) / 2) is not None]


def test_english_line_limit_and_balance(en: tuple[Transcript, EditPlan]) -> None:
    transcript, plan = en
    options = SubtitleOptions(max_chars_en=24)
    cues = make_cues(transcript, plan, options, language="en")
    assert_valid(cues, plan, cjk=False, options=options)
    assert any("\n" in c.text for c in cues)


def test_language_falls_back_to_the_transcript_and_then_the_text(zh: tuple[Transcript, EditPlan]) -> None:
    transcript, plan = zh
    explicit = make_cues(transcript, plan, OPTS, language="zh")
    assert make_cues(transcript, plan, OPTS) == explicit
    unknown = Transcript("", transcript.duration, transcript.segments)
    assert make_cues(unknown, plan, OPTS) == explicit


# --- timing ---------------------------------------------------------------------------------------------------------


def test_short_isolated_word_gets_the_minimum_time() -> None:
    seg1 = segment(["好。"], 1.0, step=0.2)
    seg2 = segment(["我们", "开始", "吧。"], 5.0, step=0.3)
    transcript = Transcript("zh", 7.0, (seg1, seg2))
    plan = EditPlan(7.0, (Keep(0.0, 7.0),))
    cues = make_cues(transcript, plan, OPTS, language="zh")
    assert_valid(cues, plan, cjk=True)
    assert cues[0].text == "好" and cues[0].end - cues[0].start >= OPTS.min_cue_s - 1e-9
    assert cues[0].start == pytest.approx(1.0)


def test_short_gaps_are_closed_and_last_cue_stays_inside() -> None:
    s1 = segment(["第一句", "话。"], 0.0, step=0.5)
    s2 = segment(["第二句", "话。"], s1.end + 0.2, step=0.5)
    transcript = Transcript("zh", s2.end, (s1, s2))
    plan = EditPlan(transcript.duration, (Keep(0.0, s2.end),))
    cues = make_cues(transcript, plan, OPTS, language="zh")
    assert len(cues) == 2
    assert cues[1].start - cues[0].end == pytest.approx(OPTS.min_gap_s, abs=2e-3)
    assert cues[-1].end <= plan.output_duration


def test_words_trimmed_by_the_plan_are_clipped_to_their_keep() -> None:
    seg = segment(["前面", "的话", "后面", "的话。"], 0.0, step=0.5)
    transcript = Transcript("zh", 2.5, (seg,))
    # The keep starts after the first word's start and ends before the last word's end.
    plan = EditPlan(2.5, (Keep(0.1, 1.9),))
    cues = make_cues(transcript, plan, OPTS, language="zh")
    assert_valid(cues, plan, cjk=True)
    assert cues[0].start == 0.0 and cues[-1].end <= 1.8


def test_segments_without_word_times_still_get_cues() -> None:
    seg = Segment(0.5, 6.5, "今天我们来讲一讲字幕应该怎么切分才好看，以及为什么要这样做。")
    transcript = Transcript("zh", 7.0, (seg,))
    plan = plan_removing(7.0, [(3.0, 3.4, "")])
    cues = make_cues(transcript, plan, OPTS, language="zh")
    assert cues
    assert_valid(cues, plan, cjk=True)


def test_random_transcripts_and_plans_keep_the_invariants() -> None:
    rng = random.Random(4)
    zh_vocab = ["我们", "今天", "视频", "剪辑", "技巧", "的", "是", "AI", "2024", "好", "吗", "，", "口播", "非常"]
    en_vocab = [" the", " video", " cut", " pause", " really", " good", " and", " GPT-4", " 2,000", " so"]
    for case in range(150):
        cjk = case % 2 == 0
        vocab = zh_vocab if cjk else en_vocab
        segments, t = [], rng.uniform(0, 1)
        for _ in range(rng.randint(0, 6)):
            words = [rng.choice(vocab) for _ in range(rng.randint(1, 30))]
            words[-1] += rng.choice(["", "。" if cjk else ".", "？" if cjk else "?"])
            seg = segment(words, t, step=rng.uniform(0.08, 0.6))
            segments.append(seg)
            t = seg.end + rng.uniform(0, 2.5)
        duration = t + rng.uniform(0, 1)
        removed, u = [], 0.0
        while u < duration:
            a = u + rng.uniform(0.2, 4)
            b = a + rng.uniform(0.05, 1.5)
            if b < duration:
                removed.append((a, b, ""))
            u = b
        plan = plan_removing(duration, removed)
        options = SubtitleOptions(max_chars_zh=rng.choice([8, 12, 16]), max_chars_en=rng.choice([20, 32, 42]))
        transcript = Transcript("zh" if cjk else "en", duration, tuple(segments))
        cues = make_cues(transcript, plan, options)
        assert_valid(cues, plan, cjk=cjk, options=options)
        cut_words = [w for w in transcript.words if plan.to_output_time((w.start + w.end) / 2) is None]
        kept_words = [w for w in transcript.words if plan.to_output_time((w.start + w.end) / 2) is not None]
        assert squash("".join(c.text for c in cues)) == squash("".join(w.text for w in kept_words))
        if not kept_words:
            assert cues == [] and cut_words is not None
        assert parse_srt(to_srt(cues)) == cues


# --- SRT ------------------------------------------------------------------------------------------------------------


def test_srt_format() -> None:
    cues = [Cue(0.0, 1.5, "大家好"), Cue(3661.25, 3662.999, "第一行\n第二行")]
    assert to_srt(cues) == ("1\n00:00:00,000 --> 00:00:01,500\n大家好\n\n"
                            "2\n01:01:01,250 --> 01:01:02,999\n第一行\n第二行\n\n")


def test_srt_round_trip(zh: tuple[Transcript, EditPlan], en: tuple[Transcript, EditPlan]) -> None:
    for (transcript, plan), lang in ((zh, "zh"), (en, "en")):
        cues = make_cues(transcript, plan, OPTS, language=lang)
        srt = to_srt(cues)
        assert parse_srt(srt) == cues
        # what the issue accepts: monotonic and inside the output, read back from the SRT text itself
        times = [t for c in parse_srt(srt) for t in (c.start, c.end)]
        assert times == sorted(times) and times[0] >= 0 and times[-1] <= plan.output_duration
        indices = re.findall(r"^(\d+)\n\d\d:", srt, flags=re.M)
        assert indices == [str(i) for i in range(1, len(cues) + 1)]


def test_parse_srt_tolerates_bom_crlf_and_dots() -> None:
    text = "\ufeff1\r\n00:00:01.000 --> 00:00:02.5\r\nhi\r\n\r\n00:00:03,000 --> 00:00:04,000\r\nthere\r\n"
    assert parse_srt(text) == [Cue(1.0, 2.5, "hi"), Cue(3.0, 4.0, "there")]


def test_empty_inputs() -> None:
    empty = Transcript("zh", 10.0, ())
    plan = EditPlan(10.0, (Keep(0.0, 10.0),))
    assert make_cues(empty, plan, OPTS, language="zh") == []
    assert to_srt([]) == ""
    assert parse_srt("") == []
    seg = segment(["全部", "被", "剪掉", "了。"], 1.0)
    assert make_cues(Transcript("zh", 10.0, (seg,)), EditPlan(10.0, (Keep(5.0, 10.0),)), OPTS) == []
    assert make_cues(Transcript("zh", 10.0, (seg,)), EditPlan(10.0, ()), OPTS) == []
