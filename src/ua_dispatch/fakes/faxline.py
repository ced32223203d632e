"""What happens on the telephone line of a fake fax gateway, whatever API it speaks.

A fax is placed on the line after :attr:`Timing.queued` seconds; each call lasts
:attr:`Timing.call`. What the line does is chosen per destination number (:data:`OUTCOMES`:
busy, no answer, not operational, conversion error, no funds); busy and unanswered lines are
redialled ``max_retries`` times, ``retry_delay_seconds`` apart (scaled by
:attr:`Timing.retry_scale`), as a real gateway does. A :class:`FaxRecord` knows its state at
any moment from that clock alone: ``QUEUED`` -> ``IN_PROGRESS`` -> ``COMPLETED`` or
``FAILURE``; each provider's fake names those states in its own words.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

from ua_dispatch.numbers import is_e164

_PAGE_OBJECT = re.compile(rb"/Type\s*/Page(?![A-Za-z])")


@dataclass(frozen=True)
class LineOutcome:
    name: str
    error_type: str | None = None
    error_code: int | None = None
    error_message: str | None = None
    #: the gateway redials (max_retries) after this failure
    redial: bool = False
    #: False: the fax fails before any call is placed
    dials: bool = True

    @property
    def ok(self) -> bool:
        return self.error_type is None


#: what a number can be set to do (``set_outcome``, ``--fax-outcome``, fault profiles)
OUTCOMES: dict[str, LineOutcome] = {
    o.name: o
    for o in (
        LineOutcome("ok"),
        LineOutcome("busy", "CALL_ERROR", 17, "The line was busy", redial=True),
        LineOutcome("no-answer", "CALL_ERROR", 30, "No fax machine answered", redial=True),
        LineOutcome("not-operational", "CALL_ERROR", 34, "The number is not in service"),
        LineOutcome(
            "conversion-error",
            "DOCUMENT_CONVERSION_ERROR",
            133,
            "The PDF could not be prepared for faxing",
            dials=False,
        ),
        LineOutcome("no-funds", "FAX_ERROR", 46, "Not enough funds to send this fax", dials=False),
    )
}
#: a document that is not a PDF
UNSUPPORTED_TYPE = LineOutcome(
    "conversion-error", "DOCUMENT_CONVERSION_ERROR", 129, "This fake converts PDF only", dials=False
)
#: a document given by URL (the fakes fetch nothing)
URL_NOT_FETCHED = LineOutcome(
    "conversion-error",
    "DOCUMENT_CONVERSION_ERROR",
    54,
    "The fake gateway does not fetch content URLs",
    dials=False,
)
_BY_NAME_AND_CODE: dict[tuple[str, int | None], LineOutcome] = {
    (o.name, o.error_code): o for o in (*OUTCOMES.values(), UNSUPPORTED_TYPE, URL_NOT_FETCHED)
}


def known_outcome(name: str, error_code: int | None) -> LineOutcome | None:
    """The outcome stored under this name and error code, if there is one."""
    return _BY_NAME_AND_CODE.get((name, error_code))


def line_outcome(
    chosen: LineOutcome, documents: list[tuple[bytes, str]], content_urls: list[str]
) -> LineOutcome:
    """The fate of a fax: the outcome chosen for its number, unless its documents ((data,
    file type) pairs) or content URLs cannot be faxed at all."""
    if content_urls:
        return URL_NOT_FETCHED
    if any(kind != "PDF" for _, kind in documents):
        return UNSUPPORTED_TYPE
    if any(not data.startswith(b"%PDF-") for data, _ in documents):
        return OUTCOMES["conversion-error"]
    return chosen


def count_pages(pdf: bytes) -> int | None:
    """Pages of a PDF whose page objects are not compressed; None when unknown."""
    n = len(_PAGE_OBJECT.findall(pdf))
    return n or None


def total_pages(pdfs: list[bytes]) -> int | None:
    """Pages of all the PDFs; None when any count is unknown or there are none."""
    pages = [count_pages(d) for d in pdfs]
    if not pages or not all(pages):
        return None
    return sum(p for p in pages if p)


def iso_utc(moment: dt.datetime, timespec: str = "milliseconds") -> str:
    """``2026-01-01T12:00:00.000Z``: an aware UTC time as the APIs write it."""
    return moment.isoformat(timespec=timespec).replace("+00:00", "Z")


def parse_outcome_option(value: str) -> tuple[str, str]:
    """``+14155550100=busy`` -> (number, outcome), for the command line."""
    number, sep, outcome = value.partition("=")
    number, outcome = number.strip(), outcome.strip()
    if not sep or not is_e164(number) or outcome not in OUTCOMES:
        raise ValueError(
            f"{value!r}: expected NUMBER=OUTCOME with an E.164 number and one of "
            f"{', '.join(OUTCOMES)}"
        )
    return number, outcome


@dataclass(frozen=True)
class Timing:
    """The fake's clock, in real seconds."""

    queued: float = 1.0  # before the first call
    call: float = 4.0  # one call attempt
    retry_scale: float = 0.05  # fraction of retryDelaySeconds waited between redials


#: the clock of a gateway not told otherwise: a fax takes seconds, as on a real line
DEFAULT_TIMING = Timing()


@dataclass
class FaxRecord:
    """One fax a fake gateway received: what was asked, and its fate on the line."""

    seq: int
    id: str
    project_id: str
    to: str
    from_number: str | None
    labels: dict[str, str]
    header_text: str
    max_retries: int
    retry_delay_seconds: int
    callback_url: str | None
    callback_content_type: str
    content_urls: list[str]
    outcome: LineOutcome
    pages: int | None
    files: list[Path]
    size: int
    content_type: str
    peer: str
    created_wall: dt.datetime
    created_mono: float
    timing: Timing
    #: what a provider keeps with a fax beyond the fields above (Telnyx: ``client_state``)
    extra: dict[str, str] = field(default_factory=dict)

    def timeline(self) -> tuple[float, int]:
        """Seconds from creation to the end, and the number of calls placed."""
        t = self.timing
        if not self.outcome.dials:
            return t.queued, 0
        calls = 1 + self.max_retries if self.outcome.redial else 1
        pause = self.retry_delay_seconds * t.retry_scale
        return t.queued + calls * t.call + (calls - 1) * pause, calls

    def state_at(self, now: float) -> tuple[str, int]:
        """Status and retry count at monotonic time ``now``."""
        elapsed = now - self.created_mono
        end, calls = self.timeline()
        if elapsed >= end:
            return ("COMPLETED" if self.outcome.ok else "FAILURE"), max(calls - 1, 0)
        if elapsed < self.timing.queued:
            return "QUEUED", 0
        cycle = self.timing.call + self.retry_delay_seconds * self.timing.retry_scale
        done = int((elapsed - self.timing.queued) // cycle) if cycle > 0 else 0
        return "IN_PROGRESS", min(done, max(calls - 1, 0))

    def ended_at(self) -> dt.datetime:
        """Wall-clock time the fax ends (or ended)."""
        end, _ = self.timeline()
        return self.created_wall + dt.timedelta(seconds=end)
