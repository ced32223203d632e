"""Fax: the letter as a fax-ready PDF, sent to each target's fax number through a gateway.

The payload carries the PDF, the E.164 number, a header line for the gateway to print on every
page and labels with the delivery key. The transport hands it to the configured provider
(:mod:`ua_dispatch.fax`) and follows the fax to its end: a delivery is ``sent`` only when the
gateway reports ``COMPLETED``. Before sending, and again after an ambiguous failure, it looks
the fax up by its delivery label: a fax already completed (an earlier run, or a reply that was
lost) is reported, one still under way is followed, and a new fax goes out only when none
arrived. So an official is never faxed the same letter twice by the same supporter.

The channel also owns the fax's policy: a queued fax waits for the official's office hours,
a queued letter is checked for what its fax would refuse, and a dry run points the configured
provider at that provider's local fake.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import structlog

from ua_dispatch import fax as providers
from ua_dispatch.campaign import Target
from ua_dispatch.channels.base import Channel
from ua_dispatch.delivery import BuildEnv, Receipt, Transport
from ua_dispatch.documents import PdfDocument
from ua_dispatch.fax.base import FaxProvider, FaxRequest, FaxState, FaxStatus
from ua_dispatch.hours import ambiguous, next_open
from ua_dispatch.ids import callback_token
from ua_dispatch.letter import render_letter
from ua_dispatch.plan import Appeal, Delivery
from ua_dispatch.settings import Settings

log = structlog.get_logger("ua_dispatch.channels.fax")

#: the label that carries a delivery's key on every fax we send
DELIVERY_LABEL = "ua-delivery"
HEADER_TEXT_MAX = 50


@dataclass(frozen=True)
class FaxPayload:
    document: PdfDocument
    to: str  # E.164
    header_text: str
    labels: dict[str, str] = field(default_factory=dict)
    from_number: str | None = None
    #: where the gateway posts this fax's status, with the delivery's own token
    callback_url: str | None = None


def callback_url(settings: Settings, key: str, secret: bytes | None) -> str | None:
    """``fax_callback_url`` with the delivery's callback token as ``token=``; without a
    secret, the setting as it is."""
    base = settings.fax_callback_url
    if base is None or secret is None:
        return base
    parts = urlsplit(base)
    query = urlencode([*parse_qsl(parts.query), ("token", callback_token(key, secret))])
    return urlunsplit(parts._replace(query=query))


def header_text(appeal: Appeal, settings: Settings) -> str:
    """The line the gateway prints atop each page: action, document index, organisation."""
    out = ""
    for part in (appeal.campaign.ua_number, appeal.campaign.reference, settings.sender_name):
        candidate = f"{out} / {part}" if out else part
        if len(candidate) > HEADER_TEXT_MAX:
            break
        out = candidate
    return out[:HEADER_TEXT_MAX]


def _document(
    appeal: Appeal, delivery: Delivery, settings: Settings, now: dt.datetime
) -> PdfDocument:
    # PDF rendering (fpdf2 and the font's tables) is loaded only by what builds or checks a
    # fax, which keeps the command line's start-up fast
    from ua_dispatch.documents.fax import build_fax_document
    from ua_dispatch.documents.pdf import document_date

    target = delivery.the_target
    return build_fax_document(
        render_letter(appeal.letter, appeal.supporter, target),
        target,
        appeal.supporter,
        appeal.campaign,
        to_fax=delivery.to or "",
        date=document_date(now),
        cover_page=settings.fax_cover_page,
        max_pages=settings.fax_max_pages,
        from_fax=settings.fax_from,
        source=appeal.letter.source,
    )


class FaxChannel(Channel[FaxPayload]):
    name = "fax"
    address_word = "fax number"

    def address_of(self, target: Target) -> str | None:
        return target.fax  # E.164 already: the campaign file is validated with phonenumbers

    def optional(self) -> bool:
        return True

    def rate_keys(self, delivery: Delivery) -> list[tuple[str, str]]:
        return [("number", delivery.to or "")]

    def check_settings(self, settings: Settings) -> None:
        providers.provider_class(settings.fax_provider).check_settings(settings)

    def not_before(
        self, delivery: Delivery, at: dt.datetime, settings: Settings, zone: str | None
    ) -> dt.datetime:
        """A fax waits for the official's office to open when ``fax_office_hours_only``."""
        if not delivery.to or not settings.fax_office_hours_only:
            return at
        opens = next_open(
            delivery.to,
            at.replace(tzinfo=dt.UTC),
            settings.office_hours_start,
            settings.office_hours_end,
            zone,
        )
        return opens.astimezone(dt.UTC).replace(tzinfo=None)

    def unclear_zone(self, delivery: Delivery) -> str | None:
        if delivery.to and ambiguous(delivery.to):
            return f"{delivery.to} is used in several time zones"
        return None

    def check_queued(
        self, appeal: Appeal, delivery: Delivery, env: BuildEnv, *, text: bool = True
    ) -> None:
        """What the fax would refuse: text its font cannot print, more than
        ``fax_max_pages`` pages. The page count is laid out for real only when a cheap bound
        cannot promise it."""
        from ua_dispatch.documents.fax import fax_cover
        from ua_dispatch.documents.pdf import check_printable, document_date, pages_at_most

        settings = env.settings
        target = delivery.the_target
        rendered = render_letter(appeal.letter, appeal.supporter, target)
        date = document_date(env.now)
        cover = None
        if settings.fax_cover_page:
            cover = fax_cover(
                target,
                appeal.supporter,
                appeal.campaign,
                to_fax=delivery.to or "",
                date=date,
                language=rendered.language,
                from_fax=settings.fax_from,
            )
        if text:
            check_printable(
                rendered,
                target,
                appeal.supporter,
                appeal.campaign,
                date=date,
                cover=cover,
                source=appeal.letter.source,
            )
        bound = pages_at_most(
            rendered, target, appeal.supporter, appeal.campaign, cover=cover is not None
        )
        if bound > settings.fax_max_pages:
            _document(appeal, delivery, settings, env.now)

    def fake_server(self, settings: Settings) -> str | None:
        return providers.provider_class(settings.fax_provider).fake

    def dry_run_settings(self, settings: Settings, fake_settings: dict[str, Any]) -> Settings:
        """Point the provider at its fake. The real callback address is dropped (the fake
        must not post to it; a page's dry run points it at the page itself), and the fake
        answers within a second, so it is checked on often. The fake is always open, so a
        rehearsal does not wait for the office's hours."""
        return settings.model_copy(
            update={
                **fake_settings,
                "fax_callback_url": None,
                "fax_office_hours_only": False,
                "fax_poll_interval": min(settings.fax_poll_interval, 0.1),
                "fax_poll_max_interval": min(settings.fax_poll_max_interval, 0.5),
            }
        )

    def build(self, appeal: Appeal, delivery: Delivery, env: BuildEnv) -> FaxPayload:
        if delivery.to is None:
            raise ValueError("cannot build a fax for a delivery without a number")
        target = delivery.the_target
        document = _document(appeal, delivery, env.settings, env.now)
        return FaxPayload(
            document=document,
            to=delivery.to,
            header_text=header_text(appeal, env.settings),
            labels={
                DELIVERY_LABEL: delivery.key,
                "ua-campaign": appeal.campaign.id,
                "ua-target": target.slug,
            },
            from_number=env.settings.fax_from,
            callback_url=callback_url(env.settings, delivery.key, env.callback_key),
        )

    def write_draft(self, payload: FaxPayload, delivery: Delivery, out_dir: Path) -> Path:
        path = out_dir / "fax" / f"{delivery.slug}.pdf"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload.document.data)
        return path

    def transport(self, settings: Settings) -> FaxTransport:
        return FaxTransport(providers.make_provider(settings))


class FaxTransport(Transport[FaxPayload]):
    """Submit through one provider; the receipt is pending until the fax's final status."""

    looks_up = True

    def __init__(self, provider: FaxProvider):
        self.provider = provider

    async def aclose(self) -> None:
        await self.provider.aclose()

    async def send(self, payload: FaxPayload, delivery: Delivery) -> Receipt:
        earlier = await self.reconcile(payload, delivery)
        if earlier is not None:
            log.info("fax.already_sent", target=delivery.slug, fax_id=earlier.ref)
            return earlier
        status = await self.provider.submit(
            FaxRequest(
                pdf=payload.document.data,
                to=payload.to,
                labels=dict(payload.labels),
                header_text=payload.header_text,
                from_number=payload.from_number,
                callback_url=payload.callback_url,
            )
        )
        # The gateway has the fax; dialling and redials take minutes, which the engine waits
        # out without holding a slot of the concurrency cap.
        return Receipt(ref=status.id, pending=lambda: self._follow(status, delivery.key))

    async def _follow(self, status: FaxStatus, key: str) -> Receipt:
        reported = self.reported
        final = await self.provider.wait(
            status.id,
            first=status,
            reported=(lambda: reported(key)) if reported is not None else None,
        )
        if final.state is FaxState.COMPLETED:
            return Receipt(ref=final.id, detail=final.detail())
        raise self.provider.failure_error(final)

    def reference(self, payload: FaxPayload, delivery: Delivery) -> str | None:
        return f"the fax labelled {DELIVERY_LABEL}={delivery.key}"

    async def reconcile(self, payload: FaxPayload, delivery: Delivery) -> Receipt | None:
        """Find the fax by its delivery label: done, still going, or never made."""

        found = await self.provider.find_by_label(DELIVERY_LABEL, delivery.key, to=payload.to)
        for status in found:
            if status.state is FaxState.COMPLETED:
                return Receipt(ref=status.id, detail=status.detail())
        pending = [s for s in found if not s.final]
        if pending:
            return await self._follow(pending[-1], delivery.key)
        return None  # none arrived (or all failed): sending again faxes nobody twice
