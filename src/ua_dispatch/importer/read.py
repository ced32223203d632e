"""Reading an Urgent Action document: plain text, Word (.docx) or PDF, told apart by content.

The result is the document's text as lines, page by page (a text or Word file is one page).
Anything that cannot be read is refused with one :class:`InputError` naming the file and why.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ua_dispatch.errors import InputError
from ua_dispatch.files import DOCUMENT_MAX_BYTES, MIB, describe_size, read_capped

WHAT = "Urgent Action document"
#: what a .docx may unpack to; a zip bomb is refused before python-docx opens it
DOCX_MAX_UNPACKED = 200 * MIB
#: a UA is a few pages; this bounds the time a hostile PDF can take
PDF_MAX_PAGES = 100
_PDF_MAGIC = b"%PDF-"
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


@dataclass(frozen=True)
class Extracted:
    """The text of a document, as lines per page, and the format it was read from."""

    kind: str  # "text", "docx" or "pdf"
    pages: tuple[tuple[str, ...], ...]

    @property
    def lines(self) -> list[str]:
        return [line for page in self.pages for line in page]


def read_document(path: Path) -> Extracted:
    """The text of ``path``; InputError when it is empty, too large, not UTF-8 text, a zip that
    is not a Word document, an encrypted PDF or a PDF without text."""
    raw = read_capped(path, DOCUMENT_MAX_BYTES, what=WHAT)
    if not raw.strip():
        raise InputError("the document is empty", source=path)
    if raw.lstrip()[:5] == _PDF_MAGIC:
        doc = _read_pdf(raw, path)
    elif raw[:4] == _ZIP_MAGIC:
        doc = _read_docx(raw, path)
    elif raw[:8] == _OLE_MAGIC:
        raise InputError(
            "an old Word (.doc) file; save it as .docx, PDF or UTF-8 text first", source=path
        )
    elif raw[:5] == b"{\\rtf":
        raise InputError("an RTF file; save it as .docx, PDF or UTF-8 text first", source=path)
    else:
        doc = Extracted("text", (tuple(_decode_text(raw, path).splitlines()),))
    if not any(line.strip() for line in doc.lines):
        raise InputError("the document has no text", source=path)
    return doc


def _decode_text(raw: bytes, path: Path) -> str:
    if b"\x00" in raw:
        raise InputError(
            "not a text, Word or PDF document (it holds binary data)", source=path
        ) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not UTF-8 text (byte {exc.start} is not UTF-8); save the text as UTF-8",
            source=path,
        ) from None


def _read_docx(raw: bytes, path: Path) -> Extracted:
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            infos = archive.infolist()
    except zipfile.BadZipFile:
        raise InputError(
            "a damaged zip archive, not a readable Word document", source=path
        ) from None
    names = {info.filename for info in infos}
    if "word/document.xml" not in names:
        raise InputError(
            "a zip archive but not a Word document (it has no word/document.xml)", source=path
        )
    unpacked = sum(info.file_size for info in infos)
    if unpacked > DOCX_MAX_UNPACKED:
        raise InputError(
            f"the Word document unpacks to {describe_size(unpacked)} "
            f"(at most {describe_size(DOCX_MAX_UNPACKED)})",
            source=path,
        )
    # imported here, not at module level: keeps start-up fast
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(io.BytesIO(raw))
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise InputError(f"not a readable Word document ({exc})", source=path) from None
    except Exception as exc:  # lxml and python-docx raise many kinds on a malformed part
        raise InputError(
            f"not a readable Word document ({type(exc).__name__})", source=path
        ) from None
    lines: list[str] = []
    body = document.element.body
    for child in body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            lines.extend(_paragraph_text(child).split("\n"))
        elif tag == "tbl":
            for row in child.iter("{*}tr"):
                cells = [
                    "\n".join(_paragraph_text(p) for p in tc.iter("{*}p"))
                    for tc in row.iter("{*}tc")
                ]
                for cell in cells:
                    lines.extend(cell.split("\n"))
                lines.append("")
    return Extracted("docx", (tuple(lines),))


def _paragraph_text(p: Any) -> str:
    """A paragraph's text with tabs and line breaks kept (python-docx's text property drops
    the breaks of some runs)."""
    parts: list[str] = []
    for node in p.iter():
        tag = node.tag.rsplit("}", 1)[-1]
        if tag == "t" and node.text:
            parts.append(node.text)
        elif tag == "tab":
            parts.append("\t")
        elif tag in ("br", "cr"):
            parts.append("\n")
    return "".join(parts)


def _read_pdf(raw: bytes, path: Path) -> Extracted:
    # imported here, not at module level: keeps start-up fast
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError, PyPdfError

    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted and not reader.decrypt(""):
            raise InputError("the PDF is protected by a password; remove it first", source=path)
        count = len(reader.pages)
    except (FileNotDecryptedError, DependencyError):
        raise InputError("the PDF is encrypted; remove the password first", source=path) from None
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"not a readable PDF ({exc})", source=path) from None
    if count > PDF_MAX_PAGES:
        raise InputError(
            f"the PDF has {count} pages (an Urgent Action has a few; at most {PDF_MAX_PAGES})",
            source=path,
        )
    pages: list[tuple[str, ...]] = []
    try:
        for page in reader.pages:
            text = page.extract_text(extraction_mode="layout")
            pages.append(tuple(text.splitlines()))
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"not a readable PDF ({exc})", source=path) from None
    if not any(line.strip() for page in pages for line in page):
        raise InputError(
            "the PDF has no text (scanned pages or images only); run it through OCR first",
            source=path,
        )
    return Extracted("pdf", tuple(pages))
