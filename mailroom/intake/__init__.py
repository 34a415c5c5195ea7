"""Intake: what a message is, read from its bytes alone.

Parse, classify, strip quotes, find threads and URLs. Pure: no store, no
settings, no runtime.
"""
