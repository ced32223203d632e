"""DKIM signatures on relay mail, with dkimpy. Kept apart from the message builder because
dkimpy takes a tenth of a second to import: only runs with DKIM settings load it."""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from ua_dispatch.errors import ConfigError, InputError
from ua_dispatch.files import read_capped

#: a PEM private key is a few kilobytes at most
KEY_FILE_MAX_BYTES = 64 * 1024
#: the headers signed, those of them a message has (RFC 6376 5.4.1's list, cut to ours)
SIGNED_HEADERS = (
    b"from",
    b"to",
    b"cc",
    b"reply-to",
    b"subject",
    b"date",
    b"message-id",
    b"mime-version",
    b"content-type",
    b"content-transfer-encoding",
    b"content-language",
)


@dataclass(frozen=True)
class SigningKey:
    """A private key in the form dkimpy takes, and the algorithm it signs with."""

    private: bytes
    algorithm: bytes


@functools.lru_cache(maxsize=4)
def _load(path: Path, mtime_ns: int) -> SigningKey:
    try:
        pem = read_capped(path, KEY_FILE_MAX_BYTES, what="DKIM key")
        key = serialization.load_pem_private_key(pem, password=None)
    except InputError as exc:
        raise ConfigError(f"UA_DISPATCH_DKIM_KEY_FILE: {exc}") from None
    except (ValueError, TypeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            f"UA_DISPATCH_DKIM_KEY_FILE: {path}: not an unencrypted PEM private key ({first})"
        ) from None
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 1024:
            raise ConfigError(
                f"UA_DISPATCH_DKIM_KEY_FILE: {path}: an RSA key of {key.key_size} bits; "
                "receivers ignore signatures under 1024 bits (use 2048)"
            )
        traditional = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        return SigningKey(traditional, b"rsa-sha256")
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return SigningKey(base64.b64encode(raw), b"ed25519-sha256")
    raise ConfigError(
        f"UA_DISPATCH_DKIM_KEY_FILE: {path}: a {type(key).__name__}; DKIM takes RSA or Ed25519"
    )


def signing_key(path: Path) -> SigningKey:
    """The key in ``path`` (read again when the file changes); ConfigError when it is
    missing, unreadable or of a kind DKIM does not take."""
    try:
        mtime = path.stat().st_mtime_ns
    except OSError as exc:
        raise ConfigError(
            f"UA_DISPATCH_DKIM_KEY_FILE: {path}: cannot read it ({exc.strerror})"
        ) from None
    return _load(path, mtime)


def sign(data: bytes, *, selector: str, domain: str, key: SigningKey) -> bytes:
    """``data`` (a whole message, CRLF line ends) with a DKIM-Signature header in front."""
    header = dkim.sign(
        data,
        selector.encode("ascii"),
        domain.encode("ascii"),
        key.private,
        canonicalize=(b"relaxed", b"relaxed"),
        signature_algorithm=key.algorithm,
        include_headers=list(SIGNED_HEADERS),
    )
    return bytes(header) + data
