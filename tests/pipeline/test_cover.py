"""The cover JPEG and the CJK font it is drawn with, on real video made with PyAV."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image, ImageFilter, ImageFont

from aicut.errors import ConfigError, NoVideoStreamError
from aicut.models import CoverTitles
from aicut.pipeline import fonts
from aicut.pipeline.cover import CoverOptions, _fit, _score, choose_frame, make_cover, sharpness
from aicut.pipeline.edl import EditPlan, Keep
from aicut.pipeline.fonts import find_cjk_font, has_cjk_glyphs, load_font
from tests.support.media import make_clip

W, H = 640, 360
SHARP_FROM, SHARP_TO = 2.0, 2.6   # the only crisp stretch of the blur clip, in seconds


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cover")


@pytest.fixture(scope="module")
def font() -> Path:
    return find_cjk_font()


@pytest.fixture(scope="module")
def clip(media: Path) -> Path:
    return make_clip(media / "clip.mp4", seconds=2.0, width=W, height=H)


@pytest.fixture(scope="module")
def blur_clip(media: Path) -> Path:
    """4 s at 10 fps of one detailed picture, blurred in every frame except those in [SHARP_FROM, SHARP_TO)."""
    rng = np.random.default_rng(7)
    small = rng.integers(0, 256, size=(H // 8, W // 8, 3), dtype=np.uint8)
    crisp = Image.fromarray(small).resize((W, H), Image.Resampling.NEAREST)
    soft = crisp.filter(ImageFilter.GaussianBlur(6))
    path = media / "blur.mp4"
    fps = 10
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "12"}
        for i in range(4 * fps):
            picture = crisp if SHARP_FROM <= i / fps < SHARP_TO else soft
            frame = av.VideoFrame.from_ndarray(np.asarray(picture), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame.reformat(format="yuv420p")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


def row_diff(a: np.ndarray, b: np.ndarray, top: float, bottom: float) -> float:
    return float(np.abs(a[int(top):int(bottom)] - b[int(top):int(bottom)]).mean())


# --- the cover ------------------------------------------------------------------------------------------------------


def test_cover_is_a_jpeg_of_the_video_size(clip: Path, media: Path, font: Path) -> None:
    result = make_cover(clip, media / "out" / "c_cover.jpg", CoverTitles("上面", "中间的大标题", "下面"), font=font)
    with Image.open(result.path) as image:
        assert image.format == "JPEG"
        assert image.size == (W, H) == (result.width, result.height)
    assert result.titles == ("top", "middle", "bottom")
    assert 0.5 <= result.time_s <= 1.5
    assert not list(result.path.parent.glob(".*tmp"))  # no temporary file left behind


def test_titles_change_their_regions_and_nothing_else(clip: Path, media: Path, font: Path) -> None:
    at = CoverOptions(frame=1.0)
    raw = pixels(make_cover(clip, media / "raw.jpg", CoverTitles(), at, font=None).path)
    titled = pixels(make_cover(clip, media / "titled.jpg",
                               CoverTitles("三分钟学会AI剪辑", "口播一键去废话", "关注我 每天一个技巧"), at,
                               font=font).path)
    for centre in (H / 6, H / 2, 5 * H / 6):  # top, middle and bottom titles
        assert row_diff(raw, titled, centre - 8, centre + 8) > 20, centre
    for top, bottom in ((95, 135), (225, 265), (H - 25, H)):  # between the bands and below the last
        assert row_diff(raw, titled, top, bottom) < 3, (top, bottom)
    # Only the middle title: the top and bottom thirds stay as they were.
    middle = pixels(make_cover(clip, media / "middle.jpg", CoverTitles(middle="只有中间"), at, font=font).path)
    assert row_diff(raw, middle, 0, H / 3 - 10) < 3
    assert row_diff(raw, middle, 2 * H / 3 + 10, H) < 3
    assert row_diff(raw, middle, H / 2 - 8, H / 2 + 8) > 20


def test_no_titles_is_the_plain_frame(clip: Path, media: Path) -> None:
    result = make_cover(clip, media / "plain.jpg", CoverTitles(" ", "", ""), CoverOptions(frame=1.0), font=None)
    assert result.titles == ()
    picture, _, _ = choose_frame(clip, CoverOptions(frame=1.0))
    assert float(np.abs(pixels(result.path) - np.asarray(picture, dtype=np.int16)).mean()) < 3


@pytest.mark.parametrize("title", [
    "这是一个非常非常长的封面标题它必须被自动缩小并且换行才能放得下",
    "A very long English cover title that must wrap onto more than one line to fit",
    "超长" * 60,
])
def test_long_titles_fit_inside_the_image(clip: Path, media: Path, font: Path, title: str) -> None:
    options = CoverOptions(frame=1.0, band_opacity=0.0)
    raw = pixels(make_cover(clip, media / "raw_long.jpg", CoverTitles(), options, font=None).path)
    drawn = pixels(make_cover(clip, media / "long.jpg", CoverTitles(top=title), options, font=font).path)
    edge = int(W * options.margin_ratio / 2)
    assert row_diff(raw[:, :edge], drawn[:, :edge], 0, H) < 3          # left margin untouched
    assert row_diff(raw[:, -edge:], drawn[:, -edge:], 0, H) < 3        # right margin untouched
    assert row_diff(raw, drawn, H / 3 + 5, H) < 3                      # nothing below the top third
    assert row_diff(raw, drawn, H / 6 - 15, H / 6 + 15) > 10           # but the title is there


def test_english_titles_wrap_at_spaces(font: Path) -> None:
    text = "How I cut my talking head videos in half the time"
    block = _fit(text, CoverOptions().middle, 400, 700, font, CoverOptions())
    assert len(block.lines) >= 2
    assert " ".join(block.lines).split() == text.split()  # every word whole, in order
    for line in block.lines:
        left, _, right, _ = block.font.getbbox(line, stroke_width=block.stroke)
        assert right - left <= 400 * 0.9


def test_auto_frame_picks_the_sharp_moment(blur_clip: Path, media: Path) -> None:
    result = make_cover(blur_clip, media / "auto.jpg", CoverTitles(), font=None)
    assert SHARP_FROM <= result.time_s < SHARP_TO, result.time_s
    assert result.sharpness > 0
    # and never the first half second, even if it were the sharpest
    assert result.time_s >= CoverOptions().skip_start_s


def test_auto_frame_only_looks_at_kept_moments(blur_clip: Path, media: Path) -> None:
    # The source's crisp stretch is cut out: the cover must come from what the viewer sees.
    plan = EditPlan(4.0, (Keep(0.0, 1.8), Keep(2.8, 4.0)))
    picture, t, _ = choose_frame(blur_clip, CoverOptions(), plan=plan)
    assert 0 <= t <= plan.output_duration
    source = t if t < 1.8 else t - 1.8 + 2.8
    assert not SHARP_FROM <= source < SHARP_TO
    # Keep the crisp stretch and it is found again, at its output time.
    plan = EditPlan(4.0, (Keep(0.0, 1.0), Keep(1.5, 4.0)))
    _, t, _ = choose_frame(blur_clip, CoverOptions(), plan=plan)
    assert SHARP_FROM <= t + 0.5 < SHARP_TO


def test_exposure_counts_against_a_blown_out_frame() -> None:
    rng = np.random.default_rng(1)
    texture = rng.integers(-12, 12, size=(120, 160), dtype=np.int16)
    mid = av.VideoFrame.from_ndarray(np.clip(128 + texture, 0, 255).astype(np.uint8), format="gray")
    bright = av.VideoFrame.from_ndarray(np.clip(243 + texture, 0, 255).astype(np.uint8), format="gray")
    options = CoverOptions()
    assert _score(mid, options)[0] > 2 * _score(bright, options)[0]
    assert sharpness(np.zeros((10, 10))) == 0.0


def test_fixed_time_and_size_cap(media: Path) -> None:
    big = make_clip(media / "big.mp4", seconds=1.0, width=1920, height=1080, fps=5, audio=False)
    result = make_cover(big, media / "big.jpg", CoverTitles(middle="标题"), CoverOptions(frame=0.4),
                        font=find_cjk_font())
    assert (result.width, result.height) == (1280, 720)
    assert result.time_s == pytest.approx(0.4)
    with Image.open(result.path) as image:
        assert image.size == (1280, 720)


def test_rotated_video_gives_an_upright_cover(media: Path) -> None:
    phone = make_clip(media / "phone.mp4", seconds=1.0, width=320, height=240, rotation=90)
    result = make_cover(phone, media / "phone.jpg", CoverTitles(), font=None)
    assert (result.width, result.height) == (240, 320)


def test_audio_only_file_is_a_clear_error(media: Path) -> None:
    audio = make_clip(media / "voice.m4a", seconds=1.0, video=False)
    with pytest.raises(NoVideoStreamError, match="no video track"):
        make_cover(audio, media / "voice.jpg", CoverTitles(), font=None)


def test_missing_font_is_a_clear_error(clip: Path, media: Path) -> None:
    with pytest.raises(ConfigError, match="font"):
        make_cover(clip, media / "nofont.jpg", CoverTitles(middle="标题"), font=media / "missing.ttc")
    with pytest.raises(ConfigError, match="pipeline.font"):
        make_cover(clip, media / "nofont.jpg", CoverTitles(middle="标题"), font=None)
    assert not (media / "nofont.jpg").exists()


# --- the font -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def latin_font(media: Path) -> Path:
    """A real font without Chinese glyphs: the one Pillow embeds, written to a file."""
    default = ImageFont.load_default()
    data = getattr(default, "font_bytes", None)
    if not data:
        pytest.skip("this Pillow embeds no TrueType default font")
    path = media / "latin-only.ttf"
    path.write_bytes(data)
    return path


def test_a_cjk_font_is_found_and_draws_chinese(font: Path) -> None:
    assert font.is_file() and has_cjk_glyphs(font)
    loaded = load_font(font, 48)
    if "Noto Sans CJK" in loaded.getname()[0]:
        assert loaded.getname()[0].endswith("SC")  # the Simplified Chinese face of the collection


def test_variable_font_is_drawn_heavy(font: Path) -> None:
    thin, heavy = load_font(font, 64, weight=100), load_font(font, 64, weight=900)
    try:
        thin.get_variation_axes()
    except OSError:
        pytest.skip(f"{font.name} is not a variable font")

    def ink(f: ImageFont.FreeTypeFont) -> int:
        image = Image.new("L", (200, 100))
        from PIL import ImageDraw
        ImageDraw.Draw(image).text((10, 10), "中文", font=f, fill=255)
        return int(np.asarray(image).sum())

    assert ink(heavy) > 1.5 * ink(thin)


def test_configured_font_is_used_or_refused(font: Path, latin_font: Path, media: Path) -> None:
    assert find_cjk_font(str(font)) == font
    with pytest.raises(ConfigError, match="no Chinese glyphs"):
        find_cjk_font(str(latin_font))
    with pytest.raises(ConfigError, match="no such file"):
        find_cjk_font(str(media / "nope.otf"))
    assert not has_cjk_glyphs(latin_font)


def test_no_cjk_font_anywhere_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, latin_font: Path) -> None:
    monkeypatch.setattr(fonts, "PACKAGE_FONTS", ())
    monkeypatch.setattr(fonts, "SYSTEM_FONT_GLOBS", (str(latin_font),))
    monkeypatch.setattr(fonts.shutil, "which", lambda _name: None)
    fonts.find_cjk_font.cache_clear()
    try:
        with pytest.raises(ConfigError, match="no CJK font found: install fonts-noto-cjk"):
            find_cjk_font()
    finally:
        fonts.find_cjk_font.cache_clear()
