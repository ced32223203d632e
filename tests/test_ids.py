"""Delivery keys never change between releases: the outbox's unique key, Message-IDs and fax
labels of letters queued or sent by an earlier version depend on them."""

from __future__ import annotations

from ua_dispatch.ids import content_hash, delivery_key, message_id
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
