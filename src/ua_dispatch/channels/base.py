"""What every channel provides.

A channel knows how to find a target's address, how to build a payload for one delivery (a pure
function of the appeal, the delivery and the build environment), how to write that payload as a
draft file, and — when it sends by itself — which transport carries it. Channels that a person
completes (a tweet, a call) have no transport: their deliveries end ``drafted``.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from ua_dispatch.campaign import Campaign, Target
from ua_dispatch.delivery import BuildEnv, Transport
from ua_dispatch.plan import Appeal, Delivery
from ua_dispatch.settings import Settings

P = TypeVar("P")


@dataclass(frozen=True)
class ByHand:
    """One thing a person finishes themselves, as its channel describes it."""

    #: the channel's name (what "I did this" reports)
    kind: str
    #: the official's slug, or "campaign" for what addresses every official
    target: str
    #: who it reaches, as shown
    who: str
    #: the heading, e.g. "Call Ambassador Olga Smirnova"
    title: str
    #: text to copy or read out, if any
    text: str | None = None
    #: label -> web link that opens it ready to finish (e.g. "Post on X")
    links: dict[str, str] = field(default_factory=dict)
    #: True: a printable document to download (see :meth:`Channel.printed`)
    printable: bool = False


class Channel(ABC, Generic[P]):
    name: str
    #: True when the tool delivers by itself; False when a person finishes the job.
    sends: bool = True
    #: True when one delivery addresses every target at once (a post tagging them all).
    campaign_wide: bool = False
    #: what this channel's address is called, as in "ministry has no fax number"
    address_word: str = "address"
    #: what the person did, once done by hand ("made the call"); empty for sending channels
    by_hand_verb: str = ""
    #: True when the payload is a printable document, built only when it is downloaded (so
    #: :meth:`by_hand` is given no payload)
    prints: bool = False

    def address_of(self, target: Target) -> str | None:
        """Where this channel reaches one target (per-target channels)."""
        raise NotImplementedError

    def campaign_address(self, campaign: Campaign) -> str | None:
        """Where a campaign-wide delivery goes (e.g. the handles it tags)."""
        raise NotImplementedError

    @abstractmethod
    def build(self, appeal: Appeal, delivery: Delivery, env: BuildEnv) -> P:
        """Build the payload. Pure: no I/O; raises InputError on unusable input."""

    @abstractmethod
    def write_draft(self, payload: P, delivery: Delivery, out_dir: Path) -> Path:
        """Write the payload under ``out_dir/<channel>/`` and return the file's path."""

    def rate_keys(self, delivery: Delivery) -> list[tuple[str, str]]:
        """(scope, key) pairs one send counts against, e.g. ``("recipient", address)``;
        settings ``limit_<channel>_per_<scope>`` give each scope's rate."""
        return []

    def check_settings(self, settings: Settings) -> None:
        """Raise ConfigError when settings cannot carry a real send."""

    def optional(self) -> bool:
        """True for channels a real send leaves out, with a note, when they are not configured
        and the user did not ask for them by name (fax needs a gateway account)."""
        return False

    def transport(self, settings: Settings) -> Transport[P]:
        raise NotImplementedError(f"channel {self.name} does not send by itself")

    def draft_text(self, payload: P) -> str | None:
        """Text to put into ``--json`` for drafted deliveries (social posts)."""
        return None

    def by_hand(self, payload: P | None, delivery: Delivery) -> list[ByHand]:
        """What a person finishes by hand for this delivery (none for sending channels).
        ``payload`` is None for channels that print (:attr:`prints`)."""
        return []

    def printed(self, payload: P) -> bytes | None:
        """The printable document of a payload, for channels that print."""
        return None

    # --- policy the queue and the front doors ask of the channel -----------------------------

    def not_before(
        self, delivery: Delivery, at: dt.datetime, settings: Settings, zone: str | None
    ) -> dt.datetime:
        """When a queued delivery may go at the earliest, given ``at`` (naive UTC, as the
        outbox keeps times) and the target's time zone from the campaign, if it names one.
        The default is at once."""
        return at

    def unclear_zone(self, delivery: Delivery) -> str | None:
        """Why :meth:`not_before` cannot tell the recipient's local time without the target's
        ``time_zone`` (a number shared by several zones), or None when it can."""
        return None

    def check_queued(
        self, appeal: Appeal, delivery: Delivery, env: BuildEnv, *, text: bool = True
    ) -> None:
        """Cheap checks when a letter is queued, so that what the worker builds later does not
        fail then (a fax too long to send). ``text``: also check what the document prints of
        the letter and the official (needed once per letter and once per official, not for
        every pair). Raises InputError; the default checks nothing."""

    def fake_server(self, settings: Settings) -> str | None:
        """``module:Class`` of the local fake server a dry run sends this channel to, or None
        when the channel sends nothing by itself."""
        return None

    def dry_run_settings(self, settings: Settings, fake_settings: dict[str, Any]) -> Settings:
        """The same settings pointed at the local fake, given the settings the fake names
        (:meth:`fake_server`); a channel may also shorten its own waits here."""
        return settings.model_copy(update=fake_settings)
