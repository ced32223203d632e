"""Local fake servers for dry runs and tests: real protocols on loopback, nothing leaves.

Each fax provider names its own fake (:attr:`ua_dispatch.fax.base.FaxProvider.fake`), so a new
provider's fake needs no line here. Importing this package loads no web server: a provider's
fake (uvicorn, starlette) is imported when :func:`fake_gateway_class` is asked for it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ua_dispatch.fax import provider_class

if TYPE_CHECKING:
    # for the annotations only: importing them would load uvicorn, starlette and aiosmtpd
    # with this package
    from ua_dispatch.fakes.base import FakeServer
    from ua_dispatch.fakes.gateway import FakeGateway


def fake_class(where: str) -> type[FakeServer]:
    """The fake server class named ``module:Class`` (as channels and providers name theirs)."""
    module_name, _, attr = where.partition(":")
    cls: type[FakeServer] = getattr(importlib.import_module(module_name), attr)
    return cls


def fake_gateway_class(provider: str) -> type[FakeGateway]:
    """The fake that speaks ``provider``'s API; a one-line ConfigError naming
    ``UA_DISPATCH_FAX_PROVIDER`` for a provider there is none of."""
    module_name, _, attr = provider_class(provider).fake.partition(":")
    cls: type[FakeGateway] = getattr(importlib.import_module(module_name), attr)
    return cls
