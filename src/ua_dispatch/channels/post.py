"""Post: a printable letter per target, addressed as the campaign prints the address.

The supporter prints, signs and posts it (air mail, as the Urgent Action asks), so deliveries end
``drafted`` with the PDF's path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ua_dispatch.campaign import Target
from ua_dispatch.channels.base import BuildEnv, Channel
from ua_dispatch.plan import Appeal, Delivery

if TYPE_CHECKING:
    from ua_dispatch.documents.pdf import PdfDocument


@dataclass(frozen=True)
class PostPayload:
    document: PdfDocument


class PostChannel(Channel[PostPayload]):
    name = "post"
    sends = False

    def address_of(self, target: Target) -> str | None:
        return ", ".join(target.address) or None

    def build(self, appeal: Appeal, delivery: Delivery, env: BuildEnv) -> PostPayload:
        # PDF rendering (fpdf2) is loaded only by runs that build a printable letter
        from ua_dispatch.documents.pdf import document_date, render_appeal_pdf

        document = render_appeal_pdf(appeal, delivery.the_target, date=document_date(env.now))
        return PostPayload(document=document)

    def write_draft(self, payload: PostPayload, delivery: Delivery, out_dir: Path) -> Path:
        path = out_dir / "post" / f"{delivery.slug}.pdf"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload.document.data)
        return path
