"""Returned mail: reading bounce reports and auto-replies (``parse``) from files, mbox files,
Maildir folders (``sources``) and an IMAP mailbox (``imap``). It knows nothing of the outbox:
the application layer matches what it reads to deliveries."""
