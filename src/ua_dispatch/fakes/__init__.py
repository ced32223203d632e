"""Local fake servers for dry runs and tests: real protocols on loopback, nothing leaves.

Importing this package loads no web server: a provider's fake (uvicorn, starlette) is imported
when :func:`fake_gateway_class` is asked for it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ua_dispatch.errors import ConfigError

if TYPE_CHECKING:
    # for the annotation only: importing it would load uvicorn and starlette at start-up
    from ua_dispatch.fakes.gateway import FakeGateway

#: fax provider name (as in ``UA_DISPATCH_FAX_PROVIDER``) -> "module:Class" of its fake
FAKE_GATEWAYS: dict[str, str] = {
    "sinch": "ua_dispatch.fakes.sinch:FakeSinchGateway",
    "telnyx": "ua_dispatch.fakes.telnyx:FakeTelnyxGateway",
}


def fake_gateway_class(provider: str) -> type[FakeGateway]:
    """The fake that speaks ``provider``'s API; ConfigError for a provider without one."""
    target = FAKE_GATEWAYS.get(provider)
    if target is None:
        raise ConfigError(
            f"UA_DISPATCH_FAX_PROVIDER: no fake gateway for {provider!r}; "
            f"fakes exist for {', '.join(sorted(FAKE_GATEWAYS))}"
        )
    module_name, _, attr = target.partition(":")
    cls: type[FakeGateway] = getattr(importlib.import_module(module_name), attr)
    return cls
