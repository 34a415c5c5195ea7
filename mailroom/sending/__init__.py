"""Sending: the outbox's mail handed to a transport (an SMTP relay or files),
retried and settled.
"""
