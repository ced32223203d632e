"""Channel registry. A new channel is one module plus one line here."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ua_dispatch.channels.base import Channel
from ua_dispatch.channels.email import EmailChannel
from ua_dispatch.channels.fax import FaxChannel
from ua_dispatch.channels.phone import PhoneChannel
from ua_dispatch.channels.post import PostChannel
from ua_dispatch.channels.social import SocialChannel
from ua_dispatch.errors import InputError

CHANNELS: dict[str, Channel[Any]] = {
    c.name: c
    for c in (
        EmailChannel(),
        FaxChannel(),
        PostChannel(),
        SocialChannel(),
        PhoneChannel(),
    )
}

DEFAULT_CHANNELS: tuple[str, ...] = tuple(CHANNELS)


def sending_channels() -> list[str]:
    """Names of the channels that deliver by themselves, in registry order."""
    return [name for name, c in CHANNELS.items() if c.sends]


def by_hand_channels() -> list[str]:
    """Names of the channels a person finishes by hand, in registry order."""
    return [name for name, c in CHANNELS.items() if not c.sends]


def get_channel(name: str) -> Channel[Any]:
    try:
        return CHANNELS[name]
    except KeyError:
        raise InputError(
            f"unknown channel {name!r}; choose from {', '.join(CHANNELS)}", source="--channels"
        ) from None


def lookup(names: Iterable[str]) -> list[Channel[Any]]:
    """The channels of these names, in order (what :func:`ua_dispatch.plan.plan_deliveries`
    takes)."""
    return [get_channel(name) for name in names]


def parse_channels(value: str | None) -> list[str]:
    if value is None:
        return list(DEFAULT_CHANNELS)
    names: list[str] = []
    for raw in value.split(","):
        name = raw.strip().lower()
        if name and name not in names:
            get_channel(name)
            names.append(name)
    if not names:
        raise InputError("no channel given", source="--channels")
    return names
