"""Stable identities for deliveries.

A delivery is the same delivery when campaign, supporter, target, channel and letter content are
the same. Its key feeds the email Message-ID and the fax gateway labels, so a resend of the same
appeal is recognisable everywhere it lands.
"""

from __future__ import annotations

import hashlib
import hmac
import json

# str.encode() is UTF-8; JSON keys (ensure_ascii) and hex digests are ASCII, whose UTF-8 bytes
# are the ASCII bytes.


def content_hash(text: str) -> str:
    """Hex SHA-256 of the letter text as rendered (UTF-8)."""
    return hashlib.sha256(text.encode()).hexdigest()


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
    return hashlib.sha256(material.encode()).hexdigest()


def message_id(key: str, domain: str) -> str:
    """A deterministic RFC 5322 Message-ID for a delivery key."""
    return f"<ua.{key[:40]}@{domain}>"


def address_digest(email: str) -> str:
    """Hex SHA-256 of the address as compared (lower case, no surrounding blanks): the
    supporter hash of outboxes made before the hash was keyed."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def rekey_supporter_hash(digest: str, key: bytes) -> str:
    """The keyed supporter hash of an :func:`address_digest` (a migration rekeys the hashes
    of rows whose address is already erased this way)."""
    return hmac.new(key, digest.encode(), hashlib.sha256).hexdigest()


def supporter_hash(email: str, key: bytes) -> str:
    """Who acted, without the address: HMAC-SHA256 under the outbox's secret key of the
    address's digest. The outbox counts distinct supporters by it after their addresses are
    erased; without the key, a list of addresses cannot be tested against it."""
    return rekey_supporter_hash(address_digest(email), key)
