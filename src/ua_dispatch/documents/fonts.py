"""The typeface printed documents are set in, and which characters it can print.

The faces come from PyPI (``fontpkg-pt-sans``, located through ``fontpkg``), so a fresh checkout
needs nothing beyond ``pip install``. PT Sans was drawn for Russian and Latin alike by ParaType
and is published under the SIL Open Font License 1.1. A sans face keeps its strokes even, which
survives a fax machine's 200 x 100 dpi scan better than thin serifs do.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from ua_dispatch.errors import ConfigError

FAMILY = "PT Sans"
PACKAGE = "fontpkg-pt-sans"


@dataclass(frozen=True)
class FontFiles:
    regular: Path
    bold: Path


@functools.cache
def font_files() -> FontFiles:
    """Paths of the regular and bold faces; ConfigError when the font package is missing."""
    try:
        import fontpkg

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
    """Code points that both faces can draw."""
    from fontTools.ttLib import TTFont

    files = font_files()
    sets = []
    for path in (files.regular, files.bold):
        with TTFont(path, lazy=True) as font:
            sets.append(frozenset(font.getBestCmap()))
    return sets[0] & sets[1]


@functools.cache
def advances() -> dict[int, float]:
    """Each printable code point's advance width in ems, the wider of the two faces."""
    from fontTools.ttLib import TTFont

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
