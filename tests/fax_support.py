"""A small real PDF for adapter and gateway tests that do not need the letter layout, and
what every fax provider's refused-credentials test checks."""

from __future__ import annotations

from typing import Any


def assert_channel_stopped(result: Any, records: list[Any], secret: str) -> None:
    """A send whose credentials were refused: the first delivery met a 401 and stopped the
    channel; the other was either stopped unsent or refused the same way in flight. Nothing
    reached the gateway and the secret appears nowhere in the output."""
    assert result.code == 1
    deliveries = result.json()["deliveries"]
    assert [d["status"] for d in deliveries] == ["failed", "failed"]
    assert all(d["error_kind"] == "stop-channel" for d in deliveries)
    assert deliveries[0]["code"] == "401" and deliveries[0]["attempts"] == 1
    second = deliveries[1]
    assert second["error"].startswith("channel stopped") or second["code"] == "401"
    assert records == []
    assert secret not in result.stdout + result.stderr


def tiny_pdf(text: str = "Test fax", pages: int = 1) -> bytes:
    """A valid PDF with ``pages`` pages of one line of Helvetica text each."""
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"",  # the page tree, filled in below
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    kids = []
    for n in range(pages):
        line = f"{text} ({n + 1}/{pages})".replace("\\", "\\\\").replace("(", "\\(")
        line = line.replace(")", "\\)")
        stream = f"BT /F1 14 Tf 72 720 Td ({line}) Tj ET".encode("latin-1")
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        content_ref = len(objects)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % content_ref
        )
        kids.append(len(objects))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids),
        pages,
    )
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)
