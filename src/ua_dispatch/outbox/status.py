"""The statuses of a delivery in the outbox (this module imports nothing, so the command line
can offer them as choices without loading anything else)."""

from __future__ import annotations

from enum import StrEnum


class QStatus(StrEnum):
    QUEUED = "queued"
    HELD = "held"
    IN_FLIGHT = "in_flight"
    SENT = "sent"
    FAILED = "failed"
    #: may have arrived, and neither we nor the other side can tell (an SMTP session lost
    #: after the final dot): not sent again until a person has checked
    AMBIGUOUS = "ambiguous"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


FINAL = (QStatus.SENT, QStatus.FAILED, QStatus.AMBIGUOUS, QStatus.CANCELLED, QStatus.EXPIRED)
