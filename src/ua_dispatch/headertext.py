"""Text that ends up in a mail header: a supporter's name and place, an official's name, the
campaign's subject, the organisation's sender name.

One rule, applied where such text comes in (the command line, a CSV row, a campaign file,
settings) and again when a message is built:

- one line: no control characters (CR, LF, NUL, tab, the C1 range), no Unicode line or
  paragraph separator, no unpaired surrogate (bytes that were not UTF-8);
- no ``=?``: mail software decodes ``=?charset?q?...?=`` (an RFC 2047 encoded word) wherever
  it finds one in a header, even between quotes, so such text would be read as something else
  than what was written (a line break and a new header, a second address). No one's name
  contains it, so it is refused rather than sent;
- runs of whitespace become one space, as a mail reader shows them anyway.
"""

from __future__ import annotations

import re

# Cc (C0, DEL, C1), Zl, Zp and Cs
_NOT_ONE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
ENCODED_WORD_OPENER = "=?"


def header_text(value: str) -> str:
    """``value`` with whitespace runs made single spaces; ValueError if a header cannot carry it."""
    bad = _NOT_ONE_LINE.search(value)
    if bad:
        char = ord(bad.group())
        if 0xD800 <= char <= 0xDFFF:
            kind = "an unpaired surrogate (bytes that were not UTF-8)"
        elif char in (0x2028, 0x2029):
            kind = "a line or paragraph separator"
        else:
            kind = "a control character"
        raise ValueError(f"contains {kind} (U+{char:04X}); it must be one line of text")
    if ENCODED_WORD_OPENER in value:
        raise ValueError("contains '=?', which mail software reads as the start of an encoded word")
    return " ".join(value.split())
