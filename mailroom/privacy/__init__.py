"""Privacy: retention of closed cases, data-protection requests, and what
log lines may say.
"""
