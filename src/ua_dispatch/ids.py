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


#: hex characters of the delivery key a bounce token starts with, and of its MAC
TOKEN_KEY_CHARS = 24
TOKEN_MAC_CHARS = 20


def _token(purpose: bytes, key: str, secret: bytes) -> str:
    """The start of a delivery key and a MAC of the whole key under ``secret`` for
    ``purpose``: nobody without the secret can make a token that names the delivery, and a
    token for one purpose is never one for another."""
    mac = hmac.new(secret, purpose + b":" + key.encode(), hashlib.sha256).hexdigest()
    return f"{key[:TOKEN_KEY_CHARS]}.{mac[:TOKEN_MAC_CHARS]}"


def _same_token(given: str, expected: str) -> bool:
    # as bytes: a token read from an address or a URL may hold any character, which
    # compare_digest refuses in a str
    return hmac.compare_digest(given.lower().encode(), expected.encode())


def bounce_token(key: str, secret: bytes) -> str:
    """The token of a delivery's bounce address."""
    return _token(b"bounce", key, secret)


def token_names(token: str, key: str, secret: bytes) -> bool:
    """True when ``token`` is the bounce token of delivery ``key``."""
    return _same_token(token, bounce_token(key, secret))


def callback_token(key: str, secret: bytes) -> str:
    """The token in a fax's status-callback URL."""
    return _token(b"fax-callback", key, secret)


def callback_token_names(token: str, key: str, secret: bytes) -> bool:
    """True when ``token`` is the callback token of delivery ``key``."""
    return _same_token(token, callback_token(key, secret))


def verp_address(base: str, token: str) -> str:
    """``bounces@example.org`` with a token: ``bounces+TOKEN@example.org``."""
    local, _, domain = base.rpartition("@")
    return f"{local}+{token}@{domain}"


def token_in(address: str, base: str) -> str | None:
    """The token of an address made by :func:`verp_address` from ``base``, else None. The
    token is returned as written: whether it is genuine is for :func:`token_names`."""
    local, _, domain = address.strip().strip("<>").rpartition("@")
    base_local, _, base_domain = base.rpartition("@")
    if domain.lower() != base_domain.lower():
        return None
    head, plus, token = local.partition("+")
    if not plus or head.lower() != base_local.lower():
        return None
    key_part, dot, mac = token.partition(".")
    if not dot or len(key_part) != TOKEN_KEY_CHARS or len(mac) != TOKEN_MAC_CHARS:
        return None
    if not all(c in "0123456789abcdefABCDEF" for c in key_part + mac):
        return None
    return token.lower()
