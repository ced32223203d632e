"""``queue add``: a CSV of approved letters into the outbox, all of it or nothing.

Columns: name, email, city, country, language, letter, letter_file, approved. ``letter`` is
always the letter's text; ``letter_file`` is the path of a letter file inside the CSV's folder.
Exactly one of the two is filled in on each row (a CSV may have only one of the two columns).
Rows whose ``approved`` is no/false/0/empty are reported and skipped.

The file is read row by row inside one transaction: the first bad row (missing column, bad
address, a byte that is not UTF-8, a quote that is never closed, a letter the fax cannot print,
...) is named with its field, the transaction is rolled back and nothing from the file is queued.

Reading is bounded: the file must be a regular file of at most ``CSV_MAX_BYTES``, no cell may
be longer than a letter can be (``letter_max_chars`` UTF-8 characters of 4 bytes) and no line
longer than that and 64 KiB; an overlong cell is named by its row and column.

A stray quote must not swallow rows unnoticed. The CSV is parsed in strict mode (a quote inside
a quoted cell must be doubled or end the cell), and a row is refused when the file ends inside a
quoted cell, when it has more or fewer cells than the header has columns, when a column the
loader reads other than ``letter`` spans lines, or when a cell spans a line that reads like a
row of its own (as many cells as reach the email column, with an address there). A letter with
paragraphs, quoted as any spreadsheet writes it, passes all of these.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ua_dispatch.campaign import Campaign
from ua_dispatch.channels import get_channel, lookup
from ua_dispatch.delivery import BuildEnv
from ua_dispatch.errors import InputError
from ua_dispatch.files import CSV_MAX_BYTES, letter_max_bytes, open_capped, read_capped
from ua_dispatch.letter import make_supporter, parse_letter, render_letter
from ua_dispatch.outbox.records import NewDelivery, utcnow
from ua_dispatch.outbox.store import Outbox
from ua_dispatch.plan import Appeal, Delivery, plan_deliveries
from ua_dispatch.settings import Settings

#: columns every CSV has, and the two ways of giving the letter (at least one of them)
REQUIRED = ("name", "email", "city", "country", "language", "approved")
LETTER_COLUMNS = ("letter", "letter_file")
COLUMNS = ("name", "email", "city", "country", "language", "letter", "letter_file", "approved")
_YES = {"yes", "y", "true", "1", "x", "approved"}
_NO = {"no", "n", "false", "0", ""}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_BATCH = 2000
#: what a line may hold besides a letter: the other cells of its row
_ROW_EXTRA = 64 * 1024
# bytes that are not UTF-8, as the "surrogateescape" error handler leaves them
_UNDECODED = re.compile("[\udc80-\udcff]")
# a cell that holds an address and nothing else
_ADDRESS = re.compile(r"[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\"]+")
# a one-line ``letter`` cell that reads as a file's name rather than a letter
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_FILE_NAME = re.compile(r"\S*[/\\]\S*|.*\.(?:txt|md|text|rtf|docx?|odt|pdf|html?)", re.I)


def parse_duration(value: str) -> dt.timedelta:
    """``90s``, ``30m``, ``6h``, ``2d``."""
    m = _DURATION.match(value)
    if not m:
        raise InputError(
            f"{value!r} is not a duration such as 90s, 30m, 6h or 2d", source="--spread"
        )
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    return dt.timedelta(seconds=float(m.group(1)) * unit)


def parse_at(value: str) -> dt.datetime:
    """An ISO time; without a zone it is taken as UTC. Returned as naive UTC."""
    try:
        when = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise InputError(
            f"{value!r} is not an ISO time such as 2026-12-01T09:00+01:00", source="--at"
        ) from None
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC).replace(tzinfo=None)
    return when


def check_still_open(
    campaign: Campaign,
    source: Path | str,
    at: dt.datetime | None = None,
    spread: dt.timedelta | None = None,
) -> None:
    """Refuse to queue letters the worker would only expire: the action has closed, or the
    schedule (``--at``, ``--spread``) runs past its act-until day (UTC, as the worker counts)."""
    closes = campaign.act_until.isoformat()
    today = utcnow().date()
    if campaign.closed(today):
        raise InputError(
            f"the action closed on {closes}; the worker would expire every letter, so nothing "
            "is queued",
            source=source,
            field="act_until",
        )
    last = (at or utcnow()) + (spread or dt.timedelta())
    if campaign.act_until < last.date():
        raise InputError(
            f"letters scheduled until {last.date().isoformat()} (--at/--spread) would be "
            f"expired after the action closes on {closes}; nothing is queued",
            source=source,
            field="act_until",
        )


@dataclass
class AddResult:
    rows: int = 0
    queued: int = 0
    #: new deliveries held at once: their official is paused, or their address kept bouncing
    held: int = 0
    already: int = 0
    skipped_rows: list[tuple[int, str]] = field(default_factory=list)
    #: why a way of writing was left out ("president has no email address") -> letters
    no_address: dict[str, int] = field(default_factory=dict)
    #: faxes due outside the recipient's office hours, moved to when the office opens
    waiting_for_office: int = 0
    #: target slugs whose fax number spans several time zones and no time_zone is given
    guessed_zones: set[str] = field(default_factory=set)


class _Lines:
    """The CSV's lines for :mod:`csv`, each read with a cap, keeping the current record's lines
    so that a refusal can say where a quote opened."""

    def __init__(self, text: io.TextIOWrapper, line_cap: int):
        self._text = text
        self._cap = line_cap
        self.number = 0  # lines read so far
        self.record: list[str] = []
        self._kept = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = self._text.readline(self._cap)
        if not line:
            raise StopIteration
        self.number += 1
        if self._kept < 2 * self._cap:  # enough to find where a quote opened
            self.record.append(line)
            self._kept += len(line)
        if len(line) >= self._cap and not line.endswith("\n"):
            raise _TooLong
        return line

    def start_record(self) -> int:
        """Forget the last record; returns the line the next one starts on."""
        self.record = []
        self._kept = 0
        return self.number + 1


class _TooLong(Exception):
    """A line longer than the cap: it is not read on."""


@dataclass(frozen=True)
class _Cell:
    column: int
    line: int  # the line it starts on, from 0
    length: int  # characters, quotes included
    broken: bool  # a quoted cell whose closing quote is followed by more text


def _cells(text: str) -> Iterator[_Cell]:
    """The cells of a record's text, as :mod:`csv` reads them: a quote opens a quoted cell
    only at the start of a cell, and ``""`` inside one is a quote. The last cell comes last
    even when it is unfinished."""
    column = line = start_line = start = 0
    quoted = broken = False
    at_start = True
    i = 0
    while i < len(text):
        c = text[i]
        if quoted:
            if c == '"':
                if text.startswith('"', i + 1):
                    i += 2
                    continue
                quoted = False
                broken = broken or (i + 1 < len(text) and text[i + 1] not in ",\r\n")
            elif c == "\n":
                line += 1
        elif c == ",":
            yield _Cell(column, start_line, i - start, broken)
            column += 1
            at_start, broken, start, start_line = True, False, i + 1, line
        elif c == "\n":
            line += 1
        elif at_start:
            quoted = c == '"'
            at_start = False
        i += 1
    yield _Cell(column, start_line, len(text) - start, broken)


def _failed_cell(text: str, *, longer_than: int | None = None) -> _Cell:
    """The cell :mod:`csv` stopped in: the first longer than ``longer_than`` characters, or
    else the first quoted cell that goes on after its closing quote, or else the last."""
    cells = list(_cells(text))
    for cell in cells:
        if longer_than is not None and cell.length > longer_than:
            return cell
        if longer_than is None and cell.broken:
            return cell
    return cells[-1]


@contextlib.contextmanager
def _cell_cap(limit: int) -> Iterator[None]:
    """:mod:`csv` caps cells process-wide only: set the cap while one file is read."""
    old = csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(old)


def read_rows(path: Path, *, max_chars: int) -> Iterator[tuple[int, dict[str, str]]]:
    """The data rows of a letters CSV: (row number from 1, {column: cell}) for the known
    columns the header has, blank rows left out. Raises :class:`InputError` naming the row and,
    where it can, the field."""
    cell_cap = letter_max_bytes(max_chars)
    fh, _ = open_capped(path, CSV_MAX_BYTES, what="letters file")
    with fh, _cell_cap(cell_cap):
        text = io.TextIOWrapper(fh, encoding="utf-8-sig", errors="surrogateescape", newline="")
        # a line may hold a whole letter and the other cells of its row
        lines = _Lines(text, line_cap=cell_cap + _ROW_EXTRA)
        reader = csv.reader(lines, strict=True)
        n = 0
        names: list[str] = []
        known: list[tuple[int, str]] = []
        while True:
            first_line = lines.start_record()
            try:
                cells = next(reader)
            except StopIteration:
                break
            except (csv.Error, _TooLong) as exc:
                raise _csv_error(exc, path, n, names, first_line, lines, max_chars) from None
            if not names:
                names = _header(cells, path)
                known = [(i, c) for i, c in enumerate(names) if c in COLUMNS]
                continue
            n += 1
            if not any(c.strip() for c in cells):
                continue
            spans = lines.number > first_line
            yield n, _row(cells, names, known, f"{path}: row {n}", first_line, spans)
        if not names:
            raise InputError("empty file; expected a header row", source=path)


def _header(cells: list[str], path: Path) -> list[str]:
    names = [h.strip().lower() for h in cells]
    missing = [c for c in REQUIRED if c not in names]
    if not any(c in names for c in LETTER_COLUMNS):
        missing.append("letter (or letter_file)")
    if missing:
        raise InputError(
            f"missing column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}",
            source=path,
            field="header",
        )
    return names


def _csv_error(
    exc: csv.Error | _TooLong,
    path: Path,
    n: int,
    names: list[str],
    first_line: int,
    lines: _Lines,
    max_chars: int,
) -> InputError:
    """One line for a record :mod:`csv` refused: the row, the cell and the line it opened on."""
    row = n + 1 if names else None
    where = f"{path}: row {row}" if row else f"{path}: header"
    message = str(exc)
    # a line longer than its cap holds a cell longer than a letter (the cap leaves room for
    # the other cells)
    too_long = isinstance(exc, _TooLong) or "field larger than field limit" in message
    cap = letter_max_bytes(max_chars)
    cell = _failed_cell("".join(lines.record), longer_than=cap if too_long else None)
    field = names[cell.column] if cell.column < len(names) else None
    opened = first_line + cell.line
    if too_long:
        return InputError(
            f"the cell starting on line {opened} is over {cap} characters, more than any "
            f"letter may take (UA_DISPATCH_LETTER_MAX_CHARS is {max_chars})",
            source=where,
            field=field,
        )
    if "unexpected end of data" in message:
        return InputError(
            f"the quote opened on line {opened} is never closed (lines {opened} to "
            f"{lines.number}, the end of the file, would be one cell)",
            source=where,
            field=field,
        )
    return InputError(
        f"not valid CSV on line {lines.number} ({message}): the quoted cell that starts on "
        f'line {opened} ends and goes on; a quote inside a quoted cell is written ""',
        source=where,
        field=field,
    )


def _row(
    cells: list[str],
    names: list[str],
    known: list[tuple[int, str]],
    where: str,
    first_line: int,
    spans: bool,
) -> dict[str, str]:
    """One record's known cells, checked: UTF-8, line breaks only in a letter, as many cells as
    the header has columns. ``known`` is (index, column) of the columns read; ``spans`` says
    the record ran over more than one line."""
    if len(cells) < len(names) or (
        len(cells) > len(names) and any(c.strip() for c in cells[len(names) :])
    ):
        if spans:  # a quote left open is the likelier story: say so by the cell it opened in
            _check_lines(cells, names, where, first_line)
        raise InputError(
            f"{len(cells)} cells on a row, but the header has {len(names)} columns "
            "(a stray quote or comma?)",
            source=where,
        )
    row = {}
    for i, col in known:
        value = cells[i]
        # (isascii() is far cheaper than the search, and most cells are ASCII)
        bad = None if value.isascii() else _UNDECODED.search(value)
        if bad is not None:
            raise InputError(
                f"not UTF-8 text (invalid byte at character {bad.start() + 1})",
                source=where,
                field=col,
            )
        row[col] = value
    if spans:
        _check_lines(cells, names, where, first_line)
    for col in COLUMNS:
        row.setdefault(col, "")
    return row


def _check_lines(cells: list[str], names: list[str], where: str, first_line: int) -> None:
    line = first_line
    for i, value in enumerate(cells):
        if i < len(names) and ("\n" in value or "\r" in value):
            _check_spanning(value, names[i], names, where, line)
        line += value.count("\n")


def _check_spanning(value: str, col: str, names: list[str], where: str, line: int) -> None:
    """A cell over several lines: only a letter's text (or a column the loader does not read)
    may, and not over what reads like rows."""
    if col in COLUMNS and col != "letter":
        raise InputError(
            f"the cell starting on line {line} runs over several lines; a quote opened there "
            "may never have been closed",
            source=where,
            field=col,
        )
    email = names.index("email")
    needed = max(email + 1, min(len(names), names.index(col) + 1))
    for k, text in enumerate(_LINE_BREAK.split(value)[1:], start=1):
        if text.count(",") + 1 < needed:
            continue
        cells = next(csv.reader([text]), [])
        if len(cells) >= needed and _ADDRESS.fullmatch(cells[email].strip()):
            raise InputError(
                f"the quote opened on line {line} is not closed before line {line + k}, which "
                "reads like a row of its own; close the quote, or write a quote inside the "
                'letter as ""',
                source=where,
                field=col,
            )


def _approved(value: str, where: str) -> bool:
    v = value.strip().lower()
    if v in _YES:
        return True
    if v in _NO:
        return False
    raise InputError(f"{value!r} is neither yes nor no", source=where, field="approved")


def _letter_bytes(
    row: dict[str, str], csv_dir: Path, where: str, max_chars: int
) -> tuple[bytes, str]:
    """The letter's bytes and a source name: the ``letter`` text, or the ``letter_file``."""
    text, name = row["letter"], row["letter_file"].strip()
    if name and text.strip():
        raise InputError(
            "give the letter as text (letter) or as a file (letter_file), not both",
            source=where,
            field="letter_file",
        )
    if name:
        return _read_letter_file(name, csv_dir, where, max_chars), f"{where}: letter_file {name}"
    v = text.strip()
    if not v:
        raise InputError(
            "no letter: fill in letter (its text) or letter_file (a letter file's path)",
            source=where,
            field="letter",
        )
    if v and "\n" not in v and (_FILE_NAME.fullmatch(v) or _inside(csv_dir, v) is not None):
        raise InputError(
            f"{v!r} reads like a file name, not a letter; give a letter file's path in the "
            "letter_file column (letter holds the text itself)",
            source=where,
            field="letter",
        )
    return text.encode("utf-8"), f"{where}: letter"


def _inside(folder: Path, name: str) -> Path | None:
    """``folder/name`` with every symlink resolved, when it exists and stays inside
    ``folder``; None otherwise."""
    if not name or "\x00" in name or Path(name).is_absolute():
        return None
    base = folder.resolve()
    try:
        found = (base / name).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    return found if found.is_relative_to(base) else None


def _read_letter_file(name: str, csv_dir: Path, where: str, max_chars: int) -> bytes:
    """A letter file inside the CSV's folder (symlinks resolved), a regular file within the
    letter size; anything else is an error of this row."""
    if "\x00" in name or Path(name).is_absolute() or "\n" in name:
        raise InputError(
            f"{name!r} must be a path relative to the CSV's folder",
            source=where,
            field="letter_file",
        )
    base = csv_dir.resolve()
    try:
        found = (base / name).resolve(strict=True)
    except FileNotFoundError:
        raise InputError(
            f"{name} not found (paths are relative to the CSV's folder {base})",
            source=where,
            field="letter_file",
        ) from None
    except (OSError, RuntimeError) as exc:
        raise InputError(f"{name}: cannot read: {exc}", source=where, field="letter_file") from None
    if not found.is_relative_to(base):
        raise InputError(
            f"{name} is outside the CSV's folder {base}; letter files must be inside it",
            source=where,
            field="letter_file",
        )
    try:
        return read_capped(
            found,
            letter_max_bytes(max_chars),
            what=f"letter file {name}",
            limit_text=f"a letter is at most {max_chars} characters",
        )
    except InputError as exc:
        raise InputError(exc.detail, source=where, field="letter_file") from None


def _check_letter(
    appeal: Appeal,
    deliveries: list[Delivery],
    settings: Settings,
    where: str,
    now: dt.datetime,
    checked: set[tuple[str, str]],
) -> None:
    """Refuse now what a channel's builder would refuse when the worker gets to the letter:
    a letter with nothing but a salutation and a closing, and what each channel checks of a
    queued letter (:meth:`Channel.check_queued`: for a fax, text the PDF cannot print and the
    page limit).

    What a document prints of a row (letter, name, place) is the same for every official, and
    what it prints of an official the same for every row: so each row's text is checked for one
    official, and each official's (``checked`` holds those done) once in the file."""
    letter_field = (
        "letter_file" if appeal.letter.source.startswith(f"{where}: letter_file") else "letter"
    )
    usable = [d for d in deliveries if d.target is not None and d.to is not None]
    current: Delivery | None = None
    try:
        if usable:
            render_letter(appeal.letter, appeal.supporter, usable[0].the_target)
        env = BuildEnv(settings=settings, now=now)
        seen_in_row: set[str] = set()
        for current in usable:
            pair = (current.channel, current.slug)
            text = current.channel not in seen_in_row or pair not in checked
            get_channel(current.channel).check_queued(appeal, current, env, text=text)
            seen_in_row.add(current.channel)
            checked.add(pair)
    except InputError as exc:
        if exc.source == appeal.letter.source:
            field = letter_field
        elif exc.source == "supporter":
            field = "name/city/country"
        else:
            field = None
        why = f" (the {current.channel} to {current.slug})" if current is not None else ""
        raise InputError(exc.detail + why, source=where, field=field) from None


def _count_approved(path: Path, max_chars: int) -> int:
    """The approved rows, over which ``--spread`` spaces the letters (a row left out takes
    no place in the spread); a bad value counts, the reading pass refuses it."""
    n = 0
    for row_no, row in read_rows(path, max_chars=max_chars):
        try:
            n += _approved(row["approved"], f"{path}: row {row_no}")
        except InputError:
            n += 1
    return n


async def add_letters(
    outbox: Outbox,
    campaign: Campaign,
    csv_path: Path,
    channels: list[str],
    *,
    settings: Settings,
    at: dt.datetime | None = None,
    spread: dt.timedelta | None = None,
) -> AddResult:
    result = AddResult()
    planned = [0]
    added, held = await outbox.add_deliveries(
        campaign, _batches(campaign, csv_path, channels, settings, at, spread, result, planned)
    )
    result.queued = added - held
    result.held = held
    result.already = planned[0] - added
    return result


def _batches(
    campaign: Campaign,
    csv_path: Path,
    channels: list[str],
    settings: Settings,
    at: dt.datetime | None,
    spread: dt.timedelta | None,
    result: AddResult,
    planned: list[int],
) -> Iterator[list[NewDelivery]]:
    """The CSV's deliveries in batches, counted into ``result`` and ``planned[0]`` as they
    are read; a bad row raises, and the outbox rolls the whole file back."""
    start = at or utcnow()
    total = _count_approved(csv_path, settings.letter_max_chars) if spread else 0
    csv_dir = csv_path.parent
    now = utcnow()
    batch: list[NewDelivery] = []
    position = 0
    checked: set[tuple[str, str]] = set()
    for n, row in read_rows(csv_path, max_chars=settings.letter_max_chars):
        where = f"{csv_path}: row {n}"
        result.rows += 1
        if not _approved(row["approved"], where):
            result.skipped_rows.append((n, row["email"].strip() or row["name"].strip()))
            continue
        supporter = make_supporter(
            name=row["name"],
            email=row["email"],
            city=row["city"] or None,
            country=row["country"] or None,
            source=where,
        )
        raw, source = _letter_bytes(row, csv_dir, where, settings.letter_max_chars)
        try:
            letter = parse_letter(
                raw,
                source=source,
                max_chars=settings.letter_max_chars,
                language=row["language"].strip() or None,
                accepted=campaign.languages,
            )
        except InputError as exc:
            if exc.source == "--language":
                raise InputError(exc.detail, source=where, field="language") from None
            raise
        send_after = start
        if spread and total:
            send_after = start + spread * (position / total)
        position += 1
        appeal = Appeal(campaign=campaign, letter=letter, supporter=supporter)
        deliveries = plan_deliveries(appeal, lookup(channels))
        _check_letter(appeal, deliveries, settings, where, now, checked)
        for d in deliveries:
            if d.to is None:
                why = d.skip_reason or f"{d.slug}: no {d.channel} address"
                result.no_address[why] = result.no_address.get(why, 0) + 1
                continue
            planned[0] += 1
            zone = d.target.time_zone if d.target is not None else None
            channel = get_channel(d.channel)
            if zone is None and channel.unclear_zone(d):
                result.guessed_zones.add(d.slug)
            due = channel.not_before(d, send_after, settings, zone)
            if due != send_after:
                result.waiting_for_office += 1
            batch.append(NewDelivery(campaign.id, supporter, d, letter, due))
        if len(batch) >= _BATCH:
            yield batch
            batch = []
    yield batch
