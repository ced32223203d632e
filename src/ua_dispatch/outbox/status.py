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
    #: sent, then returned by the receiving side as undeliverable (a hard bounce)
    BOUNCED = "bounced"


FINAL = (
    QStatus.SENT,
    QStatus.FAILED,
    QStatus.AMBIGUOUS,
    QStatus.CANCELLED,
    QStatus.EXPIRED,
    QStatus.BOUNCED,
)


class Returned(StrEnum):
    """What came back for a sent email, in the row's ``error_kind`` (its words in
    ``last_error``, the remote server's code in ``error_code``)."""

    #: a hard bounce (the row is ``bounced``)
    HARD = "bounce-hard"
    #: a delay or temporary failure notice: the row stays ``sent``
    SOFT = "bounce-soft"
    #: an automatic reply (out of office, "received"): the row stays ``sent``
    REPLIED = "replied"
    #: held because the official's address bounced too often (the row is ``held``)
    DEAD_ADDRESS = "dead-address"


class Hold(StrEnum):
    """Why the outbox holds an official's letters (a ``holds`` row's ``kind``)."""

    #: the organizers paused the official (`queue hold`): every channel
    PAUSED = "paused"
    #: the official's email address bounced too often: their email only
    DEAD_ADDRESS = "dead-address"


#: a hold's ``channel`` when it covers every channel
EVERY_CHANNEL = "*"
