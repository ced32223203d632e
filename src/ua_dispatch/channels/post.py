"""Post: a printable letter per target, addressed as the campaign prints the address.

The supporter prints, signs and posts it (air mail, as the Urgent Action asks), so deliveries end
``drafted`` with the PDF's path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ua_dispatch.campaign import Target
from ua_dispatch.channels.base import ByHand, Channel
from ua_dispatch.delivery import BuildEnv
from ua_dispatch.documents import PdfDocument
from ua_dispatch.letter import render_letter
from ua_dispatch.plan import Appeal, Delivery


@dataclass(frozen=True)
class PostPayload:
    document: PdfDocument


class PostChannel(Channel[PostPayload]):
    name = "post"
    address_word = "postal address"
    sends = False
    by_hand_verb = "posted the letter"
    prints = True

    def address_of(self, target: Target) -> str | None:
        return ", ".join(target.address) or None

    def build(self, appeal: Appeal, delivery: Delivery, env: BuildEnv) -> PostPayload:
        # PDF rendering (fpdf2) is loaded only by runs that build a printable letter, which
        # keeps the command line's start-up fast
        from ua_dispatch.documents.pdf import document_date, render_letter_pdf

        target = delivery.the_target
        document = render_letter_pdf(
            render_letter(appeal.letter, appeal.supporter, target),
            target,
            appeal.supporter,
            appeal.campaign,
            date=document_date(env.now),
            source=appeal.letter.source,
        )
        return PostPayload(document=document)

    def write_draft(self, payload: PostPayload, delivery: Delivery, out_dir: Path) -> Path:
        path = out_dir / "post" / f"{delivery.slug}.pdf"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload.document.data)
        return path

    def by_hand(self, payload: PostPayload | None, delivery: Delivery) -> list[ByHand]:
        who = delivery.the_target.display
        return [ByHand(self.name, delivery.slug, who, f"Post a letter to {who}", printable=True)]

    def printed(self, payload: PostPayload) -> bytes | None:
        return payload.document.data
