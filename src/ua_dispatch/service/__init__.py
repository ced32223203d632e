"""What ``ua-dispatch`` does, for every front door (the command line, a web page): the
application layer. Each module is one part of the work, imported by the front door when a
command runs, so that a command loads only what it needs:

- :mod:`~ua_dispatch.service.sending`: the one-step send (load, check, prepare, ask for
  approval, reserve in the outbox, deliver, record, hand back to the queue) and drafts;
- :mod:`~ua_dispatch.service.campaigns`: checking a campaign file, importing one from an Urgent
  Action document;
- :mod:`~ua_dispatch.service.appeals`: the supporters' page (preview, submit, confirm, status,
  cancel, what supporters report doing);
- :mod:`~ua_dispatch.service.bounces`: returned mail read back and recorded;
- :mod:`~ua_dispatch.service.fax_events`: fax gateways' status callbacks, checked and recorded;
- :mod:`~ua_dispatch.service.organizing`: the organizers' queue (add, list, hold, release,
  cancel, retry, purge, report, worker);
- :mod:`~ua_dispatch.service.fakes`: the local fake servers in the foreground;
- :mod:`~ua_dispatch.service.notices`: what any of them has to tell the person at the door;
- :mod:`~ua_dispatch.service.outboxes`: opening the outbox.

Nothing here prints: notes and warnings are data (:class:`~ua_dispatch.service.notices.Notice`),
handed to a callback as they arise and kept in the reports, and approval is a callback the front
door passes in.
"""
