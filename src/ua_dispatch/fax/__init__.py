"""Fax gateways: one module per provider behind the interface in :mod:`ua_dispatch.fax.base`.

A provider is chosen by name (``UA_DISPATCH_FAX_PROVIDER``) and imported only when it is used
(with ``httpx``), so that the command line starts fast. A provider module declares its own
settings (:attr:`FaxProvider.settings_model`) and names its local fake
(:attr:`FaxProvider.fake`): adding one is its module, its fake and its tests, plus one line in
``PROVIDERS``.
"""

from __future__ import annotations

import importlib

from ua_dispatch.errors import ConfigError
from ua_dispatch.fax.base import FaxProvider
from ua_dispatch.settings import Settings, SettingsSection

#: provider name -> "module:class"
PROVIDERS: dict[str, str] = {
    "sinch": "ua_dispatch.fax.sinch:SinchFax",
    "telnyx": "ua_dispatch.fax.telnyx:TelnyxFax",
}


class UnknownProvider(ConfigError):
    """No provider has this name; ``detail`` says so without naming the setting."""

    def __init__(self, name: str):
        self.detail = f"unknown fax provider {name!r}; choose from {', '.join(PROVIDERS)}"
        super().__init__(f"UA_DISPATCH_FAX_PROVIDER: {self.detail}")


def provider_class(name: str) -> type[FaxProvider]:
    """The provider called ``name``; an :class:`UnknownProvider` error when there is none."""
    try:
        target = PROVIDERS[name]
    except KeyError:
        raise UnknownProvider(name) from None
    module_name, _, attr = target.partition(":")
    cls: type[FaxProvider] = getattr(importlib.import_module(module_name), attr)
    return cls


def make_provider(settings: Settings) -> FaxProvider:
    """The configured provider, ready to use (call ``aclose`` when done)."""
    return provider_class(settings.fax_provider).from_settings(settings)


def settings_sections() -> list[type[SettingsSection]]:
    """Every provider's own settings (imports every provider)."""
    return [provider_class(name).settings_model for name in PROVIDERS]
