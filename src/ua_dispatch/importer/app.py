"""Importing a campaign: read the document, find its facts, write the campaign file and its
sample letter, and report what the organizer must check.

Nothing is written when the document cannot be read or names no official, and an existing
file is replaced only when asked to (``force``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ua_dispatch.campaign import SLUG_RE, Campaign, load_campaign, one_line_validation_error
from ua_dispatch.errors import InputError
from ua_dispatch.importer.clean import clean
from ua_dispatch.importer.parse import (
    SLUG_STOPWORDS,
    NoCountry,
    Note,
    Parsed,
    parse_lines,
    slugify,
)
from ua_dispatch.importer.read import read_document
from ua_dispatch.importer.write import campaign_toml, target_data


@dataclass(frozen=True)
class OfficialSummary:
    """What was found for one official, for the organizer's summary."""

    slug: str
    name: str
    title: str
    line: int
    copy: bool
    found: tuple[str, ...]


@dataclass(frozen=True)
class ImportedDocument:
    """A document read and understood, not yet written: the campaign's data and the notes."""

    source: Path
    kind: str
    parsed: Parsed
    data: dict[str, Any]

    @property
    def notes(self) -> list[Note]:
        return self.parsed.notes

    @property
    def officials(self) -> list[OfficialSummary]:
        return [
            OfficialSummary(
                o.slug, o.name, o.title or "", o.line, o.copy, tuple(sorted(set(o.found)))
            )
            for o in self.parsed.officials
        ]


@dataclass(frozen=True)
class ImportReport:
    """The outcome of :func:`import_campaign`: the files written and what to check."""

    document: ImportedDocument
    campaign: Campaign
    out: Path
    sample: Path | None

    def to_json(self) -> dict[str, Any]:
        return {
            "source": str(self.document.source),
            "format": self.document.kind,
            "language": self.document.parsed.language,
            "campaign_file": str(self.out),
            "sample_letter": str(self.sample) if self.sample else None,
            "id": self.campaign.id,
            "officials": [
                {
                    "slug": o.slug,
                    "name": o.name,
                    "title": o.title,
                    "line": o.line,
                    "copy": o.copy,
                    "found": list(o.found),
                }
                for o in self.document.officials
            ],
            "check": [
                {"field": n.field, "status": n.status, "line": n.line, "detail": n.detail}
                for n in self.document.notes
            ],
        }


def default_id(data: dict[str, Any]) -> str:
    """``ua-2-19-homophobic-crackdown-chechnya``: the UA number and the headline's first words."""
    number = re.findall(r"\d+", str(data.get("ua_number", "")))
    words = [w for w in slugify(str(data.get("title", ""))).split("-") if w not in SLUG_STOPWORDS]
    parts = (["ua", *number[:2]] if len(number) >= 2 else []) + words[:3]
    return "-".join(p for p in parts if p) or "imported-campaign"


def read_campaign(
    path: Path, *, campaign_id: str | None = None, today: dt.date | None = None
) -> ImportedDocument:
    """Read and understand ``path`` without writing anything; InputError (one line naming the
    file) when it cannot be read or names no official."""
    doc = read_document(path)
    try:
        parsed = parse_lines(clean(doc), today=today or dt.date.today())
    except NoCountry as exc:
        raise InputError(str(exc), source=path) from None
    if not parsed.officials:
        raise InputError(
            "no official found (no block of name, address and Email/Fax/Phone lines)", source=path
        )
    data = dict(parsed.data)
    if campaign_id is not None:
        if not SLUG_RE.match(campaign_id):
            raise InputError(
                f"{campaign_id!r} is not an id (lower-case letters, digits and single hyphens)",
                source="--id",
            )
        data["id"] = campaign_id
    else:
        data["id"] = default_id(data)
        parsed.notes.insert(0, Note("id", "guessed", None, f"made {data['id']!r}; --id sets it"))
    if parsed.background:
        data["background"] = parsed.background
    data["targets"] = [target_data(o) for o in parsed.officials]
    return ImportedDocument(path, doc.kind, parsed, data)


def sample_path_for(out: Path) -> Path:
    """``config/campaigns/x.toml`` → ``config/campaigns/x.sample.txt``."""
    return out.with_name(f"{out.stem}.sample.txt")


def import_campaign(
    path: Path,
    *,
    out: Path | None = None,
    campaign_id: str | None = None,
    force: bool = False,
    today: dt.date | None = None,
) -> ImportReport:
    """Import the Urgent Action document ``path`` as a campaign file (default: ``<id>.toml``
    beside the document) and its sample letter (``<name>.sample.txt`` beside the campaign).

    Raises InputError, writing nothing, when the document cannot be read, names no official,
    or a file to write exists and ``force`` is not set."""
    imported = read_campaign(path, campaign_id=campaign_id, today=today)
    data = imported.data
    out = out if out is not None else path.with_name(f"{data['id']}.toml")
    sample = sample_path_for(out) if imported.parsed.sample_letter else None
    if sample is not None:
        data["sample_letter"] = sample.name
    try:
        Campaign.model_validate(data)
    except ValidationError as exc:
        error = one_line_validation_error(path, exc, data)
        loc = exc.errors()[0]["loc"]
        officials = imported.parsed.officials
        if (
            len(loc) > 1
            and loc[0] == "targets"
            and isinstance(loc[1], int)
            and loc[1] < len(officials)
        ):
            where = f"{error.detail} (the official on line {officials[loc[1]].line})"
            raise InputError(where, source=path, field=error.field) from None
        raise error from None
    for target in (out, sample):
        if target is None:
            continue
        if target.is_dir():
            raise InputError("is a directory; give a file name", source=target)
        if not force and (target.exists() or target.is_symlink()):
            raise InputError("already exists; --force replaces it", source=target)
    text = campaign_toml(data, source=path.name, notes=imported.notes)
    written: list[Path] = []
    try:
        if sample is not None and imported.parsed.sample_letter is not None:
            _write(sample, imported.parsed.sample_letter, force=force)
            written.append(sample)
        _write(out, text, force=force)
        written.append(out)
        campaign = load_campaign(out)
    except BaseException:
        for p in written:
            with contextlib.suppress(OSError):
                p.unlink()
        raise
    return ImportReport(imported, campaign, out, sample)


def _write(target: Path, text: str, *, force: bool) -> None:
    """Write ``text`` to ``target`` in one step: whole or not at all, and never over an
    existing file unless ``force``."""
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror}", source=target) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        if force:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)
            except FileExistsError:
                raise InputError("already exists; --force replaces it", source=target) from None
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror}", source=target) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
