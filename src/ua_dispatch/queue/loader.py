"""``queue add``: a CSV of approved letters into the outbox, all of it or nothing.

Columns: name, email, city, country, language, letter, approved. ``letter`` is the letter text or
the path of a letter file relative to the CSV. Rows whose ``approved`` is no/false/0/empty are
reported and skipped. The file is read row by row inside one transaction: the first bad row
(missing column, bad address, a byte that is not UTF-8, ...) is named with its field, the
transaction is rolled back and nothing from the file is queued.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ua_dispatch.campaign import Campaign
from ua_dispatch.errors import InputError
from ua_dispatch.hours import ambiguous, fax_not_before
from ua_dispatch.ids import supporter_hash
from ua_dispatch.letter import Letter, Supporter, make_supporter, parse_letter
from ua_dispatch.plan import Appeal, Delivery, plan_deliveries
from ua_dispatch.queue.db import supporter_key
from ua_dispatch.queue.models import QStatus
from ua_dispatch.queue.store import BULK, Store, utcnow
from ua_dispatch.settings import Settings

COLUMNS = ("name", "email", "city", "country", "language", "letter", "approved")
_YES = {"yes", "y", "true", "1", "x", "approved"}
_NO = {"no", "n", "false", "0", ""}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_BATCH = 2000
# bytes that are not UTF-8, as the "surrogateescape" error handler leaves them
_UNDECODED = re.compile("[\udc80-\udcff]")


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


@dataclass
class AddResult:
    rows: int = 0
    queued: int = 0
    already: int = 0
    skipped_rows: list[tuple[int, str]] = field(default_factory=list)
    #: why a way of writing was left out ("president has no email address") -> letters
    no_address: dict[str, int] = field(default_factory=dict)
    #: faxes due outside the recipient's office hours, moved to when the office opens
    waiting_for_office: int = 0
    #: target slugs whose fax number spans several time zones and no time_zone is given
    guessed_zones: set[str] = field(default_factory=set)


def _reader(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        raise InputError("letters file not found", source=path) from None
    except OSError as exc:
        raise InputError(f"cannot read letters file: {exc.strerror}", source=path) from None
    with fh:
        text = io.TextIOWrapper(fh, encoding="utf-8-sig", errors="surrogateescape", newline="")
        reader = csv.reader(text)
        try:
            header = next(reader)
        except StopIteration:
            raise InputError("empty file; expected a header row", source=path) from None
        names = [h.strip().lower() for h in header]
        missing = [c for c in COLUMNS if c not in names]
        if missing:
            raise InputError(
                f"missing column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}",
                source=path,
                field="header",
            )
        index = {c: names.index(c) for c in COLUMNS}
        try:
            for n, cells in enumerate(reader, start=1):
                if not any(c.strip() for c in cells):
                    continue
                row = {}
                for col, i in index.items():
                    value = cells[i] if i < len(cells) else ""
                    # (isascii() is far cheaper than the search, and most cells are ASCII)
                    bad = None if value.isascii() else _UNDECODED.search(value)
                    if bad is not None:
                        raise InputError(
                            f"not UTF-8 text (invalid byte at character {bad.start() + 1})",
                            source=f"{path}: row {n}",
                            field=col,
                        )
                    row[col] = value
                yield n, row
        except csv.Error as exc:
            raise InputError(
                f"not valid CSV: {exc}", source=f"{path}: row {reader.line_num}"
            ) from None


def _approved(value: str, where: str) -> bool:
    v = value.strip().lower()
    if v in _YES:
        return True
    if v in _NO:
        return False
    raise InputError(f"{value!r} is neither yes nor no", source=where, field="approved")


def _letter_bytes(value: str, csv_dir: Path, where: str) -> tuple[bytes, str]:
    """The letter's bytes and a source name: the text itself, or a file next to the CSV."""
    v = value.strip()
    if v and "\n" not in v and len(v) < 256:
        candidate = csv_dir / v
        looks_like_path = v.lower().endswith((".txt", ".md")) or "/" in v
        if candidate.is_file():
            return candidate.read_bytes(), f"{where}: letter {v}"
        if looks_like_path and " " not in v:
            raise InputError(f"letter file {v} not found", source=where, field="letter")
    return value.encode("utf-8"), f"{where}: letter"


def _count_rows(path: Path) -> int:
    n = 0
    for _ in _reader(path):
        n += 1
    return n


async def add_letters(
    store: Store,
    campaign: Campaign,
    csv_path: Path,
    channels: list[str],
    *,
    settings: Settings,
    at: dt.datetime | None = None,
    spread: dt.timedelta | None = None,
) -> AddResult:
    start = at or utcnow()
    total = _count_rows(csv_path) if spread else 0
    result = AddResult()
    csv_dir = csv_path.parent
    now = utcnow()
    key = supporter_key(settings)
    async with store.engine.begin() as conn:
        await store.put_campaign(conn, campaign)
        before = await store.count(conn, campaign_id=campaign.id)
        batch: list[dict[str, Any]] = []
        position = 0
        planned = 0
        for n, row in _reader(csv_path):
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
            raw, source = _letter_bytes(row["letter"], csv_dir, where)
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
            for d in plan_deliveries(appeal, channels):
                if d.to is None:
                    why = d.skip_reason or f"{d.slug}: no {d.channel} address"
                    result.no_address[why] = result.no_address.get(why, 0) + 1
                    continue
                planned += 1
                zone = d.target.time_zone if d.target is not None else None
                if d.channel == "fax" and d.to and zone is None and ambiguous(d.to):
                    result.guessed_zones.add(d.slug)
                due = fax_not_before(settings, d.channel, d.to, send_after, zone)
                if due != send_after:
                    result.waiting_for_office += 1
                batch.append(delivery_row(campaign.id, supporter, d, letter, due, now, key))
            if len(batch) >= _BATCH:
                await store.insert_rows(conn, batch)
                batch = []
        await store.insert_rows(conn, batch)
        after = await store.count(conn, campaign_id=campaign.id)
    result.queued = after - before
    result.already = planned - result.queued
    if result.queued >= BULK:
        await store.tidy()
    return result


def delivery_row(
    campaign_id: str,
    s: Supporter,
    d: Delivery,
    letter: Letter,
    send_after: dt.datetime,
    now: dt.datetime,
    supporter_key: bytes,
) -> dict[str, Any]:
    return {
        "key": d.key,
        "campaign_id": campaign_id,
        "supporter_name": s.name,
        "supporter_email": s.email,
        "supporter_city": s.city,
        "supporter_country": s.country,
        "supporter_hash": supporter_hash(s.email, supporter_key),
        "target_slug": d.slug,
        "channel": d.channel,
        "recipient": d.to,
        "letter_text": letter.text,
        "letter_hash": letter.hash,
        "language": letter.language,
        "send_after": send_after,
        "next_attempt_at": send_after,
        "status": str(QStatus.QUEUED),
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }
