"""The organisers' queue: loading CSVs of letters (``loader``), the worker (``worker``) and
a one-step send's hand-over to the outbox (``handoff``). The SQL is in ``ua_dispatch.outbox``."""
