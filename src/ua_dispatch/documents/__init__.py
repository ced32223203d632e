"""Documents made from a rendered letter: printable letters and fax-ready PDFs. They take plain
values (the rendered letter, the target, the supporter, the campaign) and know nothing of
channels or deliveries."""

from ua_dispatch.documents.fax import build_fax_document
from ua_dispatch.documents.pdf import FaxCover, PdfDocument, page_format, render_letter_pdf

__all__ = ["FaxCover", "PdfDocument", "build_fax_document", "page_format", "render_letter_pdf"]
