"""Sending the notice outbox by SMTP, apart from circulation: a dead mail server can delay a
notice, never a checkout."""
