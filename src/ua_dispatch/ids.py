"""Stable identities for deliveries.

A delivery is the same delivery when campaign, supporter, target, channel and letter content are
the same. Its key feeds the email Message-ID and the fax gateway labels, so a resend of the same
appeal is recognisable everywhere it lands.
"""

from __future__ import annotations

import hashlib
import json


def content_hash(text: str) -> str:
    """Hex SHA-256 of the letter text as rendered (UTF-8)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# One encoder for every key: json.dumps with options other than the defaults builds a new one
# on each call.
_KEY_ENCODER = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"))


def delivery_key(
    *, campaign_id: str, supporter_email: str, target_slug: str, channel: str, letter_hash: str
) -> str:
    """Hex SHA-256 over the five things that make a delivery the same delivery."""
    material = _KEY_ENCODER.encode(
        [campaign_id, supporter_email.strip().lower(), target_slug, channel, letter_hash]
    )
    return hashlib.sha256(material.encode("ascii")).hexdigest()


def message_id(key: str, domain: str) -> str:
    """A deterministic RFC 5322 Message-ID for a delivery key."""
    return f"<ua.{key[:40]}@{domain}>"
