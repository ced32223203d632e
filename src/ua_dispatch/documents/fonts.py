"""The typefaces printed documents are set in, and which characters they can print.

Text is set in PT Sans (``fontpkg-pt-sans``, located through ``fontpkg``): drawn for Russian and
Latin alike by ParaType, a sans face whose even strokes survive a fax machine's 200 x 100 dpi
scan better than thin serifs do. A character PT Sans lacks is drawn from the first face of the
fallback list below that has it:

- Noto Sans and Noto Sans for Arabic (and Persian, Urdu), Hebrew, Devanagari, Bengali, Thai and
  the other scripts of South and South-East Asia, the Caucasus and Ethiopia, Noto Sans Symbols
  and the monochrome Noto Emoji, all from PyPI (``manimgx-fonts``, unmodified Noto releases);
- Noto Sans CJK for Chinese, Japanese and Korean from Debian's ``fonts-noto-cjk`` (static
  regular and bold faces; the only CJK package on PyPI is a variable font whose default weight
  is Thin and which takes minutes to instantiate at a usable weight).

Every face is published under the SIL Open Font License 1.1. Nothing here is read before a
document is made: a letter PT Sans prints alone never opens another font file.
"""

from __future__ import annotations

import functools
import importlib.util
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ua_dispatch.errors import ConfigError

FAMILY = "PT Sans"
PACKAGE = "fontpkg-pt-sans"
NOTO_PACKAGE = "manimgx-fonts"
NOTO_MODULE = "manimgx_fonts"
CJK_PACKAGE = "fonts-noto-cjk"
#: where Debian (and distributions that copy its layout) put Noto Sans CJK
CJK_DIRS = (Path("/usr/share/fonts/opentype/noto"), Path("/usr/share/fonts/noto-cjk"))
CJK_REGULAR = "NotoSansCJK-Regular.ttc"
CJK_BOLD = "NotoSansCJK-Bold.ttc"
#: the face of the CJK collection whose glyph shapes a letter in this language expects
#: (Han characters differ in detail between Japan, Korea and China); Simplified Chinese else
CJK_FACE = {"ja": 0, "ko": 1, "zh": 2}
CJK_DEFAULT_FACE = 2

# The fallback faces in the order they are asked for a character: (key, file name). Scripts
# come before symbols and emoji, so that a character two faces share is drawn as text.
_NOTO_FILES = (
    ("noto-sans", "NotoSans[wght].ttf"),
    ("noto-arabic", "NotoSansArabic[wght].ttf"),
    ("noto-hebrew", "NotoSansHebrew[wght].ttf"),
    ("noto-devanagari", "NotoSansDevanagari[wght].ttf"),
    ("noto-bengali", "NotoSansBengali[wght].ttf"),
    ("noto-thai", "NotoSansThai[wght].ttf"),
    ("noto-armenian", "NotoSansArmenian[wght].ttf"),
    ("noto-georgian", "NotoSansGeorgian[wght].ttf"),
    ("noto-ethiopic", "NotoSansEthiopic[wght].ttf"),
    ("noto-gujarati", "NotoSansGujarati[wght].ttf"),
    ("noto-gurmukhi", "NotoSansGurmukhi[wght].ttf"),
    ("noto-kannada", "NotoSansKannada[wght].ttf"),
    ("noto-khmer", "NotoSansKhmer[wght].ttf"),
    ("noto-lao", "NotoSansLao[wght].ttf"),
    ("noto-malayalam", "NotoSansMalayalam[wght].ttf"),
    ("noto-myanmar", "NotoSansMyanmar[wght].ttf"),
    ("noto-oriya", "NotoSansOriya[wght].ttf"),
    ("noto-sinhala", "NotoSansSinhala[wght].ttf"),
    ("noto-tamil", "NotoSansTamil[wght].ttf"),
    ("noto-telugu", "NotoSansTelugu[wght].ttf"),
)
_SYMBOL_FILES = (
    ("noto-symbols", "NotoSansSymbols[wght].ttf"),
    ("noto-emoji", "NotoEmoji[wght].ttf"),
)


@dataclass(frozen=True)
class FontFiles:
    regular: Path
    bold: Path


@dataclass(frozen=True)
class Face:
    """A fallback typeface: its file (and face number in a collection), and a bold file when
    the family has one (the variable Noto faces are drawn at their default, regular weight)."""

    key: str
    path: Path
    index: int = 0
    bold: Path | None = None


@functools.cache
def font_files() -> FontFiles:
    """Paths of the regular and bold faces; ConfigError when the font package is missing."""
    try:
        import fontpkg  # found only when a PDF is made: start-up stays fast

        regular = Path(fontpkg.path(FAMILY))
        bold = Path(fontpkg.path(FAMILY, weight=700))
    except (ImportError, LookupError) as exc:
        raise ConfigError(
            f"the {FAMILY} font is not installed ({exc}); reinstall ua-dispatch, which "
            f"depends on {PACKAGE}"
        ) from None
    for path in (regular, bold):
        if not path.is_file():
            raise ConfigError(f"font file {path} is missing; reinstall {PACKAGE}")
    return FontFiles(regular=regular, bold=bold)


@functools.cache
def printable_code_points() -> frozenset[int]:
    """Code points that both PT Sans faces can draw."""
    from fontTools.ttLib import TTFont  # read only when a PDF is checked or made

    files = font_files()
    sets = []
    for path in (files.regular, files.bold):
        with TTFont(path, lazy=True) as font:
            sets.append(frozenset(font.getBestCmap()))
    return sets[0] & sets[1]


@functools.cache
def advances() -> dict[int, float]:
    """Each printable code point's advance width in ems, the wider of the two faces."""
    from fontTools.ttLib import TTFont  # read only when a PDF is checked or made

    files = font_files()
    widths: dict[int, float] = {}
    for path in (files.regular, files.bold):
        with TTFont(path, lazy=True) as font:
            metrics = font["hmtx"].metrics
            per_em = float(font["head"].unitsPerEm)
            for cp, glyph in font.getBestCmap().items():
                width = metrics[glyph][0] / per_em
                widths[cp] = max(width, widths.get(cp, 0.0))
    return widths


# --- the fallback faces ---------------------------------------------------------------------


@functools.cache
def _noto_dir() -> Path | None:
    # found without importing the package (nothing to run there, only files to read)
    spec = importlib.util.find_spec(NOTO_MODULE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@functools.cache
def _cjk_files() -> tuple[Path, Path | None] | None:
    for folder in CJK_DIRS:
        regular = folder / CJK_REGULAR
        if regular.is_file():
            bold = folder / CJK_BOLD
            return regular, bold if bold.is_file() else None
    return None


@functools.cache
def fallback_faces(language: str) -> tuple[Face, ...]:
    """The fallback faces installed on this machine, in the order they are asked."""
    faces: list[Face] = []
    noto = _noto_dir()
    if noto is not None:
        faces += [Face(key, noto / name) for key, name in _NOTO_FILES if (noto / name).is_file()]
    cjk = _cjk_files()
    if cjk is not None:
        index = CJK_FACE.get(language, CJK_DEFAULT_FACE)
        faces.append(Face("noto-cjk", cjk[0], index=index, bold=cjk[1]))
    if noto is not None:
        faces += [Face(key, noto / name) for key, name in _SYMBOL_FILES if (noto / name).is_file()]
    return tuple(faces)


def cjk_installed() -> bool:
    """True when Noto Sans CJK (Chinese, Japanese, Korean) is on this machine."""
    return _cjk_files() is not None


def missing_sources() -> list[str]:
    """What to install for the fallback faces this machine lacks, in words."""
    missing = []
    if _noto_dir() is None:
        missing.append(f"the {NOTO_PACKAGE} package (pip)")
    if _cjk_files() is None:
        missing.append(f"Debian's {CJK_PACKAGE} (apt)")
    return missing


@functools.cache
def face_cmap(face: Face) -> frozenset[int]:
    """Code points ``face`` draws (with its bold file, when it has one, drawing the same)."""
    from fontTools.ttLib import TTFont  # read only when a PDF is checked or made

    try:
        with TTFont(face.path, lazy=True, fontNumber=face.index) as font:
            return frozenset(font.getBestCmap())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the font {face.path}: {exc}") from None


@functools.cache
def face_advances(face: Face) -> dict[int, float]:
    """Each code point's advance width in ems in ``face``."""
    from fontTools.ttLib import TTFont  # read only when a PDF is checked or made

    with TTFont(face.path, lazy=True, fontNumber=face.index) as font:
        metrics = font["hmtx"].metrics
        per_em = float(font["head"].unitsPerEm)
        return {cp: metrics[glyph][0] / per_em for cp, glyph in font.getBestCmap().items()}


def ignorable(char: str) -> bool:
    """Characters that are never drawn themselves: format controls (zero-width joiners, bidi
    marks, soft hyphen) and variation selectors. One no face has is left out of the page."""
    cp = ord(char)
    return (
        unicodedata.category(char) == "Cf"
        or 0xFE00 <= cp <= 0xFE0F
        or 0xE0100 <= cp <= 0xE01EF
        or 0x180B <= cp <= 0x180F
    )


@dataclass(frozen=True)
class Coverage:
    """Which fallback faces a text needs, and which of its characters no face can draw."""

    faces: tuple[Face, ...]
    #: characters no installed face has, in order of first appearance (ignorable ones too)
    missing: tuple[str, ...]


def coverage(chars: Iterable[str], language: str) -> Coverage:
    """The faces, in fallback order, that draw the characters PT Sans lacks among ``chars``."""
    base = printable_code_points()
    wanted = {ord(c): None for c in chars if c not in "\n " and ord(c) not in base}
    if not wanted:
        return Coverage((), ())
    used: list[Face] = []
    for face in fallback_faces(language):
        cmap = face_cmap(face)
        found = [cp for cp in wanted if cp in cmap]
        if found:
            used.append(face)
            for cp in found:
                del wanted[cp]
        if not wanted:
            break
    return Coverage(tuple(used), tuple(map(chr, wanted)))
