"""Finding and loading a font that can draw Chinese, for cover titles and burned-in subtitles.

Order of search: the configured path (``pipeline.font``), then a font shipped by a PyPI package (``make setup``
installs ``manimgx-fonts-cjk``: Noto Sans CJK, SIL OFL 1.1, one variable-weight collection), then the system's fonts
(well-known paths, then ``fc-list :lang=zh``). A candidate counts only if it really has glyphs for 中文: many fonts
load fine and draw every Chinese character as the same empty box.
"""

from __future__ import annotations

import functools
import glob
import importlib.util
import logging
import os
import shutil
import subprocess
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from aicut.errors import ConfigError

logger = logging.getLogger(__name__)

# Fonts shipped inside PyPI packages: (import name, file inside the package). The first is a project dependency.
PACKAGE_FONTS: tuple[tuple[str, str], ...] = (
    ("manimgx_fonts_cjk", "NotoSansCJK-VF.otf.ttc"),
    ("noto_cjk_sans_otc", "NotoSansCJK-Regular.ttc"),
)

# Well-known system locations, best first: bold faces first because cover titles are bold.
SYSTEM_FONT_GLOBS: tuple[str, ...] = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",            # Debian/Ubuntu fonts-noto-cjk
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Black.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK*.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK*.ttc",                     # Arch, Fedora
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK*.ttc",
    "/usr/share/fonts/opentype/source-han-sans/SourceHanSans*.ttc",
    "/usr/share/fonts/adobe-source-han-sans/SourceHanSans*.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",                 # Debian fonts-wqy-microhei
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/wenquanyi/*/*.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/System/Library/Fonts/PingFang.ttc",                             # macOS
    "/System/Library/Fonts/STHeiti Medium.ttc",
    "/Library/Fonts/Arial Unicode.ttf",
    "C:/Windows/Fonts/msyhbd.ttc",                                    # Windows: Microsoft YaHei Bold
    "C:/Windows/Fonts/msyh.ttc",
    "C:/Windows/Fonts/simhei.ttf",
)

_PROBE_TEXT = "中文"
_MISSING = "\U0010fffd"     # a private-use code point no real font maps: renders as the font's .notdef glyph
_MAX_FACES = 16             # more faces than any CJK collection holds; stops a broken file looping
_HINT = ("install fonts-noto-cjk (apt) or the Python package manimgx-fonts-cjk (make setup does), "
         "or set pipeline.font in machines.yaml to a .ttf/.otf/.ttc that has Chinese glyphs")


def _render(font: ImageFont.FreeTypeFont, text: str) -> bytes:
    size = int(font.size)
    image = Image.new("L", (size * (len(text) + 1), size * 2))
    ImageDraw.Draw(image).text((size // 2, size // 2), text, font=font, fill=255)
    return image.tobytes()


def _face_has_cjk(font: ImageFont.FreeTypeFont) -> bool:
    # A face without the glyphs draws each character as .notdef: the same box as a code point nobody maps, or nothing.
    missing = _render(font, _MISSING)
    for ch in _PROBE_TEXT:
        drawn = _render(font, ch)
        if not any(drawn) or drawn == missing:
            return False
    return True


def _faces(path: Path) -> list[ImageFont.FreeTypeFont]:
    """Every face in ``path`` (one for .ttf/.otf, several for a .ttc collection), at a probing size."""
    faces: list[ImageFont.FreeTypeFont] = []
    for index in range(_MAX_FACES):
        try:
            faces.append(ImageFont.truetype(str(path), 32, index=index))
        except OSError:  # past the last face of a collection, or not a font at all
            break
    return faces


@functools.lru_cache(maxsize=64)
def _cjk_face_index(path: Path, prefer: str) -> int | None:
    """Index of the face to use in ``path``: one whose family names ``prefer`` (SC: Simplified Chinese) if any has
    Chinese glyphs, else the first face that has them; None when none has."""
    good: list[tuple[int, str]] = []
    for index, face in enumerate(_faces(path)):
        if _face_has_cjk(face):
            family = face.getname()[0] or ""
            good.append((index, family))
    if not good:
        return None
    # Collections such as Noto Sans CJK hold JP, KR, SC, TC and HK faces; their Chinese glyph shapes differ, and the
    # forum writes Simplified Chinese, so the SC face is the right one. JP comes first in the file, hence the search.
    for index, family in good:
        if prefer and prefer.lower() in family.lower().split():
            return index
    return good[0][0]


def has_cjk_glyphs(path: Path) -> bool:
    """Whether some face in the font file at ``path`` draws 中文 with real glyphs."""
    path = Path(path)
    return path.is_file() and _cjk_face_index(path.resolve(), "SC") is not None


def _package_fonts() -> list[Path]:
    found: list[Path] = []
    for module, filename in PACKAGE_FONTS:
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            continue
        # find_spec does not import the package: its location is enough to find the font beside it.
        for folder in (spec.submodule_search_locations or []) if spec else []:
            candidate = Path(folder) / filename
            if candidate.is_file():
                found.append(candidate)
    return found


def _system_fonts() -> list[Path]:
    found: list[Path] = []
    for pattern in SYSTEM_FONT_GLOBS:
        found.extend(Path(p) for p in sorted(glob.glob(pattern)))
    fc_list = shutil.which("fc-list")
    if fc_list:
        try:
            out = subprocess.run([fc_list, ":lang=zh", "file"], capture_output=True, text=True, timeout=10,
                                 check=False).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            logger.debug("fc-list failed: %s", exc)
            out = ""
        # fc-list prints "path: " per line; bold faces first, as for the known paths.
        paths = sorted({line.split(":")[0].strip() for line in out.splitlines() if line.strip()},
                       key=lambda p: ("bold" not in p.lower() and "black" not in p.lower(), p))
        found.extend(Path(p) for p in paths)
    return found


@functools.lru_cache(maxsize=8)
def find_cjk_font(configured: str = "") -> Path:
    """The font file to draw Chinese with: ``configured`` if set (it must work), else the best one installed."""
    if configured:
        path = Path(os.path.expanduser(configured))
        if not path.is_file():
            raise ConfigError(f"pipeline.font is {configured!r}, but there is no such file; {_HINT}")
        if not has_cjk_glyphs(path):
            raise ConfigError(f"pipeline.font {configured!r} has no Chinese glyphs (中文 draws as empty boxes); "
                              f"{_HINT}")
        return path
    seen: set[Path] = set()
    for candidate in [*_package_fonts(), *_system_fonts()]:
        resolved = candidate.resolve()
        if resolved in seen:
            continue
        seen.add(resolved)
        if has_cjk_glyphs(resolved):
            logger.info("CJK font: %s", resolved)
            return resolved
        logger.debug("font %s has no Chinese glyphs; skipped", resolved)
    raise ConfigError(f"no CJK font found: {_HINT}")


def load_font(path: Path, size: int, *, weight: int = 700, prefer: str = "SC") -> ImageFont.FreeTypeFont:
    """Load ``path`` at ``size`` px: the Chinese face of a collection, at ``weight`` if the font is variable."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"font file {str(path)!r} does not exist; {_HINT}")
    index = _cjk_face_index(path.resolve(), prefer)
    if index is None:
        raise ConfigError(f"font {str(path)!r} has no Chinese glyphs; {_HINT}")
    font = ImageFont.truetype(str(path), max(1, int(size)), index=index)
    _set_weight(font, weight)
    return font


def _number(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) else 0.0


def _set_weight(font: ImageFont.FreeTypeFont, weight: int) -> None:
    # Variable fonts start at their default instance, which for Noto Sans CJK VF is Thin: set the weight axis.
    try:
        axes = font.get_variation_axes()
    except OSError:  # a static font: its weight is what it is
        return
    values: list[float] = []
    for axis in axes:
        raw = axis.get("name", b"")
        name = raw.decode("ascii", "replace") if isinstance(raw, bytes) else str(raw)
        low, high, default = (_number(axis.get(key)) for key in ("minimum", "maximum", "default"))
        values.append(min(max(float(weight), low), high) if name.lower() in ("weight", "wght") else default)
    try:
        font.set_variation_by_axes(values)
    except OSError as exc:  # an odd font; drawing at its default weight is still drawing
        logger.debug("could not set weight %s on %s: %s", weight, font.path, exc)
