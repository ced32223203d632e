"""Printable documents: the supporter's letter as PDF for fax and post."""

from ua_dispatch.documents.fax import FaxCover, build_fax_document
from ua_dispatch.documents.pdf import PdfDocument, page_format, render_letter_pdf

__all__ = ["FaxCover", "PdfDocument", "build_fax_document", "page_format", "render_letter_pdf"]
