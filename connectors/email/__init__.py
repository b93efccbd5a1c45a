"""Email in: parsing (`parse`), the SMTP server (`smtp`), the IMAP poller (`imap`) and the
inbound-parse webhook (`webhook`)."""
