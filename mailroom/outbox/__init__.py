"""The outbox: outgoing mail rendered from templates and queued in the
caller's transaction.
"""
