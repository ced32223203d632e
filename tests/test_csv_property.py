"""Property tests over the letters CSV loader: what a spreadsheet writes is read back exactly,
and a stray quote anywhere is either harmless or refused naming a row, never rows lost."""

from __future__ import annotations

import csv
import io
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from ua_dispatch.errors import InputError
from ua_dispatch.queue.loader import read_rows

HEADER = ["name", "email", "city", "country", "language", "letter", "approved"]
MAX_CHARS = 20_000

# Text as people type it, with what CSV must quote: commas, quotes, non-ASCII (Cyrillic,
# accents, emoji), no control characters. A one-line cell has no line break.
_chars = st.characters(
    codec="utf-8",
    exclude_categories=("Cc", "Cs"),
    include_characters=",\"; '",
)
one_line = st.text(_chars, max_size=30)
# A letter may also hold line breaks (\n, \r\n, blank lines between paragraphs). No "@", so
# that no line of a letter reads like a row (name, address, ...), which the loader refuses.
letter_chars = st.characters(
    codec="utf-8", exclude_categories=("Cc", "Cs"), exclude_characters="@", include_characters=',"'
)
letter = st.lists(st.text(letter_chars, max_size=40), min_size=1, max_size=6).flatmap(
    lambda parts: st.sampled_from(["\n", "\r\n", "\n\n"]).map(lambda nl: nl.join(parts))
)
address = st.builds(
    "{}@{}.org".format,
    st.text(string.ascii_lowercase + string.digits + ".-_", min_size=1, max_size=12),
    st.text(string.ascii_lowercase, min_size=1, max_size=10),
)
row = st.tuples(one_line, address, one_line, one_line, one_line, letter, one_line).map(list)
rows = st.lists(row, min_size=1, max_size=8)


def write(path: Path, data: list[list[str]], *, bom: bool) -> str:
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(HEADER)
    w.writerows(data)
    text = buf.getvalue()
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode("utf-8"))
    return text


def read(path: Path) -> list[list[str]]:
    return [[r[c] for c in HEADER] for _, r in read_rows(path, max_chars=MAX_CHARS)]


_settings = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_settings
@given(data=rows, bom=st.booleans())
def test_rows_read_equal_rows_written(tmp_path: Path, data: list[list[str]], bom: bool) -> None:
    path = tmp_path / "letters.csv"
    write(path, data, bom=bom)
    assert read(path) == data


@_settings
@given(data=rows, where=st.integers(min_value=0), bom=st.booleans())
def test_a_stray_quote_never_loses_rows_silently(
    tmp_path: Path, data: list[list[str]], where: int, bom: bool
) -> None:
    path = tmp_path / "letters.csv"
    text = write(path, data, bom=bom)
    header_end = text.index("\n") + 1
    at = header_end + where % (len(text) - header_end + 1)
    spoilt = text[:at] + '"' + text[at:]
    assume(spoilt != text)
    path.write_bytes(("\ufeff" if bom else "").encode() + spoilt.encode("utf-8"))
    try:
        got = read(path)
    except InputError as exc:
        assert ": row " in str(exc), str(exc)
        event("refused")
        return
    event("read whole")
    # read whole: the same rows, only the cell the quote went into may differ
    assert len(got) == len(data)
    assert sum(a != b for a, b in zip(got, data, strict=True)) <= 1


@pytest.mark.parametrize("bom", [False, True])
def test_a_letter_over_many_paragraphs_reads_back(tmp_path: Path, bom: bool) -> None:
    text = "Dear Ambassador,\n\n" + "\n\n".join(f'Paragraph {i}, with "quotes".' for i in range(50))
    data = [["Ann", "ann@example.org", "York", "UK", "en", text, "yes"]]
    path = tmp_path / "letters.csv"
    write(path, data, bom=bom)
    assert read(path) == data
