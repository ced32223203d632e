"""The supporters' page and its HTTP API (``ua-dispatch serve``): a front door beside the
command line. It holds no workflow of its own: every step is a call to
:mod:`ua_dispatch.service.appeals`."""

from __future__ import annotations

from ua_dispatch.web.app import Options, create_app

__all__ = ["Options", "create_app"]
