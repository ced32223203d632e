"""Fax gateways: one module per provider behind the interface in :mod:`ua_dispatch.fax.base`.

A provider is chosen by name (``UA_DISPATCH_FAX_PROVIDER``) and imported only when a fax is
sent, so that adding a provider is one new module plus one line in ``PROVIDERS``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ua_dispatch.errors import ConfigError

if TYPE_CHECKING:
    from ua_dispatch.fax.base import FaxProvider
    from ua_dispatch.settings import Settings

#: provider name -> "module:class"
PROVIDERS: dict[str, str] = {
    "sinch": "ua_dispatch.fax.sinch:SinchFax",
    "telnyx": "ua_dispatch.fax.telnyx:TelnyxFax",
}


def provider_class(name: str) -> type[FaxProvider]:
    try:
        target = PROVIDERS[name]
    except KeyError:
        raise ConfigError(
            f"UA_DISPATCH_FAX_PROVIDER: unknown fax provider {name!r}; "
            f"choose from {', '.join(PROVIDERS)}"
        ) from None
    module_name, _, attr = target.partition(":")
    cls: type[FaxProvider] = getattr(importlib.import_module(module_name), attr)
    return cls


def make_provider(settings: Settings) -> FaxProvider:
    """The configured provider, ready to use (call ``aclose`` when done)."""
    return provider_class(settings.fax_provider).from_settings(settings)


def check_provider_settings(settings: Settings) -> None:
    """Raise ConfigError when the configured provider cannot send for real."""
    provider_class(settings.fax_provider).check_settings(settings)
