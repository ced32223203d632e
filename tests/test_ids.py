"""Delivery keys never change between releases: the outbox's unique key, Message-IDs and fax
labels of letters queued or sent by an earlier version depend on them."""

from __future__ import annotations

import hashlib
import hmac

from ua_dispatch.ids import (
    address_digest,
    bounce_token,
    callback_token_names,
    content_hash,
    delivery_key,
    message_id,
    rekey_supporter_hash,
    supporter_hash,
    token_names,
)
from ua_dispatch.letter import Letter


def _key(supporter_email: str) -> str:
    return delivery_key(
        campaign_id="c",
        supporter_email=supporter_email,
        target_slug="t",
        channel="email",
        letter_hash="h",
    )


def test_delivery_key_is_pinned() -> None:
    key = _key(" A@b.org")
    assert key == "fb94d33b6af2e50f83419637aea12afa4e7ec24609f40b855f070beb43ea6ab7"
    # the supporter's address is compared without case or surrounding blanks
    assert _key("a@b.org") == key
    assert _key("a@c.org") != key
    assert message_id(key, "example.org") == f"<ua.{key[:40]}@example.org>"


def test_letter_hash_is_the_text_hash() -> None:
    letter = Letter(text="Добрый день", language="ru")
    assert letter.hash == content_hash("Добрый день")
    assert content_hash("abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


def test_delivery_key_with_non_ascii_parts_is_pinned() -> None:
    key = delivery_key(
        campaign_id="ua-46/2019 Чечня",
        supporter_email=" Ünal.Öz@Bücher.example ",
        target_slug="glava-чечни",
        channel="fax",
        letter_hash=content_hash("Добрый день"),
    )
    assert key == "aaad856faaa64f99f8893a7cc3d7e5f982ec0ea7e619128918d1c759d0b35ecb"
    assert content_hash("Добрый день") == (
        "7c58eacae277eac43be984516e2682914aab66ae54c6d7a3d97827e1e2b28af9"
    )


def test_delivery_key_is_sha256_of_an_ascii_json_list() -> None:
    """The definition, written out: a compact JSON list with non-ASCII escaped, in this order."""
    material = b'["\\u0438\\u0434","\\u00fc@b.de","\\u0442","email","h"]'  # "ид", "ü@b.de", "т"
    expected = hashlib.sha256(material).hexdigest()
    assert (
        delivery_key(
            campaign_id="ид",
            supporter_email="Ü@b.de",
            target_slug="т",
            channel="email",
            letter_hash="h",
        )
        == expected
    )
    assert _key("a@b.org") == hashlib.sha256(b'["c","a@b.org","t","email","h"]').hexdigest()


def test_every_part_of_the_key_counts() -> None:
    base = {
        "campaign_id": "c",
        "supporter_email": "a@b.org",
        "target_slug": "t",
        "channel": "email",
        "letter_hash": "h",
    }
    keys = {delivery_key(**base)}
    for field in base:
        keys.add(delivery_key(**{**base, field: base[field] + "x"}))
    # the parts are kept apart: moving text from one to the next is another delivery
    keys.add(delivery_key(**{**base, "campaign_id": "ca", "supporter_email": "@b.org"}))
    assert len(keys) == len(base) + 2


def test_supporter_address_case_is_folded_simply() -> None:
    """Lower case, not full case folding: "ß" is not "ss" (they are different mailboxes)."""
    assert _key("STRASSE@x.de") != _key("straße@x.de")
    assert _key("ÜNAL@x.de") == _key("ünal@x.de")


def test_message_id_is_the_first_40_hex_digits() -> None:
    key = "0123456789abcdef" * 4
    assert message_id(key, "mail.example.org") == (
        "<ua.0123456789abcdef0123456789abcdef01234567@mail.example.org>"
    )


KEY = b"k" * 32


def test_supporter_hash_is_pinned_for_a_non_ascii_address() -> None:
    email = " Ünal.Öz@Bücher.example "
    assert address_digest(email) == (
        "84ef4e3251d7598e3ac0303270d420ec4fbd6bb342fff763b92159d9ac9a0eef"
    )
    assert supporter_hash(email, KEY) == (
        "0d7fb572a303e264f3fb4f5946d9476a1b71ea597dd1f6af82cf61d3fcb77950"
    )


def test_supporter_hash_is_hmac_sha256_of_the_address_digest() -> None:
    """The definition, written out with the standard library."""
    digest = hashlib.sha256("ünal.öz@bücher.example".encode()).hexdigest()
    assert address_digest("ÜNAL.ÖZ@BÜCHER.EXAMPLE") == digest
    expected = hmac.new(KEY, digest.encode("ascii"), hashlib.sha256).hexdigest()
    assert rekey_supporter_hash(digest, KEY) == expected
    assert supporter_hash(" ünal.öz@bücher.example", KEY) == expected
    assert supporter_hash("a@b.org", KEY) != supporter_hash("a@b.org", b"j" * 32)


def test_a_token_with_any_character_is_refused_not_an_error() -> None:
    key, secret = "a" * 64, b"s" * 32
    assert token_names(bounce_token(key, secret), key, secret)
    for odd in ("é" * 45, "\u2028", "Ａ" * 45, ""):
        assert not token_names(odd, key, secret)
        assert not callback_token_names(odd, key, secret)
