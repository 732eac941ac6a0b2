"""Acceptance tests of the whole smart cut: the short English talking head through ``run_task``, checked from the
outside — what the output says (recognised again), how long its pauses are, whether picture and sound stay together
across every cut, whether the MP4 plays, and what the SRT, edl.json and report.json say — plus the sources it must
refuse with a final error a person can act on.

One cut (module scope) serves every check of the output; tiny.en keeps it to seconds on a 2-core box.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass, replace
from pathlib import Path

import av
import numpy as np
import pytest

from aicut.errors import AicutError, MediaError, NoAudioStreamError, NoSpeechError, NotMediaError, TooLargeError
from aicut.models import Source, Task, TaskOptions, TaskSpec
from aicut.pipeline.audio import SAMPLE_RATE, energy, load_audio
from aicut.pipeline.edl import EditPlan
from aicut.pipeline.fetch import FetchOptions
from aicut.pipeline.plan import PlanOptions
from aicut.pipeline.subtitles import parse_srt
from aicut.pipeline.task import PipelineOptions, run_task
from aicut.pipeline.transcribe import TranscribeOptions, Transcriber
from tests.support.httpserver import MediaServer
from tests.support.media import make_clip
from tests.support.talking_head import ENGLISH_SHORT, GroundTruth, cached_talking_head, read_frame_time

SPEECH = TranscribeOptions(model="tiny.en", language="en")
LOCAL_FETCH = FetchOptions(allow_hosts=("127.0.0.1",), retries=0, backoff_s=0.01, connect_timeout_s=5,
                           read_timeout_s=10, total_timeout_s=60)
QUIET_DB = -45.0          # the fixture's gaps are digital silence; AAC leaves them far below this
MATCH = 0.8               # share of a sentence's words that must come back, in order, from the output


@pytest.fixture(scope="module")
def transcriber() -> Transcriber:
    return Transcriber(SPEECH)


def _options(work_dir: Path, **changes: object) -> PipelineOptions:
    return replace(PipelineOptions(work_dir=work_dir, local_files=True, transcribe=SPEECH, fetch=LOCAL_FETCH),
                   **changes)


def _task(url: str, name: str = "", task_id: str = "smart-cut") -> Task:
    return Task(id=task_id, spec=TaskSpec(title="smart cut", sources=(Source(url=url, name=name),)),
                options=TaskOptions(language="en"))


@dataclass(frozen=True)
class Cut:
    truth: GroundTruth
    options: PipelineOptions
    video: Path
    srt: Path
    plan: EditPlan
    edl: dict
    report: dict
    stages: list[str]


@pytest.fixture(scope="module")
def cut(tmp_path_factory: pytest.TempPathFactory, transcriber: Transcriber) -> Cut:
    truth = cached_talking_head(tmp_path_factory, ENGLISH_SHORT)
    options = _options(tmp_path_factory.mktemp("smart_cut"))
    stages: list[str] = []
    result = run_task(_task(truth.clip.as_uri(), "talking_head.mp4"), options,
                      lambda stage, pct, detail: stages.append(stage), transcriber=transcriber)
    files = {o.kind: Path(o.path) for o in result.outputs}
    assert set(files) == {"video", "subtitles", "cover", "edl", "report"}
    edl = json.loads(files["edl"].read_text(encoding="utf-8"))
    return Cut(truth=truth, options=options, video=files["video"], srt=files["subtitles"],
               plan=EditPlan.from_dict(edl), edl=edl,
               report=json.loads(files["report"].read_text(encoding="utf-8")), stages=stages)


# --- helpers ---------------------------------------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def _lcs(a: list[str], b: list[str]) -> int:
    row = [0] * (len(b) + 1)
    for x in a:
        prev = 0
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], prev + 1 if x == y else max(row[j], row[j - 1])
    return row[-1]


def occurrences(sentence: str, heard: list[str]) -> int:
    """How many times ``sentence`` was said in ``heard``: non-overlapping windows starting on one of its first two
    words that hold at least MATCH of its words in order (so recognition noise still counts as the sentence)."""
    want = _words(sentence)
    need = int(np.ceil(MATCH * len(want)))
    count, i = 0, 0
    while i < len(heard):
        if heard[i] in want[:2] and _lcs(want, heard[i : i + len(want) + 2]) >= need:
            count += 1
            i += len(want) - 1
        else:
            i += 1
    return count


def _phrase_count(phrase: str, heard: list[str]) -> int:
    p = _words(phrase)
    return sum(heard[i : i + len(p)] == p for i in range(len(heard) - len(p) + 1))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index runs where ``mask`` is True."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def _output_energy(video: Path) -> tuple[np.ndarray, float]:
    env = energy(load_audio(video))
    return np.asarray(env.db), env.frame_s


def _mapped(plan: EditPlan, t: float, slack: float) -> float | None:
    """Output time of source time ``t``; a time up to ``slack`` outside a keep maps as if the keep reached it."""
    best, offset = None, 0.0
    for k in plan.keeps:
        if k.start - slack <= t <= k.end + slack:
            cand = offset + (t - k.start)
            if best is None or abs(t - min(max(t, k.start), k.end)) < best[1]:
                best = (cand, abs(t - min(max(t, k.start), k.end)))
        offset += k.duration
    return None if best is None else best[0]


def _top_level_boxes(path: Path) -> list[str]:
    boxes, data, pos = [], path.read_bytes(), 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
        elif size == 0:
            size = len(data) - pos
        boxes.append(kind.decode("latin-1"))
        pos += size
    return boxes


# --- the output ------------------------------------------------------------------------------------------------------


def test_every_intended_sentence_is_said_exactly_once(cut: Cut, transcriber: Transcriber) -> None:
    heard = _words(transcriber.transcribe(cut.video, language="en").text)
    intended = [p.text for p in cut.truth.of_kind("sentence", "retake_second")]
    counts = {s: occurrences(s, heard) for s in intended}
    assert all(n == 1 for n in counts.values()), (counts, " ".join(heard))
    # The retake: the first take's wording is gone, the second's is there once.
    assert _phrase_count("write a script", heard) == 0, " ".join(heard)
    assert _phrase_count("write a short script", heard) == 1, " ".join(heard)
    assert _phrase_count("second step", heard) == 1, " ".join(heard)


def test_no_pause_in_the_output_is_longer_than_the_configured_gap(cut: Cut) -> None:
    db, frame_s = _output_energy(cut.video)
    plan = PlanOptions()
    # A pause longer than max_pause_s is shortened to natural_gap_s; shorter ones stay. Whisper's word times are good
    # to about ±0.1 s and each kept word keeps pad_s of air, so that much more is tolerated.
    limit = plan.max_pause_s + 2 * plan.pad_s + 0.1
    quiet = _runs(db < QUIET_DB)
    interior = [(a * frame_s, b * frame_s) for a, b in quiet if a > 0 and b < len(db)]
    longest = max((b - a for a, b in interior), default=0.0)
    assert longest <= limit, f"pauses (start, end) in the output: {[(round(a, 2), round(b, 2)) for a, b in interior]}"
    # The source's two 2.5 s pauses really were cut: the output is that much shorter than the clip.
    assert cut.plan.output_duration < cut.truth.duration - 4.0


def test_picture_stays_on_its_source_time_across_every_cut(cut: Cut) -> None:
    fps = cut.truth.fps
    one_frame = 1.0 / fps
    errors, sources, count = [], [], 0
    with av.open(str(cut.video)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            count += 1
            src = read_frame_time(frame, fps)
            sources.append(src)
            expected = _mapped(cut.plan, src, one_frame)
            shown = float(frame.time)
            if expected is None or abs(shown - expected) > one_frame + 1e-6:
                errors.append((round(shown, 3), round(src, 3), expected and round(expected, 3)))
    assert count >= int(cut.plan.output_duration * fps) - 1
    assert not errors, f"(output pts, source time, expected output time) off by more than a frame: {errors[:10]}"
    assert all(b > a for a, b in zip(sources, sources[1:])), "the picture went backwards in source time"
    # Every cut shows up as a jump in source time, and nowhere else does the picture skip a frame.
    jumps = sum(1 for a, b in zip(sources, sources[1:]) if b - a > 1.5 * one_frame)
    assert jumps == len(cut.plan.keeps) - 1


def test_sound_stays_in_sync_across_every_cut(cut: Cut) -> None:
    one_frame = 1.0 / cut.truth.fps
    with av.open(str(cut.video)) as container:
        audio = container.streams.audio[0]
        audio_s = float(audio.duration * audio.time_base) if audio.duration else None
        total_s = container.duration / av.time_base
    assert total_s == pytest.approx(cut.plan.output_duration, abs=one_frame)
    if audio_s is not None:
        assert audio_s == pytest.approx(cut.plan.output_duration, abs=one_frame)
    decoded_s = load_audio(cut.video).size / SAMPLE_RATE
    assert decoded_s == pytest.approx(cut.plan.output_duration, abs=one_frame)

    db, frame_s = _output_energy(cut.video)
    # An onset: sound after at least 0.1 s of quiet (the short dips inside words do not count).
    onsets = [b * frame_s for a, b in _runs(db < QUIET_DB) if (b - a) * frame_s >= 0.1 and b < len(db)]
    misses = []
    for piece in cut.truth.of_kind("sentence", "retake_second"):
        # Where the plan puts the sentence's first sound; a cut that trims its first few hundredths of a second
        # moves it to the keep's start.
        expected = _mapped(cut.plan, piece.start, 0.1)
        assert expected is not None, f"the start of {piece.text!r} at {piece.start:.2f}s was cut"
        got = min(onsets, key=lambda t: abs(t - expected))
        if abs(got - expected) > 0.1:
            misses.append((piece.text, round(expected, 3), round(got, 3)))
    assert not misses, f"(sentence, expected onset, nearest onset heard) in the output: {misses}"


def test_every_sentence_is_kept_whole(cut: Cut) -> None:
    """No kept sentence loses more than a few hundredths of a second of its sound to a neighbouring cut."""
    clipped = []
    for piece in cut.truth.of_kind("sentence", "retake_second"):
        kept = sum(max(0.0, min(k.end, piece.end) - max(k.start, piece.start)) for k in cut.plan.keeps)
        if piece.duration - kept > 0.05:
            clipped.append((piece.text, round(piece.duration - kept, 3)))
    assert not clipped, f"(sentence, seconds of its sound cut): {clipped}"


def test_the_mp4_plays_to_the_end_with_its_index_first_and_subtitles(cut: Cut) -> None:
    packets = {"video": 0, "audio": 0, "subtitle": 0}
    last_end = 0.0
    with av.open(str(cut.video)) as container:
        assert container.streams.subtitles, "no subtitle track"
        assert container.streams.subtitles[0].codec_context.name == "mov_text"
        for packet in container.demux():
            if packet.dts is None:
                continue
            kind = packet.stream.type
            packets[kind] = packets.get(kind, 0) + 1
            if kind in ("video", "audio"):
                packet.decode()  # raises on a damaged packet
                if packet.pts is not None:
                    end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
                    last_end = max(last_end, end)
        duration = container.duration / av.time_base
    assert packets["video"] > 0 and packets["audio"] > 0 and packets["subtitle"] > 0
    assert duration == pytest.approx(cut.plan.output_duration, abs=1 / cut.truth.fps)
    assert last_end == pytest.approx(duration, abs=2 / cut.truth.fps)
    boxes = _top_level_boxes(cut.video)
    assert "moov" in boxes and "mdat" in boxes and boxes.index("moov") < boxes.index("mdat"), boxes


def test_srt_times_are_monotonic_and_inside_the_output(cut: Cut) -> None:
    cues = parse_srt(cut.srt.read_text(encoding="utf-8"))
    assert cues
    for a, b in zip(cues, cues[1:]):
        assert a.end <= b.start, (a, b)
    for c in cues:
        assert 0.0 <= c.start < c.end <= cut.plan.output_duration + 1e-3, c
        assert c.text.strip()


def test_report_and_edl(cut: Cut) -> None:
    report = cut.report
    # PipelineOptions.nvenc_available is False here, as on a worker without an NVIDIA encoder.
    assert report["encoder"] == "x264"
    assert "NVENC" in report["encoder_reason"]
    assert report["model"] == "tiny.en" and report["language"] == "en"
    by_reason = report["plan"]["by_reason"]
    for reason in ("pause", "filler", "retake"):
        assert by_reason[reason]["count"] >= 1 and by_reason[reason]["seconds"] > 0, by_reason
    assert report["output"]["duration_s"] == pytest.approx(cut.plan.output_duration, abs=1 / cut.truth.fps)
    reasons = {c["reason"] for c in cut.edl["cuts"]}
    assert {"pause", "filler", "retake"} <= reasons, reasons
    retakes = [c for c in cut.edl["cuts"] if c["reason"] == "retake"]
    assert any("write a script" in c["text"].lower() for c in retakes), retakes
    first_take = cut.truth.of_kind("retake_first")[0]
    assert all(cut.plan.to_output_time(t) is None
               for t in np.linspace(first_take.start + 0.1, first_take.end - 0.05, 20)), "the first take was kept"
    assert cut.stages[-1] == "done"


# --- sources that must fail, finally, with a message a person can act on ---------------------------------------------


def _fails(tmp_path: Path, url: str, expected: type[AicutError], match: str, transcriber: Transcriber,
           **changes: object) -> AicutError:
    with pytest.raises(expected, match=match) as info:
        run_task(_task(url, task_id=f"fail-{tmp_path.name}"), _options(tmp_path / "work", **changes),
                 lambda *a: None, transcriber=transcriber)
    err = info.value
    assert err.retryable is False, repr(err)
    assert len(err.message) > 30 and "Traceback" not in err.message
    return err


def test_truncated_file_fails_finally(tmp_path: Path, transcriber: Transcriber) -> None:
    clip = make_clip(tmp_path / "clip.mp4")
    broken = tmp_path / "truncated.mp4"
    broken.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])  # the index (moov) is at the end: gone
    err = _fails(tmp_path, broken.as_uri(), MediaError, "damaged or incomplete", transcriber)
    assert "re-export" in err.message


def test_video_without_audio_fails_finally(tmp_path: Path, transcriber: Transcriber) -> None:
    clip = make_clip(tmp_path / "mute.mp4", audio=False)
    _fails(tmp_path, clip.as_uri(), NoAudioStreamError, "no audio track", transcriber)


def test_silent_video_fails_with_no_speech(tmp_path: Path, transcriber: Transcriber) -> None:
    clip = make_clip(tmp_path / "silent.mp4", seconds=3.0, tone_hz=0.0)
    assert max(energy(load_audio(clip)).db) < -60  # really silent
    _fails(tmp_path, clip.as_uri(), NoSpeechError, "no speech found", transcriber)


def test_html_page_instead_of_a_video_fails_finally(tmp_path: Path, transcriber: Transcriber) -> None:
    with MediaServer(tmp_path) as server:
        err = _fails(tmp_path, server.url("/html"), NotMediaError, "HTML page", transcriber)
    assert "direct link" in err.message


def test_file_over_the_size_cap_fails_finally(tmp_path: Path, transcriber: Transcriber) -> None:
    make_clip(tmp_path / "clip.mp4")
    small = replace(LOCAL_FETCH, max_bytes=10_000)
    with MediaServer(tmp_path) as server:
        _fails(tmp_path, server.url("/clip.mp4"), TooLargeError, "download limit", transcriber, fetch=small)


def test_unsupported_video_codec_fails_finally(tmp_path: Path, transcriber: Transcriber) -> None:
    """A Matroska file whose video track names a codec FFmpeg does not know (as an exotic camera or screen recorder
    writes): the CodecID "V_MPEG4/ISO/AVC" is overwritten with an unknown one of the same length, so the file is
    otherwise intact but there is no decoder for its picture."""
    clip = make_clip(tmp_path / "clip.mkv", container="mkv")
    data = clip.read_bytes()
    assert data.count(b"V_MPEG4/ISO/AVC") == 1
    odd = tmp_path / "odd_codec.mkv"
    odd.write_bytes(data.replace(b"V_MPEG4/ISO/AVC", b"V_AICUT/UNKNOWN"))
    err = _fails(tmp_path, odd.as_uri(), MediaError, "video track", transcriber)
    assert "video" in err.message and "re-export" in err.message, err.message
