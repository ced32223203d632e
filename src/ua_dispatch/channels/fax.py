"""Fax: the letter as a fax-ready PDF, sent to each target's fax number through a gateway.

The payload carries the PDF, the E.164 number, a header line for the gateway to print on every
page and labels with the delivery key. The transport hands it to the configured provider
(:mod:`ua_dispatch.fax`) and follows the fax to its end: a delivery is ``sent`` only when the
gateway reports ``COMPLETED``. Before sending, and again after an ambiguous failure, it looks
the fax up by its delivery label: a fax already completed (an earlier run, or a reply that was
lost) is reported, one still under way is followed, and a new fax goes out only when none
arrived. So an official is never faxed the same letter twice by the same supporter.

Providers are imported when a transport is opened, not with this module, which keeps the
channel registry free of import cycles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from ua_dispatch.campaign import Target
from ua_dispatch.channels.base import BuildEnv, Channel, Receipt, Transport
from ua_dispatch.plan import Appeal, Delivery
from ua_dispatch.settings import Settings

if TYPE_CHECKING:
    from ua_dispatch.documents.pdf import PdfDocument
    from ua_dispatch.fax.base import FaxProvider, FaxStatus

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


def header_text(appeal: Appeal, settings: Settings) -> str:
    """The line the gateway prints atop each page: action, document index, organisation."""
    out = ""
    for part in (appeal.campaign.ua_number, appeal.campaign.reference, settings.sender_name):
        candidate = f"{out} / {part}" if out else part
        if len(candidate) > HEADER_TEXT_MAX:
            break
        out = candidate
    return out[:HEADER_TEXT_MAX]


class FaxChannel(Channel[FaxPayload]):
    name = "fax"

    def address_of(self, target: Target) -> str | None:
        return target.fax  # E.164 already: the campaign file is validated with phonenumbers

    def optional(self) -> bool:
        return True

    def rate_keys(self, delivery: Delivery) -> list[tuple[str, str]]:
        return [("number", delivery.to or "")]

    def check_settings(self, settings: Settings) -> None:
        from ua_dispatch.fax import check_provider_settings

        check_provider_settings(settings)

    def build(self, appeal: Appeal, delivery: Delivery, env: BuildEnv) -> FaxPayload:
        if delivery.to is None:
            raise ValueError("cannot build a fax for a delivery without a number")
        target = delivery.the_target
        # PDF rendering (fpdf2) is loaded only by runs that build a fax
        from ua_dispatch.documents.fax import build_fax_document

        document = build_fax_document(appeal, delivery, env, from_fax=env.settings.fax_from)
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
        )

    def write_draft(self, payload: FaxPayload, delivery: Delivery, out_dir: Path) -> Path:
        path = out_dir / "fax" / f"{delivery.slug}.pdf"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload.document.data)
        return path

    def transport(self, settings: Settings) -> FaxTransport:
        from ua_dispatch.fax import make_provider

        return FaxTransport(make_provider(settings))


class FaxTransport(Transport[FaxPayload]):
    """Submit through one provider; the receipt is pending until the fax's final status."""

    looks_up = True

    def __init__(self, provider: FaxProvider):
        self.provider = provider

    async def aclose(self) -> None:
        await self.provider.aclose()

    async def send(self, payload: FaxPayload, delivery: Delivery) -> Receipt:
        from ua_dispatch.fax.base import FaxRequest

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
            )
        )
        # The gateway has the fax; dialling and redials take minutes, which the engine waits
        # out without holding a slot of the concurrency cap.
        return Receipt(ref=status.id, pending=lambda: self._follow(status))

    async def _follow(self, status: FaxStatus) -> Receipt:
        from ua_dispatch.fax.base import FaxState

        final = await self.provider.wait(status.id, first=status)
        if final.state is FaxState.COMPLETED:
            return Receipt(ref=final.id, detail=final.detail())
        raise self.provider.failure_error(final)

    def reference(self, payload: FaxPayload, delivery: Delivery) -> str | None:
        return f"the fax labelled {DELIVERY_LABEL}={delivery.key}"

    async def reconcile(self, payload: FaxPayload, delivery: Delivery) -> Receipt | None:
        """Find the fax by its delivery label: done, still going, or never made."""
        from ua_dispatch.fax.base import FaxState

        found = await self.provider.find_by_label(DELIVERY_LABEL, delivery.key, to=payload.to)
        for status in found:
            if status.state is FaxState.COMPLETED:
                return Receipt(ref=status.id, detail=status.detail())
        pending = [s for s in found if not s.final]
        if pending:
            return await self._follow(pending[-1])
        return None  # none arrived (or all failed): sending again faxes nobody twice
