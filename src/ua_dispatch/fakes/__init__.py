"""Local fake servers for dry runs and tests: real protocols on loopback, nothing leaves."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ua_dispatch.fakes.fax_gateway import FakeGateway

#: fax provider name (as in ``UA_DISPATCH_FAX_PROVIDER``) -> "module:class" of its fake
FAKE_GATEWAYS: dict[str, str] = {
    "sinch": "ua_dispatch.fakes.fax_gateway:FakeFaxGateway",
    "telnyx": "ua_dispatch.fakes.telnyx_gateway:FakeTelnyxGateway",
}


def fake_gateway_class(provider: str) -> type[FakeGateway]:
    """The fake that speaks ``provider``'s API (the Sinch one for a provider without a fake)."""
    module_name, _, attr = FAKE_GATEWAYS.get(provider, FAKE_GATEWAYS["sinch"]).partition(":")
    cls: type[FakeGateway] = getattr(importlib.import_module(module_name), attr)
    return cls
